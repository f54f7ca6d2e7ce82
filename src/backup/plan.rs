//! The plan step: list every file under the root (Search Files, all pages), skip what
//! cannot be backed up, and cut the public files into archives of at most 1000, grouped by
//! folder. Folder names are not needed for the plan (see [`super::folders`]), so the
//! archive calls can start as soon as the listing ends.

use std::collections::HashMap;
use std::time::Duration;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::options::BackupOptions;
use crate::domain::batch::MAX_BATCH;
use crate::domain::outcome::{FailureCode, FailureError};
use crate::wix::{CallContext, FileDescriptor, WixClient, WixError};

/// Files asked for per Search Files page (Wix allows up to 100).
pub const PAGE_SIZE: u32 = 100;
/// A listing longer than this is treated as a Wix fault (10 million files).
const MAX_PAGES: usize = 100_000;

/// A file left out of a backup, and why (`NOT_READY`, `DELETED`, `PRIVATE`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub file_id: String,
    pub reason: &'static str,
}

/// A file the backup keeps, with what its manifest line and its archive need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub id: String,
    pub display_name: Option<String>,
    /// Index into [`Listing::folders`].
    pub folder: u32,
    /// Index into [`Listing::media_types`].
    pub media_type: u16,
    pub size: Option<u64>,
    pub hash: Option<String>,
    pub updated_date: Option<String>,
    pub private: bool,
}

/// Small strings seen many times (folder IDs, media types), stored once.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    pub names: Vec<String>,
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

/// What the listing found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Files to back up, in listing order.
    pub kept: Vec<PlannedFile>,
    /// How many of `kept` are private.
    pub private_kept: usize,
    pub skipped: Vec<Skipped>,
    /// The skipped files themselves, in the order of `skipped` (their manifest lines).
    pub skipped_files: Vec<PlannedFile>,
    /// Files the search returned (of the asked media types), each once.
    pub listed: usize,
    /// Entries the search returned twice (pages that shifted under the cursor).
    pub duplicates: usize,
    /// Why the listing stopped before its end, if it did.
    pub error: Option<FailureError>,
    /// Parent folder IDs of kept files.
    pub folders: Interner,
    pub media_types: Interner,
    /// Search Files pages read.
    pub pages: usize,
}

/// One archive of the plan: up to 1000 public files, and the folders (indexes into
/// [`Listing::folders`]) they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBatch {
    pub file_ids: Vec<String>,
    pub folders: Vec<u32>,
}

impl Listing {
    /// Public files grouped by folder (folders in the order of their IDs, files of one
    /// folder in listing order), cut into the fewest archives of at most 1000.
    pub fn batches(&self) -> Vec<PlannedBatch> {
        self.batches_of(|_| true)
    }

    /// [`Listing::batches`] of the public files `wanted` keeps.
    pub fn batches_of(&self, wanted: impl Fn(&PlannedFile) -> bool) -> Vec<PlannedBatch> {
        let mut public: Vec<&PlannedFile> = self.kept.iter().filter(|f| !f.private && wanted(f)).collect();
        public.sort_by(|a, b| self.folders.names[a.folder as usize].cmp(&self.folders.names[b.folder as usize]));
        public
            .chunks(MAX_BATCH)
            .map(|chunk| {
                let mut folders: Vec<u32> = Vec::new();
                for f in chunk {
                    if folders.last() != Some(&f.folder) {
                        folders.push(f.folder);
                    }
                }
                PlannedBatch {
                    file_ids: chunk.iter().map(|f| f.id.clone()).collect(),
                    folders,
                }
            })
            .collect()
    }
}

/// Where a listing is: the next page's cursor, the cursors seen (a repeated one is a Wix
/// fault), the filter sent (dropped when Wix refuses it). Kept between the listing steps of
/// a job, so a library too large to list in one invocation is listed in several.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingProgress {
    pub cursor: Option<String>,
    pub cursors: Vec<String>,
    /// The media types filtered on at Wix; `None` before the first page.
    pub filter: Option<Vec<String>>,
    pub pages: usize,
    /// The last page has been read, or the listing stopped at `error`.
    pub done: bool,
    pub error: Option<FailureError>,
}

/// Reads Search Files page by page, from the start or from where a [`ListingProgress`] is.
pub struct Lister<'a> {
    client: &'a WixClient,
    options: &'a BackupOptions,
    progress: ListingProgress,
    cursors: FxHashSet<String>,
}

impl<'a> Lister<'a> {
    /// A listing from its first page.
    pub fn new(client: &'a WixClient, options: &'a BackupOptions) -> Self {
        Lister::resume(client, options, ListingProgress::default())
    }

    /// A listing from where `progress` is.
    pub fn resume(client: &'a WixClient, options: &'a BackupOptions, progress: ListingProgress) -> Self {
        let cursors = progress.cursors.iter().cloned().collect();
        Lister {
            client,
            options,
            progress,
            cursors,
        }
    }

    /// Where the listing is.
    pub fn progress(&self) -> &ListingProgress {
        &self.progress
    }

    /// Where the listing is, to be resumed later.
    pub fn into_progress(self) -> ListingProgress {
        self.progress
    }

    /// Stops the listing here with `error`.
    pub fn stop(&mut self, error: FailureError) {
        self.progress.error = Some(error);
        self.progress.done = true;
    }

    /// The next page's files; `None` once the listing is done (at its end, or at an error
    /// after the client's retries, kept in the progress).
    pub async fn next_page(&mut self, ctx: &CallContext) -> Option<Vec<FileDescriptor>> {
        loop {
            if self.progress.done {
                return None;
            }
            if self.progress.pages >= MAX_PAGES {
                self.stop(listing_error(
                    FailureCode::WixInvalidResponse,
                    format!("Wix kept answering past {MAX_PAGES} pages; listing stopped"),
                ));
                return None;
            }
            let filter = self
                .progress
                .filter
                .get_or_insert_with(|| wix_filter(&self.options.media_types))
                .clone();
            let page = match self
                .client
                .search_files(
                    ctx,
                    &self.options.root_folder,
                    &filter,
                    PAGE_SIZE,
                    self.progress.cursor.as_deref(),
                )
                .await
            {
                Ok(page) => page,
                Err(e) if self.progress.pages == 0 && !filter.is_empty() && refuses_filter(&e) => {
                    tracing::info!("Wix refused the media-type filter; listing every type and filtering here");
                    self.progress.filter = Some(Vec::new());
                    continue;
                }
                Err(e) => {
                    tracing::warn!(page = self.progress.pages, code = ?e.kind, status = e.status, "listing failed; the backup goes on with what was listed");
                    self.stop(with_context(e, "listing failed"));
                    return None;
                }
            };
            self.progress.pages += 1;
            match page.next {
                Some(next) if !self.cursors.insert(next.clone()) => self.stop(listing_error(
                    FailureCode::WixInvalidResponse,
                    "Wix returned a cursor it had already given; listing stopped".to_owned(),
                )),
                Some(next) => {
                    self.progress.cursors.push(next.clone());
                    self.progress.cursor = Some(next);
                }
                None => {
                    self.progress.cursor = None;
                    self.progress.done = true;
                }
            }
            return Some(page.items);
        }
    }
}

impl Listing {
    /// Takes in a listed page: each file once, of the asked media types, kept or skipped.
    pub fn add_page(&mut self, seen: &mut FxHashSet<String>, files: Vec<FileDescriptor>, options: &BackupOptions) {
        for file in files {
            keep(self, seen, file, options);
        }
    }
}

/// Follows the Search Files cursor to the end. A page that fails after the client's retries
/// ends the listing with what was listed so far and the error. Near the deadline the
/// listing stops early enough to leave time for the archive calls of what it has listed.
pub async fn list_files(client: &WixClient, ctx: &CallContext, options: &BackupOptions) -> Listing {
    let mut listing = Listing::default();
    let mut seen: FxHashSet<String> = FxHashSet::default();
    let mut lister = Lister::new(client, options);
    loop {
        if let Some(deadline) = ctx.deadline {
            let private = listing.private_kept;
            let calls = (listing.kept.len() - private).div_ceil(MAX_BATCH) + private + 1;
            let needed =
                client.limiter().time_for(calls, ctx.smoothing()) + client.settings().timeout + Duration::from_secs(3);
            if !lister.progress().done && Instant::now() + needed >= deadline {
                lister.stop(listing_error(
                    FailureCode::Deadline,
                    "listing stopped early to leave time to archive what was listed before the Lambda times out"
                        .to_owned(),
                ));
            }
        }
        match lister.next_page(ctx).await {
            Some(files) => {
                listing.add_page(&mut seen, files, options);
                crate::progress::listed(listing.listed);
            }
            None => break,
        }
    }
    let progress = lister.into_progress();
    listing.pages = progress.pages;
    listing.error = progress.error;
    listing
}

/// The media-type filter sent to Wix: none when every type is wanted, or when `OTHER` is
/// (Wix may refuse to filter on it); the listing then filters here.
fn wix_filter(media_types: &[String]) -> Vec<String> {
    if media_types.iter().any(|t| t == "OTHER") {
        Vec::new()
    } else {
        media_types.to_vec()
    }
}

fn refuses_filter(e: &WixError) -> bool {
    e.named.rules.iter().any(|r| r == "UNSUPPORTED_MEDIA_TYPE")
        || e.app_code.as_deref() == Some("UNSUPPORTED_MEDIA_TYPE")
}

fn keep(listing: &mut Listing, seen: &mut FxHashSet<String>, file: FileDescriptor, options: &BackupOptions) {
    let media_type = file.media_type.as_deref().unwrap_or("UNKNOWN");
    if !options.media_types.is_empty() && !options.media_types.iter().any(|t| t == media_type) {
        return;
    }
    if !seen.insert(file.id.clone()) {
        listing.duplicates += 1;
        return;
    }
    listing.listed += 1;
    let reason = if file.state.as_deref() == Some("DELETED") {
        Some("DELETED")
    } else if file.operation_status.as_deref().is_some_and(|s| s != "READY") {
        Some("NOT_READY")
    } else if file.private && !options.include_private {
        Some("PRIVATE")
    } else {
        None
    };
    let folder = listing
        .folders
        .intern(file.parent_folder_id.as_deref().unwrap_or(options.root_folder_id()));
    let media_type = listing.media_types.intern(media_type) as u16;
    let planned = PlannedFile {
        id: file.id,
        display_name: file.display_name,
        folder,
        media_type,
        size: file.size_in_bytes,
        hash: file.hash,
        updated_date: file.updated_date,
        private: file.private,
    };
    if let Some(reason) = reason {
        listing.skipped.push(Skipped {
            file_id: planned.id.clone(),
            reason,
        });
        listing.skipped_files.push(planned);
        return;
    }
    listing.private_kept += usize::from(planned.private);
    listing.kept.push(planned);
}

pub(crate) fn listing_error(code: FailureCode, message: String) -> FailureError {
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

    fn file(id: &str, folder: u32) -> PlannedFile {
        PlannedFile {
            id: id.into(),
            display_name: None,
            folder,
            media_type: 0,
            size: Some(1),
            hash: None,
            updated_date: None,
            private: false,
        }
    }

    #[test]
    fn batches_group_by_folder_id_and_keep_listing_order_within() {
        let mut listing = Listing::default();
        for name in ["fb", "fa"] {
            listing.folders.intern(name);
        }
        listing.kept = vec![file("1", 0), file("2", 1), file("3", 0), file("4", 1)];
        listing.kept.push(PlannedFile {
            private: true,
            ..file("p", 1)
        });
        let batches = listing.batches();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].file_ids, vec!["2", "4", "1", "3"]);
        assert_eq!(batches[0].folders, vec![1, 0]);
    }

    #[test]
    fn the_filter_leaves_other_to_the_listing() {
        let types = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(wix_filter(&types(&["IMAGE", "VIDEO"])), types(&["IMAGE", "VIDEO"]));
        assert!(wix_filter(&types(&["IMAGE", "OTHER"])).is_empty());
        assert!(wix_filter(&[]).is_empty());
    }
}
