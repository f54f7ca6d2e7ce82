//! Streaming a download into S3: bytes go into parts of a multipart upload as they arrive,
//! at most [`PARTS_IN_FLIGHT`] parts being sent while the next one fills, so memory stays
//! near `(PARTS_IN_FLIGHT + 1) × part size` whatever the object's size. Every part carries
//! its CRC-32 and the object its full-object CRC-32, which S3 checks. Anything short of the
//! whole stream (a broken download, fewer bytes than announced, an S3 refusal) aborts the
//! upload: no partial object is ever left.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{Stream, StreamExt};
use tokio::task::{JoinError, JoinSet};
use tracing::Instrument;

use super::{crc32_base64, store_error, Store, StoreError};

/// Parts sent at once while the next one fills: enough to keep S3 busy while the download
/// goes on (the AWS CLI sends up to 10), few enough for the memory target.
pub const PARTS_IN_FLIGHT: usize = 4;
/// The default part size: small enough to keep memory low, large enough for S3's 5 MiB
/// minimum and for 80 GB in the first 10,000 parts.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's limit on parts of one upload.
const MAX_PARTS: u32 = 10_000;
/// Of an object of unknown length, parts grow: the size doubles every this many parts, so
/// 1 TiB fits in about 7,000 parts.
const PARTS_PER_SIZE: u32 = 1000;
/// The largest part size the growth reaches.
const MAX_PART_SIZE: usize = 1024 * 1024 * 1024;

/// Makes glibc give every part buffer (megabytes) its own mapping, returned to the system
/// when the part is sent. Left to itself glibc raises its mapping threshold to the size of
/// the first such buffer freed, then carves later ones out of the heap, which keeps growing
/// with the object's size: a 5 GiB copy held a fifth more memory than a 100 MiB one.
pub fn release_part_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a setting of the allocator; 1 MiB is a valid threshold.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// What was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    /// CRC-32 of the whole object, as computed while it streamed.
    pub crc32: u32,
    /// The same in S3's form (base64), as S3 keeps and reports it.
    pub checksum: String,
    /// Parts of the multipart upload (0: one PutObject).
    pub parts: u32,
    /// The last bytes of the object (up to [`TAIL_KEPT`]), kept as they streamed past: a
    /// zip's directory is read from them without reading the object back.
    pub tail: Bytes,
}

/// The most of an object's end an upload keeps ([`Uploaded::tail`]): a zip's end records
/// and a directory of a few thousand entries.
pub const TAIL_KEPT: usize = 1024 * 1024;

/// The last [`TAIL_KEPT`] bytes of a stream, as the pieces it came in (no copy until the end).
#[derive(Default)]
struct Tail {
    pieces: std::collections::VecDeque<Bytes>,
    len: usize,
}

impl Tail {
    fn push(&mut self, piece: Bytes) {
        self.len += piece.len();
        self.pieces.push_back(piece);
        while let Some(front) = self.pieces.front() {
            if self.len - front.len() < TAIL_KEPT {
                break;
            }
            self.len -= front.len();
            self.pieces.pop_front();
        }
    }

    fn into_bytes(self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len.min(TAIL_KEPT));
        let mut skip = self.len.saturating_sub(TAIL_KEPT);
        for piece in self.pieces {
            let from = skip.min(piece.len());
            skip -= from;
            out.extend_from_slice(&piece[from..]);
        }
        out.freeze()
    }
}

/// Why nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// The source stream failed (the download broke off).
    #[error("the download broke off after {got} bytes: {reason}")]
    Source { got: u64, reason: String },
    /// The source ended before the length it announced.
    #[error("the download ended after {got} of {expected} bytes")]
    Short { got: u64, expected: u64 },
    /// The source sent more than it announced.
    #[error("the download sent more than the {expected} bytes it announced")]
    Long { expected: u64 },
    /// More parts than S3 allows.
    #[error("the object is larger than one multipart upload can hold")]
    TooLarge,
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// Part sizes of one upload.
#[derive(Debug, Clone, Copy)]
pub struct PartPlan {
    base: usize,
    known_len: Option<u64>,
}

impl PartPlan {
    /// Parts of at least `base` bytes; for a known length, large enough that the object
    /// fits in 10,000 parts.
    pub fn new(base: usize, known_len: Option<u64>) -> Self {
        let base = match known_len {
            Some(len) => {
                let needed = len.div_ceil(u64::from(MAX_PARTS) - 100) as usize;
                base.max(needed.next_multiple_of(1024 * 1024))
            }
            None => base,
        };
        PartPlan { base, known_len }
    }

    /// The size of part `n` (1-based).
    pub fn size(&self, n: u32) -> usize {
        if self.known_len.is_some() {
            return self.base;
        }
        let doublings = ((n.saturating_sub(1)) / PARTS_PER_SIZE).min(16);
        self.base
            .saturating_mul(1 << doublings)
            .min(MAX_PART_SIZE.max(self.base))
    }
}

/// An open multipart upload, aborted when dropped before it completes.
struct Open {
    store: Store,
    key: String,
    upload_id: String,
    done: bool,
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (store, key, upload_id) = (self.store.clone(), self.key.clone(), self.upload_id.clone());
        // Dropped mid-way (the invocation ran out of time): abort in the background, so the
        // parts are not kept (and billed) until the bucket's lifecycle rule removes them.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { abort(&store, &key, &upload_id).await });
        }
    }
}

/// An S3 call's task as it ended; a panicked or cancelled task is a failed call.
fn joined<T>(
    done: Result<Result<T, StoreError>, JoinError>,
    operation: &'static str,
    key: &str,
) -> Result<T, StoreError> {
    done.map_err(|e| StoreError {
        operation,
        key: key.to_owned(),
        reason: format!("the call's task ended early: {e}"),
        code: None,
    })?
}

async fn abort(store: &Store, key: &str, upload_id: &str) {
    let result = store
        .client()
        .abort_multipart_upload()
        .bucket(store.bucket())
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %store_error("AbortMultipartUpload", key, &e), "could not abort an upload; the bucket's lifecycle rule will");
    }
}

impl Store {
    /// Streams `source` into `key`. `expected_len` is the length the source announced
    /// (its `Content-Length`): the stored object must have exactly that many bytes.
    pub async fn upload_stream<S, E>(
        &self,
        key: &str,
        content_type: &str,
        expected_len: Option<u64>,
        part_size: usize,
        source: S,
    ) -> Result<Uploaded, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let span = tracing::info_span!("s3_upload", kind = "multipart", bytes = tracing::field::Empty);
        let uploaded = self
            .upload_stream_unspanned(key, content_type, expected_len, part_size, source)
            .instrument(span.clone())
            .await;
        if let Ok(u) = &uploaded {
            span.record("bytes", u.size);
        }
        uploaded
    }

    async fn upload_stream_unspanned<S, E>(
        &self,
        key: &str,
        content_type: &str,
        expected_len: Option<u64>,
        part_size: usize,
        source: S,
    ) -> Result<Uploaded, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let plan = PartPlan::new(part_size, expected_len);
        // An object announced longer than one part needs a multipart upload: it is created
        // while the first part fills, not after (one S3 round trip less before the first part).
        let mut early = match expected_len {
            Some(len) if len > plan.size(1) as u64 => {
                let (store, key, content_type) = (self.clone(), key.to_owned(), content_type.to_owned());
                Some(tokio::spawn(
                    async move { store.create_upload(&key, &content_type).await }.instrument(tracing::Span::current()),
                ))
            }
            _ => None,
        };
        let copied = self
            .copy_parts(key, content_type, expected_len, plan, source, &mut early)
            .await;
        // The copy ended before its first part was sent: the upload made for it goes now,
        // before the error is answered, so none is left open.
        if let Some(creating) = early {
            if let Ok(Ok(mut open)) = creating.await {
                abort(&open.store, &open.key, &open.upload_id).await;
                open.done = true;
            }
        }
        copied
    }

    /// The copy of [`Store::upload_stream`]: parts filled and sent as the source streams,
    /// the upload (`early`, when it was started already) completed.
    async fn copy_parts<S, E>(
        &self,
        key: &str,
        content_type: &str,
        expected_len: Option<u64>,
        plan: PartPlan,
        mut source: S,
        early: &mut Option<tokio::task::JoinHandle<Result<Open, StoreError>>>,
    ) -> Result<Uploaded, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        // One pass over the bytes: each part's CRC-32 as it fills, folded into the object's.
        let mut hasher = crc32fast::Hasher::new();
        let mut part_hasher = crc32fast::Hasher::new();
        let mut tail = Tail::default();
        let mut total: u64 = 0;
        // Each part fills a buffer of exactly its size, so memory is the parts in flight plus
        // the one filling, never a doubled allocation.
        let mut buf = BytesMut::with_capacity(plan.size(1).min(expected_len.unwrap_or(u64::MAX) as usize));
        let mut open: Option<Open> = None;
        let mut next_part: u32 = 1;
        // Parts upload as tasks of their own, so they progress while the download goes on
        // (dropping the set, on any early return, cancels them).
        let mut in_flight: JoinSet<Result<CompletedPart, StoreError>> = JoinSet::new();
        let mut completed: Vec<CompletedPart> = Vec::new();
        loop {
            let mut chunk = match source.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    return Err(UploadError::Source {
                        got: total,
                        reason: e.to_string(),
                    })
                }
                None => break,
            };
            total += chunk.len() as u64;
            if expected_len.is_some_and(|e| total > e) {
                return Err(UploadError::Long {
                    expected: expected_len.unwrap_or(0),
                });
            }
            while !chunk.is_empty() {
                let size = plan.size(next_part);
                let take = chunk.len().min(size - buf.len());
                let piece = chunk.split_to(take);
                part_hasher.update(&piece);
                buf.extend_from_slice(&piece);
                tail.push(piece);
                if buf.len() < size {
                    continue;
                }
                if next_part > MAX_PARTS {
                    return Err(UploadError::TooLarge);
                }
                let part = std::mem::replace(&mut buf, BytesMut::with_capacity(plan.size(next_part + 1))).freeze();
                let part_crc = std::mem::take(&mut part_hasher);
                hasher.combine(&part_crc);
                if open.is_none() {
                    open = Some(match early.take() {
                        Some(creating) => joined(creating.await, "CreateMultipartUpload", key)?,
                        None => self.create_upload(key, content_type).await?,
                    });
                }
                while in_flight.len() >= PARTS_IN_FLIGHT {
                    if let Some(done) = in_flight.join_next().await {
                        completed.push(joined(done, "UploadPart", key)?);
                    }
                }
                let upload_id = open.as_ref().map(|o| o.upload_id.clone()).unwrap_or_default();
                in_flight.spawn(
                    self.upload_part(key, upload_id, next_part, part, part_crc.finalize())
                        .instrument(tracing::Span::current()),
                );
                next_part += 1;
            }
        }
        if let Some(expected) = expected_len {
            if total != expected {
                return Err(UploadError::Short { got: total, expected });
            }
        }
        let last_crc = part_hasher.clone().finalize();
        hasher.combine(&part_hasher);
        let crc32 = hasher.finalize();
        let checksum = crc32_base64(crc32);
        let Some(mut upload) = open else {
            self.put(key, buf.freeze(), content_type).await?;
            return Ok(Uploaded {
                size: total,
                crc32,
                checksum,
                parts: 0,
                tail: tail.into_bytes(),
            });
        };
        if !buf.is_empty() {
            if next_part > MAX_PARTS {
                return Err(UploadError::TooLarge);
            }
            in_flight.spawn(
                self.upload_part(key, upload.upload_id.clone(), next_part, buf.freeze(), last_crc)
                    .instrument(tracing::Span::current()),
            );
            next_part += 1;
        }
        while let Some(done) = in_flight.join_next().await {
            completed.push(joined(done, "UploadPart", key)?);
        }
        completed.sort_by_key(|p| p.part_number());
        self.client()
            .complete_multipart_upload()
            .bucket(self.bucket())
            .key(key)
            .upload_id(&upload.upload_id)
            .checksum_type(ChecksumType::FullObject)
            .checksum_crc32(&checksum)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await
            .map_err(|e| store_error("CompleteMultipartUpload", key, &e))?;
        upload.done = true;
        Ok(Uploaded {
            size: total,
            crc32,
            checksum,
            parts: next_part - 1,
            tail: tail.into_bytes(),
        })
    }

    async fn create_upload(&self, key: &str, content_type: &str) -> Result<Open, StoreError> {
        let mut create = self
            .client()
            .create_multipart_upload()
            .bucket(self.bucket())
            .key(key)
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .checksum_type(ChecksumType::FullObject)
            .storage_class(self.settings().storage_class.as_str().into());
        if let Some(kms) = &self.settings().kms_key_arn {
            create = create
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        let out = create
            .send()
            .await
            .map_err(|e| store_error("CreateMultipartUpload", key, &e))?;
        let upload_id = out.upload_id().map(str::to_owned).ok_or_else(|| StoreError {
            operation: "CreateMultipartUpload",
            key: key.to_owned(),
            reason: "S3 answered without an upload ID".to_owned(),
            code: None,
        })?;
        Ok(Open {
            store: self.clone(),
            key: key.to_owned(),
            upload_id,
            done: false,
        })
    }

    fn upload_part(
        &self,
        key: &str,
        upload_id: String,
        number: u32,
        body: Bytes,
        crc32: u32,
    ) -> impl std::future::Future<Output = Result<CompletedPart, StoreError>> + use<> {
        let store = self.clone();
        let key = key.to_owned();
        async move {
            let crc = crc32_base64(crc32);
            let out = store
                .client()
                .upload_part()
                .bucket(store.bucket())
                .key(&key)
                .upload_id(&upload_id)
                .part_number(number as i32)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .checksum_crc32(&crc)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| store_error("UploadPart", &key, &e))?;
            Ok(CompletedPart::builder()
                .part_number(number as i32)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .checksum_crc32(crc)
                .build())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_of_the_stream_whatever_the_pieces() {
        let data: Vec<u8> = (0..3 * TAIL_KEPT + 12_345).map(|i| (i % 251) as u8).collect();
        for piece_len in [1000, 64 * 1024, TAIL_KEPT - 1, TAIL_KEPT + 7] {
            let mut tail = Tail::default();
            for piece in data.chunks(piece_len) {
                tail.push(Bytes::copy_from_slice(piece));
                assert!(
                    tail.len < TAIL_KEPT + piece_len,
                    "holds at most one piece beyond the tail"
                );
            }
            assert_eq!(
                tail.into_bytes(),
                &data[data.len() - TAIL_KEPT..],
                "pieces of {piece_len}"
            );
        }
        let mut short = Tail::default();
        short.push(Bytes::from_static(b"abc"));
        short.push(Bytes::from_static(b"de"));
        assert_eq!(short.into_bytes(), &b"abcde"[..]);
    }

    #[test]
    fn parts_fit_the_limit_for_any_size() {
        const MIB: u64 = 1024 * 1024;
        let small = PartPlan::new(DEFAULT_PART_SIZE, Some(100 * MIB));
        assert_eq!(small.size(1), DEFAULT_PART_SIZE);
        let tib = 1024 * 1024 * MIB;
        let known = PartPlan::new(DEFAULT_PART_SIZE, Some(tib));
        assert!(u64::from(MAX_PARTS) * known.size(1) as u64 >= tib);
        assert_eq!(known.size(1) % MIB as usize, 0);
        // Unknown length: the sum of the first 10,000 part sizes passes 1 TiB.
        let unknown = PartPlan::new(DEFAULT_PART_SIZE, None);
        let mut sum = 0u64;
        let mut parts = 0;
        while sum < tib {
            parts += 1;
            sum += unknown.size(parts) as u64;
        }
        assert!(parts <= MAX_PARTS, "1 TiB takes {parts} parts");
        assert_eq!(unknown.size(1), DEFAULT_PART_SIZE);
        assert_eq!(unknown.size(1001), 2 * DEFAULT_PART_SIZE);
    }
}
