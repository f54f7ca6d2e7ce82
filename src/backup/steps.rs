//! The inputs and outputs of a stored backup's steps, as plain data: what the plan step
//! hands each batch step, what a batch step returns, and what the finish step needs. The
//! same values travel between the steps of one invocation and, serialized, between the
//! states of a job.

use serde::{Deserialize, Serialize};

use super::manifest::{LineError, LineStatus, ManifestLine};
use crate::domain::outcome::FailureError;

/// A file as the plan knows it: everything its manifest line says before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMeta {
    pub file_id: String,
    pub display_name: String,
    pub folder_path: String,
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_in_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_date: Option<String>,
    #[serde(default)]
    pub private: bool,
}

impl FileMeta {
    /// The file's manifest line with `status`, nothing stored.
    pub fn line(&self, status: LineStatus) -> ManifestLine {
        ManifestLine {
            file_id: self.file_id.clone(),
            display_name: self.display_name.clone(),
            folder_path: self.folder_path.clone(),
            media_type: self.media_type.clone(),
            size_in_bytes: self.size_in_bytes,
            hash: self.hash.clone(),
            updated_date: self.updated_date.clone(),
            private: self.private,
            status,
            backup_id: None,
            object: None,
            entry: None,
            crc32: None,
            object_checksum: None,
            reason: None,
            error: None,
            previous: None,
        }
    }

    /// The file's `FAILED` line.
    pub fn failed(&self, code: &str, message: impl Into<String>) -> ManifestLine {
        let mut line = self.line(LineStatus::Failed);
        line.error = Some(LineError {
            code: code.to_owned(),
            message: message.into(),
        });
        line
    }

    /// The file's `FAILED` line for a Wix or deadline failure.
    pub fn failed_with(&self, error: &FailureError) -> ManifestLine {
        let code = serde_json::to_value(error.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "WIX_UNAVAILABLE".to_owned());
        self.failed(&code, error.message.clone())
    }
}

/// What a batch stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchKind {
    /// One Wix archive of up to 1000 public files.
    Archive,
    /// Private files, each into its own object.
    Private,
}

/// One batch of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItem {
    pub backup_id: String,
    /// 1-based; archive objects are named after it (`archives/00001.zip`).
    pub number: u32,
    pub kind: BatchKind,
    pub files: Vec<FileMeta>,
}

/// What one batch step did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOutcome {
    pub number: u32,
    /// One line per file of the batch.
    pub lines: Vec<ManifestLine>,
    pub stored_bytes: u64,
    /// Objects written.
    pub objects: Vec<StoredObject>,
}

/// An object a batch wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    /// The files it holds.
    pub file_ids: Vec<String>,
}

/// The error codes a manifest line may carry that say the file itself cannot be backed up
/// as things stand (Wix refuses it, or leaves it out of its archive) rather than that this
/// run was unlucky (an outage, the deadline): a backup whose failures are all of these
/// kinds is complete.
pub const PERMANENT_CODES: [&str; 2] = ["WIX_REJECTED", "ARCHIVE_INCOMPLETE"];
