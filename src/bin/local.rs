//! `archiver-local`: run the function on your machine.
//!
//! - `invoke <event.json> [--timeout-secs N] [--keep-serving]`: runs the very same handler
//!   in-process on a Lambda event fixture and prints the Lambda response. With no Wix
//!   credentials configured it starts the bundled Wix emulator and signs the fixture
//!   with a local caller key.
//! - `sign --key K [--time T] [FILE|-]`: prints the `X-Archive-Signature` for a body.
//! - `emulator [flags]`: runs the Wix emulator alone (`emulator --help`).
//! - `backup [--full] [--no-private]`, `restore [--backup ID] [--file ID]… [--folder PATH]
//!   [--all]`, `verify [--backup ID]`: a backup, a restore or a verification with the
//!   configuration from the environment (stored ones need `STORAGE_BUCKET` and an S3,
//!   e.g. a local moto); progress on standard error (a bar on a terminal, plain lines
//!   otherwise), the answer printed as JSON; `--json`: the answer alone, on one line.
//! - `break [--delete N] [--change N] [--seed S]`: deletes or changes random files of a
//!   running emulator (`WIX_API_BASE_URL`), to have something to restore.
//! - `console [--port N] [--no-seed]`: the owner's console at `http://127.0.0.1:N/console`,
//!   the function served as a Function URL in-process, its jobs run by moto's Step
//!   Functions with the Lambda binary as the workers, over the bundled emulator and two
//!   seeded backups (needs a local moto in `AWS_ENDPOINT_URL`).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use wix_emulator::{Emulator, EmulatorConfig, FileRecord, Library};
use wix_media_archiver::app::App;
use wix_media_archiver::config::Config;
use wix_media_archiver::{local, logging, signature};

const USAGE: &str = "usage:
  archiver-local invoke <event.json> [--timeout-secs N] [--keep-serving]
  archiver-local sign --key KEY [--time UNIX_SECONDS] [BODY_FILE|-]
  archiver-local emulator [--port N] [--files N] [--latency-ms N] [--rate-limit N] ... (--help)
  archiver-local backup [--full] [--no-private] [--json]
  archiver-local restore [--backup latest|ID] [--file ID]... [--folder /PATH] [--all] [--json]
  archiver-local verify [--backup latest|ID] [--json]
  archiver-local break [--delete N] [--change N] [--seed S]
  archiver-local console [--port 9090] [--no-seed]";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("invoke") => invoke(&args[1..]).await,
        Some("sign") => sign(&args[1..]),
        Some("emulator") => wix_emulator::run_cli(args[1..].to_vec()).await,
        Some(op @ ("backup" | "restore" | "verify")) => operation(op, &args[1..]).await,
        Some("break") => break_emulator(&args[1..]).await,
        Some("console") => console(&args[1..]).await,
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn invoke(args: &[String]) -> Result<(), String> {
    let mut path = None;
    let mut timeout = Some(Duration::from_secs(900));
    let mut keep_serving = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--timeout-secs" => {
                let secs: u64 = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--timeout-secs needs a number of seconds")?;
                timeout = (secs > 0).then(|| Duration::from_secs(secs));
            }
            "--keep-serving" => keep_serving = true,
            other if path.is_none() && !other.starts_with("--") => path = Some(other.to_owned()),
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    let path = path.ok_or_else(|| USAGE.to_owned())?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut event: Value = serde_json::from_str(&text).map_err(|e| format!("{path} is not JSON: {e}"))?;
    logging::init(std::io::stderr);
    let (app, emulator, _) = local_app(&local::event_file_ids(&event)).await?;

    if let Ok(creds) = app.credentials.current().await {
        if let Some(key) = creds.caller_keys.first() {
            local::sign_event(&mut event, key.expose(), local::unix_now());
        }
    }
    let result = local::invoke(&app, &event, timeout).await;
    let printed = match &result {
        Ok(response) => pretty_response(response),
        Err(e) => serde_json::json!({"errorType": e.error_type(), "errorMessage": e.to_string()}),
    };
    println!("{}", serde_json::to_string_pretty(&printed).expect("JSON prints"));
    if let (Some(emulator), true) = (&emulator, keep_serving) {
        eprintln!("Serving the emulator's links at {} until Ctrl-C", emulator.base_url());
        let _ = tokio::signal::ctrl_c().await;
    }
    result
        .map(|_| ())
        .map_err(|e| format!("the invocation failed: {}", e.error_type()))
}

/// A backup, restore or verify event from the command line, run like `invoke` runs one.
async fn operation(op: &str, args: &[String]) -> Result<(), String> {
    let mut options = serde_json::Map::new();
    let mut files: Vec<Value> = Vec::new();
    let mut json = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match (op, arg.as_str()) {
            (_, "--json") => json = true,
            ("backup", "--full") => {
                options.insert("full".into(), Value::Bool(true));
            }
            ("backup", "--no-private") => {
                options.insert("includePrivate".into(), Value::Bool(false));
            }
            ("restore" | "verify", "--backup") => {
                options.insert("backupId".into(), Value::String(value("--backup")?));
            }
            ("restore", "--file") => files.push(Value::String(value("--file")?)),
            ("restore", "--folder") => {
                options.insert("folderPath".into(), Value::String(value("--folder")?));
            }
            ("restore", "--all") => {
                options.insert("onlyMissing".into(), Value::Bool(false));
            }
            (_, other) => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    if !files.is_empty() {
        options.insert("fileIds".into(), Value::Array(files));
    }
    let event = serde_json::json!({ op: Value::Object(options) });
    // Progress on standard error: a bar on a terminal, plain lines otherwise; none with --json.
    let progress = (!json).then(|| wix_media_archiver::progress_view::layer(std::io::stderr().is_terminal()));
    logging::init_with(std::io::stderr, progress);
    let (app, _emulator, _) = local_app(&[]).await?;
    let result = local::invoke(&app, &event, Some(Duration::from_secs(900))).await;
    match result {
        Ok(answer) if json => {
            println!("{}", serde_json::to_string(&answer).expect("JSON prints"));
            Ok(())
        }
        Ok(answer) => {
            println!("{}", serde_json::to_string_pretty(&answer).expect("JSON prints"));
            Ok(())
        }
        Err(e) => Err(format!("the {op} failed: {}: {e}", e.error_type())),
    }
}

/// The app from the environment; with no Wix credentials configured, over a bundled
/// emulator (seeded, plus `extra_ids`), which lives as long as the returned handle. Also
/// the variables set for the emulator.
async fn local_app(extra_ids: &[String]) -> Result<(App, Option<Emulator>, HashMap<&'static str, String>), String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let has_credentials = env("WIX_CREDENTIALS_SECRET").is_some() || env("WIX_API_KEY").is_some();
    let mut overrides: HashMap<&str, String> = HashMap::new();
    let emulator = if has_credentials {
        None
    } else {
        let mut library = Library::seeded(250, 7);
        add_files(&mut library, extra_ids);
        let config = EmulatorConfig {
            library,
            ..EmulatorConfig::default()
        };
        overrides.insert("WIX_API_KEY", config.api_key.clone());
        overrides.insert("WIX_SITE_ID", config.site_id.clone());
        let emulator = Emulator::start(config)
            .await
            .map_err(|e| format!("cannot start the Wix emulator: {e}"))?;
        overrides.insert("WIX_API_BASE_URL", emulator.base_url());
        overrides.insert("CALLER_KEYS", local::LOCAL_CALLER_KEY.to_owned());
        eprintln!(
            "No Wix credentials configured: using the bundled Wix emulator at {}",
            emulator.base_url()
        );
        Some(emulator)
    };
    let config = Config::from_lookup(|name| overrides.get(name).cloned().or_else(|| std::env::var(name).ok()))
        .map_err(|e| e.to_string())?;
    let app = App::from_config(config).await.map_err(|e| e.to_string())?;
    Ok((app, emulator, overrides))
}

/// The owner's console on this machine: the function as a Function URL on a loopback port,
/// its jobs on the local moto's Step Functions with the Lambda binary as two workers, and,
/// over the bundled emulator, two backups to look at and a few files missing to restore.
async fn console(args: &[String]) -> Result<(), String> {
    let mut port: u16 = 9090;
    let mut seed = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => {
                port = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--port needs a port number")?
            }
            "--no-seed" => seed = false,
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let endpoint = env("AWS_ENDPOINT_URL").ok_or(
        "console runs its jobs on a local moto: start one (python3 -m moto.server -p 5000) and set \
         AWS_ENDPOINT_URL=http://127.0.0.1:5000",
    )?;
    // Local moto takes any credentials; the SDK still wants some.
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("STORAGE_BUCKET", "console-backups"),
    ] {
        if env(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    let bucket = env("STORAGE_BUCKET").unwrap_or_default();
    let worker_binary = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("wix-media-archiver");
    // Under `cargo run`, the workers' binary is built here when it is not there yet.
    if let (false, Ok(cargo)) = (worker_binary.exists(), std::env::var("CARGO")) {
        let release = worker_binary.parent().and_then(|d| d.file_name()) == Some(std::ffi::OsStr::new("release"));
        eprintln!("Building the Lambda binary for the job workers…");
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "--bin", "wix-media-archiver"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().map_err(|e| format!("cargo build could not run: {e}"))?;
        if !status.success() {
            return Err("cargo build --bin wix-media-archiver failed".to_owned());
        }
    }
    if !worker_binary.exists() {
        return Err(format!(
            "{} is missing: the job workers run the Lambda binary; build it first with \
             `cargo build --bin wix-media-archiver`",
            worker_binary.display()
        ));
    }
    logging::init(std::io::stderr);
    let sdk = wix_media_archiver::aws::sdk_config().await;
    let s3 = wix_media_archiver::storage::s3_client(&sdk);
    if let Err(e) = s3.create_bucket().bucket(&bucket).send().await {
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e)
            .unwrap_or_default()
            .to_owned();
        if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
            return Err(format!("the bucket {bucket} could not be made at {endpoint}: {e}"));
        }
    }
    // The rig names its queue and state machine once per moto; it panics when they are there.
    let engine = {
        let (sdk, at, bucket) = (sdk.clone(), endpoint.clone(), bucket.clone());
        tokio::spawn(async move { job_rig::JobEngine::create(&sdk, &at, &bucket, 60, 2, 120).await })
            .await
            .map_err(|_| {
                format!(
                    "the job engine could not be made on the moto at {endpoint} (see above); \
                     the console needs a moto of its own: start a fresh one"
                )
            })?
    };
    std::env::set_var("JOB_STATE_MACHINE_ARN", &engine.state_machine_arn);
    let (app, emulator, overrides) = local_app(&[]).await?;
    let app = std::sync::Arc::new(app);

    if let (true, Some(emulator)) = (seed, &emulator) {
        eprintln!("Seeding: a full backup, a few changes, an incremental backup, a few files lost…");
        let backup = |app: std::sync::Arc<App>| async move {
            local::invoke(&app, &serde_json::json!({"backup": {}}), Some(Duration::from_secs(600)))
                .await
                .map_err(|e| format!("the seeding backup failed: {}: {e}", e.error_type()))
        };
        backup(app.clone()).await?;
        let ids: Vec<String> = emulator
            .library()
            .files
            .iter()
            .filter(|f| f.media_type == "IMAGE" && f.operation_status == "READY" && f.state == "OK" && !f.private)
            .map(|f| f.id.clone())
            .collect();
        for id in ids.iter().skip(10).step_by(37).take(4) {
            emulator.change_file_content(id);
        }
        // Backup IDs are to the second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        backup(app.clone()).await?;
        for id in ids.iter().skip(3).step_by(41).take(5) {
            emulator.delete_file(id);
        }
    }

    let mut worker_env: HashMap<String, String> = std::env::vars().collect();
    worker_env.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let workers = job_rig::Workers::start(&worker_binary, 2, &engine, worker_env, job_rig::deliver_all()).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    eprintln!("The console: http://127.0.0.1:{port}/console");
    if overrides.contains_key("CALLER_KEYS") {
        eprintln!("Caller key of the bundled emulator's site: {}", local::LOCAL_CALLER_KEY);
    } else {
        eprintln!("Sign in with one of your CALLER_KEYS.");
    }
    eprintln!("Ctrl-C stops it.");
    tokio::select! {
        served = wix_media_archiver::console::serve::serve(app, listener) => {
            served.map_err(|e| format!("the console stopped: {e}"))?;
        }
        _ = tokio::signal::ctrl_c() => {}
    }
    workers.stop().await;
    Ok(())
}

/// Deletes or changes random files of the emulator at `WIX_API_BASE_URL`.
async fn break_emulator(args: &[String]) -> Result<(), String> {
    let mut delete = 0u64;
    let mut change = 0u64;
    let mut seed = local::unix_now();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |flag: &str| {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{flag} needs a number"))
        };
        match arg.as_str() {
            "--delete" => delete = number("--delete")?,
            "--change" => change = number("--change")?,
            "--seed" => seed = number("--seed")?,
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    let base = std::env::var("WIX_API_BASE_URL")
        .map_err(|_| "break needs WIX_API_BASE_URL: the address of a running `archiver-local emulator`".to_owned())?;
    let http = reqwest::Client::new();
    for (action, count) in [("delete", delete), ("change", change)] {
        if count == 0 {
            continue;
        }
        let answer: Value = http
            .post(format!("{}/_emulator/control/{action}", base.trim_end_matches('/')))
            .json(&serde_json::json!({"count": count, "seed": seed}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("the emulator at {base} did not answer: {e}"))?
            .json()
            .await
            .map_err(|e| format!("the emulator's answer is not JSON: {e}"))?;
        let files = answer["files"].as_array().cloned().unwrap_or_default();
        eprintln!("{action}d {} files:", files.len());
        for f in files {
            eprintln!(
                "  {}  {}",
                f["id"].as_str().unwrap_or(""),
                f["displayName"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// The Lambda response with its JSON body shown as JSON rather than as a string.
fn pretty_response(response: &Value) -> Value {
    let mut shown = response.clone();
    if let Some(body) = response.get("body").and_then(Value::as_str) {
        if let Ok(parsed) = serde_json::from_str::<Value>(body) {
            shown["body"] = parsed;
        }
    }
    shown
}

/// Adds files the fixture names to the emulator's library, so they exist there.
fn add_files(library: &mut Library, ids: &[String]) {
    for id in ids {
        if library.file(id).is_none() {
            library.files.push(FileRecord {
                id: id.clone(),
                display_name: id.clone(),
                parent_folder_id: wix_emulator::MEDIA_ROOT.to_owned(),
                media_type: "IMAGE".to_owned(),
                private: false,
                operation_status: "READY".to_owned(),
                state: "OK".to_owned(),
                size_in_bytes: 1024,
            });
        }
    }
}

fn sign(args: &[String]) -> Result<(), String> {
    let mut key = None;
    let mut time = local::unix_now();
    let mut file = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--key" => key = it.next().cloned(),
            "--time" => {
                time = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--time needs unix seconds")?
            }
            other if file.is_none() => file = Some(other.to_owned()),
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    let key = key
        .or_else(|| std::env::var("CALLER_KEY").ok())
        .ok_or("sign needs --key KEY (or CALLER_KEY in the environment)")?;
    let body = match file.as_deref() {
        None | Some("-") => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| e.to_string())?;
            buf
        }
        Some(path) => std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?,
    };
    println!("{}", signature::sign(&key, time, &body));
    Ok(())
}
