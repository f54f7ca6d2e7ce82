//! The scheduled backup of the whole media library, as steps: [`plan`] (list every file,
//! skip what cannot be backed up, cut the rest into archives of at most 1000 grouped by
//! folder), [`folders`] (names for the folders that hold files, read beside the archive
//! calls), and the run itself — [`links`] for a link-only backup.

pub mod batch;
pub mod download;
pub mod finish;
pub mod folders;
pub mod incremental;
pub mod links;
pub mod manifest;
pub mod matching;
pub mod options;
pub mod plan;
pub mod restore;
pub mod retention;
pub mod steps;
pub mod stored;
pub mod verify;

use serde_json::value::RawValue;
use serde_json::Value;

pub use links::BackupReport;
pub use options::BackupOptions;

use crate::app::App;
use crate::domain::fit::{self, Shorten, Shortened};
use crate::domain::outcome::Outcome;
use crate::mail::render::{self, LinksMail, SkippedFile};
use crate::wix::CallContext;

/// Why a backup invocation failed as a whole (it has no report to give).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("invalid backup options: {0}")]
    InvalidOptions(String),
    #[error("{0}")]
    CredentialsUnavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// Counts for the invocation's summary log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupCounts {
    pub listed: usize,
    pub skipped: usize,
    pub archives: usize,
    pub private_files: usize,
    pub failed_files: usize,
    pub emailed: usize,
    pub incomplete: bool,
    /// Files stored by this backup (stored backups).
    pub stored_files: Option<usize>,
    /// For the metrics.
    pub tally: crate::metrics::Tally,
}

impl Shorten for BackupReport {
    fn outcome_mut(&mut self) -> &mut Outcome {
        &mut self.outcome
    }
    fn drop_details(&mut self) -> usize {
        std::mem::take(&mut self.skipped).len()
    }
    fn set_shortened(&mut self, shortened: Shortened) {
        self.shortened = Some(shortened);
    }
}

/// A stored backup: the bytes into the owner's bucket, checked, with a manifest.
async fn run_stored(
    app: &App,
    store: &crate::storage::Store,
    options: &BackupOptions,
    request_id: &str,
    ctx: &CallContext,
) -> Result<(Value, BackupCounts), BackupError> {
    let finish_env = finish::FinishEnv {
        outbox: app.outbox(),
        request_id,
        region: std::env::var("AWS_REGION").ok(),
        retention_days: app.config.backup_retention_days,
    };
    let env = batch::BatchEnv {
        wix: &app.wix,
        ctx,
        store,
        http: &app.downloads,
        expiration_minutes: app.config.private_link_expiration_minutes,
    };
    let summary = stored::run(&env, options, app.config.backup_full_every_days, &finish_env).await;
    let counts = BackupCounts {
        listed: summary.listed_files,
        skipped: summary.skipped_files,
        archives: 0,
        private_files: 0,
        failed_files: summary.failed_files,
        emailed: summary.emailed_to.len(),
        incomplete: summary.status != "COMPLETE",
        stored_files: Some(summary.stored_files),
        tally: crate::metrics::Tally::of_backup(&summary),
    };
    let value = serde_json::to_value(&summary)
        .map_err(|e| BackupError::Failed(format!("the summary could not be encoded: {e}")))?;
    Ok((value, counts))
}

/// The store of this site, or why there is none.
async fn site_store(app: &App, ctx: &CallContext, what: &str) -> Result<crate::storage::Store, BackupError> {
    let credentials = app
        .credentials_by(ctx)
        .await
        .map_err(|e| BackupError::CredentialsUnavailable(format!("the credentials could not be read: {e}")))?;
    app.store(&credentials)
        .ok_or_else(|| BackupError::InvalidOptions(format!("{what} needs STORAGE_BUCKET (stored backups)")))
}

/// Runs a restore event (`{"restore": {…}}`).
pub async fn run_restore(app: &App, raw: &RawValue, request_id: &str, ctx: &CallContext) -> Result<Value, BackupError> {
    let options = restore::RestoreOptions::parse(raw).map_err(BackupError::InvalidOptions)?;
    let store = site_store(app, ctx, "a restore").await?;
    let env = restore::RestoreEnv {
        wix: &app.wix,
        ctx,
        store: &store,
    };
    let mut report = restore::restore(&env, &options)
        .await
        .map_err(|e| BackupError::Failed(e.to_string()))?;
    if !options.email_to.is_empty() {
        let mail = render::RestoreMail {
            title: format!(
                "Wix media restore: {} restored, {} failed",
                report.restored_files, report.failed_files
            ),
            request_id,
            r: &report,
        };
        let delivery = app
            .outbox()
            .send(
                &options.email_to,
                &mail.title,
                render::render_restore(&mail),
                ctx.respond_by,
            )
            .await;
        report.emailed_to = delivery.emailed_to;
        report.email_error = delivery.error;
    }
    serde_json::to_value(&report).map_err(|e| BackupError::Failed(format!("the report could not be encoded: {e}")))
}

/// Runs a verify event (`{"verify": {"backupId": …}}`).
pub async fn run_verify(app: &App, raw: &RawValue, ctx: &CallContext) -> Result<Value, BackupError> {
    let map: serde_json::Map<String, Value> = serde_json::from_str(raw.get())
        .map_err(|_| BackupError::InvalidOptions("`verify` must be a JSON object".into()))?;
    let mut reference = "latest".to_owned();
    for (key, value) in map {
        match key.as_str() {
            "backupId" => {
                let id = value
                    .as_str()
                    .ok_or_else(|| BackupError::InvalidOptions("`backupId` must be a string".into()))?;
                if id != "latest" && !verify::is_backup_id(id) {
                    return Err(BackupError::InvalidOptions(
                        "`backupId` must be `latest` or a backup ID".into(),
                    ));
                }
                reference = id.to_owned();
            }
            other => return Err(BackupError::InvalidOptions(format!("`{other}` is not a known option"))),
        }
    }
    let store = site_store(app, ctx, "verify").await?;
    let answer = verify::verify(&store, &reference)
        .await
        .map_err(|e| BackupError::Failed(e.to_string()))?;
    tracing::info!(backup_id = %answer.backup_id, checked = answer.checked_files, problems = answer.problem_count, "verified");
    serde_json::to_value(&answer).map_err(|e| BackupError::Failed(format!("the answer could not be encoded: {e}")))
}

/// A scheduled backup as a job, when jobs run here: claimed once for its scheduled time
/// (`b-<YYYYMMDDTHHMMSSZ>`), with a backup ID fixed by that time, and started. `None` when
/// jobs are not configured (the backup then runs in this invocation).
pub async fn start_job(
    app: &App,
    options: Option<&RawValue>,
    scheduled_time: &str,
    request_id: &str,
    ctx: &CallContext,
) -> Result<Option<Value>, BackupError> {
    let Some(engine) = app.engine.as_ref() else {
        return Ok(None);
    };
    let at = humantime::parse_rfc3339_weak(scheduled_time).map_err(|_| {
        BackupError::InvalidOptions(format!("`scheduledTime` {scheduled_time:?} is not an RFC 3339 time"))
    })?;
    let options = BackupOptions::parse(options, &app.config).map_err(BackupError::InvalidOptions)?;
    let credentials = app
        .credentials_by(ctx)
        .await
        .map_err(|e| BackupError::CredentialsUnavailable(format!("the credentials could not be read: {e}")))?;
    let Some(store) = app.store(&credentials) else {
        return Ok(None);
    };
    let backup_id = stored::backup_id_for(at, store.root());
    let stamp = backup_id.split('-').next().unwrap_or_default().to_owned();
    let job_id = format!("b-{stamp}");
    let request = crate::jobs::JobRequest::Backup {
        options,
        backup_id: backup_id.clone(),
    };
    let first = crate::jobs::claim(&store, &job_id, request_id, &request)
        .await
        .map_err(|e| BackupError::Failed(format!("the backup job could not be claimed: {e}")))?;
    crate::jobs::start(engine, &job_id, crate::jobs::JobKind::Backup, first)
        .await
        .map_err(|e| BackupError::Failed(format!("the backup job could not be started: {e}")))?;
    tracing::info!(job_id, backup_id, first, "scheduled backup started as a job");
    Ok(Some(serde_json::json!({
        "jobId": job_id,
        "backupId": backup_id,
        "status": "RUNNING",
        "alreadyStarted": !first,
    })))
}

/// Runs a backup for a schedule event, with `options` over the environment's defaults.
pub async fn run_event(
    app: &App,
    options: Option<&RawValue>,
    request_id: &str,
    ctx: &CallContext,
) -> Result<(Value, BackupCounts), BackupError> {
    let started = std::time::Instant::now();
    let options = BackupOptions::parse(options, &app.config).map_err(BackupError::InvalidOptions)?;
    let credentials = app
        .credentials_by(ctx)
        .await
        .map_err(|e| BackupError::CredentialsUnavailable(format!("the credentials could not be read: {e}")))?;
    tracing::info!(root = %options.root_folder, media_types = ?options.media_types, include_private = options.include_private, "backup started");
    if let Some(store) = app.store(&credentials) {
        return run_stored(app, &store, &options, request_id, ctx).await;
    }

    let mut report = links::backup(&app.wix, ctx, &options, app.config.private_link_expiration_minutes).await;
    report.request_id = request_id.to_owned();

    if options.email_to.is_empty() {
        tracing::info!("the backup report is not mailed: no recipients (BACKUP_EMAIL_TO or emailTo)");
    } else if app.config.email_from.is_none() || app.mailer.is_none() {
        tracing::info!("the backup report is not mailed: EMAIL_FROM is unset");
    } else {
        let title = format!(
            "Wix media backup: {} files in {} archives{}",
            report.file_count,
            report.outcome.archives.len(),
            if report.incomplete { " (incomplete)" } else { "" }
        );
        let mail = LinksMail {
            title,
            request_id,
            file_count: report.file_count,
            archives: &report.outcome.archives,
            private_files: &report.outcome.private_files,
            failed: &report.outcome.failed,
            failed_count: report.outcome.failed_files(),
            skipped: report
                .skipped
                .iter()
                .map(|s| SkippedFile {
                    file_id: &s.file_id,
                    reason: s.reason,
                })
                .collect(),
            by_type: &report.by_media_type,
            total_size: Some(render::human_size(report.total_size_bytes)),
        };
        let delivery = app
            .outbox()
            .send(&options.email_to, &mail.title, render::render(&mail), ctx.respond_by)
            .await;
        report.emailed_to = delivery.emailed_to;
        report.email_error = delivery.error;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    let counts = BackupCounts {
        listed: report.listed_files,
        skipped: report.skipped_files,
        archives: report.outcome.archives.len(),
        private_files: report.outcome.private_files.len(),
        failed_files: report.outcome.failed_files(),
        emailed: report.emailed_to.len(),
        incomplete: report.incomplete,
        stored_files: None,
        tally: crate::metrics::Tally {
            backup: Some(crate::metrics::BackupEnd {
                complete: !report.incomplete,
                duration_ms: report.duration_ms,
            }),
            ..crate::metrics::Tally::of_outcome(&report.outcome)
        },
    };
    let json = fit::fit(&mut report, fit::ANSWER_LIMIT)
        .map_err(|e| BackupError::Failed(format!("the report could not be encoded: {e}")))?;
    if report.shortened.is_some() {
        tracing::warn!(
            bytes = json.len(),
            "the backup report was shortened to fit Lambda's answer limit"
        );
    }
    let value = serde_json::from_str(&json)
        .map_err(|e| BackupError::Failed(format!("the report could not be encoded: {e}")))?;
    Ok((value, counts))
}
