//! A stored backup (`STORAGE_BUCKET` set), run in one invocation: the plan step (listing,
//! folder paths, batches), every batch step (a few at a time), then the finish step.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::batch::{self, BatchEnv};
use super::finish::{self, FinishEnv};
use super::folders::{FolderGap, FolderTree};
use super::incremental::{self, Changes};
use super::manifest::{LineStatus, ManifestLine, PreviousCopy};
use super::options::{BackupOptions, ROOTS};
use super::plan::{self, PlannedFile};
use super::steps::{BatchItem, BatchKind, BatchOutcome, FileMeta};
use crate::domain::outcome::FailureError;
use crate::mail::render::TypeCount;
use crate::storage::Store;
use crate::wix::{CallContext, WixClient};

/// Batches transferred at once in one invocation. An archive of 1000 files is often only a
/// few parts, so one batch alone leaves S3 idle around its first and last part and while its
/// directory is read back; four keep the copy near the pair's rate. Each holds up to five
/// 8 MiB parts in memory (the template's 512 MB leaves room).
pub const BATCHES_AT_ONCE: usize = 4;
/// Private files per batch item.
pub const PRIVATE_PER_ITEM: usize = 100;

/// What the plan step hands the batch and finish steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPlan {
    pub backup_id: String,
    /// RFC 3339, the backup's start.
    pub started_at: String,
    pub full: bool,
    pub items: Vec<BatchItem>,
    /// `SKIPPED` lines of the listing.
    pub skipped: Vec<ManifestLine>,
    /// Lines carried over unchanged from the previous backup (incremental).
    pub carried: Vec<ManifestLine>,
    pub listed_files: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_error: Option<FailureError>,
    pub root_folder: String,
    pub media_types: Vec<String>,
    pub email_to: Vec<String>,
    pub by_media_type: Vec<TypeCount>,
    pub total_size_bytes: u64,
    /// Notes for the report (a previous manifest that could not be read, …).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// How the listing differs from the previous backup.
    pub changes: Changes,
    /// The last full backup (ID, completion time) an incremental one builds on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_full: Option<(String, String)>,
    /// Earlier copies of the files this backup stores again, kept referenced by the lines
    /// of those that fail.
    #[serde(default)]
    pub previous_copies: HashMap<String, PreviousCopy>,
    /// The backup `latest.json` named when this one started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_latest: Option<String>,
}

/// `YYYYMMDDTHHMMSSZ-<8 hex>` for a backup started at `at`: keys sort by time.
pub fn backup_id(at: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{:08x}", fastrand::u32(..))
}

/// The backup ID of a scheduled time: the same time (and site) is the same ID.
pub fn backup_id_for(at: SystemTime, site: &str) -> String {
    use sha2::Digest;
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
    let digest = sha2::Sha256::digest(format!("{site}\n{stamp}").as_bytes());
    format!("{compact}-{}", hex::encode(&digest[..4]))
}

/// The plan step: reads the folder names and the previous backup while the listing (made
/// here, or in steps of a job's own) comes in, and cuts what is new or changed into
/// batches; unchanged files are carried over.
#[allow(clippy::too_many_arguments)]
pub async fn plan(
    wix: &WixClient,
    ctx: &CallContext,
    store: &Store,
    options: &BackupOptions,
    backup_id: String,
    started_at: SystemTime,
    full_every_days: u32,
    listing: impl std::future::Future<Output = plan::Listing>,
) -> StoredPlan {
    let (listing, (mut tree, gap), previous) = tokio::join!(
        listing,
        FolderTree::search(wix, ctx, &options.root_folder),
        incremental::read_previous(store)
    );
    let full = incremental::is_full(&previous, options.full, full_every_days, started_at);
    let roots: Vec<&str> = ROOTS.iter().map(|(_, id)| *id).collect();
    match gap {
        Some(FolderGap::SearchRefused) => {
            let wanted: Vec<&str> = listing.folders.names.iter().map(String::as_str).collect();
            if let Some(e) = tree.fill(wix, ctx, &wanted, &roots).await {
                tracing::warn!(error = %e, "folder names could not all be read; those folders show their ID");
            }
        }
        Some(FolderGap::Failed(e)) => {
            tracing::warn!(error = %e, "folder names could not all be read; those folders show their ID")
        }
        None => {}
    }
    let paths: Vec<String> = listing.folders.names.iter().map(|id| tree.path(id, &roots)).collect();
    let meta = |f: &PlannedFile| FileMeta {
        file_id: f.id.clone(),
        display_name: f.display_name.clone().unwrap_or_default(),
        folder_path: paths[f.folder as usize].clone(),
        media_type: listing.media_types.names[f.media_type as usize].clone(),
        size_in_bytes: f.size,
        hash: f.hash.clone(),
        updated_date: f.updated_date.clone(),
        private: f.private,
    };

    // Unchanged files keep their stored copy; the rest are stored now.
    let mut carried = Vec::new();
    let mut previous_copies = HashMap::new();
    let mut to_store: HashSet<&str> = HashSet::new();
    let mut changes = Changes::default();
    for f in &listing.kept {
        let m = meta(f);
        let before = previous.lines.get(&f.id);
        let unchanged = before.and_then(|b| incremental::carried(&m, b));
        match (before, &unchanged) {
            (None, _) => changes.new += 1,
            (Some(_), None) => changes.changed += 1,
            (Some(_), Some(_)) => {}
        }
        if let (false, Some(line)) = (full, unchanged) {
            carried.push(line);
            continue;
        }
        if let Some(copy) = before.and_then(previous_copy) {
            previous_copies.insert(f.id.clone(), copy);
        }
        to_store.insert(f.id.as_str());
    }
    let listed_ids: HashSet<&str> = listing
        .kept
        .iter()
        .chain(&listing.skipped_files)
        .map(|f| f.id.as_str())
        .collect();
    changes.new += listing
        .skipped_files
        .iter()
        .filter(|f| !previous.lines.contains_key(&f.id))
        .count();
    changes.removed = previous
        .lines
        .keys()
        .filter(|id| !listed_ids.contains(id.as_str()))
        .count();

    let by_id: HashMap<&str, &PlannedFile> = listing.kept.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut items = Vec::new();
    for batch in listing.batches_of(|f| to_store.contains(f.id.as_str())) {
        let files = batch
            .file_ids
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|f| meta(f))
            .collect();
        items.push(BatchItem {
            backup_id: backup_id.clone(),
            number: items.len() as u32 + 1,
            kind: BatchKind::Archive,
            files,
        });
    }
    let private: Vec<FileMeta> = listing
        .kept
        .iter()
        .filter(|f| f.private && to_store.contains(f.id.as_str()))
        .map(meta)
        .collect();
    for chunk in private.chunks(PRIVATE_PER_ITEM) {
        items.push(BatchItem {
            backup_id: backup_id.clone(),
            number: items.len() as u32 + 1,
            kind: BatchKind::Private,
            files: chunk.to_vec(),
        });
    }
    let skipped = listing
        .skipped
        .iter()
        .zip(&listing.skipped_files)
        .map(|(s, f)| {
            let mut line = meta(f).line(LineStatus::Skipped);
            line.reason = Some(s.reason.to_owned());
            line
        })
        .collect();
    let mut by_type: Vec<usize> = vec![0; listing.media_types.names.len()];
    let mut total_size = 0u64;
    for f in &listing.kept {
        by_type[f.media_type as usize] += 1;
        total_size += f.size.unwrap_or(0);
    }
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
    tracing::info!(
        listed = listing.listed,
        full,
        batches = items.len(),
        unchanged = carried.len(),
        skipped = listing.skipped.len(),
        "backup planned"
    );
    StoredPlan {
        backup_id,
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        full,
        items,
        skipped,
        carried,
        listed_files: listing.listed,
        listing_error: listing.error,
        root_folder: options.root_folder.clone(),
        media_types: options.media_types.clone(),
        email_to: options.email_to.clone(),
        by_media_type,
        total_size_bytes: total_size,
        warnings: previous.warning.into_iter().collect(),
        changes,
        previous_full: match (&previous.latest, full) {
            (Some(l), false) => Some((l.full_backup_id.clone(), l.full_completed_at.clone())),
            _ => None,
        },
        previous_copies,
        previous_latest: previous.latest_id.clone(),
    }
}

/// Where an earlier backup kept a file: its own object when stored then, or the copy its
/// failed line still pointed at.
fn previous_copy(line: &ManifestLine) -> Option<PreviousCopy> {
    match line.status {
        LineStatus::Stored => Some(PreviousCopy {
            backup_id: line.backup_id.clone()?,
            object: line.object.clone()?,
            entry: line.entry.clone(),
            crc32: line.crc32.clone(),
            object_checksum: line.object_checksum.clone(),
        }),
        LineStatus::Failed => line.previous.clone(),
        LineStatus::Skipped => None,
    }
}

/// Every batch step of the plan, [`BATCHES_AT_ONCE`] at a time, in plan order.
pub async fn run_batches(env: &BatchEnv<'_>, plan: &StoredPlan) -> Vec<BatchOutcome> {
    crate::progress::planned(plan.items.len(), plan.items.iter().map(|i| i.files.len()).sum());
    // A slow batch holds back neither the others nor the start of the ones after it.
    crate::archive::in_order(
        BATCHES_AT_ONCE,
        plan.items.iter().map(|item| async move {
            let outcome = batch::run(env, item).await;
            crate::progress::batch_done(item.files.len(), outcome.stored_bytes);
            outcome
        }),
    )
    .await
}

/// The whole stored backup in this invocation.
pub async fn run(
    env: &BatchEnv<'_>,
    options: &BackupOptions,
    full_every_days: u32,
    finish_env: &FinishEnv<'_>,
) -> finish::BackupSummary {
    let started = SystemTime::now();
    let id = backup_id(started);
    tracing::info!(backup_id = %id, "stored backup started");
    let listing = plan::list_files(env.wix, env.ctx, options);
    let plan = plan(
        env.wix,
        env.ctx,
        env.store,
        options,
        id,
        started,
        full_every_days,
        listing,
    )
    .await;
    let outcomes = run_batches(env, &plan).await;
    finish::finish(finish_env, env.store, &plan, outcomes, env.ctx).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backup_ids_sort_by_time() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let id = backup_id(at);
        assert!(id.starts_with("20270115T080000Z-"), "{id}");
        assert_eq!(id.len(), "20270115T080000Z-".len() + 8);
        assert!(backup_id(at + Duration::from_secs(1)) > id);
    }
}
