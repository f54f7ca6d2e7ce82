//! CloudWatch metrics as Embedded Metric Format: one JSON document per invocation, written
//! as its own log line beside the summary line. CloudWatch Logs turns it into metrics of the
//! namespace [`NAMESPACE`] with no API call and no extra latency.
//!
//! Dimensions are the function's name and the invocation's kind (`http`, `backup`, `job`,
//! `restore`, `verify`, `refused`); every metric is also published under `Function` alone,
//! and under `Service` (`METRICS_SERVICE`: the stack's name, so one stack's functions add
//! up), which the template's alarms and dashboard use. Properties beside the metrics carry the request and job IDs (for
//! Logs Insights), never a link, key or token.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::backup::finish::BackupSummary;
use crate::domain::outcome::Outcome;
use crate::wix::CallContext;

/// The metrics' namespace.
pub const NAMESPACE: &str = "WixMediaArchiver";

/// The tracing target of EMF documents: [`crate::logging::init`] writes their message as
/// the whole line, unwrapped.
pub const TARGET: &str = "emf";

/// The first invocation of this process (a cold start) has not been counted yet.
static COLD: AtomicBool = AtomicBool::new(true);

/// What an invocation did to files and backups, as counted for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Files given a download link (in an archive, or their own).
    pub files_archived: u64,
    /// Files copied into the bucket.
    pub files_stored: u64,
    /// Files an incremental backup kept from an earlier backup.
    pub files_unchanged: u64,
    /// Files that failed, by error code.
    pub files_failed: BTreeMap<String, u64>,
    pub bytes_stored: u64,
    /// A backup that finished in this invocation: complete or not, and how long it took
    /// from its start (a job's too, not just this step's).
    pub backup: Option<BackupEnd>,
}

/// A backup's end, as its summary says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupEnd {
    pub complete: bool,
    pub duration_ms: u64,
}

impl Tally {
    /// The counts of a request's or a link-only backup's outcome.
    pub fn of_outcome(outcome: &Outcome) -> Tally {
        let mut tally = Tally {
            files_archived: outcome.linked_files() as u64,
            ..Tally::default()
        };
        for failure in &outcome.failed {
            let code = serde_json::to_value(failure.error.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "WIX_UNAVAILABLE".to_owned());
            *tally.files_failed.entry(code).or_default() += failure.file_ids.len() as u64;
        }
        tally
    }

    /// The counts of a stored backup, from its summary.
    pub fn of_backup(summary: &BackupSummary) -> Tally {
        let mut files_failed = summary
            .failures_by_code
            .iter()
            .map(|(code, n)| (code.clone(), *n as u64))
            .collect::<BTreeMap<_, _>>();
        // A summary written before failures were counted by code: one total.
        let by_code: u64 = files_failed.values().sum();
        if by_code < summary.failed_files as u64 {
            *files_failed.entry("UNKNOWN".to_owned()).or_default() += summary.failed_files as u64 - by_code;
        }
        Tally {
            files_archived: 0,
            files_stored: summary.stored_files as u64,
            files_unchanged: summary.unchanged_files as u64,
            files_failed,
            bytes_stored: summary.stored_bytes,
            backup: Some(BackupEnd {
                complete: summary.status == "COMPLETE",
                duration_ms: summary.duration_ms,
            }),
        }
    }

    /// Adds another's counts (of another step of the same invocation).
    pub fn add(&mut self, other: Tally) {
        self.files_archived += other.files_archived;
        self.files_stored += other.files_stored;
        self.files_unchanged += other.files_unchanged;
        self.bytes_stored += other.bytes_stored;
        for (code, n) in other.files_failed {
            *self.files_failed.entry(code).or_default() += n;
        }
        self.backup = other.backup.or(self.backup);
    }

    /// Files that failed, whatever the code.
    pub fn failed_total(&self) -> u64 {
        self.files_failed.values().sum()
    }
}

/// Who the document is about.
pub struct Subject<'a> {
    /// `METRICS_SERVICE`, or `wix-media-archiver`.
    pub service: &'a str,
    /// `AWS_LAMBDA_FUNCTION_NAME`, or `local`.
    pub function: &'a str,
    pub kind: &'a str,
    pub request_id: &'a str,
    pub job_id: Option<&'a str>,
}

/// The function's name for the `Function` dimension.
pub fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned())
}

/// The service's name for the `Service` dimension.
pub fn service_name() -> String {
    std::env::var("METRICS_SERVICE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "wix-media-archiver".to_owned())
}

/// Whether this is the process's first invocation; true once only.
pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

/// The EMF document of one invocation.
pub fn document(subject: &Subject<'_>, tally: &Tally, ctx: &CallContext, duration_ms: u64, cold_start: bool) -> Value {
    let mut metrics: Vec<(String, &'static str, u64)> = vec![
        ("FilesArchived".into(), "Count", tally.files_archived),
        ("FilesStored".into(), "Count", tally.files_stored),
        ("FilesUnchanged".into(), "Count", tally.files_unchanged),
        ("FilesFailed".into(), "Count", tally.failed_total()),
        ("BytesStored".into(), "Bytes", tally.bytes_stored),
        ("WixCalls".into(), "Count", ctx.calls()),
        ("WixRetries".into(), "Count", ctx.retries()),
        ("WixRateLimited".into(), "Count", ctx.rate_limited()),
        ("Duration".into(), "Milliseconds", duration_ms),
        ("ColdStart".into(), "Count", u64::from(cold_start)),
    ];
    for (code, n) in &tally.files_failed {
        metrics.push((format!("FilesFailed.{code}"), "Count", *n));
    }
    if let Some(end) = tally.backup {
        metrics.push(("BackupsComplete".into(), "Count", u64::from(end.complete)));
        metrics.push(("BackupsIncomplete".into(), "Count", u64::from(!end.complete)));
        metrics.push(("BackupDuration".into(), "Milliseconds", end.duration_ms));
    }

    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function", "Kind"], ["Function"], ["Service"]],
                "Metrics": metrics
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("Service".into(), json!(subject.service));
    doc.insert("Function".into(), json!(subject.function));
    doc.insert("Kind".into(), json!(subject.kind));
    doc.insert("requestId".into(), json!(subject.request_id));
    if let Some(job_id) = subject.job_id {
        doc.insert("jobId".into(), json!(job_id));
    }
    for (name, _, value) in metrics {
        doc.insert(name, json!(value));
    }
    Value::Object(doc)
}

/// Writes the document as one log line.
pub fn emit(document: &Value) {
    tracing::info!(target: TARGET, "{document}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::outcome::{FailureCode, FailureError};

    fn subject() -> Subject<'static> {
        Subject {
            service: "stack",
            function: "archiver",
            kind: "http",
            request_id: "req-1",
            job_id: None,
        }
    }

    #[test]
    fn a_document_declares_every_value_it_carries_under_both_dimension_sets() {
        let mut outcome = Outcome::default();
        outcome.fail(
            vec!["a".into(), "b".into()],
            FailureError {
                code: FailureCode::WixRejected,
                status: Some(400),
                message: String::new(),
                wix_request_id: None,
            },
        );
        let tally = Tally::of_outcome(&outcome);
        let doc = document(&subject(), &tally, &CallContext::default(), 12, true);
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], NAMESPACE);
        assert_eq!(
            spec["Dimensions"],
            json!([["Function", "Kind"], ["Function"], ["Service"]])
        );
        for m in spec["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_u64(), "{name} has no value");
        }
        assert_eq!(doc["FilesFailed"], 2);
        assert_eq!(doc["FilesFailed.WIX_REJECTED"], 2);
        assert_eq!(doc["ColdStart"], 1);
        assert_eq!(doc["Duration"], 12);
        assert!(doc.get("BackupsComplete").is_none());
        assert_eq!(doc["Function"], "archiver");
        assert_eq!(doc["Service"], "stack");
        assert_eq!(doc["Kind"], "http");
    }

    #[test]
    fn a_backup_document_says_whether_it_completed() {
        let tally = Tally {
            backup: Some(BackupEnd {
                complete: false,
                duration_ms: 5000,
            }),
            ..Tally::default()
        };
        let doc = document(&subject(), &tally, &CallContext::default(), 1, false);
        assert_eq!(doc["BackupsComplete"], 0);
        assert_eq!(doc["BackupsIncomplete"], 1);
        assert_eq!(doc["BackupDuration"], 5000);
        assert_eq!(doc["ColdStart"], 0);
    }
}
