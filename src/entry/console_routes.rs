//! The signed routes the owner's console reads and acts through: the stored backups
//! (`GET /backups`), one backup's manifest by folder or searched (`GET /backups/<id>/files`)
//! and its failures (`GET /backups/<id>/failures`), the running jobs (`GET /jobs`), a backup
//! started now (`POST /backups`) and a verification (`POST /verifies`). Every answer is one
//! page: a manifest is read from S3 as a stream, line by line, and only the page asked for
//! is kept, whatever the library's size.

use std::collections::BTreeMap;
use std::io::BufRead;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::http::{ApiError, HttpResponse, RequestSummary};
use super::job_routes::{json_response, storage_error, summary, JobsEnv};
use crate::backup::finish::{self, BackupSummary, Latest};
use crate::backup::manifest::{LineError, LineStatus, ManifestLine};
use crate::backup::BackupError;
use crate::domain::request::{FieldError, RequestError};
use crate::jobs;
use crate::storage::Store;
use crate::wix::CallContext;

/// Backups in one page of `GET /backups`, when the caller does not say.
const BACKUPS_PAGE: usize = 30;
/// Files in one page of a manifest listing, when the caller does not say.
const FILES_PAGE: usize = 100;
/// The largest page of either.
const MAX_PAGE: usize = 500;
/// Subfolders listed under one folder; the answer says how many more there are.
const MAX_FOLDERS: usize = 1000;
/// Summaries read at once.
const AT_ONCE: usize = 8;
/// Running jobs listed.
const MAX_RUNNING: i32 = 100;

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Request(RequestError::Invalid(vec![FieldError::new(field, message.into())]))
}

/// The store of stored backups, or a 404 that says why there is none.
fn backups_store(env: &JobsEnv<'_>) -> Result<Store, ApiError> {
    env.app
        .store(env.credentials)
        .ok_or_else(|| ApiError::NotFound("there are no stored backups here: STORAGE_BUCKET is unset".to_owned()))
}

/// The first value of the query parameter `name`.
fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `limit`: 1 to [`MAX_PAGE`], `default` when absent.
fn limit(query: &[(String, String)], default: usize) -> Result<usize, ApiError> {
    match param(query, "limit") {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| invalid("limit", format!("must be a whole number from 1 to {MAX_PAGE}"))),
    }
}

/// Refuses parameters the route does not know, so a typo is not an empty answer.
fn known_params(query: &[(String, String)], known: &[&str]) -> Result<(), ApiError> {
    let unknown: Vec<FieldError> = query
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, _)| FieldError::new(k, "is not a parameter of this resource".to_owned()))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Request(RequestError::Invalid(unknown)))
    }
}

/// One backup in `GET /backups`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BackupEntry {
    backup_id: String,
    /// When it started (from its ID).
    started_at: Option<String>,
    /// `COMPLETE`, `INCOMPLETE`, or `UNFINISHED` (no summary: running, or cut off).
    status: String,
    /// Whether `latest.json` names it.
    latest: bool,
    #[serde(flatten)]
    summary: Option<SummaryCounts>,
}

/// The counts of a summary, without its failures list (`…/failures` pages those).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryCounts {
    full: bool,
    listed_files: usize,
    stored_files: usize,
    unchanged_files: usize,
    new_files: usize,
    changed_files: usize,
    removed_files: usize,
    skipped_files: usize,
    failed_files: usize,
    stored_bytes: u64,
    duration_ms: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    failures_by_code: BTreeMap<String, usize>,
}

impl From<BackupSummary> for SummaryCounts {
    fn from(s: BackupSummary) -> Self {
        SummaryCounts {
            full: s.full,
            listed_files: s.listed_files,
            stored_files: s.stored_files,
            unchanged_files: s.unchanged_files,
            new_files: s.new_files,
            changed_files: s.changed_files,
            removed_files: s.removed_files,
            skipped_files: s.skipped_files,
            failed_files: s.failed_files,
            stored_bytes: s.stored_bytes,
            duration_ms: s.duration_ms,
            failures_by_code: s.failures_by_code,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BackupsPage {
    backups: Vec<BackupEntry>,
    next_cursor: Option<String>,
}

/// The IDs of the stored backups (the folders under `backups/`), newest first.
async fn backup_ids(store: &Store) -> Result<Vec<String>, ApiError> {
    let prefix = store.key("backups/");
    let mut ids = Vec::new();
    let mut pages = store
        .client()
        .list_objects_v2()
        .bucket(store.bucket())
        .prefix(&prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ApiError::Internal(format!("the backups could not be listed: {e}")))?;
        ids.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix())
                .filter_map(|p| p.strip_prefix(prefix.as_str()))
                .map(|p| p.trim_end_matches('/').to_owned())
                .filter(|id| crate::backup::verify::is_backup_id(id)),
        );
    }
    // IDs start with their UTC start time: key order is time order.
    ids.sort_unstable_by(|a, b| b.cmp(a));
    Ok(ids)
}

/// A backup's summary (`summary.json`, or the start of an older backup's `report.json`).
async fn read_summary(store: &Store, backup_id: &str) -> Result<Option<BackupSummary>, ApiError> {
    if let Some(s) = jobs::read_json(store, &finish::summary_key(store, backup_id))
        .await
        .map_err(storage_error)?
    {
        return Ok(Some(s));
    }
    jobs::read_json(store, &finish::report_key(store, backup_id))
        .await
        .map_err(storage_error)
}

async fn read_latest(store: &Store) -> Result<Option<Latest>, ApiError> {
    jobs::read_json(store, &finish::latest_key(store))
        .await
        .map_err(storage_error)
}

fn started_at(backup_id: &str) -> Option<String> {
    crate::backup::retention::backup_time(backup_id).map(|t| humantime::format_rfc3339_seconds(t).to_string())
}

/// `GET /backups?cursor=<backupId>&limit=<n>`: the stored backups, newest first, those
/// older than `cursor`.
pub async fn list_backups(
    env: &JobsEnv<'_>,
    query: &[(String, String)],
) -> Result<(HttpResponse, RequestSummary), ApiError> {
    known_params(query, &["cursor", "limit"])?;
    let limit = limit(query, BACKUPS_PAGE)?;
    let cursor = param(query, "cursor").filter(|c| !c.is_empty());
    if let Some(c) = cursor {
        if !crate::backup::verify::is_backup_id(c) {
            return Err(invalid(
                "cursor",
                "must be a backup ID (the previous page's nextCursor)",
            ));
        }
    }
    let store = backups_store(env)?;
    let latest = read_latest(&store).await?.map(|l| l.backup_id);
    let ids = backup_ids(&store).await?;
    let older: Vec<&String> = ids.iter().filter(|id| cursor.is_none_or(|c| id.as_str() < c)).collect();
    let page: Vec<&String> = older.iter().take(limit).copied().collect();
    let next_cursor = (older.len() > page.len())
        .then(|| page.last().map(|id| (*id).clone()))
        .flatten();
    let store = &store;
    let summaries: Vec<Result<Option<BackupSummary>, ApiError>> = stream::iter(page.iter())
        .map(|id| read_summary(store, id))
        .buffered(AT_ONCE)
        .collect()
        .await;
    let mut backups = Vec::with_capacity(page.len());
    for (id, summary_of) in page.iter().zip(summaries) {
        let summary_of = summary_of?;
        backups.push(BackupEntry {
            backup_id: (*id).clone(),
            started_at: started_at(id),
            status: summary_of
                .as_ref()
                .map_or_else(|| "UNFINISHED".to_owned(), |s| s.status.clone()),
            latest: latest.as_deref() == Some(id.as_str()),
            summary: summary_of.map(SummaryCounts::from),
        });
    }
    let count = backups.len();
    let response = json_response(200, &BackupsPage { backups, next_cursor }, None)?;
    Ok((response, summary(200, None, count)))
}

/// What a manifest listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Files by folder (`folder`), or searched by name (`q`).
    Files,
    /// Files that failed, in every folder.
    Failures,
}

/// A file as the console shows it (no S3 key, entry or checksum).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileEntry {
    file_id: String,
    display_name: String,
    folder_path: String,
    media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_in_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_date: Option<String>,
    private: bool,
    status: LineStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<LineError>,
}

impl From<ManifestLine> for FileEntry {
    fn from(l: ManifestLine) -> Self {
        FileEntry {
            file_id: l.file_id,
            display_name: l.display_name,
            folder_path: l.folder_path,
            media_type: l.media_type,
            size_in_bytes: l.size_in_bytes,
            updated_date: l.updated_date,
            private: l.private,
            status: l.status,
            reason: l.reason,
            error: l.error,
        }
    }
}

/// A subfolder and what is in it (and below it).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FolderEntry {
    pub path: String,
    pub files: usize,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FilesPage {
    backup_id: String,
    folder: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    /// The folder's subfolders (first page only, and not when searching).
    #[serde(skip_serializing_if = "Option::is_none")]
    folders: Option<Vec<FolderEntry>>,
    #[serde(skip_serializing_if = "is_zero")]
    folders_omitted: usize,
    files: Vec<FileEntry>,
    /// Files that match, on every page.
    matched: usize,
    next_cursor: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A folder path without its trailing `/`; the root is empty.
fn normal_folder(path: &str) -> &str {
    path.trim_end_matches('/')
}

/// What one pass over a manifest keeps: one page of matching files, the match count, and
/// the subfolders of the folder looked at.
#[derive(Debug)]
pub struct Scan {
    pub page: Vec<ManifestLine>,
    pub matched: usize,
    pub folders: Vec<FolderEntry>,
    pub folders_omitted: usize,
}

/// The filter of one listing.
#[derive(Debug, Clone)]
pub struct Filter {
    pub listing: Listing,
    /// The folder, normalized (root = empty).
    pub folder: String,
    /// Lowercase name fragment; matches in the folder and below.
    pub q: Option<String>,
    pub offset: usize,
    pub limit: usize,
}

impl Filter {
    fn in_or_below(&self, folder: &str) -> bool {
        self.folder.is_empty()
            || folder == self.folder
            || folder
                .strip_prefix(self.folder.as_str())
                .is_some_and(|r| r.starts_with('/'))
    }

    fn matches(&self, line: &ManifestLine) -> bool {
        let folder = normal_folder(&line.folder_path);
        match self.listing {
            Listing::Failures => line.status == LineStatus::Failed && self.in_or_below(folder),
            Listing::Files => match &self.q {
                Some(q) => {
                    self.in_or_below(folder)
                        && (line.display_name.to_lowercase().contains(q.as_str()) || line.file_id.to_lowercase() == *q)
                }
                None => folder == self.folder,
            },
        }
    }

    /// The child of the listed folder that `folder` is in or below, if it is one.
    fn child<'f>(&self, folder: &'f str) -> Option<&'f str> {
        let rest = if self.folder.is_empty() {
            folder.strip_prefix('/')?
        } else {
            folder.strip_prefix(self.folder.as_str())?.strip_prefix('/')?
        };
        let segment = rest.split('/').next().filter(|s| !s.is_empty())?;
        Some(&folder[..folder.len() - rest.len() + segment.len()])
    }
}

/// One pass over manifest lines, fed one line at a time, keeping only what its filter
/// asks for: memory grows with the page and the number of subfolders, not with the
/// manifest.
pub struct Scanner<'f> {
    filter: &'f Filter,
    list_folders: bool,
    page: Vec<ManifestLine>,
    matched: usize,
    folders: BTreeMap<String, FolderEntry>,
    lines: usize,
}

impl<'f> Scanner<'f> {
    /// A scanner for `filter`.
    pub fn new(filter: &'f Filter) -> Self {
        Scanner {
            filter,
            list_folders: filter.listing == Listing::Files && filter.q.is_none(),
            page: Vec::new(),
            matched: 0,
            folders: BTreeMap::new(),
            lines: 0,
        }
    }

    /// The next line (JSON text, without its newline).
    pub fn line(&mut self, text: &[u8]) -> Result<(), String> {
        self.lines += 1;
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let line: ManifestLine = serde_json::from_slice(text)
            .map_err(|e| format!("line {} of the manifest is unreadable: {e}", self.lines))?;
        if self.list_folders {
            if let Some(child) = self.filter.child(normal_folder(&line.folder_path)) {
                let entry = self.folders.entry(child.to_owned()).or_insert_with(|| FolderEntry {
                    path: child.to_owned(),
                    ..FolderEntry::default()
                });
                entry.files += 1;
                entry.bytes += line.size_in_bytes.unwrap_or(0);
            }
        }
        if self.filter.matches(&line) {
            if self.matched >= self.filter.offset && self.page.len() < self.filter.limit {
                self.page.push(line);
            }
            self.matched += 1;
        }
        Ok(())
    }

    /// What the pass kept.
    pub fn finish(self) -> Scan {
        let folders_omitted = self.folders.len().saturating_sub(MAX_FOLDERS);
        Scan {
            page: self.page,
            matched: self.matched,
            folders: self.folders.into_values().take(MAX_FOLDERS).collect(),
            folders_omitted,
        }
    }
}

/// [`Scanner`] over a reader of manifest lines.
pub fn scan<R: BufRead>(reader: R, filter: &Filter) -> Result<Scan, String> {
    let mut scanner = Scanner::new(filter);
    for text in reader.split(b'\n') {
        let text = text.map_err(|e| format!("the manifest could not be read: {e}"))?;
        scanner.line(&text)?;
    }
    Ok(scanner.finish())
}

/// The decompressed manifest, written in pieces, cut into lines for a [`Scanner`]: the
/// inner writer of a streaming gzip decoder.
struct LineSink<'s, 'f> {
    scanner: &'s mut Scanner<'f>,
    partial: Vec<u8>,
}

impl std::io::Write for LineSink<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let result = if self.partial.is_empty() {
                self.scanner.line(&rest[..i])
            } else {
                self.partial.extend_from_slice(&rest[..i]);
                let line = std::mem::take(&mut self.partial);
                self.scanner.line(&line)
            };
            result.map_err(std::io::Error::other)?;
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Scans a gzip'd manifest that arrives in `chunks`, without holding it whole.
pub async fn scan_gzip_stream<S>(mut chunks: S, filter: &Filter) -> Result<Scan, String>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, String>> + Unpin,
{
    use std::io::Write;
    let mut scanner = Scanner::new(filter);
    let mut decoder = flate2::write::GzDecoder::new(LineSink {
        scanner: &mut scanner,
        partial: Vec::new(),
    });
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| format!("the manifest could not be read: {e}"))?;
        decoder
            .write_all(&chunk)
            .map_err(|e| format!("the manifest could not be read: {e}"))?;
    }
    let mut sink = decoder
        .finish()
        .map_err(|e| format!("the manifest is not gzip'd JSON lines: {e}"))?;
    let last = std::mem::take(&mut sink.partial);
    sink.scanner.line(&last)?;
    Ok(scanner.finish())
}

/// `GET /backups/<id>/files?folder=/Shop&q=leon&cursor=…&limit=…` and
/// `GET /backups/<id>/failures?folder=…&cursor=…&limit=…`.
pub async fn files(
    env: &JobsEnv<'_>,
    backup_ref: &str,
    query: &[(String, String)],
    listing: Listing,
) -> Result<(HttpResponse, RequestSummary), ApiError> {
    match listing {
        Listing::Files => known_params(query, &["folder", "q", "cursor", "limit"])?,
        Listing::Failures => known_params(query, &["folder", "cursor", "limit"])?,
    }
    let limit = limit(query, FILES_PAGE)?;
    let offset = match param(query, "cursor") {
        None | Some("") => 0,
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| invalid("cursor", "must be the previous page's nextCursor"))?,
    };
    let folder = param(query, "folder").unwrap_or("");
    if !folder.is_empty() && !folder.starts_with('/') {
        return Err(invalid("folder", "must be a folder path such as /Shop"));
    }
    let q = param(query, "q")
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    let filter = Filter {
        listing,
        folder: normal_folder(folder).to_owned(),
        q,
        offset,
        limit,
    };
    let store = backups_store(env)?;
    let backup_id = if backup_ref == "latest" {
        read_latest(&store)
            .await?
            .ok_or_else(|| ApiError::NotFound("there is no complete backup yet".to_owned()))?
            .backup_id
    } else {
        backup_ref.to_owned()
    };
    let key = store.key(&format!("backups/{backup_id}/manifest.jsonl.gz"));
    let unreadable = |e: crate::storage::StoreError| ApiError::Internal(format!("the manifest could not be read: {e}"));
    if store.head(&key).await.map_err(unreadable)?.is_none() {
        return Err(ApiError::NotFound(format!(
            "backup {backup_id} has no manifest (it did not finish)"
        )));
    }
    let chunks = store.get_stream(&key, None).await.map_err(unreadable)?;
    let found = scan_gzip_stream(chunks, &filter).await.map_err(ApiError::Internal)?;
    let end = offset + found.page.len();
    let first_page = offset == 0;
    let body = FilesPage {
        backup_id,
        folder: if filter.folder.is_empty() {
            "/".to_owned()
        } else {
            filter.folder.clone()
        },
        q: filter.q.clone(),
        folders: (listing == Listing::Files && filter.q.is_none() && first_page).then_some(found.folders),
        folders_omitted: if first_page { found.folders_omitted } else { 0 },
        files: found.page.into_iter().map(FileEntry::from).collect(),
        matched: found.matched,
        next_cursor: (end < found.matched).then(|| end.to_string()),
    };
    let count = body.files.len();
    let response = json_response(200, &body, None)?;
    Ok((response, summary(200, None, count)))
}

/// One running job in `GET /jobs`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunningJob {
    job_id: String,
    kind: Option<jobs::JobKind>,
    started_at: Option<String>,
    progress: Progress,
}

#[derive(Debug, Serialize)]
struct Progress {
    done: usize,
    total: usize,
}

#[derive(Serialize)]
struct RunningJobs {
    jobs: Vec<RunningJob>,
}

/// `GET /jobs`: the jobs whose executions are running, with their progress.
pub async fn running_jobs(env: &JobsEnv<'_>) -> Result<(HttpResponse, RequestSummary), ApiError> {
    let (store, engine) = match (env.app.store(env.credentials), env.app.engine.as_ref()) {
        (Some(store), Some(engine)) => (store, engine),
        _ => return Err(ApiError::AsyncDisabled),
    };
    let names = engine
        .running(MAX_RUNNING)
        .await
        .map_err(|e| ApiError::Internal(format!("the running jobs could not be listed: {e}")))?;
    let store = &store;
    let found: Vec<Result<Option<RunningJob>, ApiError>> = stream::iter(names)
        .map(|name| async move {
            // Executions of other sites (or of no job) have no claim under this site.
            let Some(claim) = jobs::read_claim(store, &name).await.map_err(storage_error)? else {
                return Ok(None);
            };
            let (done, total) = jobs::steps::progress(store, &name).await.map_err(storage_error)?;
            Ok(Some(RunningJob {
                kind: Some(claim.request.kind()),
                started_at: Some(claim.created_at),
                job_id: name,
                progress: Progress { done, total },
            }))
        })
        .buffered(AT_ONCE)
        .collect()
        .await;
    let mut list = Vec::new();
    for job in found {
        if let Some(job) = job? {
            list.push(job);
        }
    }
    let count = list.len();
    let response = json_response(200, &RunningJobs { jobs: list }, None)?;
    Ok((response, summary(200, None, count)))
}

/// The object a body holds under `wrapper`, or the body itself.
fn unwrap_body(body: &[u8], wrapper: &str) -> Result<Box<RawValue>, ApiError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::Request(RequestError::InvalidJson(e.to_string())))?
    };
    let object = match value {
        Value::Object(mut map) if map.contains_key(wrapper) => map.remove(wrapper).unwrap_or(Value::Null),
        Value::Object(map) => Value::Object(map),
        _ => return Err(invalid(wrapper, "the body must be a JSON object")),
    };
    RawValue::from_string(object.to_string()).map_err(|e| invalid(wrapper, e.to_string()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BackupAccepted<'a> {
    request_id: &'a str,
    job_id: String,
    backup_id: String,
    status: &'static str,
    already_started: bool,
    status_url: String,
}

/// `POST /backups`: a stored backup now, as a job (`{"backup": {…}}`, the options object
/// itself, or an empty body for the defaults).
pub async fn start_backup(
    env: &JobsEnv<'_>,
    body: &[u8],
    ctx: &CallContext,
) -> Result<(HttpResponse, RequestSummary), ApiError> {
    let options = unwrap_body(body, "backup")?;
    if env.app.store(env.credentials).is_none() || env.app.engine.is_none() {
        return Err(ApiError::AsyncDisabled);
    }
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let started = crate::backup::start_job(env.app, Some(&options), &now, env.request_id, ctx)
        .await
        .map_err(|e| match e {
            BackupError::InvalidOptions(m) => invalid("backup", m),
            other => ApiError::Internal(format!("the backup could not be started: {other}")),
        })?
        .ok_or(ApiError::AsyncDisabled)?;
    let job_id = started["jobId"].as_str().unwrap_or_default().to_owned();
    let status_url = format!("{}/jobs/{job_id}", env.base);
    let response = json_response(
        202,
        &BackupAccepted {
            request_id: env.request_id,
            backup_id: started["backupId"].as_str().unwrap_or_default().to_owned(),
            already_started: started["alreadyStarted"].as_bool().unwrap_or(false),
            status: "RUNNING",
            status_url: status_url.clone(),
            job_id: job_id.clone(),
        },
        Some(&status_url),
    )?;
    Ok((response, summary(202, Some(&job_id), 0)))
}

/// `POST /verifies` (`{"backupId": "latest"}`, or `{"verify": {…}}`): the backup checked
/// against its manifest, answered when it fits the caller's time.
pub async fn verify(
    env: &JobsEnv<'_>,
    body: &[u8],
    ctx: &CallContext,
) -> Result<(HttpResponse, RequestSummary), ApiError> {
    let options = unwrap_body(body, "verify")?;
    let map: serde_json::Map<String, Value> =
        serde_json::from_str(options.get()).map_err(|_| invalid("verify", "must be a JSON object"))?;
    let mut reference = "latest".to_owned();
    for (key, value) in map {
        match (key.as_str(), value.as_str()) {
            ("backupId", Some(id)) if id == "latest" || crate::backup::verify::is_backup_id(id) => {
                reference = id.to_owned();
            }
            ("backupId", _) => return Err(invalid("backupId", "must be `latest` or a backup ID")),
            (other, _) => return Err(invalid(other, "is not a field of a verification")),
        }
    }
    let store = backups_store(env)?;
    let work = crate::backup::verify::verify(&store, &reference);
    let answer = match ctx.respond_by {
        Some(by) => tokio::time::timeout_at(by, work).await.map_err(|_| ApiError::TooLong(
            "the verification did not finish within the HTTP answer time; run it as a direct invoke ({\"verify\": {…}}) or with archiver-local verify".to_owned(),
        ))?,
        None => work.await,
    };
    let answer = answer.map_err(|e| match e {
        crate::backup::verify::VerifyError::NotFound(m) => ApiError::NotFound(format!("no backup {m}")),
        crate::backup::verify::VerifyError::Unreadable(m) => ApiError::Internal(m),
    })?;
    tracing::info!(backup_id = %answer.backup_id, checked = answer.checked_files, problems = answer.problem_count, "verified");
    let count = answer.checked_files;
    let response = json_response(200, &answer, None)?;
    Ok((response, summary(200, None, count)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(folder: &str, name: &str, status: LineStatus) -> String {
        serde_json::to_string(&serde_json::json!({
            "fileId": format!("id-{folder}-{name}"), "displayName": name, "folderPath": folder,
            "mediaType": "IMAGE", "sizeInBytes": 10, "private": false, "status": status,
        }))
        .unwrap()
    }

    fn manifest() -> String {
        [
            line("/", "a.jpg", LineStatus::Stored),
            line("/", "b.jpg", LineStatus::Failed),
            line("/Shop", "leon.jpg", LineStatus::Stored),
            line("/Shop", "shoe.png", LineStatus::Stored),
            line("/Shop B", "x.jpg", LineStatus::Stored),
            line("/Shop/Summer", "Leon-beach.jpg", LineStatus::Failed),
            line("/Shop/Summer/Deep", "z.jpg", LineStatus::Stored),
        ]
        .join("\n")
    }

    fn run(listing: Listing, folder: &str, q: Option<&str>, offset: usize, limit: usize) -> Scan {
        let filter = Filter {
            listing,
            folder: normal_folder(folder).to_owned(),
            q: q.map(str::to_lowercase),
            offset,
            limit,
        };
        scan(manifest().as_bytes(), &filter).unwrap()
    }

    fn names(s: &Scan) -> Vec<&str> {
        s.page.iter().map(|l| l.display_name.as_str()).collect()
    }

    #[test]
    fn a_folder_lists_its_files_and_its_subfolders_with_what_is_below_them() {
        let root = run(Listing::Files, "/", None, 0, 100);
        assert_eq!(names(&root), ["a.jpg", "b.jpg"]);
        let paths: Vec<(&str, usize)> = root.folders.iter().map(|f| (f.path.as_str(), f.files)).collect();
        assert_eq!(paths, [("/Shop", 4), ("/Shop B", 1)]);
        let shop = run(Listing::Files, "/Shop", None, 0, 100);
        assert_eq!(names(&shop), ["leon.jpg", "shoe.png"]);
        assert_eq!(
            shop.folders,
            [FolderEntry {
                path: "/Shop/Summer".into(),
                files: 2,
                bytes: 20
            }]
        );
        // A trailing slash is the same folder; "/Shop B" is not below "/Shop".
        assert_eq!(
            names(&run(Listing::Files, "/Shop/", None, 0, 100)),
            ["leon.jpg", "shoe.png"]
        );
    }

    #[test]
    fn pages_cover_the_matches_once() {
        let first = run(Listing::Files, "", Some("jpg"), 0, 2);
        let second = run(Listing::Files, "", Some("jpg"), 2, 2);
        let third = run(Listing::Files, "", Some("jpg"), 4, 2);
        assert_eq!(first.matched, 6);
        assert_eq!(names(&first), ["a.jpg", "b.jpg"]);
        assert_eq!(names(&second), ["leon.jpg", "x.jpg"]);
        assert_eq!(names(&third), ["Leon-beach.jpg", "z.jpg"]);
        assert!(first.folders.is_empty(), "a search lists no folders");
    }

    #[test]
    fn search_is_by_name_in_the_folder_and_below_whatever_the_case() {
        assert_eq!(
            names(&run(Listing::Files, "/Shop", Some("LEON"), 0, 10)),
            ["leon.jpg", "Leon-beach.jpg"]
        );
        assert_eq!(
            names(&run(Listing::Files, "/Shop/Summer", Some("leon"), 0, 10)),
            ["Leon-beach.jpg"]
        );
        assert_eq!(run(Listing::Files, "/Nowhere", Some("leon"), 0, 10).matched, 0);
    }

    #[test]
    fn failures_are_every_failed_file() {
        let failed = run(Listing::Failures, "", None, 0, 10);
        assert_eq!(names(&failed), ["b.jpg", "Leon-beach.jpg"]);
        assert_eq!(names(&run(Listing::Failures, "/Shop", None, 0, 10)), ["Leon-beach.jpg"]);
    }

    #[tokio::test]
    async fn a_gzip_stream_in_small_pieces_scans_as_the_whole_text_does() {
        use std::io::Write;
        let text = manifest();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        for (folder, q) in [("/", None), ("/Shop", None), ("", Some("jpg"))] {
            let filter = Filter {
                listing: Listing::Files,
                folder: normal_folder(folder).to_owned(),
                q: q.map(str::to_owned),
                offset: 1,
                limit: 3,
            };
            let whole = scan(text.as_bytes(), &filter).unwrap();
            let pieces: Vec<Result<bytes::Bytes, String>> =
                bytes.chunks(7).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
            let streamed = scan_gzip_stream(futures_util::stream::iter(pieces), &filter)
                .await
                .unwrap();
            assert_eq!(names(&streamed), names(&whole), "{folder} {q:?}");
            assert_eq!(streamed.matched, whole.matched);
            assert_eq!(streamed.folders, whole.folders);
        }
        let broken: Vec<Result<bytes::Bytes, String>> = vec![Ok(bytes::Bytes::from_static(b"not gzip"))];
        assert!(scan_gzip_stream(futures_util::stream::iter(broken), &run_filter())
            .await
            .is_err());
    }

    fn run_filter() -> Filter {
        Filter {
            listing: Listing::Files,
            folder: String::new(),
            q: None,
            offset: 0,
            limit: 10,
        }
    }

    #[test]
    fn a_bad_line_is_an_error_not_a_short_page() {
        let text = format!("{}\nnot json\n", line("/", "a", LineStatus::Stored));
        let filter = Filter {
            listing: Listing::Files,
            folder: String::new(),
            q: None,
            offset: 0,
            limit: 10,
        };
        assert!(scan(text.as_bytes(), &filter).unwrap_err().contains("line 2"));
    }

    #[test]
    fn bodies_may_be_wrapped_bare_or_empty() {
        assert_eq!(unwrap_body(b"", "verify").unwrap().get(), "{}");
        assert_eq!(
            unwrap_body(br#"{"verify": {"backupId": "latest"}}"#, "verify")
                .unwrap()
                .get(),
            r#"{"backupId":"latest"}"#
        );
        assert_eq!(
            unwrap_body(br#"{"backupId": "latest"}"#, "verify").unwrap().get(),
            r#"{"backupId":"latest"}"#
        );
        assert!(unwrap_body(b"[1]", "verify").is_err());
        assert!(unwrap_body(b"{", "verify").is_err());
    }

    #[test]
    fn limits_and_unknown_parameters_are_refused() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(limit(&q(&[]), 7).unwrap(), 7);
        assert_eq!(limit(&q(&[("limit", "500")]), 7).unwrap(), 500);
        assert!(limit(&q(&[("limit", "0")]), 7).is_err());
        assert!(limit(&q(&[("limit", "501")]), 7).is_err());
        assert!(known_params(&q(&[("folder", "/"), ("qq", "x")]), &["folder", "q"]).is_err());
    }
}
