//! The one retry loop every Wix call goes through (the token request included): a paced
//! start, the call bounded by its timeout and the invocation's deadline, and a decision
//! on the answer — done, retry after a wait, or refused.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use super::auth::Auth;
use super::client::WixClient;
use super::context::CallContext;
use super::error::{WixError, WixErrorKind};
use super::limiter::{Smoothing, MAX_PAUSE};

/// Largest answer body read from Wix; a search page of 100 files is about 100 KB.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Shortest time worth starting a call in: less than this before the deadline, it is
/// reported as `DEADLINE` instead.
pub(super) const MIN_CALL_TIME: Duration = Duration::from_secs(2);
/// Longest `Retry-After` waited out; a longer one ends the retries of that call.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Whether a call carries the site's credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Authorize {
    /// `Authorization` (and `wix-site-id` for an API key).
    Site,
    /// No auth headers: the token request itself.
    None,
}

enum Attempt<T> {
    Done(T),
    Retry { error: WixError, wait: Option<Duration> },
    Refused(WixError),
}

impl WixClient {
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
        self.send(ctx, method, url, body, Authorize::Site).await.map(|(v, _)| v)
    }

    /// [`WixClient::call`], also giving when the call that succeeded was sent.
    pub async fn call_timed<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(T, std::time::SystemTime), WixError> {
        let body = match body {
            Some(b) => Some(bytes_of(b)?),
            None => None,
        };
        let (value, sent) = self
            .send(ctx, method, self.endpoint(path), body, Authorize::Site)
            .await?;
        let ago = Instant::now().saturating_duration_since(sent);
        Ok((value, std::time::SystemTime::now() - ago))
    }

    /// The retry loop. A refusal of the credentials (see [`WixError::is_bad_credentials`])
    /// reads them again and tries once more; 429, 5xx (not 501), timeouts and broken
    /// connections are retried with backoff or as `Retry-After` says, within the deadline.
    pub(super) async fn send<T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        authorize: Authorize,
    ) -> Result<(T, Instant), WixError> {
        let endpoint = url.path().to_owned();
        let mut retries_left = self.settings.max_retries;
        let mut auth_retried = false;
        let mut attempt_no: u32 = 0;
        loop {
            let auth = match authorize {
                Authorize::None => None,
                Authorize::Site => match self.auth(ctx).await {
                    Ok(auth) => Some(auth),
                    Err((error, used)) => {
                        // The token endpoint refused the app's credentials: a rotated secret.
                        if let Some(used) = used {
                            if error.is_bad_credentials() && !auth_retried && self.renew_auth(&used, None).await {
                                auth_retried = true;
                                continue;
                            }
                        }
                        return Err(error);
                    }
                },
            };
            let (attempt, sent) = self
                .attempt(ctx, &method, &url, body.as_deref(), auth.as_ref(), &endpoint)
                .await?;
            attempt_no += 1;
            match attempt {
                Attempt::Done(value) => return Ok((value, sent)),
                Attempt::Refused(error) => {
                    if let Some(auth) = &auth {
                        if error.is_bad_credentials()
                            && !auth_retried
                            && self.renew_auth(&auth.credentials, Some(&auth.authorization)).await
                        {
                            auth_retried = true;
                            ctx.stats.retries.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(
                                endpoint,
                                status = error.status,
                                "Wix refused the credentials; retrying once with fresh ones"
                            );
                            continue;
                        }
                    }
                    return Err(error);
                }
                Attempt::Retry { error, wait } => {
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
            }
        }
    }

    /// One attempt: wait for a start, send, read, classify. Also gives when it was sent.
    async fn attempt<T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        auth: Option<&Auth>,
        endpoint: &str,
    ) -> Result<(Attempt<T>, Instant), WixError> {
        use tracing::Instrument;
        let mut sent = Instant::now();
        let span = tracing::info_span!("wix_call", endpoint);
        let attempt = self
            .attempt_at(ctx, method, url, body, auth, endpoint, &mut sent)
            .instrument(span)
            .await?;
        Ok((attempt, sent))
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt_at<T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        auth: Option<&Auth>,
        endpoint: &str,
        sent: &mut Instant,
    ) -> Result<Attempt<T>, WixError> {
        let latest_start = ctx.deadline.map(|d| d.checked_sub(MIN_CALL_TIME).unwrap_or(d));
        let permit = self
            .limiter
            .acquire(latest_start, || ctx.smoothing())
            .await
            .map_err(|_| {
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
        *sent = started;
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
                return Ok(if cut_by_deadline {
                    Attempt::Refused(WixError::new(
                        WixErrorKind::Deadline,
                        "cut off: the invocation was about to time out",
                    ))
                } else {
                    Attempt::Retry {
                        error: WixError::new(
                            WixErrorKind::Unavailable,
                            format!("Wix did not answer within {} s", timeout.as_secs()),
                        ),
                        wait: None,
                    }
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
                return Ok(Attempt::Refused(WixError {
                    status: Some(status.as_u16()),
                    wix_request_id: request_id(&headers),
                    ..WixError::new(
                        WixErrorKind::InvalidResponse,
                        format!("Wix answered with a body over {MAX_BODY} bytes"),
                    )
                }));
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
            return Ok(match serde_json::from_slice::<T>(&body) {
                Ok(value) => Attempt::Done(value),
                Err(_) => Attempt::Refused(WixError {
                    status: Some(status.as_u16()),
                    wix_request_id,
                    ..WixError::new(
                        WixErrorKind::InvalidResponse,
                        format!(
                            "Wix answered {} with a body that is not the expected JSON",
                            status.as_u16()
                        ),
                    )
                }),
            });
        }
        let code = status.as_u16();
        if status == StatusCode::TOO_MANY_REQUESTS {
            ctx.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            self.learn_from_429(ctx, permit.started);
            let wait = retry_after_header(&headers);
            if let Some(wait) = wait {
                self.limiter.pause_until(Instant::now() + wait.min(MAX_PAUSE));
            }
            let error = WixError::from_answer(WixErrorKind::RateLimited, code, &body, wix_request_id);
            return Ok(match wait {
                Some(w) if w > MAX_RETRY_AFTER => Attempt::Refused(WixError {
                    message: format!(
                        "{} (Wix asked to wait {} s, longer than the {} s this waits)",
                        error.message,
                        w.as_secs(),
                        MAX_RETRY_AFTER.as_secs()
                    ),
                    ..error
                }),
                _ => Attempt::Retry { error, wait },
            });
        }
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            let error = WixError::from_answer(WixErrorKind::Unavailable, code, &body, wix_request_id);
            let wait = retry_after_header(&headers).filter(|w| *w <= MAX_RETRY_AFTER);
            return Ok(Attempt::Retry { error, wait });
        }
        let kind = if status.is_server_error() {
            WixErrorKind::Unavailable
        } else {
            WixErrorKind::Rejected
        };
        Ok(Attempt::Refused(WixError::from_answer(
            kind,
            code,
            &body,
            wix_request_id,
        )))
    }

    /// A 429 makes the rest of the invocation space its calls evenly (and slower with each
    /// 429 that still comes after that); the log says so once.
    fn learn_from_429(&self, ctx: &CallContext, started: Instant) {
        let mut smoothing = ctx.smoothing.lock().expect("smoothing lock");
        let before = *smoothing;
        let burst = self.limiter.burst_before(started);
        let after = Smoothing::after_429(before, self.limiter.per_minute(), started, burst);
        *smoothing = Some(after);
        if before != Some(after) {
            self.limiter.bucket_empty_now(after);
        }
        if before.is_none() {
            tracing::info!(
                per_minute = after.per_minute as u64,
                burst = after.burst as u64,
                "Wix answered 429: pacing the rest of this invocation as a token bucket (the budget a minute, the burst Wix allowed)"
            );
        }
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

pub(super) fn bytes_of<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, WixError> {
    serde_json::to_vec(body)
        .map_err(|e| WixError::new(WixErrorKind::Rejected, format!("could not encode the request: {e}")))
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-wix-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(128).collect())
}

/// Longest `Retry-After` read as such; anything longer is read as this, so no later
/// arithmetic on instants can overflow.
pub const RETRY_AFTER_CEILING: Duration = Duration::from_secs(7 * 86_400);

/// The answer's `Retry-After`, read by [`retry_after`].
fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    retry_after(headers.get(RETRY_AFTER)?.to_str().ok(), std::time::SystemTime::now())
}

/// A `Retry-After` value as seconds or an HTTP date, capped at a week; a date in the past is
/// zero, anything else unreadable is none.
pub fn retry_after(value: Option<&str>, now: std::time::SystemTime) -> Option<Duration> {
    let value = value?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: a number of seconds, however many digits.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(RETRY_AFTER_CEILING));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default().min(RETRY_AFTER_CEILING))
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
    use std::time::SystemTime;

    fn with(value: &str) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, value.parse().unwrap());
        retry_after_header(&h)
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after_header(&HeaderMap::new()), None);
        assert_eq!(retry_after(None, SystemTime::now()), None);
        assert_eq!(with("3"), Some(Duration::from_secs(3)));
        assert_eq!(with("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let got = with(&later).unwrap();
        assert!(
            got > Duration::from_secs(27) && got <= Duration::from_secs(30),
            "{got:?}"
        );
        assert_eq!(with("soon"), None);
        assert_eq!(with("-5"), None);
        assert_eq!(with("1.5"), None);
    }

    #[test]
    fn huge_retry_afters_are_capped_not_overflowed() {
        assert_eq!(with("86400"), Some(Duration::from_secs(86_400)));
        assert_eq!(with(&u64::MAX.to_string()), Some(RETRY_AFTER_CEILING));
        assert_eq!(with("99999999999999999999999999999"), Some(RETRY_AFTER_CEILING));
        assert_eq!(with("Fri, 31 Dec 9999 23:59:59 GMT"), Some(RETRY_AFTER_CEILING));
        // Whatever was read, adding it to now cannot overflow.
        let _ = Instant::now() + with(&u64::MAX.to_string()).unwrap();
    }
}
