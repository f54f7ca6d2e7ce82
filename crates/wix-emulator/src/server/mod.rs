//! HTTP serving: the connection loop, the call log, and the order in which the rate limit,
//! faults, latency and handlers apply to each request.

mod archives;
mod auth;
mod downloads;
mod file_ids;
mod files;
mod folders;
mod imports;
mod limiter;
mod paging;
mod respond;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use downloads::DownloadStats;
pub use imports::{ImportOutcome, ImportRecord};
pub use limiter::LimiterStats;

use crate::faults::{fault_label, roll_random, DownloadFault, FaultQueues};
use crate::library::hex;
use crate::store::Store;
use crate::{CallRecord, EmulatorConfig, Fault, RandomFaults};
use respond::{app_error, empty, full, status_code, status_code_name, too_many, BoxError, Resp};

struct Inner {
    config: EmulatorConfig,
    calls: Vec<(u64, CallRecord)>,
    next_seq: u64,
    faults: FaultQueues<Fault>,
    download_faults: FaultQueues<DownloadFault>,
    random: Option<(RandomFaults, fastrand::Rng)>,
    limiter: limiter::Limiter,
    tokens: HashMap<String, auth::TokenInfo>,
    archives: HashMap<String, archives::ArchiveLink>,
    file_links: HashMap<String, files::FileLink>,
    imports: Vec<ImportRecord>,
    rng: fastrand::Rng,
}

/// Everything the handlers share. Lock order: `store` may be held while taking `inner`, never the reverse.
pub(crate) struct State {
    pub(crate) base_url: String,
    started: Instant,
    inner: Mutex<Inner>,
    store: Mutex<Store>,
    counters: downloads::Counters,
}

impl State {
    pub(crate) fn new(mut config: EmulatorConfig, base_url: String) -> State {
        let library = std::mem::take(&mut config.library);
        let seed = crate::library::fnv64(config.site_id.as_bytes());
        State {
            base_url,
            started: Instant::now(),
            store: Mutex::new(Store::new(library, seed)),
            counters: downloads::Counters::default(),
            inner: Mutex::new(Inner {
                config,
                calls: Vec::new(),
                next_seq: 0,
                faults: FaultQueues::default(),
                download_faults: FaultQueues::default(),
                random: None,
                limiter: limiter::Limiter::default(),
                tokens: HashMap::new(),
                archives: HashMap::new(),
                file_links: HashMap::new(),
                imports: Vec::new(),
                rng: fastrand::Rng::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take every later call down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn config(&self) -> EmulatorConfig {
        self.lock().config.clone()
    }

    pub(crate) fn with_config(&self, f: impl FnOnce(&mut EmulatorConfig)) {
        f(&mut self.lock().config);
    }

    pub(crate) fn calls(&self, api_only: bool) -> Vec<CallRecord> {
        self.lock()
            .calls
            .iter()
            .filter(|(_, c)| !api_only || is_api_path(&c.path))
            .map(|(_, c)| c.clone())
            .collect()
    }

    pub(crate) fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    pub(crate) fn push_faults(&self, path_contains: &str, faults: Vec<Fault>) {
        self.lock().faults.push(path_contains, faults);
    }

    pub(crate) fn push_download_faults(&self, path_contains: &str, faults: Vec<DownloadFault>) {
        self.lock().download_faults.push(path_contains, faults);
    }

    pub(crate) fn set_random_faults(&self, faults: Option<RandomFaults>) {
        self.lock().random = faults.map(|f| {
            let rng = fastrand::Rng::with_seed(f.seed);
            (f, rng)
        });
    }

    pub(crate) fn revoke_tokens(&self, revoke: bool) {
        auth::revoke_tokens(self, revoke);
    }

    pub(crate) fn archive_file_ids(&self, download_url: &str) -> Option<Vec<String>> {
        let (_, rest) = download_url.split_once("/_emulator/archives/")?;
        let token = rest.split(['?', '#']).next()?;
        self.lock().archives.get(token).map(|a| a.ids.clone())
    }

    pub(crate) fn limiter_stats(&self, reset: bool) -> LimiterStats {
        let mut inner = self.lock();
        let stats = inner.limiter.stats();
        if reset {
            inner.limiter.reset_stats();
        }
        stats
    }

    pub(crate) fn download_stats(&self, reset: bool) -> DownloadStats {
        self.counters.read(reset)
    }

    pub(crate) fn imports(&self) -> Vec<ImportRecord> {
        self.lock().imports.clone()
    }

    pub(crate) fn site_id(&self) -> String {
        self.lock().config.site_id.clone()
    }

    /// The file's descriptor exactly as the API would send it.
    pub(crate) fn file_descriptor(&self, id: &str) -> Option<Value> {
        let site = self.site_id();
        let store = self.store();
        let slot = store.lookup(id)?;
        Some(files::file_json(&store.view(slot), &site))
    }

    /// Logs a call that arrived at `arrival` (its headers read).
    fn record(&self, mut call: CallRecord, arrival: Instant) -> u64 {
        call.at_ms = arrival.saturating_duration_since(self.started).as_millis() as u64;
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.calls.push((seq, call));
        seq
    }

    fn finish(&self, seq: u64, status: u16, fault: Option<String>, auth_ok: Option<bool>) {
        let mut inner = self.lock();
        if let Some((_, call)) = inner.calls.iter_mut().rev().find(|(s, _)| *s == seq) {
            call.status = status;
            if fault.is_some() {
                call.fault = fault;
            }
            if let Some(ok) = auth_ok {
                call.auth_ok = ok;
            }
        }
    }

    /// The rate limit, then a queued fault, then a random one; `None` means answer normally.
    fn decide_fault(&self, path: &str, now: Instant) -> Option<(Fault, String)> {
        let mut inner = self.lock();
        let limit = inner.config.rate_limit;
        if let Err(retry_after) = inner.limiter.check(limit, now) {
            return Some((Fault::TooManyRequests { retry_after }, "rate-limit".into()));
        }
        let queued = inner.faults.pop(path).map(|f| {
            let label = fault_label(&f);
            (f, label)
        });
        let fault = queued.or_else(|| roll_random(inner.random.as_mut()?));
        let answered_429 = matches!(
            &fault,
            Some((Fault::TooManyRequests { .. }, _))
                | Some((Fault::Status(429), _))
                | Some((Fault::StatusEmptyBody(429), _))
                | Some((Fault::Body { status: 429, .. }, _))
        );
        if !answered_429 {
            inner.limiter.commit(now);
        }
        fault
    }

    fn request_id(&self) -> String {
        let mut inner = self.lock();
        hex(&mut inner.rng, 32)
    }

    /// A random token for links, from the same generator as request ids.
    fn token(&self, len: usize) -> String {
        let mut inner = self.lock();
        hex(&mut inner.rng, len)
    }
}

fn is_api_path(path: &str) -> bool {
    path.starts_with("/site-media/") || path.starts_with("/oauth2/")
}

pub(crate) async fn serve(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .max_buf_size(1 << 20)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        }
    }
}

/// The emulator's control routes, for breaking a running emulator's library from outside
/// (`archiver-local break`): `POST /_emulator/control/delete` and `…/change` with
/// `{"count": n, "seed": s}` delete, or change the content of, `n` random READY files and
/// answer `{"files": [{"id", "displayName", "parentFolderId"}]}`.
fn control(state: &State, method: &Method, path: &str, body: &[u8]) -> Option<Resp> {
    let action = path.strip_prefix("/_emulator/control/")?;
    if method != Method::POST {
        return Some(respond::method_not_allowed(&Method::POST));
    }
    let args: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let count = args.get("count").and_then(Value::as_u64).unwrap_or(1) as usize;
    let seed = args.get("seed").and_then(Value::as_u64).unwrap_or(1);
    let mut store = state.store();
    let library = store.snapshot();
    let mut ready: Vec<&crate::FileRecord> = library
        .files
        .iter()
        .filter(|f| f.state == "OK" && f.operation_status == "READY")
        .collect();
    fastrand::Rng::with_seed(seed).shuffle(&mut ready);
    let chosen: Vec<&crate::FileRecord> = ready.into_iter().take(count).collect();
    for f in &chosen {
        match action {
            "delete" => {
                store.delete_file(&f.id, false);
            }
            "change" => {
                store.change_content(&f.id);
            }
            _ => return Some(respond::not_found_route(path)),
        }
    }
    let files: Vec<Value> = chosen
        .iter()
        .map(|f| json!({"id": f.id, "displayName": f.display_name, "parentFolderId": f.parent_folder_id}))
        .collect();
    Some(respond::json_resp(200, &json!({ "files": files })))
}

/// The resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Returning `Err` makes hyper close the connection without writing a response.
async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, BoxError> {
    let arrival = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let body = req.into_body().collect().await?.to_bytes();
    let api = is_api_path(&path);

    let file_ids = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("fileIds")?.as_array().map(Vec::len))
        .unwrap_or(0);
    let auth_ok = if path.starts_with("/site-media/") {
        auth::check(&state, &headers).is_ok()
    } else {
        !api
    };
    let seq = state.record(
        CallRecord {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            status: 0,
            fault: None,
            file_ids,
            at_ms: 0,
            auth_ok,
        },
        arrival,
    );

    if let Some(resp) = control(&state, &method, &path, &body) {
        let resp = with_request_id(&state, resp);
        state.finish(seq, resp.status().as_u16(), None, None);
        return Ok(resp);
    }
    if !api {
        let (resp, fault) = downloads::answer(&state, &method, &path, &query);
        let resp = with_request_id(&state, resp);
        state.finish(seq, resp.status().as_u16(), fault, None);
        return Ok(resp);
    }

    let fault = state.decide_fault(&path, arrival);
    let latency = state.lock().config.latency;
    if let Some((_, label)) = &fault {
        state.finish(seq, 0, Some(label.clone()), None);
    }
    // The latency is Wix's answer time, counted from the request's arrival: the time this
    // emulator takes to read and answer it stands in for Wix's own work, which is not done
    // on the caller's machine, so it is inside the latency, not added to it.
    let answer_at = arrival + latency;
    // tokio's timer rounds a deadline up to its next millisecond tick and fires it on the
    // driver's next turn; asking for a millisecond less puts the answer at the latency on
    // average instead of about a millisecond past it.
    let wake_at = answer_at
        .checked_sub(TIMER_TICK)
        .filter(|_| latency > TIMER_TICK)
        .unwrap_or(answer_at);
    if fault.is_some() && !latency.is_zero() {
        tokio::time::sleep_until(wake_at.into()).await;
    }
    let resp = match fault.map(|(f, _)| f) {
        Some(Fault::Drop) => return Err("connection dropped by a fault".into()),
        Some(Fault::Hang(d)) | Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(Fault::Status(status)) => Some(*app_error(
            status,
            status_code_name(status),
            "fault injected by the emulator",
            None,
        )),
        Some(Fault::StatusEmptyBody(status)) => Some(empty(status)),
        Some(Fault::TooManyRequests { retry_after }) => Some(too_many(retry_after)),
        Some(Fault::Body {
            status,
            content_type,
            body,
        }) => Some(
            Response::builder()
                .status(status_code(status))
                .header(CONTENT_TYPE, content_type)
                .body(full(Bytes::from(body)))
                .unwrap_or_else(|_| empty(500)),
        ),
        None => None,
    };
    let (resp, auth) = match resp {
        Some(resp) => (resp, None),
        None => {
            let (resp, auth) = routes::dispatch(&state, &method, &path, &query, &headers, &body);
            (resp, Some(auth))
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep_until(wake_at.into()).await;
    }
    let resp = with_request_id(&state, resp);
    state.finish(seq, resp.status().as_u16(), None, auth);
    Ok(resp)
}

fn with_request_id(state: &State, mut resp: Resp) -> Resp {
    if let Ok(value) = HeaderValue::from_str(&state.request_id()) {
        resp.headers_mut().insert("x-wix-request-id", value);
    }
    resp
}
