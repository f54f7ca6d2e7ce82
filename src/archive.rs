//! Turning lists of file IDs into links: batches of archives, private files' own links,
//! and looking files up first when asked to.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::domain::batch::{self, MAX_BATCH};
use crate::domain::outcome::{Archive, Failure, FailureError, Outcome, PrivateLink};
use crate::wix::{CallContext, FileDescriptor, WixClient, WixError, WixErrorKind};

/// Most files one Get Files call describes.
pub const MAX_LOOKUP: usize = 100;

/// One planned archive: its files, and the folders they come from (backups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedArchive {
    pub file_ids: Vec<String>,
    pub folders: Vec<String>,
}

/// A private file that gets its own temporary link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateFile {
    pub file_id: String,
    pub display_name: Option<String>,
}

/// Calls kept under way at once beyond the free concurrency slots: enough to keep every
/// slot and the pacer busy (a call backing off before a retry holds no slot), few enough
/// that request bodies are built just before they are sent rather than all up front.
pub(crate) fn calls_ahead(client: &WixClient) -> usize {
    client.settings().concurrency.saturating_mul(2).max(4)
}

/// Runs `calls` with at most `ahead` under way at once (all through the client's shared
/// pacing) and returns their results in the order of `calls`. A slow call (retrying,
/// waiting out a `Retry-After`) holds up neither the others nor the start of later ones.
pub(crate) async fn in_order<F: Future>(ahead: usize, calls: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut done: Vec<(usize, F::Output)> = stream::iter(calls.enumerate())
        .map(|(i, call)| async move { (i, call.await) })
        .buffer_unordered(ahead.max(1))
        .collect()
        .await;
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}

/// Archives `ids` in consecutive batches of at most 1000.
pub async fn archive_ids<S: AsRef<str> + Serialize + Sync>(
    client: &WixClient,
    ctx: &CallContext,
    ids: &[S],
) -> Outcome {
    let results = in_order(
        calls_ahead(client),
        batch::batches(ids, MAX_BATCH).map(|chunk| async move {
            let result = client.generate_files_download_url(ctx, chunk).await;
            // The batch's own copy of its IDs is made here, while later calls wait for
            // their start slots, instead of for every batch before the first call.
            (chunk.iter().map(|id| id.as_ref().to_owned()).collect(), result)
        }),
    )
    .await;
    let mut outcome = Outcome::default();
    for (file_ids, result) in results {
        record(&mut outcome, file_ids, Vec::new(), result);
    }
    outcome
}

/// Makes one archive call per planned archive, all through the client's shared pacing.
pub async fn archive_planned(
    client: &WixClient,
    ctx: &CallContext,
    planned: Vec<PlannedArchive>,
    outcome: &mut Outcome,
) {
    let results = in_order(
        calls_ahead(client),
        planned.into_iter().map(|plan| async move {
            let result = client.generate_files_download_url(ctx, &plan.file_ids).await;
            (plan, result)
        }),
    )
    .await;
    for (plan, result) in results {
        record(outcome, plan.file_ids, plan.folders, result);
    }
}

/// One archive call's result in the outcome.
fn record(outcome: &mut Outcome, file_ids: Vec<String>, folders: Vec<String>, result: Result<String, WixError>) {
    match result {
        Ok(download_url) => outcome.archives.push(Archive {
            download_url,
            file_count: file_ids.len(),
            file_ids,
            folders,
        }),
        Err(e) => {
            tracing::warn!(files = file_ids.len(), code = ?e.kind, status = e.status, wix_request_id = e.wix_request_id.as_deref(), "an archive batch failed");
            outcome.fail(file_ids, e.to_failure());
        }
    }
}

/// Gives each private file its own temporary link.
pub async fn link_private(
    client: &WixClient,
    ctx: &CallContext,
    files: Vec<PrivateFile>,
    expiration_minutes: u32,
    outcome: &mut Outcome,
) {
    let results = in_order(
        calls_ahead(client),
        files.into_iter().map(|file| async move {
            let result = client
                .generate_file_download_url(
                    ctx,
                    &file.file_id,
                    file.display_name.as_deref().map(download_name),
                    expiration_minutes,
                )
                .await;
            (file, result)
        }),
    )
    .await;
    for (file, result) in results {
        match result {
            Ok(download_url) => outcome.private_files.push(PrivateLink {
                file_id: file.file_id,
                download_url,
                expires_at: expires_at(expiration_minutes),
            }),
            Err(e) => outcome.fail(vec![file.file_id], e.to_failure()),
        }
    }
}

/// Looks the files up first: private ones get their own links, public ones go into
/// archives, IDs Wix does not know fail with `WIX_REJECTED`.
pub async fn archive_resolving_private<S: AsRef<str>>(
    client: &WixClient,
    ctx: &CallContext,
    ids: &[S],
    expiration_minutes: u32,
) -> Outcome {
    let mut outcome = Outcome::default();
    let lookups = in_order(
        calls_ahead(client),
        batch::batches(ids, MAX_LOOKUP)
            .map(|chunk| lookup(client, ctx, chunk.iter().map(|id| id.as_ref().to_owned()).collect())),
    )
    .await;
    let mut found: HashMap<String, FileDescriptor> = HashMap::with_capacity(ids.len());
    for result in lookups {
        for f in result.files {
            found.insert(f.id.clone(), f);
        }
        outcome.failed.extend(result.failed);
    }
    let failed_lookup: std::collections::HashSet<&str> = outcome
        .failed
        .iter()
        .flat_map(|f| f.file_ids.iter().map(String::as_str))
        .collect();
    let mut public = Vec::new();
    let mut private = Vec::new();
    let mut unknown = Vec::new();
    for id in ids.iter().map(AsRef::as_ref) {
        if failed_lookup.contains(id) {
            continue;
        }
        match found.remove(id) {
            Some(f) if f.private => private.push(PrivateFile {
                file_id: id.to_owned(),
                display_name: f.display_name,
            }),
            Some(_) => public.push(id.to_owned()),
            None => unknown.push(id.to_owned()),
        }
    }
    drop(failed_lookup);
    outcome.fail(
        unknown,
        FailureError {
            code: crate::domain::outcome::FailureCode::WixRejected,
            status: None,
            message: "Wix did not return these files when asked for them".to_owned(),
            wix_request_id: None,
        },
    );
    let planned: Vec<PlannedArchive> = batch::batches(&public, MAX_BATCH)
        .map(|b| PlannedArchive {
            file_ids: b.to_vec(),
            folders: Vec::new(),
        })
        .collect();
    let mut archived = Outcome::default();
    let mut linked = Outcome::default();
    tokio::join!(
        archive_planned(client, ctx, planned, &mut archived),
        link_private(client, ctx, private, expiration_minutes, &mut linked)
    );
    outcome.archives = archived.archives;
    outcome.private_files = linked.private_files;
    outcome.failed.extend(archived.failed);
    outcome.failed.extend(linked.failed);
    outcome
}

struct Lookup {
    files: Vec<FileDescriptor>,
    failed: Vec<Failure>,
}

/// Get Files for one chunk. Wix refuses a whole chunk when one ID is unknown, so a refused
/// chunk is halved until the unknown IDs stand alone.
fn lookup<'a>(client: &'a WixClient, ctx: &'a CallContext, chunk: Vec<String>) -> BoxFuture<'a, Lookup> {
    async move {
        match client.get_files(ctx, &chunk).await {
            Ok(files) => Lookup {
                files,
                failed: Vec::new(),
            },
            Err(e) if is_unknown_file(&e) && chunk.len() > 1 => {
                let right = chunk[chunk.len() / 2..].to_vec();
                let mut left_chunk = chunk;
                left_chunk.truncate(left_chunk.len() / 2);
                let (mut left, right) = tokio::join!(lookup(client, ctx, left_chunk), lookup(client, ctx, right));
                left.files.extend(right.files);
                left.failed.extend(right.failed);
                left
            }
            Err(e) => Lookup {
                files: Vec::new(),
                failed: vec![Failure {
                    file_ids: chunk,
                    error: e.to_failure(),
                }],
            },
        }
    }
    .boxed()
}

fn is_unknown_file(e: &WixError) -> bool {
    e.kind == WixErrorKind::Rejected
        && (matches!(e.status, Some(404)) || e.app_code.as_deref() == Some("RESOURCE_NOT_FOUND"))
}

/// A display name Wix accepts as `downloadFileName` (at most 100 characters).
fn download_name(name: &str) -> &str {
    match name.char_indices().nth(100) {
        Some((cut, _)) => &name[..cut],
        None => name,
    }
}

/// When a link made now for `minutes` expires, as RFC 3339.
pub fn expires_at(minutes: u32) -> String {
    let at = SystemTime::now() + Duration::from_secs(u64::from(minutes) * 60);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_expiry() {
        assert_eq!(download_name("short.jpg"), "short.jpg");
        assert_eq!(download_name(&"é".repeat(150)).chars().count(), 100);
        let at = expires_at(60);
        assert!(at.ends_with('Z') && at.len() == 20, "{at}");
    }
}
