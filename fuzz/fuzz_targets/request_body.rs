//! `request::parse` on arbitrary bytes with small limits.
//!
//! Input: the whole input is the body. The limits are derived from the body's bytes
//! (max_files 1..=8, e-mail on or off), so every seed is a plain request body and every
//! mutation also varies the limits.
//!
//! Checked, besides "never panics":
//! - the body is refused as `InvalidJson` exactly when serde_json cannot read it as JSON,
//!   except for the known finding below (bad UTF-8 or escapes inside skipped values);
//! - on `Ok`: every ID is 1..=1000 characters of `[A-Za-z0-9._~-]`, IDs are unique, their
//!   count is at most `max_files`, and `ids` / `duplicates_removed` are what an
//!   independent first-seen dedupe of the body's `fileIds` (read with serde_json::Value)
//!   gives, so `duplicates_removed + ids.len()` is the number of entries;
//! - on `Ok`: the addresses are at most 10, unique ignoring ASCII case, and e-mail is
//!   enabled whenever any is kept;
//! - `TooManyFiles { count, max }` has `count > max == max_files`, `EmailDisabled` only
//!   when e-mail is off, and a refusal lists at most 101 field errors.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wix_media_archiver::domain::ids;
use wix_media_archiver::domain::request::{self, RequestError, RequestLimits};

fn limits_for(data: &[u8]) -> RequestLimits {
    let h = data
        .iter()
        .fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    RequestLimits {
        max_files: 1 + (h % 8) as usize,
        max_files_async: 1 + (h % 16) as usize,
        email_enabled: h & 0x100 != 0,
        prefer_async: h & 0x200 != 0,
    }
}

fn is_id(id: &str) -> bool {
    (1..=ids::MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fuzz_target!(|data: &[u8]| {
    let limits = limits_for(data);
    let result = request::parse(data, limits);
    let value = serde_json::from_slice::<Value>(data);

    let refused_as_not_json = matches!(result, Err(RequestError::InvalidJson(_)));
    if refused_as_not_json {
        assert!(value.is_err(), "InvalidJson for JSON: {result:?}");
    } else if value.is_err() {
        // Known finding (see RELIABILITY.md, "Fuzzing"): serde_json skips ignored values
        // (unknown fields, a non-object body, wrong-shaped entries) without checking their
        // strings' UTF-8 or `\u` escapes, so `["\xff"]` was refused as INVALID_REQUEST
        // instead of INVALID_JSON. `parse` now checks UTF-8 first; a lone surrogate escape
        // (`{"x": "\ud800"}`) in a skipped value is still read as JSON. Anything else that
        // serde_json cannot read must be INVALID_JSON.
        assert!(
            std::str::from_utf8(data).is_ok(),
            "a body that is not UTF-8 was refused as {result:?}"
        );
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
            "not JSON, yet refused as {result:?}"
        );
        assert!(result.is_err(), "a body that is not JSON was accepted: {result:?}");
    }

    match result {
        Ok(req) => {
            let value = value.expect("accepted bodies are JSON");
            let entries = value
                .get("fileIds")
                .and_then(Value::as_array)
                .expect("an accepted body has a fileIds array");
            assert!(!entries.is_empty());

            // Independent dedupe: normalize each entry, keep the first of each ID.
            let mut seen = HashSet::new();
            let mut expect_ids = Vec::new();
            for entry in entries {
                let s = entry.as_str().expect("an accepted body has only string fileIds");
                let id = ids::normalize(s).expect("an accepted body has only valid fileIds");
                if seen.insert(id.to_owned()) {
                    expect_ids.push(id.to_owned());
                }
            }

            assert_eq!(req.ids.ids, expect_ids);
            assert_eq!(req.ids.duplicates_removed + req.ids.ids.len(), entries.len());
            assert!(!req.ids.ids.is_empty());
            assert!(req.ids.ids.len() <= limits.max_files);
            let unique: HashSet<&str> = req.ids.ids.iter().map(|id| id.as_ref()).collect();
            assert_eq!(unique.len(), req.ids.ids.len(), "IDs are unique");
            for id in &req.ids.ids {
                assert!(is_id(id), "bad id {id:?}");
            }

            assert!(req.email.len() <= request::MAX_EMAIL_RECIPIENTS);
            assert!(req.email.is_empty() || limits.email_enabled);
            for (i, a) in req.email.iter().enumerate() {
                assert_eq!(a.trim(), a);
                assert!(!a.is_empty());
                for b in &req.email[..i] {
                    assert!(!a.eq_ignore_ascii_case(b), "duplicate address {a:?}");
                }
            }
            let expect_private = value.get("resolvePrivate").and_then(Value::as_bool).unwrap_or(false);
            assert_eq!(req.resolve_private, expect_private);
        }
        Err(RequestError::TooManyFiles { count, max }) => {
            assert_eq!(max, limits.max_files);
            assert!(count > max);
            // `count` is the number of unique normalized IDs.
            let value = value.expect("a counted body is JSON");
            let entries = value.get("fileIds").and_then(Value::as_array).expect("counted fileIds");
            let unique: HashSet<&str> = entries
                .iter()
                .map(|e| ids::normalize(e.as_str().expect("string fileIds")).expect("valid fileIds"))
                .collect();
            assert_eq!(count, unique.len());
        }
        Err(RequestError::EmailDisabled) => assert!(!limits.email_enabled),
        Err(RequestError::Invalid(list)) => {
            assert!(!list.is_empty());
            assert!(list.len() <= 101, "{} field errors", list.len());
        }
        Err(RequestError::InvalidJson(_)) => {}
    }
});
