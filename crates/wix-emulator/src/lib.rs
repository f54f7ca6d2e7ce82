//! A local emulator of the Wix Media Manager REST API, with scriptable faults.
//!
//! It serves the `/site-media/v1/...` calls and `/oauth2/token` the way Wix documents them
//! (and its generated SDK declares them), plus its own download routes for the links it hands
//! out: `/_emulator/archives/<token>` (a zip made while it is sent) and
//! `/_emulator/files/<id>?token=…`. The library is mutable while it runs: tests change, add,
//! trash and delete files and folders, and Import File fetches real bytes.
//!
//! What it does where Wix is silent or unconfirmed, by default, with the other modes:
//! - **Unknown ids** in Generate Files Download URL ([`UnknownIds`]): 400 `validationError`
//!   with one field violation per unknown id (`field: "fileIds[<index in the request>]"`,
//!   `violatedRule: "OTHER"`, `ruleName: "RESOURCE_NOT_FOUND"`, `data: {"fileIds": [id]}`);
//!   or one violation on `fileIds` naming none; or the old 400 `applicationError`
//!   `RESOURCE_NOT_FOUND` with `data.fileIds`; or left out silently; or left out with 400
//!   `NOTHING_TO_DOWNLOAD` ("Nothing to download") when nothing is left; or left out with the
//!   link itself answering 404 "Nothing to download" when nothing is left. Get Files and Get
//!   File By Id always refuse unknown ids, in the validation shape (field `fileIds[i]` /
//!   `fileId`) unless the mode is `Reject` (then the old applicationError, and 404 for Get
//!   File By Id) or `ValidationUnnamed` (no ids named).
//! - **Private files** in archives ([`PrivateInArchive`]): included; or 403
//!   `applicationError` `PRIVATE_FILE` with `data.fileIds`; or left out silently.
//! - **Media types left out** of archives silently: none by default
//!   ([`EmulatorConfig::omit_media_types`], e.g. `MODEL3D` as Velo's old call did). Seeded
//!   libraries hold every media type, `MODEL3D` (`.glb`) included.
//! - **Archive zips** ([`ZipFormat`], [`EntryNames`]): stored entries named by the bare file
//!   id, CRC-32 in a data descriptor after each entry (sizes also in the local header),
//!   ZIP64 records when an entry or the archive passes 4 GiB or holds 65,535 entries or more,
//!   and `Content-Length`. Modes: CRC before each header and no descriptors; deflated (never a
//!   `Content-Length`); chunked downloads; names by display name (repeats kept: the zip
//!   crate's reader shows one entry per name, Python's all) or by
//!   `<folder path>/<display name>` (from the media root, or from below a folder archive's
//!   own folder). Ids repeated in one request (also as media URLs) are put in once. A link
//!   serves the files as they were when it was made; it never expires.
//! - **Content**: every file serves exactly `sizeInBytes` bytes, generated per
//!   (id, content version) a chunk at a time ([`generated_content`]); bytes set by a test or
//!   fetched by an import are served as they are. `hash` is 32 hex digits that change with
//!   the bytes; `updatedDate` moves forward with every change.
//! - **Paging** ([`PagingStyle`]): `{"cursors": {"next": "<opaque>"}, "hasNext": true}`, the
//!   last page `{"cursors": {"next": ""}, "hasNext": false}`, no `total`; or the SDK's
//!   cursors-only shape; or the old `{"total", "cursors"}` without `next` on the last page.
//!   A cursor is an offset into the query's sorted index and only fits the query (filters,
//!   sort, folder) that produced it, whatever the page size; after a change to the library a
//!   cursor applies its offset to the new order, as offset paging would.
//! - **Search and listing order**: `updatedDate` newest first unless `sort` says otherwise;
//!   `displayName`, `updatedDate`, `sizeInBytes` (folders: the first two), `ASC` when only a
//!   field is given; any other field 400 `UNSUPPORTED_SORT_VALUE`. Filtering files on
//!   `mediaTypes: ["OTHER"]` answers 400 `UNSUPPORTED_MEDIA_TYPE` (a mode accepts it).
//!   Seeded files in state `DELETED` stay where they are and are found (and put into
//!   archives of file ids); trashed files are under `trash-root` (state `DELETED`) and found
//!   by `TRASH_ROOT` searches only. Hand-made libraries may hold folder ids that do not exist;
//!   files under them are in no root.
//! - **Auth** ([`AuthMode`]): a missing or unknown key or token 401 `UNAUTHENTICATED`; the
//!   right key with a missing or wrong `wix-site-id` 403 `PERMISSION_DENIED`; an expired or
//!   revoked token 401. Modes: every valid credential lacks the permission (403 on every
//!   call); or the old "every refusal 403 `FORBIDDEN`".
//! - **Import File**: fetches the URL over plain http (an https URL ends `FAILED`), answers
//!   `{"file"}` `PENDING` (no `sizeInBytes`, empty `hash`, `sourceUrl` set), and turns `READY`
//!   with the fetched bytes, or `FAILED` on a fetch error or non-2xx answer, no sooner than
//!   [`EmulatorConfig::import_delay`]. `mediaType` `OTHER` is refused (400
//!   `UNSUPPORTED_MEDIA_TYPE`); without one it is inferred from `mimeType`, then the name's
//!   extension, else `DOCUMENT`. `filePath` folders are made where missing.
//! - **Folders**: Create Folder, Get Folder, List Folders and Search Folders (every level of
//!   a root, in pages of up to 100). Folder archives hold at most 1000 files (else 400
//!   `TOO_MANY_FILES`) and leave out files in state `DELETED`.
//! - **Rate limit** ([`RateLimit`]): none by default; a sliding one-minute window or a token
//!   bucket, each with or without `Retry-After`; only calls it admits and that are not then
//!   answered 429 count. A window also counts calls made while no limit is set.
//! - Latency is added to every API answer, faulted ones included. API faults and the rate
//!   limit never touch the `/_emulator/...` routes; download faults ([`DownloadFault`]) only
//!   touch those.

mod cli;
mod config;
mod content;
mod dates;
mod faults;
mod library;
mod server;
mod store;
mod zipstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use cli::run_cli;
pub use config::{
    AppCredentials, AuthMode, EmulatorConfig, EntryNames, LimiterKind, PagingStyle, PrivateInArchive, RateLimit,
    UnknownIds, ZipFormat,
};
pub use content::generated_content;
pub use faults::{DownloadFault, Fault, RandomFaults};
pub use library::{normalize_file_id, FileRecord, Folder, Library, MEDIA_ROOT, TRASH_ROOT, VISITOR_UPLOADS};
pub use server::{DownloadStats, ImportOutcome, ImportRecord, LimiterStats};
pub use store::NewFile;

use server::State;

/// A running emulator; it stops serving when shut down or dropped.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
}

/// One request the emulator received.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CallRecord {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string, "" when none.
    pub query: String,
    /// Final status; 0 when no answer was sent (dropped, or the client gave up first).
    pub status: u16,
    /// Fault applied: API calls "429", "503", "503-empty", "rate-limit", "drop", "hang", "delay", "body-200", "malformed"; downloads "cut-N", "download-503", "expired", "not-zip", "stall".
    pub fault: Option<String>,
    /// Number of `fileIds` in the JSON body, 0 when it had none.
    pub file_ids: usize,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
    /// Whether the call's credentials were accepted.
    pub auth_ok: bool,
}

impl Emulator {
    /// Binds 127.0.0.1:port (0 = any free port) and serves in a spawned tokio task.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(config, format!("http://{addr}")));
        let (shutdown, stopped) = watch::channel(false);
        tokio::spawn(server::serve(listener, state.clone(), stopped));
        Ok(Emulator { addr, state, shutdown })
    }

    /// "http://127.0.0.1:PORT", no trailing slash.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received (API and downloads), in arrival order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.state.calls(false)
    }

    /// Only `/site-media/...` and `/oauth2/...` requests.
    pub fn api_calls(&self) -> Vec<CallRecord> {
        self.state.calls(true)
    }

    /// Forgets the call log (the rate limiter's state and counts are kept).
    pub fn clear_calls(&self) {
        self.state.clear_calls();
    }

    /// Queue one-shot faults: each matching API call (path contains `path_contains`, e.g. "generate-download-url"; "" matches all) pops the next one.
    pub fn push_faults(&self, path_contains: &str, faults: Vec<Fault>) {
        self.state.push_faults(path_contains, faults);
    }

    /// Queue one-shot download faults: each download whose path contains `path_contains` ("/_emulator/archives/", "/_emulator/files/", "" for both) pops the next one.
    pub fn push_download_faults(&self, path_contains: &str, faults: Vec<DownloadFault>) {
        self.state.push_download_faults(path_contains, faults);
    }

    /// Random faults by rate on every API call (seeded, reproducible). `None` turns them off.
    pub fn set_random_faults(&self, faults: Option<RandomFaults>) {
        self.state.set_random_faults(faults);
    }

    /// Latency added to every API answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state.with_config(|c| c.latency = latency);
    }

    /// Sets or lifts the rate limit; a window still sees the calls of the last minute, a new or changed bucket starts full.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.state.with_config(|c| c.rate_limit = limit);
    }

    /// Calls admitted and refused by the rate limiter so far.
    pub fn limiter_stats(&self) -> LimiterStats {
        self.state.limiter_stats(false)
    }

    /// The limiter's counts so far, then zeroes them.
    pub fn take_limiter_stats(&self) -> LimiterStats {
        self.state.limiter_stats(true)
    }

    /// Archive and file-link downloads answered, and body bytes sent, so far.
    pub fn download_stats(&self) -> DownloadStats {
        self.state.download_stats(false)
    }

    /// The download counts so far, then zeroes them.
    pub fn take_download_stats(&self) -> DownloadStats {
        self.state.download_stats(true)
    }

    /// Key rotation: only the new key is accepted afterwards.
    pub fn set_api_key(&self, api_key: &str) {
        self.state.with_config(|c| c.api_key = api_key.to_string());
    }

    /// Switches which status refused credentials get (e.g. a key without the Manage Media Manager permission).
    pub fn set_auth_mode(&self, mode: AuthMode) {
        self.state.with_config(|c| c.auth = mode);
    }

    /// Switches how archive calls (and the lookups' error shape) treat unknown ids.
    pub fn set_unknown_ids(&self, mode: UnknownIds) {
        self.state.with_config(|c| c.unknown_ids = mode);
    }

    /// Switches how archive calls treat private files.
    pub fn set_private_in_archive(&self, mode: PrivateInArchive) {
        self.state.with_config(|c| c.private_in_archive = mode);
    }

    /// Media types archives leave out without a word (e.g. `&["MODEL3D"]`); `&[]` for none.
    pub fn set_omit_media_types(&self, media_types: &[&str]) {
        let types = media_types.iter().map(|t| t.to_string()).collect();
        self.state.with_config(|c| c.omit_media_types = types);
    }

    /// Switches how zip entries of links made from now on are named.
    pub fn set_entry_names(&self, names: EntryNames) {
        self.state.with_config(|c| c.entry_names = names);
    }

    /// Switches how archive zips are laid out and compressed.
    pub fn set_zip_format(&self, format: ZipFormat) {
        self.state.with_config(|c| c.zip_format = format);
    }

    /// Send `Content-Length` on downloads (`true`, where it is known) or answer chunked (`false`).
    pub fn set_content_length(&self, on: bool) {
        self.state.with_config(|c| c.content_length = on);
    }

    /// Switches the shape of `nextCursor` in paged answers.
    pub fn set_paging(&self, style: PagingStyle) {
        self.state.with_config(|c| c.paging = style);
    }

    /// Whether a file search or listing filtered on `OTHER` answers 400 `UNSUPPORTED_MEDIA_TYPE`.
    pub fn set_refuse_other_media_type(&self, on: bool) {
        self.state.with_config(|c| c.refuse_other_media_type = on);
    }

    /// Time from Import File until the file leaves `PENDING` (at least the fetch's own time).
    pub fn set_import_delay(&self, delay: Duration) {
        self.state.with_config(|c| c.import_delay = delay);
    }

    /// A rotated app secret: access tokens issued so far answer 401 on use.
    pub fn revoke_tokens(&self) {
        self.state.revoke_tokens(true);
    }

    /// Makes every access token issued so far expired (401 on use), as if its TTL had passed.
    pub fn expire_tokens(&self) {
        self.state.revoke_tokens(false);
    }

    /// The library as it is now (changes and imports included), files and folders in the order they were added.
    pub fn library(&self) -> Library {
        self.state.store().snapshot()
    }

    /// Number of files in the library now (trashed ones included).
    pub fn file_count(&self) -> usize {
        self.state.store().file_count()
    }

    /// A file as it is now.
    pub fn file(&self, id: &str) -> Option<FileRecord> {
        let store = self.state.store();
        store.lookup(id).map(|slot| store.record(slot))
    }

    /// A file's descriptor exactly as the API sends it now (`hash`, `updatedDate`, `sizeInBytes`, …).
    pub fn file_descriptor(&self, id: &str) -> Option<serde_json::Value> {
        self.state.file_descriptor(id)
    }

    /// The bytes a file serves now, for byte-for-byte comparisons.
    pub fn file_bytes(&self, id: &str) -> Option<Vec<u8>> {
        let store = self.state.store();
        store.lookup(id).map(|slot| store.content(slot).to_vec())
    }

    /// New content for a file: the next version of its generated bytes, same size, new `hash` and `updatedDate`; `false` for an unknown id.
    pub fn change_file_content(&self, id: &str) -> bool {
        self.state.store().change_content(id)
    }

    /// Exactly `bytes` as a file's content from now on (size, `hash` and `updatedDate` follow); `false` for an unknown id.
    pub fn set_file_bytes(&self, id: &str, bytes: Vec<u8>) -> bool {
        self.state.store().set_bytes(id, Bytes::from(bytes))
    }

    /// Serves `bytes` as a file's content while its descriptors report `reported_size`
    /// bytes (a Wix whose description and content disagree); `false` for an unknown id.
    pub fn set_mismatched_bytes(&self, id: &str, bytes: Vec<u8>, reported_size: u64) -> bool {
        let mut store = self.state.store();
        store.set_bytes(id, Bytes::from(bytes)) && store.set_reported_size(id, reported_size)
    }

    /// Adds a READY file with a new Wix-shaped id; `Err` when its folder does not exist.
    pub fn add_file(&self, file: NewFile) -> Result<FileRecord, String> {
        let mut store = self.state.store();
        let slot = store.add_file(file, None)?;
        Ok(store.record(slot))
    }

    /// Adds several files ([`Emulator::add_file`] each), stopping at the first whose folder does not exist.
    pub fn add_files(&self, files: Vec<NewFile>) -> Result<Vec<FileRecord>, String> {
        files.into_iter().map(|f| self.add_file(f)).collect()
    }

    /// Removes a file for good (unknown to every call afterwards); `false` for an unknown id.
    pub fn delete_file(&self, id: &str) -> bool {
        self.state.store().delete_file(id, false)
    }

    /// Moves a file to the trash: `parentFolderId` `trash-root`, `state` `DELETED`, found by `TRASH_ROOT` searches only; `false` for an unknown id.
    pub fn trash_file(&self, id: &str) -> bool {
        self.state.store().delete_file(id, true)
    }

    /// Adds a folder under `parent_folder_id` (a folder or `media-root`); `Err` when the parent does not exist.
    pub fn add_folder(&self, display_name: &str, parent_folder_id: &str) -> Result<Folder, String> {
        let mut store = self.state.store();
        let slot = store.add_folder(display_name, parent_folder_id)?;
        let v = store.folder_view(slot);
        Ok(Folder {
            id: v.id.to_string(),
            display_name: v.display_name.to_string(),
            parent_folder_id: v.parent_folder_id.to_string(),
            state: v.state.to_string(),
        })
    }

    /// Removes a folder with its sub-folders and their files for good; `false` for an unknown id.
    pub fn delete_folder(&self, id: &str) -> bool {
        self.state.store().delete_folder(id, false)
    }

    /// Moves a folder to the trash (`parentFolderId` `trash-root`, `state` `DELETED`); what is inside goes with it.
    pub fn trash_folder(&self, id: &str) -> bool {
        self.state.store().delete_folder(id, true)
    }

    /// Every Import File call so far, with its outcome.
    pub fn imports(&self) -> Vec<ImportRecord> {
        self.state.imports()
    }

    /// The ids an archive link was made of (unique, in request order, left-out files not included).
    pub fn archive_file_ids(&self, download_url: &str) -> Option<Vec<String>> {
        self.state.archive_file_ids(download_url)
    }

    /// Stops serving; dropping the emulator does the same.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
