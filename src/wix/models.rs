//! Wix's REST shapes, with only the fields this function reads.

use serde::{Deserialize, Serialize};

/// A file as Wix describes it (Get Files, Search Files, Import File). Serialized (the size
/// as a number) where a job keeps a listing between its steps.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDescriptor {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub private: bool,
    /// Kept as Wix sent it: unknown values (`UNKNOWN`, new types) are not an error.
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub operation_status: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// Wix sends the size as a JSON string.
    #[serde(default, deserialize_with = "size_from_string")]
    pub size_in_bytes: Option<u64>,
    /// An opaque change marker (its algorithm is not documented).
    #[serde(default, deserialize_with = "lenient_string")]
    pub hash: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub updated_date: Option<String>,
}

/// A folder: its name and where it sits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderDescriptor {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
}

/// One page of a listing and the cursor of the next one (none on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// `nextCursor`: `{"cursors": {"next": "…"}, "hasNext"?: bool, "total"?: n}`. The last page
/// says `"next": ""` and `"hasNext": false`; older answers just leave `next` out.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NextCursor {
    cursors: Option<Cursors>,
    has_next: Option<bool>,
}

#[derive(Deserialize)]
struct Cursors {
    next: Option<String>,
}

impl NextCursor {
    /// The cursor of the next page, if there is one.
    pub(crate) fn next(self) -> Option<String> {
        if self.has_next == Some(false) {
            return None;
        }
        self.cursors.and_then(|c| c.next).filter(|n| !n.is_empty())
    }
}

fn size_from_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Text(String),
        Number(u64),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Size>::deserialize(d)? {
        Some(Size::Text(s)) => s.trim().parse().ok(),
        Some(Size::Number(n)) => Some(n),
        _ => None,
    })
}

/// A string field that is dropped, not refused, when Wix sends another type.
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Text>::deserialize(d)? {
        Some(Text::Text(s)) if !s.is_empty() => Some(s),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_from_strings() {
        let f: FileDescriptor =
            serde_json::from_str(r#"{"id": "a", "sizeInBytes": "5918720", "private": true, "hash": "ab12"}"#).unwrap();
        assert_eq!(f.size_in_bytes, Some(5_918_720));
        assert!(f.private);
        assert_eq!(f.hash.as_deref(), Some("ab12"));
        let n: FileDescriptor = serde_json::from_str(r#"{"id": "a", "sizeInBytes": 12, "hash": 7}"#).unwrap();
        assert_eq!((n.size_in_bytes, n.hash), (Some(12), None));
        let odd: FileDescriptor =
            serde_json::from_str(r#"{"id": "a", "sizeInBytes": "big", "mediaType": "MODEL3D"}"#).unwrap();
        assert_eq!(odd.size_in_bytes, None);
        assert_eq!(odd.media_type.as_deref(), Some("MODEL3D"));
    }

    #[test]
    fn cursors_end_as_documented_and_as_before() {
        let next = |json: &str| serde_json::from_str::<NextCursor>(json).unwrap().next();
        assert_eq!(
            next(r#"{"cursors": {"next": "abc"}, "hasNext": true}"#),
            Some("abc".into())
        );
        assert_eq!(next(r#"{"cursors": {"next": ""}, "hasNext": false}"#), None);
        assert_eq!(next(r#"{"cursors": {"next": "abc"}, "hasNext": false}"#), None);
        assert_eq!(next(r#"{"cursors": {}, "total": 5}"#), None);
        assert_eq!(next(r#"{"cursors": {"next": ""}}"#), None);
        assert_eq!(next(r#"{}"#), None);
    }
}
