//! HTTP serving, routing, auth, faults and the Media Manager handlers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Cursor, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::library::{fnv64, hex, rfc3339, MEDIA_ROOT, TRASH_ROOT, VISITOR_UPLOADS};
use crate::{
    file_content, normalize_file_id, CallRecord, EmulatorConfig, Fault, FileRecord, Folder, Library, PrivateInArchive,
    RandomFaults, UnknownIds,
};

type Resp = Response<Full<Bytes>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// An error answer, boxed because a whole response makes `Result` needlessly large.
type Failure = Box<Resp>;

const MAX_FILE_IDS: usize = 1000;
const MAX_ID_CHARS: usize = 1000;
const MAX_GET_FILES: usize = 100;
const MAX_FOLDER_ARCHIVE: usize = 1000;
const DEFAULT_PAGE: usize = 50;
const WINDOW: Duration = Duration::from_secs(60);
/// Base of the deterministic created/updated dates (2022-01-01).
const DATES_FROM: u64 = 1_640_995_200;

struct TokenInfo {
    expires: Instant,
    revoked: bool,
}

struct FileLink {
    id: String,
    expires_unix: u64,
    file_name: Option<String>,
    inline: bool,
}

struct Inner {
    config: EmulatorConfig,
    calls: Vec<(u64, CallRecord)>,
    next_seq: u64,
    queued: Vec<(String, VecDeque<Fault>)>,
    random: Option<(RandomFaults, fastrand::Rng)>,
    window: VecDeque<Instant>,
    tokens: HashMap<String, TokenInfo>,
    archives: HashMap<String, Vec<String>>,
    file_links: HashMap<String, FileLink>,
    rng: fastrand::Rng,
}

/// Everything the handlers share; the library never changes after start.
pub(crate) struct State {
    pub(crate) base_url: String,
    pub(crate) library: Library,
    started: Instant,
    file_index: HashMap<String, usize>,
    folder_index: HashMap<String, usize>,
    /// The special root each file's folder chain leads to, if any.
    file_roots: Vec<Option<&'static str>>,
    inner: Mutex<Inner>,
}

impl State {
    pub(crate) fn new(mut config: EmulatorConfig, base_url: String) -> State {
        let library = std::mem::take(&mut config.library);
        let file_index = library
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id.clone(), i))
            .collect();
        let folder_index: HashMap<String, usize> = library
            .folders
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id.clone(), i))
            .collect();
        let file_roots = library
            .files
            .iter()
            .map(|f| root_of(&library, &folder_index, &f.parent_folder_id))
            .collect();
        State {
            base_url,
            library,
            started: Instant::now(),
            file_index,
            folder_index,
            file_roots,
            inner: Mutex::new(Inner {
                config,
                calls: Vec::new(),
                next_seq: 0,
                queued: Vec::new(),
                random: None,
                window: VecDeque::new(),
                tokens: HashMap::new(),
                archives: HashMap::new(),
                file_links: HashMap::new(),
                rng: fastrand::Rng::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take every later call down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
        let mut inner = self.lock();
        match inner.queued.iter_mut().find(|(p, _)| p == path_contains) {
            Some((_, queue)) => queue.extend(faults),
            None => inner.queued.push((path_contains.to_string(), faults.into())),
        }
    }

    pub(crate) fn set_random_faults(&self, faults: Option<RandomFaults>) {
        self.lock().random = faults.map(|f| {
            let rng = fastrand::Rng::with_seed(f.seed);
            (f, rng)
        });
    }

    pub(crate) fn revoke_tokens(&self, revoke: bool) {
        let now = Instant::now();
        for token in self.lock().tokens.values_mut() {
            if revoke {
                token.revoked = true;
            } else {
                token.expires = now;
            }
        }
    }

    pub(crate) fn archive_file_ids(&self, download_url: &str) -> Option<Vec<String>> {
        let (_, rest) = download_url.split_once("/_emulator/archives/")?;
        let token = rest.split(['?', '#']).next()?;
        self.lock().archives.get(token).cloned()
    }

    fn record(&self, mut call: CallRecord) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        call.at_ms = self.started.elapsed().as_millis() as u64;
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
        while inner.window.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            inner.window.pop_front();
        }
        if let Some(limit) = inner.config.rate_limit {
            if inner.window.len() >= limit.per_minute as usize {
                let retry_after = limit.retry_after.then(|| match inner.window.front() {
                    Some(oldest) => {
                        let left = WINDOW.saturating_sub(now.duration_since(*oldest));
                        left.as_secs_f64().ceil().max(1.0) as u64
                    }
                    None => 60,
                });
                return Some((Fault::TooManyRequests { retry_after }, "rate-limit".into()));
            }
        }
        let queued = inner
            .queued
            .iter_mut()
            .find(|(p, q)| !q.is_empty() && path.contains(p.as_str()))
            .and_then(|(_, q)| q.pop_front())
            .map(|f| {
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
            inner.window.push_back(now);
        }
        fault
    }

    fn request_id(&self) -> String {
        let mut inner = self.lock();
        hex(&mut inner.rng, 32)
    }

    fn file(&self, id: &str) -> Option<&FileRecord> {
        self.file_index.get(id).map(|&i| &self.library.files[i])
    }

    fn folder(&self, id: &str) -> Option<&Folder> {
        self.folder_index.get(id).map(|&i| &self.library.folders[i])
    }
}

fn root_of(library: &Library, folder_index: &HashMap<String, usize>, parent: &str) -> Option<&'static str> {
    let mut current = parent;
    // A folder cycle in a hand-made library must not hang the emulator.
    for _ in 0..=library.folders.len() {
        match current {
            MEDIA_ROOT => return Some(MEDIA_ROOT),
            TRASH_ROOT => return Some(TRASH_ROOT),
            VISITOR_UPLOADS => return Some(VISITOR_UPLOADS),
            id => current = &library.folders[*folder_index.get(id)?].parent_folder_id,
        }
    }
    None
}

fn is_api_path(path: &str) -> bool {
    path.starts_with("/site-media/") || path.starts_with("/oauth2/")
}

fn fault_label(fault: &Fault) -> String {
    match fault {
        Fault::Status(s) => s.to_string(),
        Fault::StatusEmptyBody(s) => format!("{s}-empty"),
        Fault::TooManyRequests { .. } => "429".into(),
        Fault::Hang(_) => "hang".into(),
        Fault::Delay(_) => "delay".into(),
        Fault::Drop => "drop".into(),
        Fault::Body { status, .. } => format!("body-{status}"),
    }
}

fn roll_random((cfg, rng): &mut (RandomFaults, fastrand::Rng)) -> Option<(Fault, String)> {
    let roll = rng.f64();
    let mut edge = cfg.p_429;
    if roll < edge {
        let retry_after = rng.bool().then_some(1);
        return Some((Fault::TooManyRequests { retry_after }, "429".into()));
    }
    edge += cfg.p_5xx;
    if roll < edge {
        let status = [500, 503, 504][rng.usize(..3)];
        let fault = if rng.bool() {
            Fault::Status(status)
        } else {
            Fault::StatusEmptyBody(status)
        };
        let label = fault_label(&fault);
        return Some((fault, label));
    }
    edge += cfg.p_drop;
    if roll < edge {
        return Some((Fault::Drop, "drop".into()));
    }
    edge += cfg.p_hang;
    if roll < edge {
        return Some((Fault::Hang(cfg.hang), "hang".into()));
    }
    edge += cfg.p_malformed;
    if roll < edge {
        let fault = Fault::Body {
            status: 200,
            content_type: "application/json".into(),
            body: r#"{"downloadUrl": "htt"#.into(),
        };
        return Some((fault, "malformed".into()));
    }
    None
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
                let state = state.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
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
        check_auth(&state, &headers).is_ok()
    } else {
        !api
    };
    let seq = state.record(CallRecord {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        status: 0,
        fault: None,
        file_ids,
        at_ms: 0,
        auth_ok,
    });

    if !api {
        let resp = with_request_id(&state, download(&state, &method, &path, &query));
        state.finish(seq, resp.status().as_u16(), None, None);
        return Ok(resp);
    }

    let fault = state.decide_fault(&path, arrival);
    let latency = state.lock().config.latency;
    if let Some((_, label)) = &fault {
        state.finish(seq, 0, Some(label.clone()), None);
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
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
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_else(|_| empty(500)),
        ),
        None => None,
    };
    let (resp, auth) = match resp {
        Some(resp) => (resp, None),
        None => {
            let (resp, auth) = route(&state, &method, &path, &query, &headers, &body);
            (resp, Some(auth))
        }
    };
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

// ---- responses -----------------------------------------------------------

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json_resp(status: u16, value: &Value) -> Resp {
    Response::builder()
        .status(status_code(status))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap_or_else(|_| empty(500))
}

fn empty(status: u16) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status_code(status);
    resp
}

fn app_error(status: u16, code: &str, description: &str, data: Option<Value>) -> Failure {
    Box::new(json_resp(
        status,
        &json!({
            "message": description,
            "details": {"applicationError": {
                "code": code,
                "description": description,
                "data": data.unwrap_or_else(|| json!({})),
            }},
        }),
    ))
}

fn validation_error(field: &str, description: &str, rule: &str) -> Failure {
    Box::new(json_resp(
        400,
        &json!({
            "message": format!("INVALID_ARGUMENT: {field}: {description}"),
            "details": {"validationError": {"fieldViolations": [{
                "field": field,
                "description": description,
                "violatedRule": rule,
                "ruleName": rule,
            }]}},
        }),
    ))
}

fn too_many(retry_after: Option<u64>) -> Resp {
    let mut resp = json_resp(
        429,
        &json!({
            "message": "Too many requests",
            "details": {"applicationError": {"code": "TOO_MANY_REQUESTS", "description": "Too many requests"}},
        }),
    );
    if let Some(secs) = retry_after {
        resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
    }
    resp
}

fn not_found_route(path: &str) -> Resp {
    *app_error(404, "NOT_FOUND", &format!("no route for {path}"), None)
}

fn method_not_allowed(allowed: &Method) -> Resp {
    let mut resp = *app_error(405, "METHOD_NOT_ALLOWED", "method not allowed", None);
    if let Ok(value) = HeaderValue::from_str(allowed.as_str()) {
        resp.headers_mut().insert("allow", value);
    }
    resp
}

fn status_code_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        428 => "FAILED_PRECONDITION",
        429 => "TOO_MANY_REQUESTS",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

// ---- auth ----------------------------------------------------------------

fn check_auth(state: &State, headers: &HeaderMap) -> Result<(), Failure> {
    let forbidden = |why: &str| app_error(403, "FORBIDDEN", why, None);
    let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(forbidden("missing Authorization header"));
    };
    let site = headers.get("wix-site-id").and_then(|v| v.to_str().ok());
    let inner = state.lock();
    if !inner.config.api_key.is_empty() && auth == inner.config.api_key {
        return if site == Some(inner.config.site_id.as_str()) {
            Ok(())
        } else {
            Err(forbidden("wix-site-id header missing or not this site"))
        };
    }
    match inner.tokens.get(auth) {
        Some(token) if token.revoked || Instant::now() >= token.expires => {
            Err(app_error(401, "UNAUTHORIZED", "access token expired or revoked", None))
        }
        Some(_) => Ok(()),
        None => Err(forbidden("not authorized to manage this site's media")),
    }
}

// ---- routing -------------------------------------------------------------

enum Route {
    Token,
    GenerateDownloadUrl,
    GenerateFileDownloadUrl,
    Search,
    ListFiles,
    GetFiles,
    GetFileById,
    ListFolders,
    GetFolder(String),
    FolderDownload(String),
}

fn match_route(path: &str) -> Option<(Route, Method)> {
    let route = match path {
        "/oauth2/token" => (Route::Token, Method::POST),
        "/site-media/v1/files/generate-download-url" => (Route::GenerateDownloadUrl, Method::POST),
        "/site-media/v1/files/generate-file-download-url" => (Route::GenerateFileDownloadUrl, Method::POST),
        "/site-media/v1/files/search" => (Route::Search, Method::POST),
        "/site-media/v1/files" => (Route::ListFiles, Method::GET),
        "/site-media/v1/files/get-files" => (Route::GetFiles, Method::POST),
        "/site-media/v1/files/get-file-by-id" => (Route::GetFileById, Method::GET),
        "/site-media/v1/folders" => (Route::ListFolders, Method::GET),
        _ => {
            let rest = path.strip_prefix("/site-media/v1/folders/")?;
            match rest.split_once('/') {
                None if !rest.is_empty() => (Route::GetFolder(percent_decode(rest)), Method::GET),
                Some((id, "generate-download-url")) if !id.is_empty() => {
                    (Route::FolderDownload(percent_decode(id)), Method::POST)
                }
                _ => return None,
            }
        }
    };
    Some(route)
}

/// The answer and whether the credentials were accepted.
fn route(state: &State, method: &Method, path: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> (Resp, bool) {
    let Some((route, allowed)) = match_route(path) else {
        return (not_found_route(path), false);
    };
    if method != allowed {
        return (method_not_allowed(&allowed), false);
    }
    if matches!(route, Route::Token) {
        return token(state, body);
    }
    if let Err(resp) = check_auth(state, headers) {
        return (*resp, false);
    }
    let query = parse_query(query);
    let result = match route {
        Route::Token => Err(Box::new(empty(500))),
        Route::GenerateDownloadUrl => parse_body(body).and_then(|b| generate_download_url(state, &b)),
        Route::GenerateFileDownloadUrl => parse_body(body).and_then(|b| generate_file_download_url(state, &b)),
        Route::Search => parse_body(body).and_then(|b| search(state, &b)),
        Route::ListFiles => list_files(state, &query),
        Route::GetFiles => parse_body(body).and_then(|b| get_files(state, &b)),
        Route::GetFileById => get_file_by_id(state, &query),
        Route::ListFolders => list_folders(state, &query),
        Route::GetFolder(id) => match state.folder(&id) {
            Some(folder) => Ok(json_resp(200, &json!({ "folder": folder_json(folder) }))),
            None => Err(not_found("folder", &id)),
        },
        Route::FolderDownload(id) => folder_download(state, &id),
    };
    (result.unwrap_or_else(|e| *e), true)
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(validation_error("body", "must be a JSON object", "TYPE")),
        Err(e) => Err(validation_error("body", &format!("malformed JSON: {e}"), "FORMAT")),
    }
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex_digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn not_found(kind: &str, id: &str) -> Failure {
    app_error(
        404,
        "RESOURCE_NOT_FOUND",
        &format!("{kind} {id} not found"),
        Some(json!({ "id": id })),
    )
}

// ---- oauth ---------------------------------------------------------------

fn token(state: &State, body: &[u8]) -> (Resp, bool) {
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(resp) => return (*resp, false),
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        let resp = app_error(400, "INVALID_GRANT_TYPE", "grant_type must be client_credentials", None);
        return (*resp, false);
    }
    for name in ["client_id", "client_secret", "instance_id"] {
        if field(name).is_empty() {
            return (*validation_error(name, "is required", "REQUIRED_FIELD"), false);
        }
    }
    let mut inner = state.lock();
    let accepted = inner.config.app.as_ref().is_some_and(|app| {
        app.app_id == field("client_id")
            && app.app_secret == field("client_secret")
            && app.instance_id == field("instance_id")
    });
    if !accepted {
        drop(inner);
        let resp = app_error(
            401,
            "INVALID_CLIENT_CREDENTIALS",
            "client_id, client_secret or instance_id not accepted",
            None,
        );
        return (*resp, false);
    }
    let ttl = inner.config.token_ttl_seconds;
    let access_token = format!("OauthNG.JWS.{}", hex(&mut inner.rng, 64));
    inner.tokens.insert(
        access_token.clone(),
        TokenInfo {
            expires: Instant::now() + Duration::from_secs(ttl),
            revoked: false,
        },
    );
    drop(inner);
    let resp = json_resp(
        200,
        &json!({"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}),
    );
    (resp, true)
}

// ---- files ---------------------------------------------------------------

/// Reads `fileIds` as 1..=max strings of at most MAX_ID_CHARS characters.
fn file_id_list(body: &Map<String, Value>, max: usize) -> Result<Vec<String>, Failure> {
    let list = match body.get("fileIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(validation_error("fileIds", "must be an array", "TYPE")),
    };
    if list.is_empty() {
        return Err(validation_error("fileIds", "must have at least 1 entry", "MIN_SIZE"));
    }
    if list.len() > max {
        return Err(validation_error(
            "fileIds",
            &format!("must have at most {max} entries"),
            "MAX_SIZE",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| match v.as_str() {
            Some(s) if s.chars().count() > MAX_ID_CHARS => Err(validation_error(
                &format!("fileIds[{i}]"),
                &format!("must be at most {MAX_ID_CHARS} characters"),
                "MAX_LENGTH",
            )),
            Some(s) => Ok(s.to_string()),
            None => Err(validation_error(&format!("fileIds[{i}]"), "must be a string", "TYPE")),
        })
        .collect()
}

fn generate_download_url(state: &State, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let raw = file_id_list(body, MAX_FILE_IDS)?;
    let mut seen = HashSet::new();
    let ids: Vec<String> = raw
        .iter()
        .map(|s| normalize_file_id(s))
        .filter(|id| seen.insert(id.clone()))
        .collect();
    let (unknown_ids, private_in_archive) = {
        let inner = state.lock();
        (inner.config.unknown_ids, inner.config.private_in_archive)
    };
    let unknown: Vec<&String> = ids.iter().filter(|id| state.file(id).is_none()).collect();
    if !unknown.is_empty() && unknown_ids == UnknownIds::Reject {
        return Err(app_error(
            400,
            "RESOURCE_NOT_FOUND",
            &format!("{} of the files were not found", unknown.len()),
            Some(json!({ "fileIds": unknown })),
        ));
    }
    let ids: Vec<String> = ids.iter().filter(|id| state.file(id).is_some()).cloned().collect();
    archive_link(state, ids, private_in_archive)
}

fn archive_link(state: &State, ids: Vec<String>, private_in_archive: PrivateInArchive) -> Result<Resp, Failure> {
    let private: Vec<&String> = ids
        .iter()
        .filter(|id| state.file(id).is_some_and(|f| f.private))
        .collect();
    if !private.is_empty() && private_in_archive == PrivateInArchive::Reject {
        return Err(app_error(
            403,
            "PRIVATE_FILE",
            "private files cannot be put into a download archive",
            Some(json!({ "fileIds": private })),
        ));
    }
    let token = {
        let mut inner = state.lock();
        let token = hex(&mut inner.rng, 40);
        inner.archives.insert(token.clone(), ids);
        token
    };
    let url = format!("{}/_emulator/archives/{token}", state.base_url);
    Ok(json_resp(200, &json!({ "downloadUrl": url })))
}

fn generate_file_download_url(state: &State, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let raw = match body.get("fileId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(validation_error("fileId", "is required", "REQUIRED_FIELD"))
        }
        Some(_) => return Err(validation_error("fileId", "must be a string", "TYPE")),
    };
    if raw.chars().count() > MAX_ID_CHARS {
        return Err(validation_error(
            "fileId",
            "must be at most 1000 characters",
            "MAX_LENGTH",
        ));
    }
    let minutes = match body.get("expirationInMinutes") {
        None | Some(Value::Null) => 600,
        Some(v) => match v.as_u64().or_else(|| v.as_str()?.parse().ok()) {
            Some(m) if (1..=525_600).contains(&m) => m,
            _ => {
                return Err(validation_error(
                    "expirationInMinutes",
                    "must be between 1 and 525600",
                    "RANGE",
                ))
            }
        },
    };
    let file_name = match body.get("downloadFileName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 100 => Some(s.clone()),
        Some(_) => {
            return Err(validation_error(
                "downloadFileName",
                "must be a string of at most 100 characters",
                "MAX_LENGTH",
            ))
        }
    };
    let inline = match body.get("contentDisposition").and_then(Value::as_str) {
        None | Some("ATTACHMENT") => false,
        Some("INLINE") => true,
        Some(_) => {
            return Err(validation_error(
                "contentDisposition",
                "must be ATTACHMENT or INLINE",
                "ENUM",
            ))
        }
    };
    let asset_keys: Vec<String> = match body.get("assetKeys") {
        None | Some(Value::Null) => vec!["src".into()],
        Some(Value::Array(keys)) if keys.is_empty() => vec!["src".into()],
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| match k.as_str() {
                Some("src") => Ok("src".to_string()),
                _ => Err(app_error(
                    400,
                    "INVALID_ASSET_KEY",
                    "only the asset key src exists for this file",
                    Some(json!({ "assetKey": k })),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(validation_error("assetKeys", "must be an array", "TYPE")),
    };
    let id = normalize_file_id(&raw);
    if state.file(&id).is_none() {
        return Err(not_found("file", &id));
    }
    let expires_unix = unix_now() + minutes * 60;
    let mut urls = Vec::new();
    let mut inner = state.lock();
    for key in asset_keys {
        let token = hex(&mut inner.rng, 32);
        inner.file_links.insert(
            token.clone(),
            FileLink {
                id: id.clone(),
                expires_unix,
                file_name: file_name.clone(),
                inline,
            },
        );
        let url = format!(
            "{}/_emulator/files/{id}?token={token}&expires={expires_unix}",
            state.base_url
        );
        urls.push(json!({ "url": url, "assetKey": key }));
    }
    drop(inner);
    Ok(json_resp(200, &json!({ "downloadUrls": urls })))
}

fn file_json(file: &FileRecord, site_id: &str) -> Value {
    let h = fnv64(file.id.as_bytes());
    let created = DATES_FROM + h % (3 * 365 * 86_400);
    let updated = created + (h >> 32) % (30 * 86_400);
    let id = &file.id;
    let thumbnail = match file.media_type.as_str() {
        "IMAGE" => {
            format!("https://static.wixstatic.com/media/{id}/v1/fit/w_50,h_50,q_90/file.jpg")
        }
        _ => "https://static.wixstatic.com/media/2ba5c3_generic_icon~mv2.png".to_string(),
    };
    json!({
        "id": id,
        "displayName": file.display_name,
        "url": format!("https://static.wixstatic.com/media/{id}"),
        "parentFolderId": file.parent_folder_id,
        "hash": format!("{:016x}{:016x}", h, fnv64(format!("{id}#").as_bytes())),
        "private": file.private,
        "mediaType": file.media_type,
        "operationStatus": file.operation_status,
        "state": file.state,
        "sizeInBytes": file.size_in_bytes.to_string(),
        "thumbnailUrl": thumbnail,
        "labels": [],
        "createdDate": rfc3339(created),
        "updatedDate": rfc3339(updated),
        "siteId": site_id,
    })
}

fn folder_json(folder: &Folder) -> Value {
    let h = fnv64(folder.id.as_bytes());
    let created = DATES_FROM + h % (365 * 86_400);
    json!({
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent_folder_id,
        "createdDate": rfc3339(created),
        "updatedDate": rfc3339(created + (h >> 32) % (30 * 86_400)),
        "state": folder.state,
    })
}

fn site_id(state: &State) -> String {
    state.lock().config.site_id.clone()
}

fn get_files(state: &State, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let ids: Vec<String> = file_id_list(body, MAX_GET_FILES)?
        .iter()
        .map(|s| normalize_file_id(s))
        .collect();
    let unknown: Vec<&String> = ids.iter().filter(|id| state.file(id).is_none()).collect();
    if !unknown.is_empty() {
        return Err(app_error(
            400,
            "RESOURCE_NOT_FOUND",
            &format!("{} of the files were not found", unknown.len()),
            Some(json!({ "fileIds": unknown })),
        ));
    }
    let site = site_id(state);
    let files: Vec<Value> = ids
        .iter()
        .filter_map(|id| state.file(id))
        .map(|f| file_json(f, &site))
        .collect();
    Ok(json_resp(200, &json!({ "files": files })))
}

fn get_file_by_id(state: &State, query: &HashMap<String, String>) -> Result<Resp, Failure> {
    let raw = query
        .get("fileId")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| validation_error("fileId", "is required", "REQUIRED_FIELD"))?;
    let id = normalize_file_id(raw);
    let file = state.file(&id).ok_or_else(|| not_found("file", &id))?;
    let site = site_id(state);
    Ok(json_resp(200, &json!({ "file": file_json(file, &site) })))
}

// ---- paging --------------------------------------------------------------

fn page_limit(state: &State, limit: Option<&Value>) -> Result<usize, Failure> {
    let max = state.lock().config.max_search_page;
    let limit = match limit {
        None | Some(Value::Null) => return Ok(DEFAULT_PAGE),
        Some(v) => v.as_u64().or_else(|| v.as_str()?.parse().ok()),
    };
    match limit {
        Some(0) => Ok(DEFAULT_PAGE),
        Some(n) if n as usize <= max => Ok(n as usize),
        _ => Err(validation_error(
            "paging.limit",
            &format!("must be between 0 and {max}"),
            "MAX",
        )),
    }
}

/// Opaque on purpose, so that a client cannot build or edit cursors itself.
fn encode_cursor(offset: usize, fingerprint: u64) -> String {
    let plain = format!("{offset}.{fingerprint:016x}");
    plain.bytes().rev().map(|b| format!("{:02x}", b ^ 0x5a)).collect()
}

fn cursor_offset(cursor: Option<&str>, fingerprint: u64) -> Result<usize, Failure> {
    let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(0);
    };
    let bad = || validation_error("paging.cursor", "invalid cursor", "INVALID_CURSOR");
    if cursor.len() % 2 != 0 || !cursor.is_ascii() {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).map(|b| b ^ 0x5a))
        .rev()
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let plain = String::from_utf8(bytes).map_err(|_| bad())?;
    let (offset, fp) = plain.split_once('.').ok_or_else(bad)?;
    if u64::from_str_radix(fp, 16).ok() != Some(fingerprint) {
        return Err(validation_error(
            "paging.cursor",
            "cursor belongs to a different query",
            "INVALID_CURSOR",
        ));
    }
    offset.parse().map_err(|_| bad())
}

/// One page of `items` and its `nextCursor` object.
fn page<T: Clone>(state: &State, items: &[T], offset: usize, limit: usize, fingerprint: u64) -> (Vec<T>, Value) {
    let start = offset.min(items.len());
    let end = (start + limit).min(items.len());
    let mut cursors = Map::new();
    if end < items.len() {
        cursors.insert("next".into(), json!(encode_cursor(end, fingerprint)));
    }
    let mut next = json!({ "total": items.len(), "cursors": cursors });
    if state.lock().config.search_has_next {
        next["hasNext"] = json!(end < items.len());
    }
    (items[start..end].to_vec(), next)
}

fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Failure> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(validation_error(name, "must be a string", "TYPE")),
    }
}

fn search(state: &State, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let text = string_field(body, "search")?.unwrap_or("").to_lowercase();
    let root = match string_field(body, "rootFolder")?.unwrap_or("MEDIA_ROOT") {
        "MEDIA_ROOT" => MEDIA_ROOT,
        "TRASH_ROOT" => TRASH_ROOT,
        "VISITOR_UPLOADS_ROOT" => VISITOR_UPLOADS,
        _ => {
            return Err(validation_error(
                "rootFolder",
                "must be MEDIA_ROOT, TRASH_ROOT or VISITOR_UPLOADS_ROOT",
                "ENUM",
            ))
        }
    };
    let media_types: Vec<String> = match body.get("mediaTypes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| validation_error("mediaTypes", "must be strings", "TYPE"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(validation_error("mediaTypes", "must be an array", "TYPE")),
    };
    let private = match body.get("private") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(validation_error("private", "must be a boolean", "TYPE")),
    };
    let sort = body.get("sort").filter(|v| !v.is_null());
    let sort_field = sort
        .and_then(|s| s.get("fieldName"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let descending = sort.and_then(|s| s.get("order")).and_then(Value::as_str) == Some("DESC");
    let paging = body.get("paging");
    let limit = page_limit(state, paging.and_then(|p| p.get("limit")))?;
    let cursor = paging.and_then(|p| p.get("cursor")).and_then(Value::as_str);

    let mut sorted_types = media_types.clone();
    sorted_types.sort();
    let fingerprint = fnv64(
        format!(
            "search|{text}|{root}|{}|{private:?}|{sort_field}|{descending}",
            sorted_types.join(",")
        )
        .as_bytes(),
    );
    let offset = cursor_offset(cursor, fingerprint)?;

    let mut matches: Vec<usize> = (0..state.library.files.len())
        .filter(|&i| {
            let f = &state.library.files[i];
            state.file_roots[i] == Some(root)
                && (media_types.is_empty() || media_types.contains(&f.media_type))
                && private.is_none_or(|p| p == f.private)
                && (text.is_empty() || f.display_name.to_lowercase().contains(&text))
        })
        .collect();
    let files = &state.library.files;
    match sort_field.as_str() {
        "displayName" => matches.sort_by(|a, b| files[*a].display_name.cmp(&files[*b].display_name)),
        "sizeInBytes" => matches.sort_by_key(|&i| files[i].size_in_bytes),
        _ => {}
    }
    if descending {
        matches.reverse();
    }
    let (items, next) = page(state, &matches, offset, limit, fingerprint);
    let site = site_id(state);
    let files: Vec<Value> = items.iter().map(|&i| file_json(&files[i], &site)).collect();
    Ok(json_resp(200, &json!({ "files": files, "nextCursor": next })))
}

fn query_limit(state: &State, query: &HashMap<String, String>) -> Result<usize, Failure> {
    page_limit(state, query.get("paging.limit").map(|s| json!(s)).as_ref())
}

fn list_files(state: &State, query: &HashMap<String, String>) -> Result<Resp, Failure> {
    let parent = query
        .get("parentFolderId")
        .filter(|s| !s.is_empty())
        .map_or(MEDIA_ROOT, String::as_str);
    let limit = query_limit(state, query)?;
    let fingerprint = fnv64(format!("files|{parent}").as_bytes());
    let offset = cursor_offset(query.get("paging.cursor").map(String::as_str), fingerprint)?;
    let matches: Vec<&FileRecord> = state
        .library
        .files
        .iter()
        .filter(|f| f.parent_folder_id == parent)
        .collect();
    let (items, next) = page(state, &matches, offset, limit, fingerprint);
    let site = site_id(state);
    let files: Vec<Value> = items.iter().map(|f| file_json(f, &site)).collect();
    Ok(json_resp(200, &json!({ "files": files, "nextCursor": next })))
}

fn list_folders(state: &State, query: &HashMap<String, String>) -> Result<Resp, Failure> {
    let parent = query
        .get("parentFolderId")
        .filter(|s| !s.is_empty())
        .map_or(MEDIA_ROOT, String::as_str);
    let limit = query_limit(state, query)?;
    let fingerprint = fnv64(format!("folders|{parent}").as_bytes());
    let offset = cursor_offset(query.get("paging.cursor").map(String::as_str), fingerprint)?;
    let matches: Vec<&Folder> = state
        .library
        .folders
        .iter()
        .filter(|f| f.parent_folder_id == parent)
        .collect();
    let (items, next) = page(state, &matches, offset, limit, fingerprint);
    let folders: Vec<Value> = items.iter().map(|f| folder_json(f)).collect();
    Ok(json_resp(200, &json!({ "folders": folders, "nextCursor": next })))
}

fn folder_download(state: &State, folder_id: &str) -> Result<Resp, Failure> {
    if folder_id != MEDIA_ROOT && state.folder(folder_id).is_none() {
        return Err(not_found("folder", folder_id));
    }
    let mut inside: HashSet<&str> = HashSet::from([folder_id]);
    // Parents come before children in seeded libraries, but hand-made ones may not.
    loop {
        let before = inside.len();
        for f in &state.library.folders {
            if inside.contains(f.parent_folder_id.as_str()) {
                inside.insert(f.id.as_str());
            }
        }
        if inside.len() == before {
            break;
        }
    }
    let ids: Vec<String> = state
        .library
        .files
        .iter()
        .filter(|f| f.state != "DELETED" && inside.contains(f.parent_folder_id.as_str()))
        .map(|f| f.id.clone())
        .collect();
    if ids.len() > MAX_FOLDER_ARCHIVE {
        return Err(app_error(
            400,
            "TOO_MANY_FILES",
            &format!("the folder holds {} files, more than {MAX_FOLDER_ARCHIVE}", ids.len()),
            Some(json!({ "fileCount": ids.len() })),
        ));
    }
    let private_in_archive = state.lock().config.private_in_archive;
    archive_link(state, ids, private_in_archive)
}

// ---- the emulator's own download routes -----------------------------------

fn download(state: &State, method: &Method, path: &str, query: &str) -> Resp {
    if let Some(token) = path.strip_prefix("/_emulator/archives/") {
        if method != Method::GET {
            return method_not_allowed(&Method::GET);
        }
        let ids = state.lock().archives.get(token).cloned();
        return match ids {
            Some(ids) => match build_zip(&ids) {
                Ok(zip) => Response::builder()
                    .header(CONTENT_TYPE, "application/zip")
                    .header("content-disposition", "attachment; filename=\"archive.zip\"")
                    .body(Full::new(Bytes::from(zip)))
                    .unwrap_or_else(|_| empty(500)),
                Err(e) => *app_error(500, "INTERNAL", &format!("zip failed: {e}"), None),
            },
            None => *app_error(404, "NOT_FOUND", "no such archive", None),
        };
    }
    if let Some(id) = path.strip_prefix("/_emulator/files/") {
        if method != Method::GET {
            return method_not_allowed(&Method::GET);
        }
        let id = percent_decode(id);
        let query = parse_query(query);
        let inner = state.lock();
        let link = query.get("token").and_then(|t| inner.file_links.get(t));
        let Some(link) = link.filter(|l| l.id == id) else {
            return *app_error(403, "FORBIDDEN", "invalid download token", None);
        };
        if unix_now() >= link.expires_unix {
            return *app_error(403, "FORBIDDEN", "download link expired", None);
        }
        let name = link
            .file_name
            .clone()
            .unwrap_or_else(|| state.file(&id).map_or_else(|| id.clone(), |f| f.display_name.clone()));
        let disposition = if link.inline { "inline" } else { "attachment" };
        drop(inner);
        return Response::builder()
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(
                "content-disposition",
                format!("{disposition}; filename=\"{}\"", name.replace('"', "")),
            )
            .body(Full::new(Bytes::from(file_content(&id))))
            .unwrap_or_else(|_| empty(500));
    }
    not_found_route(path)
}

/// Entries are stored (not deflated) and named by the bare file id.
fn build_zip(ids: &[String]) -> zip::result::ZipResult<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for id in ids {
        writer.start_file(id.as_str(), options)?;
        writer.write_all(&file_content(id))?;
    }
    Ok(writer.finish()?.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
