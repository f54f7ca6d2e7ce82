//! `verify`: a stored backup checked against its manifest without touching Wix — every
//! `STORED` line's object exists, its S3 checksum is the one recorded, and (for archives)
//! its zip entry exists with the recorded CRC-32. The restore drill a careful owner runs.

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use super::batch::read_directory;
use super::finish::{latest_key, Latest};
use super::manifest::{self, LineStatus, ManifestLine};
use crate::storage::Store;

/// Problems listed in an answer; the count says how many there are.
pub const MAX_PROBLEMS: usize = 100;
/// Objects checked at once.
const AT_ONCE: usize = 8;

/// What is wrong with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProblemKind {
    /// The object is not there.
    Missing,
    /// Its S3 checksum is not the one recorded.
    Checksum,
    /// The zip has no entry of the recorded name.
    EntryMissing,
    /// The entry's CRC-32 is not the one recorded.
    Crc,
}

/// One problem, with the files it affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub object: String,
    pub file_ids: Vec<String>,
    pub problem: ProblemKind,
}

/// The answer of `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyAnswer {
    pub backup_id: String,
    pub checked_files: usize,
    pub ok: bool,
    pub problems: Vec<Problem>,
    pub problem_count: usize,
}

/// Why a backup could not be verified at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no backup {0} in the bucket")]
    NotFound(String),
    #[error("{0}")]
    Unreadable(String),
}

/// The backup `reference` names (`latest`, or a backup ID) and its manifest's lines.
pub async fn load_manifest(store: &Store, reference: &str) -> Result<(String, Vec<ManifestLine>), VerifyError> {
    let (backup_id, key) = if reference == "latest" {
        let bytes = store
            .get(&latest_key(store))
            .await
            .map_err(|e| VerifyError::Unreadable(e.to_string()))?
            .ok_or_else(|| VerifyError::NotFound("latest (no complete backup yet)".to_owned()))?;
        let latest: Latest = serde_json::from_slice(&bytes)
            .map_err(|e| VerifyError::Unreadable(format!("latest.json is not readable: {e}")))?;
        (latest.backup_id, latest.manifest)
    } else {
        if !is_backup_id(reference) {
            return Err(VerifyError::NotFound(reference.to_owned()));
        }
        (
            reference.to_owned(),
            store.key(&format!("backups/{reference}/manifest.jsonl.gz")),
        )
    };
    let bytes = store
        .get(&key)
        .await
        .map_err(|e| VerifyError::Unreadable(e.to_string()))?
        .ok_or_else(|| VerifyError::NotFound(backup_id.clone()))?;
    let lines = manifest::decode(&bytes).map_err(|e| VerifyError::Unreadable(e.to_string()))?;
    Ok((backup_id, lines))
}

/// Whether `s` has the shape of a backup ID (so it can be put into a key).
pub fn is_backup_id(s: &str) -> bool {
    s.len() <= 40
        && !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && super::retention::backup_time(s).is_some()
}

/// Verifies the backup `reference` names.
pub async fn verify(store: &Store, reference: &str) -> Result<VerifyAnswer, VerifyError> {
    let (backup_id, lines) = load_manifest(store, reference).await?;
    let mut by_object: BTreeMap<String, Vec<&ManifestLine>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.status == LineStatus::Stored) {
        if let Some(object) = &l.object {
            by_object.entry(object.clone()).or_default().push(l);
        }
    }
    let checked_files = by_object.values().map(Vec::len).sum();
    crate::progress::planned(by_object.len(), checked_files);
    let problems: Vec<Problem> = stream::iter(by_object.iter())
        .map(|(object, lines)| async move {
            let problems = check_object(store, object, lines).await;
            crate::progress::batch_done(lines.len(), 0);
            problems
        })
        .buffered(AT_ONCE)
        .collect::<Vec<Vec<Problem>>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    let problem_count = problems.len();
    Ok(VerifyAnswer {
        backup_id,
        checked_files,
        ok: problems.is_empty(),
        problems: problems.into_iter().take(MAX_PROBLEMS).collect(),
        problem_count,
    })
}

async fn check_object(store: &Store, object: &str, lines: &[&ManifestLine]) -> Vec<Problem> {
    let problem = |kind: ProblemKind, files: &[&ManifestLine]| Problem {
        object: object.to_owned(),
        file_ids: files.iter().map(|l| l.file_id.clone()).collect(),
        problem: kind,
    };
    let info = match store.head(object).await {
        Ok(Some(info)) => info,
        Ok(None) => return vec![problem(ProblemKind::Missing, lines)],
        Err(e) => {
            tracing::warn!(error = %e, "an object could not be checked");
            return vec![problem(ProblemKind::Missing, lines)];
        }
    };
    let recorded = lines.iter().find_map(|l| l.object_checksum.as_deref());
    let actual = info.crc32.as_deref().map(|c| c.split('-').next().unwrap_or(c));
    if recorded.is_some() && actual != recorded {
        return vec![problem(ProblemKind::Checksum, lines)];
    }
    if lines.iter().all(|l| l.entry.is_none()) {
        return Vec::new();
    }
    let entries = match read_directory(store, object, info.size).await {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "a stored archive's directory could not be read");
            return vec![problem(ProblemKind::EntryMissing, lines)];
        }
    };
    let by_name: std::collections::HashMap<&str, u32> = entries.iter().map(|e| (e.name.as_str(), e.crc32)).collect();
    let mut missing = Vec::new();
    let mut bad_crc = Vec::new();
    for l in lines {
        let Some(entry) = l.entry.as_deref() else {
            continue;
        };
        match by_name.get(entry) {
            None => missing.push(*l),
            Some(crc) if l.crc32.as_deref().is_some_and(|r| *r != format!("{crc:08x}")) => bad_crc.push(*l),
            Some(_) => {}
        }
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(problem(ProblemKind::EntryMissing, &missing));
    }
    if !bad_crc.is_empty() {
        problems.push(problem(ProblemKind::Crc, &bad_crc));
    }
    problems
}
