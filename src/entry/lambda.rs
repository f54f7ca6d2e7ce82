//! The Lambda entry: decides what an event is by its shape and hands it to the HTTP edge
//! or the scheduled backup.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use lambda_http::aws_lambda_events::alb::AlbTargetGroupRequest;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use lambda_http::http::{self, HeaderMap, Method};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::http::{self as edge, HttpRequest, HttpResponse};
use crate::app::App;
use crate::wix::CallContext;

/// Why an invocation failed as a whole (it has no HTTP answer to give).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event is not an HTTP request, an EventBridge scheduled event, or a {{\"backup\"|\"restore\"|\"verify\": {{…}}}} object")]
    UnrecognizedEvent,
    #[error("the event looks like an HTTP request from {origin} but cannot be read: {reason}")]
    MalformedHttpEvent { origin: &'static str, reason: String },
    #[error("invalid backup options: {0}")]
    InvalidBackupOptions(String),
    #[error("{0}")]
    CredentialsUnavailable(String),
    #[error("{0}")]
    BackupFailed(String),
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("{0}")]
    RestoreFailed(String),
    #[error("{0}")]
    VerifyFailed(String),
    #[error("the event looks like the job queue's (SQS) but cannot be read: {0}")]
    MalformedJobEvent(String),
    #[error("a job queue message came, but jobs are not configured here (JOB_STATE_MACHINE_ARN and STORAGE_BUCKET)")]
    JobsDisabled,
}

impl EventError {
    /// The `errorType` Lambda reports.
    pub fn error_type(&self) -> &'static str {
        match self {
            EventError::UnrecognizedEvent => "UnrecognizedEvent",
            EventError::MalformedHttpEvent { .. } => "MalformedHttpEvent",
            EventError::InvalidBackupOptions(_) => "InvalidBackupOptions",
            EventError::CredentialsUnavailable(_) => "CredentialsUnavailable",
            EventError::BackupFailed(_) => "BackupFailed",
            EventError::InvalidOptions(_) => "InvalidOptions",
            EventError::RestoreFailed(_) => "RestoreFailed",
            EventError::VerifyFailed(_) => "VerifyFailed",
            EventError::JobsDisabled => "JobsDisabled",
            EventError::MalformedJobEvent(_) => "MalformedJobEvent",
        }
    }
}

impl From<crate::backup::BackupError> for EventError {
    fn from(e: crate::backup::BackupError) -> EventError {
        use crate::backup::BackupError;
        match e {
            BackupError::InvalidOptions(m) => EventError::InvalidBackupOptions(m),
            BackupError::CredentialsUnavailable(m) => EventError::CredentialsUnavailable(m),
            BackupError::Failed(m) => EventError::BackupFailed(m),
        }
    }
}

impl EventError {
    /// A restore's or a verify's failure: bad options, unreadable credentials, or `failed`.
    fn of_operation(e: crate::backup::BackupError, failed: fn(String) -> EventError) -> EventError {
        use crate::backup::BackupError;
        match e {
            BackupError::InvalidOptions(m) => EventError::InvalidOptions(m),
            BackupError::CredentialsUnavailable(m) => EventError::CredentialsUnavailable(m),
            BackupError::Failed(m) => failed(m),
        }
    }
}

impl From<EventError> for Diagnostic {
    fn from(e: EventError) -> Diagnostic {
        Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// The kinds of event the function serves.
#[derive(Debug)]
pub enum EventKind {
    Http(HttpEvent),
    /// A backup: its options, and the time it was scheduled for (EventBridge's `time`, or
    /// `scheduledTime` of a Scheduler input), which makes it a job when jobs run here.
    Schedule(Option<Box<RawValue>>, Option<String>),
    /// Messages of the job queue: steps of jobs.
    JobSteps(Vec<crate::jobs::worker::SqsRecord>),
    /// `{"restore": {…}}`.
    Restore(Box<RawValue>),
    /// `{"verify": {…}}`.
    Verify(Box<RawValue>),
}

/// An HTTP request as one of the AWS services delivers it.
#[derive(Debug)]
pub enum HttpEvent {
    RestV1(Box<ApiGatewayProxyRequest>),
    HttpV2(Box<ApiGatewayV2httpRequest>),
    Alb(Box<AlbTargetGroupRequest>),
}

/// The parts of an HTTP event the edge needs, with the body decoded.
#[derive(Debug)]
pub struct HttpParts {
    pub method: Method,
    pub path: String,
    /// The query's parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpEvent {
    /// Method, path, headers (single- and multi-value merged) and the raw body bytes.
    pub fn into_parts(self) -> Result<HttpParts, EventError> {
        let (method, path, mut headers, extra_headers, body, base64, origin, query) = match self {
            HttpEvent::RestV1(e) => {
                let e = *e;
                // API Gateway hands the parameters decoded.
                let query = query_pairs(
                    &e.multi_value_query_string_parameters,
                    &e.query_string_parameters,
                    false,
                );
                (
                    e.http_method,
                    e.path,
                    e.multi_value_headers,
                    e.headers,
                    e.body,
                    e.is_base64_encoded,
                    "a REST API",
                    query,
                )
            }
            HttpEvent::HttpV2(e) => {
                let e = *e;
                let path = e.raw_path.or(e.request_context.http.path);
                let query = match e.raw_query_string.as_deref() {
                    Some(raw) if !raw.is_empty() => parse_query(raw),
                    _ => query_pairs(&e.query_string_parameters, &e.query_string_parameters, false),
                };
                (
                    e.request_context.http.method,
                    path,
                    e.headers,
                    HeaderMap::new(),
                    e.body,
                    e.is_base64_encoded,
                    "an HTTP API or Function URL",
                    query,
                )
            }
            HttpEvent::Alb(e) => {
                let e = *e;
                // An ALB passes the parameters as the client sent them, still encoded.
                let query = query_pairs(&e.multi_value_query_string_parameters, &e.query_string_parameters, true);
                (
                    e.http_method,
                    e.path,
                    e.multi_value_headers,
                    e.headers,
                    e.body,
                    e.is_base64_encoded,
                    "an ALB",
                    query,
                )
            }
        };
        for (name, value) in extra_headers.iter() {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        let body = match body {
            None => Vec::new(),
            Some(text) if base64 => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| EventError::MalformedHttpEvent {
                    origin,
                    reason: "the body is marked base64 but is not valid base64".to_owned(),
                })?,
            Some(text) => text.into_bytes(),
        };
        Ok(HttpParts {
            method,
            path: path.unwrap_or_default(),
            query,
            headers,
            body,
        })
    }

    fn origin(&self) -> Origin {
        match self {
            HttpEvent::RestV1(_) => Origin::RestV1,
            HttpEvent::HttpV2(e) => Origin::HttpV2 {
                function_url: e
                    .request_context
                    .domain_name
                    .as_deref()
                    .is_some_and(|d| d.contains(".lambda-url.")),
            },
            HttpEvent::Alb(alb) => Origin::Alb {
                multi_value: !alb.multi_value_headers.is_empty(),
            },
        }
    }
}

/// The pairs of a query map (the multi-value one when the event has it), decoded when
/// `encoded`.
fn query_pairs(
    multi: &lambda_http::aws_lambda_events::query_map::QueryMap,
    single: &lambda_http::aws_lambda_events::query_map::QueryMap,
    encoded: bool,
) -> Vec<(String, String)> {
    let map = if multi.is_empty() { single } else { multi };
    map.iter()
        .map(|(k, v)| {
            if encoded {
                (percent_decode(k), percent_decode(v))
            } else {
                (k.to_owned(), v.to_owned())
            }
        })
        .collect()
}

/// `a=1&b=x%20y` as decoded pairs (`+` is a space, as browsers encode forms).
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Just enough of any event to tell what it is, without reading its body.
#[derive(Deserialize)]
struct Probe {
    source: Option<Value>,
    time: Option<Value>,
    #[serde(rename = "scheduledTime")]
    scheduled_time: Option<Value>,
    #[serde(rename = "Records")]
    records: Option<Vec<ProbeRecord>>,
    #[serde(rename = "detail-type")]
    detail_type: Option<Value>,
    /// Present even when `null`, so `{"backup": null}` is refused as a bad backup.
    #[serde(default, deserialize_with = "present")]
    backup: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    restore: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    verify: Option<Box<RawValue>>,
    version: Option<Value>,
    #[serde(rename = "httpMethod")]
    http_method: Option<serde::de::IgnoredAny>,
    #[serde(rename = "requestContext")]
    request_context: Option<ProbeContext>,
    #[serde(rename = "routeKey")]
    route_key: Option<serde::de::IgnoredAny>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct ProbeRecord {
    #[serde(rename = "eventSource")]
    event_source: Option<Value>,
}

#[derive(Deserialize)]
struct SqsEvent {
    #[serde(rename = "Records")]
    records: Vec<crate::jobs::worker::SqsRecord>,
}

#[derive(Deserialize)]
struct ProbeContext {
    elb: Option<serde::de::IgnoredAny>,
    http: Option<serde::de::IgnoredAny>,
}

/// Classifies an event by its shape.
pub fn classify(event: &RawValue) -> Result<EventKind, EventError> {
    let raw = event.get();
    let probe: Probe = match serde_json::from_str(raw) {
        Ok(p) => p,
        Err(_) => return Err(EventError::UnrecognizedEvent),
    };
    let scheduled_time = probe
        .scheduled_time
        .as_ref()
        .or(probe.time.as_ref())
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(records) = &probe.records {
        if !records.is_empty()
            && records
                .iter()
                .all(|r| r.event_source.as_ref().and_then(Value::as_str) == Some("aws:sqs"))
        {
            let event: SqsEvent =
                serde_json::from_str(raw).map_err(|e| EventError::MalformedJobEvent(e.to_string()))?;
            return Ok(EventKind::JobSteps(event.records));
        }
    }
    if let Some(options) = probe.backup {
        if options.get().trim_start().starts_with('{') {
            return Ok(EventKind::Schedule(
                Some(options),
                probe.scheduled_time.as_ref().and_then(Value::as_str).map(str::to_owned),
            ));
        }
        return Err(EventError::InvalidBackupOptions(
            "`backup` must be an object".to_owned(),
        ));
    }
    for (object, kind) in [(probe.restore, "restore"), (probe.verify, "verify")] {
        if let Some(options) = object {
            if !options.get().trim_start().starts_with('{') {
                return Err(EventError::InvalidOptions(format!("`{kind}` must be an object")));
            }
            return Ok(if kind == "restore" {
                EventKind::Restore(options)
            } else {
                EventKind::Verify(options)
            });
        }
    }
    if probe.source.as_ref().and_then(Value::as_str) == Some("aws.events")
        && probe.detail_type.as_ref().and_then(Value::as_str) == Some("Scheduled Event")
    {
        return Ok(EventKind::Schedule(None, scheduled_time));
    }
    let malformed = |origin: &'static str, e: serde_json::Error| EventError::MalformedHttpEvent {
        origin,
        reason: e.to_string(),
    };
    let context = probe.request_context.as_ref();
    if context.is_some_and(|c| c.elb.is_some()) {
        let alb: AlbTargetGroupRequest = serde_json::from_str(raw).map_err(|e| malformed("an ALB", e))?;
        return Ok(EventKind::Http(HttpEvent::Alb(Box::new(alb))));
    }
    let is_v2 = probe.version.as_ref().and_then(Value::as_str) == Some("2.0");
    if is_v2 || context.is_some_and(|c| c.http.is_some()) || probe.route_key.is_some() {
        let v2: ApiGatewayV2httpRequest =
            serde_json::from_str(raw).map_err(|e| malformed("an HTTP API or Function URL", e))?;
        return Ok(EventKind::Http(HttpEvent::HttpV2(Box::new(v2))));
    }
    if probe.http_method.is_some() && context.is_some() {
        let v1: ApiGatewayProxyRequest = serde_json::from_str(raw).map_err(|e| malformed("a REST API", e))?;
        return Ok(EventKind::Http(HttpEvent::RestV1(Box::new(v1))));
    }
    Err(EventError::UnrecognizedEvent)
}

/// Handles one Lambda event; the answer is the Lambda response JSON. Its work is the
/// span `invocation` (an X-Ray subsegment under active tracing), with the request ID.
pub async fn handle_event(app: &App, event: LambdaEvent<Box<RawValue>>) -> Result<Value, EventError> {
    use tracing::Instrument;
    let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
    // Boxed: the handler's future is deep, and its layout must stay within the compiler's
    // query depth.
    Box::pin(handle_event_in_span(app, event)).instrument(span).await
}

async fn handle_event_in_span(app: &App, event: LambdaEvent<Box<RawValue>>) -> Result<Value, EventError> {
    let started = std::time::Instant::now();
    let (payload, context) = event.into_parts();
    tracing::debug!(bytes = payload.get().len(), "event received");
    let kind = classify(&payload);
    // A synchronous caller gives up long before Lambda would: answer within its limit.
    let cap = match &kind {
        Ok(EventKind::Http(event)) => Some(app.config.http_deadline.unwrap_or(event.origin().caller_limit())),
        _ => None,
    };
    let (deadline, respond_by) = deadlines(&context, cap);
    let ctx = CallContext::with_deadlines(deadline, respond_by);
    let request_id = if context.request_id.is_empty() {
        format!("local-{:016x}", fastrand::u64(..))
    } else {
        context.request_id.clone()
    };
    let refused = |e: EventError| {
        tracing::error!(error_type = e.error_type(), error = %e, "refused the event");
        Summary {
            kind: "refused",
            error_type: Some(e.error_type()),
            ..Summary::default()
        }
        .log(&request_id, &ctx, started);
        e
    };
    let kind = kind.map_err(refused)?;
    drop(payload);
    match kind {
        EventKind::Http(event) => {
            let origin = event.origin();
            let parts = event.into_parts().map_err(refused)?;
            let req = HttpRequest {
                method: &parts.method,
                path: &parts.path,
                query: &parts.query,
                headers: &parts.headers,
                body: &parts.body,
            };
            let (response, done) = Box::pin(edge::handle(app, req, &request_id, &ctx)).await;
            Summary {
                kind: "http",
                status: Some(done.status),
                code: done.code,
                file_count: Some(done.file_count),
                duplicates_removed: Some(done.duplicates_removed),
                archives: done.archives,
                private_files: done.private_files,
                failed_files: done.failed_files,
                emailed: done.emailed,
                job_id: done.job_id,
                tally: done.tally,
                ..Summary::default()
            }
            .log(&request_id, &ctx, started);
            Ok(origin.response(response))
        }
        EventKind::JobSteps(records) => {
            let Some(engine) = app.engine.as_ref() else {
                return Err(refused(EventError::JobsDisabled));
            };
            let (response, counts) =
                Box::pin(crate::jobs::worker::handle(app, engine, records, &ctx, &request_id)).await;
            Summary {
                kind: "job",
                steps: Some(counts.steps),
                failed_steps: Some(counts.failed_steps),
                redelivered: Some(counts.redeliver),
                job_id: counts.job_id.clone(),
                step: counts.step.clone(),
                tally: counts.tally,
                ..Summary::default()
            }
            .log(&request_id, &ctx, started);
            Ok(serde_json::to_value(response).unwrap_or_else(|_| json!({"batchItemFailures": []})))
        }
        EventKind::Schedule(options, Some(at)) if app.engine.is_some() => {
            let result = Box::pin(crate::backup::start_job(
                app,
                options.as_deref(),
                &at,
                &request_id,
                &ctx,
            ))
            .await
            .map_err(EventError::from);
            match result {
                Ok(Some(started_job)) => {
                    Summary {
                        kind: "backup",
                        job_id: started_job["jobId"].as_str().map(str::to_owned),
                        ..Summary::default()
                    }
                    .log(&request_id, &ctx, started);
                    Ok(started_job)
                }
                Ok(None) => Box::pin(scheduled_backup(app, options, &request_id, &ctx, started)).await,
                Err(e) => Err(refused(e)),
            }
        }
        EventKind::Schedule(options, _) => Box::pin(scheduled_backup(app, options, &request_id, &ctx, started)).await,
        EventKind::Restore(options) => {
            let result = Box::pin(crate::backup::run_restore(app, &options, &request_id, &ctx))
                .await
                .map_err(|e| EventError::of_operation(e, EventError::RestoreFailed));
            Summary {
                kind: "restore",
                error_type: result.as_ref().err().map(EventError::error_type),
                file_count: result
                    .as_ref()
                    .ok()
                    .and_then(|v| v["selectedFiles"].as_u64())
                    .map(|n| n as usize),
                failed_files: result
                    .as_ref()
                    .ok()
                    .and_then(|v| v["failedFiles"].as_u64())
                    .unwrap_or(0) as usize,
                ..Summary::default()
            }
            .log(&request_id, &ctx, started);
            result
        }
        EventKind::Verify(options) => {
            let result = crate::backup::run_verify(app, &options, &ctx)
                .await
                .map_err(|e| EventError::of_operation(e, EventError::VerifyFailed));
            Summary {
                kind: "verify",
                error_type: result.as_ref().err().map(EventError::error_type),
                file_count: result
                    .as_ref()
                    .ok()
                    .and_then(|v| v["checkedFiles"].as_u64())
                    .map(|n| n as usize),
                ..Summary::default()
            }
            .log(&request_id, &ctx, started);
            result
        }
    }
}

/// A backup run in this invocation (link-only, or stored without jobs).
async fn scheduled_backup(
    app: &App,
    options: Option<Box<RawValue>>,
    request_id: &str,
    ctx: &CallContext,
    started: std::time::Instant,
) -> Result<Value, EventError> {
    // Boxed: a stored backup's future is deep, and the runtime's stack is not.
    let result = Box::pin(crate::backup::run_event(app, options.as_deref(), request_id, ctx))
        .await
        .map_err(EventError::from);
    let counts = result.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
    Summary {
        kind: "backup",
        error_type: result.as_ref().err().map(EventError::error_type),
        listed_files: Some(counts.listed),
        skipped_files: Some(counts.skipped),
        archives: counts.archives,
        private_files: counts.private_files,
        failed_files: counts.failed_files,
        emailed: counts.emailed,
        incomplete: Some(counts.incomplete),
        stored_files: counts.stored_files,
        tally: counts.tally,
        ..Summary::default()
    }
    .log(request_id, ctx, started);
    result.map(|(value, _)| value)
}

/// What one invocation did, for the one summary line it ends with.
#[derive(Debug, Default)]
struct Summary {
    kind: &'static str,
    status: Option<u16>,
    code: Option<&'static str>,
    error_type: Option<&'static str>,
    file_count: Option<usize>,
    duplicates_removed: Option<usize>,
    listed_files: Option<usize>,
    skipped_files: Option<usize>,
    archives: usize,
    private_files: usize,
    failed_files: usize,
    emailed: usize,
    incomplete: Option<bool>,
    stored_files: Option<usize>,
    job_id: Option<String>,
    step: Option<String>,
    steps: Option<usize>,
    failed_steps: Option<usize>,
    redelivered: Option<usize>,
    tally: crate::metrics::Tally,
}

impl Summary {
    /// The summary line, and the invocation's metrics beside it.
    fn log(&self, request_id: &str, ctx: &CallContext, started: std::time::Instant) {
        let duration_ms = started.elapsed().as_millis() as u64;
        let (service, function) = (crate::metrics::service_name(), crate::metrics::function_name());
        let subject = crate::metrics::Subject {
            service: &service,
            function: &function,
            kind: self.kind,
            request_id,
            job_id: self.job_id.as_deref(),
        };
        crate::metrics::emit(&crate::metrics::document(
            &subject,
            &self.tally,
            ctx,
            duration_ms,
            crate::metrics::take_cold_start(),
        ));
        tracing::info!(
            summary = true,
            kind = self.kind,
            request_id,
            ok = self.error_type.is_none(),
            status = self.status,
            code = self.code,
            error_type = self.error_type,
            file_count = self.file_count,
            duplicates_removed = self.duplicates_removed,
            listed_files = self.listed_files,
            skipped_files = self.skipped_files,
            archives = self.archives,
            private_files = self.private_files,
            failed_files = self.failed_files,
            emailed = self.emailed,
            incomplete = self.incomplete,
            stored_files = self.stored_files,
            job_id = self.job_id.as_deref(),
            step = self.step.as_deref(),
            steps = self.steps,
            failed_steps = self.failed_steps,
            redelivered = self.redelivered,
            wix_calls = ctx.calls(),
            wix_retries = ctx.retries(),
            wix_rate_limited = ctx.rate_limited(),
            duration_ms,
            "invocation done"
        );
    }
}

/// The invocation's working deadline — the time left (the Lambda deadline, or `cap` from
/// now when sooner) less a reserve for answering and mailing (a fifth of it, at most 2 s) —
/// and the time the answer must be ready by (the end less a quarter second at most). A
/// Lambda deadline already past when the event arrives is treated as absent.
pub fn deadlines(context: &Context, cap: Option<Duration>) -> (Option<Instant>, Option<Instant>) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let lambda_left = match context.deadline {
        0 => None,
        d if d <= now_ms => {
            tracing::warn!(
                deadline_ms = context.deadline,
                "the invocation deadline has already passed; running without one"
            );
            None
        }
        d => Some(Duration::from_millis(d - now_ms)),
    };
    let remaining = match (lambda_left, cap) {
        (Some(l), Some(c)) => l.min(c),
        (Some(l), None) => l,
        (None, Some(c)) => c,
        (None, None) => return (None, None),
    };
    let reserve = (remaining / 5).min(Duration::from_secs(2));
    let margin = (remaining / 10).min(Duration::from_millis(250));
    let now = Instant::now();
    (Some(now + remaining - reserve), Some(now + remaining - margin))
}

/// Which kind of HTTP event came in, to answer in its shape.
enum Origin {
    RestV1,
    HttpV2 { function_url: bool },
    Alb { multi_value: bool },
}

impl Origin {
    /// How long the caller waits: a Wix site's backend gives up after 14 s (it calls through
    /// the Function URL), API Gateway after 29 s, an ALB after 60 s; a little less of each.
    fn caller_limit(&self) -> Duration {
        Duration::from_secs(match self {
            Origin::HttpV2 { function_url: true } => 12,
            Origin::RestV1 | Origin::HttpV2 { function_url: false } => 28,
            Origin::Alb { .. } => 55,
        })
    }

    fn response(&self, r: HttpResponse) -> Value {
        use lambda_http::aws_lambda_events::alb::AlbTargetGroupResponse;
        use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
        use lambda_http::aws_lambda_events::encodings::Body;
        let mut headers = HeaderMap::new();
        for (name, value) in &r.headers {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                headers.insert(*name, value);
            }
        }
        let status = i64::from(r.status);
        let body = Some(Body::Text(r.body));
        let encoded = match self {
            Origin::RestV1 => {
                let mut out = ApiGatewayProxyResponse::default();
                out.status_code = status;
                out.headers = headers;
                out.body = body;
                serde_json::to_value(out)
            }
            Origin::HttpV2 { .. } => {
                let mut out = ApiGatewayV2httpResponse::default();
                out.status_code = status;
                out.headers = headers;
                out.body = body;
                serde_json::to_value(out)
            }
            Origin::Alb { multi_value } => {
                let mut out = AlbTargetGroupResponse::default();
                out.status_code = status;
                out.status_description = Some(format!(
                    "{} {}",
                    r.status,
                    http::StatusCode::from_u16(r.status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("")
                ));
                if *multi_value {
                    out.multi_value_headers = headers;
                } else {
                    out.headers = headers;
                }
                out.body = body;
                serde_json::to_value(out)
            }
        };
        encoded.unwrap_or_else(|_| json!({"statusCode": 500, "body": ""}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(json: &str) -> Result<EventKind, EventError> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        classify(&raw)
    }

    #[test]
    fn queries_are_decoded() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(
            parse_query("folder=%2FShop%20B&q=le+on&flag&&cursor="),
            pairs(&[("folder", "/Shop B"), ("q", "le on"), ("flag", ""), ("cursor", "")])
        );
        assert_eq!(parse_query("q=caf%C3%A9"), pairs(&[("q", "café")]));
        assert_eq!(parse_query("a=%zz%4"), pairs(&[("a", "%zz%4")]));
        assert!(parse_query("").is_empty());
    }

    #[test]
    fn foreign_events_are_refused() {
        for event in [
            "{}",
            r#"{"foo": 1}"#,
            "[]",
            "42",
            "null",
            r#""text""#,
            r#"{"Records": [{"eventSource": "aws:s3"}]}"#,
            r#"{"source": "aws.events", "detail-type": "Object Created"}"#,
            r#"{"source": "my.app", "detail-type": "Scheduled Event"}"#,
            r#"{"httpMethod": "POST"}"#,
        ] {
            assert!(matches!(kind(event), Err(EventError::UnrecognizedEvent)), "{event}");
        }
    }

    #[test]
    fn malformed_http_events_are_refused() {
        for event in [
            r#"{"version": "2.0", "requestContext": {"http": {"method": 5}}}"#,
            r#"{"httpMethod": 7, "requestContext": {}, "path": "/archives"}"#,
            r#"{"requestContext": {"elb": {"targetGroupArn": 1}}, "httpMethod": "POST"}"#,
        ] {
            assert!(
                matches!(kind(event), Err(EventError::MalformedHttpEvent { .. })),
                "{event}"
            );
        }
    }

    #[test]
    fn schedules() {
        assert!(matches!(
            kind(r#"{"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}"#),
            Ok(EventKind::Schedule(None, None))
        ));
        assert!(matches!(
            kind(r#"{"backup": {"mediaTypes": ["IMAGE"]}}"#),
            Ok(EventKind::Schedule(Some(_), None))
        ));
        assert!(matches!(
            kind(r#"{"backup": 5}"#),
            Err(EventError::InvalidBackupOptions(_))
        ));
    }

    fn context(deadline_in: Option<Duration>) -> Context {
        let mut context = Context::default();
        context.deadline = deadline_in.map_or(0, |d| {
            (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + d).as_millis() as u64
        });
        context
    }

    fn within(at: Option<Instant>, expected: Duration) -> bool {
        let left = at.unwrap().saturating_duration_since(Instant::now());
        left <= expected && left + Duration::from_millis(200) >= expected
    }

    #[test]
    fn the_caller_limit_caps_the_lambda_deadline() {
        let (work, answer) = deadlines(&context(Some(Duration::from_secs(60))), Some(Duration::from_secs(12)));
        assert!(within(work, Duration::from_secs(10)), "{work:?}");
        assert!(within(answer, Duration::from_millis(11_750)), "{answer:?}");
        // The Lambda deadline still wins when it is sooner.
        let (work, _) = deadlines(&context(Some(Duration::from_secs(5))), Some(Duration::from_secs(12)));
        assert!(within(work, Duration::from_secs(4)), "{work:?}");
        // A local runtime's deadline in the past counts as none; the cap still holds.
        let (work, _) = deadlines(&context(None), Some(Duration::from_secs(12)));
        assert!(within(work, Duration::from_secs(10)), "{work:?}");
        assert_eq!(deadlines(&context(None), None), (None, None));
    }

    #[test]
    fn callers_wait_as_long_as_their_service_does() {
        let origin = |json: &str| match kind(json) {
            Ok(EventKind::Http(e)) => e.origin().caller_limit().as_secs(),
            other => panic!("{other:?}"),
        };
        let v2 = |domain: &str| {
            format!(
                r#"{{"version": "2.0", "rawPath": "/archives", "requestContext": {{"domainName": "{domain}", "http": {{"method": "POST", "path": "/archives"}}}}}}"#
            )
        };
        assert_eq!(origin(&v2("abc.lambda-url.us-east-1.on.aws")), 12);
        assert_eq!(origin(&v2("abc.execute-api.us-east-1.amazonaws.com")), 28);
        assert_eq!(origin(include_str!("../../events/rest-api-archives.json")), 28);
        assert_eq!(origin(include_str!("../../events/alb-archives.json")), 55);
        assert_eq!(origin(include_str!("../../events/function-url-archives.json")), 12);
        assert_eq!(origin(include_str!("../../events/http-api-archives.json")), 28);
    }
}
