//! Shared test harness: the real handler, the real Wix client and a real local Wix emulator.
#![allow(dead_code)]

pub mod moto;
pub mod s3_proxy;

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use serde_json::{json, Value};
use wix_emulator::{Emulator, EmulatorConfig};
use wix_media_archiver::app::App;
use wix_media_archiver::config::Config;
use wix_media_archiver::entry::lambda::EventError;
use wix_media_archiver::{local, signature};

pub const CALLER_KEY: &str = "test-caller-key";

/// A running emulator and an app wired to it.
pub struct Harness {
    pub emulator: Emulator,
    pub app: App,
}

/// The variables a test run uses unless it overrides them.
pub fn base_env(emulator: &Emulator, config: &EmulatorConfig) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("WIX_API_BASE_URL".to_owned(), emulator.base_url());
    env.insert("WIX_API_KEY".to_owned(), config.api_key.clone());
    env.insert("WIX_SITE_ID".to_owned(), config.site_id.clone());
    env.insert("CALLER_KEYS".to_owned(), CALLER_KEY.to_owned());
    env.insert("WIX_REQUESTS_PER_MINUTE".to_owned(), "60000".to_owned());
    env.insert("WIX_MAX_RETRIES".to_owned(), "3".to_owned());
    env.insert("WIX_TIMEOUT_SECONDS".to_owned(), "2".to_owned());
    env
}

/// Starts an emulator with `config` and an app over it with `env` on top of [`base_env`].
pub async fn harness(config: EmulatorConfig, env: &[(&str, &str)]) -> Harness {
    let emulator = Emulator::start(config.clone()).await.expect("emulator starts");
    let mut vars = base_env(&emulator, &config);
    for (k, v) in env {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("test configuration is valid");
    let app = App::from_config(config).await.expect("app builds");
    Harness { emulator, app }
}

/// A Function URL event for `POST /archives` with `body`, not yet signed.
pub fn function_url_event(method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> Value {
    let mut h = serde_json::Map::new();
    h.insert("content-type".into(), json!("application/json"));
    h.insert("host".into(), json!("abc.lambda-url.us-east-1.on.aws"));
    for (k, v) in headers {
        if v.is_empty() {
            h.remove(*k);
        } else {
            h.insert((*k).to_owned(), json!(v));
        }
    }
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.10", "userAgent": "test"}, "requestId": "r", "routeKey": "$default",
            "stage": "$default", "time": "27/Nov/2026:10:00:00 +0000", "timeEpoch": 1795773600000u64
        },
        "body": body, "isBase64Encoded": false
    })
}

/// A signed `POST /archives` with `body`.
pub fn signed(body: &str) -> Value {
    let sig = signature::sign(CALLER_KEY, local::unix_now(), body.as_bytes());
    function_url_event("POST", "/archives", body, &[("x-archive-signature", &sig)])
}

/// A signed request for `ids`.
pub fn request_for(ids: &[String]) -> Value {
    signed(&json!({ "fileIds": ids }).to_string())
}

/// Invokes the handler; returns the status and the parsed JSON body.
pub async fn call(h: &Harness, event: &Value) -> (u16, Value) {
    call_with_timeout(h, event, Some(Duration::from_secs(120))).await
}

/// Invokes the handler with a Lambda time limit.
pub async fn call_with_timeout(h: &Harness, event: &Value, timeout: Option<Duration>) -> (u16, Value) {
    let response = local::invoke(&h.app, event, timeout)
        .await
        .expect("an HTTP event gets an HTTP answer");
    http_parts(&response)
}

/// Status and JSON body of a Lambda HTTP response.
pub fn http_parts(response: &Value) -> (u16, Value) {
    let status = response["statusCode"].as_u64().expect("statusCode") as u16;
    let body: Value = serde_json::from_str(response["body"].as_str().expect("body")).expect("JSON body");
    (status, body)
}

/// Invokes a non-HTTP event.
pub async fn invoke_raw(h: &Harness, event: &Value) -> Result<Value, EventError> {
    local::invoke(&h.app, event, Some(Duration::from_secs(120))).await
}

/// The seeded library's first `n` file IDs.
pub fn flat_ids(n: usize) -> Vec<String> {
    (0..n).map(wix_emulator::Library::file_id).collect()
}

/// Downloads a zip and lists its entry names (final path segment).
pub async fn zip_entries(url: &str) -> Vec<String> {
    let bytes = reqwest::get(url)
        .await
        .expect("download")
        .bytes()
        .await
        .expect("zip body");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a real zip");
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("entry content");
        let name = entry.name().rsplit('/').next().unwrap_or_default().to_owned();
        assert_eq!(
            content,
            wix_emulator::generated_content(&name, 0, content.len() as u64),
            "content of {name}"
        );
        names.push(name);
    }
    names
}

/// Every unique ID stands exactly once in archives, private links and failures.
pub fn assert_invariant(body: &Value, ids: &[String]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for a in body["archives"].as_array().expect("archives") {
        assert_eq!(
            a["fileCount"].as_u64().unwrap() as usize,
            a["fileIds"].as_array().unwrap().len()
        );
        for id in a["fileIds"].as_array().unwrap() {
            *seen.entry(id.as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    for p in body["privateFiles"].as_array().expect("privateFiles") {
        *seen.entry(p["fileId"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for f in body["failed"].as_array().expect("failed") {
        for id in f["fileIds"].as_array().unwrap() {
            *seen.entry(id.as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    for id in ids {
        assert_eq!(seen.remove(id), Some(1), "{id} must stand exactly once");
    }
    assert!(
        seen.is_empty(),
        "unexpected ids: {:?}",
        seen.keys().take(5).collect::<Vec<_>>()
    );
}

/// A library that also holds `ids` as ready public images in the media root.
pub fn library_with(mut library: wix_emulator::Library, ids: &[String]) -> wix_emulator::Library {
    for id in ids {
        if library.file(id).is_none() {
            library.files.push(wix_emulator::FileRecord {
                id: id.clone(),
                display_name: format!("{id}.bin"),
                parent_folder_id: wix_emulator::MEDIA_ROOT.to_owned(),
                media_type: "IMAGE".to_owned(),
                private: false,
                operation_status: "READY".to_owned(),
                state: "OK".to_owned(),
                size_in_bytes: 2048,
            });
        }
    }
    library
}

/// Codes of the failures in a response body.
pub fn failure_codes(body: &Value) -> Vec<String> {
    body["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"]["code"].as_str().unwrap().to_owned())
        .collect()
}

/// A body shortened for assertion messages.
pub fn brief(body: &Value) -> String {
    let text = body.to_string();
    if text.len() > 600 {
        format!("{}… ({} bytes)", &text[..600], text.len())
    } else {
        text
    }
}

/// Every line the logs write, for the tests that read them (install with
/// `logging::init(|| Capture)`, once per test binary).
#[allow(dead_code)]
pub static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// A log writer into [`LOGS`].
#[allow(dead_code)]
#[derive(Clone)]
pub struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
