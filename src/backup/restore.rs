//! Restore: files of a stored backup put back into Wix. Each selected `STORED` file's bytes
//! are read from S3 (a zip entry by ranged GETs, inflated when deflated, or the private
//! object), checked against the recorded CRC-32, put under `restore-tmp/<restoreId>/`,
//! offered to Wix's Import File through a presigned URL into the folder path they had
//! (missing folders created), and awaited until `READY`; the temporary objects are then
//! deleted. With `onlyMissing` (the default) a file Wix still has — the same ID, or the same
//! hash in the same folder — is skipped, so a restore run twice restores nothing twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::batch::read_directory;
use super::folders::FolderTree;
use super::manifest::{LineError, LineStatus, ManifestLine};
use super::verify::{is_backup_id, load_manifest, VerifyError};
use crate::archive::{self, MAX_LOOKUP};
use crate::domain::address;
use crate::storage::Store;
use crate::wix::{CallContext, FileDescriptor, ImportRequest, WixClient, WixError};
use crate::zipdir::{self, Entry};

/// How long Wix has to fetch a presigned URL.
const PRESIGNED_FOR: Duration = Duration::from_secs(15 * 60);
/// Files of one batch read from S3 and offered to Wix at once.
const AT_ONCE: usize = 8;
/// Files streamed through an upload of their own (entries over [`SMALL_ENTRY`], private
/// files) at once in this process, whatever the batches: each may hold a few upload parts
/// in memory.
static STREAMING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
/// Pause between looks at the files still `PENDING`.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Most recipients of a restore report.
const MAX_RECIPIENTS: usize = 50;
/// The media root's folder ID.
const MEDIA_ROOT: &str = "media-root";

/// What to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOptions {
    /// `latest`, or a backup ID.
    pub backup_id: String,
    pub file_ids: Option<Vec<String>>,
    /// A folder path (`/Shop`): that folder and those below it.
    pub folder_path: Option<String>,
    pub only_missing: bool,
    pub email_to: Vec<String>,
}

impl RestoreOptions {
    /// Reads the event's `restore` object; every field is optional.
    pub fn parse(raw: &RawValue) -> Result<Self, String> {
        let map: Map<String, Value> =
            serde_json::from_str(raw.get()).map_err(|_| "`restore` must be a JSON object".to_owned())?;
        let mut options = RestoreOptions {
            backup_id: "latest".to_owned(),
            file_ids: None,
            folder_path: None,
            only_missing: true,
            email_to: Vec::new(),
        };
        for (key, value) in map {
            match key.as_str() {
                "backupId" => {
                    let id = value.as_str().ok_or("`backupId` must be a string")?;
                    if id != "latest" && !is_backup_id(id) {
                        return Err(
                            "`backupId` must be `latest` or a backup ID such as 20261202T030000Z-0a1b2c3d".into(),
                        );
                    }
                    options.backup_id = id.to_owned();
                }
                "fileIds" => {
                    let list = value.as_array().ok_or("`fileIds` must be an array of file IDs")?;
                    let mut ids = Vec::with_capacity(list.len());
                    for (i, v) in list.iter().enumerate() {
                        let id = v.as_str().ok_or_else(|| format!("`fileIds[{i}]` must be a string"))?;
                        let id = crate::domain::ids::normalize(id)
                            .map_err(|_| format!("`fileIds[{i}]` is not a Wix file ID"))?;
                        ids.push(id.to_owned());
                    }
                    options.file_ids = Some(ids);
                }
                "folderPath" => {
                    let path = value.as_str().ok_or("`folderPath` must be a string")?;
                    if !path.starts_with('/') {
                        return Err("`folderPath` must start with `/`".into());
                    }
                    options.folder_path = Some(path.trim_end_matches('/').to_owned());
                }
                "onlyMissing" => options.only_missing = value.as_bool().ok_or("`onlyMissing` must be true or false")?,
                "emailTo" => {
                    let list: Vec<String> = value
                        .as_array()
                        .and_then(|l| l.iter().map(|v| v.as_str().map(str::to_owned)).collect())
                        .ok_or("`emailTo` must be an array of addresses")?;
                    if list.len() > MAX_RECIPIENTS {
                        return Err(format!("`emailTo` lists more than {MAX_RECIPIENTS} addresses"));
                    }
                    if let Some(i) = list.iter().position(|a| !address::is_valid(a.trim())) {
                        return Err(format!("`emailTo[{i}]` is not a valid e-mail address"));
                    }
                    options.email_to = list.into_iter().map(|a| a.trim().to_owned()).collect();
                }
                other => return Err(format!("`{other}` is not a known option")),
            }
        }
        Ok(options)
    }
}

/// A file put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    /// The backed-up ID.
    pub file_id: String,
    pub new_file_id: String,
    pub folder_path: String,
}

/// A selected file not restored, on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedFile {
    pub file_id: String,
    /// `PRESENT` (Wix has it), or `NOT_STORED` (the backup holds no copy: skipped or failed then).
    pub reason: String,
}

/// A selected file that could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedFile {
    pub file_id: String,
    pub error: LineError,
}

/// The restore report: every selected file exactly once in `restored`, `skipped` or `failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    pub restore_id: String,
    pub backup_id: String,
    pub selected_files: usize,
    pub restored_files: usize,
    pub skipped_files: usize,
    pub failed_files: usize,
    pub restored: Vec<Restored>,
    pub skipped: Vec<SkippedFile>,
    pub failed: Vec<FailedFile>,
    pub duration_ms: u64,
    pub emailed_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_error: Option<String>,
}

/// Why nothing could be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Backup(#[from] VerifyError),
}

/// What a restore works with.
pub struct RestoreEnv<'a> {
    pub wix: &'a WixClient,
    pub ctx: &'a CallContext,
    pub store: &'a Store,
}

/// A restore's plan: what was selected, what is skipped or failed already, and the files to
/// put back, in batches whose folders exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    pub restore_id: String,
    pub backup_id: String,
    /// RFC 3339, the restore's start.
    pub started_at: String,
    pub selected_files: usize,
    pub skipped: Vec<SkippedFile>,
    pub failed: Vec<FailedFile>,
    pub batches: Vec<RestoreBatch>,
}

/// Files restored together, with the folder each goes into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreBatch {
    pub number: u32,
    pub lines: Vec<ManifestLine>,
    /// Folder path → the folder's ID in Wix now (made where missing), or why there is none.
    pub folders: HashMap<String, Result<String, LineError>>,
}

/// What a restore batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOutcome {
    pub number: u32,
    pub restored: Vec<Restored>,
    pub failed: Vec<FailedFile>,
}

/// Files put back by one batch.
pub const FILES_PER_BATCH: usize = 50;
/// Batches under way at once in one invocation: while some wait for Wix to finish their
/// imports, the others' files are offered, so the import pace is not left idle. Small
/// entries cost little memory (a span of at most 8 MiB a batch); large files are bounded
/// process-wide ([`STREAMING`]).
const BATCHES_AT_ONCE: usize = 6;

/// Runs a restore in this invocation: the plan, every batch, the end (the mail, if asked, is
/// the caller's).
pub async fn restore(env: &RestoreEnv<'_>, options: &RestoreOptions) -> Result<RestoreReport, RestoreError> {
    let plan = plan(env, options).await?;
    crate::progress::planned(plan.batches.len(), plan.batches.iter().map(|b| b.lines.len()).sum());
    // A batch still waiting for Wix holds back neither the others nor the start of the next.
    let outcomes = archive::in_order(
        BATCHES_AT_ONCE,
        plan.batches.iter().map(|batch| async {
            let outcome = run_batch(env, &plan.restore_id, batch).await;
            crate::progress::batch_done(batch.lines.len(), 0);
            outcome
        }),
    )
    .await;
    Ok(finish(env, &plan, outcomes).await)
}

/// The plan step: the selection, what Wix still has, and the folders the rest goes into.
pub async fn plan(env: &RestoreEnv<'_>, options: &RestoreOptions) -> Result<RestorePlan, RestoreError> {
    let now = SystemTime::now();
    let restore_id = format!(
        "{}-{:08x}",
        humantime::format_rfc3339_seconds(now)
            .to_string()
            .replace(['-', ':'], ""),
        fastrand::u32(..)
    );
    let (backup_id, lines) = load_manifest(env.store, &options.backup_id).await?;
    tracing::info!(restore_id = %restore_id, backup_id = %backup_id, "restore planned");
    let mut plan = RestorePlan {
        restore_id,
        backup_id,
        started_at: humantime::format_rfc3339_millis(now).to_string(),
        selected_files: 0,
        skipped: Vec::new(),
        failed: Vec::new(),
        batches: Vec::new(),
    };

    // The selection: by ID, by folder (and below), or everything.
    let by_id: HashMap<&str, &ManifestLine> = lines.iter().map(|l| (l.file_id.as_str(), l)).collect();
    let in_folder = |l: &ManifestLine| match &options.folder_path {
        None => true,
        Some(p) if p.is_empty() => true,
        Some(p) => l.folder_path == *p || l.folder_path.starts_with(&format!("{p}/")),
    };
    let mut selected: Vec<&ManifestLine> = Vec::new();
    match &options.file_ids {
        Some(ids) => {
            let mut seen = HashSet::new();
            for id in ids.iter().filter(|id| seen.insert(id.as_str())) {
                match by_id.get(id.as_str()) {
                    Some(l) if in_folder(l) => selected.push(l),
                    Some(_) => {}
                    None => plan.failed.push(FailedFile {
                        file_id: id.clone(),
                        error: error("NOT_IN_BACKUP", "the backup's manifest has no file of this ID"),
                    }),
                }
            }
        }
        None => selected.extend(lines.iter().filter(|l| in_folder(l))),
    }
    let mut to_restore: Vec<&ManifestLine> = Vec::new();
    for l in selected {
        if l.status == LineStatus::Stored && l.object.is_some() {
            to_restore.push(l);
        } else {
            plan.skipped.push(SkippedFile {
                file_id: l.file_id.clone(),
                reason: "NOT_STORED".to_owned(),
            });
        }
    }
    plan.selected_files = plan.failed.len() + plan.skipped.len() + to_restore.len();

    // What Wix still has.
    let mut tree = None;
    if options.only_missing && !to_restore.is_empty() {
        let (present, folders) = present_in_wix(env, &to_restore).await;
        tree = folders;
        to_restore.retain(|l| match present.get(l.file_id.as_str()) {
            Some(Ok(())) => {
                plan.skipped.push(SkippedFile {
                    file_id: l.file_id.clone(),
                    reason: "PRESENT".to_owned(),
                });
                false
            }
            Some(Err(e)) => {
                plan.failed.push(FailedFile {
                    file_id: l.file_id.clone(),
                    error: wix_error(e),
                });
                false
            }
            None => true,
        });
    }

    // Folders to put them in, made one after another (two batches must not make one twice).
    let mut folders = Folders::new(match tree {
        Some(t) => t,
        None if to_restore.is_empty() => FolderTree::default(),
        None => FolderTree::search(env.wix, env.ctx, "MEDIA_ROOT").await.0,
    });
    let mut folder_ids: HashMap<String, Result<String, LineError>> = HashMap::new();
    let mut paths: Vec<&str> = to_restore.iter().map(|l| l.folder_path.as_str()).collect();
    paths.sort_unstable();
    paths.dedup();
    for path in paths {
        let id = folders.ensure(env, path).await.map_err(|e| wix_error(&e));
        folder_ids.insert(path.to_owned(), id);
    }
    for (i, chunk) in to_restore.chunks(FILES_PER_BATCH).enumerate() {
        let lines: Vec<ManifestLine> = chunk.iter().map(|l| (*l).clone()).collect();
        let folders = lines
            .iter()
            .filter_map(|l| {
                folder_ids
                    .get(&l.folder_path)
                    .map(|id| (l.folder_path.clone(), id.clone()))
            })
            .collect();
        plan.batches.push(RestoreBatch {
            number: i as u32 + 1,
            lines,
            folders,
        });
    }
    Ok(plan)
}

/// The batch step: each file's bytes out of S3 and offered to Wix, then awaited until Wix
/// has it.
pub async fn run_batch(env: &RestoreEnv<'_>, restore_id: &str, batch: &RestoreBatch) -> RestoreOutcome {
    let directories = DirectoryCache::default();
    let (lines, wanted) = in_storage_order(env.store, &directories, &batch.lines).await;
    let spans = Spans::new(wanted);
    let offered: Vec<(&ManifestLine, Result<Offered, LineError>)> = stream::iter(lines)
        .map(|l| {
            let folder = batch.folders.get(&l.folder_path).cloned();
            let (directories, spans) = (&directories, &spans);
            async move {
                let result = match folder {
                    Some(Ok(folder)) => offer(env, restore_id, l, &folder, directories, spans).await,
                    Some(Err(e)) => Err(e),
                    None => Err(error("WIX_UNAVAILABLE", "its folder could not be made")),
                };
                (l, result)
            }
        })
        .buffered(AT_ONCE)
        .collect()
        .await;
    let mut outcome = RestoreOutcome {
        number: batch.number,
        ..RestoreOutcome::default()
    };
    let mut pending: HashMap<String, &ManifestLine> = HashMap::new();
    let mut temporary: Vec<(String, String)> = Vec::new();
    for (l, result) in offered {
        match result {
            Ok(o) => {
                temporary.push((o.new_file_id.clone(), o.temporary));
                pending.insert(o.new_file_id, l);
            }
            Err(e) => outcome.failed.push(FailedFile {
                file_id: l.file_id.clone(),
                error: e,
            }),
        }
    }
    let (ready, failed, still_importing) = await_ready(env, pending).await;
    // What Wix has finished with (READY or FAILED) is deleted now, not at the restore's end;
    // the finish step sweeps whatever is left.
    let done: Vec<String> = temporary
        .into_iter()
        .filter(|(new_id, _)| !still_importing.contains(new_id))
        .map(|(_, key)| key)
        .collect();
    if let Err(e) = env.store.delete(&done).await {
        tracing::warn!(error = %e, "temporary restore objects could not be deleted; the finish step tries again");
    }
    outcome.restored = ready;
    outcome.failed.extend(failed);
    outcome
}

/// The finish step: the report, every file of the plan once in it (a batch that never
/// finished fails its files as `DEADLINE`), and the temporary objects deleted.
pub async fn finish(env: &RestoreEnv<'_>, plan: &RestorePlan, outcomes: Vec<RestoreOutcome>) -> RestoreReport {
    let mut report = RestoreReport {
        restore_id: plan.restore_id.clone(),
        backup_id: plan.backup_id.clone(),
        selected_files: plan.selected_files,
        restored_files: 0,
        skipped_files: 0,
        failed_files: 0,
        restored: Vec::new(),
        skipped: plan.skipped.clone(),
        failed: plan.failed.clone(),
        duration_ms: 0,
        emailed_to: Vec::new(),
        email_error: None,
    };
    let mut by_number: HashMap<u32, RestoreOutcome> = outcomes.into_iter().map(|o| (o.number, o)).collect();
    for batch in &plan.batches {
        match by_number.remove(&batch.number) {
            Some(o) => {
                report.restored.extend(o.restored);
                report.failed.extend(o.failed);
            }
            None => report.failed.extend(batch.lines.iter().map(|l| FailedFile {
                file_id: l.file_id.clone(),
                error: error("DEADLINE", "its batch did not run before the restore ended"),
            })),
        }
    }
    let tmp = env.store.key(&format!("restore-tmp/{}/", plan.restore_id));
    match env.store.list(&tmp).await {
        Ok(keys) => {
            if let Err(e) = env.store.delete(&keys).await {
                tracing::warn!(error = %e, "temporary restore objects could not be deleted");
            }
        }
        Err(e) => tracing::warn!(error = %e, "temporary restore objects could not be listed"),
    }
    for o in by_number.into_values() {
        // An outcome of no batch of this plan: nothing of it counts.
        tracing::warn!(
            batch = o.number,
            "a restore outcome of a batch the plan does not have was ignored"
        );
    }
    report.restored.sort_by(|a, b| a.file_id.cmp(&b.file_id));
    let accounted = report.restored.len() + report.skipped.len() + report.failed.len();
    if accounted != plan.selected_files {
        tracing::error!(
            accounted,
            selected = plan.selected_files,
            "the restore report does not account for every selected file"
        );
    }
    report.restored_files = report.restored.len();
    report.skipped_files = report.skipped.len();
    report.failed_files = report.failed.len();
    report.duration_ms = humantime::parse_rfc3339(&plan.started_at)
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .map_or(0, |d| d.as_millis() as u64);
    report
}

fn error(code: &str, message: impl Into<String>) -> LineError {
    LineError {
        code: code.to_owned(),
        message: message.into(),
    }
}

fn wix_error(e: &WixError) -> LineError {
    let f = e.to_failure();
    let code = serde_json::to_value(f.code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "WIX_UNAVAILABLE".into());
    error(&code, f.message)
}

/// Which of `lines` Wix still has: by ID (Get Files), else by hash in the same folder (the
/// files of that folder listed). A lookup that failed is an error for those files.
async fn present_in_wix(
    env: &RestoreEnv<'_>,
    lines: &[&ManifestLine],
) -> (HashMap<String, Result<(), WixError>>, Option<FolderTree>) {
    let mut present: HashMap<String, Result<(), WixError>> = HashMap::new();
    let ids: Vec<String> = lines.iter().map(|l| l.file_id.clone()).collect();
    let lookups = archive::in_order(
        archive::calls_ahead(env.wix),
        ids.chunks(MAX_LOOKUP).map(|chunk| lookup(env, chunk.to_vec())),
    )
    .await;
    for (found, failed) in lookups {
        for f in found.into_iter().filter(is_live) {
            present.insert(f.id, Ok(()));
        }
        for (id, e) in failed {
            present.insert(id, Err(e));
        }
    }
    // The rest: the same content may be back under a new ID (an earlier restore).
    let rest: Vec<&&ManifestLine> = lines.iter().filter(|l| !present.contains_key(&l.file_id)).collect();
    if rest.is_empty() {
        return (present, None);
    }
    let (tree, _) = FolderTree::search(env.wix, env.ctx, "MEDIA_ROOT").await;
    let mut by_path = tree.ids_by_path(&[MEDIA_ROOT]);
    by_path.insert("/".to_owned(), MEDIA_ROOT.to_owned());
    let mut folders: HashMap<&str, Vec<&&ManifestLine>> = HashMap::new();
    for l in rest {
        folders.entry(l.folder_path.as_str()).or_default().push(l);
    }
    // Each folder's listing is a chain of pages; the folders' chains run side by side.
    let listed = archive::in_order(
        archive::calls_ahead(env.wix),
        folders
            .into_iter()
            .filter_map(|(path, files)| by_path.get(path).map(|folder| (folder, files)))
            .map(|(folder, files)| async move { (list_hashes(env, folder).await, files) }),
    )
    .await;
    for (hashes, files) in listed {
        match hashes {
            Ok(hashes) => {
                for l in files {
                    if l.hash.as_ref().is_some_and(|h| hashes.contains(h)) {
                        present.insert(l.file_id.clone(), Ok(()));
                    }
                }
            }
            Err(e) => {
                for l in files {
                    present.insert(l.file_id.clone(), Err(e.clone()));
                }
            }
        }
    }
    (present, Some(tree))
}

/// A file Wix still holds: neither deleted nor trashed nor failed.
fn is_live(f: &FileDescriptor) -> bool {
    f.state.as_deref() != Some("DELETED")
        && f.operation_status.as_deref() != Some("FAILED")
        && f.parent_folder_id.as_deref() != Some("trash-root")
}

/// The files a lookup found, and the IDs whose lookup failed.
type Found = (Vec<FileDescriptor>, Vec<(String, WixError)>);

/// Get Files for a chunk; IDs Wix does not know are dropped (named ones at once, the rest
/// by halving), not errors.
fn lookup<'a>(env: &'a RestoreEnv<'a>, chunk: Vec<String>) -> futures_util::future::BoxFuture<'a, Found> {
    use futures_util::FutureExt;
    async move {
        match env.wix.get_files(env.ctx, &chunk).await {
            Ok(files) => (files, Vec::new()),
            Err(e) if e.is_unknown_file() && chunk.len() == 1 => (Vec::new(), Vec::new()),
            Err(e) if e.is_unknown_file() => {
                let named: HashSet<&String> = e
                    .named
                    .file_ids
                    .iter()
                    .chain(e.named.positions.iter().filter_map(|&i| chunk.get(i)))
                    .collect();
                if !named.is_empty() {
                    let rest: Vec<String> = chunk.iter().filter(|id| !named.contains(id)).cloned().collect();
                    if rest.is_empty() {
                        return (Vec::new(), Vec::new());
                    }
                    return lookup(env, rest).await;
                }
                let mut left = chunk;
                let right = left.split_off(left.len() / 2);
                let ((mut files, mut failed), (more, more_failed)) =
                    tokio::join!(lookup(env, left), lookup(env, right));
                files.extend(more);
                failed.extend(more_failed);
                (files, failed)
            }
            Err(e) => (Vec::new(), chunk.into_iter().map(|id| (id, e.clone())).collect()),
        }
    }
    .boxed()
}

/// The hashes of the files directly in `folder`.
async fn list_hashes(env: &RestoreEnv<'_>, folder: &str) -> Result<HashSet<String>, WixError> {
    let mut hashes = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut cursors = HashSet::new();
    loop {
        let page = env.wix.list_files(env.ctx, folder, 100, cursor.as_deref()).await?;
        hashes.extend(page.items.into_iter().filter(is_live).filter_map(|f| f.hash));
        match page.next {
            Some(next) if cursors.insert(next.clone()) => cursor = Some(next),
            _ => return Ok(hashes),
        }
    }
}

/// Folder paths to folder IDs, creating what is missing.
struct Folders {
    by_path: HashMap<String, String>,
}

impl Folders {
    fn new(tree: FolderTree) -> Self {
        let mut by_path: HashMap<String, String> = tree.ids_by_path(&[MEDIA_ROOT]).into_iter().collect();
        by_path.insert("/".to_owned(), MEDIA_ROOT.to_owned());
        by_path.insert(String::new(), MEDIA_ROOT.to_owned());
        Folders { by_path }
    }

    /// The folder of `path`, made (with its missing parents) when it does not exist.
    async fn ensure(&mut self, env: &RestoreEnv<'_>, path: &str) -> Result<String, WixError> {
        if let Some(id) = self.by_path.get(path) {
            return Ok(id.clone());
        }
        let mut parent = MEDIA_ROOT.to_owned();
        let mut so_far = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            so_far.push('/');
            so_far.push_str(segment);
            if let Some(id) = self.by_path.get(&so_far) {
                parent = id.clone();
                continue;
            }
            // A `/` in a folder's name is written `∕` in paths (see `FolderTree::path`).
            let name = segment.replace('∕', "/");
            let folder = env.wix.create_folder(env.ctx, &name, &parent).await?;
            tracing::info!(folder = %so_far, "made a folder for restored files");
            self.by_path.insert(so_far.clone(), folder.id.clone());
            parent = folder.id;
        }
        Ok(parent)
    }
}

/// An archive's directory as a restore reads it: its entries, and where each entry's bytes
/// end (the next entry's local header, or the object's end for the last).
struct Archive {
    entries: Vec<Entry>,
    /// Local header offsets, sorted, then the object's size.
    bounds: Vec<u64>,
}

impl Archive {
    fn new(entries: Vec<Entry>, size: u64) -> Self {
        let mut bounds: Vec<u64> = entries.iter().map(|e| e.local_header_offset).collect();
        bounds.sort_unstable();
        bounds.dedup();
        bounds.push(size);
        Archive { entries, bounds }
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Where the bytes of the entry whose local header is at `offset` end: its header, name,
    /// extra field, data and data descriptor all lie before it.
    fn end_of(&self, offset: u64) -> u64 {
        let i = self.bounds.partition_point(|b| *b <= offset);
        self.bounds.get(i).copied().unwrap_or(offset)
    }
}

#[derive(Default)]
struct DirectoryCache {
    entries: tokio::sync::Mutex<HashMap<String, std::sync::Arc<Archive>>>,
}

impl DirectoryCache {
    async fn get(&self, store: &Store, object: &str) -> Result<std::sync::Arc<Archive>, String> {
        if let Some(e) = self.entries.lock().await.get(object) {
            return Ok(e.clone());
        }
        let size = store
            .head(object)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the backup's object is missing from the bucket")?
            .size;
        let entries = read_directory(store, object, size).await.map_err(|e| e.to_string())?;
        let archive = std::sync::Arc::new(Archive::new(entries, size));
        self.entries.lock().await.insert(object.to_owned(), archive.clone());
        Ok(archive)
    }
}

/// Entries up to this compressed size are read with their neighbours in one ranged GET
/// ([`Spans`]); larger ones are streamed from S3 on their own.
const SMALL_ENTRY: u64 = 1024 * 1024;
/// The most one [`Spans`] read holds.
const SPAN_MAX: u64 = 8 * 1024 * 1024;
/// The most bytes of entries not restored that one span may carry between two that are.
const SPAN_GAP_MAX: u64 = 256 * 1024;

/// The small entries of one batch, read a run at a time: the entries a batch restores from
/// one archive usually lie next to each other in it, and one ranged GET for a run of them
/// costs one request and one first byte instead of two for each file. Holds one span (at
/// most [`SPAN_MAX`]) at a time; the batch offers its files in the order they lie in S3.
struct Spans {
    /// Per object, the local header offsets of the small entries this batch restores, sorted.
    wanted: HashMap<String, Vec<u64>>,
    current: tokio::sync::Mutex<Option<Span>>,
}

struct Span {
    object: String,
    start: u64,
    bytes: bytes::Bytes,
}

impl Spans {
    fn new(wanted: HashMap<String, Vec<u64>>) -> Self {
        Spans {
            wanted,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The bytes of the entry at `offset` of `object`, from its local header to where its
    /// bytes end, read with the run of wanted entries that follows it.
    async fn entry(
        &self,
        store: &Store,
        object: &str,
        archive: &Archive,
        offset: u64,
    ) -> Result<bytes::Bytes, crate::storage::StoreError> {
        let end = archive.end_of(offset);
        let mut current = self.current.lock().await;
        if let Some(bytes) = current.as_ref().and_then(|span| span.slice(object, offset, end)) {
            return Ok(bytes);
        }
        let wanted = self.wanted.get(object).map_or(&[][..], Vec::as_slice);
        let bytes = store
            .get_range(object, offset, span_end(archive, wanted, offset))
            .await?;
        let span = current.insert(Span {
            object: object.to_owned(),
            start: offset,
            bytes,
        });
        // S3 may answer short of the range (an object cut since): what it holds, from here.
        Ok(span.slice(object, offset, end).unwrap_or_else(|| span.bytes.clone()))
    }
}

impl Span {
    /// Bytes `offset..end` of `object`, when this span holds them all.
    fn slice(&self, object: &str, offset: u64, end: u64) -> Option<bytes::Bytes> {
        (self.object == object && self.start <= offset && end <= self.start + self.bytes.len() as u64).then(|| {
            self.bytes
                .slice((offset - self.start) as usize..(end - self.start) as usize)
        })
    }
}

/// Where a span read from the entry at `offset` ends: past the wanted entries that follow it,
/// as long as the span stays within [`SPAN_MAX`] and skips at most [`SPAN_GAP_MAX`] between
/// two of them; always past the entry itself.
fn span_end(archive: &Archive, wanted: &[u64], offset: u64) -> u64 {
    let mut end = archive.end_of(offset);
    for next in wanted.iter().skip_while(|o| **o <= offset) {
        let next_end = archive.end_of(*next);
        if next.saturating_sub(end) > SPAN_GAP_MAX || next_end - offset > SPAN_MAX {
            break;
        }
        end = next_end;
    }
    end
}

/// The batch's lines in the order their bytes lie in S3 (by object, then offset), and the
/// small entries' offsets for [`Spans`]. A line whose archive cannot be read keeps its place
/// at the end of its object; its offer reports why.
async fn in_storage_order<'a>(
    store: &Store,
    directories: &DirectoryCache,
    lines: &'a [ManifestLine],
) -> (Vec<&'a ManifestLine>, HashMap<String, Vec<u64>>) {
    // The directories of the batch's archives, a few at a time (a batch of scattered files
    // may come from many archives).
    let objects: HashSet<&str> = lines
        .iter()
        .filter(|l| l.entry.is_some())
        .filter_map(|l| l.object.as_deref())
        .collect();
    let archives: HashMap<&str, std::sync::Arc<Archive>> = stream::iter(objects)
        .map(|object| async move { (object, directories.get(store, object).await) })
        .buffer_unordered(AT_ONCE)
        .filter_map(|(object, archive)| std::future::ready(archive.ok().map(|a| (object, a))))
        .collect()
        .await;
    let mut keyed: Vec<(&str, u64, &ManifestLine)> = Vec::with_capacity(lines.len());
    let mut wanted: HashMap<String, Vec<u64>> = HashMap::new();
    for line in lines {
        let object = line.object.as_deref().unwrap_or_default();
        let entry = line
            .entry
            .as_deref()
            .and_then(|name| archives.get(object)?.entry(name).cloned());
        let offset = entry.as_ref().map_or(u64::MAX, |e| e.local_header_offset);
        if let Some(e) = entry.filter(|e| e.compressed_size <= SMALL_ENTRY) {
            wanted.entry(object.to_owned()).or_default().push(e.local_header_offset);
        }
        keyed.push((object, offset, line));
    }
    for offsets in wanted.values_mut() {
        offsets.sort_unstable();
        offsets.dedup();
    }
    keyed.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    (keyed.into_iter().map(|(_, _, l)| l).collect(), wanted)
}

struct Offered {
    new_file_id: String,
    /// The temporary object Wix imports from.
    temporary: String,
}

/// An entry's stored bytes as they are read: from a span, or streamed.
type EntryBody = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, String>> + Send>>;

/// Copies one file's bytes into a temporary object (checking its CRC-32) and asks Wix to
/// import it from there.
async fn offer(
    env: &RestoreEnv<'_>,
    restore_id: &str,
    line: &ManifestLine,
    folder: &str,
    directories: &DirectoryCache,
    spans: &Spans,
) -> Result<Offered, LineError> {
    let object = line.object.as_deref().unwrap_or_default();
    let name = if line.display_name.is_empty() {
        line.file_id.clone()
    } else {
        line.display_name.replace(['/', '\\'], "_")
    };
    let tmp = env
        .store
        .key(&format!("restore-tmp/{restore_id}/{}/{name}", line.file_id));
    let part_size = env.store.settings().part_size;
    let storage = |e: String| error("STORAGE_FAILED", e);
    let mut streaming = None;
    let uploaded = match &line.entry {
        Some(entry_name) => {
            let archive = directories
                .get(env.store, object)
                .await
                .map_err(|e| error("CORRUPT", e))?;
            let entry = archive
                .entry(entry_name)
                .ok_or_else(|| error("CORRUPT", "the stored archive no longer holds this file's entry"))?
                .clone();
            let offset = entry.local_header_offset;
            let body: EntryBody = if entry.compressed_size <= SMALL_ENTRY {
                let bytes = spans
                    .entry(env.store, object, &archive, offset)
                    .await
                    .map_err(|e| storage(e.to_string()))?;
                let start = zipdir::data_offset(&entry, &bytes).map_err(|e| error("CORRUPT", e.to_string()))?;
                let data = (start - offset)
                    .checked_add(entry.compressed_size)
                    .filter(|end| *end <= bytes.len() as u64)
                    .map(|end| bytes.slice((start - offset) as usize..end as usize))
                    .ok_or_else(|| error("CORRUPT", "the entry runs past the bytes stored for it"))?;
                Box::pin(stream::once(std::future::ready(Ok(data))))
            } else {
                streaming = Some(STREAMING.acquire().await.expect("the semaphore is never closed"));
                let header = env
                    .store
                    .get_range(object, offset, offset + zipdir::LOCAL_HEADER_LEN)
                    .await
                    .map_err(|e| storage(e.to_string()))?;
                let start = zipdir::data_offset(&entry, &header).map_err(|e| error("CORRUPT", e.to_string()))?;
                Box::pin(
                    env.store
                        .get_stream(object, Some((start, start + entry.compressed_size)))
                        .await
                        .map_err(|e| storage(e.to_string()))?,
                )
            };
            let result = match entry.method {
                0 => {
                    env.store
                        .upload_stream(&tmp, "application/octet-stream", Some(entry.size), part_size, body)
                        .await
                }
                8 => {
                    env.store
                        .upload_stream(
                            &tmp,
                            "application/octet-stream",
                            Some(entry.size),
                            part_size,
                            zipdir::inflate(body),
                        )
                        .await
                }
                m => {
                    return Err(error(
                        "CORRUPT",
                        format!("the entry is compressed with method {m}, which is not read"),
                    ))
                }
            };
            result.map_err(|e| error("CORRUPT", format!("the stored copy could not be read: {e}")))?
        }
        None => {
            if line.size_in_bytes.is_none_or(|n| n > SMALL_ENTRY) {
                streaming = Some(STREAMING.acquire().await.expect("the semaphore is never closed"));
            }
            let body = env
                .store
                .get_stream(object, None)
                .await
                .map_err(|e| storage(e.to_string()))?;
            env.store
                .upload_stream(&tmp, "application/octet-stream", line.size_in_bytes, part_size, body)
                .await
                .map_err(|e| error("CORRUPT", format!("the stored copy could not be read: {e}")))?
        }
    };
    drop(streaming);
    if line
        .crc32
        .as_deref()
        .is_some_and(|c| *c != format!("{:08x}", uploaded.crc32))
    {
        let _ = env.store.delete(std::slice::from_ref(&tmp)).await;
        return Err(error(
            "CORRUPT",
            "the stored copy does not match the CRC-32 the backup recorded",
        ));
    }
    let url = env
        .store
        .presign_get(&tmp, PRESIGNED_FOR)
        .await
        .map_err(|e| storage(e.to_string()))?;
    let media_type = Some(line.media_type.as_str()).filter(|t| !t.is_empty() && *t != "UNKNOWN");
    let file = env
        .wix
        .import_file(
            env.ctx,
            &ImportRequest {
                url: url.expose(),
                display_name: &line.display_name,
                media_type,
                parent_folder_id: folder,
                private: line.private,
            },
        )
        .await
        .map_err(|e| wix_error(&e))?;
    Ok(Offered {
        new_file_id: file.id,
        temporary: tmp,
    })
}

/// Looks at the imported files (100 at a time) until each is `READY` or `FAILED`, or the
/// deadline: what did not finish is `DEADLINE`, and its new IDs are the third part.
async fn await_ready(
    env: &RestoreEnv<'_>,
    mut pending: HashMap<String, &ManifestLine>,
) -> (Vec<Restored>, Vec<FailedFile>, HashSet<String>) {
    let mut ready = Vec::new();
    let mut failed = Vec::new();
    while !pending.is_empty() {
        let too_late = env
            .ctx
            .deadline
            .is_some_and(|d| Instant::now() + POLL_EVERY + Duration::from_secs(3) > d);
        if too_late {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
        let ids: Vec<String> = pending.keys().cloned().collect();
        for chunk in ids.chunks(MAX_LOOKUP) {
            match env.wix.get_files(env.ctx, chunk).await {
                Ok(files) => {
                    for f in files {
                        match f.operation_status.as_deref() {
                            Some("READY") => {
                                if let Some(l) = pending.remove(&f.id) {
                                    ready.push(Restored {
                                        file_id: l.file_id.clone(),
                                        new_file_id: f.id,
                                        folder_path: l.folder_path.clone(),
                                    });
                                }
                            }
                            Some("FAILED") => {
                                if let Some(l) = pending.remove(&f.id) {
                                    failed.push(FailedFile {
                                        file_id: l.file_id.clone(),
                                        error: error("IMPORT_FAILED", "Wix could not import the file"),
                                    });
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not look at the imported files; trying again"),
            }
        }
    }
    let still_importing = pending.keys().cloned().collect();
    for (_, l) in pending {
        failed.push(FailedFile {
            file_id: l.file_id.clone(),
            error: error(
                "DEADLINE",
                "Wix had not finished importing it when the invocation was about to time out",
            ),
        });
    }
    (ready, failed, still_importing)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of entries of `sizes` bytes each (header and data), back to back, then a
    /// directory of 100 bytes.
    fn archive(sizes: &[u64]) -> Archive {
        let mut offset = 0;
        let entries = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| {
                let e = Entry {
                    name: format!("f{i}"),
                    crc32: 0,
                    compressed_size: size - 40,
                    size: size - 40,
                    method: 0,
                    local_header_offset: offset,
                    flags: 0,
                };
                offset += size;
                e
            })
            .collect();
        Archive::new(entries, offset + 100)
    }

    #[test]
    fn an_entry_ends_where_the_next_begins_and_the_last_at_the_object_end() {
        let a = archive(&[1000, 2000, 500]);
        assert_eq!(a.end_of(0), 1000);
        assert_eq!(a.end_of(1000), 3000);
        assert_eq!(a.end_of(3000), 3600, "the last one runs into the directory");
    }

    #[test]
    fn a_span_covers_the_wanted_run_within_its_limits() {
        const K: u64 = 1024;
        let a = archive(&[100 * K, 100 * K, 100 * K, 300 * K, 100 * K, 100 * K]);
        let at = |i: usize| a.entries[i].local_header_offset;
        // Wanted 0, 1, 2: one span to the end of 2.
        assert_eq!(span_end(&a, &[at(0), at(1), at(2)], at(0)), at(3));
        // Wanted 0 and 2: entry 1 (100 KiB) is skipped within the span.
        assert_eq!(span_end(&a, &[at(0), at(2)], at(0)), at(3));
        // Wanted 2 and 4: entry 3 (300 KiB) is too much to carry; the span stops at 2.
        assert_eq!(span_end(&a, &[at(2), at(4)], at(2)), at(3));
        // Only what follows counts, and the entry itself is always covered.
        assert_eq!(span_end(&a, &[at(0), at(5)], at(5)), a.end_of(at(5)));
        assert_eq!(span_end(&a, &[], at(1)), at(2));
        // The span stays within SPAN_MAX.
        let big = archive(&[3 * 1024 * K, 3 * 1024 * K, 3 * 1024 * K]);
        let all: Vec<u64> = big.entries.iter().map(|e| e.local_header_offset).collect();
        assert_eq!(
            span_end(&big, &all, 0),
            all[2],
            "two of 3 MiB fit in 8 MiB, three do not"
        );
    }
}
