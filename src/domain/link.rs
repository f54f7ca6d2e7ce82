//! Download links are secrets: anyone holding one gets the files. The type keeps them out
//! of `Debug` output (and so out of logs); only serialization into an answer or a mail and
//! [`Link::expose`] show them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A download link (an archive's, or a private file's temporary one).
#[derive(Clone, PartialEq, Eq)]
pub struct Link(String);

impl Link {
    /// Wraps a link Wix returned.
    pub fn new(url: impl Into<String>) -> Self {
        Link(url.into())
    }

    /// The URL itself, for the few places that must use it (a download, a test).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Link(<redacted>)")
    }
}

impl Serialize for Link {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_json_is_the_url() {
        let link = Link::new("https://download.example/a.zip?token=SECRET");
        assert_eq!(format!("{link:?}"), "Link(<redacted>)");
        assert_eq!(
            serde_json::to_string(&link).unwrap(),
            r#""https://download.example/a.zip?token=SECRET""#
        );
        assert!(link.expose().contains("SECRET"));
    }
}
