//! The steps of a job, one function each, run by a worker for a message of the job queue:
//! `plan` (the work cut into batches, each batch's file in S3, the Map's items listed),
//! `batch` (one batch, its outcome written to S3), `finish` (the outcomes merged into the
//! result). Each reads what it needs from S3 and may run twice (a redelivered message, a
//! retried task) without doing anything twice that shows: it writes the same keys again,
//! and the mail goes once.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{key, put_gz, put_json, read_claim, read_gz, read_json, JobError, JobKind, JobRef, JobRequest};
use crate::app::App;
use crate::archive::{self, PrivateFile};
use crate::backup::batch::{self, BatchEnv};
use crate::backup::finish::{self, FinishEnv};
use crate::backup::options::BackupOptions;
use crate::backup::plan::{Lister, Listing, ListingProgress};
use crate::backup::restore::{self, RestoreEnv, RestoreOutcome, RestorePlan};
use crate::backup::steps::{BatchItem, BatchOutcome};
use crate::backup::stored::{self, StoredPlan};
use crate::domain::batch::MAX_BATCH;
use crate::domain::fit;
use crate::domain::outcome::{Failure, FailureCode, FailureError, Outcome};
use crate::entry::http::ArchivesResponse;
use crate::mail::render::{self, LinksMail, RestoreMail};
use crate::metrics::Tally;
use crate::storage::Store;
use crate::wix::CallContext;
use crate::wix::FileDescriptor;

/// Private files linked by one batch of an archives job.
const PRIVATE_PER_BATCH: usize = 100;
/// S3 requests of a step under way at once when it writes the batches' files or reads their
/// outcomes (a thousand of each for a million files; one after another they took seconds).
const S3_AT_ONCE: usize = 16;

/// Where the Map reads its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOutput {
    pub bucket: String,
    /// `items.json`: a JSON array of [`ItemRef`].
    pub key: String,
    pub count: usize,
}

/// One item of the Map: a batch, by number and the key of its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemRef {
    pub number: u32,
    pub key: String,
}

/// Why a step could not do its work (the task fails; Step Functions may retry it).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("{0}")]
    Failed(String),
}

impl StepError {
    /// The error name the task fails with.
    pub fn name(&self) -> &'static str {
        match self {
            StepError::Job(JobError::Storage(_)) => "Job.Storage",
            StepError::Job(_) => "Job.Unreadable",
            StepError::Failed(_) => "Job.Failed",
        }
    }
}

/// What a step works with.
pub struct StepEnv<'a> {
    pub app: &'a App,
    pub store: &'a Store,
    pub ctx: &'a CallContext,
    pub request_id: &'a str,
}

async fn claim_of(env: &StepEnv<'_>, job: &JobRef) -> Result<JobRequest, StepError> {
    read_claim(env.store, &job.job_id)
        .await?
        .map(|c| c.request)
        .ok_or_else(|| StepError::Failed(format!("job {} has no claim", job.job_id)))
}

fn items_output(env: &StepEnv<'_>, job: &JobRef, count: usize) -> PlanOutput {
    PlanOutput {
        bucket: env.store.bucket().to_owned(),
        key: key(env.store, &job.job_id, "items.json"),
        count,
    }
}

fn batch_key(env: &StepEnv<'_>, job: &JobRef, number: u32) -> String {
    key(env.store, &job.job_id, &format!("batches/{number:05}.json.gz"))
}

fn outcome_key(env: &StepEnv<'_>, job: &JobRef, number: u32) -> String {
    key(env.store, &job.job_id, &format!("outcomes/{number:05}.json.gz"))
}

/// Writes every batch's file, [`S3_AT_ONCE`] at a time (the first failure ends the step), then
/// `items.json`.
async fn write_items<T: Serialize>(
    env: &StepEnv<'_>,
    job: &JobRef,
    batches: impl Iterator<Item = (u32, T)>,
) -> Result<PlanOutput, StepError> {
    let items = archive::try_in_order(
        S3_AT_ONCE,
        batches.map(|(number, batch)| async move {
            let k = batch_key(env, job, number);
            put_gz(env.store, &k, &batch).await?;
            Ok::<_, StepError>(ItemRef { number, key: k })
        }),
    )
    .await?;
    let out = items_output(env, job, items.len());
    put_json(env.store, &out.key, &items).await?;
    Ok(out)
}

/// Where a backup job's listing is (`listing/state.json`); the pages it has read are in
/// `listing/<n>.json.gz`, one file per listing step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListState {
    pub progress: ListingProgress,
    /// Files of the listing written so far.
    pub chunks: u32,
    pub files: usize,
}

/// What a listing step answers: whether the listing is done (the state machine lists again
/// until it is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    pub done: bool,
    pub pages: usize,
    pub files: usize,
}

fn list_state_key(env: &StepEnv<'_>, job: &JobRef) -> String {
    key(env.store, &job.job_id, "listing/state.json")
}

fn list_chunk_key(env: &StepEnv<'_>, job: &JobRef, n: u32) -> String {
    key(env.store, &job.job_id, &format!("listing/{n:05}.json.gz"))
}

/// The listing step: a backup's library listed for up to `JOB_LIST_STEP_SECONDS` (and well
/// before the invocation's end), from where the last step stopped. What it read is written
/// before the state that points past it, so a step run twice reads the same pages again and
/// writes the same file.
pub async fn list(env: &StepEnv<'_>, job: &JobRef) -> Result<ListOutput, StepError> {
    let JobRequest::Backup { options, .. } = claim_of(env, job).await? else {
        return Ok(ListOutput {
            done: true,
            pages: 0,
            files: 0,
        });
    };
    let state_key = list_state_key(env, job);
    let mut state: ListState = read_json(env.store, &state_key).await?.unwrap_or_default();
    if state.progress.done {
        return Ok(ListOutput {
            done: true,
            pages: state.progress.pages,
            files: state.files,
        });
    }
    let budget = std::time::Duration::from_secs(env.app.config.job_list_step_seconds);
    let mut stop_at = tokio::time::Instant::now() + budget;
    if let Some(deadline) = env.ctx.deadline {
        // Time to write what was read, and one more page's worth of a slow Wix.
        let reserve = env.app.wix.settings().timeout * 2 + std::time::Duration::from_secs(10);
        stop_at = stop_at.min(deadline.checked_sub(reserve).unwrap_or(deadline));
    }
    let mut lister = Lister::resume(&env.app.wix, &options, state.progress.clone());
    let mut files = Vec::new();
    while tokio::time::Instant::now() < stop_at {
        match lister.next_page(env.ctx).await {
            Some(page) => files.extend(page),
            None => break,
        }
    }
    let progress = lister.into_progress();
    if !files.is_empty() {
        state.chunks += 1;
        state.files += files.len();
        put_gz(env.store, &list_chunk_key(env, job, state.chunks), &files).await?;
    }
    state.progress = progress;
    put_json(env.store, &state_key, &state).await?;
    tracing::info!(
        pages = state.progress.pages,
        files = state.files,
        done = state.progress.done,
        "listed"
    );
    Ok(ListOutput {
        done: state.progress.done,
        pages: state.progress.pages,
        files: state.files,
    })
}

/// The listing the listing steps wrote, read back as one.
async fn listed(env: &StepEnv<'_>, job: &JobRef, options: &BackupOptions) -> Result<Option<Listing>, StepError> {
    let Some(state) = read_json::<ListState>(env.store, &list_state_key(env, job)).await? else {
        return Ok(None);
    };
    if !state.progress.done {
        return Err(StepError::Failed("the listing is not done".to_owned()));
    }
    let mut listing = Listing::default();
    let mut seen = rustc_hash::FxHashSet::default();
    for n in 1..=state.chunks {
        let files: Vec<FileDescriptor> = read_gz(env.store, &list_chunk_key(env, job, n))
            .await?
            .ok_or_else(|| StepError::Failed(format!("listing file {n} is missing")))?;
        listing.add_page(&mut seen, files, options);
    }
    listing.pages = state.progress.pages;
    listing.error = state.progress.error;
    Ok(Some(listing))
}

/// The plan step.
pub async fn plan(env: &StepEnv<'_>, job: &JobRef) -> Result<PlanOutput, StepError> {
    match claim_of(env, job).await? {
        JobRequest::Backup { options, backup_id } => {
            let started = crate::backup::retention::backup_time(&backup_id).unwrap_or_else(SystemTime::now);
            let days = env.app.config.backup_full_every_days;
            let listing: std::pin::Pin<Box<dyn std::future::Future<Output = Listing> + Send + '_>> =
                match listed(env, job, &options).await? {
                    Some(listing) => Box::pin(std::future::ready(listing)),
                    None => Box::pin(crate::backup::plan::list_files(&env.app.wix, env.ctx, &options)),
                };
            let plan = stored::plan(
                &env.app.wix,
                env.ctx,
                env.store,
                &options,
                backup_id,
                started,
                days,
                listing,
            )
            .await;
            // The whole plan for the finish step (a batch that never finishes is reported
            // from it), each batch on its own for its step.
            put_gz(env.store, &key(env.store, &job.job_id, "plan.json.gz"), &plan).await?;
            write_items(env, job, plan.items.iter().map(|i| (i.number, i))).await
        }
        JobRequest::Archives {
            file_ids,
            resolve_private,
            ..
        } => {
            let (batches, failed) = archive_batches(env, file_ids, resolve_private).await;
            let plan = ArchivesPlan { failed, batches };
            put_gz(env.store, &key(env.store, &job.job_id, "plan.json.gz"), &plan).await?;
            write_items(
                env,
                job,
                plan.batches.iter().enumerate().map(|(i, b)| (i as u32 + 1, b)),
            )
            .await
        }
        JobRequest::Restore { options } => {
            let renv = restore_env(env);
            let plan = restore::plan(&renv, &options)
                .await
                .map_err(|e| StepError::Failed(e.to_string()))?;
            put_gz(env.store, &key(env.store, &job.job_id, "plan.json.gz"), &plan).await?;
            put_json(
                env.store,
                &key(env.store, &job.job_id, "restore.json"),
                &serde_json::json!({"restoreId": plan.restore_id}),
            )
            .await?;
            write_items(env, job, plan.batches.iter().map(|b| (b.number, b))).await
        }
    }
}

/// An archives job's plan: the files that failed before any batch, and the batches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchivesPlan {
    failed: Vec<Failure>,
    batches: Vec<ArchivesBatch>,
}

/// A batch of an archives job: public files into one archive, or private files' links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
enum ArchivesBatch {
    #[serde(rename_all = "camelCase")]
    Archive { file_ids: Vec<String> },
    #[serde(rename_all = "camelCase")]
    Private { files: Vec<(String, Option<String>)> },
}

/// What an archives job's batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchivesOutcome {
    outcome: Outcome,
}

/// An archives job's batches: archives of 1000 in request order; with `resolvePrivate`, the
/// files looked up first, private ones linked 100 to a batch, unknown ones failed.
async fn archive_batches(
    env: &StepEnv<'_>,
    ids: Vec<String>,
    resolve_private: bool,
) -> (Vec<ArchivesBatch>, Vec<Failure>) {
    if !resolve_private {
        let batches = ids
            .chunks(MAX_BATCH)
            .map(|c| ArchivesBatch::Archive { file_ids: c.to_vec() })
            .collect();
        return (batches, Vec::new());
    }
    let looked_up = archive::look_up(&env.app.wix, env.ctx, &ids).await;
    let mut batches: Vec<ArchivesBatch> = looked_up
        .public
        .chunks(MAX_BATCH)
        .map(|c| ArchivesBatch::Archive { file_ids: c.to_vec() })
        .collect();
    batches.extend(
        looked_up
            .private
            .chunks(PRIVATE_PER_BATCH)
            .map(|c| ArchivesBatch::Private {
                files: c.iter().map(|p| (p.file_id.clone(), p.display_name.clone())).collect(),
            }),
    );
    (batches, looked_up.failed)
}

/// The batch step.
pub async fn batch(env: &StepEnv<'_>, job: &JobRef, item: &ItemRef) -> Result<Value, StepError> {
    if item.key != batch_key(env, job, item.number) {
        return Err(StepError::Failed("the item names another job's batch".to_owned()));
    }
    let out_key = outcome_key(env, job, item.number);
    match job.kind {
        JobKind::Backup => {
            let batch: BatchItem = read_gz(env.store, &item.key)
                .await?
                .ok_or_else(|| StepError::Failed(format!("batch {} is missing", item.number)))?;
            let benv = BatchEnv {
                wix: &env.app.wix,
                ctx: env.ctx,
                store: env.store,
                http: &env.app.downloads,
                expiration_minutes: env.app.config.private_link_expiration_minutes,
            };
            let outcome = batch::run(&benv, &batch).await;
            put_gz(env.store, &out_key, &outcome).await?;
            Ok(
                serde_json::json!({"number": item.number, "lines": outcome.lines.len(), "storedBytes": outcome.stored_bytes}),
            )
        }
        JobKind::Archives => {
            let batch: ArchivesBatch = read_gz(env.store, &item.key)
                .await?
                .ok_or_else(|| StepError::Failed(format!("batch {} is missing", item.number)))?;
            let mut outcome = Outcome::default();
            match batch {
                ArchivesBatch::Archive { file_ids } => {
                    archive::archive_batch(&env.app.wix, env.ctx, file_ids)
                        .await
                        .record(&mut outcome, &[]);
                }
                ArchivesBatch::Private { files } => {
                    let files = files
                        .into_iter()
                        .map(|(file_id, display_name)| PrivateFile { file_id, display_name })
                        .collect();
                    archive::link_private(
                        &env.app.wix,
                        env.ctx,
                        files,
                        env.app.config.private_link_expiration_minutes,
                        &mut outcome,
                    )
                    .await;
                }
            }
            let failed = outcome.failed_files();
            put_gz(env.store, &out_key, &ArchivesOutcome { outcome }).await?;
            Ok(serde_json::json!({"number": item.number, "failedFiles": failed}))
        }
        JobKind::Restore => {
            let batch: restore::RestoreBatch = read_gz(env.store, &item.key)
                .await?
                .ok_or_else(|| StepError::Failed(format!("batch {} is missing", item.number)))?;
            let context: Value = read_json(env.store, &key(env.store, &job.job_id, "restore.json"))
                .await?
                .ok_or_else(|| StepError::Failed("the restore's ID is missing".to_owned()))?;
            let restore_id = context["restoreId"]
                .as_str()
                .ok_or_else(|| StepError::Failed("the restore's ID is missing".to_owned()))?;
            let outcome = restore::run_batch(&restore_env(env), restore_id, &batch).await;
            put_gz(env.store, &out_key, &outcome).await?;
            Ok(
                serde_json::json!({"number": item.number, "restored": outcome.restored.len(), "failed": outcome.failed.len()}),
            )
        }
    }
}

fn restore_env<'a>(env: &'a StepEnv<'a>) -> RestoreEnv<'a> {
    RestoreEnv {
        wix: &env.app.wix,
        ctx: env.ctx,
        store: env.store,
    }
}

/// Every item's outcome that exists, by number.
async fn outcomes<T: serde::de::DeserializeOwned>(
    env: &StepEnv<'_>,
    job: &JobRef,
    items: &[ItemRef],
) -> Result<HashMap<u32, T>, StepError> {
    let mut found = HashMap::new();
    let present: std::collections::HashSet<String> = env
        .store
        .list(&key(env.store, &job.job_id, "outcomes/"))
        .await
        .map_err(JobError::from)?
        .into_iter()
        .collect();
    let reads = items
        .iter()
        .map(|item| (item.number, outcome_key(env, job, item.number)))
        .filter(|(_, k)| present.contains(k))
        .map(|(number, k)| async move { read_gz::<T>(env.store, &k).await.map(|o| (number, o)) });
    for (number, outcome) in archive::try_in_order(S3_AT_ONCE, reads).await? {
        if let Some(outcome) = outcome {
            found.insert(number, outcome);
        }
    }
    Ok(found)
}

/// The job's mail goes once: true when this call may send it.
async fn may_mail(env: &StepEnv<'_>, job: &JobRef) -> bool {
    match env
        .store
        .put_if_absent(
            &key(env.store, &job.job_id, "mailed"),
            bytes::Bytes::from_static(b"1"),
            "text/plain",
        )
        .await
    {
        Ok(first) => first,
        Err(e) => {
            tracing::warn!(error = %e, "the mail's claim could not be written; not mailing");
            false
        }
    }
}

/// The finish step.
pub async fn finish(env: &StepEnv<'_>, job: &JobRef) -> Result<(Value, Tally), StepError> {
    let items: Vec<ItemRef> = read_json(env.store, &key(env.store, &job.job_id, "items.json"))
        .await?
        .ok_or_else(|| StepError::Failed("the job has no items.json (its plan did not run)".to_owned()))?;
    let result_key = key(env.store, &job.job_id, "result.json");
    match claim_of(env, job).await? {
        JobRequest::Backup { .. } => {
            let mut plan: StoredPlan = read_gz(env.store, &key(env.store, &job.job_id, "plan.json.gz"))
                .await?
                .ok_or_else(|| StepError::Failed("the backup's plan is missing".to_owned()))?;
            let mut found: HashMap<u32, BatchOutcome> = outcomes(env, job, &items).await?;
            let outcomes: Vec<BatchOutcome> = found.drain().map(|(_, o)| o).collect();
            let mailing = !plan.email_to.is_empty() && may_mail(env, job).await;
            if !mailing {
                plan.email_to.clear();
            }
            let fenv = FinishEnv {
                outbox: env.app.outbox(),
                request_id: env.request_id,
                region: std::env::var("AWS_REGION").ok(),
                retention_days: env.app.config.backup_retention_days,
            };
            let summary = finish::finish(&fenv, env.store, &plan, outcomes, env.ctx).await;
            put_json(env.store, &result_key, &summary).await?;
            let value = serde_json::to_value(&summary).map_err(|e| StepError::Failed(e.to_string()))?;
            Ok((value, Tally::of_backup(&summary)))
        }
        JobRequest::Archives {
            request_id,
            file_ids,
            duplicates_removed,
            email,
            ..
        } => {
            let plan: ArchivesPlan = read_gz(env.store, &key(env.store, &job.job_id, "plan.json.gz"))
                .await?
                .ok_or_else(|| StepError::Failed("the job's plan is missing".to_owned()))?;
            let mut found: HashMap<u32, ArchivesOutcome> = outcomes(env, job, &items).await?;
            let mut outcome = Outcome {
                failed: plan.failed,
                ..Outcome::default()
            };
            let mut missing = Vec::new();
            for item in &items {
                match found.remove(&item.number) {
                    Some(o) => {
                        outcome.archives.extend(o.outcome.archives);
                        outcome.private_files.extend(o.outcome.private_files);
                        outcome.failed.extend(o.outcome.failed);
                    }
                    None => missing.push(item.number),
                }
            }
            for number in missing {
                let ids = match plan.batches.get(number as usize - 1) {
                    Some(ArchivesBatch::Archive { file_ids }) => file_ids.clone(),
                    Some(ArchivesBatch::Private { files }) => files.iter().map(|(id, _)| id.clone()).collect(),
                    None => Vec::new(),
                };
                outcome.fail(
                    ids,
                    FailureError {
                        code: FailureCode::Deadline,
                        status: None,
                        message: "the job's batch did not finish".to_owned(),
                        wix_request_id: None,
                    },
                );
            }
            if let Err(e) = outcome.check_accounts_for(&file_ids) {
                tracing::error!(error = %e, "the job's outcome does not account for every file");
            }
            let delivery = if !email.is_empty() && may_mail(env, job).await {
                let mail = LinksMail::for_request(&request_id, file_ids.len(), &outcome);
                env.app
                    .outbox()
                    .send(&email, &mail.title, render::render(&mail), env.ctx.respond_by)
                    .await
            } else {
                crate::mail::Delivery::default()
            };
            let status = outcome.status().http_status();
            let tally = Tally::of_outcome(&outcome);
            let mut response = ArchivesResponse {
                request_id: &request_id,
                file_count: file_ids.len(),
                duplicates_removed,
                outcome,
                emailed_to: delivery.emailed_to,
                email_error: delivery.error,
                shortened: None,
            };
            let json = fit::fit(&mut response, fit::ANSWER_LIMIT).map_err(|e| StepError::Failed(e.to_string()))?;
            env.store
                .put(&result_key, bytes::Bytes::from(json), "application/json")
                .await
                .map_err(JobError::from)?;
            Ok((
                serde_json::json!({"status": status, "fileCount": file_ids.len()}),
                tally,
            ))
        }
        JobRequest::Restore { options } => {
            let plan: RestorePlan = read_gz(env.store, &key(env.store, &job.job_id, "plan.json.gz"))
                .await?
                .ok_or_else(|| StepError::Failed("the restore's plan is missing".to_owned()))?;
            let found: HashMap<u32, RestoreOutcome> = outcomes(env, job, &items).await?;
            let mut report = restore::finish(&restore_env(env), &plan, found.into_values().collect()).await;
            if !options.email_to.is_empty() && may_mail(env, job).await {
                let mail = RestoreMail {
                    title: format!(
                        "Wix media restore: {} restored, {} failed",
                        report.restored_files, report.failed_files
                    ),
                    request_id: env.request_id,
                    r: &report,
                };
                let delivery = env
                    .app
                    .outbox()
                    .send(
                        &options.email_to,
                        &mail.title,
                        render::render_restore(&mail),
                        env.ctx.respond_by,
                    )
                    .await;
                report.emailed_to = delivery.emailed_to;
                report.email_error = delivery.error;
            }
            put_json(env.store, &result_key, &report).await?;
            let value = serde_json::json!({"restoredFiles": report.restored_files, "failedFiles": report.failed_files});
            Ok((value, Tally::default()))
        }
    }
}

/// The job's result, once its finish step has written it.
pub async fn result(store: &Store, job_id: &str) -> Result<Option<Value>, JobError> {
    read_json(store, &key(store, job_id, "result.json")).await
}

/// How far the job is: batches done of all its batches (0 of 0 while it plans).
pub async fn progress(store: &Store, job_id: &str) -> Result<(usize, usize), JobError> {
    let items: Option<Vec<ItemRef>> = read_json(store, &key(store, job_id, "items.json")).await?;
    let Some(items) = items else {
        return Ok((0, 0));
    };
    let done = store.list(&key(store, job_id, "outcomes/")).await?.len();
    Ok((done.min(items.len()), items.len()))
}
