//! The batch step: one [`BatchItem`] → its archive link → the archive streamed into S3 →
//! its zip directory read back and matched to the batch → one manifest line per file.
//! Private files: each link is asked for and downloaded right away into its own object,
//! whose length must be the file's size. A pure function of the item plus Wix and S3: the
//! one-invocation backup and a job's workers run it the same way.

use std::collections::HashMap;

use super::download::{fetch_into, FetchError};
use super::manifest::{LineStatus, ManifestLine};
use super::matching::{match_entries, FileToMatch, Match};
use super::steps::{BatchItem, BatchKind, BatchOutcome, FileMeta, StoredObject};
use crate::archive::{self, PrivateFile};
use crate::domain::link::Link;
use crate::storage::upload::Uploaded;
use crate::storage::{Store, StoreError};
use crate::wix::{CallContext, WixClient};
use crate::zipdir::{self, Entry, Located, ZipError};

/// Downloads of one object: the first, and fresh links after a failed one.
const DOWNLOAD_TRIES: u32 = 3;

/// What a batch step works with.
pub struct BatchEnv<'a> {
    pub wix: &'a WixClient,
    pub ctx: &'a CallContext,
    pub store: &'a Store,
    pub http: &'a reqwest::Client,
    pub expiration_minutes: u32,
}

/// Runs one batch. Work cut off by the invocation's deadline is `DEADLINE`, and its
/// upload is aborted.
pub async fn run(env: &BatchEnv<'_>, item: &BatchItem) -> BatchOutcome {
    use tracing::Instrument;
    let span = tracing::info_span!("batch", batch = item.number, files = item.files.len() as u64);
    run_unspanned(env, item).instrument(span).await
}

async fn run_unspanned(env: &BatchEnv<'_>, item: &BatchItem) -> BatchOutcome {
    let work = async {
        match item.kind {
            BatchKind::Archive => archive_batch(env, item).await,
            BatchKind::Private => private_batch(env, item).await,
        }
    };
    let outcome = match env.ctx.deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await.ok(),
        None => Some(work.await),
    };
    let mut outcome = outcome.unwrap_or_else(|| BatchOutcome {
        number: item.number,
        lines: Vec::new(),
        ..BatchOutcome::default()
    });
    // Every file of the batch has exactly one line: those the work did not reach are DEADLINE.
    let done: std::collections::HashSet<&str> = outcome.lines.iter().map(|l| l.file_id.as_str()).collect();
    let missing: Vec<ManifestLine> = item
        .files
        .iter()
        .filter(|f| !done.contains(f.file_id.as_str()))
        .map(|f| f.failed("DEADLINE", "cut off: the invocation was about to time out"))
        .collect();
    outcome.lines.extend(missing);
    outcome
}

async fn archive_batch(env: &BatchEnv<'_>, item: &BatchItem) -> BatchOutcome {
    let mut outcome = BatchOutcome {
        number: item.number,
        ..BatchOutcome::default()
    };
    let by_id: HashMap<&str, &FileMeta> = item.files.iter().map(|f| (f.file_id.as_str(), f)).collect();
    let ids: Vec<String> = item.files.iter().map(|f| f.file_id.clone()).collect();
    let result = archive::archive_batch(env.wix, env.ctx, ids).await;
    for failure in &result.failed {
        for id in &failure.file_ids {
            if let Some(f) = by_id.get(id.as_str()) {
                outcome.lines.push(f.failed_with(&failure.error));
            }
        }
    }
    for (piece, (ids, link)) in result.archives.into_iter().enumerate() {
        let files: Vec<&FileMeta> = ids.iter().filter_map(|id| by_id.get(id.as_str()).copied()).collect();
        let key = if piece == 0 {
            env.store
                .key(&format!("backups/{}/archives/{:05}.zip", item.backup_id, item.number))
        } else {
            env.store.key(&format!(
                "backups/{}/archives/{:05}-{}.zip",
                item.backup_id,
                item.number,
                piece + 1
            ))
        };
        let stored = store_archive(env, &item.backup_id, &key, &files, link).await;
        if let Some(object) = stored.object {
            outcome.stored_bytes += object.size;
            outcome.objects.push(object);
        }
        outcome.lines.extend(stored.lines);
    }
    outcome
}

struct Stored {
    lines: Vec<ManifestLine>,
    object: Option<StoredObject>,
}

/// Downloads one archive into `key`, reads its directory back and matches it to `files`.
/// A broken download is tried again with a fresh link; an unreadable zip once more.
async fn store_archive(env: &BatchEnv<'_>, backup_id: &str, key: &str, files: &[&FileMeta], first: Link) -> Stored {
    let ids: Vec<&str> = files.iter().map(|f| f.file_id.as_str()).collect();
    let all_failed = |code: &str, message: String| Stored {
        lines: files.iter().map(|f| f.failed(code, message.clone())).collect(),
        object: None,
    };
    let mut link = first;
    let mut downloads = 0;
    let mut unreadable_retried = false;
    loop {
        downloads += 1;
        let started = std::time::Instant::now();
        let uploaded = match fetch_into(env.http, env.store, key, &link, "application/zip").await {
            Ok(uploaded) => {
                tracing::debug!(
                    object = key,
                    bytes = uploaded.size,
                    parts = uploaded.parts,
                    copy_ms = started.elapsed().as_millis() as u64,
                    "archive copied into S3"
                );
                uploaded
            }
            Err(e) if e.is_storage() => return all_failed("STORAGE_FAILED", e.to_string()),
            Err(e) => {
                tracing::warn!(error = %e, try_no = downloads, "an archive download failed");
                if downloads >= DOWNLOAD_TRIES {
                    return all_failed("WIX_UNAVAILABLE", format!("{e} ({downloads} tries)"));
                }
                match env.wix.generate_files_download_url(env.ctx, &ids).await {
                    Ok(fresh) => {
                        link = fresh;
                        continue;
                    }
                    Err(w) => {
                        let f = w.to_failure();
                        return Stored {
                            lines: files.iter().map(|file| file.failed_with(&f)).collect(),
                            object: None,
                        };
                    }
                }
            }
        };
        match read_uploaded_directory(env.store, key, &uploaded).await {
            Ok(entries) => return matched(backup_id, key, files, &entries, &uploaded),
            Err(DirectoryError::Storage(e)) => return all_failed("STORAGE_FAILED", e.to_string()),
            Err(DirectoryError::Zip(e)) => {
                tracing::warn!(error = %e, retried = unreadable_retried, "what Wix served is not a readable zip");
                if let Err(d) = env.store.delete(&[key.to_owned()]).await {
                    tracing::warn!(error = %d, "could not delete an unreadable archive");
                }
                if unreadable_retried {
                    return all_failed(
                        "ARCHIVE_UNREADABLE",
                        format!("what Wix served is not a readable zip: {e}"),
                    );
                }
                unreadable_retried = true;
                downloads = 0;
                match env.wix.generate_files_download_url(env.ctx, &ids).await {
                    Ok(fresh) => link = fresh,
                    Err(w) => {
                        let f = w.to_failure();
                        return Stored {
                            lines: files.iter().map(|file| file.failed_with(&f)).collect(),
                            object: None,
                        };
                    }
                }
            }
        }
    }
}

/// The lines of an archive whose directory was read: `STORED` for each file found with its
/// size, `ARCHIVE_INCOMPLETE` for the rest.
fn matched(backup_id: &str, key: &str, files: &[&FileMeta], entries: &[Entry], uploaded: &Uploaded) -> Stored {
    let to_match: Vec<FileToMatch<'_>> = files
        .iter()
        .map(|f| FileToMatch {
            id: &f.file_id,
            display_name: &f.display_name,
            folder_path: &f.folder_path,
            size: f.size_in_bytes,
        })
        .collect();
    let matches = match_entries(&to_match, entries);
    let mut lines = Vec::with_capacity(files.len());
    let mut stored_ids = Vec::new();
    for (file, m) in files.iter().zip(matches) {
        lines.push(match m {
            Match::Entry(i) => {
                let entry = &entries[i];
                let mut line = file.line(LineStatus::Stored);
                line.backup_id = Some(backup_id.to_owned());
                line.object = Some(key.to_owned());
                line.entry = Some(entry.name.clone());
                line.crc32 = Some(format!("{:08x}", entry.crc32));
                line.object_checksum = Some(uploaded.checksum.clone());
                if line.size_in_bytes.is_none() {
                    line.size_in_bytes = Some(entry.size);
                }
                stored_ids.push(file.file_id.clone());
                line
            }
            Match::Missing => file.failed("ARCHIVE_INCOMPLETE", "the archive Wix served does not hold this file"),
            Match::WrongSize { found, expected } => file.failed(
                "ARCHIVE_INCOMPLETE",
                format!("the archive holds this file with {found} bytes; Wix reported {expected}"),
            ),
        });
    }
    Stored {
        lines,
        object: Some(StoredObject {
            key: key.to_owned(),
            size: uploaded.size,
            file_ids: stored_ids,
        }),
    }
}

/// Why a stored archive's directory could not be read.
#[derive(Debug)]
pub enum DirectoryError {
    Zip(ZipError),
    Storage(StoreError),
}

/// The entries of the zip stored at `key` (of `size` bytes), from ranged reads of its tail
/// (and of its directory, when that is larger than the tail).
pub async fn read_directory(store: &Store, key: &str, size: u64) -> Result<Vec<Entry>, DirectoryError> {
    let (tail, total) = store
        .get_tail(key, zipdir::TAIL_LEN.min(size.max(1)))
        .await
        .map_err(DirectoryError::Storage)?;
    let total = if total == 0 { size } else { total };
    directory_from_tail(store, key, tail, total).await
}

/// The directory of an archive just uploaded, from the end of the stream the upload kept:
/// S3 checked the object's full CRC-32 against what streamed, so the bytes are the stored
/// ones. Only a directory longer than the kept tail is read back from S3.
pub async fn read_uploaded_directory(
    store: &Store,
    key: &str,
    uploaded: &Uploaded,
) -> Result<Vec<Entry>, DirectoryError> {
    directory_from_tail(store, key, uploaded.tail.clone(), uploaded.size).await
}

async fn directory_from_tail(
    store: &Store,
    key: &str,
    tail: bytes::Bytes,
    total: u64,
) -> Result<Vec<Entry>, DirectoryError> {
    let tail_start = total
        .checked_sub(tail.len() as u64)
        .ok_or(DirectoryError::Zip(ZipError::Damaged(
            "the tail is longer than the archive",
        )))?;
    // The end record is looked for where a zip may put it (its last 64 KiB and a bit); a
    // longer kept tail only spares reading the directory back.
    let search = tail.len().saturating_sub(zipdir::TAIL_LEN as usize);
    let directory = match zipdir::locate(&tail[search..], total).map_err(DirectoryError::Zip)? {
        Located::Directory(d) => d,
        Located::Zip64RecordAt(at) => {
            let record = match at.checked_sub(tail_start) {
                Some(rel) if rel as usize + 56 <= tail.len() => tail.slice(rel as usize..rel as usize + 56),
                _ => store
                    .get_range(key, at, at + 56)
                    .await
                    .map_err(DirectoryError::Storage)?,
            };
            zipdir::parse_zip64_record(&record).map_err(DirectoryError::Zip)?
        }
    };
    zipdir::check_range(directory.offset, directory.size, total).map_err(DirectoryError::Zip)?;
    let bytes = if directory.offset >= tail_start {
        let from = (directory.offset - tail_start) as usize;
        tail.slice(from..from + directory.size as usize)
    } else {
        store
            .get_range(key, directory.offset, directory.offset + directory.size)
            .await
            .map_err(DirectoryError::Storage)?
    };
    zipdir::parse_directory(&bytes, &directory).map_err(DirectoryError::Zip)
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectoryError::Zip(e) => e.fmt(f),
            DirectoryError::Storage(e) => e.fmt(f),
        }
    }
}

async fn private_batch(env: &BatchEnv<'_>, item: &BatchItem) -> BatchOutcome {
    let mut outcome = BatchOutcome {
        number: item.number,
        ..BatchOutcome::default()
    };
    let results = archive::in_order(
        archive::calls_ahead(env.wix),
        item.files.iter().map(|f| store_private(env, &item.backup_id, f)),
    )
    .await;
    for stored in results {
        if let Some(object) = stored.object {
            outcome.stored_bytes += object.size;
            outcome.objects.push(object);
        }
        outcome.lines.extend(stored.lines);
    }
    outcome
}

/// Asks for one private file's link and downloads it at once into its own object, whose
/// length must be the file's size; a broken download gets a fresh link.
async fn store_private(env: &BatchEnv<'_>, backup_id: &str, file: &FileMeta) -> Stored {
    let key = env.store.key(&format!(
        "backups/{backup_id}/private/{}/{}",
        file.file_id,
        object_name(&file.display_name, &file.file_id)
    ));
    let failed = |line: ManifestLine| Stored {
        lines: vec![line],
        object: None,
    };
    let private = PrivateFile {
        file_id: file.file_id.clone(),
        display_name: Some(file.display_name.clone()).filter(|n| !n.is_empty()),
    };
    for try_no in 1..=DOWNLOAD_TRIES {
        let link = match archive::link_one(env.wix, env.ctx, &private, env.expiration_minutes).await {
            Ok(link) => link.download_url,
            Err(e) => return failed(file.failed_with(&e.to_failure())),
        };
        let uploaded = match fetch_into(env.http, env.store, &key, &link, "application/octet-stream").await {
            Ok(uploaded) => uploaded,
            Err(e @ FetchError::Upload(crate::storage::upload::UploadError::Storage(_))) => {
                return failed(file.failed("STORAGE_FAILED", e.to_string()))
            }
            Err(e) => {
                tracing::warn!(error = %e, try_no, "a private file's download failed");
                if try_no == DOWNLOAD_TRIES {
                    return failed(file.failed("WIX_UNAVAILABLE", format!("{e} ({try_no} tries)")));
                }
                continue;
            }
        };
        if let Some(expected) = file.size_in_bytes.filter(|s| *s != uploaded.size) {
            let _ = env.store.delete(std::slice::from_ref(&key)).await;
            return failed(file.failed(
                "WIX_INVALID_RESPONSE",
                format!(
                    "Wix served {} bytes for this file; it reported {expected}",
                    uploaded.size
                ),
            ));
        }
        let mut line = file.line(LineStatus::Stored);
        line.backup_id = Some(backup_id.to_owned());
        line.object = Some(key.clone());
        line.crc32 = Some(format!("{:08x}", uploaded.crc32));
        line.object_checksum = Some(uploaded.checksum.clone());
        line.size_in_bytes = Some(uploaded.size);
        return Stored {
            lines: vec![line],
            object: Some(StoredObject {
                key,
                size: uploaded.size,
                file_ids: vec![file.file_id.clone()],
            }),
        };
    }
    failed(file.failed("WIX_UNAVAILABLE", "the download failed"))
}

/// A display name usable as the last segment of a key (no `/`, no control characters,
/// at most 200 bytes); the file ID when nothing is left.
fn object_name(display_name: &str, file_id: &str) -> String {
    let cleaned: String = display_name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut name = cleaned.trim().trim_matches('.').to_owned();
    while name.len() > 200 {
        name.pop();
    }
    if name.is_empty() {
        file_id.to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        assert_eq!(object_name("photo.jpg", "id"), "photo.jpg");
        assert_eq!(object_name("a/b\\c\n.jpg", "id"), "a_b_c_.jpg");
        assert_eq!(object_name("  ..  ", "id"), "id");
        assert!(object_name(&"é".repeat(300), "id").len() <= 200);
    }
}
