//! `archiver-bench`: end-to-end benchmarks of the real Lambda binary
//! (`target/release/wix-media-archiver`) against the Wix emulator on loopback, driven through
//! a minimal Lambda Runtime API served here.
//!
//! ```text
//! archiver-bench rate-bound|latency-bound|backup|cold-start|all [--runs N] [--starts N]
//!                [--bin PATH] [--folders N] [--call-times] [--verbose]
//! ```
//!
//! Every benchmark prints its workload, the ideal time, the measured median, their ratio,
//! the 429s received and the Wix calls made (counted from the emulator's call log, against
//! the minimum), and the child's peak memory (`VmHWM`). None of it is a timed test.

mod runtime_api;
mod workloads;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use wix_emulator::{CallRecord, Emulator, EmulatorConfig, Fault, RateLimit};

use runtime_api::{Outcome, RuntimeApi};

const USAGE: &str = "\
usage: archiver-bench <benchmark> [flags]
benchmarks:
  rate-bound      POST /archives with 100,000 IDs; Wix latency 50 ms, limit 1200/min
  latency-bound   POST /archives with 100,000 IDs; Wix latency 200 ms, no limit
  backup          scheduled backup of 50,000 files; Wix latency 50 ms, limit 1200/min
  cold-start      exec -> first GET /runtime/invocation/next, and the binary's size
  all             all of the above
flags:
  --runs N        invocations per end-to-end benchmark (default 5; the median is reported)
  --starts N      starts per cold-start variant (default 15)
  --bin PATH      the Lambda binary (default: wix-media-archiver next to this binary)
  --folders N     folders in the backup library (default 200: one per 250 files)
  --faults N      inject N one-shot faults (503, 429, dropped connection, 500 in turn) into
                  the benchmark's main endpoint, to count the retries they force
  --call-times    run the function with its Wix client at debug level and print how long
                  its Wix calls took as it saw them (latency + emulator + transport)
  --verbose       print the function's log lines of every run";

struct Options {
    bench: String,
    runs: usize,
    starts: usize,
    bin: PathBuf,
    folders: usize,
    call_times: bool,
    faults: usize,
    verbose: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut bench = None;
    let mut runs = 5;
    let mut starts = 15;
    let mut bin = None;
    let mut folders = 200;
    let mut verbose = false;
    let mut call_times = false;
    let mut faults = 0;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--runs" => runs = number(&value("--runs")?)?,
            "--starts" => starts = number(&value("--starts")?)?,
            "--bin" => bin = Some(PathBuf::from(value("--bin")?)),
            "--folders" => folders = number(&value("--folders")?)?,
            "--verbose" | "-v" => verbose = true,
            "--call-times" => call_times = true,
            "--faults" => faults = number(&value("--faults")?)?,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            "rate-bound" | "latency-bound" | "backup" | "cold-start" | "all" if bench.is_none() => bench = Some(arg),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let bench = bench.ok_or_else(|| USAGE.to_owned())?;
    let bin = match bin {
        Some(bin) => bin,
        None => default_binary()?,
    };
    if !bin.is_file() {
        return Err(format!(
            "the Lambda binary {} does not exist; build it with `cargo build --release --bin wix-media-archiver` \
             (or pass --bin PATH)",
            bin.display()
        ));
    }
    Ok(Options {
        bench,
        runs: runs.max(1),
        starts: starts.max(1),
        bin,
        folders,
        call_times,
        faults,
        verbose,
    })
}

fn number(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}

/// `wix-media-archiver` in the directory of this executable (both are built into
/// `<target>/release`), else under `$CARGO_TARGET_DIR` or `target`.
fn default_binary() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let sibling = dir.join("wix-media-archiver");
        if sibling.is_file() {
            return Ok(sibling);
        }
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    Ok(Path::new(&target).join("release").join("wix-media-archiver"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    print_machine(&options);
    let mut summary: Vec<Row> = Vec::new();
    let all = options.bench == "all";
    let result: Result<(), String> = async {
        if all || options.bench == "rate-bound" {
            summary.extend(http_bench(&options, &RATE_BOUND).await?);
        }
        if all || options.bench == "latency-bound" {
            summary.extend(http_bench(&options, &LATENCY_BOUND).await?);
        }
        if all || options.bench == "backup" {
            summary.extend(backup_bench(&options).await?);
        }
        if all || options.bench == "cold-start" {
            summary.extend(cold_start_bench(&options).await?);
        }
        Ok(())
    }
    .await;
    if !summary.is_empty() {
        println!("\n== summary");
        println!("{:<44} {:>14} {:>14}", "figure", "measured", "target");
        for row in &summary {
            println!(
                "{:<44} {:>14} {:>14} {}",
                row.figure,
                row.measured,
                row.target,
                if row.met { "met" } else { "MISSED" }
            );
        }
    }
    if let Err(e) = result {
        eprintln!("archiver-bench: {e}");
        std::process::exit(1);
    }
}

/// One line of the closing summary.
struct Row {
    figure: String,
    measured: String,
    target: String,
    met: bool,
}

fn row(figure: impl Into<String>, measured: impl Into<String>, target: impl Into<String>, met: bool) -> Row {
    Row {
        figure: figure.into(),
        measured: measured.into(),
        target: target.into(),
        met,
    }
}

fn print_machine(options: &Options) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cores} cores, {cpu}, load {}", load());
    println!("binary:  {}", options.bin.display());
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

// ---- a child process and one invocation ---------------------------------------

/// The Lambda binary, started against a runtime API, with its log lines collected.
struct Function {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Function {
    fn spawn(bin: &Path, runtime_api: &str, env: &[(String, String)]) -> Result<Function, String> {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned()),
            )
            .env("TZ", ":UTC")
            .env("LANG", "en_US.UTF-8")
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = collect_lines(child.stdout.take());
        let stderr = collect_lines(child.stderr.take());
        Ok(Function { child, stdout, stderr })
    }

    /// Peak resident memory so far, in bytes (`VmHWM` of `/proc/<pid>/status`).
    fn peak_memory(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Ends the process: SIGTERM first (a `--bin` wrapper such as `perf record` can then
    /// finish its output), SIGKILL after a second.
    fn stop(mut self) -> (Vec<String>, Vec<String>) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader threads end at EOF; give them a moment.
        std::thread::sleep(Duration::from_millis(20));
        let out = self.stdout.lock().map(|v| v.clone()).unwrap_or_default();
        let err = self.stderr.lock().map(|v| v.clone()).unwrap_or_default();
        (out, err)
    }
}

fn collect_lines<R: std::io::Read + Send + 'static>(stream: Option<R>) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    if let Some(stream) = stream {
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Ok(mut v) = sink.lock() {
                    v.push(line);
                }
            }
        });
    }
    lines
}

/// What one invocation of the real binary gave.
struct Invocation {
    /// Event handed out → response body read in full.
    elapsed: Duration,
    /// The response (or error) body.
    outcome: Outcome,
    peak_memory: Option<u64>,
    /// The function's `"summary": true` log line.
    summary: Option<Value>,
    /// When the event was handed out, relative to `since` given to [`invoke`].
    delivered_at: Duration,
    /// The function's log lines (stdout).
    log: Vec<String>,
}

/// Starts the binary, waits until it polls for an event, hands it `event`, and waits for
/// its answer. `since` is the emulator's start, to line up its call log.
async fn invoke(
    bin: &Path,
    env: &[(String, String)],
    event: Bytes,
    since: Instant,
    verbose: bool,
) -> Result<Invocation, String> {
    let mut api = RuntimeApi::start().await.map_err(|e| format!("runtime API: {e}"))?;
    let function = Function::spawn(bin, &api.address(), env)?;
    let Some(poll) = api.next_poll(Duration::from_secs(30)).await else {
        let (out, err) = function.stop();
        return Err(format!(
            "the function never asked for an event\nstdout:\n{}\nstderr:\n{}",
            out.join("\n"),
            err.join("\n")
        ));
    };
    let delivered_wall = std::time::SystemTime::now();
    let delivered = poll.deliver(runtime_api::REQUEST_ID, event, Duration::from_secs(900));
    let answer = api.outcome(Duration::from_secs(900)).await;
    let answered_wall = std::time::SystemTime::now();
    let peak_memory = function.peak_memory();
    let (out, err) = function.stop();
    if verbose {
        println!(
            "      event handed out at {}, answer read at {}; the function's log:",
            humantime_ms(delivered_wall),
            humantime_ms(answered_wall)
        );
        for line in &out {
            println!("      | {line}");
        }
    }
    let Some((outcome, read)) = answer else {
        return Err(format!(
            "no answer from the function\nstdout:\n{}\nstderr:\n{}",
            out.join("\n"),
            err.join("\n")
        ));
    };
    if let (true, Err(e)) = (verbose, outcome.response()) {
        eprintln!("{e}\nstderr:\n{}", err.join("\n"));
    }
    let summary = out
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("summary").and_then(Value::as_bool) == Some(true));
    Ok(Invocation {
        elapsed: read.duration_since(delivered),
        outcome,
        peak_memory,
        summary,
        delivered_at: delivered.saturating_duration_since(since),
        log: out,
    })
}

/// Wall-clock time as `HH:MM:SS.mmm` (UTC), to line up with the function's log lines.
fn humantime_ms(t: std::time::SystemTime) -> String {
    let ms = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

/// `elapsed_ms` of every "Wix answered" debug line (run with `--call-times`): how long
/// each call took as the function saw it, summarized as median / 90th percentile / max.
fn call_times(log: &[String]) -> Option<String> {
    let mut ms: Vec<f64> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "Wix answered")
        .filter_map(|v| v["elapsed_ms"].as_f64())
        .collect();
    if ms.is_empty() {
        return None;
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let p90 = ms[(ms.len() * 9 / 10).min(ms.len() - 1)];
    Some(format!(
        "Wix calls as the function timed them: median {:.0} ms, p90 {p90:.0} ms, max {:.0} ms (n={})",
        median(&ms),
        ms[ms.len() - 1],
        ms.len()
    ))
}

/// The function's environment, with its Wix client at debug level for `--call-times`.
fn with_call_times(mut env: Vec<(String, String)>, on: bool) -> Vec<(String, String)> {
    if on {
        env.push(("RUST_LOG".to_owned(), "debug".to_owned()));
    }
    env
}

// ---- the emulator's call log ------------------------------------------------------

/// What the emulator saw in one run.
#[derive(Default)]
struct Calls {
    total: usize,
    rate_limited: usize,
    /// Calls a fault answered (429, 5xx, dropped): each forces one retry.
    faulted: usize,
    by_endpoint: BTreeMap<String, usize>,
    first_ms: u64,
    last_ms: u64,
}

fn count_calls(calls: &[CallRecord]) -> Calls {
    let mut c = Calls {
        first_ms: calls.iter().map(|c| c.at_ms).min().unwrap_or(0),
        last_ms: calls.iter().map(|c| c.at_ms).max().unwrap_or(0),
        ..Calls::default()
    };
    for call in calls {
        c.total += 1;
        // 429s of the rate limit; an injected 429 counts as a fault below.
        if call.status == 429 && call.fault.is_none() {
            c.rate_limited += 1;
        }
        if call.status == 429 || call.status >= 500 || call.status == 0 || call.fault.is_some() {
            c.faulted += 1;
        }
        let name = call.path.rsplit('/').next().unwrap_or("").to_owned();
        *c.by_endpoint.entry(name).or_insert(0) += 1;
    }
    c
}

/// `n` one-shot faults, each of which forces exactly one retry: 503 with an empty body,
/// 429 without `Retry-After`, a dropped connection, 500, in turn.
fn injected_faults(n: usize) -> Vec<Fault> {
    (0..n)
        .map(|i| match i % 4 {
            0 => Fault::StatusEmptyBody(503),
            1 => Fault::TooManyRequests { retry_after: None },
            2 => Fault::Drop,
            _ => Fault::Status(500),
        })
        .collect()
}

// ---- statistics ---------------------------------------------------------------

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(*v), hi.max(*v))
    })
}

/// Bytes as MiB (the unit of `VmHWM`'s kB, which are KiB).
fn mb(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1_048_576.0)
}

/// What the runs of one end-to-end benchmark gave, and its summary.
#[derive(Default)]
struct Tally {
    times: Vec<f64>,
    memory: Vec<f64>,
    rate_limited: usize,
    calls_seen: Vec<usize>,
    faulted_seen: Vec<usize>,
    /// Calls beyond the minimum plus the retries faults forced, over all runs.
    waste: usize,
}

impl Tally {
    fn add(&mut self, inv: &Invocation, calls: &Calls, min_calls: usize) {
        self.times.push(inv.elapsed.as_secs_f64());
        if let Some(m) = inv.peak_memory {
            self.memory.push(m as f64);
        }
        self.rate_limited += calls.rate_limited;
        self.waste += calls.total.saturating_sub(min_calls + calls.faulted);
        self.calls_seen.push(calls.total);
        self.faulted_seen.push(calls.faulted);
    }

    /// Prints the summary lines and returns the rows of the closing table.
    fn report(&self, name: &str, ideal: f64, target_ratio: f64, min_calls: usize, memory_target_mb: f64) -> Vec<Row> {
        let measured = median(&self.times);
        let (lo, hi) = min_max(&self.times);
        let ratio = ideal / measured;
        let peak = median(&self.memory);
        let (_, peak_max) = min_max(&self.memory);
        let (rate_limited, calls_seen, faulted_seen, waste) =
            (self.rate_limited, &self.calls_seen, &self.faulted_seen, self.waste);
        println!("   ideal      {ideal:.3} s");
        println!(
            "   measured   {measured:.3} s (median of {}; min {lo:.3}, max {hi:.3})",
            self.times.len()
        );
        println!("   ratio      {ratio:.3} (target >= {target_ratio:.2})");
        println!("   429s       {rate_limited} received in all runs (target 0)");
        println!(
            "   Wix calls  {calls_seen:?} per run, {faulted_seen:?} of them answered by an injected fault \
             (minimum {min_calls}; calls beyond minimum + fault-forced retries: {waste})"
        );
        println!(
            "   peak mem   {} median VmHWM (max {}; target <= {memory_target_mb} MiB)",
            mb(peak),
            mb(peak_max)
        );
        vec![
            row(
                format!("{name} ratio (ideal {ideal:.2} s)"),
                format!("{ratio:.3} ({measured:.2} s)"),
                format!(">= {target_ratio:.2}"),
                ratio >= target_ratio,
            ),
            row(
                format!("{name} 429s received"),
                rate_limited.to_string(),
                "0",
                rate_limited == 0,
            ),
            row(
                format!("{name} Wix calls (minimum {min_calls})"),
                format!("{}", calls_seen.iter().max().unwrap_or(&0)),
                format!("{min_calls} + forced retries"),
                waste == 0,
            ),
            row(
                format!("{name} peak memory"),
                mb(peak_max),
                format!("<= {memory_target_mb} MiB"),
                peak_max <= memory_target_mb * 1_048_576.0,
            ),
        ]
    }
}

// ---- HTTP benchmarks --------------------------------------------------------------

struct HttpBench {
    name: &'static str,
    files: usize,
    latency_ms: u64,
    /// The emulator's limit (429 beyond it), calls per sliding minute.
    emulator_limit: Option<u32>,
    /// `WIX_REQUESTS_PER_MINUTE`.
    pacing: u32,
    concurrency: u32,
    memory_target_mb: f64,
}

const RATE_BOUND: HttpBench = HttpBench {
    name: "rate-bound",
    files: 100_000,
    latency_ms: 50,
    emulator_limit: Some(1200),
    pacing: 1200,
    concurrency: 4,
    memory_target_mb: 48.0,
};

const LATENCY_BOUND: HttpBench = HttpBench {
    name: "latency-bound",
    files: 100_000,
    latency_ms: 200,
    emulator_limit: None,
    pacing: 100_000,
    concurrency: 4,
    memory_target_mb: 48.0,
};

/// One URL in this many IDs is sent as a `wix:image://v1/…` media URL.
const URL_EVERY: usize = 20;

impl HttpBench {
    fn ideal(&self) -> f64 {
        let calls = self.files.div_ceil(1000) as f64;
        let latency = self.latency_ms as f64 / 1000.0;
        let by_rate = calls / (f64::from(self.pacing) / 60.0);
        let by_latency = (calls / f64::from(self.concurrency)).ceil() * latency;
        // The last call starts one pacing interval after the previous and then takes a latency.
        let paced = (calls - 1.0) / (f64::from(self.pacing) / 60.0) + latency;
        by_rate.max(by_latency).max(paced)
    }
}

async fn http_bench(options: &Options, bench: &HttpBench) -> Result<Vec<Row>, String> {
    let library = workloads::http_library(bench.files);
    let body = workloads::archives_body(&library, URL_EVERY);
    let min_calls = bench.files.div_ceil(1000);
    println!(
        "\n== {}: POST /archives (Function URL event), {} unique IDs (1 in {URL_EVERY} as a wix:image:// URL), \
         body {:.2} MB -> {min_calls} archive calls",
        bench.name,
        bench.files,
        body.len() as f64 / 1e6
    );
    println!(
        "   Wix emulator: latency {} ms, limit {}; function: WIX_REQUESTS_PER_MINUTE={}, WIX_MAX_CONCURRENCY={}",
        bench.latency_ms,
        bench
            .emulator_limit
            .map_or("none".to_owned(), |l| format!("{l} calls/min (429 beyond)")),
        bench.pacing,
        bench.concurrency
    );
    let mut tally = Tally::default();
    for run in 1..=options.runs {
        let config = EmulatorConfig {
            library: library.clone(),
            latency: Duration::from_millis(bench.latency_ms),
            rate_limit: bench.emulator_limit.map(RateLimit::window),
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config).await.map_err(|e| format!("emulator: {e}"))?;
        emulator.push_faults("generate-download-url", injected_faults(options.faults));
        let since = Instant::now();
        let env = with_call_times(
            workloads::function_env(&emulator.base_url(), bench.pacing, bench.concurrency),
            options.call_times,
        );
        // Signed per run: the signature carries the time.
        let event = Bytes::from(workloads::signed_function_url_event(&body));
        let inv = invoke(&options.bin, &env, event, since, options.verbose).await?;
        let calls = count_calls(&emulator.api_calls());
        drop(emulator);
        let response = inv.outcome.response().map_err(|e| format!("{}: {e}", bench.name))?;
        let (status, report) = workloads::http_body(response)
            .ok_or_else(|| format!("{}: the answer is not an HTTP response", bench.name))?;
        let archived: u64 = report["archives"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["fileCount"].as_u64()).sum())
            .unwrap_or(0);
        if status != 200 || archived != bench.files as u64 {
            return Err(format!(
                "{}: status {status}, {archived} of {} files archived; failed: {}",
                bench.name, bench.files, report["failed"]
            ));
        }
        let secs = inv.elapsed.as_secs_f64();
        let delivered_ms = inv.delivered_at.as_millis() as u64;
        let wix_calls_logged = inv.summary.as_ref().and_then(|s| s["wix_calls"].as_u64());
        println!(
            "   run {run}: {secs:.3} s, HTTP {status}, response {:.2} MB, {} Wix calls ({} x 429), peak {}; \
             first Wix call +{} ms after the event, last call started +{} ms; function log: wix_calls={}",
            response.len() as f64 / 1e6,
            calls.total,
            calls.rate_limited,
            inv.peak_memory.map_or("?".to_owned(), |b| mb(b as f64)),
            calls.first_ms.saturating_sub(delivered_ms),
            calls.last_ms.saturating_sub(delivered_ms),
            wix_calls_logged.map_or("?".to_owned(), |n| n.to_string()),
        );
        if options.verbose {
            println!("      by endpoint: {:?}", calls.by_endpoint);
        }
        if let Some(times) = call_times(&inv.log) {
            println!("      {times}");
        }
        tally.add(&inv, &calls, min_calls);
    }
    Ok(tally.report(bench.name, bench.ideal(), 0.95, min_calls, bench.memory_target_mb))
}

// ---- backup -----------------------------------------------------------------------

const BACKUP_FILES: usize = 50_000;
const BACKUP_LATENCY_MS: u64 = 50;
const BACKUP_LIMIT: u32 = 1200;

async fn backup_bench(options: &Options) -> Result<Vec<Row>, String> {
    let library = workloads::backup_library(BACKUP_FILES, options.folders, 7);
    let (search, folder_calls, archives) = workloads::backup_minimum(&library, 100);
    let min_calls = search + folder_calls + archives;
    let rate = f64::from(BACKUP_LIMIT) / 60.0;
    let latency = BACKUP_LATENCY_MS as f64 / 1000.0;
    let ideal = (min_calls as f64 / rate).max(search as f64 * latency);
    let event = Bytes::from_static(br#"{"backup": {"includePrivate": false}}"#);
    println!(
        "\n== backup: scheduled backup (direct invoke {{\"backup\": {{\"includePrivate\": false}}}}) of {} files \
         in {} folders (all public, READY; none private)",
        library.files.len(),
        library.folders.len()
    );
    println!(
        "   minimum Wix calls: {search} search pages + {folder_calls} folder pages + {archives} archive calls = {min_calls}"
    );
    println!(
        "   Wix emulator: latency {BACKUP_LATENCY_MS} ms, limit {BACKUP_LIMIT} calls/min (429 beyond); \
         function: WIX_REQUESTS_PER_MINUTE={BACKUP_LIMIT}, WIX_MAX_CONCURRENCY=4"
    );
    println!(
        "   ideal = max({min_calls} calls / {rate:.0} per s = {:.2} s, {search} pages x {BACKUP_LATENCY_MS} ms = {:.2} s)",
        min_calls as f64 / rate,
        search as f64 * latency
    );
    let mut tally = Tally::default();
    for run in 1..=options.runs {
        let config = EmulatorConfig {
            library: library.clone(),
            latency: Duration::from_millis(BACKUP_LATENCY_MS),
            rate_limit: Some(RateLimit::window(BACKUP_LIMIT)),
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config).await.map_err(|e| format!("emulator: {e}"))?;
        emulator.push_faults("files/search", injected_faults(options.faults));
        let since = Instant::now();
        let env = with_call_times(
            workloads::function_env(&emulator.base_url(), BACKUP_LIMIT, 4),
            options.call_times,
        );
        let inv = invoke(&options.bin, &env, event.clone(), since, options.verbose).await?;
        let log = emulator.api_calls();
        let calls = count_calls(&log);
        drop(emulator);
        let response = inv.outcome.response().map_err(|e| format!("backup: {e}"))?;
        let report: Value =
            serde_json::from_slice(response).map_err(|e| format!("backup: the answer is not JSON: {e}"))?;
        let listed = report["listedFiles"].as_u64().unwrap_or(0);
        let archived: u64 = report["archives"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["fileCount"].as_u64()).sum())
            .unwrap_or(0);
        if listed != library.files.len() as u64 || archived != listed || report["incomplete"] != Value::Bool(false) {
            return Err(format!(
                "backup: listed {listed}, archived {archived}, incomplete {}, error {}",
                report["incomplete"], report["error"]
            ));
        }
        let delivered_ms = inv.delivered_at.as_millis() as u64;
        let last_search = log
            .iter()
            .filter(|c| c.path.ends_with("/files/search"))
            .map(|c| c.at_ms)
            .max()
            .unwrap_or(0);
        let last_folder = log
            .iter()
            .filter(|c| c.path.ends_with("/folders"))
            .map(|c| c.at_ms)
            .max()
            .unwrap_or(0);
        let first_archive = log
            .iter()
            .filter(|c| c.path.ends_with("/generate-download-url"))
            .map(|c| c.at_ms)
            .min()
            .unwrap_or(0);
        let secs = inv.elapsed.as_secs_f64();
        println!(
            "   run {run}: {secs:.3} s, {} Wix calls {:?} ({} x 429), peak {}; last folder call +{} ms, \
             last search +{} ms, first archive call +{} ms, last call +{} ms",
            calls.total,
            calls.by_endpoint,
            calls.rate_limited,
            inv.peak_memory.map_or("?".to_owned(), |b| mb(b as f64)),
            last_folder.saturating_sub(delivered_ms),
            last_search.saturating_sub(delivered_ms),
            first_archive.saturating_sub(delivered_ms),
            calls.last_ms.saturating_sub(delivered_ms),
        );
        if let Some(times) = call_times(&inv.log) {
            println!("      {times}");
        }
        tally.add(&inv, &calls, min_calls);
    }
    Ok(tally.report("backup", ideal, 0.90, min_calls, 64.0))
}

// ---- cold start -------------------------------------------------------------------

async fn cold_start_bench(options: &Options) -> Result<Vec<Row>, String> {
    println!(
        "\n== cold-start: exec -> first GET /2018-06-01/runtime/invocation/next ({} starts per variant)",
        options.starts
    );
    let base = workloads::function_env("http://127.0.0.1:9", 180, 4);
    let with_secret = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = base
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "WIX_API_KEY" | "WIX_SITE_ID" | "CALLER_KEYS"))
            .cloned()
            .collect();
        for (k, v) in [
            ("WIX_CREDENTIALS_SECRET", "wix/media-archiver"),
            ("AWS_ACCESS_KEY_ID", "AKIDBENCHONLY"),
            ("AWS_SECRET_ACCESS_KEY", "bench-only-not-a-secret"),
            ("AWS_SESSION_TOKEN", "bench-only-session"),
            // Nothing is contacted at start (the credentials fetch is lazy); should it be,
            // it fails fast here.
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ]
        .iter()
        .chain(extra.iter())
        {
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        env
    };
    let variants: Vec<(&str, Vec<(String, String)>)> = vec![
        ("env credentials", base.clone()),
        ("WIX_CREDENTIALS_SECRET", with_secret(&[])),
        (
            "WIX_CREDENTIALS_SECRET + EMAIL_FROM",
            with_secret(&[("EMAIL_FROM", "backups@example.com")]),
        ),
    ];
    let mut rows = Vec::new();
    for (name, env) in &variants {
        let mut times = Vec::new();
        let mut memory = Vec::new();
        for _ in 0..options.starts {
            let mut api = RuntimeApi::start().await.map_err(|e| format!("runtime API: {e}"))?;
            let exec = Instant::now();
            let function = Function::spawn(&options.bin, &api.address(), env)?;
            let poll = api.next_poll(Duration::from_secs(20)).await;
            let peak = function.peak_memory();
            let (out, err) = function.stop();
            let Some(poll) = poll else {
                return Err(format!(
                    "cold-start ({name}): the function never asked for an event\n{}\n{}",
                    out.join("\n"),
                    err.join("\n")
                ));
            };
            times.push(poll.arrived.duration_since(exec).as_secs_f64() * 1000.0);
            if let Some(p) = peak {
                memory.push(p as f64);
            }
        }
        let m = median(&times);
        let (lo, hi) = min_max(&times);
        println!(
            "   {name:<38} median {m:.2} ms (min {lo:.2}, max {hi:.2}; n={}), VmHWM at ready {}",
            times.len(),
            mb(median(&memory))
        );
        rows.push(row(
            format!("cold start, {name}"),
            format!("{m:.2} ms"),
            "<= 25 ms",
            m <= 25.0,
        ));
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    if let Some(s) = size(&options.bin) {
        println!("   {:<38} {} ({s} bytes)", "x86_64 release binary", mb(s as f64));
    }
    let bootstrap = options
        .bin
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("lambda/wix-media-archiver/bootstrap"));
    match bootstrap.as_deref().and_then(|p| size(p).map(|s| (p, s))) {
        Some((p, s)) => {
            println!(
                "   {:<38} {} ({s} bytes) {}",
                "arm64 bootstrap",
                mb(s as f64),
                p.display()
            );
            rows.push(row(
                "arm64 bootstrap size",
                mb(s as f64),
                "<= 8 MiB",
                s <= 8 * 1_048_576,
            ));
        }
        None => {
            println!("   arm64 bootstrap: not built (cargo lambda build --release --arm64 --bin wix-media-archiver)")
        }
    }
    Ok(rows)
}
