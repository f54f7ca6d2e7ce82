//! What Wix answers: `WixError::from_answer` on arbitrary bodies and statuses, the typed
//! 2xx shapes (`FileDescriptor`, `FolderDescriptor`, and Search Files / List Folders / Get
//! Files pages mirroring the client's private `Resp` structs), and `Retry-After` values.
//!
//! Input: the whole input is the answer body; the status is derived from its bytes
//! (mostly 400..=599, sometimes any u16). The input's first line, as text, is also read as
//! a `Retry-After` header value.
//!
//! Checked, besides "never panics":
//! - the error message is at most 303 bytes (300 plus `…`), starts with
//!   `Wix answered <status>`, keeps kind, status and request ID, and an app code is never
//!   empty; `to_failure` keeps status, message and request ID; the IDs and positions an
//!   error names are at most `MAX_NAMED` each, and named IDs are never empty;
//! - `sizeInBytes` is the JSON number, or the string's trimmed u64, or none;
//! - a `Retry-After` (seconds of any length, HTTP dates of any year) is at most a week and
//!   can be added to an `Instant` without overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use wix_media_archiver::wix::{
    retry_after, FileDescriptor, FolderDescriptor, WixError, WixErrorKind, MAX_NAMED, RETRY_AFTER_CEILING,
};

const KINDS: [WixErrorKind; 5] = [
    WixErrorKind::Rejected,
    WixErrorKind::RateLimited,
    WixErrorKind::Unavailable,
    WixErrorKind::InvalidResponse,
    WixErrorKind::Deadline,
];

/// `nextCursor`, as the client reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct NextCursor {
    cursors: Option<Cursors>,
    has_next: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Cursors {
    next: Option<String>,
}

/// Search Files' answer: `{"files": [...], "nextCursor": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SearchPage {
    files: Option<Vec<FileDescriptor>>,
    next_cursor: Option<NextCursor>,
}

/// List Folders' answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct FolderPage {
    folders: Option<Vec<FolderDescriptor>>,
    next_cursor: Option<NextCursor>,
}

/// Get Files' answer.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct GetFiles {
    files: Option<Vec<FileDescriptor>>,
}

fn fnv(data: &[u8]) -> u32 {
    data.iter()
        .fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

fn expected_size(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fuzz_target!(|body: &[u8]| {
    let h = fnv(body);
    let status = if h & 0xf == 0 {
        (h >> 8) as u16
    } else {
        400 + ((h >> 8) % 200) as u16
    };
    let kind = KINDS[(h >> 4) as usize % KINDS.len()];
    let request_id = (h & 0x10 != 0).then(|| "req-fuzz".to_owned());

    let e = WixError::from_answer(kind, status, body, request_id.clone());
    assert!(e.message.len() <= 303, "{} bytes: {:?}", e.message.len(), e.message);
    let prefix = format!("Wix answered {status}");
    assert!(e.message.starts_with(&prefix), "{:?}", e.message);
    assert_eq!(e.kind, kind);
    assert_eq!(e.status, Some(status));
    assert_eq!(e.wix_request_id, request_id);
    assert_ne!(e.app_code.as_deref(), Some(""));
    let f = e.to_failure();
    assert_eq!(
        (f.status, &f.message, &f.wix_request_id),
        (e.status, &e.message, &e.wix_request_id)
    );
    assert_eq!(e.to_string(), e.message);

    assert!(e.named.file_ids.len() <= MAX_NAMED && e.named.positions.len() <= MAX_NAMED);
    assert!(e.named.file_ids.iter().all(|id| !id.is_empty()));

    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    if let Ok(value) = std::str::from_utf8(first_line) {
        if let Some(wait) = retry_after(Some(value), std::time::SystemTime::now()) {
            assert!(wait <= RETRY_AFTER_CEILING, "{value:?} gave {wait:?}");
            let _ = std::time::Instant::now() + wait;
        }
    }

    let file = serde_json::from_slice::<FileDescriptor>(body);
    if let Ok(file) = &file {
        // serde_json skips unknown fields without checking their strings' UTF-8, so a
        // descriptor may parse from a body that is not strictly JSON (harmless here: those
        // fields are dropped). The value checks need the strict reading.
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            assert!(serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok());
            return;
        };
        // serde's derive also reads a struct from an array, positionally (`["id"]` is a
        // descriptor with only an ID); the field checks below are for the object form.
        if !value.is_object() {
            assert!(value.is_array(), "{value}");
            return;
        }
        assert_eq!(value.get("id").and_then(Value::as_str), Some(file.id.as_str()));
        assert_eq!(
            file.size_in_bytes,
            expected_size(value.get("sizeInBytes")),
            "sizeInBytes {:?}",
            value.get("sizeInBytes")
        );
    }
    let _ = serde_json::from_slice::<FolderDescriptor>(body);
    let _ = serde_json::from_slice::<SearchPage>(body);
    let _ = serde_json::from_slice::<FolderPage>(body);
    let _ = serde_json::from_slice::<GetFiles>(body);
});
