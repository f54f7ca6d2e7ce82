//! The HTTP routes of jobs: starting one (`POST /archives` with `async`, `POST /restores`),
//! looking at one (`GET /archives/jobs/<jobId>`, `GET /restores/jobs/<jobId>`), and a stored
//! backup's summary (`GET /backups/<backupId|latest>`). A job's ID comes from the request's
//! signature, so the same signed request sent again is the same job: its claim is there,
//! and the answer is the first one's.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::http::{ApiError, HttpResponse, RequestSummary};
use crate::app::App;
use crate::backup::finish::{self, BackupSummary, Latest};
use crate::backup::restore::RestoreOptions;
use crate::credentials::Credentials;
use crate::domain::request::{ArchiveRequest, FieldError, RequestError};
use crate::jobs::{self, steps, JobError, JobKind, JobRequest};
use crate::storage::Store;

/// What the job routes work with.
pub struct JobsEnv<'a> {
    pub app: &'a App,
    pub credentials: &'a Credentials,
    pub request_id: &'a str,
    /// The request's `X-Signature` header, checked already.
    pub signature: &'a [u8],
    /// The stage prefix of the request's path (`/prod`), for the status URL.
    pub base: &'a str,
}

/// How long a claim may wait for its execution before the job counts as not started.
const START_GRACE_SECS: u64 = 60;

/// The `202` of a job.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted<'a> {
    request_id: &'a str,
    job_id: &'a str,
    status: &'static str,
    status_url: &'a str,
}

/// `GET …/jobs/<jobId>`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobStatus<'a> {
    job_id: &'a str,
    kind: JobKind,
    status: &'static str,
    progress: Progress,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Progress {
    done: usize,
    total: usize,
}

pub(super) fn storage_error(e: JobError) -> ApiError {
    ApiError::Internal(format!("the job's state could not be read or written: {e}"))
}

pub(super) fn json_response(
    status: u16,
    body: &impl Serialize,
    location: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let body =
        serde_json::to_string(body).map_err(|e| ApiError::Internal(format!("the answer could not be encoded: {e}")))?;
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(location) = location {
        headers.push(("location", location.to_owned()));
    }
    Ok(HttpResponse { status, headers, body })
}

pub(super) fn summary(status: u16, job_id: Option<&str>, file_count: usize) -> RequestSummary {
    RequestSummary {
        status,
        file_count,
        job_id: job_id.map(str::to_owned),
        ..RequestSummary::default()
    }
}

/// The store, when jobs can run here.
fn job_store<'a>(env: &JobsEnv<'a>) -> Result<(Store, &'a jobs::engine::Engine), ApiError> {
    match (env.app.store(env.credentials), env.app.engine.as_ref()) {
        (Some(store), Some(engine)) => Ok((store, engine)),
        _ => Err(ApiError::AsyncDisabled),
    }
}

/// Claims the job (or finds the claim of the same request sent before), makes sure its
/// execution runs, and answers `202`.
async fn start(
    env: &JobsEnv<'_>,
    job_id: &str,
    request: JobRequest,
    route: &str,
    file_count: usize,
) -> Result<(HttpResponse, RequestSummary), ApiError> {
    let (store, engine) = job_store(env)?;
    let kind = request.kind();
    let first = jobs::claim(&store, job_id, env.request_id, &request)
        .await
        .map_err(storage_error)?;
    // The same request again: the first one's answer, with the first one's request ID.
    let request_id = if first {
        env.request_id.to_owned()
    } else {
        jobs::read_claim(&store, job_id)
            .await
            .map_err(storage_error)?
            .map_or_else(|| env.request_id.to_owned(), |claim| claim.request_id)
    };
    // Started even when the claim was there: a first attempt may have claimed and then
    // failed to start; the execution is named after the job, so it starts once.
    jobs::start(engine, job_id, kind, first)
        .await
        .map_err(|e| ApiError::Internal(format!("the job could not be started: {e}")))?;
    tracing::info!(job_id, first, "job accepted");
    let status_url = format!("{}/{route}/jobs/{job_id}", env.base);
    let response = json_response(
        202,
        &Accepted {
            request_id: &request_id,
            job_id,
            status: "RUNNING",
            status_url: &status_url,
        },
        Some(&status_url),
    )?;
    Ok((response, summary(202, Some(job_id), file_count)))
}

/// `POST /archives` as a job.
pub async fn start_archives(
    env: &JobsEnv<'_>,
    request: ArchiveRequest<'_>,
) -> Result<(HttpResponse, RequestSummary), ApiError> {
    job_store(env)?;
    let job_id = jobs::job_id_for_signature("a", env.signature);
    let file_count = request.ids.ids.len();
    let job = JobRequest::Archives {
        request_id: env.request_id.to_owned(),
        file_ids: request.ids.ids.iter().map(|id| id.to_string()).collect(),
        duplicates_removed: request.ids.duplicates_removed,
        email: request.email,
        resolve_private: request.resolve_private,
    };
    start(env, &job_id, job, "archives", file_count).await
}

/// `POST /restores`: the body is `{"restore": {…}}` or the restore object itself.
pub async fn start_restore(env: &JobsEnv<'_>, body: &[u8]) -> Result<(HttpResponse, RequestSummary), ApiError> {
    let invalid = |message: String| ApiError::Request(RequestError::Invalid(vec![FieldError::new("restore", message)]));
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::Request(RequestError::InvalidJson(e.to_string())))?;
    let object = match value {
        Value::Object(mut map) if map.contains_key("restore") => map.remove("restore").unwrap_or(Value::Null),
        other => other,
    };
    let raw = RawValue::from_string(object.to_string()).map_err(|e| invalid(e.to_string()))?;
    let options = RestoreOptions::parse(&raw).map_err(invalid)?;
    let can_mail = env.app.mailer.is_some() && env.app.config.email_enabled();
    if !options.email_to.is_empty() && !can_mail {
        return Err(ApiError::Request(RequestError::EmailDisabled));
    }
    job_store(env)?;
    let job_id = jobs::job_id_for_signature("r", env.signature);
    start(env, &job_id, JobRequest::Restore { options }, "restores", 0).await
}

/// `GET …/jobs/<jobId>`: a job of `kind`, or of any kind (`GET /jobs/<jobId>`).
pub async fn status_of(
    env: &JobsEnv<'_>,
    kind: Option<JobKind>,
    job_id: &str,
) -> Result<(HttpResponse, RequestSummary), ApiError> {
    let (store, engine) = job_store(env)?;
    let not_found = || ApiError::NotFound(format!("there is no job {job_id}"));
    let claim = jobs::read_claim(&store, job_id)
        .await
        .map_err(storage_error)?
        .filter(|c| kind.is_none_or(|k| c.request.kind() == k))
        .ok_or_else(not_found)?;
    let (done, total) = steps::progress(&store, job_id).await.map_err(storage_error)?;
    let job_kind = claim.request.kind();
    let answer = |status: &'static str, result: Option<Value>, error: Option<String>, done: usize| JobStatus {
        job_id,
        kind: job_kind,
        status,
        progress: Progress { done, total },
        result,
        error,
    };
    let body = if let Some(result) = steps::result(&store, job_id).await.map_err(storage_error)? {
        answer("SUCCEEDED", Some(result), None, total)
    } else {
        let execution = engine
            .describe(job_id)
            .await
            .map_err(|e| ApiError::Internal(format!("the job could not be looked at: {e}")))?;
        match execution {
            Some(e) if e.status == "RUNNING" || e.status == "PENDING_REDRIVE" => answer("RUNNING", None, None, done),
            // Succeeded but no result: the finish step's write is what makes a job succeed,
            // so this is a moment's race; say running.
            Some(e) if e.status == "SUCCEEDED" => answer("RUNNING", None, None, done),
            Some(e) => answer(
                "FAILED",
                None,
                Some(format!(
                    "the job's execution ended {}{}",
                    e.status,
                    e.error.map(|c| format!(" ({c})")).unwrap_or_default()
                )),
                done,
            ),
            None if claimed_secs_ago(&claim.created_at) < START_GRACE_SECS => answer("RUNNING", None, None, 0),
            None => answer(
                "FAILED",
                None,
                Some("the job was accepted but never started; send the request again".to_owned()),
                0,
            ),
        }
    };
    let status = body.status;
    let response = json_response(200, &body, None)?;
    tracing::info!(job_id, status, "job looked at");
    Ok((response, summary(200, Some(job_id), 0)))
}

fn claimed_secs_ago(created_at: &str) -> u64 {
    humantime::parse_rfc3339(created_at)
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or(u64::MAX, |d| d.as_secs())
}

/// `GET /backups/<backupId|latest>`: the backup's summary.
pub async fn backup_summary(env: &JobsEnv<'_>, backup_id: &str) -> Result<(HttpResponse, RequestSummary), ApiError> {
    let store = env
        .app
        .store(env.credentials)
        .ok_or_else(|| ApiError::NotFound("there are no stored backups here: STORAGE_BUCKET is unset".to_owned()))?;
    let backup_id = if backup_id == "latest" {
        let latest: Option<Latest> = jobs::read_json(&store, &finish::latest_key(&store))
            .await
            .map_err(storage_error)?;
        latest
            .ok_or_else(|| ApiError::NotFound("there is no complete backup yet".to_owned()))?
            .backup_id
    } else {
        backup_id.to_owned()
    };
    let not_found = || ApiError::NotFound(format!("there is no finished backup {backup_id}"));
    let summary_of: Option<BackupSummary> = match jobs::read_json(&store, &finish::summary_key(&store, &backup_id))
        .await
        .map_err(storage_error)?
    {
        Some(s) => Some(s),
        // A backup written before summaries were kept on their own: its report starts
        // with the summary.
        None => jobs::read_json(&store, &finish::report_key(&store, &backup_id))
            .await
            .map_err(storage_error)?,
    };
    let body = summary_of.ok_or_else(not_found)?;
    let response = json_response(200, &body, None)?;
    Ok((response, summary(200, None, body.listed_files)))
}
