//! Fault soak: random requests and backups under random Wix fault schedules, end to end
//! through the handler and the emulator. The no-loss invariant holds in every run, nothing
//! panics, and every failure carries a contract code. `SOAK_RUNS` sets the number of runs
//! (default 40, CI-sized), `SOAK_SEED` replays one run.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::moto;
use common::*;
use serde_json::{json, Value};
use wix_emulator::{
    DownloadFault, Emulator, EmulatorConfig, Fault, Library, PrivateInArchive, RandomFaults, UnknownIds,
};
use wix_media_archiver::app::App;
use wix_media_archiver::backup::manifest::{self, LineStatus};
use wix_media_archiver::config::{Config, SecretLocation};
use wix_media_archiver::credentials::StaticCredentials;
use wix_media_archiver::local;
use wix_media_archiver::wix::ClientSettings;

const CODES: [&str; 8] = [
    "WIX_REJECTED",
    "WIX_RATE_LIMITED",
    "WIX_UNAVAILABLE",
    "WIX_INVALID_RESPONSE",
    "DEADLINE",
    "ARCHIVE_INCOMPLETE",
    "ARCHIVE_UNREADABLE",
    "STORAGE_FAILED",
];

#[derive(Default)]
struct Totals {
    runs: usize,
    http: usize,
    backups: usize,
    calls: usize,
    faults: usize,
    failed_files: usize,
    /// Archives downloaded and opened in silent-omission runs.
    zips_opened: usize,
    /// Files found missing from those zips (what a link-only answer cannot see).
    omitted_seen: usize,
    /// Stored backups (into moto), and their lines checked against S3.
    stored: usize,
    stored_lines_checked: usize,
}

/// How the run's Wix treats what it cannot archive.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Omission {
    /// Refuses the call (in its documented shapes).
    Refuses,
    /// Leaves unknown IDs out of the zip silently.
    Unknown,
    /// Leaves private files out silently.
    Private,
    /// Leaves 3D models out silently, as the old Velo call did.
    Model3d,
}

fn queued_fault(rng: &mut fastrand::Rng) -> Fault {
    match rng.u8(0..12) {
        0 => Fault::Status(500),
        1 => Fault::Status(503),
        2 => Fault::StatusEmptyBody(504),
        3 => Fault::Status(400),
        4 => Fault::TooManyRequests { retry_after: None },
        5 => Fault::TooManyRequests {
            retry_after: Some(if rng.u8(0..10) == 0 { 1 } else { 0 }),
        },
        6 => Fault::Drop,
        7 => Fault::Hang(Duration::from_millis(1500)),
        8 => Fault::Delay(Duration::from_millis(rng.u64(0..80))),
        9 => Fault::Body {
            status: 200,
            content_type: "application/json".into(),
            body: r#"{"unexpected": true}"#.into(),
        },
        10 => Fault::Body {
            status: 200,
            content_type: "text/html".into(),
            body: "<html>maintenance</html>".into(),
        },
        _ => Fault::Body {
            status: 502,
            content_type: "text/html".into(),
            body: "<html>bad gateway</html>".into(),
        },
    }
}

async fn run(seed: u64, library: &Library, totals: &mut Totals) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let scale = rng.f64();
    let omission = [
        Omission::Refuses,
        Omission::Unknown,
        Omission::Private,
        Omission::Model3d,
    ][rng.usize(0..4)];
    let config = EmulatorConfig {
        library: library.clone(),
        unknown_ids: match omission {
            Omission::Unknown => UnknownIds::Ignore,
            _ => [
                UnknownIds::Validation,
                UnknownIds::ValidationUnnamed,
                UnknownIds::Reject,
            ][rng.usize(0..3)],
        },
        private_in_archive: match omission {
            Omission::Private => PrivateInArchive::Omit,
            _ => PrivateInArchive::Include,
        },
        omit_media_types: match omission {
            Omission::Model3d => vec!["MODEL3D".to_owned()],
            _ => Vec::new(),
        },
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config.clone()).await.unwrap();
    emulator.set_random_faults(Some(RandomFaults {
        seed,
        p_429: 0.10 * scale,
        p_5xx: 0.15 * scale,
        p_drop: 0.05 * scale,
        p_hang: 0.01 * scale,
        hang: Duration::from_millis(1500),
        p_malformed: 0.04 * scale,
    }));
    let queued: Vec<Fault> = (0..rng.usize(0..6)).map(|_| queued_fault(&mut rng)).collect();
    emulator.push_faults("", queued);
    if rng.u8(0..4) == 0 {
        emulator.set_latency(Duration::from_millis(rng.u64(0..30)));
    }

    let kind = rng.u8(0..20);
    let stored_run = (12..15).contains(&kind);
    let mut vars = base_env(&emulator, &config);
    if stored_run {
        moto::reset().await;
        moto::create_bucket("soak").await;
        vars.insert("STORAGE_BUCKET".into(), "soak".into());
        let download_faults: Vec<DownloadFault> = (0..rng.usize(0..4))
            .map(|_| match rng.u8(0..4) {
                0 => DownloadFault::CutAfter(rng.u64(0..20_000)),
                1 => DownloadFault::NotZip,
                2 => DownloadFault::Status(503),
                _ => DownloadFault::Expired,
            })
            .collect();
        emulator.push_download_faults("", download_faults);
    }
    vars.insert("WIX_TIMEOUT_SECONDS".into(), "1".into());
    vars.insert("WIX_MAX_RETRIES".into(), rng.u32(0..4).to_string());
    vars.insert("WIX_MAX_CONCURRENCY".into(), rng.usize(1..7).to_string());
    vars.insert("BACKUP_INCLUDE_PRIVATE".into(), rng.bool().to_string());
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let SecretLocation::Environment(creds) = config.credentials.clone() else {
        unreachable!()
    };
    let mut config = config;
    if let Some(storage) = config.storage.as_mut() {
        storage.part_size = 64 * 1024;
    }
    let mut settings = ClientSettings::from_config(&config);
    settings.backoff_base = Duration::from_millis(5);
    settings.backoff_cap = Duration::from_millis(50);
    let mut app =
        App::with_client_settings(config, Arc::new(StaticCredentials(Arc::new(*creds))), None, settings).unwrap();
    if stored_run {
        app = app.with_s3(moto::s3().await);
    }
    let h = Harness { emulator, app };

    if stored_run {
        totals.stored += 1;
        let summary = local::invoke(&h.app, &json!({"backup": {}}), Some(Duration::from_secs(120)))
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: a stored backup under faults still reports: {e}"));
        check_stored(seed, &summary, &h, totals).await;
    } else if kind < 12 {
        totals.http += 1;
        let pool: Vec<&str> = library.files.iter().map(|f| f.id.as_str()).collect();
        let n = rng.usize(1..3500);
        let mut raw: Vec<String> = (0..n).map(|_| pool[rng.usize(0..pool.len())].to_owned()).collect();
        for i in 0..rng.usize(0..4) {
            raw.push(format!("ffffff_{seed:016x}{i:016x}"));
        }
        let resolve_private = rng.u8(0..10) < 3;
        let body = json!({"fileIds": raw, "resolvePrivate": resolve_private}).to_string();
        let (status, body) = call(&h, &signed(&body)).await.into_status_and(seed);
        let unique: Vec<String> = {
            let mut seen = HashSet::new();
            raw.iter().filter(|id| seen.insert(id.as_str())).cloned().collect()
        };
        assert_invariant(&body, &unique);
        let linked =
            !body["archives"].as_array().unwrap().is_empty() || !body["privateFiles"].as_array().unwrap().is_empty();
        let failed = !body["failed"].as_array().unwrap().is_empty();
        let expected = match (linked, failed) {
            (_, false) => 200,
            (true, true) => 207,
            (false, true) => 502,
        };
        assert_eq!(status, expected, "seed {seed}: status follows the outcome");
        check_failures(seed, &body, totals);
        if omission != Omission::Refuses {
            open_zips(seed, &body, library, omission, totals).await;
        }
    } else {
        totals.backups += 1;
        let body = local::invoke(
            &h.app,
            &json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
            Some(Duration::from_secs(120)),
        )
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: a backup under faults still reports: {e}"));
        let mut all: Vec<String> = Vec::new();
        for key in ["archives", "failed"] {
            for item in body[key].as_array().unwrap() {
                all.extend(
                    item["fileIds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_owned()),
                );
            }
        }
        for (key, field) in [("privateFiles", "fileId"), ("skipped", "fileId")] {
            all.extend(
                body[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v[field].as_str().unwrap().to_owned()),
            );
        }
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "seed {seed}: no file twice");
        assert_eq!(
            all.len() as u64,
            body["listedFiles"].as_u64().unwrap(),
            "seed {seed}: every listed file accounted for"
        );
        if body["incomplete"] == true {
            assert!(
                CODES.contains(&body["error"]["code"].as_str().unwrap()),
                "seed {seed}: {}",
                body["error"]
            );
        }
        check_failures(seed, &body, totals);
    }
    let calls = h.emulator.api_calls();
    totals.calls += calls.len();
    totals.faults += calls.iter().filter(|c| c.fault.is_some()).count();
    totals.runs += 1;
}

/// A stored backup's manifest: every listed file on exactly one line, and every `STORED`
/// line's bytes in S3 as Wix holds them.
async fn check_stored(seed: u64, summary: &Value, h: &Harness, totals: &mut Totals) {
    let key = summary["manifest"]
        .as_str()
        .unwrap()
        .trim_start_matches("s3://soak/")
        .to_owned();
    let lines = manifest::decode(&moto::get("soak", &key).await).expect("a readable manifest");
    let ids: HashSet<&str> = lines.iter().map(|l| l.file_id.as_str()).collect();
    assert_eq!(ids.len(), lines.len(), "seed {seed}: no file twice in the manifest");
    assert_eq!(
        lines.len() as u64,
        summary["listedFiles"].as_u64().unwrap(),
        "seed {seed}: every listed file"
    );
    let mut zips: std::collections::HashMap<String, zip::ZipArchive<std::io::Cursor<Vec<u8>>>> = Default::default();
    for l in lines.iter().filter(|l| l.status == LineStatus::Stored) {
        let object = l.object.clone().unwrap();
        let expected = h.emulator.file_bytes(&l.file_id).unwrap();
        let got = match &l.entry {
            Some(entry) => {
                if !zips.contains_key(&object) {
                    let bytes = moto::get("soak", &object).await;
                    zips.insert(
                        object.clone(),
                        zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap(),
                    );
                }
                let mut e = zips.get_mut(&object).unwrap().by_name(entry).unwrap();
                let mut content = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut content).unwrap();
                content
            }
            None => moto::get("soak", &object).await,
        };
        assert_eq!(got, expected, "seed {seed}: {} is stored as Wix holds it", l.file_id);
        totals.stored_lines_checked += 1;
    }
    for l in lines.iter().filter(|l| l.status == LineStatus::Failed) {
        let code = l.error.as_ref().unwrap().code.as_str();
        assert!(CODES.contains(&code), "seed {seed}: {code}");
    }
    assert_eq!(moto::open_uploads("soak").await, 0, "seed {seed}: no upload left open");
}

/// Downloads every archive of an answer and checks that each zip holds exactly its files
/// less the ones this run's Wix leaves out silently.
async fn open_zips(seed: u64, body: &Value, library: &Library, omission: Omission, totals: &mut Totals) {
    for a in body["archives"].as_array().unwrap() {
        let listed: Vec<&str> = a["fileIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let entries: HashSet<String> = zip_entries(a["downloadUrl"].as_str().unwrap())
            .await
            .into_iter()
            .collect();
        totals.zips_opened += 1;
        for id in &listed {
            let file = library.file(id);
            let omitted = match omission {
                Omission::Unknown => file.is_none(),
                Omission::Private => file.is_some_and(|f| f.private),
                Omission::Model3d => file.is_some_and(|f| f.media_type == "MODEL3D"),
                Omission::Refuses => false,
            };
            assert_eq!(
                entries.contains(*id),
                !omitted,
                "seed {seed}: {id} in the zip ({omission:?})"
            );
            totals.omitted_seen += usize::from(omitted);
        }
        assert!(
            entries.iter().all(|e| listed.contains(&e.as_str())),
            "seed {seed}: nothing else in the zip"
        );
    }
}

fn check_failures(seed: u64, body: &Value, totals: &mut Totals) {
    for f in body["failed"].as_array().unwrap() {
        let code = f["error"]["code"].as_str().unwrap();
        assert!(CODES.contains(&code), "seed {seed}: {code} is a contract code");
        assert!(!f["error"]["message"].as_str().unwrap().is_empty(), "seed {seed}");
        assert!(!f["fileIds"].as_array().unwrap().is_empty(), "seed {seed}");
        totals.failed_files += f["fileIds"].as_array().unwrap().len();
    }
}

trait StatusAnd {
    fn into_status_and(self, seed: u64) -> (u16, Value);
}

impl StatusAnd for (u16, Value) {
    fn into_status_and(self, seed: u64) -> (u16, Value) {
        assert!([200, 207, 502].contains(&self.0), "seed {seed}: status {}", self.0);
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_fault_schedules_never_lose_or_double_a_file() {
    let seeds: Vec<u64> = match std::env::var("SOAK_SEED") {
        Ok(seed) => vec![seed.parse().expect("SOAK_SEED is a number")],
        Err(_) => {
            let runs: u64 = std::env::var("SOAK_RUNS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(40);
            (1..=runs).collect()
        }
    };
    let library = Library::seeded(800, 77);
    let _moto = moto::setup().await;
    let mut totals = Totals::default();
    let started = std::time::Instant::now();
    for seed in &seeds {
        run(*seed, &library, &mut totals).await;
    }
    println!(
        "soak: {} runs ({} HTTP, {} backups, {} stored backups with {} stored files checked in S3), {} faults \
         injected over {} Wix calls, {} files reported failed, {} zips opened with {} silently omitted files found, {:?}",
        totals.runs,
        totals.http,
        totals.backups,
        totals.stored,
        totals.stored_lines_checked,
        totals.faults,
        totals.calls,
        totals.failed_files,
        totals.zips_opened,
        totals.omitted_seen,
        started.elapsed()
    );
    // The soak must have done what it is for: faults injected and met, both kinds of run,
    // and the silent-omission modes looked into (a replay of one seed may do less).
    if seeds.len() >= 20 {
        assert!(totals.faults > 0 && totals.failed_files > 0, "no fault was met");
        assert!(totals.http > 0 && totals.backups > 0, "both requests and backups ran");
        assert!(
            totals.zips_opened > 0 && totals.omitted_seen > 0,
            "omissions were looked for"
        );
    }
}
