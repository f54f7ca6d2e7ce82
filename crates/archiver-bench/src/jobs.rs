//! Jobs, locally: the state machine the template deploys on moto's Step Functions
//! interpreter, the job queue on moto's SQS, S3 and the pace table on moto, the real Lambda
//! binary as the starting function (one warm container) and as the queue's workers, and the
//! Wix emulator enforcing the site's budget. Needs a moto server (`MOTO_URL`; `scripts/bench`
//! starts one).
//!
//! - `job-backup`: a scheduled backup of `--files` files (default 1,000,000) as one job;
//!   ideal = the least Wix calls ÷ the budget.
//! - `job-async`: `POST /archives` with `--files` IDs (default 100,000) and `"async": true`,
//!   polled with `GET /archives/jobs/<jobId>` until it holds the answer; then the 202 of
//!   `--runs` × 40 small async requests to the warm container, p50/p99.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use job_rig::{JobEngine, Workers};
use lambda_runtime_stub::{NextPoll, RuntimeApi};
use serde_json::{json, Value};
use wix_emulator::{Emulator, EmulatorConfig, RateLimit};

use crate::{count_calls, median, row, workloads, Options, Row};

const BUCKET: &str = "wix-media-archiver-bench";
const PACE_TABLE: &str = "wix-media-archiver-bench-pace";
/// Map workers, as the template's default `JobConcurrency`.
const WORKERS: usize = 3;

/// The moto endpoint, and the AWS variables pointing this process's SDK (and the
/// functions') at it.
pub(crate) fn moto_env() -> Result<Vec<(String, String)>, String> {
    let url = std::env::var("MOTO_URL").map_err(|_| {
        "MOTO_URL is unset: the job and storage benchmarks need a moto server (scripts/bench starts one)".to_owned()
    })?;
    Ok([
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect())
}

/// One warm container of the function: the binary behind its own runtime API, answering
/// one event after another.
struct Container {
    api: RuntimeApi,
    child: std::process::Child,
    seq: usize,
}

impl Container {
    async fn start(bin: &Path, env: &[(String, String)]) -> Result<Container, String> {
        let api = RuntimeApi::start().await.map_err(|e| format!("runtime API: {e}"))?;
        let child = std::process::Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        Ok(Container { api, child, seq: 0 })
    }

    /// Hands out `event` once the function polls; its answer and event → answer time.
    async fn call(&mut self, event: Vec<u8>) -> Result<(Value, Duration), String> {
        let poll: NextPoll = self
            .api
            .next_poll(Duration::from_secs(30))
            .await
            .ok_or("the function did not ask for an event")?;
        self.seq += 1;
        let id = format!("bench-{}", self.seq);
        let delivered = poll.deliver(&id, Bytes::from(event), Duration::from_secs(900));
        let (outcome, read) = self
            .api
            .outcome(Duration::from_secs(900))
            .await
            .ok_or("no answer from the function")?;
        let body = outcome.response_to(&id)?.clone();
        let value: Value = serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))?;
        Ok((value, read.duration_since(delivered)))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator with `library` under a sliding window of `budget` calls a minute; the job
/// engine; the functions' environment.
struct Setup {
    emulator: Emulator,
    engine: JobEngine,
    env: Vec<(String, String)>,
}

async fn setup(library: wix_emulator::Library, budget: u32) -> Result<Setup, String> {
    let aws = moto_env()?;
    for (k, v) in &aws {
        std::env::set_var(k, v);
    }
    let url = std::env::var("MOTO_URL").unwrap_or_default();
    reqwest::Client::new()
        .post(format!("{url}/moto-api/reset"))
        .send()
        .await
        .map_err(|e| format!("moto reset: {e}"))?;
    let sdk = wix_media_archiver::aws::sdk_config().await;
    wix_media_archiver::storage::s3_client(&sdk)
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .map_err(|e| format!("create bucket: {e}"))?;
    create_pace_table(&sdk).await?;
    // The template's HeartbeatSeconds (300) and the queue's visibility (5400).
    let engine = JobEngine::create(&sdk, &url, BUCKET, 300, WORKERS as u32, 5400).await;
    let config = EmulatorConfig {
        library,
        latency: Duration::from_millis(20),
        rate_limit: Some(RateLimit::window(budget)),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.map_err(|e| format!("emulator: {e}"))?;
    let mut env = workloads::function_env(&emulator.base_url(), budget, 4);
    env.extend(aws);
    for (k, v) in [
        ("STORAGE_BUCKET", BUCKET),
        ("PACE_TABLE", PACE_TABLE),
        ("JOB_STATE_MACHINE_ARN", engine.state_machine_arn.as_str()),
        ("MAX_FILES_PER_REQUEST", "1000"),
        ("MAX_FILES_PER_JOB", "1000000"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
    ] {
        env.retain(|(name, _)| name != k);
        env.push((k.to_owned(), v.to_owned()));
    }
    Ok(Setup { emulator, engine, env })
}

async fn create_pace_table(sdk: &aws_config::SdkConfig) -> Result<(), String> {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let attribute = AttributeDefinition::builder()
        .attribute_name("pk")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())?;
    let key = KeySchemaElement::builder()
        .attribute_name("pk")
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| e.to_string())?;
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(PACE_TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute)
        .key_schema(key)
        .send()
        .await
        .map_err(|e| format!("create the pace table: {e}"))?;
    Ok(())
}

impl Setup {
    /// Starts the map workers and one warm container of the function that starts jobs.
    async fn run(&self, bin: &Path) -> Result<(Workers, Container), String> {
        let env: HashMap<String, String> = self.env.iter().cloned().collect();
        let workers = Workers::start(bin, WORKERS, &self.engine, env, job_rig::deliver_all()).await;
        Ok((workers, Container::start(bin, &self.env).await?))
    }
}

/// Waits for the execution `job_id` to end, printing its progress now and then.
async fn wait(engine: &JobEngine, job_id: &str, emulator: &Emulator, started: Instant) -> (String, Option<Value>) {
    let mut last_print = Instant::now();
    loop {
        if let Some((status, output)) = engine.execution(job_id).await {
            if status != "RUNNING" {
                return (status, output);
            }
        }
        if last_print.elapsed() > Duration::from_secs(30) {
            let stats = emulator.limiter_stats();
            println!(
                "   … {:.0} s: {} Wix calls admitted, {} refused",
                started.elapsed().as_secs_f64(),
                stats.admitted,
                stats.refused
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn result_json(job_id: &str, site_id: &str) -> Result<Value, String> {
    let sdk = wix_media_archiver::aws::sdk_config().await;
    let key = format!("wix-media-archiver/{site_id}/jobs/{job_id}/result.json");
    let out = wix_media_archiver::storage::s3_client(&sdk)
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .map_err(|e| format!("get {key}: {e}"))?;
    let bytes = out.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
    serde_json::from_slice(&bytes).map_err(|e| format!("{key} is not JSON: {e}"))
}

/// Prints the figures of a job and returns its rows.
fn report(name: &str, min_calls: usize, budget: u32, elapsed: Duration, emulator: &Emulator) -> Vec<Row> {
    let calls = count_calls(&emulator.api_calls());
    let ideal = min_calls as f64 / f64::from(budget) * 60.0;
    let measured = elapsed.as_secs_f64();
    let ratio = ideal / measured;
    println!(
        "   Wix calls  {} ({:?}); least {min_calls}",
        calls.total, calls.by_endpoint
    );
    println!("   ideal      {ideal:.1} s (least calls ÷ {budget}/min)");
    println!("   measured   {measured:.1} s (the job's start → its execution's end)");
    println!("   ratio      {ratio:.3} (target >= 0.90)");
    println!("   429s       {} (target 0)", calls.rate_limited);
    vec![
        row(
            format!("{name}: ideal / measured"),
            format!("{ratio:.3}"),
            ">= 0.90",
            ratio >= 0.9,
        ),
        row(
            format!("{name}: 429s"),
            calls.rate_limited.to_string(),
            "0",
            calls.rate_limited == 0,
        ),
    ]
}

/// `job-backup`: a scheduled backup of the whole library as one job.
pub async fn backup(options: &Options, files: usize, budget: u32) -> Result<Vec<Row>, String> {
    let library = workloads::backup_library(files, (files / 250).max(1), 7, options.file_bytes);
    let (search, folder_calls, archives) = workloads::backup_minimum(&library, 100);
    let min_calls = search + folder_calls + archives;
    println!(
        "\n== job-backup: a scheduled backup of {files} files in {} folders as one job; {WORKERS} map workers, \
         the emulator's sliding window {budget}/min, one shared pace (PACE_TABLE)",
        library.folders.len()
    );
    let site_id = EmulatorConfig::default().site_id;
    let s = setup(library, budget).await?;
    let (workers, mut starter) = s.run(&options.bin).await?;
    let started = Instant::now();
    let event = json!({"backup": {"includePrivate": false}, "scheduledTime": "2026-12-02T03:00:00Z"});
    let (answer, _) = starter.call(event.to_string().into_bytes()).await?;
    let job_id = answer["jobId"]
        .as_str()
        .ok_or_else(|| format!("the schedule started no job: {answer}"))?
        .to_owned();
    let (status, output) = wait(&s.engine, &job_id, &s.emulator, started).await;
    let elapsed = started.elapsed();
    workers.stop().await;
    if status != "SUCCEEDED" {
        return Err(format!("job-backup: the job ended {status}: {output:?}"));
    }
    let summary = result_json(&job_id, &site_id).await?;
    println!(
        "   the job    {status}: listed {}, stored {}, failed {}, status {}",
        summary["listedFiles"], summary["storedFiles"], summary["failedFiles"], summary["status"]
    );
    for field in ["warnings", "listingError", "error"] {
        if summary[field].as_array().is_some_and(|a| !a.is_empty()) || summary[field].is_string() {
            println!("   {field:<10} {}", summary[field]);
        }
    }
    if summary["listedFiles"].as_u64() != Some(files as u64) || summary["failedFiles"].as_u64() != Some(0) {
        return Err(format!("job-backup: not every file was stored: {summary}"));
    }
    Ok(report("job-backup", min_calls, budget, elapsed, &s.emulator))
}

/// Turns moto's Step Functions interpreter off: the same state machine is made again in the
/// backend that only records executions (moto keeps the two apart), so `StartExecution`
/// answers without running anything in moto's process.
async fn without_interpreter(engine: &JobEngine) -> Result<(), String> {
    let url = std::env::var("MOTO_URL").unwrap_or_default();
    reqwest::Client::new()
        .post(format!("{url}/moto-api/config"))
        .json(&json!({"stepfunctions": {"execute_state_machine": false}}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("moto config: {e}"))?;
    // The template's HeartbeatSeconds and the bench's workers, as in `setup`.
    let arn = job_rig::create_machine(&engine.sfn, &engine.queue_url, BUCKET, 300, WORKERS as u32).await?;
    if arn != engine.state_machine_arn {
        return Err(format!("the state machine came back as {arn}"));
    }
    Ok(())
}

/// The times of `count` bare `StartExecution` calls of the jobs' machine (as the function
/// makes them, a new name each), sorted: what moto's Step Functions alone takes.
async fn start_times(engine: &JobEngine, count: usize) -> Result<Vec<f64>, String> {
    let mut ms = Vec::new();
    for i in 0..count {
        let name = format!("bench-start-{}-{i}", std::process::id());
        let input = json!({"job": {"jobId": name, "kind": "archives"}}).to_string();
        let started = Instant::now();
        engine
            .sfn
            .start_execution()
            .state_machine_arn(&engine.state_machine_arn)
            .name(&name)
            .input(input)
            .send()
            .await
            .map_err(|e| format!("StartExecution: {e}"))?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    Ok(ms)
}

/// The times from event to answer of `count` small async requests (two IDs each), sorted.
async fn accepted_times(front: &mut Container, ids: &[String], count: usize) -> Result<Vec<f64>, String> {
    let mut ms = Vec::new();
    for i in 0..count {
        let body = json!({"fileIds": [ids[i % ids.len()], ids[(i + 1) % ids.len()]], "async": true}).to_string();
        let (answer, took) = front.call(workloads::signed_event("POST", "/archives", &body)).await?;
        let status = answer["statusCode"].as_u64().unwrap_or(0);
        if status != 202 {
            return Err(format!("async request {i}: {status} {}", answer["body"]));
        }
        ms.push(took.as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    Ok(ms)
}

/// `job-async`: one big async request as a job, then the 202s of small ones.
pub async fn archives(options: &Options, files: usize, budget: u32) -> Result<Vec<Row>, String> {
    let library = workloads::http_library(files, options.file_bytes);
    let ids: Vec<String> = library.files.iter().map(|f| f.id.clone()).collect();
    let min_calls = files.div_ceil(1000);
    println!(
        "\n== job-async: POST /archives with {files} IDs and \"async\": true, polled until the job holds the answer; \
         {WORKERS} map workers, the emulator's sliding window {budget}/min"
    );
    let s = setup(library, budget).await?;
    let (workers, mut front) = s.run(&options.bin).await?;
    let started = Instant::now();
    let body = json!({"fileIds": ids, "async": true}).to_string();
    let (answer, first) = front.call(workloads::signed_event("POST", "/archives", &body)).await?;
    let (status, accepted) = workloads::http_body(&serde_json::to_vec(&answer).unwrap_or_default())
        .ok_or_else(|| format!("not an HTTP answer: {answer}"))?;
    if status != 202 {
        return Err(format!("job-async: {status} {accepted}"));
    }
    let job_id = accepted["jobId"].as_str().ok_or("no jobId")?.to_owned();
    println!(
        "   202 in {:.1} ms (cold container), job {job_id}",
        first.as_secs_f64() * 1000.0
    );
    let path = format!("/archives/jobs/{job_id}");
    let result = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (answer, _) = front.call(workloads::signed_event("GET", &path, "")).await?;
        let (_, got) = workloads::http_body(&serde_json::to_vec(&answer).unwrap_or_default())
            .ok_or_else(|| format!("not an HTTP answer: {answer}"))?;
        match got["status"].as_str() {
            Some("RUNNING") => continue,
            Some("SUCCEEDED") => break got,
            _ => return Err(format!("job-async: {got}")),
        }
    };
    let elapsed = started.elapsed();
    workers.stop().await;
    let archived: u64 = result["result"]["archives"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["fileCount"].as_u64()).sum())
        .unwrap_or(0);
    println!(
        "   the job    SUCCEEDED: fileCount {}, {archived} files in {} archives, failed {}",
        result["result"]["fileCount"],
        result["result"]["archives"].as_array().map_or(0, Vec::len),
        result["result"]["failed"].as_array().map_or(0, Vec::len)
    );
    if archived != files as u64 {
        return Err(format!("job-async: {archived} of {files} files archived"));
    }
    let mut rows = report("job-async", min_calls, budget, elapsed, &s.emulator);

    // The 202 of small async requests to the warm container: first with moto's interpreter
    // running every job they start (in moto's own process, beside the API that answers the
    // 202's two calls), then with it off, as on AWS, where the executions run elsewhere.
    for (label, executing) in [("", true), (", machines not executed", false)] {
        if !executing {
            without_interpreter(&s.engine).await?;
        }
        let ms = accepted_times(&mut front, &ids, options.runs * 40).await?;
        let p99 = ms[(ms.len() * 99 / 100).min(ms.len() - 1)];
        let p50 = median(&ms);
        println!(
            "   202{label}: p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms over {} warm requests (event → answer; \
             each an S3 claim and a StartExecution on moto)",
            ms[ms.len() - 1],
            ms.len()
        );
        rows.push(row(
            format!("job-async: 202 p50 (warm{label})"),
            format!("{p50:.1} ms"),
            "<= 100 ms",
            p50 <= 100.0,
        ));
        rows.push(row(
            format!("job-async: 202 p99 (warm{label})"),
            format!("{p99:.1} ms"),
            "<= 100 ms",
            p99 <= 100.0,
        ));
        let alone = start_times(&s.engine, options.runs * 40).await?;
        println!(
            "   StartExecution alone (the bench's own SDK call, nothing else){label}: p50 {:.1} ms, p99 {:.1} ms",
            median(&alone),
            alone[(alone.len() * 99 / 100).min(alone.len() - 1)]
        );
    }
    Ok(rows)
}
