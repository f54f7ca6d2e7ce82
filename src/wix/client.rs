//! The Wix REST client: auth headers, pacing, retries with backoff, the invocation's
//! deadline, and typed answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use super::error::{WixError, WixErrorKind};
use super::limiter::Limiter;
use crate::credentials::{Credentials, CredentialsSource, SecretString, WixAuth};

/// Largest answer body read from Wix; a search page of 100 files is about 100 KB.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Shortest time worth starting a call in: less than this before the deadline, it is
/// reported as `DEADLINE` instead.
const MIN_CALL_TIME: Duration = Duration::from_secs(2);
/// Longest `Retry-After` honoured; longer waits end the retries.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Retry and timing settings of the client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub base_url: Url,
    pub timeout: Duration,
    pub max_retries: u32,
    pub concurrency: usize,
    pub requests_per_minute: u32,
    /// First backoff step; the n-th retry waits a random time up to `base × 2ⁿ`.
    pub backoff_base: Duration,
    /// Longest backoff step.
    pub backoff_cap: Duration,
}

impl ClientSettings {
    /// The settings from the configuration, with the standard backoff.
    pub fn from_config(config: &crate::config::Config) -> Self {
        ClientSettings {
            base_url: config.wix_api_base_url.clone(),
            timeout: config.wix_timeout,
            max_retries: config.wix_max_retries,
            concurrency: config.wix_max_concurrency,
            requests_per_minute: config.wix_requests_per_minute,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(8),
        }
    }
}

/// Per-invocation state: the deadline and what the calls cost.
#[derive(Debug, Default)]
pub struct CallContext {
    /// Latest time a Wix call may still be running.
    pub deadline: Option<Instant>,
    /// Latest time the answer must be ready (the Lambda deadline less a margin); mail and
    /// other last steps are cut off here.
    pub respond_by: Option<Instant>,
    pub stats: CallStats,
}

/// Counts of one invocation's Wix calls.
#[derive(Debug, Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl CallContext {
    /// A context whose Wix calls and answer share one deadline.
    pub fn new(deadline: Option<Instant>) -> Self {
        CallContext::with_deadlines(deadline, deadline)
    }
    /// A context with a deadline for Wix calls and a later one for the answer.
    pub fn with_deadlines(deadline: Option<Instant>, respond_by: Option<Instant>) -> Self {
        CallContext {
            deadline,
            respond_by,
            stats: CallStats::default(),
        }
    }
    /// Wix calls made (retries included).
    pub fn calls(&self) -> u64 {
        self.stats.calls.load(Ordering::Relaxed)
    }
    /// Retries made.
    pub fn retries(&self) -> u64 {
        self.stats.retries.load(Ordering::Relaxed)
    }
    /// 429 answers received.
    pub fn rate_limited(&self) -> u64 {
        self.stats.rate_limited.load(Ordering::Relaxed)
    }
}

/// A file as Wix describes it, with only the fields this function uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDescriptor {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub operation_status: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// Wix sends the size as a JSON string.
    #[serde(default, deserialize_with = "size_from_string")]
    pub size_in_bytes: Option<u64>,
}

fn size_from_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Text(String),
        Number(u64),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Size>::deserialize(d)? {
        Some(Size::Text(s)) => s.trim().parse().ok(),
        Some(Size::Number(n)) => Some(n),
        _ => None,
    })
}

/// One page of a listing and the cursor of the next one (none on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A file as a library listing gives it, with only what a backup keeps.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedFile {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub operation_status: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "size_from_string")]
    pub size_in_bytes: Option<u64>,
}

/// A folder: its name and where it sits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderDescriptor {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
}

/// `nextCursor`: `{"cursors": {"next": "…"}, "hasNext"?: bool}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextCursor {
    cursors: Option<Cursors>,
    has_next: Option<bool>,
}

#[derive(Deserialize)]
struct Cursors {
    next: Option<String>,
}

impl NextCursor {
    fn next(self) -> Option<String> {
        if self.has_next == Some(false) {
            return None;
        }
        self.cursors.and_then(|c| c.next).filter(|n| !n.is_empty())
    }
}

/// The Wix client; built once per container and shared by every invocation.
pub struct WixClient {
    http: reqwest::Client,
    settings: ClientSettings,
    credentials: Arc<dyn CredentialsSource>,
    limiter: Limiter,
    token: AsyncMutex<Option<AccessToken>>,
}

struct AccessToken {
    value: SecretString,
    valid_until: Instant,
    for_app: (String, String),
}

/// The auth headers of one attempt and the credentials they came from.
struct Auth {
    credentials: Arc<Credentials>,
    authorization: SecretString,
    site_id: Option<String>,
}

enum Attempt<T> {
    Done(T),
    Retry { error: WixError, wait: Option<Duration> },
    Refused { error: WixError, auth_refused: bool },
}

impl WixClient {
    /// Builds the client and its connection pool.
    pub fn new(settings: ClientSettings, credentials: Arc<dyn CredentialsSource>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("wix-media-archiver/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(50))
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(WixClient {
            limiter: Limiter::new(settings.concurrency, settings.requests_per_minute),
            http,
            settings,
            credentials,
            token: AsyncMutex::new(None),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Generate Files Download URL: one archive link for 1 to 1000 files.
    pub async fn generate_files_download_url<S: Serialize + Sync>(
        &self,
        ctx: &CallContext,
        file_ids: &[S],
    ) -> Result<String, WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a, S> {
            file_ids: &'a [S],
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resp {
            download_url: Option<String>,
        }
        let resp: Resp = self
            .call(
                ctx,
                Method::POST,
                "/site-media/v1/files/generate-download-url",
                Some(&Req { file_ids }),
            )
            .await?;
        self.checked_link(resp.download_url)
    }

    /// Generate File Download URL: a temporary link to one file (private files too).
    pub async fn generate_file_download_url(
        &self,
        ctx: &CallContext,
        file_id: &str,
        download_file_name: Option<&str>,
        expiration_minutes: u32,
    ) -> Result<String, WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a> {
            file_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            download_file_name: Option<&'a str>,
            expiration_in_minutes: u32,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resp {
            #[serde(default)]
            download_urls: Vec<Link>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Link {
            url: Option<String>,
            asset_key: Option<String>,
        }
        let req = Req {
            file_id,
            download_file_name,
            expiration_in_minutes: expiration_minutes,
        };
        let resp: Resp = self
            .call(
                ctx,
                Method::POST,
                "/site-media/v1/files/generate-file-download-url",
                Some(&req),
            )
            .await?;
        let url = resp
            .download_urls
            .iter()
            .find(|u| u.asset_key.as_deref().is_none_or(|k| k == "src"))
            .and_then(|u| u.url.clone());
        self.checked_link(url)
    }

    /// Get Files: descriptors of 1 to 100 files, in the order asked.
    pub async fn get_files(&self, ctx: &CallContext, file_ids: &[String]) -> Result<Vec<FileDescriptor>, WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a> {
            file_ids: &'a [String],
        }
        #[derive(Deserialize)]
        struct Resp {
            files: Option<Vec<FileDescriptor>>,
        }
        let resp: Resp = self
            .call(
                ctx,
                Method::POST,
                "/site-media/v1/files/get-files",
                Some(&Req { file_ids }),
            )
            .await?;
        resp.files
            .ok_or_else(|| WixError::new(WixErrorKind::InvalidResponse, "Wix answered get-files without `files`"))
    }

    /// Search Files: one page of the library under `root_folder`, `limit` ≤ 100.
    pub async fn search_files(
        &self,
        ctx: &CallContext,
        root_folder: &str,
        media_types: &[String],
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<ListedFile>, WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a> {
            root_folder: &'a str,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            media_types: &'a [String],
            paging: Paging<'a>,
        }
        #[derive(Serialize)]
        struct Paging<'a> {
            limit: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            cursor: Option<&'a str>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resp {
            files: Option<Vec<ListedFile>>,
            next_cursor: Option<NextCursor>,
        }
        let req = Req {
            root_folder,
            media_types,
            paging: Paging { limit, cursor },
        };
        let resp: Resp = self
            .call(ctx, Method::POST, "/site-media/v1/files/search", Some(&req))
            .await?;
        let items = resp
            .files
            .ok_or_else(|| WixError::new(WixErrorKind::InvalidResponse, "Wix answered a search without `files`"))?;
        Ok(Page {
            items,
            next: resp.next_cursor.and_then(NextCursor::next),
        })
    }

    /// List Folders: one page of the folders directly under `parent`.
    pub async fn list_folders(
        &self,
        ctx: &CallContext,
        parent: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<FolderDescriptor>, WixError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resp {
            folders: Option<Vec<FolderDescriptor>>,
            next_cursor: Option<NextCursor>,
        }
        let mut url = self.endpoint("/site-media/v1/folders");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("parentFolderId", parent);
            query.append_pair("paging.limit", &limit.to_string());
            if let Some(cursor) = cursor {
                query.append_pair("paging.cursor", cursor);
            }
        }
        let resp: Resp = self.call_url(ctx, Method::GET, url, None).await?;
        let items = resp.folders.ok_or_else(|| {
            WixError::new(
                WixErrorKind::InvalidResponse,
                "Wix answered a folder list without `folders`",
            )
        })?;
        Ok(Page {
            items,
            next: resp.next_cursor.and_then(NextCursor::next),
        })
    }

    /// A JSON call with retries; `T` is the 2xx answer's shape.
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, WixError> {
        let body = match body {
            Some(b) => Some(bytes_of(b)?),
            None => None,
        };
        self.call_url(ctx, method, self.endpoint(path), body).await
    }

    /// A JSON call to a full URL (paths with a query string).
    pub async fn call_url<T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<T, WixError> {
        let endpoint = url.path().to_owned();
        let mut retries_left = self.settings.max_retries;
        let mut auth_retried = false;
        let mut attempt_no: u32 = 0;
        loop {
            let auth = self.auth(ctx).await?;
            let attempt = self
                .attempt(ctx, &method, &url, body.as_deref(), Some(&auth), &endpoint)
                .await;
            attempt_no += 1;
            match attempt {
                Ok(Attempt::Done(value)) => return Ok(value),
                Ok(Attempt::Refused { error, auth_refused }) => {
                    if auth_refused && !auth_retried && self.renew_auth(&auth).await {
                        auth_retried = true;
                        ctx.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            endpoint,
                            status = error.status,
                            "Wix refused the credentials; retrying once with fresh ones"
                        );
                        continue;
                    }
                    return Err(error);
                }
                Ok(Attempt::Retry { error, wait }) => {
                    if retries_left == 0 {
                        return Err(error);
                    }
                    retries_left -= 1;
                    let wait = wait.unwrap_or_else(|| self.backoff(attempt_no - 1, error.kind));
                    if let Some(deadline) = ctx.deadline {
                        if Instant::now() + wait + MIN_CALL_TIME > deadline {
                            return Err(WixError {
                                kind: WixErrorKind::Deadline,
                                message: format!("no time left to retry after: {}", error.message),
                                ..error
                            });
                        }
                    }
                    ctx.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        endpoint,
                        wait_ms = wait.as_millis() as u64,
                        status = error.status,
                        "retrying a Wix call"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One attempt: wait for a slot, send, read, classify.
    async fn attempt<T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        auth: Option<&Auth>,
        endpoint: &str,
    ) -> Result<Attempt<T>, WixError> {
        let latest_start = ctx.deadline.map(|d| d.checked_sub(MIN_CALL_TIME).unwrap_or(d));
        let _permit = self.limiter.acquire(latest_start).await.map_err(|_| {
            WixError::new(
                WixErrorKind::Deadline,
                "not attempted: the invocation was about to time out",
            )
        })?;
        let timeout = match ctx.deadline {
            Some(deadline) => self
                .settings
                .timeout
                .min(deadline.saturating_duration_since(Instant::now())),
            None => self.settings.timeout,
        };
        let cut_by_deadline = timeout < self.settings.timeout;
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth.authorization.expose());
            if let Some(site) = &auth.site_id {
                request = request.header("wix-site-id", site);
            }
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.to_vec());
        }
        ctx.stats.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let sent = tokio::time::timeout(timeout, async {
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_capped(response).await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        })
        .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let (status, headers, body) = match sent {
            Err(_) => {
                tracing::debug!(endpoint, elapsed_ms, "Wix call timed out");
                let error = if cut_by_deadline {
                    WixError::new(WixErrorKind::Deadline, "cut off: the invocation was about to time out")
                } else {
                    WixError::new(
                        WixErrorKind::Unavailable,
                        format!("Wix did not answer within {} s", timeout.as_secs()),
                    )
                };
                return Ok(if cut_by_deadline {
                    Attempt::Refused {
                        error,
                        auth_refused: false,
                    }
                } else {
                    Attempt::Retry { error, wait: None }
                });
            }
            Ok(Err(e)) => {
                tracing::debug!(endpoint, elapsed_ms, error = %describe(&e), "Wix call failed");
                return Ok(Attempt::Retry {
                    error: WixError::new(
                        WixErrorKind::Unavailable,
                        format!("could not reach Wix: {}", describe(&e)),
                    ),
                    wait: None,
                });
            }
            Ok(Ok((status, headers, Body::TooLarge))) => {
                let error = WixError {
                    status: Some(status.as_u16()),
                    wix_request_id: request_id(&headers),
                    ..WixError::new(
                        WixErrorKind::InvalidResponse,
                        format!("Wix answered with a body over {MAX_BODY} bytes"),
                    )
                };
                return Ok(Attempt::Refused {
                    error,
                    auth_refused: false,
                });
            }
            Ok(Ok((status, headers, Body::Read(body)))) => (status, headers, body),
        };
        let wix_request_id = request_id(&headers);
        tracing::debug!(
            endpoint,
            status = status.as_u16(),
            elapsed_ms,
            wix_request_id = wix_request_id.as_deref(),
            "Wix answered"
        );
        if status.is_success() {
            return match serde_json::from_slice::<T>(&body) {
                Ok(value) => Ok(Attempt::Done(value)),
                Err(_) => Ok(Attempt::Refused {
                    error: WixError {
                        status: Some(status.as_u16()),
                        wix_request_id,
                        ..WixError::new(
                            WixErrorKind::InvalidResponse,
                            format!(
                                "Wix answered {} with a body that is not the expected JSON",
                                status.as_u16()
                            ),
                        )
                    },
                    auth_refused: false,
                }),
            };
        }
        let code = status.as_u16();
        if status == StatusCode::TOO_MANY_REQUESTS {
            ctx.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            let wait = retry_after(&headers);
            if let Some(wait) = wait {
                self.limiter.pause_until(Instant::now() + wait);
            }
            let error = WixError::from_answer(WixErrorKind::RateLimited, code, &body, wix_request_id);
            return Ok(match wait {
                Some(w) if w > MAX_RETRY_AFTER => Attempt::Refused {
                    error,
                    auth_refused: false,
                },
                _ => Attempt::Retry { error, wait },
            });
        }
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            let error = WixError::from_answer(WixErrorKind::Unavailable, code, &body, wix_request_id);
            return Ok(Attempt::Retry {
                error,
                wait: retry_after(&headers).filter(|w| *w <= MAX_RETRY_AFTER),
            });
        }
        let kind = if status.is_server_error() {
            WixErrorKind::Unavailable
        } else {
            WixErrorKind::Rejected
        };
        let error = WixError::from_answer(kind, code, &body, wix_request_id);
        let auth_refused = matches!(code, 401 | 403);
        Ok(Attempt::Refused { error, auth_refused })
    }

    /// Full-jitter exponential backoff; a 429 without `Retry-After` waits at least a second.
    fn backoff(&self, retry: u32, kind: WixErrorKind) -> Duration {
        let base = self.settings.backoff_base;
        let ceiling = base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.settings.backoff_cap);
        let jittered = ceiling.mul_f64(fastrand::f64());
        if kind == WixErrorKind::RateLimited {
            jittered.max(Duration::from_secs(1).min(self.settings.backoff_cap))
        } else {
            jittered
        }
    }

    /// The headers for the current credentials; app credentials are exchanged for a cached
    /// access token.
    async fn auth(&self, ctx: &CallContext) -> Result<Auth, WixError> {
        let credentials = self
            .credentials
            .current()
            .await
            .map_err(|e| WixError::new(WixErrorKind::Unavailable, format!("Wix credentials unavailable: {e}")))?;
        match &credentials.wix {
            WixAuth::ApiKey { api_key, site_id } => Ok(Auth {
                authorization: api_key.clone(),
                site_id: Some(site_id.clone()),
                credentials: credentials.clone(),
            }),
            WixAuth::App {
                app_id,
                app_secret,
                instance_id,
            } => {
                let token = self.app_token(ctx, app_id, app_secret, instance_id).await?;
                Ok(Auth {
                    authorization: token,
                    site_id: None,
                    credentials: credentials.clone(),
                })
            }
        }
    }

    /// After a 401 or 403: drop a cached token, or fetch the credentials again. True when
    /// something changed, so one more attempt is worth it.
    async fn renew_auth(&self, used: &Auth) -> bool {
        if matches!(used.credentials.wix, WixAuth::App { .. }) {
            let mut token = self.token.lock().await;
            if token.as_ref().is_some_and(|t| t.value == used.authorization) {
                *token = None;
            }
        }
        match self.credentials.refresh(used.credentials.clone()).await {
            Ok(fresh) => fresh != used.credentials || matches!(fresh.wix, WixAuth::App { .. }),
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch fresh credentials");
                false
            }
        }
    }

    async fn app_token(
        &self,
        ctx: &CallContext,
        app_id: &str,
        app_secret: &SecretString,
        instance_id: &str,
    ) -> Result<SecretString, WixError> {
        let mut cached = self.token.lock().await;
        let key = (app_id.to_owned(), instance_id.to_owned());
        if let Some(token) = cached.as_ref() {
            if token.for_app == key && Instant::now() < token.valid_until {
                return Ok(token.value.clone());
            }
        }
        #[derive(Serialize)]
        struct Req<'a> {
            grant_type: &'a str,
            client_id: &'a str,
            client_secret: &'a str,
            instance_id: &'a str,
        }
        #[derive(Deserialize)]
        struct Resp {
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body = bytes_of(&Req {
            grant_type: "client_credentials",
            client_id: app_id,
            client_secret: app_secret.expose(),
            instance_id,
        })?;
        let url = self.endpoint("/oauth2/token");
        let issued = Instant::now();
        let resp: Resp = self.token_call(ctx, url, body).await?;
        let value = resp.access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            WixError::new(
                WixErrorKind::InvalidResponse,
                "Wix answered the token request without `access_token`",
            )
        })?;
        let ttl = Duration::from_secs(resp.expires_in.unwrap_or(3600));
        // Renew shortly before expiry: five minutes early, or a tenth early for short tokens.
        let early = Duration::from_secs(300).min(ttl / 10);
        let token = SecretString::new(value);
        *cached = Some(AccessToken {
            value: token.clone(),
            valid_until: issued + ttl - early,
            for_app: key,
        });
        Ok(token)
    }

    /// The token request: paced and retried like any call, but without auth headers.
    async fn token_call<T: DeserializeOwned>(&self, ctx: &CallContext, url: Url, body: Vec<u8>) -> Result<T, WixError> {
        let mut retries_left = self.settings.max_retries;
        let mut n = 0;
        loop {
            match self
                .attempt(ctx, &Method::POST, &url, Some(&body), None, "/oauth2/token")
                .await?
            {
                Attempt::Done(v) => return Ok(v),
                Attempt::Refused { error, .. } => return Err(error),
                Attempt::Retry { error, wait } => {
                    if retries_left == 0 {
                        return Err(error);
                    }
                    retries_left -= 1;
                    ctx.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait.unwrap_or_else(|| self.backoff(n, error.kind))).await;
                    n += 1;
                }
            }
        }
    }

    /// `path` under the base URL, keeping any path prefix the base has (a proxy).
    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.settings.base_url.clone();
        let joined = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    /// A link Wix returned, if it is a usable http(s) URL. Plain http is accepted only when
    /// the Wix base URL itself is plain http (a local emulator).
    fn checked_link(&self, link: Option<String>) -> Result<String, WixError> {
        let link = link
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| WixError::new(WixErrorKind::InvalidResponse, "Wix answered without a download link"))?;
        let allow_http = self.settings.base_url.scheme() == "http";
        match Url::parse(link.trim()) {
            Ok(url) if url.host().is_some() && (url.scheme() == "https" || (allow_http && url.scheme() == "http")) => {
                Ok(link.trim().to_owned())
            }
            _ => Err(WixError::new(
                WixErrorKind::InvalidResponse,
                "Wix answered with a download link that is not an https URL",
            )),
        }
    }
}

impl std::fmt::Debug for WixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WixClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

enum Body {
    Read(Vec<u8>),
    TooLarge,
}

async fn read_capped(mut response: reqwest::Response) -> Result<Body, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Ok(Body::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Ok(Body::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body::Read(body))
}

fn bytes_of<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, WixError> {
    serde_json::to_vec(body)
        .map_err(|e| WixError::new(WixErrorKind::Rejected, format!("could not encode the request: {e}")))
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-wix-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(128).collect())
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// A transport error in words, without the URL (which could carry a query string).
fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer"
    } else if e.is_request() {
        "the connection broke"
    } else {
        "transport error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        h.insert(RETRY_AFTER, later.parse().unwrap());
        let got = retry_after(&h).unwrap();
        assert!(
            got > Duration::from_secs(27) && got <= Duration::from_secs(30),
            "{got:?}"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn sizes_from_strings() {
        let f: FileDescriptor =
            serde_json::from_str(r#"{"id": "a", "sizeInBytes": "5918720", "private": true}"#).unwrap();
        assert_eq!(f.size_in_bytes, Some(5_918_720));
        assert!(f.private);
        let n: FileDescriptor = serde_json::from_str(r#"{"id": "a", "sizeInBytes": 12}"#).unwrap();
        assert_eq!(n.size_in_bytes, Some(12));
        let odd: FileDescriptor =
            serde_json::from_str(r#"{"id": "a", "sizeInBytes": "big", "mediaType": "MODEL3D"}"#).unwrap();
        assert_eq!(odd.size_in_bytes, None);
        assert_eq!(odd.media_type.as_deref(), Some("MODEL3D"));
    }
}
