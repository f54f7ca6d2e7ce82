//! Archive links: Generate Files Download URL and folder archives, with the modes for unknown,
//! private and left-out files. A link keeps the files as they were when it was made.

use serde_json::{json, Map, Value};

use super::file_ids::{file_id_list, unique_ids, unknown_ids_error, ErrorShape};
use super::respond::{app_error, app_error_with_message, json_resp, not_found, Failure, Resp};
use super::State;
use crate::config::{EmulatorConfig, EntryNames, PrivateInArchive, UnknownIds};
use crate::store::Store;
use crate::zipstream::ZipEntry;
use crate::MEDIA_ROOT;

const MAX_FILE_IDS: usize = 1000;
const MAX_FOLDER_ARCHIVE: usize = 1000;

/// What an archive link serves.
pub(crate) struct ArchiveLink {
    /// The files' ids, in archive order.
    pub(crate) ids: Vec<String>,
    pub(crate) entries: Vec<ZipEntry>,
    /// The link answers 404 "Nothing to download" (see [`UnknownIds::NothingToDownloadOnLink`]).
    pub(crate) nothing: bool,
}

pub(crate) fn generate_download_url(state: &State, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let raw = file_id_list(body, MAX_FILE_IDS)?;
    let ids = unique_ids(&raw);
    let config = state.config();
    let store = state.store();
    let mut slots = Vec::with_capacity(ids.len());
    let mut unknown = Vec::new();
    for (i, id) in ids {
        match store.lookup(&id) {
            Some(slot) => slots.push(slot),
            None => unknown.push((i, id)),
        }
    }
    if !unknown.is_empty() {
        match config.unknown_ids {
            UnknownIds::Validation | UnknownIds::ValidationUnnamed | UnknownIds::Reject => {
                return Err(unknown_ids_error(ErrorShape::of(config.unknown_ids), &unknown));
            }
            UnknownIds::Ignore | UnknownIds::NothingToDownload | UnknownIds::NothingToDownloadOnLink => {}
        }
    }
    let link = archive(&config, &store, slots, None)?;
    drop(store);
    Ok(register(state, link))
}

pub(crate) fn folder_download(state: &State, folder_id: &str) -> Result<Resp, Failure> {
    let config = state.config();
    let mut store = state.store();
    if folder_id != MEDIA_ROOT && store.folder_lookup(folder_id).is_none() {
        return Err(not_found("folder", folder_id));
    }
    let slots: Vec<u32> = store
        .files_under(folder_id)
        .into_iter()
        .filter(|&s| store.view(s).state != "DELETED")
        .collect();
    if slots.len() > MAX_FOLDER_ARCHIVE {
        return Err(app_error(
            400,
            "TOO_MANY_FILES",
            &format!("the folder holds {} files, more than {MAX_FOLDER_ARCHIVE}", slots.len()),
            Some(json!({ "fileCount": slots.len() })),
        ));
    }
    let link = archive(&config, &store, slots, Some(folder_id))?;
    drop(store);
    Ok(register(state, link))
}

/// The archive of `slots` after the private-file and media-type modes; `folder` is a folder archive's own folder.
fn archive(
    config: &EmulatorConfig,
    store: &Store,
    slots: Vec<u32>,
    folder: Option<&str>,
) -> Result<ArchiveLink, Failure> {
    let private: Vec<String> = slots
        .iter()
        .map(|&s| store.view(s))
        .filter(|v| v.private)
        .map(|v| v.id.to_string())
        .collect();
    if !private.is_empty() && config.private_in_archive == PrivateInArchive::Reject {
        return Err(app_error(
            403,
            "PRIVATE_FILE",
            "private files cannot be put into a download archive",
            Some(json!({ "fileIds": private })),
        ));
    }
    let omit_private = config.private_in_archive == PrivateInArchive::Omit;
    let kept: Vec<u32> = slots
        .into_iter()
        .filter(|&s| {
            let v = store.view(s);
            let left_out = (omit_private && v.private) || config.omit_media_types.iter().any(|t| t == v.media_type);
            !left_out
        })
        .collect();
    let nothing = kept.is_empty();
    if nothing && config.unknown_ids == UnknownIds::NothingToDownload {
        return Err(app_error_with_message(
            400,
            "NOTHING_TO_DOWNLOAD",
            "Nothing to download",
            "none of the files can be downloaded",
            None,
        ));
    }
    let mut ids = Vec::with_capacity(kept.len());
    let mut entries = Vec::with_capacity(kept.len());
    for slot in kept {
        let v = store.view(slot);
        let name = match config.entry_names {
            EntryNames::FileId => v.id.to_string(),
            EntryNames::DisplayName => v.display_name.to_string(),
            EntryNames::FolderPath => match store.folder_path(slot, folder) {
                path if path.is_empty() => v.display_name.to_string(),
                path => format!("{path}/{}", v.display_name),
            },
        };
        ids.push(v.id.to_string());
        entries.push(ZipEntry {
            name,
            content: store.content(slot),
            modified: v.updated_ms / 1000,
        });
    }
    Ok(ArchiveLink {
        ids,
        entries,
        nothing: nothing && config.unknown_ids == UnknownIds::NothingToDownloadOnLink,
    })
}

fn register(state: &State, link: ArchiveLink) -> Resp {
    let token = state.token(40);
    state.lock().archives.insert(token.clone(), link);
    let url = format!("{}/_emulator/archives/{token}", state.base_url);
    json_resp(200, &json!({ "downloadUrl": url }))
}
