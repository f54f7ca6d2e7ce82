//! Auth headers: a site owner's API key as it is, or a Wix app's access token, fetched with
//! OAuth client credentials through the same retry loop as every call and cached until
//! shortly before it expires.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::call::{bytes_of, Authorize};
use super::client::WixClient;
use super::context::CallContext;
use super::error::{WixError, WixErrorKind};
use crate::credentials::{Credentials, SecretString, WixAuth};

/// A cached app access token.
pub(super) struct AccessToken {
    value: SecretString,
    valid_until: Instant,
    for_app: (String, String),
}

/// The auth headers of one attempt and the credentials they came from.
pub(super) struct Auth {
    pub(super) credentials: Arc<Credentials>,
    pub(super) authorization: SecretString,
    pub(super) site_id: Option<String>,
}

/// Why no auth headers could be made, and from which credentials (when they were read).
pub(super) type AuthFailure = (WixError, Option<Arc<Credentials>>);

impl WixClient {
    /// The headers for the current credentials; app credentials are exchanged for a cached
    /// access token.
    pub(super) async fn auth(&self, ctx: &CallContext) -> Result<Auth, AuthFailure> {
        let credentials = self.credentials.current().await.map_err(|e| {
            (
                WixError::new(WixErrorKind::Unavailable, format!("Wix credentials unavailable: {e}")),
                None,
            )
        })?;
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
            } => match self.app_token(ctx, app_id, app_secret, instance_id).await {
                Ok(token) => Ok(Auth {
                    authorization: token,
                    site_id: None,
                    credentials: credentials.clone(),
                }),
                Err(e) => Err((e, Some(credentials.clone()))),
            },
        }
    }

    /// After Wix refused `used` (with `token`, or at the token endpoint when `None`): drop
    /// that token and read the credentials again. True when one more attempt is worth it:
    /// the credentials changed, or a refused token can be replaced by a new one.
    pub(super) async fn renew_auth(&self, used: &Credentials, token: Option<&SecretString>) -> bool {
        let is_app = matches!(used.wix, WixAuth::App { .. });
        if is_app {
            let mut cached = self.token.lock().await;
            if token.is_none() || cached.as_ref().is_some_and(|t| Some(&t.value) == token) {
                *cached = None;
            }
        }
        match self.credentials.refresh(Arc::new(used.clone())).await {
            Ok(fresh) => *fresh != *used || (is_app && token.is_some()),
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch fresh credentials");
                false
            }
        }
    }

    /// The app's access token: the cached one, or a new one from `/oauth2/token`. Waiting
    /// for another caller's token request ends at the invocation's deadline.
    async fn app_token(
        &self,
        ctx: &CallContext,
        app_id: &str,
        app_secret: &SecretString,
        instance_id: &str,
    ) -> Result<SecretString, WixError> {
        let locked = self.token.lock();
        let mut cached = match ctx.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, locked).await.map_err(|_| {
                WixError::new(
                    WixErrorKind::Deadline,
                    "not attempted: the invocation was about to time out",
                )
            })?,
            None => locked.await,
        };
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
        let (resp, _): (Resp, _) = Box::pin(self.send(ctx, Method::POST, url, Some(body), Authorize::None)).await?;
        let value = resp.access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            WixError::new(
                WixErrorKind::InvalidResponse,
                "Wix answered the token request without `access_token`",
            )
        })?;
        let ttl = Duration::from_secs(resp.expires_in.unwrap_or(3600).clamp(1, 30 * 86_400));
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
}
