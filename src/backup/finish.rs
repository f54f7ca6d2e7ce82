//! The finish step: every batch's lines (and the skipped and carried-over ones) become the
//! manifest, then the full report, then — only for a complete backup, and last — the
//! site's `latest.json`; then the mail (a summary and where the backup is, no download
//! link). Its answer is the backup summary, small whatever the library's size.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::manifest::{self, LineError, LineStatus, ManifestLine};
use super::steps::{BatchKind, BatchOutcome, PERMANENT_CODES};
use super::stored::StoredPlan;
use crate::domain::outcome::FailureError;
use crate::mail::render::{self, BackupMail, TypeCount};
use crate::mail::Outbox;
use crate::storage::Store;
use crate::wix::CallContext;

/// Failures listed in the summary; the report lists them all.
pub const SUMMARY_FAILURES: usize = 100;

/// What the finish step needs besides the plan and the batches.
pub struct FinishEnv<'a> {
    pub outbox: Outbox<'a>,
    pub request_id: &'a str,
    /// The bucket's region, for the S3 console address in the mail.
    pub region: Option<String>,
    /// `BACKUP_RETENTION_DAYS` (0: keep everything).
    pub retention_days: u32,
}

/// The backup summary: the invocation's answer, the start of `report.json`, and what the
/// mail shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSummary {
    pub backup_id: String,
    /// `COMPLETE` or `INCOMPLETE`.
    pub status: String,
    pub full: bool,
    pub listed_files: usize,
    pub stored_files: usize,
    pub unchanged_files: usize,
    pub new_files: usize,
    pub changed_files: usize,
    pub removed_files: usize,
    pub skipped_files: usize,
    pub failed_files: usize,
    pub stored_bytes: u64,
    pub duration_ms: u64,
    /// `s3://…/manifest.jsonl.gz`.
    pub manifest: String,
    /// `s3://…/report.json`.
    pub report: String,
    /// The first failures.
    pub failures: Vec<FileFailure>,
    pub failures_omitted: usize,
    /// Failed files by error code, all of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures_by_code: BTreeMap<String, usize>,
    pub emailed_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One file that was not backed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileFailure {
    pub file_id: String,
    pub error: LineError,
}

/// `report.json`: the summary, and everything else the link-only report would hold, with
/// S3 objects where that one has download links.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredReport<'a> {
    #[serde(flatten)]
    pub summary: &'a BackupSummary,
    pub request_id: &'a str,
    pub root_folder: &'a str,
    pub media_types: &'a [String],
    pub by_media_type: &'a [TypeCount],
    pub total_size_bytes: u64,
    pub incomplete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a FailureError>,
    pub archives: Vec<ReportObject>,
    pub private_files: Vec<ReportPrivate>,
    pub failed: Vec<ReportFailure>,
    pub skipped: Vec<ReportSkipped<'a>>,
    /// Old backups pruned after this one (retention).
    pub pruned: Vec<super::retention::Pruned>,
}

/// A stored archive object and its files.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportObject {
    pub object: String,
    pub file_count: usize,
    pub file_ids: Vec<String>,
    pub size: u64,
}

/// A private file's object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportPrivate {
    pub file_id: String,
    pub object: String,
}

/// Files that failed for the same reason.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportFailure {
    pub file_ids: Vec<String>,
    pub error: LineError,
}

/// A skipped file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportSkipped<'a> {
    pub file_id: &'a str,
    pub reason: &'a str,
}

/// `latest.json`: the last complete backup of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Latest {
    pub backup_id: String,
    pub completed_at: String,
    /// The manifest's key.
    pub manifest: String,
    /// Files in the manifest.
    pub files: usize,
    /// Bytes of the files stored (in this backup or earlier ones) as of that backup.
    pub bytes: u64,
    pub full_backup_id: String,
    pub full_completed_at: String,
}

/// The key of the site's `latest.json`.
pub fn latest_key(store: &Store) -> String {
    store.key("latest.json")
}

/// The finish step.
pub async fn finish(
    env: &FinishEnv<'_>,
    store: &Store,
    plan: &StoredPlan,
    outcomes: Vec<BatchOutcome>,
    ctx: &CallContext,
) -> BackupSummary {
    let dir = format!("backups/{}/", plan.backup_id);
    let manifest_key = store.key(&format!("{dir}manifest.jsonl.gz"));
    let report_key = report_key(store, &plan.backup_id);
    let mut warnings = plan.warnings.clone();

    let mut by_number: HashMap<u32, BatchOutcome> = outcomes.into_iter().map(|o| (o.number, o)).collect();
    let mut lines: Vec<ManifestLine> = plan.skipped.clone();
    lines.extend(plan.carried.iter().cloned());
    let mut archives = Vec::new();
    let mut private_files = Vec::new();
    let mut stored_bytes = 0;
    for item in &plan.items {
        match by_number.remove(&item.number) {
            Some(outcome) => {
                stored_bytes += outcome.stored_bytes;
                for object in outcome.objects {
                    match item.kind {
                        BatchKind::Archive => archives.push(ReportObject {
                            file_count: object.file_ids.len(),
                            object: object.key,
                            file_ids: object.file_ids,
                            size: object.size,
                        }),
                        BatchKind::Private => {
                            private_files.extend(object.file_ids.into_iter().map(|file_id| ReportPrivate {
                                file_id,
                                object: object.key.clone(),
                            }))
                        }
                    }
                }
                lines.extend(outcome.lines.into_iter().map(|mut l| {
                    if l.status == LineStatus::Failed {
                        l.previous = plan.previous_copies.get(&l.file_id).cloned();
                    }
                    l
                }));
            }
            None => lines.extend(item.files.iter().map(|f| {
                let mut l = f.failed("DEADLINE", "the batch did not run before the backup ended");
                l.previous = plan.previous_copies.get(&f.file_id).cloned();
                l
            })),
        }
    }
    if let Err(problem) = check_one_line_each(&lines, plan.listed_files) {
        tracing::error!(problem = %problem, "the manifest does not account for every listed file");
        warnings.push(format!(
            "the manifest does not account for every listed file: {problem}"
        ));
    }
    manifest::sort(&mut lines);

    let count = |status: LineStatus| lines.iter().filter(|l| l.status == status).count();
    let this_backup = |l: &ManifestLine| l.backup_id.as_deref() == Some(plan.backup_id.as_str());
    let stored_now = lines
        .iter()
        .filter(|l| l.status == LineStatus::Stored && this_backup(l))
        .count();
    let failed: Vec<&ManifestLine> = lines.iter().filter(|l| l.status == LineStatus::Failed).collect();
    let manifest_written = match manifest::encode(&lines) {
        Ok(bytes) => match store.put(&manifest_key, Bytes::from(bytes), "application/gzip").await {
            Ok(_) => true,
            Err(e) => {
                warnings.push(format!("the manifest could not be written: {e}"));
                false
            }
        },
        Err(e) => {
            warnings.push(format!("the manifest could not be encoded: {e}"));
            false
        }
    };
    let permanent_only = failed.iter().all(|l| {
        l.error
            .as_ref()
            .is_some_and(|e| PERMANENT_CODES.contains(&e.code.as_str()))
    });
    let complete = manifest_written && plan.listing_error.is_none() && permanent_only;
    let changes = plan.changes;
    let mut summary = BackupSummary {
        backup_id: plan.backup_id.clone(),
        status: if complete { "COMPLETE" } else { "INCOMPLETE" }.to_owned(),
        full: plan.full,
        listed_files: plan.listed_files,
        stored_files: stored_now,
        unchanged_files: plan.carried.len(),
        new_files: changes.new,
        changed_files: changes.changed,
        removed_files: changes.removed,
        skipped_files: count(LineStatus::Skipped),
        failed_files: failed.len(),
        stored_bytes,
        duration_ms: since(&plan.started_at),
        manifest: store.uri(&manifest_key),
        report: store.uri(&report_key),
        failures: failed
            .iter()
            .take(SUMMARY_FAILURES)
            .map(|l| FileFailure {
                file_id: l.file_id.clone(),
                error: l.error.clone().unwrap_or(LineError {
                    code: "WIX_UNAVAILABLE".into(),
                    message: String::new(),
                }),
            })
            .collect(),
        failures_omitted: failed.len().saturating_sub(SUMMARY_FAILURES),
        failures_by_code: failed.iter().fold(BTreeMap::new(), |mut by_code, l| {
            let code = l.error.as_ref().map_or("WIX_UNAVAILABLE", |e| e.code.as_str());
            *by_code.entry(code.to_owned()).or_default() += 1;
            by_code
        }),
        emailed_to: Vec::new(),
        email_error: None,
        warnings,
    };
    if let Some(e) = &plan.listing_error {
        summary
            .warnings
            .push(format!("the listing stopped early: {}", e.message));
    }

    // Retention, only after a complete backup; before latest.json moves, so the backup it
    // names now is kept along with this one.
    let mut pruned = Vec::new();
    if complete {
        match super::retention::prune(
            store,
            (&plan.backup_id, &lines),
            plan.previous_latest.as_deref(),
            env.retention_days,
            std::time::SystemTime::now(),
        )
        .await
        {
            Ok(done) => pruned = done,
            Err(e) => {
                tracing::warn!(error = %e, "old backups were not pruned");
                summary.warnings.push(format!("old backups were not pruned: {e}"));
            }
        }
    }

    // Mail before the report, so the report records who got it.
    if plan.email_to.is_empty() {
        tracing::info!("the backup summary is not mailed: no recipients (BACKUP_EMAIL_TO or emailTo)");
    } else if env.outbox.mailer.is_none() || env.outbox.from.is_none() {
        tracing::info!("the backup summary is not mailed: EMAIL_FROM is unset");
    } else {
        let mail = BackupMail {
            title: format!(
                "Wix media backup {}: {} files stored{}",
                summary.status.to_lowercase(),
                summary.stored_files + summary.unchanged_files,
                if summary.failed_files > 0 {
                    format!(", {} failed", summary.failed_files)
                } else {
                    String::new()
                }
            ),
            request_id: env.request_id,
            s: &summary,
            stored_size: render::human_size(summary.stored_bytes),
            duration: humantime::format_duration(std::time::Duration::from_secs((summary.duration_ms / 1000).max(1)))
                .to_string(),
            console_url: console_url(store, &dir, env.region.as_deref()),
        };
        let delivery = env
            .outbox
            .send(
                &plan.email_to,
                &mail.title,
                render::render_backup(&mail),
                ctx.respond_by,
            )
            .await;
        summary.emailed_to = delivery.emailed_to;
        summary.email_error = delivery.error;
    }

    let report = StoredReport {
        summary: &summary,
        request_id: env.request_id,
        root_folder: &plan.root_folder,
        media_types: &plan.media_types,
        by_media_type: &plan.by_media_type,
        total_size_bytes: plan.total_size_bytes,
        incomplete: !complete,
        error: plan.listing_error.as_ref(),
        archives,
        private_files,
        failed: group_failures(&failed),
        skipped: lines
            .iter()
            .filter(|l| l.status == LineStatus::Skipped)
            .map(|l| ReportSkipped {
                file_id: &l.file_id,
                reason: l.reason.as_deref().unwrap_or(""),
            })
            .collect(),
        pruned,
    };
    match serde_json::to_vec(&report) {
        Ok(bytes) => {
            if let Err(e) = store.put(&report_key, Bytes::from(bytes), "application/json").await {
                tracing::warn!(error = %e, "the backup report could not be written");
                summary.warnings.push(format!("the report could not be written: {e}"));
            }
        }
        Err(e) => summary.warnings.push(format!("the report could not be encoded: {e}")),
    }

    if complete {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let (full_id, full_at) = if plan.full {
            (plan.backup_id.clone(), now.clone())
        } else {
            plan.previous_full
                .clone()
                .unwrap_or_else(|| (plan.backup_id.clone(), now.clone()))
        };
        let latest = Latest {
            backup_id: plan.backup_id.clone(),
            completed_at: now,
            manifest: manifest_key.clone(),
            files: lines.len(),
            bytes: lines
                .iter()
                .filter(|l| l.status == LineStatus::Stored)
                .filter_map(|l| l.size_in_bytes)
                .sum(),
            full_backup_id: full_id,
            full_completed_at: full_at,
        };
        match serde_json::to_vec(&latest) {
            Ok(bytes) => {
                if let Err(e) = store
                    .put(&latest_key(store), Bytes::from(bytes), "application/json")
                    .await
                {
                    tracing::warn!(error = %e, "latest.json could not be written");
                    summary.status = "INCOMPLETE".to_owned();
                    summary.warnings.push(format!("latest.json could not be written: {e}"));
                }
            }
            Err(e) => summary.warnings.push(format!("latest.json could not be encoded: {e}")),
        }
    }
    summary.duration_ms = since(&plan.started_at);
    // The summary on its own, for `GET /backups/<backupId>` (the report may be large).
    match serde_json::to_vec(&summary) {
        Ok(bytes) => {
            if let Err(e) = store
                .put(
                    &summary_key(store, &plan.backup_id),
                    Bytes::from(bytes),
                    "application/json",
                )
                .await
            {
                tracing::warn!(error = %e, "the backup summary could not be written");
            }
        }
        Err(e) => tracing::warn!(error = %e, "the backup summary could not be encoded"),
    }
    summary
}

/// The key of a backup's `summary.json`.
pub fn summary_key(store: &Store, backup_id: &str) -> String {
    store.key(&format!("backups/{backup_id}/summary.json"))
}

/// The key of a backup's `report.json`.
pub fn report_key(store: &Store, backup_id: &str) -> String {
    store.key(&format!("backups/{backup_id}/report.json"))
}

/// Milliseconds since an RFC 3339 time (the backup's start), 0 if it cannot be read.
fn since(started_at: &str) -> u64 {
    humantime::parse_rfc3339(started_at)
        .ok()
        .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// Every listed file stands on exactly one line.
fn check_one_line_each(lines: &[ManifestLine], listed: usize) -> Result<(), String> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(lines.len());
    for l in lines {
        *seen.entry(&l.file_id).or_default() += 1;
    }
    if let Some((id, n)) = seen.iter().find(|(_, n)| **n > 1) {
        return Err(format!("{id} stands on {n} lines"));
    }
    if seen.len() != listed {
        return Err(format!("{} lines for {listed} listed files", seen.len()));
    }
    Ok(())
}

fn group_failures(failed: &[&ManifestLine]) -> Vec<ReportFailure> {
    let mut groups: Vec<ReportFailure> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for l in failed {
        let error = l.error.clone().unwrap_or(LineError {
            code: "WIX_UNAVAILABLE".into(),
            message: String::new(),
        });
        let key = (error.code.clone(), error.message.clone());
        match index.get(&key) {
            Some(&i) => groups[i].file_ids.push(l.file_id.clone()),
            None => {
                index.insert(key, groups.len());
                groups.push(ReportFailure {
                    file_ids: vec![l.file_id.clone()],
                    error,
                });
            }
        }
    }
    groups
}

/// The backup's folder in the S3 console.
fn console_url(store: &Store, dir: &str, region: Option<&str>) -> String {
    let prefix = store.key(dir);
    let encoded: String = prefix
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b'/' => "%2F".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let region = region.map(|r| format!("region={r}&")).unwrap_or_default();
    format!(
        "https://s3.console.aws.amazon.com/s3/buckets/{}?{region}prefix={encoded}",
        store.bucket()
    )
}
