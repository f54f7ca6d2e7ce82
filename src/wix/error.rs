//! Wix's answers that are not what was asked for, as typed errors.

use serde::Deserialize;

use crate::domain::outcome::{FailureCode, FailureError};

/// What kind of failure, as the contract's codes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WixErrorKind {
    /// 4xx other than 429: asking again will not help.
    Rejected,
    /// 429 after the retries.
    RateLimited,
    /// 5xx, timeouts or connection failures after the retries.
    Unavailable,
    /// A 2xx answer that cannot be used.
    InvalidResponse,
    /// Not attempted, or cut off, because the invocation was about to time out.
    Deadline,
}

/// One failed Wix call, after any retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WixError {
    pub kind: WixErrorKind,
    pub status: Option<u16>,
    pub message: String,
    pub wix_request_id: Option<String>,
    /// `applicationError.code` when Wix sent one (`RESOURCE_NOT_FOUND`).
    pub app_code: Option<String>,
    /// What the answer says about which fields and files it refused (boxed: usually empty).
    pub named: Box<Named>,
}

/// The refused fields and files an error answer names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    /// `ruleName` (or `violatedRule`) of each `validationError.fieldViolations[]` entry.
    pub rules: Vec<String>,
    /// File IDs the answer names (`data.fileIds`, `data.fileId`), at most [`MAX_NAMED`].
    pub file_ids: Vec<String>,
    /// Positions in the request's `fileIds` the answer names (`"field": "fileIds[3]"`).
    pub positions: Vec<usize>,
}

/// Most IDs or positions kept from one answer (a batch holds at most 1000).
pub const MAX_NAMED: usize = 1000;

/// Longest Wix message kept in a report.
const MAX_MESSAGE: usize = 300;

impl WixError {
    /// An error of `kind` with no Wix answer behind it.
    pub fn new(kind: WixErrorKind, message: impl Into<String>) -> Self {
        WixError {
            kind,
            status: None,
            message: message.into(),
            wix_request_id: None,
            app_code: None,
            named: Box::default(),
        }
    }

    /// Wix does not know (some of) the files asked for: a 404, or `RESOURCE_NOT_FOUND` as
    /// an application error or as a validation rule (the SDK's documented shape).
    pub fn is_unknown_file(&self) -> bool {
        self.kind == WixErrorKind::Rejected
            && (self.status == Some(404)
                || self.app_code.as_deref() == Some("RESOURCE_NOT_FOUND")
                || self.named.rules.iter().any(|r| r == "RESOURCE_NOT_FOUND"))
    }

    /// Wix found nothing it could put into an archive (every file unknown or unsupported).
    pub fn is_nothing_to_download(&self) -> bool {
        self.kind == WixErrorKind::Rejected
            && (self.app_code.as_deref() == Some("NOTHING_TO_DOWNLOAD")
                || self.message.to_ascii_lowercase().contains("nothing to download"))
    }

    /// Wix refused to put private files into an archive.
    pub fn is_private_refusal(&self) -> bool {
        self.kind == WixErrorKind::Rejected && self.app_code.as_deref().is_some_and(|c| c.contains("PRIVATE"))
    }

    /// Wix refused the credentials themselves, so reading them again may help: every 401,
    /// and a 403 only when it says the key or token is invalid or expired — not a missing
    /// permission or a refused private file, which fresh credentials do not change.
    pub fn is_bad_credentials(&self) -> bool {
        match self.status {
            Some(401) => true,
            Some(403) => {
                let code = self.app_code.as_deref().unwrap_or("");
                if ["PERMISSION_DENIED", "FORBIDDEN"].contains(&code) || self.is_private_refusal() {
                    return false;
                }
                let says = |words: &[&str]| {
                    let text = format!("{code} {}", self.message).to_ascii_lowercase();
                    words.iter().any(|w| text.contains(w))
                };
                ["UNAUTHENTICATED", "INVALID_TOKEN", "TOKEN_EXPIRED", "INVALID_API_KEY"].contains(&code)
                    || (says(&["invalid", "expired", "revoked"]) && says(&["key", "token", "credential"]))
            }
            _ => false,
        }
    }

    /// The failure as the outcome reports it.
    pub fn to_failure(&self) -> FailureError {
        FailureError {
            code: match self.kind {
                WixErrorKind::Rejected => FailureCode::WixRejected,
                WixErrorKind::RateLimited => FailureCode::WixRateLimited,
                WixErrorKind::Unavailable => FailureCode::WixUnavailable,
                WixErrorKind::InvalidResponse => FailureCode::WixInvalidResponse,
                WixErrorKind::Deadline => FailureCode::Deadline,
            },
            status: self.status,
            message: self.message.clone(),
            wix_request_id: self.wix_request_id.clone(),
        }
    }

    /// Builds the error for a non-2xx answer from its status and body (which may be empty,
    /// HTML, or Wix's JSON with `applicationError` or `validationError`).
    pub fn from_answer(kind: WixErrorKind, status: u16, body: &[u8], wix_request_id: Option<String>) -> Self {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let mut app_code = None;
        let mut detail = None;
        let mut rules = Vec::new();
        let mut named_ids = Vec::new();
        let mut named_positions = Vec::new();
        if let Some(body) = &parsed {
            if let Some(app) = body.details.as_ref().and_then(|d| d.application_error.as_ref()) {
                app_code = app.code.clone().filter(|c| !c.is_empty());
                detail = app.description.clone().filter(|d| !d.is_empty());
                if let Some(data) = &app.data {
                    collect_ids(data, &mut named_ids);
                }
            }
            if let Some(validation) = body.details.as_ref().and_then(|d| d.validation_error.as_ref()) {
                for v in &validation.field_violations {
                    if let Some(rule) = v.rule_name.as_ref().or(v.violated_rule.as_ref()) {
                        if !rules.contains(rule) {
                            rules.push(rule.clone());
                        }
                    }
                    if let Some(data) = &v.data {
                        collect_ids(data, &mut named_ids);
                    }
                    if let Some(i) = v.field.as_deref().and_then(position_in_file_ids) {
                        if named_positions.len() < MAX_NAMED {
                            named_positions.push(i);
                        }
                    }
                }
                let fields: Vec<String> = validation
                    .field_violations
                    .iter()
                    .take(5)
                    .map(|v| match (&v.field, &v.description) {
                        (Some(f), Some(d)) => format!("{f}: {d}"),
                        (Some(f), None) => f.clone(),
                        (None, Some(d)) => d.clone(),
                        (None, None) => "invalid field".to_owned(),
                    })
                    .collect();
                if !fields.is_empty() {
                    detail = Some(format!("validation failed ({})", fields.join("; ")));
                }
            }
            if let Some(m) = body
                .message
                .as_deref()
                .filter(|m| m.to_ascii_lowercase().contains("nothing to download"))
            {
                if !detail
                    .as_deref()
                    .is_some_and(|d| d.to_ascii_lowercase().contains("nothing to download"))
                {
                    detail = Some(m.to_owned());
                }
            }
            if detail.is_none() {
                detail = body.message.clone().filter(|m| !m.is_empty());
            }
        }
        let mut message = format!("Wix answered {status}");
        if let Some(code) = &app_code {
            message.push(' ');
            message.push_str(code);
        }
        match detail {
            Some(d) => {
                message.push_str(": ");
                message.push_str(&d);
            }
            None if body.is_empty() => message.push_str(" with an empty body"),
            None => message.push_str(" with a body that is not a Wix error"),
        }
        WixError {
            kind,
            status: Some(status),
            message: truncate(message),
            wix_request_id,
            app_code,
            named: Box::new(Named {
                rules,
                file_ids: named_ids,
                positions: named_positions,
            }),
        }
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
    details: Option<ErrorDetails>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetails {
    application_error: Option<ApplicationError>,
    validation_error: Option<ValidationError>,
}

#[derive(Deserialize)]
struct ApplicationError {
    code: Option<String>,
    description: Option<String>,
    data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidationError {
    #[serde(default)]
    field_violations: Vec<FieldViolation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FieldViolation {
    field: Option<String>,
    description: Option<String>,
    rule_name: Option<String>,
    violated_rule: Option<String>,
    data: Option<serde_json::Value>,
}

/// File IDs an error's `data` names: `fileIds: [...]`, `fileId`, or `id`.
fn collect_ids(data: &serde_json::Value, out: &mut Vec<String>) {
    let mut push = |v: &serde_json::Value| {
        if let Some(id) = v.as_str().filter(|s| !s.is_empty()) {
            if out.len() < MAX_NAMED && !out.iter().any(|o| o == id) {
                out.push(id.to_owned());
            }
        }
    };
    if let Some(list) = data.get("fileIds").and_then(serde_json::Value::as_array) {
        list.iter().for_each(&mut push);
    }
    for key in ["fileId", "id"] {
        if let Some(v) = data.get(key) {
            push(v);
        }
    }
}

/// `fileIds[3]` → 3.
fn position_in_file_ids(field: &str) -> Option<usize> {
    field.strip_prefix("fileIds[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_error() {
        let body = br#"{"message": "not found", "details": {"applicationError": {"code": "RESOURCE_NOT_FOUND", "description": "file x not found"}}}"#;
        let e = WixError::from_answer(WixErrorKind::Rejected, 400, body, Some("req-1".into()));
        assert_eq!(e.app_code.as_deref(), Some("RESOURCE_NOT_FOUND"));
        assert_eq!(e.message, "Wix answered 400 RESOURCE_NOT_FOUND: file x not found");
        let f = e.to_failure();
        assert_eq!(
            (f.code, f.status, f.wix_request_id.as_deref()),
            (FailureCode::WixRejected, Some(400), Some("req-1"))
        );
    }

    #[test]
    fn validation_error() {
        let body = br#"{"message": "bad", "details": {"validationError": {"fieldViolations": [{"field": "fileIds", "description": "size must be at most 1000", "violatedRule": "MAX_SIZE"}]}}}"#;
        let e = WixError::from_answer(WixErrorKind::Rejected, 400, body, None);
        assert_eq!(
            e.message,
            "Wix answered 400: validation failed (fileIds: size must be at most 1000)"
        );
    }

    #[test]
    fn empty_html_and_odd_bodies() {
        assert_eq!(
            WixError::from_answer(WixErrorKind::Unavailable, 503, b"", None).message,
            "Wix answered 503 with an empty body"
        );
        let html = WixError::from_answer(WixErrorKind::Unavailable, 502, b"<html>Bad gateway</html>", None);
        assert_eq!(html.message, "Wix answered 502 with a body that is not a Wix error");
        let odd = WixError::from_answer(WixErrorKind::Rejected, 400, br#"{"details": 5}"#, None);
        assert_eq!(odd.message, "Wix answered 400 with a body that is not a Wix error");
        let long = format!(r#"{{"message": "{}"}}"#, "é".repeat(1000));
        assert!(
            WixError::from_answer(WixErrorKind::Rejected, 400, long.as_bytes(), None)
                .message
                .len()
                <= MAX_MESSAGE + 3
        );
    }

    #[test]
    fn unknown_ids_in_both_shapes_name_the_files() {
        let validation = br#"{"message": "INVALID_ARGUMENT", "details": {"validationError": {"fieldViolations": [
            {"field": "fileIds[3]", "description": "file not found", "violatedRule": "OTHER", "ruleName": "RESOURCE_NOT_FOUND", "data": {"fileIds": ["x_1"]}},
            {"field": "fileIds[7]", "description": "file not found", "ruleName": "RESOURCE_NOT_FOUND"}]}}}"#;
        let e = WixError::from_answer(WixErrorKind::Rejected, 400, validation, None);
        assert!(e.is_unknown_file());
        assert_eq!(e.named.rules, vec!["RESOURCE_NOT_FOUND"]);
        assert_eq!(e.named.file_ids, vec!["x_1"]);
        assert_eq!(e.named.positions, vec![3, 7]);
        let app = br#"{"message": "nf", "details": {"applicationError": {"code": "RESOURCE_NOT_FOUND", "description": "d", "data": {"fileIds": ["a", "b", "a"]}}}}"#;
        let e = WixError::from_answer(WixErrorKind::Rejected, 400, app, None);
        assert!(e.is_unknown_file());
        assert_eq!(e.named.file_ids, vec!["a", "b"]);
        let other =
            br#"{"details": {"validationError": {"fieldViolations": [{"field": "fileIds", "ruleName": "MAX_SIZE"}]}}}"#;
        let e = WixError::from_answer(WixErrorKind::Rejected, 400, other, None);
        assert!(!e.is_unknown_file());
        assert!(e.named.positions.is_empty());
        assert!(WixError::from_answer(WixErrorKind::Rejected, 404, b"", None).is_unknown_file());
        // A 5xx is never about unknown files, whatever its body says.
        assert!(!WixError::from_answer(WixErrorKind::Unavailable, 503, app, None).is_unknown_file());
    }

    #[test]
    fn nothing_to_download_and_private_refusals() {
        let nothing = br#"{"message": "Nothing to download", "details": {"applicationError": {"code": "NOTHING_TO_DOWNLOAD", "description": "Nothing to download"}}}"#;
        assert!(WixError::from_answer(WixErrorKind::Rejected, 400, nothing, None).is_nothing_to_download());
        let bare = br#"{"message": "Nothing to download"}"#;
        let e = WixError::from_answer(WixErrorKind::Rejected, 400, bare, None);
        assert!(e.is_nothing_to_download(), "{}", e.message);
        let private = br#"{"message": "m", "details": {"applicationError": {"code": "PRIVATE_FILE", "description": "private files cannot be archived", "data": {"fileIds": ["p"]}}}}"#;
        let e = WixError::from_answer(WixErrorKind::Rejected, 403, private, None);
        assert!(e.is_private_refusal() && !e.is_bad_credentials());
        assert_eq!(e.named.file_ids, vec!["p"]);
    }

    #[test]
    fn only_bad_keys_and_tokens_ask_for_fresh_credentials() {
        let answer = |status: u16, body: &[u8]| WixError::from_answer(WixErrorKind::Rejected, status, body, None);
        assert!(answer(401, b"").is_bad_credentials());
        assert!(answer(401, br#"{"message": "whatever"}"#).is_bad_credentials());
        assert!(!answer(403, b"").is_bad_credentials());
        assert!(!answer(
            403,
            br#"{"details": {"applicationError": {"code": "PERMISSION_DENIED", "description": "the key lacks Manage Media Manager"}}}"#
        )
        .is_bad_credentials());
        assert!(!answer(
            403,
            br#"{"details": {"applicationError": {"code": "FORBIDDEN", "description": "invalid key"}}}"#
        )
        .is_bad_credentials());
        assert!(answer(
            403,
            br#"{"details": {"applicationError": {"code": "UNAUTHENTICATED", "description": "x"}}}"#
        )
        .is_bad_credentials());
        assert!(answer(403, br#"{"message": "The API key is invalid"}"#).is_bad_credentials());
        assert!(answer(403, br#"{"message": "access token expired"}"#).is_bad_credentials());
        assert!(!answer(400, br#"{"message": "access token expired"}"#).is_bad_credentials());
    }
}
