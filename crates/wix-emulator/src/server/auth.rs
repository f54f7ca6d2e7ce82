//! Credentials: the site owner's API key with `wix-site-id`, and app access tokens.

use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, AUTHORIZATION};
use serde_json::{json, Map, Value};

use super::respond::{app_error, json_resp, validation_error, Failure, Resp};
use super::State;
use crate::config::AuthMode;
use crate::library::hex;

pub(crate) struct TokenInfo {
    expires: Instant,
    revoked: bool,
}

/// `Ok` when the call may go on; the refusal's status follows [`AuthMode`].
pub(crate) fn check(state: &State, headers: &HeaderMap) -> Result<(), Failure> {
    let inner = state.lock();
    let mode = inner.config.auth;
    let unknown = |why: &str| match mode {
        AuthMode::AllForbidden => app_error(403, "FORBIDDEN", why, None),
        _ => app_error(401, "UNAUTHENTICATED", why, None),
    };
    let not_this_site = |why: &str| match mode {
        AuthMode::AllForbidden => app_error(403, "FORBIDDEN", why, None),
        _ => app_error(403, "PERMISSION_DENIED", why, None),
    };
    let no_permission = || {
        app_error(
            403,
            "PERMISSION_DENIED",
            "the credentials lack the Manage Media Manager permission",
            None,
        )
    };
    let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(unknown("missing Authorization header"));
    };
    let site = headers.get("wix-site-id").and_then(|v| v.to_str().ok());
    if !inner.config.api_key.is_empty() && auth == inner.config.api_key {
        if site != Some(inner.config.site_id.as_str()) {
            return Err(not_this_site("wix-site-id header missing or not this site"));
        }
        return match mode {
            AuthMode::MissingPermission => Err(no_permission()),
            _ => Ok(()),
        };
    }
    match inner.tokens.get(auth) {
        Some(token) if token.revoked || Instant::now() >= token.expires => Err(app_error(
            401,
            "UNAUTHENTICATED",
            "access token expired or revoked",
            None,
        )),
        Some(_) if mode == AuthMode::MissingPermission => Err(no_permission()),
        Some(_) => Ok(()),
        None => Err(unknown("not a known API key or access token")),
    }
}

pub(crate) fn revoke_tokens(state: &State, revoke: bool) {
    let now = Instant::now();
    for token in state.lock().tokens.values_mut() {
        if revoke {
            token.revoked = true;
        } else {
            token.expires = now;
        }
    }
}

/// `POST /oauth2/token`; the answer and whether the credentials were accepted.
pub(crate) fn token(state: &State, body: &Map<String, Value>) -> (Resp, bool) {
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        let resp = app_error(400, "INVALID_GRANT_TYPE", "grant_type must be client_credentials", None);
        return (*resp, false);
    }
    for name in ["client_id", "client_secret", "instance_id"] {
        if field(name).is_empty() {
            return (*validation_error(name, "is required", "REQUIRED_FIELD"), false);
        }
    }
    let mut inner = state.lock();
    let accepted = inner.config.app.as_ref().is_some_and(|app| {
        app.app_id == field("client_id")
            && app.app_secret == field("client_secret")
            && app.instance_id == field("instance_id")
    });
    if !accepted {
        drop(inner);
        let resp = app_error(
            401,
            "INVALID_CLIENT_CREDENTIALS",
            "client_id, client_secret or instance_id not accepted",
            None,
        );
        return (*resp, false);
    }
    let ttl = inner.config.token_ttl_seconds;
    let access_token = format!("OauthNG.JWS.{}", hex(&mut inner.rng, 64));
    inner.tokens.insert(
        access_token.clone(),
        TokenInfo {
            expires: Instant::now() + Duration::from_secs(ttl),
            revoked: false,
        },
    );
    drop(inner);
    let resp = json_resp(
        200,
        &json!({"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}),
    );
    (resp, true)
}
