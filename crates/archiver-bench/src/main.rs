//! `archiver-bench`: end-to-end benchmarks of the real Lambda binary
//! (`target/release/wix-media-archiver`) against the Wix emulator on loopback, driven through
//! a minimal Lambda Runtime API served here.
//!
//! ```text
//! archiver-bench rate-bound|latency-bound|backup|cold-start|window-100|window-300|bucket-300|
//!                backup-window|pacing|all [--runs N] [--starts N] [--bin PATH] [--peer PATH]
//!                [--folders N] [--call-times] [--verbose]
//! ```
//!
//! Every benchmark prints its workload, the ideal time (the best schedule the emulator's
//! limit, latency and 4 calls in flight allow, simulated by [`ideal`]), the measured median,
//! their ratio, the 429s received and the Wix calls made (counted from the emulator's call
//! log, against the minimum), and the child's peak memory (`VmHWM`). The pacing benchmarks
//! also run the careful peer script ([`peer`]) side by side. None of it is a timed test.

mod ideal;
mod jobs;
mod peer;
mod storage;
mod workloads;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use wix_emulator::{CallRecord, Emulator, EmulatorConfig, Fault, LimiterKind, RateLimit};

use ideal::{Limit, Work};
use lambda_runtime_stub::{self as runtime_api, Outcome, RuntimeApi};

const USAGE: &str = "\
usage: archiver-bench <benchmark> [flags]
benchmarks:
  rate-bound      POST /archives with 100,000 IDs; Wix latency 50 ms, limit 1200/min
  latency-bound   POST /archives with 100,000 IDs; Wix latency 200 ms, no limit
  backup          scheduled backup of 50,000 files; Wix latency 50 ms, limit 1200/min
  cold-start      exec -> first GET /runtime/invocation/next, and the binary's size
  window-100      POST /archives with 100,000 IDs; latency 50 ms, sliding window 200/min
                  (429 + Retry-After); the careful peer script side by side
  window-300      the same with 300,000 IDs (300 archive calls)
  bucket-300      300,000 IDs; token bucket 200/min, burst 20, with Retry-After and without;
                  the peer side by side
  backup-window   scheduled backup of 30,000 files in 120 folders; latency 50 ms, sliding
                  window 200/min (429 + Retry-After)
  pacing          window-100, window-300, bucket-300, backup-window
  job-backup      a scheduled backup of 1,000,000 files as one job on the local job engine
                  (moto's Step Functions, SQS, S3, DynamoDB; MOTO_URL), 3 map workers, the
                  emulator's sliding window --budget/min; ideal = least calls / budget
  job-async       POST /archives with 100,000 IDs and `async: true` as a job, polled until
                  done; then the 202 of --runs x 40 small async requests (p50/p99, warm)
  jobs            job-backup and job-async
  store-archive   one archive of 100 MiB and one of 5 GiB streamed into moto's S3 by a stored
                  backup: peak memory; side by side with `curl -s <link> | aws s3 cp -`; the
                  download alone and moto's ingest alone as the pair's bounds (MOTO_URL)
  store-backup    a stored backup of 50,000 files of 20 kB (--files N); ideal = its Wix calls'
                  best schedule, or the listing then its bytes at the pair's bound
  incremental     a full stored backup of 50,000 files, 1 % changed, the incremental one
  restore         1,000 files backed up, deleted from Wix, restored (--files N, --budget N)
  storage         the four above
  all             all of the above
flags:
  --runs N        invocations per end-to-end benchmark (default 5; the median is reported);
                  the pacing benchmarks run the function and the peer N times each, in turn
  --starts N      starts per cold-start variant (default 15)
  --bin PATH      the Lambda binary (default: wix-media-archiver next to this binary)
  --peer PATH     the peer script (default: benches/peer/careful.mjs of this checkout)
  --folders N     folders in the backup library (default: one per 250 files)
  --file-bytes N  size of every library file (default 64; 0: the emulator's own sizes, which
                  cost the emulator ~50 ms of hashing per archive call of 1000 files)
  --faults N      inject N one-shot faults (503, 429, dropped connection, 500 in turn) into
                  the benchmark's main endpoint, to count the retries they force
  --log-dir DIR   write the emulator's call log of every run there, one JSON line a call
                  (<benchmark>-<function|peer>-<run>.jsonl; at_ms from the emulator's start)
  --call-times    run the function with its Wix client at debug level and print how long
                  its Wix calls took as it saw them (latency + emulator + transport)
  --files N       files of job-backup (default 1000000) or IDs of job-async (default 100000)
  --budget N      the site's Wix budget in calls a minute for the job benchmarks (default 1200)
  --verbose       print the function's log lines of every run";

struct Options {
    bench: String,
    runs: usize,
    starts: usize,
    bin: PathBuf,
    peer: PathBuf,
    folders: Option<usize>,
    /// Size of every library file; `None`: the emulator's own.
    file_bytes: Option<u64>,
    call_times: bool,
    log_dir: Option<PathBuf>,
    faults: usize,
    verbose: bool,
    files: Option<usize>,
    budget: u32,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut bench = None;
    let mut runs = 5;
    let mut starts = 15;
    let mut bin = None;
    let mut peer = None;
    let mut folders = None;
    let mut file_bytes = Some(workloads::FILE_BYTES);
    let mut verbose = false;
    let mut call_times = false;
    let mut log_dir = None;
    let mut faults = 0;
    let mut files = None;
    let mut budget = 1200;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--runs" => runs = number(&value("--runs")?)?,
            "--starts" => starts = number(&value("--starts")?)?,
            "--bin" => bin = Some(PathBuf::from(value("--bin")?)),
            "--peer" => peer = Some(PathBuf::from(value("--peer")?)),
            "--folders" => folders = Some(number(&value("--folders")?)?),
            "--file-bytes" => file_bytes = Some(number(&value("--file-bytes")?)? as u64).filter(|b| *b > 0),
            "--verbose" | "-v" => verbose = true,
            "--call-times" => call_times = true,
            "--log-dir" => log_dir = Some(PathBuf::from(value("--log-dir")?)),
            "--faults" => faults = number(&value("--faults")?)?,
            "--files" => files = Some(number(&value("--files")?)?),
            "--budget" => budget = number(&value("--budget")?)?.clamp(1, 1_000_000) as u32,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            "rate-bound" | "latency-bound" | "backup" | "cold-start" | "window-100" | "window-300" | "bucket-300"
            | "backup-window" | "pacing" | "all" | "job-backup" | "job-async" | "jobs" | "store-archive"
            | "store-backup" | "incremental" | "restore" | "storage"
                if bench.is_none() =>
            {
                bench = Some(arg)
            }
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
        peer: peer.unwrap_or_else(peer::default_script),
        folders,
        file_bytes,
        call_times,
        log_dir,
        faults,
        verbose,
        files,
        budget,
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
    let pacing = all || options.bench == "pacing";
    let result: Result<(), String> = async {
        if all || options.bench == "rate-bound" {
            summary.extend(http_bench(&options, &RATE_BOUND).await?);
        }
        if all || options.bench == "latency-bound" {
            summary.extend(http_bench(&options, &LATENCY_BOUND).await?);
        }
        if all || options.bench == "backup" {
            summary.extend(backup_bench(&options, &BACKUP).await?);
        }
        if all || options.bench == "cold-start" {
            summary.extend(cold_start_bench(&options).await?);
        }
        for bench in PACING {
            if pacing || options.bench == bench.name || options.bench == bench.group {
                summary.extend(pacing_bench(&options, bench).await?);
            }
        }
        if pacing || options.bench == "backup-window" {
            summary.extend(backup_bench(&options, &BACKUP_WINDOW).await?);
        }
        let jobs = options.bench == "jobs";
        if jobs || options.bench == "job-backup" {
            summary.extend(jobs::backup(&options, options.files.unwrap_or(1_000_000), options.budget).await?);
        }
        if jobs || options.bench == "job-async" {
            summary.extend(jobs::archives(&options, options.files.unwrap_or(100_000), options.budget).await?);
        }
        let stored = options.bench == "storage";
        if stored || options.bench == "store-archive" {
            summary.extend(storage::archive(&options).await?);
        }
        if stored || options.bench == "store-backup" {
            summary.extend(storage::backup(&options).await?);
        }
        if stored || options.bench == "incremental" {
            summary.extend(storage::incremental(&options).await?);
        }
        if stored || options.bench == "restore" {
            summary.extend(storage::restore(&options).await?);
        }
        Ok(())
    }
    .await;
    if !summary.is_empty() {
        println!("\n== summary");
        println!("{:<52} {:>22} {:>22}", "figure", "measured", "target");
        for row in &summary {
            println!(
                "{:<52} {:>22} {:>22} {}",
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
    println!(
        "library: {}",
        options
            .file_bytes
            .map_or("files of the emulator's own sizes".to_owned(), |b| format!(
                "every file {b} bytes"
            ))
    );
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
    /// 429s of the emulator's limit (`fault: "rate-limit"` in its log).
    rate_limited: usize,
    /// Each of those: (arrival, ms since the emulator started; position among all calls, from 1).
    limited_at: Vec<(u64, usize)>,
    /// Calls an injected fault answered (429, 5xx, dropped): each forces one retry.
    faulted: usize,
    /// By endpoint (the path after `/v1/`).
    by_endpoint: BTreeMap<String, usize>,
    first_ms: u64,
    last_ms: u64,
}

/// Writes a run's call log under `--log-dir`, when given.
fn save_log(options: &Options, name: &str, calls: &[CallRecord]) -> Result<(), String> {
    let Some(dir) = &options.log_dir else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(format!(
        "{}.jsonl",
        name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-")
    ));
    let mut text = String::new();
    for call in calls {
        text.push_str(&serde_json::to_string(call).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))
}

fn count_calls(calls: &[CallRecord]) -> Calls {
    let mut c = Calls {
        first_ms: calls.iter().map(|c| c.at_ms).min().unwrap_or(0),
        last_ms: calls.iter().map(|c| c.at_ms).max().unwrap_or(0),
        ..Calls::default()
    };
    for (i, call) in calls.iter().enumerate() {
        c.total += 1;
        if call.fault.as_deref() == Some("rate-limit") {
            c.rate_limited += 1;
            c.limited_at.push((call.at_ms, i + 1));
        } else if call.status == 429 || call.status >= 500 || call.status == 0 || call.fault.is_some() {
            c.faulted += 1;
        }
        let name = call
            .path
            .split_once("/v1/")
            .map_or(call.path.as_str(), |(_, p)| p)
            .to_owned();
        *c.by_endpoint.entry(name).or_insert(0) += 1;
    }
    c
}

/// The limit's 429s of a run as `#position@+ms` (since `origin_ms`), at most `max` of them.
fn limited_list(calls: &Calls, origin_ms: u64, max: usize) -> String {
    let mut parts: Vec<String> = calls
        .limited_at
        .iter()
        .take(max)
        .map(|(at, i)| format!("#{i}@+{}ms", at.saturating_sub(origin_ms)))
        .collect();
    if calls.limited_at.len() > max {
        parts.push(format!("… {} more", calls.limited_at.len() - max));
    }
    parts.join(" ")
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
        self.waste += calls
            .total
            .saturating_sub(min_calls + calls.faulted + calls.rate_limited);
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
             (minimum {min_calls}; calls beyond minimum + fault- and 429-forced retries: {waste})"
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
    /// The best schedule the emulator's limit, the latency and the calls in flight allow.
    fn ideal(&self) -> f64 {
        let work = Work {
            free: self.files.div_ceil(1000),
            ..Work::default()
        };
        let limit = self
            .emulator_limit
            .map_or(Limit::None, |per_minute| Limit::Window { per_minute });
        ideal::ideal_seconds(
            work,
            limit,
            Duration::from_millis(self.latency_ms),
            self.concurrency as usize,
        )
    }

    /// The ideal these figures had before the pacing issue: the calls evenly spaced at the
    /// pace (which was the old pacer's own schedule, not the limit's).
    fn even_spacing(&self) -> f64 {
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
    let library = workloads::http_library(bench.files, options.file_bytes);
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
    println!(
        "   ideal {:.3} s: the best schedule under the emulator's limit, {} ms a call, {} in flight \
         (before the pacing issue the ideal was {:.3} s: the calls evenly spaced at the pace)",
        bench.ideal(),
        bench.latency_ms,
        bench.concurrency,
        bench.even_spacing()
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
        let log = emulator.api_calls();
        save_log(options, &format!("{}-function-{run}", bench.name), &log)?;
        let calls = count_calls(&log);
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

// ---- pacing: the function and the careful peer, side by side ------------------------

struct PacingBench {
    name: &'static str,
    /// The benchmark name that runs it (with its variants).
    group: &'static str,
    files: usize,
    latency_ms: u64,
    /// The emulator's limit; the function is paced at `WIX_REQUESTS_PER_MINUTE=200`.
    limit: RateLimit,
    /// Target: the function faster than the peer (`true`), or not slower (`false`).
    faster: bool,
    /// Most 429s a run may receive, as a share of its archive calls.
    max_429_share: f64,
}

const PACE: u32 = 200;

const WINDOW_200: RateLimit = RateLimit {
    per_minute: 200,
    retry_after: true,
    kind: LimiterKind::Window,
};

const BUCKET_200_20: RateLimit = RateLimit {
    per_minute: 200,
    retry_after: true,
    kind: LimiterKind::TokenBucket { burst: 20 },
};

const PACING: &[PacingBench] = &[
    PacingBench {
        name: "window-100",
        group: "window-100",
        files: 100_000,
        latency_ms: 50,
        limit: WINDOW_200,
        faster: true,
        max_429_share: 0.0,
    },
    PacingBench {
        name: "window-300",
        group: "window-300",
        files: 300_000,
        latency_ms: 50,
        limit: WINDOW_200,
        faster: true,
        max_429_share: 0.0,
    },
    PacingBench {
        name: "bucket-300",
        group: "bucket-300",
        files: 300_000,
        latency_ms: 50,
        limit: BUCKET_200_20,
        faster: false,
        max_429_share: 0.01,
    },
    PacingBench {
        name: "bucket-300 (no Retry-After)",
        group: "bucket-300",
        files: 300_000,
        latency_ms: 50,
        limit: RateLimit {
            retry_after: false,
            ..BUCKET_200_20
        },
        faster: false,
        max_429_share: 0.01,
    },
];

/// One side's runs (the function's or the peer's).
#[derive(Default)]
struct Side {
    /// Wall time: the function's event → response read; the peer's exec → exit.
    times: Vec<f64>,
    limited: Vec<usize>,
    calls: Vec<usize>,
    lost: Vec<u64>,
    /// Start (event or exec) → first Wix call, ms.
    first_call: Vec<f64>,
    /// First Wix call → last answer (last call's arrival + the latency), s.
    span: Vec<f64>,
}

impl Side {
    fn add(&mut self, secs: f64, calls: &Calls, lost: u64, origin_ms: u64, latency_ms: u64) {
        self.times.push(secs);
        self.limited.push(calls.rate_limited);
        self.calls.push(calls.total);
        self.lost.push(lost);
        self.first_call.push(calls.first_ms.saturating_sub(origin_ms) as f64);
        self.span
            .push((calls.last_ms + latency_ms).saturating_sub(calls.first_ms) as f64 / 1000.0);
    }

    fn median(&self) -> f64 {
        median(&self.times)
    }

    fn print(&self, who: &str, ideal: f64) {
        let (lo, hi) = min_max(&self.times);
        let m = self.median();
        let calls: usize = self.calls.iter().sum();
        let limited: usize = self.limited.iter().sum();
        println!(
            "   {who:<9} wall {m:.3} s [{lo:.3}–{hi:.3}], ideal/measured {:.3}; 429s {limited} of {calls} calls \
             ({:?} a run); calls {:?}; files lost {:?}; first call +{:.0} ms (median), first call → last answer \
             {:.3} s (median)",
            ideal / m,
            self.limited,
            self.calls,
            self.lost,
            median(&self.first_call),
            median(&self.span),
        );
    }
}

fn set_env(env: &mut Vec<(String, String)>, key: &str, value: String) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value));
}

async fn pacing_bench(options: &Options, bench: &PacingBench) -> Result<Vec<Row>, String> {
    let name = bench.name;
    let node = peer::check(&options.peer)?;
    let library = workloads::http_library(bench.files, options.file_bytes);
    let body = workloads::archives_body(&library, URL_EVERY);
    let body_file = std::env::temp_dir().join(format!(
        "archiver-bench-{}-{}.json",
        std::process::id(),
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    ));
    std::fs::write(&body_file, &body).map_err(|e| format!("{}: {e}", body_file.display()))?;
    let min_calls = bench.files.div_ceil(1000);
    let latency = Duration::from_millis(bench.latency_ms);
    let work = Work {
        free: min_calls,
        ..Work::default()
    };
    let ideal = ideal::ideal_seconds(work, limit_of(&bench.limit), latency, 4);
    let max_429 = (bench.max_429_share * min_calls as f64).floor() as usize;
    println!(
        "\n== {name}: POST /archives (Function URL event), {} unique IDs (1 in {URL_EVERY} as a wix:image:// URL), \
         body {:.2} MB -> {min_calls} archive calls; the peer: node {} (Node {node}) with the same body",
        bench.files,
        body.len() as f64 / 1e6,
        options.peer.display()
    );
    println!(
        "   Wix emulator (a fresh one per run): latency {} ms, limit {}; function: WIX_REQUESTS_PER_MINUTE={PACE}, \
         WIX_MAX_CONCURRENCY=4; peer: 4 in flight (p-limit), backoff with full jitter, Retry-After honoured",
        bench.latency_ms,
        describe_limit(&bench.limit)
    );
    println!(
        "   ideal {ideal:.3} s: the best schedule under that limit with {} ms a call and 4 in flight",
        bench.latency_ms
    );
    let emulator_config = || EmulatorConfig {
        library: library.clone(),
        latency,
        rate_limit: Some(bench.limit),
        ..EmulatorConfig::default()
    };
    let (mut function, mut peer_side) = (Side::default(), Side::default());
    for run in 1..=options.runs {
        // The function, on a fresh emulator (an empty window, a full bucket).
        let emulator = Emulator::start(emulator_config())
            .await
            .map_err(|e| format!("emulator: {e}"))?;
        let since = Instant::now();
        let mut env = with_call_times(
            workloads::function_env(&emulator.base_url(), PACE, 4),
            options.call_times,
        );
        set_env(&mut env, "MAX_FILES_PER_REQUEST", bench.files.max(100_000).to_string());
        // A Function URL request is given 12 s by default (what a Wix site's backend waits);
        // these take a minute or more, so the caller here waits as long as Lambda allows.
        set_env(&mut env, "HTTP_DEADLINE_SECONDS", "900".to_owned());
        let event = Bytes::from(workloads::signed_function_url_event(&body));
        let inv = invoke(&options.bin, &env, event, since, options.verbose).await?;
        let log = emulator.api_calls();
        save_log(options, &format!("{name}-function-{run}"), &log)?;
        let calls = count_calls(&log);
        drop(emulator);
        let response = inv.outcome.response().map_err(|e| format!("{name}: {e}"))?;
        let (status, report) =
            workloads::http_body(response).ok_or_else(|| format!("{name}: the answer is not an HTTP response"))?;
        let archives = report["archives"].as_array().map_or(0, Vec::len);
        let archived: u64 = report["archives"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["fileCount"].as_u64()).sum())
            .unwrap_or(0);
        let with_links = report["archives"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|x| x["downloadUrl"].as_str().is_some_and(|u| !u.is_empty()))
                .count()
        });
        let lost = (bench.files as u64).saturating_sub(archived);
        let delivered_ms = inv.delivered_at.as_millis() as u64;
        let secs = inv.elapsed.as_secs_f64();
        println!(
            "   run {run} function: {secs:.3} s, HTTP {status}, {archives} archives ({with_links} with a link) of \
             {archived} files{}, {} failed entries; {} Wix calls ({} x 429); first call +{} ms, last +{} ms",
            if report.get("shortened").is_some() {
                " (answer shortened: no fileIds lists)"
            } else {
                ""
            },
            report["failed"].as_array().map_or(0, Vec::len),
            calls.total,
            calls.rate_limited,
            calls.first_ms.saturating_sub(delivered_ms),
            calls.last_ms.saturating_sub(delivered_ms),
        );
        if calls.rate_limited > 0 {
            println!(
                "      429s (call #, arrival after the event): {}",
                limited_list(&calls, delivered_ms, 16)
            );
        }
        if let Some(times) = call_times(&inv.log) {
            println!("      {times}");
        }
        if status != 200 || with_links != min_calls {
            let failed = report["failed"].as_array();
            println!(
                "      NOT a full answer: {} failed entries, the first: {}",
                failed.map_or(0, Vec::len),
                failed
                    .and_then(|f| f.first())
                    .map_or(Value::Null, |f| f["error"].clone())
            );
        }
        function.add(secs, &calls, lost, delivered_ms, bench.latency_ms);

        // The peer, on a fresh emulator with the same settings.
        let emulator = Emulator::start(emulator_config())
            .await
            .map_err(|e| format!("emulator: {e}"))?;
        let since = Instant::now();
        let run_p = peer::run(&options.peer, &emulator.base_url(), &body_file).await?;
        let log = emulator.api_calls();
        save_log(options, &format!("{name}-peer-{run}"), &log)?;
        let calls = count_calls(&log);
        drop(emulator);
        let r = &run_p.report;
        let files = r["files"].as_u64().unwrap_or(0);
        let failed = r["failed"].as_u64().unwrap_or(0);
        let lost = (bench.files as u64).saturating_sub(files) + failed;
        let started_ms = run_p.started.saturating_duration_since(since).as_millis() as u64;
        let secs = run_p.elapsed.as_secs_f64();
        println!(
            "   run {run} peer:     {secs:.3} s, {}; {} Wix calls ({} x 429); first call +{} ms, last +{} ms",
            r,
            calls.total,
            calls.rate_limited,
            calls.first_ms.saturating_sub(started_ms),
            calls.last_ms.saturating_sub(started_ms),
        );
        if calls.rate_limited > 0 && options.verbose {
            println!(
                "      429s (call #, arrival after exec): {}",
                limited_list(&calls, started_ms, 40)
            );
        }
        peer_side.add(secs, &calls, lost, started_ms, bench.latency_ms);
    }
    let _ = std::fs::remove_file(&body_file);

    function.print("function", ideal);
    peer_side.print("peer", ideal);
    let (fm, pm) = (function.median(), peer_side.median());
    let vs = fm / pm;
    println!(
        "   function / peer  {vs:.3} (wall medians; the function {} by {:.3} s; first call → last answer: {:.3})",
        if fm < pm { "faster" } else { "slower" },
        (pm - fm).abs(),
        median(&function.span) / median(&peer_side.span)
    );
    // A fast wrong answer is not a figure: runs that lost files meet no target.
    let complete = function.lost.iter().all(|l| *l == 0);
    let ratio = ideal / fm;
    let worst_429 = function.limited.iter().copied().max().unwrap_or(0);
    let all_429: usize = function.limited.iter().sum();
    let all_calls: usize = function.calls.iter().sum();
    let lost_f: u64 = function.lost.iter().sum();
    let lost_p: u64 = peer_side.lost.iter().sum();
    Ok(vec![
        row(
            format!("{name}: ideal/measured (ideal {ideal:.2} s)"),
            format!("{ratio:.3} ({fm:.2} s)"),
            ">= 0.95",
            complete && ratio >= 0.95,
        ),
        row(
            format!("{name}: 429s a run (max; all runs)"),
            format!(
                "{worst_429}; {all_429}/{all_calls} = {:.2} %",
                100.0 * all_429 as f64 / all_calls.max(1) as f64
            ),
            if max_429 == 0 {
                "0".to_owned()
            } else {
                format!("<= {max_429} ({:.0} %)", bench.max_429_share * 100.0)
            },
            worst_429 <= max_429,
        ),
        row(
            format!("{name}: function / peer"),
            format!("{vs:.3} ({fm:.2} / {pm:.2} s)"),
            if bench.faster { "< 1" } else { "<= 1" },
            complete && if bench.faster { vs < 1.0 } else { vs <= 1.0 },
        ),
        row(
            format!("{name}: files lost (function; peer)"),
            format!("{lost_f}; {lost_p}"),
            "0 (function)",
            lost_f == 0,
        ),
    ])
}

// ---- backup -----------------------------------------------------------------------

struct BackupBench {
    name: &'static str,
    files: usize,
    /// Folders when `--folders` is not given.
    folders: usize,
    latency_ms: u64,
    /// The emulator's limit.
    limit: RateLimit,
    /// `WIX_REQUESTS_PER_MINUTE`.
    pacing: u32,
    target_ratio: f64,
}

const BACKUP: BackupBench = BackupBench {
    name: "backup",
    files: 50_000,
    folders: 200,
    latency_ms: 50,
    limit: RateLimit {
        per_minute: 1200,
        retry_after: false,
        kind: LimiterKind::Window,
    },
    pacing: 1200,
    target_ratio: 0.90,
};

const BACKUP_WINDOW: BackupBench = BackupBench {
    name: "backup-window",
    files: 30_000,
    folders: 120,
    latency_ms: 50,
    limit: RateLimit {
        per_minute: 200,
        retry_after: true,
        kind: LimiterKind::Window,
    },
    pacing: 200,
    target_ratio: 0.95,
};

/// The ideal's model of an emulator limit.
fn limit_of(limit: &RateLimit) -> Limit {
    match limit.kind {
        LimiterKind::Window => Limit::Window {
            per_minute: limit.per_minute,
        },
        LimiterKind::TokenBucket { burst } => Limit::Bucket {
            per_minute: limit.per_minute,
            burst,
        },
    }
}

fn describe_limit(limit: &RateLimit) -> String {
    let kind = match limit.kind {
        LimiterKind::Window => format!("sliding window {}/min", limit.per_minute),
        LimiterKind::TokenBucket { burst } => format!("token bucket {}/min, burst {burst}", limit.per_minute),
    };
    format!(
        "{kind} (429 beyond, {})",
        if limit.retry_after {
            "with Retry-After"
        } else {
            "no Retry-After"
        }
    )
}

async fn backup_bench(options: &Options, bench: &BackupBench) -> Result<Vec<Row>, String> {
    let name = bench.name;
    let folders = options.folders.unwrap_or(bench.folders);
    let library = workloads::backup_library(bench.files, folders, 7, options.file_bytes);
    let (search, folder_calls, archives) = workloads::backup_minimum(&library, 100);
    let min_calls = search + folder_calls + archives;
    let work = Work {
        chain: search,
        free: folder_calls,
        after: archives,
    };
    let latency = Duration::from_millis(bench.latency_ms);
    let best = ideal::best_schedule(work, limit_of(&bench.limit), latency, 4);
    let ideal = best.seconds();
    let event = Bytes::from_static(br#"{"backup": {"includePrivate": false}}"#);
    println!(
        "\n== {name}: scheduled backup (direct invoke {{\"backup\": {{\"includePrivate\": false}}}}) of {} files \
         in {} folders (all public, READY; none private)",
        library.files.len(),
        library.folders.len()
    );
    println!(
        "   minimum Wix calls: {search} search pages + {folder_calls} Search Folders pages + {archives} archive calls = {min_calls}"
    );
    println!(
        "   Wix emulator: latency {} ms, limit {}; function: WIX_REQUESTS_PER_MINUTE={}, WIX_MAX_CONCURRENCY=4",
        bench.latency_ms,
        describe_limit(&bench.limit),
        bench.pacing
    );
    println!(
        "   ideal = {ideal:.3} s: the best schedule under that limit with {} ms a call and 4 in flight, the {search} \
         search pages one after the other, the folder pages at any time, the archive calls after the listing",
        bench.latency_ms
    );
    let mut tally = Tally::default();
    for run in 1..=options.runs {
        let config = EmulatorConfig {
            library: library.clone(),
            latency,
            rate_limit: Some(bench.limit),
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config).await.map_err(|e| format!("emulator: {e}"))?;
        emulator.push_faults("files/search", injected_faults(options.faults));
        let since = Instant::now();
        let env = with_call_times(
            workloads::function_env(&emulator.base_url(), bench.pacing, 4),
            options.call_times,
        );
        let inv = invoke(&options.bin, &env, event.clone(), since, options.verbose).await?;
        let log = emulator.api_calls();
        save_log(options, &format!("{name}-function-{run}"), &log)?;
        let calls = count_calls(&log);
        drop(emulator);
        let response = inv.outcome.response().map_err(|e| format!("{name}: {e}"))?;
        let report: Value =
            serde_json::from_slice(response).map_err(|e| format!("{name}: the answer is not JSON: {e}"))?;
        let listed = report["listedFiles"].as_u64().unwrap_or(0);
        let archived: u64 = report["archives"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["fileCount"].as_u64()).sum())
            .unwrap_or(0);
        if listed != library.files.len() as u64 || archived != listed || report["incomplete"] != Value::Bool(false) {
            return Err(format!(
                "{name}: listed {listed}, archived {archived}, incomplete {}, error {}",
                report["incomplete"], report["error"]
            ));
        }
        let delivered_ms = inv.delivered_at.as_millis() as u64;
        let last_of = |part: &str| {
            log.iter()
                .filter(|c| c.path.contains(part))
                .map(|c| c.at_ms)
                .max()
                .unwrap_or(0)
        };
        let (last_search, last_folder) = (last_of("/files/search"), last_of("/folders"));
        let first_archive = log
            .iter()
            .filter(|c| c.path.ends_with("/generate-download-url"))
            .map(|c| c.at_ms)
            .min()
            .unwrap_or(0);
        let secs = inv.elapsed.as_secs_f64();
        println!(
            "   run {run}: {secs:.3} s, {} Wix calls {:?} ({} x 429), peak {}; last search +{} ms, \
             last folder call +{} ms, first archive call +{} ms, last call +{} ms",
            calls.total,
            calls.by_endpoint,
            calls.rate_limited,
            inv.peak_memory.map_or("?".to_owned(), |b| mb(b as f64)),
            last_search.saturating_sub(delivered_ms),
            last_folder.saturating_sub(delivered_ms),
            first_archive.saturating_sub(delivered_ms),
            calls.last_ms.saturating_sub(delivered_ms),
        );
        if calls.rate_limited > 0 {
            println!(
                "      429s (call #, arrival after the event): {}",
                limited_list(&calls, delivered_ms, 12)
            );
        }
        if let Some(times) = call_times(&inv.log) {
            println!("      {times}");
        }
        tally.add(&inv, &calls, min_calls);
    }
    Ok(tally.report(name, ideal, bench.target_ratio, min_calls, 64.0))
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
