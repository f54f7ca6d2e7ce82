//! Turning lists of file IDs into links: batches of archives (with the files Wix refuses
//! isolated, so one stale ID does not cost the rest of its batch their link), private
//! files' own links, and looking files up first when asked to.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, SystemTime};

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{self, FuturesUnordered, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::domain::batch::{self, MAX_BATCH};
use crate::domain::link::Link;
use crate::domain::outcome::{Archive, Failure, FailureCode, FailureError, Outcome, PrivateLink};
use crate::wix::{CallContext, FileDescriptor, WixClient, WixError};

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
    let done = try_in_order(
        ahead,
        calls.map(|call| async move { Ok::<_, std::convert::Infallible>(call.await) }),
    )
    .await;
    match done {
        Ok(results) => results,
        Err(never) => match never {},
    }
}

/// [`in_order`] for calls that may fail: the first error ends the run (calls not yet started
/// are not started), otherwise every call's value in the order of `calls`.
pub(crate) async fn try_in_order<T, E, F: Future<Output = Result<T, E>>>(
    ahead: usize,
    calls: impl Iterator<Item = F>,
) -> Result<Vec<T>, E> {
    let mut done: Vec<(usize, T)> = stream::iter(calls.enumerate())
        .map(|(i, call)| async move { call.await.map(|value| (i, value)) })
        .buffer_unordered(ahead.max(1))
        .try_collect()
        .await?;
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, value)| value).collect())
}

/// What one batch came to: its archives (usually one) and the files that got none.
#[derive(Debug, Default)]
pub struct BatchResult {
    pub archives: Vec<(Vec<String>, Link)>,
    pub failed: Vec<Failure>,
}

impl BatchResult {
    fn failed(file_ids: Vec<String>, error: FailureError) -> Self {
        BatchResult {
            archives: Vec::new(),
            failed: vec![Failure { file_ids, error }],
        }
    }

    fn merge(&mut self, other: BatchResult) {
        self.archives.extend(other.archives);
        self.failed.extend(other.failed);
    }

    /// Adds this batch's archives (each with `folders`) and failures to `outcome`.
    pub fn record(self, outcome: &mut Outcome, folders: &[String]) {
        for (file_ids, download_url) in self.archives {
            outcome.archives.push(Archive {
                download_url,
                file_count: file_ids.len(),
                file_ids,
                folders: folders.to_vec(),
            });
        }
        for failure in self.failed {
            tracing::warn!(
                files = failure.file_ids.len(),
                code = ?failure.error.code,
                status = failure.error.status,
                wix_request_id = failure.error.wix_request_id.as_deref(),
                "files of an archive batch got no link"
            );
            outcome.failed.push(failure);
        }
    }
}

/// One archive call for `file_ids` (1 to 1000). When Wix refuses some of the files
/// (unknown, or private), those are isolated and the rest still get their archive: the IDs
/// Wix names are taken out at once; when it names none, the batch is halved until each
/// refused file stands alone (about 2·log2(n) extra calls per refused file), and the good
/// files are then packed into one archive again with one more call.
pub async fn archive_batch(client: &WixClient, ctx: &CallContext, file_ids: Vec<String>) -> BatchResult {
    let mut result = isolate(client, ctx, file_ids).await;
    if result.archives.len() > 1 {
        let good: Vec<String> = result
            .archives
            .iter()
            .flat_map(|(ids, _)| ids.iter().cloned())
            .collect();
        match client.generate_files_download_url(ctx, &good).await {
            Ok(link) => result.archives = vec![(good, link)],
            Err(e) => tracing::info!(
                code = ?e.kind,
                archives = result.archives.len(),
                "the good files of a batch could not be packed into one archive again; keeping the pieces"
            ),
        }
    }
    result
}

fn isolate<'a>(client: &'a WixClient, ctx: &'a CallContext, file_ids: Vec<String>) -> BoxFuture<'a, BatchResult> {
    async move {
        let error = match client.generate_files_download_url(ctx, &file_ids).await {
            Ok(link) => {
                return BatchResult {
                    archives: vec![(file_ids, link)],
                    failed: Vec::new(),
                }
            }
            Err(e) => e,
        };
        if error.is_nothing_to_download() {
            let mut failure = error.to_failure();
            failure.message = format!(
                "{}: Wix has none of these files to put into an archive (unknown, deleted or an unsupported type)",
                failure.message
            );
            return BatchResult::failed(file_ids, failure);
        }
        if !(error.is_unknown_file() || error.is_private_refusal()) || file_ids.is_empty() {
            return BatchResult::failed(file_ids, error.to_failure());
        }
        let named = named_files(&error, &file_ids);
        if !named.is_empty() {
            let (refused, rest): (Vec<String>, Vec<String>) = file_ids.into_iter().partition(|id| named.contains(id));
            let mut result = BatchResult::failed(refused, refusal(&error));
            if !rest.is_empty() {
                result.merge(isolate(client, ctx, rest).await);
            }
            return result;
        }
        if file_ids.len() == 1 {
            return BatchResult::failed(file_ids, refusal(&error));
        }
        let mut left = file_ids;
        let right = left.split_off(left.len() / 2);
        let (mut result, right) = tokio::join!(isolate(client, ctx, left), isolate(client, ctx, right));
        result.merge(right);
        result
    }
    .boxed()
}

/// The batch's files that Wix's error names, by ID or by position in the request.
fn named_files(error: &WixError, file_ids: &[String]) -> HashSet<String> {
    let mut named: HashSet<String> = file_ids
        .iter()
        .filter(|id| error.named.file_ids.iter().any(|n| n == *id))
        .cloned()
        .collect();
    named.extend(error.named.positions.iter().filter_map(|&i| file_ids.get(i)).cloned());
    named
}

/// The failure of files Wix refused in an archive.
fn refusal(error: &WixError) -> FailureError {
    let mut failure = error.to_failure();
    if error.is_private_refusal() {
        failure.message = format!(
            "{}: Wix does not put private files into archives (ask with resolvePrivate: true for their own links)",
            failure.message
        );
    }
    failure
}

/// Archives `ids` in consecutive batches of at most 1000.
pub async fn archive_ids<S: AsRef<str> + Serialize + Sync>(
    client: &WixClient,
    ctx: &CallContext,
    ids: &[S],
) -> Outcome {
    let results = in_order(
        calls_ahead(client),
        batch::batches(ids, MAX_BATCH).map(|chunk| {
            // The batch's own copy of its IDs is made here, while later calls wait for
            // their start slots, instead of for every batch before the first call.
            async move { archive_batch(client, ctx, chunk.iter().map(|id| id.as_ref().to_owned()).collect()).await }
        }),
    )
    .await;
    let mut outcome = Outcome::default();
    for result in results {
        result.record(&mut outcome, &[]);
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
            let result = archive_batch(client, ctx, plan.file_ids).await;
            (plan.folders, result)
        }),
    )
    .await;
    for (folders, result) in results {
        result.record(outcome, &folders);
    }
}

/// One private file's temporary link, with its expiry stamped from when it was asked for.
pub async fn link_one(
    client: &WixClient,
    ctx: &CallContext,
    file: &PrivateFile,
    expiration_minutes: u32,
) -> Result<PrivateLink, WixError> {
    let (download_url, asked_at) = client
        .generate_file_download_url(
            ctx,
            &file.file_id,
            file.display_name.as_deref().map(download_name),
            expiration_minutes,
        )
        .await?;
    Ok(PrivateLink {
        file_id: file.file_id.clone(),
        download_url,
        expires_at: expires_at(asked_at, expiration_minutes),
    })
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
            let result = link_one(client, ctx, &file, expiration_minutes).await;
            (file, result)
        }),
    )
    .await;
    for (file, result) in results {
        match result {
            Ok(link) => outcome.private_files.push(link),
            Err(e) => outcome.fail(vec![file.file_id], e.to_failure()),
        }
    }
}

/// What the pipeline of [`archive_resolving_private`] has under way.
enum Work {
    Archive(usize, BatchResult),
    Private(usize, String, Result<PrivateLink, WixError>),
}

/// Looks the files up first: private ones get their own links, public ones go into
/// archives, IDs Wix does not know fail with `WIX_REJECTED`. The steps overlap: an archive
/// call starts as soon as the lookups have found its 1000 public files, and a private
/// link as soon as its file is found, so nothing waits for the last lookup.
pub async fn archive_resolving_private<S: AsRef<str>>(
    client: &WixClient,
    ctx: &CallContext,
    ids: &[S],
    expiration_minutes: u32,
) -> Outcome {
    let mut outcome = Outcome::default();
    let lookups = stream::iter(batch::batches(ids, MAX_LOOKUP))
        .map(|chunk| {
            let chunk: Vec<String> = chunk.iter().map(|id| id.as_ref().to_owned()).collect();
            lookup(client, ctx, chunk.clone()).map(move |result| (chunk, result))
        })
        .buffered(calls_ahead(client));
    futures_util::pin_mut!(lookups);
    let mut work: FuturesUnordered<BoxFuture<'_, Work>> = FuturesUnordered::new();
    let mut public: Vec<String> = Vec::with_capacity(MAX_BATCH);
    let (mut archives_started, mut privates_started) = (0usize, 0usize);
    let mut archived: Vec<(usize, BatchResult)> = Vec::new();
    let mut linked: Vec<(usize, String, Result<PrivateLink, WixError>)> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut lookups_done = false;
    let start_archive = |n: usize, file_ids: Vec<String>| -> BoxFuture<'_, Work> {
        async move { Work::Archive(n, archive_batch(client, ctx, file_ids).await) }.boxed()
    };
    loop {
        tokio::select! {
            next = lookups.next(), if !lookups_done => match next {
                Some((chunk, result)) => {
                    let failed: HashSet<&str> = result.failed.iter().flat_map(|f| f.file_ids.iter().map(String::as_str)).collect();
                    let mut found: HashMap<String, FileDescriptor> = result.files.into_iter().map(|f| (f.id.clone(), f)).collect();
                    for id in chunk {
                        if failed.contains(id.as_str()) {
                            continue;
                        }
                        match found.remove(&id) {
                            Some(f) if f.private => {
                                let file = PrivateFile { file_id: id, display_name: f.display_name };
                                let n = privates_started;
                                privates_started += 1;
                                work.push(async move {
                                    let result = link_one(client, ctx, &file, expiration_minutes).await;
                                    Work::Private(n, file.file_id, result)
                                }.boxed());
                            }
                            Some(_) => {
                                public.push(id);
                                if public.len() == MAX_BATCH {
                                    work.push(start_archive(archives_started, std::mem::take(&mut public)));
                                    archives_started += 1;
                                }
                            }
                            None => unknown.push(id),
                        }
                    }
                    drop(failed);
                    outcome.failed.extend(result.failed);
                }
                None => {
                    lookups_done = true;
                    if !public.is_empty() {
                        work.push(start_archive(archives_started, std::mem::take(&mut public)));
                        archives_started += 1;
                    }
                }
            },
            Some(done) = work.next(), if !work.is_empty() => match done {
                Work::Archive(n, result) => archived.push((n, result)),
                Work::Private(n, id, result) => linked.push((n, id, result)),
            },
            else => break,
        }
    }
    archived.sort_unstable_by_key(|(n, _)| *n);
    for (_, result) in archived {
        result.record(&mut outcome, &[]);
    }
    linked.sort_unstable_by_key(|(n, _, _)| *n);
    for (_, id, result) in linked {
        match result {
            Ok(link) => outcome.private_files.push(link),
            Err(e) => outcome.fail(vec![id], e.to_failure()),
        }
    }
    outcome.fail(
        unknown,
        FailureError {
            code: FailureCode::WixRejected,
            status: None,
            message: "Wix did not return these files when asked for them".to_owned(),
            wix_request_id: None,
        },
    );
    outcome
}

/// What looking files up found: public ones (in request order), private ones, and the
/// failures (unknown IDs, failed lookups).
#[derive(Debug, Default)]
pub struct LookedUp {
    pub public: Vec<String>,
    pub private: Vec<PrivateFile>,
    pub failed: Vec<Failure>,
}

/// Looks `ids` up (Get Files, 100 at a time) without archiving anything.
pub async fn look_up<S: AsRef<str>>(client: &WixClient, ctx: &CallContext, ids: &[S]) -> LookedUp {
    let lookups = in_order(
        calls_ahead(client),
        batch::batches(ids, MAX_LOOKUP)
            .map(|chunk| lookup(client, ctx, chunk.iter().map(|id| id.as_ref().to_owned()).collect())),
    )
    .await;
    let mut out = LookedUp::default();
    let mut found: HashMap<String, FileDescriptor> = HashMap::new();
    for result in lookups {
        found.extend(result.files.into_iter().map(|f| (f.id.clone(), f)));
        out.failed.extend(result.failed);
    }
    let failed: HashSet<String> = out.failed.iter().flat_map(|f| f.file_ids.iter().cloned()).collect();
    let mut unknown = Vec::new();
    for id in ids.iter().map(AsRef::as_ref) {
        if failed.contains(id) {
            continue;
        }
        match found.remove(id) {
            Some(f) if f.private => out.private.push(PrivateFile {
                file_id: id.to_owned(),
                display_name: f.display_name,
            }),
            Some(_) => out.public.push(id.to_owned()),
            None => unknown.push(id.to_owned()),
        }
    }
    if !unknown.is_empty() {
        out.failed.push(Failure {
            file_ids: unknown,
            error: FailureError {
                code: FailureCode::WixRejected,
                status: None,
                message: "Wix did not return these files when asked for them".to_owned(),
                wix_request_id: None,
            },
        });
    }
    out
}

struct Lookup {
    files: Vec<FileDescriptor>,
    failed: Vec<Failure>,
}

/// Get Files for one chunk. Wix refuses a whole chunk when one ID is unknown, so the IDs it
/// names are dropped, and a refusal that names none is halved until the unknown IDs stand
/// alone.
fn lookup<'a>(client: &'a WixClient, ctx: &'a CallContext, chunk: Vec<String>) -> BoxFuture<'a, Lookup> {
    async move {
        match client.get_files(ctx, &chunk).await {
            Ok(files) => Lookup {
                files,
                failed: Vec::new(),
            },
            Err(e) if e.is_unknown_file() && !named_files(&e, &chunk).is_empty() && chunk.len() > 1 => {
                let named = named_files(&e, &chunk);
                let (unknown, rest): (Vec<String>, Vec<String>) =
                    chunk.iter().cloned().partition(|id| named.contains(id));
                let mut found = if rest.is_empty() {
                    Lookup {
                        files: Vec::new(),
                        failed: Vec::new(),
                    }
                } else {
                    lookup(client, ctx, rest).await
                };
                found.failed.push(Failure {
                    file_ids: unknown,
                    error: e.to_failure(),
                });
                found
            }
            Err(e) if e.is_unknown_file() && chunk.len() > 1 => {
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

/// A display name Wix accepts as `downloadFileName` (at most 100 characters).
fn download_name(name: &str) -> &str {
    match name.char_indices().nth(100) {
        Some((cut, _)) => &name[..cut],
        None => name,
    }
}

/// When a link asked for at `asked_at` for `minutes` expires, as RFC 3339.
pub fn expires_at(asked_at: SystemTime, minutes: u32) -> String {
    let at = asked_at + Duration::from_secs(u64::from(minutes) * 60);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first call is the slowest: the others finish (and later ones start) while it
    /// runs, and the results still come back in the order of the calls.
    #[tokio::test(start_paused = true)]
    async fn a_slow_call_holds_back_neither_later_starts_nor_the_order_of_results() {
        use std::time::Duration;
        use tokio::time::Instant;
        let t0 = Instant::now();
        let started = std::sync::Mutex::new(Vec::new());
        let delays = [10u64, 1, 1, 1, 1];
        let results = in_order(
            2,
            delays.iter().enumerate().map(|(i, secs)| {
                let started = &started;
                async move {
                    started.lock().unwrap().push((i, (Instant::now() - t0).as_secs()));
                    tokio::time::sleep(Duration::from_secs(*secs)).await;
                    i
                }
            }),
        )
        .await;
        assert_eq!(results, vec![0, 1, 2, 3, 4]);
        let mut started = started.into_inner().unwrap();
        started.sort_unstable();
        assert_eq!(
            started,
            vec![(0, 0), (1, 0), (2, 1), (3, 2), (4, 3)],
            "each later call starts as soon as one of the two slots is free"
        );
        assert_eq!((Instant::now() - t0).as_secs(), 10);
    }

    /// The first failure ends the run: calls not started by then never start; without a
    /// failure, every value comes back in call order.
    #[tokio::test(start_paused = true)]
    async fn a_failure_stops_the_calls_not_yet_started() {
        use std::time::Duration;
        let started = std::sync::atomic::AtomicUsize::new(0);
        let calls = |fail_at: Option<usize>| {
            let started = &started;
            (0..100usize).map(move |i| async move {
                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                if Some(i) == fail_at {
                    Err(format!("call {i} failed"))
                } else {
                    Ok(i)
                }
            })
        };
        assert_eq!(try_in_order(4, calls(Some(5))).await, Err("call 5 failed".to_owned()));
        let n = started.swap(0, std::sync::atomic::Ordering::SeqCst);
        assert!(n < 12, "{n} calls started after one failed among the first eight");
        assert_eq!(try_in_order(4, calls(None)).await, Ok((0..100).collect::<Vec<_>>()));
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 100);
    }

    #[test]
    fn names_and_expiry() {
        assert_eq!(download_name("short.jpg"), "short.jpg");
        assert_eq!(download_name(&"é".repeat(150)).chars().count(), 100);
        let asked = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(expires_at(asked, 60), "2027-01-15T09:00:00Z");
    }
}
