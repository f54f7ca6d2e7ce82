//! The link-only backup (no `STORAGE_BUCKET`): the plan's archives and private files become
//! Wix-hosted links, reported and mailed.

use std::collections::HashMap;

use serde::Serialize;

use super::folders::{FolderGap, FolderTree};
use super::options::{BackupOptions, ROOTS};
use super::plan::{self, Listing, PlannedBatch, Skipped};
use crate::archive::{self, PlannedArchive, PrivateFile};
use crate::domain::outcome::{FailureError, Outcome};
use crate::mail::render::TypeCount;
use crate::wix::{CallContext, WixClient};

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
    /// Present when the report was cut down to fit Lambda's answer (see [`crate::domain::fit`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortened: Option<crate::domain::fit::Shortened>,
}

/// Lists the library, then makes the archive and private links while the folder names are
/// read beside them.
pub async fn backup(
    client: &WixClient,
    ctx: &CallContext,
    options: &BackupOptions,
    expiration_minutes: u32,
) -> BackupReport {
    let listing = plan::list_files(client, ctx, options).await;
    let batches = listing.batches();
    let private: Vec<PrivateFile> = listing
        .kept
        .iter()
        .filter(|f| f.private)
        .map(|f| PrivateFile {
            file_id: f.id.clone(),
            display_name: f.display_name.clone(),
        })
        .collect();
    tracing::info!(
        listed = listing.listed,
        kept = listing.kept.len(),
        archives = batches.len(),
        private = private.len(),
        "backup listed"
    );
    let planned: Vec<PlannedArchive> = batches
        .iter()
        .map(|b| PlannedArchive {
            file_ids: b.file_ids.clone(),
            folders: Vec::new(),
        })
        .collect();
    let mut archived = Outcome::default();
    let mut linked = Outcome::default();
    let ((mut tree, gap), ()) = tokio::join!(FolderTree::search(client, ctx, &options.root_folder), async {
        tokio::join!(
            archive::archive_planned(client, ctx, planned, &mut archived),
            archive::link_private(client, ctx, private, expiration_minutes, &mut linked)
        );
    });
    let roots: Vec<&str> = ROOTS.iter().map(|(_, id)| *id).collect();
    match gap {
        Some(FolderGap::SearchRefused) => {
            let wanted: Vec<&str> = listing.folders.names.iter().map(String::as_str).collect();
            if let Some(e) = tree.fill(client, ctx, &wanted, &roots).await {
                tracing::warn!(error = %e, "folder names could not all be read; those folders show their ID");
            }
        }
        Some(FolderGap::Failed(e)) => {
            tracing::warn!(error = %e, "folder names could not all be read; those folders show their ID")
        }
        None => {}
    }
    let paths: Vec<String> = listing.folders.names.iter().map(|id| tree.path(id, &roots)).collect();
    let mut outcome = Outcome {
        archives: archived.archives,
        private_files: linked.private_files,
        failed: archived.failed,
    };
    outcome.failed.extend(linked.failed);
    name_folders(&mut outcome, &batches, &paths);
    report(listing, outcome, options)
}

/// Each archive's folder paths, from the folders of the batch it came from.
fn name_folders(outcome: &mut Outcome, batches: &[PlannedBatch], paths: &[String]) {
    let owner: HashMap<&str, usize> = batches
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.file_ids.iter().map(move |id| (id.as_str(), i)))
        .collect();
    for archive in &mut outcome.archives {
        let batch = archive.file_ids.first().and_then(|id| owner.get(id.as_str()));
        archive.folders = batch.map_or_else(Vec::new, |&i| {
            let mut names: Vec<String> = batches[i].folders.iter().map(|f| paths[*f as usize].clone()).collect();
            names.sort();
            names.dedup();
            names
        });
    }
}

fn report(listing: Listing, outcome: Outcome, options: &BackupOptions) -> BackupReport {
    let mut by_type: Vec<usize> = vec![0; listing.media_types.names.len()];
    let mut total_size = 0u64;
    for file in &listing.kept {
        by_type[file.media_type as usize] += 1;
        total_size += file.size.unwrap_or(0);
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
    BackupReport {
        request_id: String::new(),
        file_count: listing.kept.len(),
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
        shortened: None,
    }
}
