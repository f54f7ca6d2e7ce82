//! End to end: the real `wix-media-archiver` binary, built and run by `cargo lambda watch`
//! (a local Lambda Runtime API and Function URL emulator), against the Wix emulator and a
//! moto server (`MOTO_URL`, started by `scripts/test`, which also installs cargo-lambda).
//!
//! What cargo-lambda 1.9 does, as this test relies on it:
//! - The function gets cargo-lambda's own environment plus `--env-var`/`--env-file`.
//!   `--env-var` splits its value on commas (`--env-var A=x,y` sets `A=x` and `y`), so
//!   the function's variables go through `--env-file`, and cargo-lambda itself runs
//!   without them (and without `RUST_LOG`, whose debug output would be its own).
//! - The first invocation builds the binary (`cargo run --bin wix-media-archiver`), so the
//!   first answer can take minutes.
//! - A handler error answers the invoke endpoint with HTTP 500 and
//!   `{"errorType": …, "errorMessage": …}` (AWS answers 200 with `X-Amz-Function-Error`).
//! - It runs the function in a process group of its own and stops it on SIGTERM.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::Region;
use common::{assert_invariant, brief, library_with};
use serde_json::{json, Value};
use wix_emulator::{Emulator, EmulatorConfig, Library};
use wix_media_archiver::{local, signature};

const FUNCTION: &str = "wix-media-archiver";
/// How long the first invocation may wait for the build (2 cores, shared target dir).
const BUILD_LIMIT: Duration = Duration::from_secs(600);
/// One answer of the function, HTTP or invoke.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// One scheduled backup.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(180);

fn moto_url() -> String {
    std::env::var("MOTO_URL").expect("MOTO_URL is unset: run scripts/test, which starts a moto server for these tests")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// A token unique to this run, for names in the shared moto server.
fn run_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{:x}", std::process::id(), nanos)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `cargo lambda watch` in its own process group; stopped with the whole group (and the
/// function's group) when dropped, also when the test panics.
struct Watch {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Watch {
    fn start(port: u16, function_env: &[(&str, String)]) -> Watch {
        let dir = std::env::temp_dir().join(format!("wix-media-archiver-e2e-watch-{}", run_token()));
        std::fs::create_dir_all(&dir).unwrap();
        let env_file = dir.join("function.env");
        let text: String = function_env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&env_file, text).unwrap();
        let stdout = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let mut command = Command::new(cargo());
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .args(["--ignore-changes", "--bin", FUNCTION, "--env-file"])
            .arg(&env_file)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        // The function's variables come only from the env file.
        for (k, _) in function_env {
            command.env_remove(k);
        }
        for k in [
            "RUST_LOG",
            "AWS_LAMBDA_LOG_LEVEL",
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            "AWS_ENDPOINT_URL_SSM",
            "AWS_ENDPOINT_URL_SESV2",
            "WIX_API_KEY",
            "WIX_SITE_ID",
            "CALLER_KEYS",
        ] {
            command.env_remove(k);
        }
        let child = command.spawn().expect("cargo lambda watch starts");
        Watch { child, dir, port }
    }

    fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}\n{}", read("stdout.log"), read("stderr.log"))
    }

    /// The last lines of the output, for failure messages (before the log scan ran).
    fn tail(&self) -> String {
        let output = self.output();
        let lines: Vec<&str> = output.lines().filter(|l| !l.contains("built glob set")).collect();
        let start = lines.len().saturating_sub(60);
        format!(
            "--- last lines of cargo lambda watch ({}) ---\n{}",
            self.dir.display(),
            lines[start..].join("\n")
        )
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Every process below `root` (cargo, the function in its own process group).
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

fn signal(target: &str, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Watch {
    fn drop(&mut self) {
        let pid = self.child.id();
        let below = descendants(pid);
        // cargo-lambda stops the function's own process group on SIGTERM.
        signal(&format!("-{pid}"), "-TERM");
        let until = Instant::now() + Duration::from_secs(5);
        while self.exited().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        signal(&format!("-{pid}"), "-KILL");
        for p in below {
            if Path::new(&format!("/proc/{p}")).exists() {
                signal(&p.to_string(), "-KILL");
            }
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("cargo lambda watch output kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An answer: status, headers, raw body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self, what: &str) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{what}: the answer is not JSON ({e}): {}", self.body))
    }
}

async fn send(watch: &Watch, what: &str, request: reqwest::RequestBuilder, timeout: Duration) -> Answer {
    let response = match request.timeout(timeout).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => panic!(
            "{what}: no answer within {timeout:?} from cargo lambda watch (it sometimes drops an answer)\n{}",
            watch.tail()
        ),
        Err(e) => panic!("{what}: the request failed: {e}\n{}", watch.tail()),
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.text().await {
        Ok(b) => b,
        Err(e) => panic!("{what}: the answer's body could not be read: {e}\n{}", watch.tail()),
    };
    Answer { status, headers, body }
}

fn invoke_url(watch: &Watch) -> String {
    watch.url(&format!("/2015-03-31/functions/{FUNCTION}/invocations"))
}

async fn invoke(watch: &Watch, client: &reqwest::Client, what: &str, event: &Value, timeout: Duration) -> Answer {
    let request = client.post(invoke_url(watch)).body(event.to_string());
    send(watch, what, request, timeout).await
}

/// Waits until the function answers (the first invocation builds it); the probe is `{}`,
/// which must fail as `UnrecognizedEvent`. Returns that answer.
async fn wait_until_ready(watch: &mut Watch, client: &reqwest::Client) -> Answer {
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    loop {
        if let Some(status) = watch.exited() {
            panic!(
                "cargo lambda watch exited ({status}) before it answered\n{}",
                watch.tail()
            );
        }
        if watch.output().contains("\"message\":\"cannot start\"") {
            panic!("the function could not start\n{}", watch.tail());
        }
        if started.elapsed() > BUILD_LIMIT {
            panic!(
                "cargo lambda watch did not answer within {BUILD_LIMIT:?} (last: {last})\n{}",
                watch.tail()
            );
        }
        let probe = client
            .post(invoke_url(watch))
            .body("{}")
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        match probe {
            Ok(r) => {
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                let body = r.text().await.unwrap_or_default();
                if body.contains("errorType") {
                    return Answer { status, headers, body };
                }
                last = format!("{status}: {body}");
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sdk() -> aws_config::SdkConfig {
    aws_config::defaults(wix_media_archiver::aws::behavior_version())
        .endpoint_url(moto_url())
        .region(Region::new("us-east-1"))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "e2e",
        ))
        .load()
        .await
}

async fn sent_messages(client: &reqwest::Client) -> Vec<Value> {
    let data: Value = client
        .get(format!("{}/moto-api/data.json", moto_url()))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .expect("moto answers")
        .json()
        .await
        .expect("moto data is JSON");
    data["ses"]["Message"].as_array().cloned().unwrap_or_default()
}

/// Messages whose recipients are exactly `to`.
async fn messages_to(client: &reqwest::Client, to: &[String]) -> Vec<Value> {
    sent_messages(client)
        .await
        .into_iter()
        .filter(|m| m["destinations"]["ToAddresses"] == json!(to))
        .collect()
}

/// The text of an HTML body: character references decoded (`&amp;`, `&#x2f;`, `&#47;`, …).
fn unescape(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let code = match entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => entity.strip_prefix('#').and_then(|d| d.parse().ok()),
                    };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn fixtures() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    Archives,
    Refused(u16, &'static str),
    Backup,
    /// The invocation fails with this error type.
    Fails(&'static str),
}

/// What each fixture must answer under the contract.
fn expectation(name: &str) -> Option<Expect> {
    Some(match name {
        "function-url-archives.json" | "http-api-archives.json" | "rest-api-archives.json" | "alb-archives.json" => {
            Expect::Archives
        }
        "refused-unsigned.json" | "refused-bad-signature.json" => Expect::Refused(401, "UNAUTHORIZED"),
        "refused-get.json" => Expect::Refused(405, "METHOD_NOT_ALLOWED"),
        "refused-not-found.json" => Expect::Refused(404, "NOT_FOUND"),
        "refused-text-plain.json" => Expect::Refused(415, "UNSUPPORTED_MEDIA_TYPE"),
        "refused-invalid-json.json" => Expect::Refused(400, "INVALID_JSON"),
        "refused-invalid-request.json" => Expect::Refused(400, "INVALID_REQUEST"),
        "eventbridge-scheduled.json" | "scheduler-backup-input.json" => Expect::Backup,
        // Jobs are not configured here; tests/jobs.rs runs these with the job engine.
        "async-archives.json" | "job-status.json" => Expect::Refused(400, "ASYNC_DISABLED"),
        "sqs-job-step.json" => Expect::Fails("JobsDisabled"),
        _ => return None,
    })
}

/// Every `v1=` hex of a signature header.
fn signature_hexes(header: &str) -> Vec<String> {
    header
        .split(',')
        .filter_map(|p| p.trim().strip_prefix("v1="))
        .map(str::to_owned)
        .collect()
}

/// Signature headers of an event (in `headers` and `multiValueHeaders`).
fn event_signatures(event: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["headers", "multiValueHeaders"] {
        for (name, value) in event[field].as_object().into_iter().flatten() {
            if name.eq_ignore_ascii_case(signature::HEADER) {
                match value {
                    Value::String(s) => out.extend(signature_hexes(s)),
                    Value::Array(items) => {
                        for s in items.iter().filter_map(Value::as_str) {
                            out.extend(signature_hexes(s));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// Downloads a zip and returns its entry names, checking each entry's content.
async fn zip_entries(client: &reqwest::Client, url: &str) -> Vec<String> {
    let response = client
        .get(url)
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .unwrap_or_else(|e| panic!("archive download failed: {e}"));
    assert_eq!(response.status().as_u16(), 200, "archive download status");
    let bytes = response.bytes().await.expect("archive body");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a real zip");
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("zip entry");
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("zip entry content");
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

/// Every listed file stands exactly once in archives, private links, failures or skipped.
fn assert_backup_invariant(name: &str, body: &Value) {
    let list = |key: &str| body[key].as_array().cloned().unwrap_or_default();
    let mut ids: Vec<Value> = Vec::new();
    for a in list("archives") {
        let in_archive = a["fileIds"].as_array().cloned().unwrap_or_default();
        assert_eq!(a["fileCount"], json!(in_archive.len()), "{name}: archive fileCount");
        ids.extend(in_archive);
    }
    ids.extend(list("privateFiles").iter().map(|p| p["fileId"].clone()));
    for f in list("failed") {
        ids.extend(f["fileIds"].as_array().cloned().unwrap_or_default());
    }
    let skipped = list("skipped");
    assert_eq!(body["skippedFiles"], json!(skipped.len()), "{name}: skippedFiles");
    ids.extend(skipped.iter().map(|s| s["fileId"].clone()));
    let mut seen: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let id = id.as_str().unwrap_or_else(|| panic!("{name}: a file id: {id}"));
        *seen.entry(id.to_owned()).or_default() += 1;
    }
    let doubled: Vec<&String> = seen.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(doubled.is_empty(), "{name}: files stand more than once: {doubled:?}");
    assert_eq!(
        body["listedFiles"],
        json!(seen.len()),
        "{name}: every listed file accounted for"
    );
}

fn links_of(body: &Value) -> Vec<String> {
    let mut links = Vec::new();
    for key in ["archives", "privateFiles"] {
        for item in body[key].as_array().into_iter().flatten() {
            links.push(item["downloadUrl"].as_str().expect("downloadUrl").to_owned());
        }
    }
    links
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_binary_under_cargo_lambda_watch() {
    let version = Command::new(cargo()).args(["lambda", "--version"]).output();
    match version {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "cargo-lambda is not installed (`cargo lambda --version` failed): run scripts/test, which \
             installs it (python3 -m pip install cargo-lambda)"
        ),
    }
    let token = run_token();
    let api_key = format!("e2e-watch-api-key-{token}");
    let caller_key = format!("e2e-watch-caller-key-{token}");
    let secret_name = format!("e2e-watch/{token}");
    let sender = format!("archiver-{token}@example.com");
    let backup_to = vec![format!("backup-{token}@example.com"), format!("it-{token}@example.org")];
    let http = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .expect("HTTP client");

    // 1. The Wix emulator with the fixtures' files, the secret and the SES sender in moto.
    let all = fixtures();
    let unexpected: Vec<&String> = all
        .iter()
        .map(|(n, _)| n)
        .filter(|n| expectation(n).is_none())
        .collect();
    assert!(
        unexpected.is_empty(),
        "fixtures without an expectation here: {unexpected:?}"
    );
    assert!(all.len() >= 13, "the fixtures are there: {}", all.len());
    let mut fixture_ids = Vec::new();
    for (_, event) in &all {
        fixture_ids.extend(local::event_file_ids(event));
    }
    let emu = EmulatorConfig {
        api_key: api_key.clone(),
        library: library_with(Library::seeded(300, 5), &fixture_ids),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(emu.clone()).await.expect("the Wix emulator starts");
    let sdk = sdk().await;
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&secret_name)
        .secret_string(json!({"apiKey": api_key, "siteId": emu.site_id, "callerKeys": [caller_key]}).to_string())
        .send()
        .await
        .expect("moto creates the secret");
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .expect("moto verifies the sender");

    // 2. cargo lambda watch with the function's environment.
    let function_env: Vec<(&str, String)> = vec![
        ("WIX_CREDENTIALS_SECRET", secret_name.clone()),
        ("WIX_API_BASE_URL", emulator.base_url()),
        ("EMAIL_FROM", sender.clone()),
        // A comma in a value: `--env-var` would split it; the env file keeps it.
        ("BACKUP_EMAIL_TO", backup_to.join(",")),
        ("WIX_REQUESTS_PER_MINUTE", "60000".to_owned()),
        ("AWS_ENDPOINT_URL", moto_url()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
    ];
    let build_started = Instant::now();
    let mut watch = Watch::start(free_port(), &function_env);
    let first = wait_until_ready(&mut watch, &http).await;
    let build_time = build_started.elapsed();
    let run_started = Instant::now();
    eprintln!("cargo lambda watch answered after {build_time:?} (build and start)");

    // `{}` fails the invocation: cargo-lambda answers 500 with the error type.
    for answer in [first, invoke(&watch, &http, "{}", &json!({}), CALL_TIMEOUT).await] {
        assert_eq!(answer.status, 500, "a handler error: {}", answer.body);
        let body = answer.json("{}");
        assert_eq!(body["errorType"], "UnrecognizedEvent", "{}", answer.body);
        assert!(body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(
        emulator.api_calls().is_empty(),
        "an unrecognized event makes no Wix call"
    );

    // 3. Every fixture through the invoke endpoint.
    let mut signatures: Vec<String> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    let mut checked = 0;
    // Invocations that must each end with a summary log line (the binary writes none for
    // `{}`, an unrecognized event, so those two are not counted).
    let mut summarized = 0;
    for (name, mut event) in all {
        let expect = expectation(&name).unwrap();
        let placeholder = local::sign_event(&mut event, &caller_key, local::unix_now());
        signatures.extend(event_signatures(&event));
        emulator.clear_calls();
        match expect {
            Expect::Archives | Expect::Refused(..) => {
                assert_eq!(
                    placeholder,
                    !name.contains("unsigned") && !name.contains("bad-signature"),
                    "{name}: signature placeholder"
                );
                let answer = invoke(&watch, &http, &name, &event, CALL_TIMEOUT).await;
                assert_eq!(answer.status, 200, "{name}: the invocation succeeds: {}", answer.body);
                let response = answer.json(&name);
                let status = response["statusCode"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{name}: {response}"));
                let body: Value = serde_json::from_str(response["body"].as_str().expect("body"))
                    .unwrap_or_else(|e| panic!("{name}: the HTTP body is not JSON ({e})"));
                match expect {
                    Expect::Archives => {
                        assert_eq!(status, 200, "{name}: {}", brief(&body));
                        assert_eq!(body["fileCount"], 5, "{name}");
                        assert_eq!(body["duplicatesRemoved"], 1, "{name}");
                        let ids = local::event_file_ids(&event);
                        assert_eq!(ids.len(), 5, "{name}");
                        assert_invariant(&body, &ids);
                        for a in body["archives"].as_array().unwrap() {
                            let url = a["downloadUrl"].as_str().unwrap();
                            let in_archive = emulator.archive_file_ids(url).expect("an emulator archive link");
                            assert_eq!(json!(in_archive), a["fileIds"], "{name}");
                        }
                        assert_eq!(emulator.api_calls().len(), 1, "{name}: one Wix call");
                        links.extend(links_of(&body));
                    }
                    Expect::Refused(want, code) => {
                        assert_eq!(status, u64::from(want), "{name}: {}", brief(&body));
                        assert_eq!(body["error"]["code"], code, "{name}");
                        assert!(body["requestId"].is_string(), "{name}");
                        assert!(emulator.api_calls().is_empty(), "{name}: no Wix call");
                    }
                    Expect::Backup | Expect::Fails(_) => unreachable!(),
                }
            }
            Expect::Fails(error_type) => {
                let answer = invoke(&watch, &http, &name, &event, CALL_TIMEOUT).await;
                assert_eq!(answer.status, 500, "{name}: a handler error: {}", answer.body);
                assert_eq!(answer.json(&name)["errorType"], error_type, "{name}");
                assert!(emulator.api_calls().is_empty(), "{name}: no Wix call");
                checked += 1;
                continue;
            }
            // 5. A scheduled backup mails one report holding every link.
            Expect::Backup => {
                let before = messages_to(&http, &backup_to).await.len();
                let answer = invoke(&watch, &http, &name, &event, BACKUP_TIMEOUT).await;
                assert_eq!(answer.status, 200, "{name}: {}", answer.body);
                let body = answer.json(&name);
                assert!(
                    body["listedFiles"].as_u64().is_some_and(|n| n > 0),
                    "{name}: {}",
                    brief(&body)
                );
                assert_eq!(body["incomplete"], false, "{name}: {}", brief(&body));
                assert!(
                    body["archives"].as_array().is_some_and(|a| !a.is_empty()),
                    "{name}: {}",
                    brief(&body)
                );
                assert_eq!(body["emailedTo"], json!(backup_to), "{name}: {}", brief(&body));
                assert_backup_invariant(&name, &body);
                let report_links = links_of(&body);
                let messages = messages_to(&http, &backup_to).await;
                assert_eq!(messages.len(), before + 1, "{name}: exactly one new message");
                let m = messages.last().unwrap();
                assert_eq!(m["source"], json!(sender), "{name}");
                let text = unescape(m["body"].as_str().expect("a message body"));
                for link in &report_links {
                    assert!(text.contains(link.as_str()), "{name}: the report mail holds every link");
                }
                links.extend(report_links);
            }
        }
        checked += 1;
        summarized += 1;
    }
    assert!(checked >= 13);

    // 4. Real HTTP requests through the Function URL emulation.
    let archives_url = watch.url(&format!("/lambda-url/{FUNCTION}/archives"));
    let lib = emulator.library();
    let mut ids: Vec<String> = lib
        .files
        .iter()
        .filter(|f| !f.private && f.operation_status == "READY" && f.state == "OK")
        .take(20)
        .map(|f| f.id.clone())
        .collect();
    ids.extend(fixture_ids.iter().take(3).cloned());
    ids.push(ids[0].clone());
    let body = json!({ "fileIds": ids }).to_string();
    let header = signature::sign(&caller_key, local::unix_now(), body.as_bytes());
    signatures.extend(signature_hexes(&header));
    emulator.clear_calls();
    let answer = send(
        &watch,
        "signed POST",
        http.post(&archives_url)
            .header("content-type", "application/json")
            .header("x-archive-signature", &header)
            .body(body.clone()),
        CALL_TIMEOUT,
    )
    .await;
    assert_eq!(answer.status, 200, "signed POST: {}", answer.body);
    assert!(answer
        .headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("application/json")));
    let got = answer.json("signed POST");
    assert_eq!(got["fileCount"], 23, "{}", brief(&got));
    assert_eq!(got["duplicatesRemoved"], 1);
    let unique: Vec<String> = ids[..23].to_vec();
    assert_invariant(&got, &unique);
    let mut zipped: HashSet<String> = HashSet::new();
    for a in got["archives"].as_array().unwrap() {
        let url = a["downloadUrl"].as_str().unwrap();
        links.push(url.to_owned());
        zipped.extend(zip_entries(&http, url).await);
    }
    assert_eq!(
        zipped,
        unique.iter().cloned().collect::<HashSet<_>>(),
        "the zips hold the files"
    );

    let answer = send(
        &watch,
        "unsigned POST",
        http.post(&archives_url)
            .header("content-type", "application/json")
            .body(body.clone()),
        CALL_TIMEOUT,
    )
    .await;
    assert_eq!(answer.status, 401, "unsigned POST: {}", answer.body);
    assert_eq!(answer.json("unsigned POST")["error"]["code"], "UNAUTHORIZED");

    let answer = send(&watch, "GET", http.get(&archives_url), CALL_TIMEOUT).await;
    assert_eq!(answer.status, 405, "GET: {}", answer.body);
    assert_eq!(answer.json("GET")["error"]["code"], "METHOD_NOT_ALLOWED");
    let allow = answer
        .headers
        .get("allow")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    assert_eq!(allow.as_deref(), Some("POST"), "GET: the Allow header");
    summarized += 3;
    let wix_calls = emulator.api_calls();
    assert_eq!(wix_calls.len(), 1, "only the signed POST called Wix");

    let run_time = run_started.elapsed();
    eprintln!("invocations and checks took {run_time:?}");

    // 6. The captured output holds no secret and no link, and the function's summaries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let output = watch.output();
    let mut needles: Vec<(&str, String)> = vec![("the API key", api_key.clone()), ("the caller key", caller_key)];
    needles.extend(signatures.iter().map(|s| ("a signature", s.clone())));
    needles.extend(links.iter().map(|l| ("a download link", l.clone())));
    needles.push(("an archive link path", "/_emulator/archives/".to_owned()));
    needles.push(("a file link path", "/_emulator/files/".to_owned()));
    assert!(
        signatures.len() >= 10 && links.len() >= 6,
        "the test saw signatures and links"
    );
    for (what, needle) in &needles {
        if let Some(n) = output.lines().position(|l| l.contains(needle.as_str())) {
            panic!(
                "line {} of the output of cargo lambda watch ({}) holds {what}",
                n + 1,
                watch.dir.display()
            );
        }
    }
    let json_lines: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(Value::is_object)
        .collect();
    let summaries = json_lines.iter().filter(|l| l["summary"] == json!(true)).count();
    assert!(summaries >= 1, "a summary line:\n{}", watch.tail());
    assert!(
        summaries >= summarized,
        "one summary line per HTTP request and backup: {summaries} for {summarized} invocations"
    );
    assert!(
        json_lines.iter().any(|l| l["level"] == "DEBUG"),
        "RUST_LOG=debug reached the function through the env file"
    );
    let mut levels: HashMap<String, usize> = HashMap::new();
    for l in &json_lines {
        *levels.entry(l["level"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }
    eprintln!("function log lines by level: {levels:?}; summary lines: {summaries}");
    drop(watch);
}
