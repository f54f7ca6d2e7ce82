//! The outcome of one request or backup: which files got links, which failed and why,
//! and the no-loss invariant over them.

use rustc_hash::{FxHashMap, FxHashSet};

use serde::{Deserialize, Serialize};

use super::link::Link;

/// Contract error codes of a failed batch or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureCode {
    /// Wix answered 4xx other than 429.
    WixRejected,
    /// Wix kept answering 429 after the retries.
    WixRateLimited,
    /// 5xx, timeouts or connection failures after the retries.
    WixUnavailable,
    /// A 2xx answer without a usable link, or not JSON.
    WixInvalidResponse,
    /// Not attempted, or cut off, because the Lambda was about to time out.
    Deadline,
}

/// Why some files got no link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureError {
    pub code: FailureCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wix_request_id: Option<String>,
}

/// One archive link and the files packed in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    pub download_url: Link,
    pub file_count: usize,
    /// Empty only in an answer shortened to fit Lambda's limit (see [`super::fit`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_ids: Vec<String>,
    /// Folder paths the archive's files come from (backups only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folders: Vec<String>,
}

/// A private file's own temporary link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateLink {
    pub file_id: String,
    pub download_url: Link,
    pub expires_at: String,
}

/// Files that got no link, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub file_ids: Vec<String>,
    pub error: FailureError,
}

/// Everything done for one list of files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub archives: Vec<Archive>,
    pub private_files: Vec<PrivateLink>,
    pub failed: Vec<Failure>,
}

/// The HTTP status an outcome answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeStatus {
    /// Nothing failed (200).
    Complete,
    /// Some files got links and some failed (207).
    Partial,
    /// No file got a link (502).
    NoLinks,
}

impl OutcomeStatus {
    /// The HTTP status code.
    pub fn http_status(self) -> u16 {
        match self {
            OutcomeStatus::Complete => 200,
            OutcomeStatus::Partial => 207,
            OutcomeStatus::NoLinks => 502,
        }
    }
}

/// How a set of IDs broke the no-loss invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantError {
    #[error("file {0} is not accounted for")]
    Missing(String),
    #[error("file {0} is accounted for {1} times")]
    Doubled(String, usize),
    #[error("file {0} was never requested")]
    Unexpected(String),
}

impl Outcome {
    /// Files that got a link, archived or private.
    pub fn linked_files(&self) -> usize {
        self.archives.iter().map(|a| a.file_ids.len()).sum::<usize>() + self.private_files.len()
    }

    /// Files that failed.
    pub fn failed_files(&self) -> usize {
        self.failed.iter().map(|f| f.file_ids.len()).sum()
    }

    /// 200, 207 or 502 as the contract says.
    pub fn status(&self) -> OutcomeStatus {
        match (self.linked_files(), self.failed_files()) {
            (_, 0) => OutcomeStatus::Complete,
            (0, _) => OutcomeStatus::NoLinks,
            _ => OutcomeStatus::Partial,
        }
    }

    /// Records a batch that failed as a whole.
    pub fn fail(&mut self, file_ids: Vec<String>, error: FailureError) {
        if !file_ids.is_empty() {
            self.failed.push(Failure { file_ids, error });
        }
    }

    /// Every ID of `expected` stands exactly once across archives, private links and
    /// failures, and nothing else does.
    pub fn check_accounts_for<S: AsRef<str>>(&self, expected: &[S]) -> Result<(), InvariantError> {
        // The usual answer lists exactly the expected IDs in their order (archives in batch
        // order, nothing private or failed): then it is enough that they are distinct. Any
        // other case, and every error, takes the full count below.
        if self.listed().map(String::as_str).eq(expected.iter().map(AsRef::as_ref)) && all_distinct(expected) {
            return Ok(());
        }
        let mut seen: FxHashMap<&str, usize> = FxHashMap::with_capacity_and_hasher(expected.len(), Default::default());
        for id in self.listed() {
            *seen.entry(id.as_str()).or_default() += 1;
        }
        for id in expected {
            match seen.remove(id.as_ref()) {
                None => return Err(InvariantError::Missing(id.as_ref().to_owned())),
                Some(1) => {}
                Some(n) => return Err(InvariantError::Doubled(id.as_ref().to_owned(), n)),
            }
        }
        match seen.into_keys().next() {
            Some(extra) => Err(InvariantError::Unexpected(extra.to_owned())),
            None => Ok(()),
        }
    }

    /// Every ID the outcome names: archived, then private, then failed.
    fn listed(&self) -> impl Iterator<Item = &String> {
        self.archives
            .iter()
            .flat_map(|a| a.file_ids.iter())
            .chain(self.private_files.iter().map(|p| &p.file_id))
            .chain(self.failed.iter().flat_map(|f| f.file_ids.iter()))
    }
}

fn all_distinct<S: AsRef<str>>(ids: &[S]) -> bool {
    let mut seen: FxHashSet<&str> = FxHashSet::with_capacity_and_hasher(ids.len(), Default::default());
    ids.iter().all(|id| seen.insert(id.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(ids: &[&str]) -> Archive {
        Archive {
            download_url: Link::new("https://example.com/a.zip"),
            file_count: ids.len(),
            file_ids: ids.iter().map(|s| s.to_string()).collect(),
            folders: vec![],
        }
    }

    fn err() -> FailureError {
        FailureError {
            code: FailureCode::WixUnavailable,
            status: Some(503),
            message: "down".into(),
            wix_request_id: None,
        }
    }

    #[test]
    fn status_follows_links_and_failures() {
        let mut o = Outcome::default();
        assert_eq!(o.status(), OutcomeStatus::Complete);
        o.archives.push(archive(&["a"]));
        assert_eq!(o.status().http_status(), 200);
        o.fail(vec!["b".into()], err());
        assert_eq!(o.status().http_status(), 207);
        o.archives.clear();
        assert_eq!(o.status().http_status(), 502);
    }

    #[test]
    fn invariant() {
        let mut o = Outcome::default();
        o.archives.push(archive(&["a", "b"]));
        o.fail(vec!["c".into()], err());
        assert_eq!(o.check_accounts_for(&["a", "b", "c"]), Ok(()));
        assert_eq!(
            o.check_accounts_for(&["a", "b", "c", "d"]),
            Err(InvariantError::Missing("d".into()))
        );
        assert_eq!(
            o.check_accounts_for(&["a", "b"]),
            Err(InvariantError::Unexpected("c".into()))
        );
        o.archives.push(archive(&["a"]));
        assert_eq!(
            o.check_accounts_for(&["a", "b", "c"]),
            Err(InvariantError::Doubled("a".into(), 2))
        );
    }

    #[test]
    fn invariant_in_order_and_with_repeats() {
        let mut o = Outcome::default();
        o.archives.push(archive(&["a", "b"]));
        o.archives.push(archive(&["c"]));
        assert_eq!(o.check_accounts_for(&["a", "b", "c"]), Ok(()));
        assert_eq!(
            o.check_accounts_for(&["a", "b"]),
            Err(InvariantError::Unexpected("c".into()))
        );
        assert_eq!(o.check_accounts_for(&["c", "b", "a"]), Ok(()));
        // An expected list that repeats an ID can never be accounted for, in order or not.
        let mut twice = Outcome::default();
        twice.archives.push(archive(&["a", "a"]));
        assert_eq!(
            twice.check_accounts_for(&["a", "a"]),
            Err(InvariantError::Doubled("a".into(), 2))
        );
        assert_eq!(
            Outcome::default().check_accounts_for(&["a"]),
            Err(InvariantError::Missing("a".into()))
        );
        assert_eq!(Outcome::default().check_accounts_for::<&str>(&[]), Ok(()));
    }

    #[test]
    fn json_shape() {
        let mut o = Outcome::default();
        o.fail(
            vec!["x".into()],
            FailureError {
                code: FailureCode::WixRateLimited,
                status: Some(429),
                message: "slow down".into(),
                wix_request_id: Some("r-1".into()),
            },
        );
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"archives": [], "privateFiles": [], "failed": [
                {"fileIds": ["x"], "error": {"code": "WIX_RATE_LIMITED", "status": 429, "message": "slow down", "wixRequestId": "r-1"}}
            ]})
        );
    }
}
