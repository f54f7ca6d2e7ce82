//! Local runs without an AWS or Wix account: signing fixtures and invoking the handler
//! in-process. Only the `archiver-local` CLI and the tests use this; the Lambda binary
//! does not.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::app::App;
use crate::domain::ids;
use crate::entry::lambda::{handle_event, EventError};
use crate::signature;

/// The value fixtures carry in `X-Archive-Signature` where a real signature goes.
pub const PLACEHOLDER: &str = "SIGNED_AT_INVOKE_TIME";
/// The caller key local runs sign with when the bundled emulator stands in for Wix.
pub const LOCAL_CALLER_KEY: &str = "local-caller-key";

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The raw body bytes of an HTTP event, base64-decoded when the event says so.
pub fn event_body(event: &Value) -> Option<Vec<u8>> {
    let body = event.get("body")?.as_str()?;
    if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    } else {
        Some(body.as_bytes().to_vec())
    }
}

/// Replaces every placeholder signature header of an HTTP event (in `headers` and
/// `multiValueHeaders`) with a real signature of its body. Returns whether one was found.
pub fn sign_event(event: &mut Value, key: &str, now: u64) -> bool {
    let body = event_body(event).unwrap_or_default();
    let signed = signature::sign(key, now, &body);
    let mut found = false;
    for field in ["headers", "multiValueHeaders"] {
        let Some(headers) = event.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for (name, value) in headers.iter_mut() {
            if !name.eq_ignore_ascii_case(signature::HEADER) {
                continue;
            }
            match value {
                Value::String(s) if s == PLACEHOLDER => {
                    *s = signed.clone();
                    found = true;
                }
                Value::Array(items) => {
                    for item in items.iter_mut() {
                        if item.as_str() == Some(PLACEHOLDER) {
                            *item = Value::String(signed.clone());
                            found = true;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// The normalized file IDs an HTTP event's body asks for (invalid entries left out).
pub fn event_file_ids(event: &Value) -> Vec<String> {
    let Some(body) = event_body(event) else {
        return Vec::new();
    };
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return Vec::new();
    };
    let Some(list) = parsed.get("fileIds").and_then(Value::as_array) else {
        return Vec::new();
    };
    let normalized = list
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|s| ids::normalize(s).ok());
    ids::dedupe(normalized).ids.into_iter().map(Cow::into_owned).collect()
}

/// Runs one event through the handler, as the Lambda runtime would, with `timeout` as
/// the invocation's time limit (none: no deadline).
pub async fn invoke(app: &App, event: &Value, timeout: Option<Duration>) -> Result<Value, EventError> {
    let raw = RawValue::from_string(event.to_string()).expect("a JSON value serializes to valid JSON");
    let mut context = Context::default();
    context.request_id = format!("local-{:016x}", fastrand::u64(..));
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:wix-media-archiver".to_owned();
    context.deadline = timeout.map_or(0, |t| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64
            + t.as_millis() as u64
    });
    handle_event(app, LambdaEvent::new(raw, context)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_placeholders_in_both_header_maps() {
        let mut event = serde_json::json!({
            "headers": {"X-Archive-Signature": PLACEHOLDER},
            "multiValueHeaders": {"X-Archive-Signature": [PLACEHOLDER]},
            "body": "eyJhIjoxfQ==", "isBase64Encoded": true
        });
        assert!(sign_event(&mut event, "k", 100));
        let expected = signature::sign("k", 100, br#"{"a":1}"#);
        assert_eq!(event["headers"]["X-Archive-Signature"], expected);
        assert_eq!(event["multiValueHeaders"]["X-Archive-Signature"][0], expected);
        let mut unsigned = serde_json::json!({"headers": {"x-archive-signature": "t=1,v1=00"}, "body": "{}"});
        assert!(!sign_event(&mut unsigned, "k", 100));
        assert_eq!(unsigned["headers"]["x-archive-signature"], "t=1,v1=00");
    }

    #[test]
    fn file_ids_of_an_event() {
        let event = serde_json::json!({"body": r#"{"fileIds": ["a1", "wix:image://v1/a1/x.jpg", "b/2", 3, "c3"]}"#});
        assert_eq!(event_file_ids(&event), vec!["a1", "c3"]);
    }
}
