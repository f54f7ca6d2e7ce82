//! Answers in Wix's shapes: JSON bodies, `applicationError` and `validationError` errors.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;
pub(crate) type Resp = Response<Body>;
/// An error answer, boxed because a whole response makes `Result` needlessly large.
pub(crate) type Failure = Box<Resp>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

pub(crate) fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub(crate) fn json_resp(status: u16, value: &Value) -> Resp {
    Response::builder()
        .status(status_code(status))
        .header(CONTENT_TYPE, "application/json")
        .body(full(value.to_string()))
        .unwrap_or_else(|_| empty(500))
}

pub(crate) fn empty(status: u16) -> Resp {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = status_code(status);
    resp
}

pub(crate) fn app_error(status: u16, code: &str, description: &str, data: Option<Value>) -> Failure {
    app_error_with_message(status, code, description, description, data)
}

pub(crate) fn app_error_with_message(
    status: u16,
    code: &str,
    message: &str,
    description: &str,
    data: Option<Value>,
) -> Failure {
    Box::new(json_resp(
        status,
        &json!({
            "message": message,
            "details": {"applicationError": {
                "code": code,
                "description": description,
                "data": data.unwrap_or_else(|| json!({})),
            }},
        }),
    ))
}

/// One entry of `fieldViolations`.
pub(crate) struct Violation {
    pub(crate) field: String,
    pub(crate) description: String,
    /// Wix's `violatedRule`: a standard rule (`MAX_SIZE`, `REQUIRED_FIELD`, …) or `OTHER`.
    pub(crate) rule: &'static str,
    /// `ruleName`, for `OTHER` rules (`RESOURCE_NOT_FOUND`, `UNSUPPORTED_SORT_VALUE`, …).
    pub(crate) rule_name: Option<&'static str>,
    pub(crate) data: Option<Value>,
}

impl Violation {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "field": self.field,
            "description": self.description,
            "violatedRule": self.rule,
            "ruleName": self.rule_name.unwrap_or(self.rule),
        });
        if let Some(data) = &self.data {
            v["data"] = data.clone();
        }
        v
    }
}

/// 400 with `validationError.fieldViolations`; the message lists them as Wix's SDK does.
pub(crate) fn violations(list: &[Violation]) -> Failure {
    let message = list
        .iter()
        .map(|v| format!("\"{}\" {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join(", ");
    Box::new(json_resp(
        400,
        &json!({
            "message": format!("INVALID_ARGUMENT: {message}"),
            "details": {"validationError": {
                "fieldViolations": list.iter().map(Violation::to_json).collect::<Vec<_>>(),
            }},
        }),
    ))
}

/// A standard-rule violation of one field.
pub(crate) fn validation_error(field: &str, description: &str, rule: &'static str) -> Failure {
    violations(&[Violation {
        field: field.to_string(),
        description: description.to_string(),
        rule,
        rule_name: None,
        data: None,
    }])
}

/// A named-rule violation (`violatedRule: OTHER`) with its data.
pub(crate) fn rule_violation(field: &str, description: &str, rule_name: &'static str, data: Option<Value>) -> Failure {
    violations(&[Violation {
        field: field.to_string(),
        description: description.to_string(),
        rule: "OTHER",
        rule_name: Some(rule_name),
        data,
    }])
}

pub(crate) fn too_many(retry_after: Option<u64>) -> Resp {
    let mut resp = json_resp(
        429,
        &json!({
            "message": "Too many requests",
            "details": {"applicationError": {"code": "TOO_MANY_REQUESTS", "description": "Too many requests"}},
        }),
    );
    if let Some(secs) = retry_after {
        resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
    }
    resp
}

pub(crate) fn not_found_route(path: &str) -> Resp {
    *app_error(404, "NOT_FOUND", &format!("no route for {path}"), None)
}

pub(crate) fn not_found(kind: &str, id: &str) -> Failure {
    app_error(
        404,
        "RESOURCE_NOT_FOUND",
        &format!("{kind} {id} not found"),
        Some(json!({ "id": id })),
    )
}

pub(crate) fn method_not_allowed(allowed: &Method) -> Resp {
    let mut resp = *app_error(405, "METHOD_NOT_ALLOWED", "method not allowed", None);
    if let Ok(value) = HeaderValue::from_str(allowed.as_str()) {
        resp.headers_mut().insert("allow", value);
    }
    resp
}

pub(crate) fn status_code_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        428 => "FAILED_PRECONDITION",
        429 => "TOO_MANY_REQUESTS",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}
