//! Jobs end to end: the state machine the template deploys, run by moto's Step Functions
//! interpreter; the job queue on moto's SQS; the real Lambda binary as the queue's workers
//! (SQS events, the way the event source mapping delivers them); S3 on moto; the Wix
//! emulator. Jobs are started the way users start them: a scheduled backup event, a signed
//! `POST /archives` with `async`, a signed `POST /restores`.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use common::moto;
use common::*;
use job_rig::{self as rig, Action, JobEngine, Workers};
use serde_json::{json, Value};
use wix_emulator::{Emulator, EmulatorConfig, Library};
use wix_media_archiver::app::App;
use wix_media_archiver::backup::manifest::{self, LineStatus, ManifestLine};
use wix_media_archiver::config::Config;
use wix_media_archiver::{local, signature};

const BUCKET: &str = "owner-backups";

/// The Lambda binary the workers run.
fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wix-media-archiver"))
}

/// The Wix emulator, the job engine, an in-process app that starts jobs, and the
/// environment of the worker binaries.
struct Rig {
    emulator: Emulator,
    engine: JobEngine,
    app: App,
    worker_env: HashMap<String, String>,
}

/// The job engine on moto, an emulator holding `library` and an app configured for jobs;
/// `heartbeat_seconds` and `concurrency` are the state machine's.
async fn rig(library: Library, env: &[(&str, &str)], heartbeat_seconds: u32, concurrency: u32) -> Rig {
    let config = EmulatorConfig {
        library,
        ..EmulatorConfig::default()
    };
    rig_with(config, env, heartbeat_seconds, concurrency).await
}

/// [`rig`] with an emulator configured otherwise.
async fn rig_with(config: EmulatorConfig, env: &[(&str, &str)], heartbeat_seconds: u32, concurrency: u32) -> Rig {
    moto::create_bucket(BUCKET).await;
    let sdk = wix_media_archiver::aws::sdk_config().await;
    let engine = JobEngine::create(&sdk, &moto::moto_url(), BUCKET, heartbeat_seconds, concurrency, 30).await;
    let emulator = Emulator::start(config.clone()).await.expect("emulator starts");
    let mut vars = base_env(&emulator, &config);
    vars.insert("STORAGE_BUCKET".into(), BUCKET.into());
    vars.insert("JOB_STATE_MACHINE_ARN".into(), engine.state_machine_arn.clone());
    vars.insert("JOB_HEARTBEAT_SECONDS".into(), "1".into());
    for (k, v) in env {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let app_config = Config::from_lookup(|k| vars.get(k).cloned()).expect("valid configuration");
    let app = App::from_config(app_config).await.expect("app builds");
    assert!(app.engine.is_some(), "jobs are configured");
    let mut worker_env = vars;
    for k in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        worker_env.insert(
            k.to_owned(),
            std::env::var(k).expect("moto::setup sets the AWS variables"),
        );
    }
    Rig {
        emulator,
        engine,
        app,
        worker_env,
    }
}

fn site_prefix() -> String {
    format!("wix-media-archiver/{}/", EmulatorConfig::default().site_id)
}

fn key_of(uri: &str) -> String {
    uri.strip_prefix(&format!("s3://{BUCKET}/")).unwrap().to_owned()
}

async fn manifest_of(summary: &Value) -> Vec<ManifestLine> {
    let bytes = moto::get(BUCKET, &key_of(summary["manifest"].as_str().expect("a manifest URI"))).await;
    manifest::decode(&bytes).expect("a readable manifest")
}

/// A manifest line without where this backup put it: what two backups of the same library
/// must agree on.
fn essence(l: &ManifestLine) -> Value {
    json!({
        "fileId": l.file_id, "displayName": l.display_name, "folderPath": l.folder_path,
        "mediaType": l.media_type, "size": l.size_in_bytes, "hash": l.hash, "private": l.private,
        "status": format!("{:?}", l.status), "entry": l.entry, "crc32": l.crc32, "reason": l.reason,
    })
}

/// Every line's file once.
fn assert_each_file_once(lines: &[ManifestLine]) {
    let mut seen = HashSet::new();
    for l in lines {
        assert!(seen.insert(&l.file_id), "{} is in the manifest twice", l.file_id);
    }
}

async fn start_scheduled(app: &App, at: &str) -> Value {
    start_scheduled_with(app, at, json!({})).await
}

async fn start_scheduled_with(app: &App, at: &str, options: Value) -> Value {
    local::invoke(
        app,
        &json!({"backup": options, "scheduledTime": at}),
        Some(Duration::from_secs(60)),
    )
    .await
    .unwrap_or_else(|e| panic!("the schedule's event is refused: {e}"))
}

async fn result_of(job_id: &str) -> Value {
    let bytes = moto::get(BUCKET, &format!("{}jobs/{job_id}/result.json", site_prefix())).await;
    serde_json::from_slice(&bytes).expect("result.json is JSON")
}

/// The stored archives of a backup: key → entry names.
async fn archives_of(backup_id: &str) -> HashMap<String, Vec<String>> {
    let prefix = format!("{}backups/{backup_id}/archives/", site_prefix());
    let mut out = HashMap::new();
    for key in moto::keys(BUCKET, &prefix).await {
        let bytes = moto::get(BUCKET, &key).await;
        let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a stored archive is a zip");
        out.insert(key, zip.file_names().map(str::to_owned).collect());
    }
    out
}

#[tokio::test]
async fn a_12000_file_backup_as_a_job_indexes_the_library_as_a_one_invocation_backup_does() {
    let _moto = moto::setup().await;
    let r = rig_with(
        // 120 search pages of 25 ms or more and listing steps of a second: the listing
        // takes several steps however fast the machine.
        EmulatorConfig {
            library: Library::seeded(12_000, 7),
            latency: Duration::from_millis(25),
            ..EmulatorConfig::default()
        },
        &[("JOB_LIST_STEP_SECONDS", "1"), ("WIX_REQUESTS_PER_MINUTE", "6000")],
        4,
        3,
    )
    .await;
    let workers = Workers::start(binary(), 3, &r.engine, r.worker_env.clone(), rig::deliver_all()).await;

    let started = start_scheduled(&r.app, "2026-12-06T03:00:00Z").await;
    let job_id = started["jobId"].as_str().expect("a job ID").to_owned();
    assert_eq!(job_id, "b-20261206T030000Z");
    assert_eq!(started["status"], "RUNNING");
    // The schedule delivered twice for the same time: the same job, started once.
    let again = start_scheduled(&r.app, "2026-12-06T03:00:00Z").await;
    assert_eq!(again["jobId"], started["jobId"]);
    assert_eq!(again["backupId"], started["backupId"]);
    assert_eq!(again["alreadyStarted"], true);

    let (status, output) = r.engine.wait(&job_id, Duration::from_secs(240)).await;
    let stats = workers.stop().await;
    assert_eq!(status, "SUCCEEDED", "{output:?}");
    assert_eq!(r.engine.executions().await, 1, "one execution for one scheduled time");
    assert!(
        stats.delivered("list") >= 2,
        "the listing took several steps: {}",
        stats.delivered("list")
    );
    assert_eq!(stats.errors.load(std::sync::atomic::Ordering::SeqCst), 0);

    let summary = result_of(&job_id).await;
    assert_eq!(summary["status"], "COMPLETE", "{summary}");
    assert_eq!(summary["backupId"], started["backupId"]);
    assert_eq!(summary["listedFiles"], 12_000);
    let job_lines = manifest_of(&summary).await;
    assert_eq!(job_lines.len(), 12_000);
    assert_each_file_once(&job_lines);

    // The same library backed up in one invocation: the same index.
    let one = local::invoke(
        &r.app,
        &json!({"backup": {"full": true}}),
        Some(Duration::from_secs(300)),
    )
    .await
    .expect("a one-invocation backup");
    let one_lines = manifest_of(&one).await;
    let a: Vec<Value> = job_lines.iter().map(essence).collect();
    let b: Vec<Value> = one_lines.iter().map(essence).collect();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }

    // In S3: every stored public file in exactly one zip of the job's backup.
    let backup_id = summary["backupId"].as_str().unwrap();
    let zips = archives_of(backup_id).await;
    let mut entries: Vec<&String> = zips.values().flatten().collect();
    let total = entries.len();
    entries.sort();
    entries.dedup();
    assert_eq!(entries.len(), total, "no entry twice across the backup's archives");
    let stored_public = job_lines
        .iter()
        .filter(|l| l.status == LineStatus::Stored && !l.private)
        .count();
    assert_eq!(total, stored_public);
    for l in job_lines.iter().filter(|l| l.status == LineStatus::Stored) {
        let object = l.object.as_ref().expect("a stored line names its object");
        assert!(object.contains(backup_id), "{object}");
        if !l.private {
            assert!(
                zips[object].contains(l.entry.as_ref().unwrap()),
                "{} in {object}",
                l.file_id
            );
        }
    }
    // No link and no key in the workers' logs.
    let logs = stats.logs.lock().unwrap().join("\n");
    assert!(!logs.is_empty());
    assert!(!logs.contains("/_emulator/"), "a download link is in a log");
    assert!(
        !logs.contains(&EmulatorConfig::default().api_key),
        "the API key is in a log"
    );
    assert!(!logs.contains("X-Amz-Signature"), "a presigned URL is in a log");
}

#[tokio::test]
async fn workers_killed_in_the_middle_of_batches_lose_no_file_and_store_none_twice() {
    let _moto = moto::setup().await;
    let r = rig(Library::seeded(5_000, 11), &[], 3, 3).await;
    // The first delivery of batches 1, 3 and 4 is killed a moment after it starts; so is the
    // first finish. Step Functions times their tasks out and sends them again.
    let plan: rig::Plan = std::sync::Arc::new(|step, number, earlier| match (step, number) {
        ("batch", Some(1 | 3 | 4)) if earlier < 6 => Action::KillAfter(Duration::from_millis(150)),
        ("finish", _) if earlier == 0 => Action::KillAfter(Duration::from_millis(50)),
        _ => Action::Deliver,
    });
    let workers = Workers::start(binary(), 3, &r.engine, r.worker_env.clone(), plan).await;
    let started = start_scheduled(&r.app, "2026-12-06T04:00:00Z").await;
    let job_id = started["jobId"].as_str().unwrap().to_owned();
    let (status, output) = r.engine.wait(&job_id, Duration::from_secs(240)).await;
    let stats = workers.stop().await;
    assert_eq!(status, "SUCCEEDED", "{output:?}");
    assert!(stats.kills.load(std::sync::atomic::Ordering::SeqCst) >= 3);

    let summary = result_of(&job_id).await;
    assert_eq!(summary["status"], "COMPLETE", "{summary}");
    assert_eq!(summary["failedFiles"], 0, "{summary}");
    let lines = manifest_of(&summary).await;
    assert_eq!(lines.len(), 5_000);
    assert_each_file_once(&lines);
    let zips = archives_of(summary["backupId"].as_str().unwrap()).await;
    let total: usize = zips.values().map(Vec::len).sum();
    let stored_public = lines
        .iter()
        .filter(|l| l.status == LineStatus::Stored && !l.private)
        .count();
    assert_eq!(total, stored_public, "each stored file in one archive, once");
    // A killed copy leaves its multipart upload open (the bucket's lifecycle rule aborts it).
    let open = moto::open_uploads(BUCKET).await;
    assert!(
        open <= stats.kills.load(std::sync::atomic::Ordering::SeqCst),
        "{open} uploads left open"
    );
}

#[tokio::test]
async fn a_batch_that_always_fails_is_reported_and_the_job_finishes() {
    let _moto = moto::setup().await;
    let r = rig(Library::seeded(3_500, 5), &[], 4, 2).await;
    let plan: rig::Plan = std::sync::Arc::new(|step, number, _| match (step, number) {
        ("batch", Some(2)) => Action::CorruptBatch,
        _ => Action::Deliver,
    });
    let workers = Workers::start(binary(), 2, &r.engine, r.worker_env.clone(), plan).await;
    let started = start_scheduled(&r.app, "2026-12-06T05:00:00Z").await;
    let job_id = started["jobId"].as_str().unwrap().to_owned();
    let (status, output) = r.engine.wait(&job_id, Duration::from_secs(180)).await;
    workers.stop().await;
    assert_eq!(status, "SUCCEEDED", "a failed batch does not fail the job: {output:?}");
    let summary = result_of(&job_id).await;
    assert_eq!(summary["status"], "INCOMPLETE", "{summary}");
    let lines = manifest_of(&summary).await;
    assert_eq!(lines.len(), 3_500, "every file has its line");
    assert_each_file_once(&lines);
    let failed: Vec<&ManifestLine> = lines.iter().filter(|l| l.status == LineStatus::Failed).collect();
    assert!(!failed.is_empty() && failed.len() <= 1000, "{}", failed.len());
    assert_eq!(summary["failedFiles"], failed.len());
    // The report lists them.
    let report: Value =
        serde_json::from_slice(&moto::get(BUCKET, &key_of(summary["report"].as_str().unwrap())).await).unwrap();
    let reported: usize = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileIds"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(reported, failed.len(), "{}", report["failed"]);
    // latest.json does not name an incomplete backup.
    assert!(moto::keys(BUCKET, &format!("{}latest.json", site_prefix()))
        .await
        .is_empty());
}

fn signed_request(method: &str, path: &str, body: &str, extra: &[(&str, &str)]) -> Value {
    let sig = signature::sign(CALLER_KEY, local::unix_now(), body.as_bytes());
    let mut headers = vec![("x-archive-signature", sig.as_str())];
    headers.extend_from_slice(extra);
    function_url_event(method, path, body, &headers)
}

async fn http(app: &App, event: &Value) -> (u16, Value, Value) {
    let response = local::invoke(app, event, Some(Duration::from_secs(300)))
        .await
        .expect("an HTTP answer");
    let (status, body) = http_parts(&response);
    (status, body, response["headers"].clone())
}

#[tokio::test]
async fn an_async_request_answers_202_and_its_job_holds_the_answer() {
    let _moto = moto::setup().await;
    let ids = flat_ids(2_500);
    let r = rig(library_with(Library::flat(3_000), &ids), &[], 4, 2).await;
    let body = json!({"fileIds": ids, "async": true}).to_string();
    let event = signed_request("POST", "/archives", &body, &[]);
    let (status, accepted, headers) = http(&r.app, &event).await;
    assert_eq!(status, 202, "{accepted}");
    let job_id = accepted["jobId"].as_str().unwrap().to_owned();
    assert_eq!(accepted["status"], "RUNNING");
    assert_eq!(accepted["statusUrl"], format!("/archives/jobs/{job_id}"));
    assert_eq!(headers["location"], accepted["statusUrl"]);
    assert_eq!(r.emulator.api_calls().len(), 0, "a 202 makes no Wix call");

    // Sent again (the same `t` and `v1`): the same job, the first request's answer.
    let (status, again, _) = http(&r.app, &event).await;
    assert_eq!(status, 202);
    assert_eq!(again, accepted);

    // Looked at before any worker runs: running, nothing done.
    let status_event = signed_request("GET", &format!("/archives/jobs/{job_id}"), "", &[]);
    let (status, running, _) = http(&r.app, &status_event).await;
    assert_eq!(status, 200, "{running}");
    assert_eq!(running["status"], "RUNNING");
    assert_eq!(running["progress"]["done"], 0);
    assert!(running.get("result").is_none());

    let workers = Workers::start(binary(), 2, &r.engine, r.worker_env.clone(), rig::deliver_all()).await;
    let (status, output) = r.engine.wait(&job_id, Duration::from_secs(120)).await;
    workers.stop().await;
    assert_eq!(status, "SUCCEEDED", "{output:?}");
    assert_eq!(r.engine.executions().await, 1, "one job for the request sent twice");

    let (status, done, _) = http(
        &r.app,
        &signed_request("GET", &format!("/archives/jobs/{job_id}"), "", &[]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["progress"]["done"], done["progress"]["total"]);
    assert_eq!(done["progress"]["total"], 3);
    let result = &done["result"];
    assert_eq!(result["requestId"], accepted["requestId"]);
    assert_eq!(result["fileCount"], 2_500);
    assert_eq!(result["archives"].as_array().unwrap().len(), 3);
    assert_invariant(result, &ids);
    for archive in result["archives"].as_array().unwrap() {
        let entries = zip_entries(archive["downloadUrl"].as_str().unwrap()).await;
        assert_eq!(entries.len() as u64, archive["fileCount"].as_u64().unwrap());
    }
}

#[tokio::test]
async fn prefer_respond_async_makes_a_job_and_a_restore_is_one_too() {
    let _moto = moto::setup().await;
    let r = rig(Library::seeded(600, 3), &[], 4, 2).await;
    let workers = Workers::start(binary(), 2, &r.engine, r.worker_env.clone(), rig::deliver_all()).await;
    // A backup to restore from, in one invocation.
    let backup = local::invoke(&r.app, &json!({"backup": {}}), Some(Duration::from_secs(120)))
        .await
        .expect("a backup");
    assert_eq!(backup["status"], "COMPLETE", "{backup}");
    let lines = manifest_of(&backup).await;
    let stored: Vec<&ManifestLine> = lines.iter().filter(|l| l.status == LineStatus::Stored).collect();
    // Wix does not import files of type OTHER (a restore reports them failed).
    let lost: Vec<String> = stored
        .iter()
        .filter(|l| l.media_type != "OTHER")
        .take(40)
        .map(|l| l.file_id.clone())
        .collect();
    for id in &lost {
        r.emulator.delete_file(id);
    }

    // GET /backups/latest and /backups/<id>: the summary.
    let (status, latest, _) = http(&r.app, &signed_request("GET", "/backups/latest", "", &[])).await;
    assert_eq!(status, 200, "{latest}");
    assert_eq!(latest["backupId"], backup["backupId"]);
    assert_eq!(latest["listedFiles"], backup["listedFiles"]);
    let path = format!("/backups/{}", backup["backupId"].as_str().unwrap());
    let (status, by_id, _) = http(&r.app, &signed_request("GET", &path, "", &[])).await;
    assert_eq!(status, 200);
    assert_eq!(by_id, latest);
    let (status, _, _) = http(
        &r.app,
        &signed_request("GET", "/backups/20200101T000000Z-00000000", "", &[]),
    )
    .await;
    assert_eq!(status, 404);

    // The restore as a job.
    let body = json!({"restore": {"backupId": "latest"}}).to_string();
    let (status, accepted, _) = http(&r.app, &signed_request("POST", "/restores", &body, &[])).await;
    assert_eq!(status, 202, "{accepted}");
    let job_id = accepted["jobId"].as_str().unwrap().to_owned();
    assert_eq!(accepted["statusUrl"], format!("/restores/jobs/{job_id}"));
    let (status, output) = r.engine.wait(&job_id, Duration::from_secs(120)).await;
    assert_eq!(status, "SUCCEEDED", "{output:?}");
    let (status, done, _) = http(
        &r.app,
        &signed_request("GET", &format!("/restores/jobs/{job_id}"), "", &[]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let report = &done["result"];
    let restored: HashSet<&str> = report["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fileId"].as_str().unwrap())
        .collect();
    assert_eq!(report["failedFiles"], 0, "{}", report["failed"]);
    assert_eq!(restored, lost.iter().map(String::as_str).collect::<HashSet<_>>());
    assert_eq!(report["selectedFiles"], lines.len());
    // The archives route does not show a restore job.
    let (status, _, _) = http(
        &r.app,
        &signed_request("GET", &format!("/archives/jobs/{job_id}"), "", &[]),
    )
    .await;
    assert_eq!(status, 404);

    // `Prefer: respond-async` without the body flag.
    let ids: Vec<String> = stored.iter().skip(100).take(30).map(|l| l.file_id.clone()).collect();
    let body = json!({"fileIds": ids}).to_string();
    let (status, accepted, _) = http(
        &r.app,
        &signed_request("POST", "/archives", &body, &[("prefer", "respond-async")]),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let job_id = accepted["jobId"].as_str().unwrap().to_owned();
    let (status, _) = r.engine.wait(&job_id, Duration::from_secs(120)).await;
    workers.stop().await;
    assert_eq!(status, "SUCCEEDED");
    let result = result_of(&job_id).await;
    assert_invariant(&result, &ids);
}

#[tokio::test]
async fn the_job_routes_keep_the_signature_rules_and_unknown_jobs_are_404() {
    let _moto = moto::setup().await;
    let r = rig(EmulatorConfig::default().library, &[], 4, 2).await;
    let async_body = json!({"fileIds": flat_ids(3), "async": true}).to_string();
    let restore_body = json!({"restore": {}}).to_string();
    let routes: [(&str, &str, &str); 5] = [
        ("POST", "/archives", async_body.as_str()),
        ("GET", "/archives/jobs/a-0123456789abcdef01234567", ""),
        ("POST", "/restores", restore_body.as_str()),
        ("GET", "/restores/jobs/r-0123456789abcdef01234567", ""),
        ("GET", "/backups/latest", ""),
    ];
    for (method, path, body) in routes {
        // Unsigned, and signed with another key.
        let unsigned = function_url_event(method, path, body, &[]);
        let wrong = function_url_event(
            method,
            path,
            body,
            &[(
                "x-archive-signature",
                &signature::sign("another-key", local::unix_now(), body.as_bytes()),
            )],
        );
        for event in [unsigned, wrong] {
            let (status, answer, _) = http(&r.app, &event).await;
            assert_eq!(status, 401, "{method} {path}: {answer}");
            assert_eq!(answer["error"]["code"], "UNAUTHORIZED");
        }
        // The wrong method.
        let other = if method == "GET" { "POST" } else { "GET" };
        let (status, _, headers) = http(&r.app, &signed_request(other, path, body, &[])).await;
        assert_eq!(status, 405, "{other} {path}");
        assert_eq!(headers["allow"], method);
    }
    assert_eq!(r.emulator.api_calls().len(), 0, "no Wix call");
    assert!(moto::keys(BUCKET, "").await.is_empty(), "nothing written");
    assert_eq!(r.engine.executions().await, 0, "no job");

    for path in [
        "/archives/jobs/a-0123456789abcdef01234567",
        "/restores/jobs/r-0123456789abcdef01234567",
    ] {
        let (status, answer, _) = http(&r.app, &signed_request("GET", path, "", &[])).await;
        assert_eq!(status, 404, "{answer}");
        assert_eq!(answer["error"]["code"], "NOT_FOUND");
    }
    let (status, answer, _) = http(&r.app, &signed_request("GET", "/backups/latest", "", &[])).await;
    assert_eq!(status, 404, "{answer}");
    // A restore body that is not one.
    let (status, answer, _) = http(
        &r.app,
        &signed_request(
            "POST",
            "/restores",
            &json!({"restore": {"backupId": 5}}).to_string(),
            &[],
        ),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "INVALID_REQUEST");
    assert_eq!(r.engine.executions().await, 0);
}

#[tokio::test]
async fn without_jobs_an_async_request_is_refused() {
    let h = harness(EmulatorConfig::default(), &[]).await;
    let body = json!({"fileIds": flat_ids(3), "async": true}).to_string();
    let (status, answer) = call(&h, &signed(&body)).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "ASYNC_DISABLED");
    let event = signed_request(
        "POST",
        "/archives",
        &json!({"fileIds": flat_ids(3)}).to_string(),
        &[("prefer", "respond-async")],
    );
    let (status, answer) = call(&h, &event).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "ASYNC_DISABLED");
    assert_eq!(h.emulator.api_calls().len(), 0);
}

/// The most calls the emulator admitted in any 60 seconds.
fn busiest_minute(emulator: &Emulator) -> usize {
    let mut at: Vec<u64> = emulator
        .api_calls()
        .iter()
        .filter(|c| c.fault.as_deref() != Some("rate-limit"))
        .map(|c| c.at_ms)
        .collect();
    at.sort_unstable();
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t < at[i] + 60_000).count())
        .max()
        .unwrap_or(0)
}

async fn create_pace_table(name: &str) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let sdk = wix_media_archiver::aws::sdk_config().await;
    aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create the pace table");
}

/// A backup job on three workers and a synchronous request for 600 files (links for the
/// private ones), at once, against an emulator that refuses the 81st call of any minute.
async fn contend(pace_table: Option<&str>, stop_at_first_429: bool) -> (Emulator, Value) {
    let library = Library::seeded(1_200, 13);
    let ids: Vec<String> = library.files.iter().take(600).map(|f| f.id.clone()).collect();
    // The pace is first come, first served: the job may take a whole window's budget before
    // the request's calls, so the request may wait past a Function URL's 12 s.
    let mut env = vec![("WIX_REQUESTS_PER_MINUTE", "80"), ("HTTP_DEADLINE_SECONDS", "300")];
    if let Some(table) = pace_table {
        env.push(("PACE_TABLE", table));
    }
    let r = rig(library, &env, 5, 3).await;
    r.emulator.set_rate_limit(Some(wix_emulator::RateLimit::window(80)));
    let workers = Workers::start(binary(), 3, &r.engine, r.worker_env.clone(), rig::deliver_all()).await;
    let started = start_scheduled_with(&r.app, "2026-12-06T06:00:00Z", json!({"includePrivate": true})).await;
    let job_id = started["jobId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let body = json!({"fileIds": ids, "resolvePrivate": true}).to_string();
    let request = signed_request("POST", "/archives", &body, &[]);
    let http = async {
        let (status, answer, _) = http(&r.app, &request).await;
        assert!(status == 200 || status == 207, "{status}: {}", brief(&answer));
        answer
    };
    let job = async {
        if stop_at_first_429 {
            // Until the first refusal or the job's end, whichever comes first: on a busy
            // machine the job may take a while to reach its batches.
            let until = tokio::time::Instant::now() + Duration::from_secs(300);
            while r.emulator.limiter_stats().refused == 0 && tokio::time::Instant::now() < until {
                if let Some((status, _)) = r.engine.execution(&job_id).await {
                    if status != "RUNNING" {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ("STOPPED".to_owned(), None)
        } else {
            r.engine.wait(&job_id, Duration::from_secs(300)).await
        }
    };
    let (answer, (status, output)) = tokio::join!(http, job);
    workers.stop().await;
    if !stop_at_first_429 {
        assert_eq!(status, "SUCCEEDED", "{output:?}");
        let summary = result_of(&job_id).await;
        assert_eq!(summary["failedFiles"], 0, "{summary}");
    }
    let Rig { emulator, .. } = r;
    (emulator, answer)
}

#[tokio::test]
async fn three_workers_and_an_http_request_share_one_pace() {
    let _moto = moto::setup().await;
    create_pace_table("wix-media-archiver-pace").await;
    let (emulator, answer) = contend(Some("wix-media-archiver-pace"), false).await;
    let stats = emulator.limiter_stats();
    let busiest = busiest_minute(&emulator);
    eprintln!(
        "shared pace: {} calls admitted, {} refused, busiest minute {busiest}",
        stats.admitted, stats.refused
    );
    assert!(
        stats.admitted > 80,
        "the work needs more than one minute's budget: {}",
        stats.admitted
    );
    assert_eq!(stats.refused, 0, "no call was refused for the rate");
    assert!(busiest <= 80, "{busiest} calls in one minute");
    assert_eq!(answer["fileCount"], 600);
}

#[tokio::test]
async fn without_the_shared_pace_the_same_work_is_refused_for_the_rate() {
    // The control of the test above: each container paced alone at the whole budget.
    let _moto = moto::setup().await;
    let (emulator, _) = contend(None, true).await;
    assert!(
        emulator.limiter_stats().refused > 0,
        "the containers together went over the budget"
    );
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_job_fixtures_run_with_the_job_engine() {
    let _moto = moto::setup().await;
    let mut event = fixture("async-archives.json");
    let ids = local::event_file_ids(&event);
    let r = rig(library_with(Library::seeded(50, 3), &ids), &[], 4, 2).await;
    // A step message of a job that does not exist: the step fails, its answer is refused
    // (the token is no task's), and the message is not delivered again.
    let answer = local::invoke(&r.app, &fixture("sqs-job-step.json"), None)
        .await
        .expect("the worker answers the event source mapping");
    assert_eq!(answer, json!({"batchItemFailures": []}));

    assert!(local::sign_event(&mut event, CALLER_KEY, local::unix_now()));
    let (status, accepted, _) = http(&r.app, &event).await;
    assert_eq!(status, 202, "{accepted}");
    let job_id = accepted["jobId"].as_str().unwrap().to_owned();
    let workers = Workers::start(binary(), 2, &r.engine, r.worker_env.clone(), rig::deliver_all()).await;
    let (status, _) = r.engine.wait(&job_id, Duration::from_secs(120)).await;
    workers.stop().await;
    assert_eq!(status, "SUCCEEDED");
    let result = result_of(&job_id).await;
    assert_eq!(result["fileCount"], 5);
    assert_eq!(result["duplicatesRemoved"], 1);
    assert_invariant(&result, &ids);

    let mut status_event = fixture("job-status.json");
    assert!(local::sign_event(&mut status_event, CALLER_KEY, local::unix_now()));
    let (status, answer, _) = http(&r.app, &status_event).await;
    assert_eq!(status, 404, "{answer}");
}
