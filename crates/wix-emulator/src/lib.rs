//! A local emulator of the Wix Media Manager REST API, with scriptable faults.
//!
//! It serves the `/site-media/v1/...` calls and `/oauth2/token` the way Wix
//! documents them, plus its own download routes for the links it hands out:
//! `/_emulator/archives/<token>` (a stored zip) and `/_emulator/files/<id>?token=…`.
//!
//! Choices where Wix is silent or unconfirmed:
//! - An archive zip holds one entry per file, named by the bare file id (no folder
//!   path), with `file_content(id)` as its content. Ids repeated in one request
//!   (also as media URLs) are put in once.
//! - Unknown and private ids in Generate Files Download URL follow
//!   [`UnknownIds`] and [`PrivateInArchive`]; Get Files always refuses unknown ids.
//! - On the last page `nextCursor.cursors` has no `next`; a cursor only fits the
//!   query (filters, sort, folder) that produced it, whatever the page size.
//! - Latency is added to every API answer, faulted ones included. Faults and the
//!   rate limit never touch the `/_emulator/...` routes.
//! - The rate-limit window counts every API call not answered 429, also while no
//!   limit is set.

mod cli;
mod library;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use cli::run_cli;
pub use library::{
    file_content, normalize_file_id, FileRecord, Folder, Library, MEDIA_ROOT, TRASH_ROOT, VISITOR_UPLOADS,
};

use server::State;

/// A running emulator; it stops serving when shut down or dropped.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
}

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
    /// The site's media.
    pub library: Library,
    /// What Generate Files Download URL does with ids it does not know.
    pub unknown_ids: UnknownIds,
    /// What Generate Files Download URL does with private files.
    pub private_in_archive: PrivateInArchive,
    /// Added to every API answer.
    pub latency: Duration,
    /// Sliding one-minute limit on API calls.
    pub rate_limit: Option<RateLimit>,
    /// Also send `nextCursor.hasNext` in paged answers.
    pub search_has_next: bool,
    /// Largest `paging.limit` accepted by search and list calls.
    pub max_search_page: usize,
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
            unknown_ids: UnknownIds::Reject,
            private_in_archive: PrivateInArchive::Include,
            latency: Duration::ZERO,
            rate_limit: None,
            search_has_next: false,
            max_search_page: 100,
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

/// Unknown ids in Generate Files Download URL (Wix's behaviour is unconfirmed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownIds {
    /// 400 `RESOURCE_NOT_FOUND` naming the ids.
    Reject,
    /// Left out of the archive.
    Ignore,
}

/// Private files in Generate Files Download URL (Wix's behaviour is unconfirmed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivateInArchive {
    /// Put into the archive like public files.
    Include,
    /// 403 `PRIVATE_FILE` naming the ids.
    Reject,
}

/// At most `per_minute` API calls in any 60-second window.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// Calls allowed per sliding minute.
    pub per_minute: u32,
    /// Send `Retry-After` with the 429.
    pub retry_after: bool,
}

/// One scripted misbehaviour of an API call.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status with a Wix-style error body (applicationError).
    Status(u16),
    /// Answer this status with an empty body, as Wix's system errors do.
    StatusEmptyBody(u16),
    /// 429, with `Retry-After: N` seconds when `Some`.
    TooManyRequests {
        /// Seconds for the `Retry-After` header.
        retry_after: Option<u64>,
    },
    /// Wait this long, then answer normally (makes a client time out).
    Hang(Duration),
    /// Extra latency, then a normal answer.
    Delay(Duration),
    /// Close the connection without any answer.
    Drop,
    /// Answer exactly this.
    Body {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header.
        content_type: String,
        /// Raw body.
        body: String,
    },
}

/// Faults rolled at random on every API call, reproducibly from `seed`.
#[derive(Clone, Debug)]
pub struct RandomFaults {
    /// Seed of the roll sequence.
    pub seed: u64,
    /// Probability of a 429 (half of them with `Retry-After: 1`).
    pub p_429: f64,
    /// Probability of a 500, 503 or 504 (some with an empty body).
    pub p_5xx: f64,
    /// Probability of a dropped connection.
    pub p_drop: f64,
    /// Probability of a hang of `hang`.
    pub p_hang: f64,
    /// How long a hang lasts before the normal answer.
    pub hang: Duration,
    /// Probability of a 200 with a truncated JSON body.
    pub p_malformed: f64,
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
    /// Fault applied: "429", "503", "503-empty", "rate-limit", "drop", "hang", "delay", "body-200", "malformed".
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

    /// Forgets the call log (the rate-limit window is kept).
    pub fn clear_calls(&self) {
        self.state.clear_calls();
    }

    /// Queue one-shot faults: each matching API call (path contains `path_contains`, e.g. "generate-download-url"; "" matches all) pops the next one.
    pub fn push_faults(&self, path_contains: &str, faults: Vec<Fault>) {
        self.state.push_faults(path_contains, faults);
    }

    /// Random faults by rate on every API call (seeded, reproducible). `None` turns them off.
    pub fn set_random_faults(&self, faults: Option<RandomFaults>) {
        self.state.set_random_faults(faults);
    }

    /// Latency added to every API answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state.with_config(|c| c.latency = latency);
    }

    /// Sets or lifts the rate limit; calls already made still count in the window.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.state.with_config(|c| c.rate_limit = limit);
    }

    /// Key rotation: only the new key is accepted afterwards.
    pub fn set_api_key(&self, api_key: &str) {
        self.state.with_config(|c| c.api_key = api_key.to_string());
    }

    /// Switches how Generate Files Download URL treats unknown ids.
    pub fn set_unknown_ids(&self, mode: UnknownIds) {
        self.state.with_config(|c| c.unknown_ids = mode);
    }

    /// Switches how Generate Files Download URL treats private files.
    pub fn set_private_in_archive(&self, mode: PrivateInArchive) {
        self.state.with_config(|c| c.private_in_archive = mode);
    }

    /// Switches `nextCursor.hasNext` in paged answers.
    pub fn set_search_has_next(&self, on: bool) {
        self.state.with_config(|c| c.search_has_next = on);
    }

    /// A rotated app secret: access tokens issued so far answer 401 on use.
    pub fn revoke_tokens(&self) {
        self.state.revoke_tokens(true);
    }

    /// Makes every access token issued so far expired (401 on use), as if its TTL had passed.
    pub fn expire_tokens(&self) {
        self.state.revoke_tokens(false);
    }

    /// A clone of the seeded library.
    pub fn library(&self) -> Library {
        self.state.library.clone()
    }

    /// The ids an archive link was made of (unique, in request order, unknown ids left out).
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
