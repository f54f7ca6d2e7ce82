//! The owner's S3 bucket: every key under `<STORAGE_PREFIX><site>/`, objects written with
//! a CRC-32 checksum, the storage class and the KMS key, large ones streamed through a
//! multipart upload ([`upload`]) so memory does not grow with their size.

pub mod signing;
pub mod upload;

use std::time::Duration;
use tracing::Instrument;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, Delete, ObjectIdentifier, ServerSideEncryption};
use base64::Engine as _;
use bytes::Bytes;

/// Storage classes a backup may be written in.
pub const STORAGE_CLASSES: [&str; 4] = ["STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR"];

/// Where and how backups are written (from `STORAGE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    pub bucket: String,
    /// Key prefix; each site's keys are under `<prefix><site>/`.
    pub prefix: String,
    pub storage_class: String,
    pub kms_key_arn: Option<String>,
    /// Bytes of each part of a multipart upload ([`upload::DEFAULT_PART_SIZE`]; tests make
    /// it small to cross part boundaries with small files).
    pub part_size: usize,
}

/// A failed S3 operation, in words safe to log and report (no object contents, no links).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("S3 {operation} of {key} failed: {reason}")]
pub struct StoreError {
    pub operation: &'static str,
    pub key: String,
    pub reason: String,
    /// S3's error code, when S3 answered (`NoSuchKey`, `PreconditionFailed`, …).
    pub code: Option<String>,
}

/// What S3 holds for an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The object's CRC-32 as S3 reports it (base64; full-object, or composite `…-N`).
    pub crc32: Option<String>,
}

/// One site's part of the bucket.
#[derive(Clone, Debug)]
pub struct Store {
    s3: aws_sdk_s3::Client,
    settings: StorageSettings,
    /// `<prefix><site>/`.
    root: String,
}

/// Timeouts of S3 calls: a part of 8 MiB or more needs longer than the credentials read.
pub fn s3_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(120))
        .operation_timeout(Duration::from_secs(300))
        .build()
}

/// The S3 client over the shared SDK configuration. A custom endpoint (a local moto) is
/// addressed path-style, as bucket subdomains of `localhost` do not resolve. Checksummed
/// uploads over HTTPS are not hashed for the signature ([`signing`]).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(sdk)
        .timeout_config(s3_timeouts())
        .interceptor(signing::UnsignedOverTls);
    if sdk.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

impl Store {
    /// The store of `site` (a site ID, or an app's instance ID).
    pub fn new(s3: aws_sdk_s3::Client, settings: StorageSettings, site: &str) -> Self {
        let root = format!("{}{}/", settings.prefix, site);
        Store { s3, settings, root }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    /// `<prefix><site>/`, the start of every key of this site.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The full key of `relative` (under the site's root).
    pub fn key(&self, relative: &str) -> String {
        format!("{}{relative}", self.root)
    }

    /// `s3://bucket/key`.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.settings.bucket)
    }

    /// The S3 client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// The settings.
    pub fn settings(&self) -> &StorageSettings {
        &self.settings
    }

    /// Writes a small object in one request, with its CRC-32. Returns the checksum S3 keeps.
    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<String, StoreError> {
        let crc = crc32_base64(crc32fast::hash(&body));
        let len = body.len() as u64;
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .checksum_crc32(&crc)
            .storage_class(self.settings.storage_class.as_str().into())
            .body(ByteStream::from(body));
        if let Some(kms) = &self.settings.kms_key_arn {
            put = put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        put.send()
            .instrument(tracing::info_span!("s3_upload", kind = "put", bytes = len))
            .await
            .map_err(|e| store_error("PutObject", key, &e))?;
        Ok(crc)
    }

    /// Writes `body` only if nothing is at `key` yet (`If-None-Match: *`). False when the
    /// key was already taken.
    pub async fn put_if_absent(&self, key: &str, body: Bytes, content_type: &str) -> Result<bool, StoreError> {
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .content_type(content_type)
            .if_none_match("*")
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body));
        if let Some(kms) = &self.settings.kms_key_arn {
            put = put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("PreconditionFailed") => Ok(false),
            Err(e) => Err(store_error("PutObject", key, &e)),
        }
    }

    /// The whole object, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.s3.get_object().bucket(&self.settings.bucket).key(key).send().await {
            Ok(out) => {
                let body = out.body.collect().await.map_err(|e| StoreError {
                    operation: "GetObject",
                    key: key.to_owned(),
                    reason: format!("the body could not be read: {e}"),
                    code: None,
                })?;
                Ok(Some(body.into_bytes()))
            }
            Err(e) if e.code() == Some("NoSuchKey") => Ok(None),
            Err(e) => Err(store_error("GetObject", key, &e)),
        }
    }

    /// The bytes `start..end` of an object (`end` exclusive, clamped by S3 to its size).
    pub async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes, StoreError> {
        if end <= start {
            return Ok(Bytes::new());
        }
        self.ranged(key, format!("bytes={start}-{}", end - 1))
            .await
            .map(|(b, _)| b)
    }

    /// The last `len` bytes of an object, and its size.
    pub async fn get_tail(&self, key: &str, len: u64) -> Result<(Bytes, u64), StoreError> {
        self.ranged(key, format!("bytes=-{len}")).await
    }

    async fn ranged(&self, key: &str, range: String) -> Result<(Bytes, u64), StoreError> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .range(range)
            .send()
            .await
            .map_err(|e| store_error("GetObject", key, &e))?;
        let total = out
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse().ok())
            .or_else(|| out.content_length().and_then(|l| u64::try_from(l).ok()))
            .unwrap_or(0);
        let body = out.body.collect().await.map_err(|e| StoreError {
            operation: "GetObject",
            key: key.to_owned(),
            reason: format!("the body could not be read: {e}"),
            code: None,
        })?;
        Ok((body.into_bytes(), total))
    }

    /// The bytes `start..end` of an object (the whole object for `None`), as a stream.
    pub async fn get_stream(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes, String>> + Unpin + use<>, StoreError> {
        let mut get = self.s3.get_object().bucket(&self.settings.bucket).key(key);
        if let Some((start, end)) = range {
            if end <= start {
                return Err(StoreError {
                    operation: "GetObject",
                    key: key.to_owned(),
                    reason: "an empty range".to_owned(),
                    code: None,
                });
            }
            get = get.range(format!("bytes={start}-{}", end - 1));
        }
        let out = get.send().await.map_err(|e| store_error("GetObject", key, &e))?;
        Ok(Box::pin(futures_util::stream::unfold(
            out.body,
            |mut body| async move {
                body.next()
                    .await
                    .map(|chunk| (chunk.map_err(|e| format!("the S3 body broke off: {e}")), body))
            },
        )))
    }

    /// A presigned GET of `key`, good for `expires`.
    pub async fn presign_get(&self, key: &str, expires: Duration) -> Result<crate::domain::link::Link, StoreError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires).map_err(|e| StoreError {
            operation: "presign GetObject",
            key: key.to_owned(),
            reason: e.to_string(),
            code: None,
        })?;
        let request = self
            .s3
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| store_error("presign GetObject", key, &e))?;
        Ok(crate::domain::link::Link::new(request.uri()))
    }

    /// The object's size and checksum, or `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        match self
            .s3
            .head_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().and_then(|l| u64::try_from(l).ok()).unwrap_or(0),
                crc32: out.checksum_crc32().map(str::to_owned),
            })),
            Err(e) if e.code() == Some("NotFound") || e.code() == Some("NoSuchKey") || is_404(&e) => Ok(None),
            Err(e) => Err(store_error("HeadObject", key, &e)),
        }
    }

    /// Every key under `prefix` (a full key prefix), in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_error("ListObjectsV2", prefix, &e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        Ok(keys)
    }

    /// Deletes `keys` (at most 1000 a request).
    pub async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        for chunk in keys.chunks(1000) {
            let objects: Vec<ObjectIdentifier> = chunk
                .iter()
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError {
                    operation: "DeleteObjects",
                    key: chunk[0].clone(),
                    reason: e.to_string(),
                    code: None,
                })?;
            let out = self
                .s3
                .delete_objects()
                .bucket(&self.settings.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| store_error("DeleteObjects", &chunk[0], &e))?;
            if let Some(err) = out.errors().first() {
                return Err(StoreError {
                    operation: "DeleteObjects",
                    key: err.key().unwrap_or_default().to_owned(),
                    reason: err.message().unwrap_or("refused").to_owned(),
                    code: err.code().map(str::to_owned),
                });
            }
        }
        Ok(())
    }
}

/// S3's form of a CRC-32: big-endian bytes, base64.
pub fn crc32_base64(crc: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

fn is_404<E, R: HasStatus>(e: &SdkError<E, R>) -> bool {
    e.raw_response().is_some_and(|r| r.status_code() == 404)
}

/// The HTTP status of a raw response.
trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

pub(crate) fn store_error<E: ProvideErrorMetadata, R>(
    operation: &'static str,
    key: &str,
    e: &SdkError<E, R>,
) -> StoreError {
    let reason = crate::aws::describe(e);
    StoreError {
        operation,
        key: key.to_owned(),
        reason,
        code: e.code().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_in_s3_form() {
        // S3's CRC32 of "hello": the IEEE CRC 0x3610a686, big-endian, base64.
        assert_eq!(crc32_base64(crc32fast::hash(b"hello")), "NhCmhg==");
    }
}
