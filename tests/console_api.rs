//! The console's page and the signed routes it uses, in process: the page served unsigned
//! with its headers; every route's signature, method and parameter rules; the backups
//! listed, a manifest browsed by folder, searched and paged, the failures, a verification,
//! and a backup started now and run as a job on moto's Step Functions with the real binary
//! as its worker.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use common::moto;
use common::*;
use job_rig::{self as rig, JobEngine, Workers};
use serde_json::{json, Value};
use wix_emulator::{Emulator, EmulatorConfig, Library};
use wix_media_archiver::app::App;
use wix_media_archiver::backup::manifest::{self, LineStatus, ManifestLine};
use wix_media_archiver::config::Config;
use wix_media_archiver::{local, signature};

const BUCKET: &str = "console-backups";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wix-media-archiver"))
}

struct Rig {
    emulator: Emulator,
    engine: JobEngine,
    app: App,
    worker_env: HashMap<String, String>,
}

async fn rig(config: EmulatorConfig) -> Rig {
    moto::create_bucket(BUCKET).await;
    let sdk = wix_media_archiver::aws::sdk_config().await;
    let engine = JobEngine::create(&sdk, &moto::moto_url(), BUCKET, 4, 2, 30).await;
    let emulator = Emulator::start(config.clone()).await.expect("emulator starts");
    let mut vars = base_env(&emulator, &config);
    vars.insert("STORAGE_BUCKET".into(), BUCKET.into());
    vars.insert("JOB_STATE_MACHINE_ARN".into(), engine.state_machine_arn.clone());
    vars.insert("JOB_HEARTBEAT_SECONDS".into(), "1".into());
    let app_config = Config::from_lookup(|k| vars.get(k).cloned()).expect("valid configuration");
    let app = App::from_config(app_config).await.expect("app builds");
    let mut worker_env = vars;
    for k in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        worker_env.insert(k.to_owned(), std::env::var(k).expect("moto::setup sets it"));
    }
    Rig {
        emulator,
        engine,
        app,
        worker_env,
    }
}

/// A Function URL event; `target` may carry a query (`/backups?limit=1`).
fn event(method: &str, target: &str, body: &str, headers: &[(&str, &str)]) -> Value {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut e = function_url_event(method, path, body, headers);
    e["rawQueryString"] = json!(query);
    e
}

fn signed(method: &str, target: &str, body: &str) -> Value {
    let sig = signature::sign(CALLER_KEY, local::unix_now(), body.as_bytes());
    event(method, target, body, &[("x-archive-signature", &sig)])
}

/// Status, body text and headers of an answer.
async fn raw(app: &App, event: &Value) -> (u16, String, Value) {
    let response = local::invoke(app, event, Some(Duration::from_secs(300)))
        .await
        .expect("an HTTP answer");
    (
        response["statusCode"].as_u64().expect("a status") as u16,
        response["body"].as_str().unwrap_or_default().to_owned(),
        response["headers"].clone(),
    )
}

async fn http(app: &App, event: &Value) -> (u16, Value) {
    let (status, body, _) = raw(app, event).await;
    let body = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status, body)
}

async fn get(app: &App, target: &str) -> Value {
    let (status, body) = http(app, &signed("GET", target, "")).await;
    assert_eq!(status, 200, "GET {target}: {body}");
    body
}

#[tokio::test]
async fn the_console_is_served_unsigned_with_strict_headers_and_no_data() {
    let h = harness(EmulatorConfig::default(), &[]).await;
    for (path, content_type, marker) in [
        ("/console", "text/html", "<noscript>"),
        ("/console/app.js", "text/javascript", "crypto.subtle.sign"),
        ("/console/app.css", "text/css", "@media"),
        ("/prod/console", "text/html", "console/app.js"),
    ] {
        let (status, body, headers) = raw(&h.app, &event("GET", path, "", &[])).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            headers["content-type"].as_str().unwrap().starts_with(content_type),
            "{path}: {headers}"
        );
        let csp = headers["content-security-policy"].as_str().expect("a CSP");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(body.contains(marker), "{path}");
    }
    let (_, page, _) = raw(&h.app, &event("GET", "/console", "", &[])).await;
    let noscript = page
        .split("<noscript>")
        .nth(1)
        .unwrap()
        .split("</noscript>")
        .next()
        .unwrap();
    assert!(noscript.contains("needs JavaScript"), "{noscript}");
    assert!(
        !page.contains(CALLER_KEY) && !page.contains(&h.emulator.base_url()),
        "the page holds no data"
    );

    let (status, _, headers) = raw(&h.app, &event("GET", "/console/", "", &[])).await;
    assert_eq!(status, 308);
    assert_eq!(headers["location"], "../console");
    let (status, _, headers) = raw(&h.app, &event("POST", "/console", "{}", &[])).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET");
    assert_eq!(h.emulator.api_calls().len(), 0, "no Wix call");
}

/// `archiver-local console`'s HTTP adapter: real HTTP in, the handler's answer out.
#[tokio::test]
async fn the_local_console_serves_the_function_over_http() {
    let config = EmulatorConfig {
        library: library_with(Library::flat(10), &flat_ids(2)),
        ..EmulatorConfig::default()
    };
    let h = harness(config, &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = std::sync::Arc::new(h.app);
    let client = reqwest::Client::new();
    let work = async {
        let page = client.get(format!("{base}/console")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'"));
        assert!(page.text().await.unwrap().contains("<noscript>"));
        let unsigned = client.get(format!("{base}/backups?limit=1")).send().await.unwrap();
        assert_eq!(unsigned.status(), 401);
        let body = json!({"fileIds": flat_ids(2)}).to_string();
        let sig = signature::sign(CALLER_KEY, local::unix_now(), body.as_bytes());
        let archived = client
            .post(format!("{base}/archives"))
            .header("content-type", "application/json")
            .header("x-archive-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(archived.status(), 200);
        let answer: Value = archived.json().await.unwrap();
        assert_eq!(answer["fileCount"], 2, "{answer}");
    };
    tokio::select! {
        served = wix_media_archiver::console::serve::serve(app, listener) => panic!("the server stopped: {served:?}"),
        () = work => {}
    }
}

#[tokio::test]
async fn every_console_route_keeps_the_signature_rules() {
    let _moto = moto::setup().await;
    let r = rig(EmulatorConfig::default()).await;
    let routes: [(&str, &str, &str, &str); 7] = [
        ("GET", "/backups?limit=5", "", "GET, POST"),
        ("POST", "/backups", "{}", "GET, POST"),
        ("GET", "/backups/latest/files?folder=%2F", "", "GET"),
        ("GET", "/backups/latest/failures", "", "GET"),
        ("GET", "/jobs", "", "GET"),
        ("GET", "/jobs/b-20261202T030000Z", "", "GET"),
        ("POST", "/verifies", r#"{"backupId":"latest"}"#, "POST"),
    ];
    for (method, target, body, allow) in routes {
        let now = local::unix_now();
        let wrong_key = signature::sign("another-key", now, body.as_bytes());
        // Signed for another body: what a tampered request looks like.
        let other_body = signature::sign(CALLER_KEY, now, b"{\"backupId\":\"20200101T000000Z-00000000\"}");
        let stale = signature::sign(CALLER_KEY, now - 3600, body.as_bytes());
        for (what, headers) in [
            ("unsigned", vec![]),
            ("another key", vec![("x-archive-signature", wrong_key.as_str())]),
            ("another body", vec![("x-archive-signature", other_body.as_str())]),
            ("an hour old", vec![("x-archive-signature", stale.as_str())]),
        ] {
            let (status, answer) = http(&r.app, &event(method, target, body, &headers)).await;
            assert_eq!(status, 401, "{method} {target} {what}: {answer}");
            assert_eq!(answer["error"]["code"], "UNAUTHORIZED");
        }
        let (status, _, headers) = raw(&r.app, &signed("PUT", target, body)).await;
        assert_eq!(status, 405, "PUT {target}");
        assert_eq!(headers["allow"], allow);
    }
    assert_eq!(r.emulator.api_calls().len(), 0, "no Wix call");
    assert!(moto::keys(BUCKET, "").await.is_empty(), "nothing written");
    assert_eq!(r.engine.executions().await, 0, "no job");
}

fn site_prefix() -> String {
    format!("wix-media-archiver/{}/", EmulatorConfig::default().site_id)
}

async fn manifest_of(backup_id: &str) -> Vec<ManifestLine> {
    let key = format!("{}backups/{backup_id}/manifest.jsonl.gz", site_prefix());
    manifest::decode(&moto::get(BUCKET, &key).await).expect("a readable manifest")
}

/// Every page of a listing, following `nextCursor`.
async fn all_pages(app: &App, target: &str) -> (Vec<Value>, Vec<Value>) {
    let mut files = Vec::new();
    let mut first = Vec::new();
    let mut cursor: Option<String> = None;
    for page_number in 0.. {
        assert!(page_number < 1000, "the cursor never ends");
        let sep = if target.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{target}{sep}cursor={c}"),
            None => target.to_owned(),
        };
        let page = get(app, &url).await;
        if cursor.is_none() {
            first = page["folders"].as_array().cloned().unwrap_or_default();
        } else {
            assert!(page.get("folders").is_none(), "folders only on the first page");
        }
        files.extend(page["files"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert_eq!(page["matched"].as_u64().unwrap() as usize, files.len(), "{target}");
                break;
            }
        }
    }
    (files, first)
}

fn ids(files: &[Value]) -> Vec<String> {
    files.iter().map(|f| f["fileId"].as_str().unwrap().to_owned()).collect()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn an_owner_sees_the_backups_browses_a_manifest_and_starts_a_backup() {
    let _moto = moto::setup().await;
    let config = EmulatorConfig {
        library: Library::seeded(600, 5),
        ..EmulatorConfig::default()
    };
    let r = rig(config).await;
    // Wix leaves 3D models out of its zips: failures with a reason, the backup complete.
    r.emulator.set_omit_media_types(&["MODEL3D"]);
    let first = local::invoke(&r.app, &json!({"backup": {}}), Some(Duration::from_secs(120)))
        .await
        .expect("a backup");
    let some: Vec<ManifestLine> = manifest_of(first["backupId"].as_str().unwrap())
        .await
        .into_iter()
        .filter(|l| l.status == LineStatus::Stored && l.media_type == "IMAGE")
        .take(5)
        .collect();
    for l in &some[..2] {
        assert!(r.emulator.delete_file(&l.file_id));
    }
    for l in &some[2..] {
        assert!(r.emulator.change_file_content(&l.file_id));
    }
    // A second later: another backup ID.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = local::invoke(&r.app, &json!({"backup": {}}), Some(Duration::from_secs(120)))
        .await
        .expect("a second backup");
    assert_eq!(second["removedFiles"], 2, "{second}");

    // The backups, newest first, one page at a time.
    let list = get(&r.app, "/backups").await;
    let backups = list["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 2, "{list}");
    assert_eq!(list["nextCursor"], Value::Null);
    for (shown, summary) in backups.iter().zip([&second, &first]) {
        assert_eq!(shown["backupId"], summary["backupId"]);
        for field in [
            "status",
            "full",
            "listedFiles",
            "storedFiles",
            "newFiles",
            "changedFiles",
            "removedFiles",
            "failedFiles",
            "storedBytes",
        ] {
            assert_eq!(shown[field], summary[field], "{field}");
        }
        assert!(shown["startedAt"].as_str().unwrap().ends_with('Z'));
        assert!(shown.get("failures").is_none(), "failures are paged, not listed here");
    }
    assert_eq!(backups[0]["latest"], true);
    assert_eq!(backups[1]["latest"], false);
    // The three changed, and the files that failed before, tried again.
    assert!(backups[0]["changedFiles"].as_u64().unwrap() >= 3, "{}", backups[0]);
    assert!(first["failedFiles"].as_u64().unwrap() > 0, "{first}");
    let page = get(&r.app, "/backups?limit=1").await;
    assert_eq!(page["backups"][0]["backupId"], second["backupId"]);
    let cursor = page["nextCursor"].as_str().expect("a second page").to_owned();
    let page = get(&r.app, &format!("/backups?limit=1&cursor={cursor}")).await;
    assert_eq!(page["backups"][0]["backupId"], first["backupId"]);
    assert_eq!(page["nextCursor"], Value::Null);

    // The manifest by folder: every file once, in its folder, across pages of 7.
    let backup_id = second["backupId"].as_str().unwrap();
    let lines = manifest_of(backup_id).await;
    let (root_files, root_folders) = all_pages(&r.app, "/backups/latest/files?limit=7").await;
    let in_root: usize = root_folders.iter().map(|f| f["files"].as_u64().unwrap() as usize).sum();
    assert_eq!(
        root_files.len() + in_root,
        lines.len(),
        "the root and its folders hold every file"
    );
    let folder = &lines
        .iter()
        .find(|l| l.folder_path.matches('/').count() >= 2)
        .expect("a nested folder")
        .folder_path;
    let (files, _) = all_pages(
        &r.app,
        &format!("/backups/{backup_id}/files?folder={}&limit=7", encode(folder)),
    )
    .await;
    let expected: Vec<String> = lines
        .iter()
        .filter(|l| &l.folder_path == folder)
        .map(|l| l.file_id.clone())
        .collect();
    assert_eq!(ids(&files), expected, "{folder}");
    assert!(files
        .iter()
        .all(|f| f.get("object").is_none() && f.get("entry").is_none()));
    let parent = &folder[..folder.rfind('/').unwrap()];
    let (_, parent_folders) = all_pages(&r.app, &format!("/backups/latest/files?folder={}", encode(parent))).await;
    let listed = parent_folders
        .iter()
        .find(|f| f["path"] == json!(folder))
        .expect("the folder under its parent");
    let below = lines
        .iter()
        .filter(|l| l.folder_path == *folder || l.folder_path.starts_with(&format!("{folder}/")))
        .count();
    assert_eq!(listed["files"], below);

    // Search by name, whatever the case, in the whole backup.
    let wanted = lines.iter().find(|l| l.display_name.len() > 6).unwrap();
    let fragment = wanted.display_name[1..6].to_uppercase();
    let (found, _) = all_pages(&r.app, &format!("/backups/latest/files?q={}", encode(&fragment))).await;
    assert!(ids(&found).contains(&wanted.file_id), "{fragment}");
    let expected: HashSet<&str> = lines
        .iter()
        .filter(|l| l.display_name.to_lowercase().contains(&fragment.to_lowercase()))
        .map(|l| l.file_id.as_str())
        .collect();
    assert_eq!(ids(&found).iter().map(String::as_str).collect::<HashSet<_>>(), expected);

    // The failures, with their reasons.
    let (failures, _) = all_pages(&r.app, &format!("/backups/{backup_id}/failures?limit=3")).await;
    assert_eq!(failures.len() as u64, second["failedFiles"].as_u64().unwrap());
    assert!(!failures.is_empty());
    assert!(failures
        .iter()
        .all(|f| f["status"] == "FAILED" && f["error"]["code"].is_string()));

    // Refusals: a bad limit, cursor, folder or parameter; a backup that is not there.
    for (target, status) in [
        ("/backups/latest/files?limit=0", 400),
        ("/backups/latest/files?limit=501", 400),
        ("/backups/latest/files?cursor=x", 400),
        ("/backups/latest/files?folder=Shop", 400),
        ("/backups/latest/files?sort=name", 400),
        ("/backups/latest/failures?q=x", 400),
        ("/backups?cursor=yesterday", 400),
        ("/backups/20200101T000000Z-00000000/files", 404),
    ] {
        let (got, answer) = http(&r.app, &signed("GET", target, "")).await;
        assert_eq!(got, status, "{target}: {answer}");
    }

    // Verify the latest backup.
    let (status, verified) = http(&r.app, &signed("POST", "/verifies", r#"{"backupId":"latest"}"#)).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["backupId"], second["backupId"]);
    assert!(verified["checkedFiles"].as_u64().unwrap() > 500);
    let (status, _) = http(&r.app, &signed("POST", "/verifies", r#"{"backupId":"soon"}"#)).await;
    assert_eq!(status, 400);

    // A backup now: a job, listed while it runs, then finished by the worker.
    let (status, refused) = http(&r.app, &signed("POST", "/backups", r#"{"backup":{"nope":1}}"#)).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(r.engine.executions().await, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, accepted) = http(&r.app, &signed("POST", "/backups", "{}")).await;
    assert_eq!(status, 202, "{accepted}");
    let job_id = accepted["jobId"].as_str().unwrap().to_owned();
    assert!(job_id.starts_with("b-"));
    assert_eq!(accepted["statusUrl"], format!("/jobs/{job_id}"));
    let running = get(&r.app, "/jobs").await;
    let listed = running["jobs"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{running}");
    assert_eq!(listed[0]["jobId"], json!(job_id));
    assert_eq!(listed[0]["kind"], "backup");
    let workers = Workers::start(binary(), 2, &r.engine, r.worker_env.clone(), rig::deliver_all()).await;
    let (status, output) = r.engine.wait(&job_id, Duration::from_secs(180)).await;
    workers.stop().await;
    assert_eq!(status, "SUCCEEDED", "{output:?}");
    let done = get(&r.app, &format!("/jobs/{job_id}")).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["kind"], "backup");
    assert_eq!(done["result"]["backupId"], accepted["backupId"]);
    assert_eq!(get(&r.app, "/jobs").await["jobs"], json!([]));
    assert_eq!(get(&r.app, "/backups").await["backups"].as_array().unwrap().len(), 3);
}
