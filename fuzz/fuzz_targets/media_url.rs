//! `ids::normalize` on arbitrary strings (the input, read as UTF-8 with bad bytes replaced).
//!
//! Checked, besides "never panics":
//! - `Ok(id)` is 1..=1000 characters of `[A-Za-z0-9._~-]`, a slice of the input, and
//!   normalizing it again gives it back unchanged (idempotent);
//! - the result (and the error kind) equals a separate model written from the function's
//!   documented rule (trim; drop `#…`/`?…`, `wix:`, `<type>://v1/`, a leading `ugd/`; take
//!   the first `/` segment; otherwise the whole entry must be a bare ID);
//! - for a valid ID made from the input's characters, every documented media URL form
//!   (`wix:image://v1/<id>/x#y` and the others) normalizes to `<id>`; the one exception,
//!   the ID `ugd`, is a known finding and left out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wix_media_archiver::domain::ids::{self, IdError, MAX_ID_LEN};

const TYPES: [&str; 5] = ["image", "video", "audio", "document", "vector"];

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-')
}

fn is_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(is_id_byte)
}

/// The documented rule, written separately from the implementation.
fn model(raw: &str) -> Result<&str, IdError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(IdError::Empty);
    }
    let unprefixed = t.strip_prefix("wix:").unwrap_or(t);
    let rest = TYPES
        .iter()
        .find_map(|ty| unprefixed.strip_prefix(ty).and_then(|r| r.strip_prefix("://v1/")));
    let id = match rest {
        None => t,
        Some(rest) => {
            let end = rest.find(['#', '?']).unwrap_or(rest.len());
            let rest = &rest[..end];
            let rest = rest.strip_prefix("ugd/").unwrap_or(rest);
            let id = &rest[..rest.find('/').unwrap_or(rest.len())];
            if id.is_empty() {
                return Err(IdError::EmptyUrl);
            }
            id
        }
    };
    if id.len() > MAX_ID_LEN {
        Err(IdError::TooLong)
    } else if !id.bytes().all(is_id_byte) {
        Err(IdError::BadCharacter)
    } else {
        Ok(id)
    }
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let raw: &str = &input;

    let got = ids::normalize(raw);
    assert_eq!(got, model(raw), "normalize and the documented rule disagree on {raw:?}");
    if let Ok(id) = got {
        assert!(is_id(id), "{id:?} breaks the ID rule");
        let start = id.as_ptr() as usize - raw.as_ptr() as usize;
        assert!(start + id.len() <= raw.len(), "the ID is a slice of the input");
        assert_eq!(ids::normalize(id), Ok(id), "normalize is not idempotent on {id:?}");
    }

    // A valid ID made from the input's ID characters, wrapped in every media URL form.
    let id: String = data
        .iter()
        .copied()
        .filter(|&b| is_id_byte(b))
        .take(MAX_ID_LEN)
        .map(char::from)
        .collect();
    // Known finding (see RELIABILITY.md, "Fuzzing"): the ID `ugd` is valid, but
    // `wix:image://v1/ugd/x#y` is read as the legacy `ugd/` form and gives `x`. The rule
    // is Wix's own, so that one ID is left out here (the model above still covers it).
    if id.is_empty() || id == "ugd" {
        return;
    }
    let forms = [
        format!("wix:image://v1/{id}/x#y"),
        format!("wix:image://v1/{id}"),
        format!("image://v1/{id}/x.jpg?token=1#originWidth=3"),
        format!("wix:video://v1/{id}/clip.mp4#posterUri=a.jpg"),
        format!("wix:audio://v1/{id}#duration=1"),
        format!("wix:document://v1/ugd/{id}/report.pdf"),
        format!("document://v1/{id}/report.pdf"),
        format!("wix:vector://v1/{id}/logo.svg"),
        format!(" \t{id}\n"),
    ];
    for form in &forms {
        assert_eq!(ids::normalize(form), Ok(id.as_str()), "{form:?} does not give {id:?}");
    }
});
