//! The local CLI as its user runs it: `archiver-local backup` and `verify` as processes,
//! against the Wix emulator and moto's S3. On a pipe (not a terminal) progress comes as
//! plain lines on standard error; `--json` prints the answer alone, on one line.

mod common;

use common::moto;
use common::*;
use serde_json::Value;
use wix_emulator::{Emulator, EmulatorConfig, Library};

const BUCKET: &str = "cli-backups";

async fn run(emulator: &Emulator, config: &EmulatorConfig, args: &[&str]) -> (String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_archiver-local"));
    command.args(args).env_clear();
    for (k, v) in base_env(emulator, config) {
        command.env(k, v);
    }
    for k in [
        "PATH",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        if let Ok(v) = std::env::var(k) {
            command.env(k, v);
        }
    }
    command.env("STORAGE_BUCKET", BUCKET).env("RUST_LOG", "warn");
    let out = command.output().await.expect("archiver-local runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "archiver-local {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn backup_shows_its_progress_in_plain_lines_and_verify_json_prints_the_answer_alone() {
    let _moto = moto::setup().await;
    moto::create_bucket(BUCKET).await;
    let config = EmulatorConfig {
        library: Library::seeded_with(2500, 21, 2000..4000),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config.clone()).await.expect("emulator starts");

    let (stdout, stderr) = run(&emulator, &config, &["backup", "--no-private"]).await;
    let summary: Value = serde_json::from_str(&stdout).expect("the answer is JSON");
    assert_eq!(summary["status"], "COMPLETE", "{stdout}");
    let progress: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix("progress: ")).collect();
    assert!(progress.iter().any(|l| l.starts_with("listed ")), "{stderr}");
    let stored = summary["storedFiles"].as_u64().unwrap();
    let batches = progress
        .iter()
        .find_map(|l| l.strip_prefix("planned ")?.split(' ').next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no plan line: {stderr}"));
    assert!(batches >= 3, "2,500 public files need at least 3 archives: {batches}");
    let last = format!("batch {batches}/{batches} done, {stored} of {stored} files, ");
    assert!(
        progress.iter().any(|l| l.starts_with(&last)),
        "the last batch line says every stored file ({last}…):\n{stderr}"
    );
    assert!(
        stderr.lines().all(|l| !l.contains('\u{1b}')),
        "no terminal escapes on a pipe"
    );

    let (stdout, stderr) = run(&emulator, &config, &["verify", "--json"]).await;
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let answer: Value = serde_json::from_str(stdout.trim()).expect("the answer is JSON");
    assert_eq!(answer["ok"], true, "{stdout}");
    assert_eq!(answer["checkedFiles"].as_u64(), Some(stored));
    assert!(!stderr.contains("progress: "), "--json shows no progress:\n{stderr}");
}
