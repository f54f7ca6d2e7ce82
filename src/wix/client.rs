//! The Wix client: one connection pool, one pacer, the credentials, and the settings every
//! call follows. The calls themselves are in [`super::endpoints`], the one retry loop they
//! all go through in [`super::call`], the auth headers in [`super::auth`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::sync::Mutex as AsyncMutex;

use super::auth::AccessToken;
use super::error::{WixError, WixErrorKind};
use super::limiter::Limiter;
use crate::credentials::CredentialsSource;
use crate::domain::link::Link;

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
            requests_per_minute: config.wix_pace(),
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(8),
        }
    }
}

/// The Wix client; built once per container and shared by every invocation.
pub struct WixClient {
    pub(super) http: reqwest::Client,
    pub(super) settings: ClientSettings,
    pub(super) credentials: Arc<dyn CredentialsSource>,
    pub(super) limiter: Limiter,
    pub(super) token: AsyncMutex<Option<AccessToken>>,
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

    /// The same client taking its starts from `pace`, a window of `budget` for the whole
    /// site (its own pace becomes the fallback).
    pub fn with_shared_pace(mut self, pace: Arc<dyn super::limiter::SharedPace>, budget: u32) -> Self {
        self.limiter = self.limiter.with_shared(pace, budget);
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The pacer every call goes through.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// `path` under the base URL, keeping any path prefix the base has (a proxy).
    pub(super) fn endpoint(&self, path: &str) -> Url {
        let mut url = self.settings.base_url.clone();
        let joined = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    /// A link Wix returned, if it is a usable http(s) URL. Plain http is accepted only when
    /// the Wix base URL itself is plain http (a local emulator).
    pub(super) fn checked_link(&self, link: Option<String>) -> Result<Link, WixError> {
        let link = link
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| WixError::new(WixErrorKind::InvalidResponse, "Wix answered without a download link"))?;
        let allow_http = self.settings.base_url.scheme() == "http";
        match Url::parse(link.trim()) {
            Ok(url) if url.host().is_some() && (url.scheme() == "https" || (allow_http && url.scheme() == "http")) => {
                Ok(Link::new(link.trim()))
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
