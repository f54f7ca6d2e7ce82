//! Wix file IDs: normalizing media URLs to bare IDs and removing duplicates.

use std::borrow::Cow;

use rustc_hash::FxHashSet;

/// Longest file ID Wix accepts.
pub const MAX_ID_LEN: usize = 1000;

/// Media URL schemes Wix builds (`wix:image://v1/…`, also without the `wix:` prefix).
const MEDIA_TYPES: [&str; 5] = ["image", "video", "audio", "document", "vector"];

/// Why one entry is not a usable file ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("has a character outside [A-Za-z0-9._~-]")]
    BadCharacter,
    #[error("is a Wix media URL without a file ID")]
    EmptyUrl,
}

/// Normalizes one entry to the bare file ID, as Wix's own SDK extracts it: drop
/// `#…` and `?…`, the `wix:` prefix, `<type>://v1/`, a leading `ugd/`, then take the first
/// `/`-separated segment. Anything that is not a media URL must already be a bare ID.
pub fn normalize(raw: &str) -> Result<&str, IdError> {
    // Almost every entry is already a bare ID: nothing to trim (no white space in the
    // charset) and no media URL (no `:` in it). One pass over its bytes settles it.
    if (1..=MAX_ID_LEN).contains(&raw.len()) && all_id_bytes(raw.as_bytes()) {
        return Ok(raw);
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdError::Empty);
    }
    let id = match media_url_rest(trimmed) {
        Some(rest) => {
            let rest = rest.split(['#', '?']).next().unwrap_or_default();
            let rest = rest.strip_prefix("ugd/").unwrap_or(rest);
            let id = rest.split('/').next().unwrap_or_default();
            if id.is_empty() {
                return Err(IdError::EmptyUrl);
            }
            id
        }
        None => trimmed,
    };
    check_id(id)?;
    Ok(id)
}

/// The part after `<type>://v1/` when `s` is a Wix media URL. (No media type contains a
/// `:`, so `s` starting with `<type>://` is the same as `<type>` being everything before
/// the first `://`; testing the five prefixes avoids searching a bare ID for `://`.)
fn media_url_rest(s: &str) -> Option<&str> {
    let s = s.strip_prefix("wix:").unwrap_or(s);
    MEDIA_TYPES
        .iter()
        .find_map(|scheme| s.strip_prefix(scheme)?.strip_prefix("://"))?
        .strip_prefix("v1/")
}

fn check_id(id: &str) -> Result<(), IdError> {
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !all_id_bytes(id.as_bytes()) {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

/// Every byte is one of `[A-Za-z0-9._~-]`. Written without an early exit and with
/// comparisons only, so the compiler checks many bytes per instruction.
fn all_id_bytes(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & (b.is_ascii_alphanumeric() | (b == b'.') | (b == b'_') | (b == b'~') | (b == b'-'))
    })
}

/// Unique IDs in first-seen order, and how many entries were dropped as duplicates. The IDs
/// borrow from the request body where they could be read from it as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UniqueIds<'a> {
    pub ids: Vec<Cow<'a, str>>,
    pub duplicates_removed: usize,
}

/// Removes duplicates; the first occurrence keeps its place.
pub fn dedupe<'a, I, S>(ids: I) -> UniqueIds<'a>
where
    I: IntoIterator<Item = S>,
    S: Into<Cow<'a, str>>,
{
    let mut ids: Vec<Cow<'a, str>> = ids.into_iter().map(Into::into).collect();
    // One hash per entry, no copy of any: which entries are first seen, then keep those.
    // (FxHash: the entries come from a caller whose signature was checked, and the set
    // lives for this one call, so flooding it hurts nobody but that caller.)
    let first_seen: Vec<bool> = {
        let mut seen: FxHashSet<&str> = FxHashSet::with_capacity_and_hasher(ids.len(), Default::default());
        ids.iter().map(|id| seen.insert(id.as_ref())).collect()
    };
    let before = ids.len();
    let mut first = first_seen.into_iter();
    ids.retain(|_| first.next().unwrap_or(false));
    UniqueIds {
        duplicates_removed: before - ids.len(),
        ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMG: &str = "0abec0_b291a9349a0b4da59067f76287e386fb~mv2.jpg";

    #[test]
    fn bare_ids_pass_through_trimmed() {
        assert_eq!(normalize(IMG), Ok(IMG));
        assert_eq!(normalize(&format!("  {IMG}\n")), Ok(IMG));
        assert_eq!(
            normalize("4acbb8_5646ee01a5524905af4f2e7c567cbbce"),
            Ok("4acbb8_5646ee01a5524905af4f2e7c567cbbce")
        );
    }

    #[test]
    fn every_media_url_form() {
        let cases = [
            format!("wix:image://v1/{IMG}/leon.jpg#originWidth=3024&originHeight=4032"),
            format!("image://v1/{IMG}/leon.jpg#originWidth=3024"),
            format!("wix:image://v1/{IMG}"),
            format!("wix:image://v1/{IMG}?token=abc"),
            format!("wix:image://v1/{IMG}/name.jpg?x=1#y=2"),
            format!("wix:video://v1/{IMG}/clip.mp4#posterUri=a.jpg&posterWidth=1"),
            format!("wix:video://v1/{IMG}#posterUri=a.jpg"),
            format!("wix:audio://v1/{IMG}/song.mp3#duration=120"),
            format!("wix:document://v1/{IMG}/report.pdf"),
            format!("wix:document://v1/ugd/{IMG}/report.pdf"),
            format!("document://v1/ugd/{IMG}/report.pdf"),
            format!("wix:vector://v1/{IMG}/logo.svg"),
            format!("vector://v1/{IMG}/logo.svg"),
            format!("  wix:image://v1/{IMG}/my%20file.jpg  "),
        ];
        for case in &cases {
            assert_eq!(normalize(case), Ok(IMG), "{case}");
        }
    }

    #[test]
    fn refused_entries() {
        assert_eq!(normalize(""), Err(IdError::Empty));
        assert_eq!(normalize("   "), Err(IdError::Empty));
        assert_eq!(normalize("a/b"), Err(IdError::BadCharacter));
        assert_eq!(normalize("a#b"), Err(IdError::BadCharacter));
        assert_eq!(normalize("a?b"), Err(IdError::BadCharacter));
        assert_eq!(normalize("a b"), Err(IdError::BadCharacter));
        assert_eq!(normalize("é"), Err(IdError::BadCharacter));
        assert_eq!(
            normalize("https://static.wixstatic.com/media/x.jpg"),
            Err(IdError::BadCharacter)
        );
        assert_eq!(normalize("wix:model://v1/abc/x"), Err(IdError::BadCharacter));
        assert_eq!(normalize("wix:image://v1/"), Err(IdError::EmptyUrl));
        assert_eq!(normalize("wix:image://v1/#x"), Err(IdError::EmptyUrl));
        assert_eq!(normalize("wix:image://v2/abc/x"), Err(IdError::BadCharacter));
        assert_eq!(normalize("wix:image://v1/a%20b/x"), Err(IdError::BadCharacter));
    }

    #[test]
    fn length_limits() {
        let max = "a".repeat(MAX_ID_LEN);
        assert_eq!(normalize(&max), Ok(max.as_str()));
        assert_eq!(normalize(&"a".repeat(MAX_ID_LEN + 1)), Err(IdError::TooLong));
        let url = format!("wix:image://v1/{max}/x.jpg");
        assert_eq!(normalize(&url), Ok(max.as_str()));
        assert_eq!(normalize("a"), Ok("a"));
    }

    #[test]
    fn dedupe_keeps_first_place_and_counts() {
        let unique = dedupe(["b", "a", "b", "c", "b", "a"]);
        assert_eq!(unique.ids, vec!["b", "a", "c"]);
        assert_eq!(unique.duplicates_removed, 3);
        let none = dedupe(Vec::<String>::new());
        assert_eq!(none, UniqueIds::default());
    }
}
