//! Jobs: work that does not fit one answer runs on AWS Step Functions — a plan step, a
//! Distributed Map of batch steps, a finish step, each a callback task whose message the job
//! queue hands to this function (`worker`). A job is claimed once, with an S3 conditional
//! write, and its execution is named after the claim, so the same request or the same
//! scheduled time never makes two jobs.
//!
//! Under `<prefix><site>/jobs/<jobId>/`: `claim.json` (what was asked), `items.json` (the
//! Map's items: a batch number and the key of its file), `batches/<n>.json.gz`, `plan.json.gz`
//! (what the finish step needs of the plan), `outcomes/<n>.json.gz` (each batch's result),
//! `result.json`, and `mailed` (the mail's once-only claim).

pub mod engine;
pub mod steps;
pub mod worker;

use std::io::{Read, Write};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::backup::options::BackupOptions;
use crate::backup::restore::RestoreOptions;
use crate::storage::{Store, StoreError};

/// What kind of work a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobKind {
    /// An asynchronous `POST /archives`.
    Archives,
    /// A stored backup.
    Backup,
    /// A restore.
    Restore,
}

/// What every step of a job is told: the execution's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRef {
    pub job_id: String,
    pub kind: JobKind,
}

/// What a job was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum JobRequest {
    #[serde(rename_all = "camelCase")]
    Archives {
        /// The request's ID (the HTTP request that started the job).
        request_id: String,
        file_ids: Vec<String>,
        duplicates_removed: usize,
        email: Vec<String>,
        resolve_private: bool,
    },
    #[serde(rename_all = "camelCase")]
    Backup {
        options: BackupOptions,
        /// The backup's ID, fixed when the job is claimed (so a plan step run twice plans
        /// the same backup).
        backup_id: String,
    },
    #[serde(rename_all = "camelCase")]
    Restore { options: RestoreOptions },
}

impl JobRequest {
    /// Its kind.
    pub fn kind(&self) -> JobKind {
        match self {
            JobRequest::Archives { .. } => JobKind::Archives,
            JobRequest::Backup { .. } => JobKind::Backup,
            JobRequest::Restore { .. } => JobKind::Restore,
        }
    }
}

/// `claim.json`: the job, claimed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    pub job_id: String,
    pub created_at: String,
    /// The invocation that made the claim (the first request's ID).
    pub request_id: String,
    pub request: JobRequest,
}

/// Why a job could not be started or read.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error("{0}")]
    Unreadable(String),
}

/// The key of `relative` under the job's folder.
pub fn key(store: &Store, job_id: &str, relative: &str) -> String {
    store.key(&format!("jobs/{job_id}/{relative}"))
}

/// Whether `id` has a job ID's shape (so it can go into keys and an execution name).
pub fn is_job_id(id: &str) -> bool {
    (3..=80).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A job ID for a signed request: the same signature (same `t`, same `v1`) is the same job.
pub fn job_id_for_signature(prefix: &str, signature_header: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(signature_header);
    format!("{prefix}-{}", hex::encode(&digest[..12]))
}

/// Claims the job: writes its claim unless one is there. True when this call made it.
pub async fn claim(store: &Store, job_id: &str, request_id: &str, request: &JobRequest) -> Result<bool, JobError> {
    let claim = Claim {
        job_id: job_id.to_owned(),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        request_id: request_id.to_owned(),
        request: request.clone(),
    };
    let body = serde_json::to_vec(&claim).map_err(|e| JobError::Unreadable(e.to_string()))?;
    Ok(store
        .put_if_absent(&key(store, job_id, "claim.json"), Bytes::from(body), "application/json")
        .await?)
}

/// The job's claim, if the job exists.
pub async fn read_claim(store: &Store, job_id: &str) -> Result<Option<Claim>, JobError> {
    read_json(store, &key(store, job_id, "claim.json")).await
}

/// Starts the job's execution (named after the job) unless it runs already; `claimed_now`:
/// its claim was made by this call ([`claim`] answered `true`).
pub async fn start(engine: &engine::Engine, job_id: &str, kind: JobKind, claimed_now: bool) -> Result<(), JobError> {
    let input = serde_json::json!({ "job": JobRef { job_id: job_id.to_owned(), kind } }).to_string();
    engine.start(job_id, &input, claimed_now).await?;
    Ok(())
}

/// Reads a JSON object; `None` when there is none.
pub async fn read_json<T: DeserializeOwned>(store: &Store, key: &str) -> Result<Option<T>, JobError> {
    match store.get(key).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| JobError::Unreadable(format!("{key} is not what it should be: {e}"))),
    }
}

/// Writes `value` as gzip'd JSON.
pub async fn put_gz<T: Serialize>(store: &Store, key: &str, value: &T) -> Result<(), JobError> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    serde_json::to_writer(&mut gz, value).map_err(|e| JobError::Unreadable(e.to_string()))?;
    let bytes = gz.finish().map_err(|e| JobError::Unreadable(e.to_string()))?;
    store.put(key, Bytes::from(bytes), "application/gzip").await?;
    Ok(())
}

/// Reads gzip'd JSON; `None` when there is none.
pub async fn read_gz<T: DeserializeOwned>(store: &Store, key: &str) -> Result<Option<T>, JobError> {
    let Some(bytes) = store.get(key).await? else {
        return Ok(None);
    };
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut text)
        .map_err(|e| JobError::Unreadable(format!("{key} is not gzip: {e}")))?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| JobError::Unreadable(format!("{key} is not what it should be: {e}")))
}

/// Writes `value` as JSON.
pub async fn put_json<T: Serialize>(store: &Store, key: &str, value: &T) -> Result<(), JobError> {
    let bytes = serde_json::to_vec(value).map_err(|e| JobError::Unreadable(e.to_string()))?;
    store.put(key, Bytes::from(bytes), "application/json").await?;
    Ok(())
}

/// Writes `bytes` gzip'd (for a value already serialized).
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_signature_is_the_same_job() {
        let a = job_id_for_signature("a", b"t=1,v1=ab");
        assert_eq!(a, job_id_for_signature("a", b"t=1,v1=ab"));
        assert_ne!(a, job_id_for_signature("a", b"t=2,v1=ab"));
        assert!(is_job_id(&a), "{a}");
        assert!(!is_job_id("../x"));
    }

    #[test]
    fn claims_round_trip() {
        let claim = Claim {
            job_id: "a-1".into(),
            created_at: "2026-12-02T00:00:00Z".into(),
            request_id: "r".into(),
            request: JobRequest::Archives {
                request_id: "r".into(),
                file_ids: vec!["x".into()],
                duplicates_removed: 0,
                email: vec![],
                resolve_private: false,
            },
        };
        let json = serde_json::to_string(&claim).unwrap();
        assert!(json.contains(r#""kind":"archives""#), "{json}");
        assert_eq!(serde_json::from_str::<Claim>(&json).unwrap(), claim);
    }
}
