//! The HTTP API: `POST /archives` (synchronous, or a job), `GET /archives/jobs/<jobId>`,
//! `POST /restores`, `GET /restores/jobs/<jobId>`, `GET /backups/<backupId|latest>`, the
//! console's routes (`GET|POST /backups`, `GET /backups/<id>/files`, `…/failures`,
//! `GET /jobs`, `GET /jobs/<jobId>`, `POST /verifies`) and the console's page itself, the
//! one unsigned resource. The checks in the contract's order — route, method, signature,
//! body — the work, and the one place where errors become HTTP statuses.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lambda_http::http::{self, HeaderMap, Method, StatusCode};
use serde::Serialize;

use super::{console_routes, job_routes};
use crate::app::App;
use crate::archive;
use crate::domain::fit::{self, Shorten, Shortened};
use crate::domain::outcome::Outcome;
use crate::domain::request::{self, FieldError, RequestError, RequestLimits};
use crate::jobs::{self, JobKind};
use crate::mail::render::{self, LinksMail};
use crate::mail::Delivery;
use crate::signature;
use crate::wix::CallContext;

/// An HTTP request as the edge sees it, whatever event carried it.
#[derive(Debug)]
pub struct HttpRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    /// The query's parameters, decoded.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The answer: status, extra headers, and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// What one request did, for the invocation's summary log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    pub status: u16,
    pub code: Option<&'static str>,
    pub file_count: usize,
    pub duplicates_removed: usize,
    pub archives: usize,
    pub private_files: usize,
    pub failed_files: usize,
    pub emailed: usize,
    /// The job started or looked at.
    pub job_id: Option<String>,
    /// For the metrics.
    pub tally: crate::metrics::Tally,
}

/// A refusal, mapped to its status and code in [`ApiError::status`].
#[derive(Debug)]
pub enum ApiError {
    NotFound(String),
    /// The methods the resource allows.
    MethodNotAllowed(&'static str),
    Unauthorized(signature::SignatureError),
    /// A job was asked for, but jobs are not configured.
    AsyncDisabled,
    UnsupportedMediaType,
    Request(RequestError),
    /// Work that did not fit the caller's time (the message says where to run it instead).
    TooLong(String),
    Internal(String),
}

impl ApiError {
    /// The contract's status and code.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            ApiError::AsyncDisabled => (StatusCode::BAD_REQUEST, "ASYNC_DISABLED"),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            ApiError::Request(RequestError::InvalidJson(_)) => (StatusCode::BAD_REQUEST, "INVALID_JSON"),
            ApiError::Request(RequestError::Invalid(_)) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            ApiError::Request(RequestError::EmailDisabled) => (StatusCode::BAD_REQUEST, "EMAIL_DISABLED"),
            ApiError::Request(RequestError::TooManyFiles { .. }) => (StatusCode::PAYLOAD_TOO_LARGE, "TOO_MANY_FILES"),
            ApiError::TooLong(_) => (StatusCode::SERVICE_UNAVAILABLE, "DEADLINE"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::NotFound(m) | ApiError::TooLong(m) => m.clone(),
            ApiError::MethodNotAllowed(allowed) => format!("only {allowed} is allowed on this resource"),
            ApiError::AsyncDisabled => {
                "jobs are not configured here (they need STORAGE_BUCKET and JOB_STATE_MACHINE_ARN); send the request without `async`".to_owned()
            }
            // Deliberately vague: a caller probing keys learns nothing from the answer.
            ApiError::Unauthorized(_) => {
                "the request signature is missing, invalid or outside the allowed time window".to_owned()
            }
            ApiError::UnsupportedMediaType => "the body must be sent as Content-Type: application/json".to_owned(),
            ApiError::Request(e) => e.to_string(),
            // The detail (an AWS error's text can hold account IDs and ARNs) goes to the log
            // only; the caller may not even be signed, as the caller keys are unreadable.
            ApiError::Internal(_) => {
                "internal error; the function's log has the details under this requestId".to_owned()
            }
        }
    }

    fn into_response(self, request_id: &str) -> HttpResponse {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            error: ErrorBody<'a>,
            request_id: &'a str,
        }
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            code: &'a str,
            message: String,
            details: &'a [FieldError],
        }
        let (status, code) = self.status();
        let details: &[FieldError] = match &self {
            ApiError::Request(RequestError::Invalid(list)) => list,
            _ => &[],
        };
        let body = serde_json::to_string(&Body {
            error: ErrorBody {
                code,
                message: self.message(),
                details,
            },
            request_id,
        })
        .expect("error bodies serialize");
        let mut headers = vec![("content-type", "application/json".to_owned())];
        if let ApiError::MethodNotAllowed(allowed) = self {
            headers.push(("allow", allowed.to_owned()));
        }
        HttpResponse {
            status: status.as_u16(),
            headers,
            body,
        }
    }
}

/// The answer to `POST /archives`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchivesResponse<'a> {
    pub request_id: &'a str,
    pub file_count: usize,
    pub duplicates_removed: usize,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub emailed_to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_error: Option<String>,
    /// Present when the answer was cut down to fit Lambda's payload limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortened: Option<Shortened>,
}

impl Shorten for ArchivesResponse<'_> {
    fn outcome_mut(&mut self) -> &mut Outcome {
        &mut self.outcome
    }
    fn set_shortened(&mut self, shortened: Shortened) {
        self.shortened = Some(shortened);
    }
}

/// Handles one HTTP request end to end.
pub async fn handle(
    app: &App,
    req: HttpRequest<'_>,
    request_id: &str,
    ctx: &CallContext,
) -> (HttpResponse, RequestSummary) {
    match run(app, req, request_id, ctx).await {
        Ok(done) => done,
        Err(e) => {
            let (status, code) = e.status();
            match &e {
                ApiError::Unauthorized(reason) => {
                    tracing::info!(reason = %reason, "refused an unsigned or badly signed request")
                }
                ApiError::Internal(m) => tracing::error!(message = %m, "could not serve the request"),
                other => tracing::info!(code, reason = %other.message(), "refused a request"),
            }
            let summary = RequestSummary {
                status: status.as_u16(),
                code: Some(code),
                ..RequestSummary::default()
            };
            (e.into_response(request_id), summary)
        }
    }
}

async fn run(
    app: &App,
    req: HttpRequest<'_>,
    request_id: &str,
    ctx: &CallContext,
) -> Result<(HttpResponse, RequestSummary), ApiError> {
    let (route, base) = route(req.path).ok_or_else(|| {
        ApiError::NotFound(
            "no such resource; the API is POST /archives, GET /archives/jobs/<jobId>, POST /restores, GET /restores/jobs/<jobId>, GET|POST /backups, GET /backups/<backupId|latest>[/files|/failures], GET /jobs[/<jobId>], POST /verifies, and the console at GET /console"
                .to_owned(),
        )
    })?;
    if !route.allows(req.method) {
        return Err(ApiError::MethodNotAllowed(route.allowed()));
    }
    // The page holds no data and no secret: it is served to anyone, before credentials.
    if let Route::Console(asset) = route {
        // The page's files and its API calls are relative to `…/console`; with a trailing
        // slash they would miss.
        if asset == crate::console::Asset::Page && req.path.ends_with('/') {
            let response = HttpResponse {
                status: 308,
                headers: vec![("location", "../console".to_owned())],
                body: String::new(),
            };
            return Ok((response, summary_of_status(308)));
        }
        return Ok((crate::console::serve(asset), summary_of_status(200)));
    }
    let credentials = app
        .credentials_by(ctx)
        .await
        .map_err(|e| ApiError::Internal(format!("the credentials could not be read: {e}")))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let signature_header = req.headers.get(signature::HEADER).map(|v| v.as_bytes());
    signature::verify(
        signature_header,
        req.body,
        &credentials.caller_keys,
        now,
        app.config.signature_tolerance_secs,
    )
    .map_err(ApiError::Unauthorized)?;
    let signature_header = signature_header.unwrap_or_default();
    let jobs = job_routes::JobsEnv {
        app,
        credentials: &credentials,
        request_id,
        signature: signature_header,
        base,
    };
    match route {
        Route::Archives => {}
        Route::ArchivesJob(job_id) => return job_routes::status_of(&jobs, Some(JobKind::Archives), job_id).await,
        Route::RestoresJob(job_id) => return job_routes::status_of(&jobs, Some(JobKind::Restore), job_id).await,
        Route::Backup(backup_id) => return job_routes::backup_summary(&jobs, backup_id).await,
        Route::Backups if *req.method == Method::POST => {
            if !is_json(req.headers) {
                return Err(ApiError::UnsupportedMediaType);
            }
            return console_routes::start_backup(&jobs, req.body, ctx).await;
        }
        Route::Backups => return console_routes::list_backups(&jobs, req.query).await,
        Route::BackupFiles(backup_id) => {
            return console_routes::files(&jobs, backup_id, req.query, console_routes::Listing::Files).await
        }
        Route::BackupFailures(backup_id) => {
            return console_routes::files(&jobs, backup_id, req.query, console_routes::Listing::Failures).await
        }
        Route::Jobs => return console_routes::running_jobs(&jobs).await,
        Route::Job(job_id) => return job_routes::status_of(&jobs, None, job_id).await,
        Route::Verifies => {
            if !is_json(req.headers) {
                return Err(ApiError::UnsupportedMediaType);
            }
            return console_routes::verify(&jobs, req.body, ctx).await;
        }
        Route::Console(_) => unreachable!("served before the signature check"),
        Route::Restores => {
            if !is_json(req.headers) {
                return Err(ApiError::UnsupportedMediaType);
            }
            return job_routes::start_restore(&jobs, req.body).await;
        }
    }
    if !is_json(req.headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let limits = RequestLimits {
        max_files: app.config.max_files_per_request,
        max_files_async: app.config.max_files_per_job,
        email_enabled: app.mailer.is_some() && app.config.email_enabled(),
        prefer_async: prefers_async(req.headers),
    };
    let request = request::parse(req.body, limits).map_err(ApiError::Request)?;
    if request.asynchronous {
        return job_routes::start_archives(&jobs, request).await;
    }
    let started = Instant::now();
    let ids = &request.ids.ids;
    tracing::info!(
        files = ids.len(),
        duplicates_removed = request.ids.duplicates_removed,
        resolve_private = request.resolve_private,
        "archiving"
    );

    let outcome = if request.resolve_private {
        archive::archive_resolving_private(&app.wix, ctx, ids, app.config.private_link_expiration_minutes).await
    } else {
        archive::archive_ids(&app.wix, ctx, ids).await
    };
    debug_assert_eq!(outcome.check_accounts_for(ids), Ok(()));
    if let Err(e) = outcome.check_accounts_for(ids) {
        tracing::error!(error = %e, "the outcome does not account for every file");
    }

    let delivery = if request.email.is_empty() {
        Delivery::default()
    } else {
        let mail = LinksMail::for_request(request_id, ids.len(), &outcome);
        app.outbox()
            .send(&request.email, &mail.title, render::render(&mail), ctx.respond_by)
            .await
    };
    let status = outcome.status().http_status();
    let summary = RequestSummary {
        status,
        code: None,
        file_count: ids.len(),
        duplicates_removed: request.ids.duplicates_removed,
        archives: outcome.archives.len(),
        private_files: outcome.private_files.len(),
        failed_files: outcome.failed_files(),
        emailed: delivery.emailed_to.len(),
        job_id: None,
        tally: crate::metrics::Tally::of_outcome(&outcome),
    };
    let mut response = ArchivesResponse {
        request_id,
        file_count: ids.len(),
        duplicates_removed: request.ids.duplicates_removed,
        outcome,
        emailed_to: delivery.emailed_to,
        email_error: delivery.error,
        shortened: None,
    };
    let body = fit::fit(&mut response, fit::ANSWER_LIMIT)
        .map_err(|e| ApiError::Internal(format!("the response could not be encoded: {e}")))?;
    if response.shortened.is_some() {
        tracing::warn!(
            bytes = body.len(),
            "the answer was shortened to fit Lambda's payload limit"
        );
    }
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "archived");
    Ok((
        HttpResponse {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body,
        },
        summary,
    ))
}

/// A resource of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /archives`.
    Archives,
    /// `GET /archives/jobs/<jobId>`.
    ArchivesJob(&'a str),
    /// `POST /restores`.
    Restores,
    /// `GET /restores/jobs/<jobId>`.
    RestoresJob(&'a str),
    /// `GET /backups/<backupId>` or `GET /backups/latest`.
    Backup(&'a str),
    /// `GET /backups` (the stored backups, newest first) and `POST /backups` (one now).
    Backups,
    /// `GET /backups/<backupId|latest>/files`: a backup's manifest, by folder or searched.
    BackupFiles(&'a str),
    /// `GET /backups/<backupId|latest>/failures`: its files that failed.
    BackupFailures(&'a str),
    /// `GET /jobs`: the running jobs.
    Jobs,
    /// `GET /jobs/<jobId>`: a job of any kind.
    Job(&'a str),
    /// `POST /verifies`.
    Verifies,
    /// `GET /console`, `/console/app.js`, `/console/app.css`: the owner's console, unsigned.
    Console(crate::console::Asset),
}

impl Route<'_> {
    /// The `Allow` header's value.
    pub fn allowed(&self) -> &'static str {
        match self {
            Route::Archives | Route::Restores | Route::Verifies => "POST",
            Route::Backups => "GET, POST",
            Route::ArchivesJob(_)
            | Route::RestoresJob(_)
            | Route::Backup(_)
            | Route::BackupFiles(_)
            | Route::BackupFailures(_)
            | Route::Jobs
            | Route::Job(_)
            | Route::Console(_) => "GET",
        }
    }

    /// Whether the resource answers `method`.
    pub fn allows(&self, method: &Method) -> bool {
        match self {
            Route::Archives | Route::Restores | Route::Verifies => *method == Method::POST,
            Route::Backups => *method == Method::GET || *method == Method::POST,
            _ => *method == Method::GET,
        }
    }
}

fn summary_of_status(status: u16) -> RequestSummary {
    RequestSummary {
        status,
        ..RequestSummary::default()
    }
}

/// The resource a path names, and the stage prefix before it (`/prod` of
/// `/prod/archives`, or empty); one trailing slash is tolerated.
pub fn route(path: &str) -> Option<(Route<'_>, &str)> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let relative = trimmed.strip_prefix('/').unwrap_or(trimmed);
    let segments: Vec<&str> = relative.split('/').collect();
    if let Some(route) = resource(&segments) {
        return Some((route, ""));
    }
    match segments.split_first() {
        // A stage is never named like one of the API's own resources, so `/archives/jobs`
        // stays a wrong path instead of `GET /jobs` under a stage `archives`.
        Some((stage, rest)) if !stage.is_empty() && !rest.is_empty() && !RESOURCES.contains(stage) => {
            resource(rest).map(|route| (route, &trimmed[..trimmed.len() - relative.len() + stage.len()]))
        }
        _ => None,
    }
}

/// The first segments of the API's resources.
const RESOURCES: [&str; 6] = ["archives", "restores", "backups", "jobs", "verifies", "console"];

fn resource<'a>(segments: &[&'a str]) -> Option<Route<'a>> {
    match *segments {
        ["archives"] => Some(Route::Archives),
        ["archives", "jobs", id] if jobs::is_job_id(id) => Some(Route::ArchivesJob(id)),
        ["restores"] => Some(Route::Restores),
        ["restores", "jobs", id] if jobs::is_job_id(id) => Some(Route::RestoresJob(id)),
        ["backups"] => Some(Route::Backups),
        ["backups", id] if is_backup_ref(id) => Some(Route::Backup(id)),
        ["backups", id, "files"] if is_backup_ref(id) => Some(Route::BackupFiles(id)),
        ["backups", id, "failures"] if is_backup_ref(id) => Some(Route::BackupFailures(id)),
        ["jobs"] => Some(Route::Jobs),
        ["jobs", id] if jobs::is_job_id(id) => Some(Route::Job(id)),
        ["verifies"] => Some(Route::Verifies),
        ["console"] => Some(Route::Console(crate::console::Asset::Page)),
        ["console", "app.js"] => Some(Route::Console(crate::console::Asset::Script)),
        ["console", "app.css"] => Some(Route::Console(crate::console::Asset::Style)),
        _ => None,
    }
}

fn is_backup_ref(id: &str) -> bool {
    id == "latest" || crate::backup::verify::is_backup_id(id)
}

/// Whether the caller asked for a job with `Prefer: respond-async` (RFC 7240).
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            p.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("respond-async"))
        })
}

/// `application/json`, with or without parameters such as `charset=utf-8`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        fn at(p: &str) -> Option<Route<'_>> {
            route(p).map(|(r, _)| r)
        }
        for ok in [
            "/archives",
            "/archives/",
            "/prod/archives",
            "/prod/archives/",
            "archives",
        ] {
            assert_eq!(at(ok), Some(Route::Archives), "{ok}");
        }
        assert_eq!(route("/prod/archives"), Some((Route::Archives, "/prod")));
        assert_eq!(route("/archives"), Some((Route::Archives, "")));
        assert_eq!(
            route("/v1/archives/jobs/a-0123abcd"),
            Some((Route::ArchivesJob("a-0123abcd"), "/v1"))
        );
        assert_eq!(at("/restores"), Some(Route::Restores));
        assert_eq!(at("/restores/jobs/r-1234"), Some(Route::RestoresJob("r-1234")));
        assert_eq!(at("/backups/latest"), Some(Route::Backup("latest")));
        assert_eq!(at("/backups"), Some(Route::Backups));
        assert_eq!(at("/prod/backups/latest/files"), Some(Route::BackupFiles("latest")));
        assert_eq!(
            at("/backups/20261202T030000Z-0a1b2c3d/failures"),
            Some(Route::BackupFailures("20261202T030000Z-0a1b2c3d"))
        );
        assert_eq!(at("/jobs"), Some(Route::Jobs));
        assert_eq!(at("/jobs/b-20261202T030000Z"), Some(Route::Job("b-20261202T030000Z")));
        assert_eq!(at("/verifies"), Some(Route::Verifies));
        assert_eq!(
            route("/prod/console"),
            Some((Route::Console(crate::console::Asset::Page), "/prod"))
        );
        assert_eq!(
            at("/console/app.js"),
            Some(Route::Console(crate::console::Asset::Script))
        );
        assert_eq!(
            at("/console/app.css"),
            Some(Route::Console(crate::console::Asset::Style))
        );
        assert_eq!(
            at("/backups/20261202T030000Z-0a1b2c3d"),
            Some(Route::Backup("20261202T030000Z-0a1b2c3d"))
        );
        for bad in [
            "/",
            "",
            "/archive",
            "/a/b/archives",
            "//archives",
            "/archives/x",
            "/archivesx",
            "/events",
            "/archives/jobs",
            "/archives/jobs/",
            "/archives/jobs/..",
            "/archives/jobs/a%2F..",
            "/archives/jobs/a/b",
            "/backups/../latest",
            "/backups/yesterday",
            "/backups/yesterday/files",
            "/backups/latest/files/x",
            "/backups/latest/manifest",
            "/jobs/..",
            "/jobs/a/b",
            "/backups/jobs",
            "/console/index.html",
            "/console/app.js/x",
            "/console/../archives",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn prefer_respond_async() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("prefer", v.parse().unwrap());
            prefers_async(&h)
        };
        assert!(with("respond-async"));
        assert!(with("wait=10, Respond-Async"));
        assert!(with("respond-async; wait=5"));
        assert!(!with("return=minimal"));
        assert!(!with("respond-asyncx"));
        assert!(!prefers_async(&HeaderMap::new()));
    }

    #[test]
    fn content_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
