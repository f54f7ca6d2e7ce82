//! How an emulator starts, and the modes where Wix's behaviour is unconfirmed or varies.

use std::time::Duration;

use crate::Library;

/// How the emulator starts; every setting has a test-friendly default.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Port on 127.0.0.1; 0 picks any free port.
    pub port: u16,
    /// The site owner's API key (`Authorization: <key>`).
    pub api_key: String,
    /// The site id expected in `wix-site-id`.
    pub site_id: String,
    /// The installed app accepted by `/oauth2/token`; `None` refuses every token request.
    pub app: Option<AppCredentials>,
    /// `expires_in` of issued access tokens.
    pub token_ttl_seconds: u64,
    /// The site's media at start; the running emulator changes its own copy.
    pub library: Library,
    /// What archive calls (and, by its error shape, Get Files and Get File By Id) do with ids they do not know.
    pub unknown_ids: UnknownIds,
    /// What archive calls do with private files.
    pub private_in_archive: PrivateInArchive,
    /// Media types archives leave out without a word (e.g. `["MODEL3D"]`, as Velo's old call did); empty by default.
    pub omit_media_types: Vec<String>,
    /// How zip entries are named.
    pub entry_names: EntryNames,
    /// How archive zips are laid out and compressed.
    pub zip_format: ZipFormat,
    /// Send `Content-Length` on downloads (archives in a stored format, and file links); `false` answers chunked.
    pub content_length: bool,
    /// Added to every API answer.
    pub latency: Duration,
    /// Limit on API calls; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// The shape of `nextCursor` in paged answers.
    pub paging: PagingStyle,
    /// Answer a file search or listing filtered on `mediaTypes: ["OTHER"]` with 400 `UNSUPPORTED_MEDIA_TYPE`.
    pub refuse_other_media_type: bool,
    /// Largest `paging.limit` accepted by search and list calls.
    pub max_search_page: usize,
    /// Which status a refused credential gets.
    pub auth: AuthMode,
    /// Time from Import File until the file leaves `PENDING`.
    pub import_delay: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            port: 0,
            api_key: "emulator-api-key".into(),
            site_id: "emulator-site-id".into(),
            app: Some(AppCredentials {
                app_id: "emulator-app-id".into(),
                app_secret: "emulator-app-secret".into(),
                instance_id: "emulator-instance-id".into(),
            }),
            token_ttl_seconds: 14_400,
            library: Library::seeded(250, 7),
            unknown_ids: UnknownIds::Validation,
            private_in_archive: PrivateInArchive::Include,
            omit_media_types: Vec::new(),
            entry_names: EntryNames::FileId,
            zip_format: ZipFormat::Stored,
            content_length: true,
            latency: Duration::ZERO,
            rate_limit: None,
            paging: PagingStyle::Documented,
            refuse_other_media_type: true,
            max_search_page: 100,
            auth: AuthMode::Documented,
            import_delay: Duration::from_millis(200),
        }
    }
}

/// A Wix app installation (OAuth client credentials).
#[derive(Clone, Debug)]
pub struct AppCredentials {
    /// `client_id`.
    pub app_id: String,
    /// `client_secret`.
    pub app_secret: String,
    /// `instance_id` of the installation on the site.
    pub instance_id: String,
}

/// Unknown ids in Generate Files Download URL and folder archives (Wix's behaviour is unconfirmed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownIds {
    /// 400 `validationError`, one field violation per unknown id (`fileIds[i]`, rule `RESOURCE_NOT_FOUND`, `data.fileIds`): the SDK's declared shape.
    Validation,
    /// 400 `validationError` on `fileIds` that does not say which ids are unknown (a client must bisect).
    ValidationUnnamed,
    /// 400 `applicationError` `RESOURCE_NOT_FOUND` with `data.fileIds` (the emulator's old default).
    Reject,
    /// Left out of the archive without a word.
    Ignore,
    /// Left out; when nothing is left, 400 `applicationError` `NOTHING_TO_DOWNLOAD`, message "Nothing to download".
    NothingToDownload,
    /// Left out; when nothing is left the call succeeds and its link answers 404 "Nothing to download".
    NothingToDownloadOnLink,
}

/// Private files in archive calls (Wix's behaviour is unconfirmed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivateInArchive {
    /// Put into the archive like public files.
    Include,
    /// 403 `applicationError` `PRIVATE_FILE` with `data.fileIds`: a permission refusal, unlike a bad key's 401.
    Reject,
    /// Left out of the archive without a word.
    Omit,
}

/// Names of the entries of an archive zip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryNames {
    /// The bare file id.
    FileId,
    /// The file's display name; names may repeat and are kept as they are.
    DisplayName,
    /// `<folder path>/<display name>`: folder names from the media root, or, in a folder archive, from below the archived folder (as Wix's folder archives keep sub-folders).
    FolderPath,
}

/// Layout and compression of archive zips; all stream, none is held whole in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZipFormat {
    /// Stored entries, CRC-32 computed while the bytes go out and sent in a data descriptor after each entry (sizes are in the local header too); `Content-Length` known up front.
    Stored,
    /// Stored entries with the CRC-32 computed before each local header and no data descriptors, for readers that go entry by entry; each entry's bytes are made twice.
    StoredCrcFirst,
    /// Deflated entries with data descriptors; never a `Content-Length`.
    Deflated,
}

/// The `nextCursor` object of paged answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingStyle {
    /// As Wix documents cursor paging: `{"cursors": {"next": "<opaque>"}, "hasNext": true}`, the last page `{"cursors": {"next": ""}, "hasNext": false}`, no `total`.
    Documented,
    /// As the SDK's `PagingMetadataV2` declares it: `{"cursors": {"next": …}}` (`""` on the last page), no `hasNext`, no `total`.
    CursorsOnly,
    /// The emulator's old shape: `{"total": n, "cursors": {"next": …}}`, no `next` on the last page, no `hasNext`.
    Legacy,
}

/// Which status a refused credential gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// As documented: a missing or unknown key or token 401 `UNAUTHENTICATED`; the right key with a missing or wrong `wix-site-id` 403 `PERMISSION_DENIED`; an expired or revoked token 401.
    Documented,
    /// [`AuthMode::Documented`], and the key (or app) lacks the Manage Media Manager permission: every call with valid credentials answers 403 `PERMISSION_DENIED`.
    MissingPermission,
    /// The emulator's old answers: every refusal 403 `FORBIDDEN`, except an expired or revoked token (401).
    AllForbidden,
}

/// A limit on API calls; only calls it admits count against it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Calls allowed per minute.
    pub per_minute: u32,
    /// Send `Retry-After` with the 429.
    pub retry_after: bool,
    /// How calls are counted.
    pub kind: LimiterKind,
}

/// How a [`RateLimit`] counts calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimiterKind {
    /// 429 once `per_minute` calls were admitted in the last 60 s; `Retry-After` is the time until the oldest leaves the window.
    Window,
    /// A bucket of `burst` tokens refilled at `per_minute / 60` per second; a call takes one or gets 429; `Retry-After` is the time until the next token.
    TokenBucket {
        /// The bucket's capacity (at least 1); it starts full.
        burst: u32,
    },
}

impl RateLimit {
    /// A sliding one-minute window of `per_minute` calls, without `Retry-After`.
    pub fn window(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute,
            retry_after: false,
            kind: LimiterKind::Window,
        }
    }

    /// A token bucket refilled at `per_minute` a minute holding up to `burst`, without `Retry-After`.
    pub fn token_bucket(per_minute: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_minute,
            retry_after: false,
            kind: LimiterKind::TokenBucket { burst },
        }
    }

    /// The same limit, sending `Retry-After` with its 429s.
    pub fn with_retry_after(self) -> RateLimit {
        RateLimit {
            retry_after: true,
            ..self
        }
    }
}
