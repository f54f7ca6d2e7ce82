//! Credentials: the Wix API key or app credentials, and the caller keys HTTP callers
//! sign with. One interface, several sources (the environment, AWS Secrets Manager, SSM).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, so sources can sit behind `dyn CredentialsSource`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        SecretString(value)
    }
    /// The value, for the one place that must send or use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// How the function authenticates to Wix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WixAuth {
    /// A site owner's API key and the site it acts on.
    ApiKey { api_key: SecretString, site_id: String },
    /// A Wix app installed on the site (OAuth client credentials).
    App {
        app_id: String,
        app_secret: SecretString,
        instance_id: String,
    },
}

/// Everything secret the function needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub wix: WixAuth,
    pub caller_keys: Vec<SecretString>,
}

impl Credentials {
    /// The site this works on: the API key's site ID, or the app's instance ID (each site's
    /// stored backups live under it).
    pub fn site(&self) -> &str {
        match &self.wix {
            WixAuth::ApiKey { site_id, .. } => site_id,
            WixAuth::App { instance_id, .. } => instance_id,
        }
    }
}

/// Why credentials could not be had; the message names the source and field, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials {source_name}: {reason}")]
    Unreadable { source_name: String, reason: String },
}

impl CredentialsError {
    /// An error about `source_name`.
    pub fn new(source_name: impl Into<String>, reason: impl Into<String>) -> Self {
        CredentialsError::Unreadable {
            source_name: source_name.into(),
            reason: reason.into(),
        }
    }
}

/// Where credentials come from.
pub trait CredentialsSource: Send + Sync {
    /// The current credentials (cached by the source as it sees fit).
    fn current(&self) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>>;
    /// Fresh credentials after Wix refused `stale` (a rotated key). Sources that cannot
    /// change return what they have.
    fn refresh(&self, stale: Arc<Credentials>) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>>;
}

/// Credentials fixed at start (from the environment, or given by a test).
#[derive(Debug, Clone)]
pub struct StaticCredentials(pub Arc<Credentials>);

impl CredentialsSource for StaticCredentials {
    fn current(&self) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>> {
        let creds = self.0.clone();
        Box::pin(async move { Ok(creds) })
    }
    fn refresh(&self, _stale: Arc<Credentials>) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>> {
        self.current()
    }
}

/// Parses the credentials secret's JSON (either shape of the contract). `name` is the
/// secret's name, used in errors.
pub fn parse_secret_json(name: &str, json: &str) -> Result<Credentials, CredentialsError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|_| CredentialsError::new(name, "the value is not valid JSON"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| CredentialsError::new(name, "the value is not a JSON object"))?;
    let text = |field: &str| -> Result<Option<String>, CredentialsError> {
        match obj.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(CredentialsError::new(
                name,
                format!("field `{field}` must be a non-empty string"),
            )),
        }
    };
    let required = |field: &str| -> Result<String, CredentialsError> {
        text(field)?.ok_or_else(|| CredentialsError::new(name, format!("field `{field}` is missing")))
    };
    let wix = if obj.contains_key("apiKey") {
        WixAuth::ApiKey {
            api_key: SecretString::new(required("apiKey")?),
            site_id: required("siteId")?,
        }
    } else if obj.contains_key("appId") || obj.contains_key("appSecret") || obj.contains_key("instanceId") {
        WixAuth::App {
            app_id: required("appId")?,
            app_secret: SecretString::new(required("appSecret")?),
            instance_id: required("instanceId")?,
        }
    } else {
        return Err(CredentialsError::new(
            name,
            "field `apiKey` (or `appId`, `appSecret`, `instanceId`) is missing",
        ));
    };
    let caller_keys = match obj.get("callerKeys") {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|k| match k {
                serde_json::Value::String(s) if !s.is_empty() => Ok(SecretString::new(s.clone())),
                _ => Err(CredentialsError::new(
                    name,
                    "field `callerKeys` must hold non-empty strings",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => return Err(CredentialsError::new(name, "field `callerKeys` is missing")),
        Some(_) => {
            return Err(CredentialsError::new(
                name,
                "field `callerKeys` must be an array of strings",
            ))
        }
    };
    if caller_keys.is_empty() {
        return Err(CredentialsError::new(name, "field `callerKeys` is empty"));
    }
    Ok(Credentials { wix, caller_keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let creds = parse_secret_json(
            "s",
            r#"{"apiKey": "KEY-123", "siteId": "site", "callerKeys": ["CK-9"]}"#,
        )
        .unwrap();
        let shown = format!("{creds:?}");
        assert!(!shown.contains("KEY-123") && !shown.contains("CK-9"), "{shown}");
        assert!(shown.contains("site"));
        let app = parse_secret_json(
            "s",
            r#"{"appId": "app", "appSecret": "SECRET-1", "instanceId": "inst", "callerKeys": ["k"]}"#,
        )
        .unwrap();
        assert!(!format!("{app:?}").contains("SECRET-1"));
    }

    #[test]
    fn both_shapes_and_every_error_names_the_field() {
        assert!(matches!(
            parse_secret_json("s", r#"{"apiKey": "k", "siteId": "x", "callerKeys": ["a", "b"]}"#)
                .unwrap()
                .wix,
            WixAuth::ApiKey { .. }
        ));
        let cases = [
            ("nope", "not valid JSON"),
            ("[]", "not a JSON object"),
            (r#"{"siteId": "x", "callerKeys": ["a"]}"#, "`apiKey`"),
            (r#"{"apiKey": "k", "callerKeys": ["a"]}"#, "`siteId`"),
            (r#"{"apiKey": "", "siteId": "x", "callerKeys": ["a"]}"#, "`apiKey`"),
            (r#"{"apiKey": "k", "siteId": "x"}"#, "`callerKeys` is missing"),
            (
                r#"{"apiKey": "k", "siteId": "x", "callerKeys": []}"#,
                "`callerKeys` is empty",
            ),
            (
                r#"{"apiKey": "k", "siteId": "x", "callerKeys": "a"}"#,
                "`callerKeys` must be an array",
            ),
            (
                r#"{"appId": "a", "instanceId": "i", "callerKeys": ["a"]}"#,
                "`appSecret`",
            ),
        ];
        for (json, needle) in cases {
            let err = parse_secret_json("my-secret", json).unwrap_err().to_string();
            assert!(err.contains("my-secret") && err.contains(needle), "{json}: {err}");
            assert!(!err.contains("\"k\""), "{err}");
        }
    }
}
