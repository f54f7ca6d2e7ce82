//! The owner's console in a real browser: Debian's headless Chromium, driven over the W3C
//! WebDriver protocol by Debian's `chromedriver`, against the real `wix-media-archiver`
//! binary under `cargo lambda watch` (the Function URL emulation), the Wix emulator, and
//! moto (S3, Step Functions, the job queue) with the real binary as the job workers.
//!
//! It loads `/console`, is refused with a wrong key ("not authorised", no data), enters the
//! right key, sees the seeded backups and their chart, opens a backup and a folder, finds a
//! deleted file by name, restores it (the emulator receives the import) and watches the job
//! finish, verifies the latest backup, and reads the page at 320 px; every API call the page
//! made is checked with the function's own verifier, and tampered copies are refused. With
//! JavaScript off the page says it needs it. Screenshots go to
//! `$CARGO_TARGET_DIR/console-artifacts/`.
//!
//! Needs `chromium` and `chromium-driver` (`.ci/run` installs them with apt): without them
//! the test fails and says so; it never passes without a browser.

mod common;

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::moto;
use common::*;
use job_rig::{self as rig, JobEngine, Workers};
use serde_json::{json, Value};
use wix_emulator::{Emulator, EmulatorConfig, Library};
use wix_media_archiver::app::App;
use wix_media_archiver::backup::manifest::{self, LineStatus, ManifestLine};
use wix_media_archiver::config::Config;
use wix_media_archiver::credentials::SecretString;
use wix_media_archiver::{local, signature};

const FUNCTION: &str = "wix-media-archiver";
const BUCKET: &str = "console-browser-backups";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The first answer of `cargo lambda watch` builds the binary (2 cores, a shared target).
const BUILD_LIMIT: Duration = Duration::from_secs(900);
const STEP_LIMIT: Duration = Duration::from_secs(30);
const JOB_LIMIT: Duration = Duration::from_secs(240);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn run_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{:x}", std::process::id(), nanos)
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("console-artifacts");
    std::fs::create_dir_all(&dir).expect("the artifacts folder");
    dir
}

/// A child process in its own process group, stopped with its group when dropped.
struct Process {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, mut command: Command, dir: &Path) -> Process {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        command.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let child = command.spawn().unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        Process { child, name, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tail(&self) -> String {
        let output = self.output();
        let lines: Vec<&str> = output.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!("--- last lines of {} ---\n{}", self.name, lines[start..].join("\n"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        // cargo-lambda stops the function's own process group on SIGTERM.
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let until = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// A W3C WebDriver session.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start(driver: &str, profile: &Path, javascript: bool) -> Browser {
        let http = reqwest::Client::new();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--window-size=1280,1600".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false".to_owned());
        }
        let mut options = json!({"binary": CHROMIUM, "args": args});
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options
        }}});
        let until = Instant::now() + Duration::from_secs(30);
        let answer: Value = loop {
            match http.post(format!("{driver}/session")).json(&capabilities).send().await {
                Ok(r) => break r.json().await.expect("chromedriver answers JSON"),
                Err(e) if Instant::now() < until => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("chromedriver does not answer: {e}"),
            }
        };
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_owned();
        Browser {
            http,
            base: format!("{driver}/session/{session}"),
            session,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .json()
            .await
            .expect("WebDriver answers JSON");
        if answer["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    async fn eval(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.post(&format!("/element/{e}/click"), json!({})).await;
    }

    /// Types into the element as a keyboard does (`\u{E007}` is Enter).
    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.post(&format!("/element/{e}/value"), json!({"text": text})).await;
    }

    /// Keys pressed on whatever has the focus, as a keyboard would (`\u{E004}` is Tab,
    /// `\u{E007}` Enter).
    async fn press(&self, texts: &[&str]) {
        let mut actions = Vec::new();
        for text in texts {
            for c in text.chars() {
                actions.push(json!({"type": "keyDown", "value": c.to_string()}));
                actions.push(json!({"type": "keyUp", "value": c.to_string()}));
            }
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let e = self.element(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a base64 PNG"))
            .expect("base64");
        let path = artifacts().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Waits until `condition` (a JavaScript expression) is true; a screenshot and the
    /// page's status line when it does not come.
    async fn wait_for(&self, what: &str, condition: &str, limit: Duration) {
        let script = format!("return !!({condition});");
        let until = Instant::now() + limit;
        loop {
            if self.eval(&script).await == json!(true) {
                return;
            }
            if Instant::now() > until {
                let shot = self.screenshot(&format!("failed-{}.png", what.replace(' ', "-"))).await;
                let status = self.eval("return document.getElementById('status')?.textContent").await;
                let jobs = self
                    .eval("return document.getElementById('job-list')?.textContent")
                    .await;
                panic!(
                    "{what}: not within {limit:?} (status: {status}; jobs: {jobs}; screenshot {})",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
        let _ = self.session;
    }
}

fn site_prefix() -> String {
    format!("wix-media-archiver/{}/", EmulatorConfig::default().site_id)
}

async fn manifest_of(backup_id: &str) -> Vec<ManifestLine> {
    let key = format!("{}backups/{backup_id}/manifest.jsonl.gz", site_prefix());
    manifest::decode(&moto::get(BUCKET, &key).await).expect("a readable manifest")
}

/// Chromium and chromedriver, or a failure that says how to get them.
fn browser_binaries() {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: this test needs a real browser. Install it with \
             `apt-get install chromium chromium-driver` (.ci/run does); package {package}"
        );
    }
}

#[tokio::test]
async fn the_owner_restores_a_file_from_the_console_in_a_real_browser() {
    browser_binaries();
    let _moto = moto::setup().await;
    let dir = std::env::temp_dir().join(format!("wix-media-archiver-console-{}", run_token()));
    std::fs::create_dir_all(&dir).unwrap();
    let caller_key = format!("console-key-{}", run_token());

    // 1. Wix, S3 and the job engine; two seeded backups, taken in process.
    let config = EmulatorConfig {
        library: Library::seeded(400, 11),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config.clone()).await.expect("emulator starts");
    moto::create_bucket(BUCKET).await;
    let sdk = wix_media_archiver::aws::sdk_config().await;
    let engine = JobEngine::create(&sdk, &moto::moto_url(), BUCKET, 4, 2, 30).await;
    let mut vars = base_env(&emulator, &config);
    vars.insert("CALLER_KEYS".into(), caller_key.clone());
    vars.insert("STORAGE_BUCKET".into(), BUCKET.into());
    vars.insert("JOB_STATE_MACHINE_ARN".into(), engine.state_machine_arn.clone());
    vars.insert("JOB_HEARTBEAT_SECONDS".into(), "5".into());
    for k in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        vars.insert(k.to_owned(), std::env::var(k).expect("moto::setup sets it"));
    }
    let app = App::from_config(Config::from_lookup(|k| vars.get(k).cloned()).unwrap())
        .await
        .unwrap();
    emulator.set_omit_media_types(&["MODEL3D"]);
    let first = local::invoke(&app, &json!({"backup": {}}), Some(Duration::from_secs(120)))
        .await
        .expect("the first backup");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = local::invoke(&app, &json!({"backup": {}}), Some(Duration::from_secs(120)))
        .await
        .expect("the second backup");
    assert_eq!(second["status"], "COMPLETE", "{second}");
    let backup_id = second["backupId"].as_str().unwrap().to_owned();
    // The file to lose and find again: an image in a top-level folder, with a name of its own.
    let lines = manifest_of(&backup_id).await;
    let target = lines
        .iter()
        .find(|l| {
            l.status == LineStatus::Stored
                && l.media_type == "IMAGE"
                && !l.private
                && l.folder_path.len() > 1
                && l.folder_path.matches('/').count() == 1
                && lines.iter().filter(|o| o.display_name == l.display_name).count() == 1
        })
        .expect("a file to restore")
        .clone();
    assert!(emulator.delete_file(&target.file_id));

    // 2. The function under cargo lambda watch, and two job workers.
    let port = free_port();
    let env_file = dir.join("function.env");
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, text).unwrap();
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port"])
        .arg(port.to_string())
        .args(["--ignore-changes", "--bin", FUNCTION, "--env-file"])
        .arg(&env_file);
    for k in vars.keys() {
        command.env_remove(k);
    }
    for k in ["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL", "AWS_PROFILE", "AWS_SESSION_TOKEN"] {
        command.env_remove(k);
    }
    let watch = Process::spawn("cargo-lambda-watch", command, &dir);
    let mut worker_env: HashMap<String, String> = vars.clone();
    worker_env.insert("RUST_LOG".into(), "info".into());
    let workers = Workers::start(
        Path::new(env!("CARGO_BIN_EXE_wix-media-archiver")),
        2,
        &engine,
        worker_env,
        rig::deliver_all(),
    )
    .await;
    let origin = format!("http://127.0.0.1:{port}");
    let console = format!("{origin}/lambda-url/{FUNCTION}/console");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let answer = http.get(&console).timeout(Duration::from_secs(30)).send().await;
        if let Ok(r) = answer {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            started.elapsed() < BUILD_LIMIT,
            "the console was not served within {BUILD_LIMIT:?}\n{}",
            watch.tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 3. The browser.
    let driver_port = free_port();
    let mut driver_command = Command::new(CHROMEDRIVER);
    driver_command.arg(format!("--port={driver_port}"));
    let driver = Process::spawn("chromedriver", driver_command, &dir);
    let driver_url = format!("http://127.0.0.1:{driver_port}");
    let browser = Browser::start(&driver_url, &dir.join("profile"), true).await;
    browser.goto(&console).await;
    // The script ran under the policy: it greets.
    browser
        .wait_for(
            "the script runs",
            "document.getElementById('status').textContent.includes('Paste a caller key')",
            STEP_LIMIT,
        )
        .await;
    // Every call the page makes, kept in the page for the checks below.
    browser
        .eval(
            "window.__calls = []; const real = window.fetch; window.fetch = function (url, init) { \
             const call = {url: String(url), method: init.method, \
             signature: init.headers['X-Archive-Signature'], body: init.body || ''}; \
             window.__calls.push(call); \
             return real.apply(this, arguments).then((r) => { call.status = r.status; return r; }); }; \
             return true;",
        )
        .await;

    // From the keyboard: Tab reaches the skip link, then the key's field; typing there and
    // Enter sends the form.
    for expected in ["A", "key"] {
        browser.press(&["\u{E004}"]).await;
        let focused = browser
            .eval("const e = document.activeElement; return e.id || e.tagName")
            .await;
        assert_eq!(focused, json!(expected), "Tab");
    }
    // A wrong key: "not authorised", and no data.
    browser.press(&["not-the-key", "\u{E007}"]).await;
    browser
        .wait_for(
            "a wrong key is refused",
            "document.getElementById('status').textContent === 'not authorised'",
            STEP_LIMIT,
        )
        .await;
    assert_eq!(browser.text("#status").await, "not authorised");
    assert_eq!(
        browser.eval("return document.getElementById('main').hidden").await,
        json!(true)
    );
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#backup-rows tr').length")
            .await,
        json!(0)
    );
    browser.screenshot("01-not-authorised.png").await;

    // The key, typed and sent with Enter: the backups, newest first, and their chart.
    browser.type_into("#key", &format!("{caller_key}\u{E007}")).await;
    browser
        .wait_for(
            "the backups show",
            "document.querySelectorAll('#backup-rows tr[data-backup]').length === 2",
            STEP_LIMIT,
        )
        .await;
    let rows = browser
        .eval("return Array.from(document.querySelectorAll('#backup-rows tr[data-backup]'), r => r.dataset.backup)")
        .await;
    assert_eq!(rows, json!([backup_id, first["backupId"]]));
    let latest_row = browser
        .text(&format!("#backup-rows tr[data-backup='{backup_id}']"))
        .await;
    assert!(
        latest_row.contains("(latest)") && latest_row.contains("complete"),
        "{latest_row}"
    );
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#chart svg rect.bar').length")
            .await,
        json!(2)
    );
    assert_eq!(
        browser.eval("return document.getElementById('key').value").await,
        json!("")
    );
    browser.screenshot("02-backups.png").await;

    // Open the latest backup, then the target's folder.
    browser
        .click(&format!("#backup-rows tr[data-backup='{backup_id}'] button"))
        .await;
    let folder = target.folder_path.clone();
    browser
        .wait_for(
            "the backup's folders show",
            &format!("document.querySelector('#folders button[data-folder=\"{folder}\"]')"),
            STEP_LIMIT,
        )
        .await;
    browser
        .click(&format!("#folders button[data-folder=\"{folder}\"]"))
        .await;
    let folder_name = folder.trim_start_matches('/').to_owned();
    browser
        .wait_for(
            "the folder opens",
            &format!(
                "document.querySelector('#crumbs [aria-current]')?.textContent === {} \
                 && document.querySelectorAll('#file-rows tr[data-file]').length > 0",
                json!(folder_name)
            ),
            STEP_LIMIT,
        )
        .await;
    let shown = browser
        .eval("return Array.from(document.querySelectorAll('#file-rows tr[data-file]'), r => r.dataset.file)")
        .await;
    let in_folder: Vec<&str> = lines
        .iter()
        .filter(|l| l.folder_path == folder)
        .map(|l| l.file_id.as_str())
        .take(100)
        .collect();
    assert_eq!(shown, json!(in_folder), "the folder's files, in the manifest's order");
    browser.screenshot("03-folder.png").await;

    // Search the lost file by name, select it, restore it, and watch the job.
    browser
        .type_into("#search", &format!("{}\u{E007}", target.display_name))
        .await;
    let row = format!("#file-rows tr[data-file=\"{}\"]", target.file_id);
    browser
        .wait_for(
            "the search finds the file",
            &format!(
                "document.getElementById('files-count').textContent.includes('matching') \
                 && document.querySelector('{row}')"
            ),
            STEP_LIMIT,
        )
        .await;
    browser.click(&format!("{row} input[type=checkbox]")).await;
    browser.click("#restore-selected").await;
    browser
        .wait_for(
            "the restore job finishes",
            "document.querySelector('#job-list li[data-status=\"SUCCEEDED\"], #job-list li[data-status=\"FAILED\"]')",
            JOB_LIMIT,
        )
        .await;
    let job_text = browser.text("#job-list li").await;
    assert!(
        job_text.contains("succeeded") && job_text.contains("1 restored, 0 already there, 0 failed"),
        "{job_text}"
    );
    browser.screenshot("04-restored.png").await;
    let imports = emulator.imports();
    assert_eq!(imports.len(), 1, "the emulator received one import");
    assert_eq!(imports[0].display_name, target.display_name);

    // Download links for another file of the folder (the restored one has a new ID now):
    // a job, its links shown on the page.
    let other = lines
        .iter()
        .find(|l| {
            l.folder_path == folder && l.file_id != target.file_id && l.status == LineStatus::Stored && !l.private
        })
        .expect("another file in the folder");
    browser.click(&format!("{row} input[type=checkbox]")).await;
    browser.click("#clear-search").await;
    let other_row = format!("#file-rows tr[data-file=\"{}\"]", other.file_id);
    browser
        .wait_for(
            "the folder shows again",
            &format!(
                "!document.getElementById('files-count').textContent.includes('matching') \
                 && document.querySelector('{other_row}')"
            ),
            STEP_LIMIT,
        )
        .await;
    browser.click(&format!("{other_row} input[type=checkbox]")).await;
    browser.click("#archive-selected").await;
    browser
        .wait_for(
            "the links show",
            "document.querySelector('#links a, #links li.FAILED')",
            JOB_LIMIT,
        )
        .await;
    let shown = browser.text("#links").await;
    assert!(!shown.contains("failed"), "{shown}");
    let links = browser
        .eval("return Array.from(document.querySelectorAll('#links a'), a => a.href)")
        .await;
    let links: Vec<String> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(links[0].starts_with(&emulator.base_url()), "{links:?}");

    // A backup now, watched to its end: the table has a third backup.
    browser.click("#backup-now").await;
    browser
        .wait_for(
            "the backup job finishes",
            "Array.from(document.querySelectorAll('#job-list li')).some(li => li.textContent.startsWith('Backup') \
             && li.dataset.status === 'SUCCEEDED') \
             && document.querySelectorAll('#backup-rows tr[data-backup]').length === 3",
            JOB_LIMIT,
        )
        .await;

    // Verify the latest backup.
    browser.click("#verify").await;
    browser
        .wait_for(
            "the verification answers",
            "document.getElementById('verify-answer')",
            STEP_LIMIT,
        )
        .await;
    let verified = browser.text("#verify-answer").await;
    assert!(verified.contains("intact"), "{verified}");

    // Every call the page made is signed as the contract says: the function's own
    // verifier accepts it; a tampered copy (another MAC, another body) is refused.
    let calls = browser.eval("return window.__calls").await;
    let calls = calls.as_array().expect("the recorded calls").clone();
    assert!(calls.len() >= 8, "{calls:?}");
    let keys = [SecretString::new(caller_key.clone())];
    let mut methods = std::collections::HashSet::new();
    for (i, call) in calls.iter().enumerate() {
        let header = call["signature"].as_str().expect("every call is signed");
        let body = call["body"].as_str().unwrap();
        let checked = signature::verify(Some(header.as_bytes()), body.as_bytes(), &keys, local::unix_now(), 300);
        if i == 0 {
            // Signed with the wrong key, and refused.
            assert_eq!(call["status"], 401, "{call}");
            assert!(checked.is_err(), "the wrong key's call");
            continue;
        }
        assert!(call["status"] == 200 || call["status"] == 202, "{call}");
        methods.insert(call["method"].as_str().unwrap().to_owned());
        checked.unwrap_or_else(|e| panic!("{} {}: {e}", call["method"], call["url"]));
    }
    assert_eq!(methods.len(), 2, "GET and POST calls: {methods:?}");
    let get_call = calls
        .iter()
        .find(|c| c["status"] == 200 && c["method"] == "GET" && c["url"].as_str().unwrap().contains("/backups?"))
        .expect("the backups' GET");
    let post_call = calls
        .iter()
        .find(|c| c["url"].as_str().unwrap().ends_with("/restores"))
        .expect("the restore's POST");
    let url = |c: &Value| format!("{origin}{}", c["url"].as_str().unwrap());
    let header = get_call["signature"].as_str().unwrap().to_owned();
    let replay = http
        .get(url(get_call))
        .header("x-archive-signature", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200, "the page's own signature, sent again");
    let mut tampered = header.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let refused = http
        .get(url(get_call))
        .header("x-archive-signature", &tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "another MAC");
    let other_body = post_call["body"]
        .as_str()
        .unwrap()
        .replace("\"fileIds\"", "\"folderPath\":\"/\",\"fileIds\"");
    let refused = http
        .post(url(post_call))
        .header("content-type", "application/json")
        .header("x-archive-signature", post_call["signature"].as_str().unwrap())
        .body(other_body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "another body under the page's signature");

    // Readable at 320 px: nothing wider than the window but the tables' own scrollers.
    browser.resize(320, 1400).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let widths = browser
        .eval("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        .await;
    browser.screenshot("05-narrow-320px.png").await;
    let wide = browser
        .eval(
            "const w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll('body *'))\
             .filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest('.scroll'))\
             .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))",
        )
        .await;
    assert!(
        widths[0].as_u64().unwrap() <= widths[1].as_u64().unwrap(),
        "the page is wider than 320 px: {widths}; too wide: {wide}"
    );
    browser.close().await;

    // JavaScript off: the page says it needs it.
    let no_js = Browser::start(&driver_url, &dir.join("profile-nojs"), false).await;
    no_js.goto(&console).await;
    let notice = no_js.text("#noscript").await;
    assert!(notice.contains("needs JavaScript"), "{notice}");
    assert_eq!(no_js.text("#status").await, "", "no script ran");
    no_js.screenshot("06-no-javascript.png").await;
    no_js.close().await;
    drop(driver);

    workers.stop().await;
    // The function's output holds no key, signature or link.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let output = watch.output();
    assert!(
        output.contains("\"summary\":true"),
        "the function logged\n{}",
        watch.tail()
    );
    let mut needles = vec![("the caller key", caller_key.clone())];
    for call in &calls {
        let header = call["signature"].as_str().unwrap();
        needles.push(("a signature", header.split("v1=").nth(1).unwrap().to_owned()));
    }
    needles.push(("a presigned link", "X-Amz-Signature".to_owned()));
    needles.extend(links.iter().map(|l| ("a download link", l.clone())));
    needles.push(("an archive link path", "/_emulator/archives/".to_owned()));
    for (what, needle) in &needles {
        assert!(
            !output.contains(needle.as_str()),
            "the output of cargo lambda watch holds {what} ({})",
            watch.log.display()
        );
    }
    drop(watch);
    eprintln!("screenshots in {}", artifacts().display());
    let _ = std::fs::remove_dir_all(&dir);
}
