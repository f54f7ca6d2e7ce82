//! Stored backups, incremental backups and restores: the real binary against the Wix
//! emulator and moto's S3 (`MOTO_URL`; `scripts/bench` starts one).
//!
//! - `store-archive`: one archive of 100 MiB and one of 5 GiB streamed into S3 by a stored
//!   backup: peak memory, and the copy side by side with `curl -s <link> | aws s3 cp - s3://…`
//!   (the AWS CLI's own streaming upload) on the same emulator and the same moto, against
//!   the two bounds of the pair: the emulator's download alone (`curl -o /dev/null`) and
//!   moto's ingest alone (a multipart upload from memory).
//! - `store-backup`: a stored backup of 50,000 files; ideal = the best schedule of its Wix
//!   calls, or the listing then every byte at the pair's measured bound, whichever is longer.
//! - `incremental`: a full stored backup of 50,000 files, then 1 % of them changed and an
//!   incremental one, side by side in one run: time, Wix calls and bytes downloaded.
//! - `restore`: 1,000 files backed up, deleted from Wix, restored with `onlyMissing`;
//!   against the bound of the import pace.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use wix_emulator::{Emulator, EmulatorConfig, Library, RateLimit};

use crate::{count_calls, ideal, invoke, mb, row, workloads, Options, Row};

const BUCKET: &str = "wix-media-archiver-bench";
const SITE: &str = "emulator-site-id";
const PREFIX: &str = "wix-media-archiver/";
/// Size of every file of the backup, incremental and restore libraries: 20 kB, so bytes
/// count beside the calls without filling moto's disk.
const LIBRARY_FILE_BYTES: u64 = 20_000;

/// Points this process's SDK (and the functions it starts) at moto, empties moto and
/// creates the bucket; the AWS part of the function's environment.
async fn fresh_bucket() -> Result<(Vec<(String, String)>, aws_sdk_s3::Client), String> {
    let aws = crate::jobs::moto_env()?;
    let url = aws
        .iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    for (k, v) in &aws {
        std::env::set_var(k, v);
    }
    reqwest::Client::new()
        .post(format!("{url}/moto-api/reset"))
        .send()
        .await
        .map_err(|e| format!("moto reset: {e}"))?;
    let sdk = wix_media_archiver::aws::sdk_config().await;
    let s3 = wix_media_archiver::storage::s3_client(&sdk);
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .map_err(|e| format!("create bucket: {e}"))?;
    let mut env = aws;
    env.push(("STORAGE_BUCKET".to_owned(), BUCKET.to_owned()));
    env.push(("BACKUP_RETENTION_DAYS".to_owned(), "0".to_owned()));
    Ok((env, s3))
}

/// The function's environment for a stored backup against `emulator`: the template's backup
/// memory (512 MB), `budget` calls a minute, 4 in flight.
fn function_env(emulator: &Emulator, budget: u32, aws: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = workloads::function_env(&emulator.base_url(), budget, 4);
    env.retain(|(k, _)| k != "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" && k != "AWS_REGION");
    env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(), "512".to_owned()));
    env.extend(aws.iter().cloned());
    env
}

/// Invokes the function with `event` and returns its summary answer, the time and the
/// peak memory; an error unless the answer is a `COMPLETE` backup (or, for a restore, any
/// answer).
async fn run(options: &Options, env: &[(String, String)], event: Value) -> Result<(Value, Duration, u64), String> {
    let (answer, elapsed, hwm, _) = run_logged(options, env, event).await?;
    Ok((answer, elapsed, hwm))
}

/// [`run`], and the function's "archive copied into S3" debug lines: the time each archive's
/// copy took (download into the multipart upload, completed), in order.
async fn run_logged(
    options: &Options,
    env: &[(String, String)],
    event: Value,
) -> Result<(Value, Duration, u64, Vec<Duration>), String> {
    let mut env = env.to_vec();
    env.push(("RUST_LOG".to_owned(), "debug".to_owned()));
    let env = &env[..];
    let inv = invoke(
        &options.bin,
        env,
        Bytes::from(event.to_string()),
        Instant::now(),
        options.verbose,
    )
    .await?;
    let body = inv.outcome.response()?;
    let answer: Value = serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let copies = inv
        .log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "archive copied into S3")
        .filter_map(|v| v["copy_ms"].as_u64())
        .map(Duration::from_millis)
        .collect();
    Ok((answer, inv.elapsed, inv.peak_memory.unwrap_or(0), copies))
}

fn complete(answer: &Value, files: usize) -> Result<(), String> {
    if answer["status"] != "COMPLETE" || answer["listedFiles"].as_u64() != Some(files as u64) {
        return Err(format!(
            "the backup is not complete: status {}, listed {}, stored {}, failed {}: {}",
            answer["status"], answer["listedFiles"], answer["storedFiles"], answer["failedFiles"], answer["failures"]
        ));
    }
    Ok(())
}

fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1_048_576.0 / d.as_secs_f64().max(1e-9)
}

/// An archive link for every file of `library`, straight from the emulator.
async fn archive_link(emulator: &Emulator, library: &Library) -> Result<String, String> {
    let ids: Vec<&str> = library.files.iter().map(|f| f.id.as_str()).collect();
    let answer: Value = reqwest::Client::new()
        .post(format!(
            "{}/site-media/v1/files/generate-download-url",
            emulator.base_url()
        ))
        .header("authorization", "emulator-api-key")
        .header("wix-site-id", SITE)
        .json(&json!({ "fileIds": ids }))
        .send()
        .await
        .map_err(|e| format!("archive link: {e}"))?
        .json()
        .await
        .map_err(|e| format!("archive link: {e}"))?;
    answer["downloadUrl"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no downloadUrl in {answer}"))
}

/// Runs a shell pipeline with `LINK` (and the moto variables) in its environment, so no link
/// is ever printed; its wall time.
fn timed_shell(script: &str, link: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let status = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .env("LINK", link)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("bash: {e}"))?;
    if !status.success() {
        return Err(format!("`{script}` failed: {status}"));
    }
    Ok(started.elapsed())
}

/// moto's ingest alone: `bytes` as a multipart upload of 8 MiB parts from memory, 4 in flight,
/// with the checksums the function's uploads carry (each part's CRC-32, the whole object's
/// full CRC-32 at completion), so the bound includes the work S3 does for them.
async fn moto_ingest(s3: &aws_sdk_s3::Client, bytes: u64) -> Result<Duration, String> {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart};
    use base64::Engine as _;
    const PART: u64 = 8 << 20;
    let key = "bench/ingest.bin";
    let body = Bytes::from(vec![0x5a; PART as usize]);
    let parts = bytes.div_ceil(PART);
    let b64 = |crc: u32| base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes());
    let mut whole = crc32fast::Hasher::new();
    let mut part_crcs = Vec::new();
    for n in 1..=parts {
        let len = PART.min(bytes - (n - 1) * PART) as usize;
        let mut h = crc32fast::Hasher::new();
        h.update(&body[..len]);
        whole.combine(&h);
        part_crcs.push(b64(h.finalize()));
    }
    let whole = b64(whole.finalize());
    let started = Instant::now();
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .map_err(|e| format!("create upload: {e}"))?;
    let upload_id = upload.upload_id().unwrap_or_default().to_owned();
    let mut done = Vec::new();
    let mut in_flight = tokio::task::JoinSet::new();
    for n in 1..=parts {
        let len = PART.min(bytes - (n - 1) * PART) as usize;
        let (s3, upload_id, body) = (s3.clone(), upload_id.clone(), body.slice(..len));
        let crc = part_crcs[(n - 1) as usize].clone();
        in_flight.spawn(async move {
            let out = s3
                .upload_part()
                .bucket(BUCKET)
                .key(key)
                .upload_id(upload_id)
                .part_number(n as i32)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .checksum_crc32(&crc)
                .body(body.into())
                .send()
                .await
                .map_err(|e| format!("part {n}: {e}"))?;
            Ok::<_, String>(
                CompletedPart::builder()
                    .part_number(n as i32)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .checksum_crc32(crc)
                    .build(),
            )
        });
        while in_flight.len() >= 4 {
            if let Some(r) = in_flight.join_next().await {
                done.push(r.map_err(|e| e.to_string())??);
            }
        }
    }
    while let Some(r) = in_flight.join_next().await {
        done.push(r.map_err(|e| e.to_string())??);
    }
    done.sort_by_key(|p| p.part_number());
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .checksum_type(ChecksumType::FullObject)
        .checksum_crc32(whole)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .map_err(|e| format!("complete: {e}"))?;
    let elapsed = started.elapsed();
    let _ = s3.delete_object().bucket(BUCKET).key(key).send().await;
    Ok(elapsed)
}

async fn object_size(s3: &aws_sdk_s3::Client, key: &str) -> Result<u64, String> {
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("head {key}: {e}"))?;
    Ok(head.content_length().unwrap_or(0).max(0) as u64)
}

async fn delete(s3: &aws_sdk_s3::Client, key: &str) {
    let _ = s3.delete_object().bucket(BUCKET).key(key).send().await;
}

/// A library of `files` READY public files of `bytes` bytes each, in `folders` folders.
fn library(files: usize, folders: usize, bytes: u64) -> Library {
    workloads::backup_library(files, folders, 7, Some(bytes))
}

// ---- store-archive ----------------------------------------------------------------

/// `store-archive`: peak memory and throughput of one archive streamed into S3.
pub async fn archive(options: &Options) -> Result<Vec<Row>, String> {
    println!(
        "\n== store-archive: a stored backup of one archive (100 MiB, then 5 GiB: stored zip entries, \
         Content-Length sent) into moto's S3; side by side `curl -s <link> | aws s3 cp - s3://…`; \
         the pair's bounds: the download alone and moto's ingest alone"
    );
    let mut rows = Vec::new();
    let mut peaks = Vec::new();
    for (label, files, bytes) in [("100 MiB", 100usize, 1u64 << 20), ("5 GiB", 640, 8 << 20)] {
        let mut function_s = Vec::new();
        let mut peer_s = Vec::new();
        let mut download_s = Vec::new();
        let mut ingest_s = Vec::new();
        let mut peak = 0u64;
        let lib = library(files, 1, bytes);
        for run in 1..=options.runs.min(3) {
            let (aws, s3) = fresh_bucket().await?;
            let emulator = Emulator::start(EmulatorConfig {
                library: lib.clone(),
                ..EmulatorConfig::default()
            })
            .await
            .map_err(|e| format!("emulator: {e}"))?;
            let env = function_env(&emulator, 1200, &aws);
            let (answer, whole, hwm, copies) =
                run_logged(options, &env, json!({"backup": {"includePrivate": false}})).await?;
            complete(&answer, files)?;
            let [elapsed] = copies[..] else {
                return Err(format!("expected one archive copied, the log shows {}", copies.len()));
            };
            let key = format!(
                "{PREFIX}{SITE}/backups/{}/archives/00001.zip",
                answer["backupId"].as_str().unwrap_or("")
            );
            let size = object_size(&s3, &key).await?;
            delete(&s3, &key).await;
            let link = archive_link(&emulator, &lib).await?;
            let download = timed_shell(r#"curl -sS --fail -o /dev/null "$LINK""#, &link)?;
            let link = archive_link(&emulator, &lib).await?;
            let peer = timed_shell(
                r#"curl -sS --fail "$LINK" | aws s3 cp - "s3://wix-media-archiver-bench/peer/archive.zip" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors"#,
                &link,
            )?;
            let peer_size = object_size(&s3, "peer/archive.zip").await?;
            if peer_size != size {
                return Err(format!("the peer stored {peer_size} bytes, the function {size}"));
            }
            delete(&s3, "peer/archive.zip").await;
            let ingest = moto_ingest(&s3, size).await?;
            println!(
                "   {label} run {run}: archive {size} bytes; the function's copy {:.2} s ({:.0} MiB/s; the whole \
                 backup {:.2} s, peak {}), curl | aws s3 cp {:.2} s ({:.0} MiB/s); download alone {:.2} s \
                 ({:.0} MiB/s), moto ingest alone {:.2} s ({:.0} MiB/s)",
                elapsed.as_secs_f64(),
                rate(size, elapsed),
                whole.as_secs_f64(),
                mb(hwm as f64),
                peer.as_secs_f64(),
                rate(size, peer),
                download.as_secs_f64(),
                rate(size, download),
                ingest.as_secs_f64(),
                rate(size, ingest),
            );
            function_s.push(elapsed.as_secs_f64());
            peer_s.push(peer.as_secs_f64());
            download_s.push(download.as_secs_f64());
            ingest_s.push(ingest.as_secs_f64());
            peak = peak.max(hwm);
            emulator.shutdown();
        }
        let (f, p) = (crate::median(&function_s), crate::median(&peer_s));
        let bound = crate::median(&download_s).max(crate::median(&ingest_s));
        let binds = if crate::median(&download_s) >= crate::median(&ingest_s) {
            "the download"
        } else {
            "moto's ingest"
        };
        println!(
            "   {label}: function {f:.2} s, peer {p:.2} s: peer / function {:.3} (target >= 1.0); \
             bound {bound:.2} s ({binds} binds): bound / function {:.3} (target >= 0.9); peak {}",
            p / f,
            bound / f,
            mb(peak as f64)
        );
        rows.push(row(
            format!("store-archive {label}: peak memory"),
            mb(peak as f64),
            "<= 64 MiB",
            peak <= 64 << 20,
        ));
        rows.push(row(
            format!("store-archive {label}: peer / function"),
            format!("{:.3}", p / f),
            ">= 1.0",
            p / f >= 1.0,
        ));
        rows.push(row(
            format!("store-archive {label}: bound / function"),
            format!("{:.3}", bound / f),
            ">= 0.9",
            bound / f >= 0.9,
        ));
        peaks.push(peak as f64);
    }
    if let [small, big] = peaks[..] {
        let spread = (big - small).abs() / small.max(1.0);
        println!(
            "   peak memory, 5 GiB against 100 MiB: {:+.1} %",
            (big - small) / small.max(1.0) * 100.0
        );
        rows.push(row(
            "store-archive: peaks within 10 %",
            format!("{:.1} %", spread * 100.0),
            "<= 10 %",
            spread <= 0.10,
        ));
    }
    Ok(rows)
}

async fn run_backup(
    options: &Options,
    env: &[(String, String)],
    files: usize,
) -> Result<(Value, Duration, u64), String> {
    let (answer, elapsed, hwm) = run(options, env, json!({"backup": {"includePrivate": false}})).await?;
    complete(&answer, files)?;
    Ok((answer, elapsed, hwm))
}

// ---- store-backup -----------------------------------------------------------------

/// The pair's bound in MiB/s, measured on `bytes` of one archive of `lib`: the slower of
/// the emulator's download alone and moto's ingest alone.
async fn pair_rate(emulator: &Emulator, lib: &Library, s3: &aws_sdk_s3::Client) -> Result<f64, String> {
    let link = archive_link(emulator, lib).await?;
    let download = timed_shell(r#"curl -sS --fail -o /dev/null "$LINK""#, &link)?;
    let bytes: u64 = lib.files.iter().map(|f| f.size_in_bytes).sum();
    let ingest = moto_ingest(s3, bytes).await?;
    Ok(rate(bytes, download).min(rate(bytes, ingest)))
}

/// `store-backup`: a stored backup of 50,000 files of 20 kB.
pub async fn backup(options: &Options) -> Result<Vec<Row>, String> {
    let files = options.files.unwrap_or(50_000);
    let lib = library(files, 200, LIBRARY_FILE_BYTES);
    let (search, folder_calls, archives) = workloads::backup_minimum(&lib, 100);
    let latency = Duration::from_millis(50);
    let limit = RateLimit::window(1200);
    let best = ideal::best_schedule(
        ideal::Work {
            chain: search,
            free: folder_calls,
            after: archives,
        },
        crate::limit_of(&limit),
        latency,
        4,
    )
    .seconds();
    let listing = search as f64 * latency.as_secs_f64();
    let total_bytes: u64 = lib.files.iter().map(|f| f.size_in_bytes).sum();
    println!(
        "\n== store-backup: a stored backup of {files} files of {LIBRARY_FILE_BYTES} bytes ({}) in {} folders; \
         latency 50 ms, window 1200/min; least calls {search} + {folder_calls} + {archives}",
        mb(total_bytes as f64),
        lib.folders.len()
    );
    let mut ratios = Vec::new();
    let mut peak = 0;
    for run_no in 1..=options.runs.min(3) {
        let (aws, s3) = fresh_bucket().await?;
        let emulator = Emulator::start(EmulatorConfig {
            library: lib.clone(),
            latency,
            rate_limit: Some(limit),
            ..EmulatorConfig::default()
        })
        .await
        .map_err(|e| format!("emulator: {e}"))?;
        // The pair's rate on one archive's worth, before the backup (no latency on downloads).
        let one: Library = Library {
            files: lib.files[..1000.min(files)].to_vec(),
            ..lib.clone()
        };
        let mib_s = pair_rate(&emulator, &one, &s3).await?;
        emulator.clear_calls();
        let env = function_env(&emulator, 1200, &aws);
        let (answer, elapsed, hwm) = run_backup(options, &env, files).await?;
        let calls = count_calls(&emulator.api_calls());
        let stored = answer["storedBytes"].as_u64().unwrap_or(0);
        let copy = stored as f64 / 1_048_576.0 / mib_s;
        let ideal = best.max(listing + copy);
        let ratio = ideal / elapsed.as_secs_f64();
        println!(
            "   run {run_no}: {:.2} s; {} Wix calls ({} x 429); stored {} at a pair bound of {mib_s:.0} MiB/s = {copy:.2} s; \
             ideal max({best:.2} s calls, {listing:.2} s listing + {copy:.2} s bytes) = {ideal:.2} s; ratio {ratio:.3}; peak {}",
            elapsed.as_secs_f64(),
            calls.total,
            calls.rate_limited,
            mb(stored as f64),
            mb(hwm as f64)
        );
        ratios.push(ratio);
        peak = peak.max(hwm);
        emulator.shutdown();
    }
    let r = crate::median(&ratios);
    Ok(vec![
        row(
            "store-backup 50k: ideal / measured",
            format!("{r:.3}"),
            ">= 0.90",
            r >= 0.9,
        ),
        row(
            "store-backup 50k: peak memory",
            mb(peak as f64),
            "<= 512 MB",
            peak <= 512 << 20,
        ),
    ])
}

// ---- incremental ------------------------------------------------------------------

/// `incremental`: full, then 1 % changed and incremental, in one run.
pub async fn incremental(options: &Options) -> Result<Vec<Row>, String> {
    let files = options.files.unwrap_or(50_000);
    let file_bytes = options
        .file_bytes
        .filter(|b| *b != workloads::FILE_BYTES)
        .unwrap_or(LIBRARY_FILE_BYTES);
    let lib = library(files, 200, file_bytes);
    let changed = files / 100;
    let (search, folder_calls, _) = workloads::backup_minimum(&lib, 100);
    let least = search + folder_calls + changed.div_ceil(1000);
    println!(
        "\n== incremental: a full stored backup of {files} files of {file_bytes} bytes, then {changed} files changed \
         (new content, new hash) and the nightly incremental backup; latency 50 ms, window 1200/min; \
         least calls of the incremental {search} + {folder_calls} + {} = {least}",
        changed.div_ceil(1000)
    );
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for run_no in 1..=options.runs.min(3) {
        let (aws, _s3) = fresh_bucket().await?;
        let emulator = Emulator::start(EmulatorConfig {
            library: lib.clone(),
            latency: Duration::from_millis(50),
            rate_limit: Some(RateLimit::window(1200)),
            ..EmulatorConfig::default()
        })
        .await
        .map_err(|e| format!("emulator: {e}"))?;
        let env = function_env(&emulator, 1200, &aws);
        let (full, full_t, _) = run_backup(options, &env, files).await?;
        let full_calls = count_calls(&emulator.api_calls());
        let full_dl = emulator.take_download_stats();
        emulator.clear_calls();
        // Changed files spread over the library, one in a hundred.
        let mut changed_bytes = 0;
        for f in lib.files.iter().step_by(100).take(changed) {
            if !emulator.change_file_content(&f.id) {
                return Err(format!("cannot change {}", f.id));
            }
            changed_bytes += emulator.file(&f.id).map_or(0, |r| r.size_in_bytes);
        }
        let (inc, inc_t, _) = run_backup(options, &env, files).await?;
        let inc_calls = count_calls(&emulator.api_calls());
        let inc_dl = emulator.take_download_stats();
        if inc["full"] != false || inc["changedFiles"].as_u64() != Some(changed as u64) {
            return Err(format!(
                "the second backup is not the expected incremental: full {}, changed {}, unchanged {}",
                inc["full"], inc["changedFiles"], inc["unchangedFiles"]
            ));
        }
        let ratio = inc_t.as_secs_f64() / full_t.as_secs_f64();
        let listing_floor = search as f64 * 0.05;
        println!(
            "   run {run_no}: full {:.2} s, {} calls, {} downloaded ({} stored); incremental {:.2} s, {} calls {:?} \
             (least {least}), {} downloaded for {} changed ({} unchanged); incremental / full {ratio:.3}; \
             beyond the listing chain ({listing_floor:.1} s, which every backup makes): {:.3}",
            full_t.as_secs_f64(),
            full_calls.total,
            mb(full_dl.bytes_sent() as f64),
            full["storedFiles"],
            inc_t.as_secs_f64(),
            inc_calls.total,
            inc_calls.by_endpoint,
            mb(inc_dl.bytes_sent() as f64),
            mb(changed_bytes as f64),
            inc["unchangedFiles"],
            (inc_t.as_secs_f64() - listing_floor).max(0.0) / (full_t.as_secs_f64() - listing_floor).max(1e-9),
        );
        if run_no == 1 {
            rows.push(row(
                "incremental: Wix calls",
                inc_calls.total.to_string(),
                format!("= {least}"),
                inc_calls.total == least,
            ));
            let overhead = inc_dl.bytes_sent() as f64 / changed_bytes.max(1) as f64;
            rows.push(row(
                "incremental: bytes downloaded / changed bytes",
                format!("{overhead:.3}"),
                "~1 (zip headers)",
                (1.0..1.05).contains(&overhead),
            ));
        }
        ratios.push(ratio);
        emulator.shutdown();
    }
    let r = crate::median(&ratios);
    rows.push(row("incremental / full time", format!("{r:.3}"), "<= 0.10", r <= 0.10));
    Ok(rows)
}

// ---- restore ----------------------------------------------------------------------

/// `restore`: 1,000 files backed up, deleted from Wix, restored.
pub async fn restore(options: &Options) -> Result<Vec<Row>, String> {
    let files = options.files.unwrap_or(1000);
    let budget = options.budget;
    let lib = library(files, 20, LIBRARY_FILE_BYTES);
    println!(
        "\n== restore: {files} files of {LIBRARY_FILE_BYTES} bytes in {} folders backed up into moto, deleted from \
         the emulator, restored with onlyMissing; latency 50 ms, window {budget}/min, the emulator's import \
         200 ms to READY",
        lib.folders.len()
    );
    let mut ratios = Vec::new();
    for run_no in 1..=options.runs.min(3) {
        let (aws, _s3) = fresh_bucket().await?;
        let emulator = Emulator::start(EmulatorConfig {
            library: lib.clone(),
            latency: Duration::from_millis(50),
            rate_limit: Some(RateLimit::window(budget)),
            ..EmulatorConfig::default()
        })
        .await
        .map_err(|e| format!("emulator: {e}"))?;
        let env = function_env(&emulator, budget, &aws);
        run_backup(options, &env, files).await?;
        // The restore comes on another night: the backup's calls slide out of the site's
        // window first, so the restore starts with the whole budget, as the bound assumes.
        tokio::time::sleep(Duration::from_secs(61)).await;
        for f in &lib.files {
            emulator.delete_file(&f.id);
        }
        emulator.clear_calls();
        let (answer, elapsed, hwm) = run(
            options,
            &env,
            json!({"restore": {"backupId": "latest", "onlyMissing": true}}),
        )
        .await?;
        let restored = answer["restored"].as_array().cloned().unwrap_or_default();
        // Wix's Import File takes no file of media type OTHER (a CSV, say): those are refused
        // with WIX_REJECTED, as the README says; every other file comes back.
        let others = lib
            .files
            .iter()
            .filter(|f| f.media_type.eq_ignore_ascii_case("other"))
            .count();
        let failed = answer["failed"].as_array().cloned().unwrap_or_default();
        let refused_others = failed
            .iter()
            .filter(|f| {
                f["error"]["code"] == "WIX_REJECTED"
                    && f["error"]["message"].as_str().is_some_and(|m| m.contains("OTHER"))
            })
            .count();
        if restored.len() != files - others || refused_others != others || failed.len() != others {
            return Err(format!(
                "restored {} of {files} ({others} of type OTHER, which Wix does not import); failed {}",
                restored.len(),
                answer["failed"]
            ));
        }
        let imported = restored.len();
        // Byte-identical: every tenth restored file against the original's bytes.
        for r in restored.iter().step_by(10) {
            let (old, new) = (
                r["fileId"].as_str().unwrap_or(""),
                r["newFileId"].as_str().unwrap_or(""),
            );
            let original = lib
                .files
                .iter()
                .find(|f| f.id == old)
                .ok_or("an unknown restored file")?;
            let want = wix_emulator::generated_content(&original.id, 0, original.size_in_bytes);
            if emulator.file_bytes(new).as_deref() != Some(&want[..]) {
                return Err(format!("restored {old} as {new} with other bytes"));
            }
        }
        let calls = count_calls(&emulator.api_calls());
        let imports = calls.by_endpoint.get("files/import").copied().unwrap_or(0);
        // The import pace's bound: every Wix call the restore made, at its best schedule under
        // the site's window (4 in flight, 50 ms each), plus one import's wait until READY.
        let schedule = |n: usize| {
            ideal::best_schedule(
                ideal::Work {
                    chain: 0,
                    free: n,
                    after: 0,
                },
                crate::limit_of(&RateLimit::window(budget)),
                Duration::from_millis(50),
                4,
            )
            .seconds()
        };
        let bound = schedule(calls.total) + 0.2;
        let import_bound = schedule(imports) + 0.2;
        let ratio = bound / elapsed.as_secs_f64();
        println!(
            "   run {run_no}: {imported} restored ({} of type OTHER refused by Wix), {:.2} s = {:.1} files/s; {} Wix calls {:?} \
             ({} x 429); bound: its {} calls at their best schedule under {budget}/min + 0.2 s to READY = {bound:.2} s \
             (the {imports} imports alone {import_bound:.2} s); ratio {ratio:.3}; peak {}",
            files - imported,
            elapsed.as_secs_f64(),
            imported as f64 / elapsed.as_secs_f64(),
            calls.total,
            calls.by_endpoint,
            calls.rate_limited,
            calls.total,
            mb(hwm as f64)
        );
        ratios.push(ratio);
        emulator.shutdown();
    }
    let r = crate::median(&ratios);
    Ok(vec![row(
        "restore: bound (the calls' best schedule) / measured",
        format!("{r:.3}"),
        ">= 0.90",
        r >= 0.9,
    )])
}
