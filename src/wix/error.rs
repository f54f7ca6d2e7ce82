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
}

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
        if let Some(body) = &parsed {
            if let Some(app) = body.details.as_ref().and_then(|d| d.application_error.as_ref()) {
                app_code = app.code.clone().filter(|c| !c.is_empty());
                detail = app.description.clone().filter(|d| !d.is_empty());
            }
            if let Some(validation) = body.details.as_ref().and_then(|d| d.validation_error.as_ref()) {
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
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidationError {
    #[serde(default)]
    field_violations: Vec<FieldViolation>,
}

#[derive(Deserialize)]
struct FieldViolation {
    field: Option<String>,
    description: Option<String>,
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
}
