//! The scheduled backup of the whole media library: list every file (Search Files, all
//! pages), skip what cannot be archived, pack public files into archives ordered by folder,
//! give private files their own temporary links, and report.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::app::App;
use crate::archive::{self, PlannedArchive, PrivateFile};
use crate::config::{self, Config};
use crate::domain::address;
use crate::domain::batch::MAX_BATCH;
use crate::domain::outcome::{FailureCode, FailureError, Outcome};
use crate::entry::lambda::EventError;
use crate::report::{self, MailContext, Skipped, TypeCount};
use crate::wix::{CallContext, ListedFile, WixClient, WixError};

/// Files asked for per Search Files page (Wix allows up to 100).
pub const PAGE_SIZE: u32 = 100;
/// Folders asked for per List Folders page.
const FOLDER_PAGE_SIZE: u32 = 100;
/// A listing longer than this is treated as a Wix fault (10 million files).
const MAX_PAGES: usize = 100_000;
/// Root folders Search Files accepts, and the parent folder ID each stands for.
const ROOTS: [(&str, &str); 3] = [
    ("MEDIA_ROOT", "media-root"),
    ("VISITOR_UPLOADS_ROOT", "visitor-uploads"),
    ("TRASH_ROOT", "trash-root"),
];
/// Most recipients of one backup report.
const MAX_RECIPIENTS: usize = 50;

/// What one backup does, after the event's options are laid over the environment's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupOptions {
    pub media_types: Vec<String>,
    pub root_folder: String,
    pub include_private: bool,
    pub email_to: Vec<String>,
}

impl BackupOptions {
    /// The defaults from the configuration, with `raw` (the event's `backup` object) over them.
    pub fn parse(raw: Option<&RawValue>, config: &Config) -> Result<Self, String> {
        let mut options = BackupOptions {
            media_types: config.backup_media_types.clone(),
            root_folder: "MEDIA_ROOT".to_owned(),
            include_private: config.backup_include_private,
            email_to: config.backup_email_to.clone(),
        };
        let Some(raw) = raw else {
            return Ok(options);
        };
        let map: Map<String, Value> =
            serde_json::from_str(raw.get()).map_err(|_| "`backup` must be a JSON object".to_owned())?;
        for (key, value) in map {
            match key.as_str() {
                "mediaTypes" => {
                    let list = string_list(&value).ok_or("`mediaTypes` must be an array of strings")?;
                    options.media_types =
                        config::parse_media_types(&list.join(",")).map_err(|e| format!("`mediaTypes` {e}"))?;
                }
                "rootFolder" => {
                    let root = value.as_str().ok_or("`rootFolder` must be a string")?;
                    if !ROOTS.iter().any(|(name, _)| *name == root) {
                        return Err(format!(
                            "`rootFolder` must be one of {}",
                            ROOTS.map(|(name, _)| name).join(", ")
                        ));
                    }
                    options.root_folder = root.to_owned();
                }
                "includePrivate" => {
                    options.include_private = value.as_bool().ok_or("`includePrivate` must be true or false")?;
                }
                "emailTo" => {
                    let list = string_list(&value).ok_or("`emailTo` must be an array of addresses")?;
                    if list.len() > MAX_RECIPIENTS {
                        return Err(format!("`emailTo` lists more than {MAX_RECIPIENTS} addresses"));
                    }
                    if let Some(i) = list.iter().position(|a| !address::is_valid(a.trim())) {
                        return Err(format!("`emailTo[{i}]` is not a valid e-mail address"));
                    }
                    options.email_to = list.iter().map(|a| a.trim().to_owned()).collect();
                }
                other => return Err(format!("`{other}` is not a known option")),
            }
        }
        Ok(options)
    }

    fn root_folder_id(&self) -> &'static str {
        ROOTS
            .iter()
            .find(|(name, _)| *name == self.root_folder)
            .map_or("media-root", |(_, id)| id)
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The backup's JSON report: the HTTP response's shape plus the listing's accounts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupReport {
    pub request_id: String,
    pub file_count: usize,
    pub duplicates_removed: usize,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub emailed_to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_error: Option<String>,
    pub listed_files: usize,
    pub skipped_files: usize,
    pub skipped: Vec<Skipped>,
    pub incomplete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureError>,
    pub root_folder: String,
    pub media_types: Vec<String>,
    pub by_media_type: Vec<TypeCount>,
    pub total_size_bytes: u64,
    pub duration_ms: u64,
}

/// Counts for the invocation's summary log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupCounts {
    pub listed: usize,
    pub skipped: usize,
    pub archives: usize,
    pub private_files: usize,
    pub failed_files: usize,
    pub emailed: usize,
    pub incomplete: bool,
}

/// Runs a backup for a schedule event, with `options` over the environment's defaults.
pub async fn run_event(
    app: &App,
    options: Option<&RawValue>,
    request_id: &str,
    ctx: &CallContext,
) -> Result<(Value, BackupCounts), EventError> {
    let started = std::time::Instant::now();
    let options = BackupOptions::parse(options, &app.config).map_err(EventError::InvalidBackupOptions)?;
    app.credentials_by(ctx)
        .await
        .map_err(|e| EventError::CredentialsUnavailable(format!("the credentials could not be read: {e}")))?;
    tracing::info!(root = %options.root_folder, media_types = ?options.media_types, include_private = options.include_private, "backup started");

    let mut report = backup(&app.wix, ctx, &options, app.config.private_link_expiration_minutes).await;
    report.request_id = request_id.to_owned();

    if options.email_to.is_empty() {
        tracing::info!("the backup report is not mailed: no recipients (BACKUP_EMAIL_TO or emailTo)");
    } else if app.config.email_from.is_none() || app.mailer.is_none() {
        tracing::info!("the backup report is not mailed: EMAIL_FROM is unset");
    } else {
        let total_size = report::human_size(report.total_size_bytes);
        let title = format!(
            "Wix media backup: {} files in {} archives{}",
            report.file_count,
            report.outcome.archives.len(),
            if report.incomplete { " (incomplete)" } else { "" }
        );
        let mail = MailContext {
            title,
            request_id,
            file_count: report.file_count,
            archives: &report.outcome.archives,
            private_files: &report.outcome.private_files,
            failed: &report.outcome.failed,
            failed_count: report.outcome.failed_files(),
            skipped: &report.skipped,
            by_type: &report.by_media_type,
            total_size: Some(total_size),
        };
        let (to, error) = report::send(app, &options.email_to, &mail, ctx.respond_by).await;
        report.emailed_to = to;
        report.email_error = error;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    let counts = BackupCounts {
        listed: report.listed_files,
        skipped: report.skipped_files,
        archives: report.outcome.archives.len(),
        private_files: report.outcome.private_files.len(),
        failed_files: report.outcome.failed_files(),
        emailed: report.emailed_to.len(),
        incomplete: report.incomplete,
    };
    let value = serde_json::to_value(&report)
        .map_err(|e| EventError::BackupFailed(format!("the report could not be encoded: {e}")))?;
    Ok((value, counts))
}

/// A file kept from the listing, with only what the backup needs.
struct Kept {
    id: String,
    folder: u32,
    media_type: u16,
    size: u64,
    private: bool,
    display_name: Option<String>,
}

/// Small strings seen many times (folder IDs, media types), stored once.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        i
    }
}

struct Listing {
    kept: Vec<Kept>,
    /// How many of `kept` are private.
    private_kept: usize,
    skipped: Vec<Skipped>,
    listed: usize,
    duplicates: usize,
    error: Option<FailureError>,
    folders: Interner,
    media_types: Interner,
}

/// Runs the backup itself: listing, folder names, archives, private links.
pub async fn backup(
    client: &WixClient,
    ctx: &CallContext,
    options: &BackupOptions,
    expiration_minutes: u32,
) -> BackupReport {
    let root_id = options.root_folder_id();
    let (listing, (paths, folder_error)) =
        tokio::join!(list_files(client, ctx, options), folder_paths(client, ctx, root_id));
    if let Some(e) = &folder_error {
        tracing::warn!(error = %e, "folder names could not all be read; folders without a name show their ID");
    }
    // Each listed folder's path, and its rank among the distinct paths (folders with the same
    // path share a rank), so files sort by a number instead of each carrying its path.
    let folder_paths: Vec<String> = listing
        .folders
        .names
        .iter()
        .map(|id| {
            if id == root_id {
                "/".to_owned()
            } else {
                paths.get(id).cloned().unwrap_or_else(|| format!("/{id}"))
            }
        })
        .collect();
    let mut sorted_paths: Vec<&str> = folder_paths.iter().map(String::as_str).collect();
    sorted_paths.sort_unstable();
    sorted_paths.dedup();
    let rank: Vec<u32> = folder_paths
        .iter()
        .map(|p| sorted_paths.binary_search(&p.as_str()).unwrap_or_default() as u32)
        .collect();

    let file_count = listing.kept.len();
    let mut public: Vec<(u32, String)> = Vec::with_capacity(file_count - listing.private_kept);
    let mut private = Vec::with_capacity(listing.private_kept);
    let mut by_type: Vec<usize> = vec![0; listing.media_types.names.len()];
    let mut total_size = 0u64;
    for file in listing.kept {
        by_type[file.media_type as usize] += 1;
        total_size += file.size;
        if file.private {
            private.push(PrivateFile {
                file_id: file.id,
                display_name: file.display_name,
            });
        } else {
            public.push((rank[file.folder as usize], file.id));
        }
    }
    // Stable: files of one folder keep the listing's order.
    public.sort_by_key(|(rank, _)| *rank);
    let mut planned: Vec<PlannedArchive> = Vec::with_capacity(public.len().div_ceil(MAX_BATCH));
    let mut files = public.into_iter().peekable();
    while files.peek().is_some() {
        let mut file_ids = Vec::with_capacity(MAX_BATCH);
        let mut folders: Vec<String> = Vec::new();
        let mut last_rank = None;
        for (rank, id) in files.by_ref().take(MAX_BATCH) {
            if last_rank != Some(rank) {
                folders.push(sorted_paths[rank as usize].to_owned());
                last_rank = Some(rank);
            }
            file_ids.push(id);
        }
        planned.push(PlannedArchive { file_ids, folders });
    }
    tracing::info!(
        listed = listing.listed,
        kept = file_count,
        archives = planned.len(),
        private = private.len(),
        "backup listed"
    );

    let mut archived = Outcome::default();
    let mut linked = Outcome::default();
    tokio::join!(
        archive::archive_planned(client, ctx, planned, &mut archived),
        archive::link_private(client, ctx, private, expiration_minutes, &mut linked)
    );
    let mut outcome = Outcome {
        archives: archived.archives,
        private_files: linked.private_files,
        failed: archived.failed,
    };
    outcome.failed.extend(linked.failed);

    let mut by_media_type: Vec<TypeCount> = listing
        .media_types
        .names
        .iter()
        .zip(by_type)
        .filter(|(_, n)| *n > 0)
        .map(|(t, count)| TypeCount {
            media_type: t.clone(),
            count,
        })
        .collect();
    by_media_type.sort_by(|a, b| b.count.cmp(&a.count).then(a.media_type.cmp(&b.media_type)));
    BackupReport {
        request_id: String::new(),
        file_count,
        duplicates_removed: listing.duplicates,
        incomplete: listing.error.is_some(),
        error: listing.error,
        emailed_to: Vec::new(),
        email_error: None,
        listed_files: listing.listed,
        skipped_files: listing.skipped.len(),
        skipped: listing.skipped,
        outcome,
        root_folder: options.root_folder.clone(),
        media_types: options.media_types.clone(),
        by_media_type,
        total_size_bytes: total_size,
        duration_ms: 0,
    }
}

/// Follows the Search Files cursor to the end. A page that fails after the client's
/// retries ends the listing with what was listed so far and the error.
async fn list_files(client: &WixClient, ctx: &CallContext, options: &BackupOptions) -> Listing {
    let mut listing = Listing {
        kept: Vec::new(),
        private_kept: 0,
        skipped: Vec::new(),
        listed: 0,
        duplicates: 0,
        error: None,
        folders: Interner::default(),
        media_types: Interner::default(),
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursors: HashSet<String> = HashSet::new();
    let mut cursor: Option<String> = None;
    let settings = client.settings();
    let pace = Duration::from_secs(60) / settings.requests_per_minute.max(1);
    for page_no in 0.. {
        if page_no >= MAX_PAGES {
            listing.error = Some(listing_error(
                FailureCode::WixInvalidResponse,
                format!("Wix kept answering past {MAX_PAGES} pages; listing stopped"),
            ));
            break;
        }
        // Leave time to archive what is listed: stop listing when the remaining time
        // would not cover those calls at the configured pace.
        if let Some(deadline) = ctx.deadline {
            let private = listing.private_kept;
            let public = listing.kept.len() - private;
            let calls = public.div_ceil(MAX_BATCH) + private + 1;
            let needed = pace * calls as u32 + settings.timeout + Duration::from_secs(3);
            if Instant::now() + needed >= deadline {
                listing.error = Some(listing_error(
                    FailureCode::Deadline,
                    "listing stopped early to leave time to archive what was listed before the Lambda times out"
                        .to_owned(),
                ));
                break;
            }
        }
        let page = match client
            .search_files(
                ctx,
                &options.root_folder,
                &options.media_types,
                PAGE_SIZE,
                cursor.as_deref(),
            )
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(page = page_no, code = ?e.kind, status = e.status, "listing failed; the backup goes on with what was listed");
                listing.error = Some(with_context(e, "listing failed"));
                break;
            }
        };
        for file in page.items {
            keep(&mut listing, &mut seen, file, options.include_private);
        }
        match page.next {
            Some(next) if !cursors.insert(next.clone()) => {
                listing.error = Some(listing_error(
                    FailureCode::WixInvalidResponse,
                    "Wix returned a cursor it had already given; listing stopped".to_owned(),
                ));
                break;
            }
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    listing
}

fn keep(listing: &mut Listing, seen: &mut HashSet<String>, file: ListedFile, include_private: bool) {
    if !seen.insert(file.id.clone()) {
        listing.duplicates += 1;
        return;
    }
    listing.listed += 1;
    let reason = if file.state.as_deref() == Some("DELETED") {
        Some("DELETED")
    } else if file.operation_status.as_deref().is_some_and(|s| s != "READY") {
        Some("NOT_READY")
    } else if file.private && !include_private {
        Some("PRIVATE")
    } else {
        None
    };
    if let Some(reason) = reason {
        listing.skipped.push(Skipped {
            file_id: file.id,
            reason,
        });
        return;
    }
    let folder = listing
        .folders
        .intern(file.parent_folder_id.as_deref().unwrap_or("media-root"));
    let media_type = listing
        .media_types
        .intern(file.media_type.as_deref().unwrap_or("UNKNOWN")) as u16;
    listing.private_kept += usize::from(file.private);
    listing.kept.push(Kept {
        display_name: if file.private { file.display_name } else { None },
        id: file.id,
        folder,
        media_type,
        size: file.size_in_bytes.unwrap_or(0),
        private: file.private,
    });
}

/// Every folder's path under the root, level by level. A failure leaves the folders it
/// could not read unnamed, and says so.
async fn folder_paths(
    client: &WixClient,
    ctx: &CallContext,
    root_id: &str,
) -> (HashMap<String, String>, Option<WixError>) {
    let mut paths: HashMap<String, String> = HashMap::new();
    let mut level: Vec<(String, String)> = vec![(root_id.to_owned(), String::new())];
    let mut first_error = None;
    while !level.is_empty() {
        let results = archive::in_order(
            archive::calls_ahead(client),
            level.iter().map(|(id, _)| list_children(client, ctx, id)),
        )
        .await;
        let mut next = Vec::new();
        for ((_, parent_path), result) in level.iter().zip(results) {
            match result {
                Ok(children) => {
                    for (id, name) in children {
                        if paths.contains_key(&id) || id == root_id {
                            continue;
                        }
                        let path = format!("{parent_path}/{name}");
                        paths.insert(id.clone(), path.clone());
                        next.push((id, path));
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        level = next;
    }
    (paths, first_error)
}

async fn list_children(client: &WixClient, ctx: &CallContext, parent: &str) -> Result<Vec<(String, String)>, WixError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut cursors = HashSet::new();
    loop {
        let page = client
            .list_folders(ctx, parent, FOLDER_PAGE_SIZE, cursor.as_deref())
            .await?;
        for f in page.items {
            let name = f.display_name.filter(|n| !n.is_empty()).unwrap_or_else(|| f.id.clone());
            out.push((f.id, name.replace('/', "∕")));
        }
        match page.next {
            Some(next) if cursors.insert(next.clone()) => cursor = Some(next),
            _ => return Ok(out),
        }
    }
}

fn listing_error(code: FailureCode, message: String) -> FailureError {
    FailureError {
        code,
        status: None,
        message,
        wix_request_id: None,
    }
}

fn with_context(e: WixError, context: &str) -> FailureError {
    let mut failure = e.to_failure();
    failure.message = format!("{context}: {}", failure.message);
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "WIX_API_KEY" | "WIX_SITE_ID" | "CALLER_KEYS" => Some("x".into()),
            "BACKUP_EMAIL_TO" => Some("a@example.com".into()),
            _ => None,
        })
        .unwrap()
    }

    fn parse(json: &str) -> Result<BackupOptions, String> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        BackupOptions::parse(Some(&raw), &config())
    }

    #[test]
    fn options_over_defaults() {
        let d = BackupOptions::parse(None, &config()).unwrap();
        assert_eq!(
            (d.root_folder.as_str(), d.include_private, d.email_to.clone()),
            ("MEDIA_ROOT", true, vec!["a@example.com".to_owned()])
        );
        let o = parse(r#"{"mediaTypes": ["image", "VIDEO"], "includePrivate": false, "emailTo": ["b@example.com"], "rootFolder": "VISITOR_UPLOADS_ROOT"}"#).unwrap();
        assert_eq!(o.media_types, vec!["IMAGE", "VIDEO"]);
        assert!(!o.include_private);
        assert_eq!(o.email_to, vec!["b@example.com"]);
        assert_eq!(o.root_folder_id(), "visitor-uploads");
        assert!(parse(r#"{"emailTo": []}"#).unwrap().email_to.is_empty());
    }

    #[test]
    fn bad_options_name_the_option() {
        for (json, needle) in [
            (r#"{"mediaTypes": ["PHOTO"]}"#, "`mediaTypes`"),
            (r#"{"mediaTypes": "IMAGE"}"#, "`mediaTypes`"),
            (r#"{"rootFolder": "SOMEWHERE"}"#, "`rootFolder`"),
            (r#"{"includePrivate": "yes"}"#, "`includePrivate`"),
            (r#"{"emailTo": ["nope"]}"#, "`emailTo[0]`"),
            (r#"{"foo": 1}"#, "`foo`"),
            ("[]", "`backup`"),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
