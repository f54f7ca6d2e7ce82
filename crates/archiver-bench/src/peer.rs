//! The peer of the pacing benchmarks: `benches/peer/careful.mjs`, a careful hand-written Node
//! client (p-limit 4, exponential backoff with full jitter, `Retry-After` honoured), run as a
//! user would run it against the same emulator with the same request body.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `benches/peer/careful.mjs` of this checkout.
pub fn default_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/peer/careful.mjs")
}

/// Checks that `node` runs and the script's dependencies are installed.
pub fn check(script: &Path) -> Result<String, String> {
    if !script.is_file() {
        return Err(format!("the peer script {} does not exist", script.display()));
    }
    let dir = script.parent().unwrap_or(Path::new("."));
    if !dir.join("node_modules/p-limit/package.json").is_file() {
        return Err(format!(
            "the peer's dependencies are not installed: run `npm ci` in {}",
            dir.display()
        ));
    }
    let out = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run node (Node >= 18 is needed for the peer): {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One run of the peer.
pub struct PeerRun {
    /// Exec → exit.
    pub elapsed: Duration,
    /// When it was started.
    pub started: Instant,
    /// Its one JSON line: files, archives, failed, calls, retries, rateLimited.
    pub report: Value,
}

/// Runs `node <script> <base> <body_file>` with the emulator's credentials and waits for it
/// (on a blocking thread, so the emulator keeps serving).
pub async fn run(script: &Path, base: &str, body_file: &Path) -> Result<PeerRun, String> {
    let script = script.to_path_buf();
    let base = base.to_owned();
    let body_file = body_file.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg(&base)
            .arg(&body_file)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned()),
            )
            .env("WIX_API_KEY", "emulator-api-key")
            .env("WIX_SITE_ID", "emulator-site-id")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let out = cmd.output().map_err(|e| format!("cannot run the peer: {e}"))?;
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "the peer failed ({}): {}{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let report = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .ok_or_else(|| format!("the peer printed no JSON line: {stdout}"))?;
        Ok(PeerRun {
            elapsed,
            started,
            report,
        })
    })
    .await
    .map_err(|e| format!("the peer's thread: {e}"))?
}
