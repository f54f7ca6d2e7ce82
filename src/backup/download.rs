//! Downloading what a Wix link points at straight into S3: the response body streams into
//! a multipart upload (see [`crate::storage::upload`]), never into memory whole or `/tmp`.
//! Errors are worded without the link (it is a secret).

use std::time::Duration;

use futures_util::StreamExt;

use crate::domain::link::Link;
use crate::storage::upload::{UploadError, Uploaded};
use crate::storage::Store;
use crate::wix::ClientSettings;

/// Most redirects a download follows.
const MAX_REDIRECTS: usize = 5;

/// The download client: redirects followed (to https only, or http when Wix itself is plain
/// http, a local emulator), a read that stalls for a minute fails.
pub fn client(settings: &ClientSettings) -> reqwest::Result<reqwest::Client> {
    let allow_http = settings.base_url.scheme() == "http";
    reqwest::Client::builder()
        .user_agent(concat!("wix-media-archiver/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if attempt.url().scheme() == "https" || (allow_http && attempt.url().scheme() == "http") {
                attempt.follow()
            } else {
                attempt.error("a redirect to a plain-http URL")
            }
        }))
        .build()
}

/// Why a download did not end up stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The link answered an error status.
    #[error("the download answered HTTP {0}")]
    Status(u16),
    /// The link could not be fetched.
    #[error("the download failed: {0}")]
    Transport(String),
    #[error(transparent)]
    Upload(#[from] UploadError),
}

impl FetchError {
    /// A fault of S3 rather than of the download.
    pub fn is_storage(&self) -> bool {
        matches!(self, FetchError::Upload(UploadError::Storage(_)))
    }
}

/// Downloads `link` into `key`, checking the length the server announced.
pub async fn fetch_into(
    http: &reqwest::Client,
    store: &Store,
    key: &str,
    link: &Link,
    content_type: &str,
) -> Result<Uploaded, FetchError> {
    let response = http
        .get(link.expose())
        .send()
        .await
        .map_err(|e| FetchError::Transport(words(e)))?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    let announced = response.content_length();
    let body = response.bytes_stream().map(|chunk| chunk.map_err(words));
    let part_size = store.settings().part_size;
    Ok(store
        .upload_stream(key, content_type, announced, part_size, body)
        .await?)
}

/// A transport error in words, without the URL.
fn words(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else if e.is_redirect() {
        "redirected too often, or to a plain-http URL".to_owned()
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading".to_owned()
    } else {
        e.to_string()
    }
}
