//! Scheduled backups end to end: the handler, the Wix client and the emulator's seeded
//! library (nested folders, private, pending and deleted files).

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use wix_emulator::{EmulatorConfig, Fault, Library};

fn scheduled_event() -> Value {
    json!({"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
           "time": "2026-11-27T03:00:00Z", "region": "us-east-1", "resources": [], "detail": {}})
}

async fn seeded(files: usize, env: &[(&str, &str)]) -> (Harness, Library) {
    let library = Library::seeded(files, 42);
    let h = harness(
        EmulatorConfig {
            library: library.clone(),
            ..EmulatorConfig::default()
        },
        env,
    )
    .await;
    (h, library)
}

/// Files of the media root (every folder level), as the library holds them.
fn media_root_files(library: &Library) -> Vec<&wix_emulator::FileRecord> {
    let folders: HashMap<&str, &str> = library
        .folders
        .iter()
        .map(|f| (f.id.as_str(), f.parent_folder_id.as_str()))
        .collect();
    fn in_root<'a>(folders: &HashMap<&'a str, &'a str>, mut folder: &'a str) -> bool {
        loop {
            if folder == wix_emulator::MEDIA_ROOT {
                return true;
            }
            match folders.get(folder) {
                Some(parent) => folder = parent,
                None => return false,
            }
        }
    }
    library
        .files
        .iter()
        .filter(|f| in_root(&folders, &f.parent_folder_id))
        .collect()
}

fn ids_in(body: &Value, key: &str, field: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap().to_owned())
        .collect()
}

fn archived(body: &Value) -> Vec<String> {
    body["archives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["fileIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
        })
        .collect()
}

fn failed(body: &Value) -> Vec<String> {
    body["failed"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            f["fileIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
        })
        .collect()
}

/// `listedFiles` = skipped + archived + private + failed, each exactly once.
fn assert_accounts(body: &Value) {
    let mut all: Vec<String> = ids_in(body, "skipped", "fileId");
    all.extend(archived(body));
    all.extend(ids_in(body, "privateFiles", "fileId"));
    all.extend(failed(body));
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no file stands twice");
    assert_eq!(
        all.len() as u64,
        body["listedFiles"].as_u64().unwrap(),
        "every listed file is accounted for"
    );
    assert_eq!(
        body["skippedFiles"].as_u64().unwrap() as usize,
        body["skipped"].as_array().unwrap().len()
    );
}

#[tokio::test]
async fn a_library_of_12000_files_is_backed_up_once_each_grouped_by_folder() {
    let (h, library) = seeded(12_000, &[]).await;
    let started = Instant::now();
    let body = invoke_raw(&h, &scheduled_event()).await.expect("the backup runs");
    let files = media_root_files(&library);
    assert!(library.folders.len() > 50, "nested folders");
    assert_eq!(body["listedFiles"].as_u64().unwrap() as usize, files.len());
    assert_eq!(body["incomplete"], false, "{}", brief(&body["error"]));
    assert_accounts(&body);

    let ready: Vec<&&wix_emulator::FileRecord> = files
        .iter()
        .filter(|f| f.operation_status == "READY" && f.state == "OK")
        .collect();
    let private: HashSet<&str> = ready.iter().filter(|f| f.private).map(|f| f.id.as_str()).collect();
    let public: HashSet<&str> = ready.iter().filter(|f| !f.private).map(|f| f.id.as_str()).collect();
    assert!(
        private.len() > 100 && files.len() - ready.len() > 100,
        "the library has private, pending and deleted files"
    );
    let archived_ids = archived(&body);
    assert_eq!(
        archived_ids.iter().map(String::as_str).collect::<HashSet<_>>(),
        public,
        "every ready public file is archived"
    );
    let linked: HashSet<String> = ids_in(&body, "privateFiles", "fileId").into_iter().collect();
    assert_eq!(
        linked.iter().map(String::as_str).collect::<HashSet<_>>(),
        private,
        "every private file has its own link"
    );
    assert!(failed(&body).is_empty());
    assert_eq!(body["fileCount"].as_u64().unwrap() as usize, ready.len());

    let skipped: HashMap<String, String> = body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["fileId"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for f in &files {
        let expected = if f.state == "DELETED" {
            Some("DELETED")
        } else if f.operation_status != "READY" {
            Some("NOT_READY")
        } else {
            None
        };
        assert_eq!(skipped.get(&f.id).map(String::as_str), expected, "{}", f.id);
    }

    let archives = body["archives"].as_array().unwrap();
    assert_eq!(archives.len(), public.len().div_ceil(1000), "the fewest archives");
    // Grouped by folder: over the archives in order, each folder's files form one run.
    let parent: HashMap<&str, &str> = files
        .iter()
        .map(|f| (f.id.as_str(), f.parent_folder_id.as_str()))
        .collect();
    let in_order: Vec<&str> = archives
        .iter()
        .flat_map(|a| {
            a["fileIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| parent[id.as_str().unwrap()])
        })
        .collect();
    let runs = 1 + in_order.windows(2).filter(|w| w[0] != w[1]).count();
    let distinct: HashSet<&str> = in_order.iter().copied().collect();
    assert_eq!(runs, distinct.len(), "each folder's files are archived together");
    for a in archives {
        assert!(a["fileCount"].as_u64().unwrap() <= 1000);
        let folders: Vec<String> = a["folders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect();
        assert!(!folders.is_empty());
        assert!(
            folders.windows(2).all(|w| w[0] < w[1]),
            "folders named once each, sorted, within an archive: {folders:?}"
        );
        assert!(
            folders.iter().all(|f| f.starts_with('/') && !f.contains("/f")),
            "every folder named: {folders:?}"
        );
        let entries = zip_entries(a["downloadUrl"].as_str().unwrap()).await;
        assert!(
            entries.iter().all(|e| !private.contains(e.as_str())),
            "no private file in an archive"
        );
        assert_eq!(entries.len() as u64, a["fileCount"].as_u64().unwrap());
    }
    let by_type: u64 = body["byMediaType"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    assert_eq!(by_type as usize, ready.len());
    let size: u64 = ready.iter().map(|f| f.size_in_bytes).sum();
    assert_eq!(body["totalSizeBytes"].as_u64().unwrap(), size);
    for p in body["privateFiles"].as_array().unwrap().iter().take(3) {
        assert_eq!(
            reqwest::get(p["downloadUrl"].as_str().unwrap()).await.unwrap().status(),
            200
        );
        assert!(p["expiresAt"].as_str().unwrap().ends_with('Z'));
    }
    let searches = h
        .emulator
        .api_calls()
        .iter()
        .filter(|c| c.path.ends_with("/files/search"))
        .count();
    assert_eq!(searches, files.len().div_ceil(100), "one search call per page of 100");
    eprintln!("backup of {} files took {:?}", files.len(), started.elapsed());
}

#[tokio::test]
async fn scheduler_input_filters_media_types_and_leaves_private_files_out() {
    let (h, library) = seeded(1500, &[]).await;
    let event = json!({"backup": {"mediaTypes": ["IMAGE"], "includePrivate": false}});
    let body = invoke_raw(&h, &event).await.unwrap();
    assert_accounts(&body);
    assert!(body["privateFiles"].as_array().unwrap().is_empty());
    let types: HashMap<&str, &str> = library
        .files
        .iter()
        .map(|f| (f.id.as_str(), f.media_type.as_str()))
        .collect();
    let archived_ids = archived(&body);
    assert!(!archived_ids.is_empty());
    assert!(archived_ids.iter().all(|id| types[id.as_str()] == "IMAGE"));
    let private_skips = body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["reason"] == "PRIVATE")
        .count();
    assert!(private_skips > 0, "private files are listed as skipped");
    for a in body["archives"].as_array().unwrap() {
        let entries = zip_entries(a["downloadUrl"].as_str().unwrap()).await;
        assert!(entries.iter().all(|e| !library.file(e).unwrap().private));
    }
    assert_eq!(body["mediaTypes"], json!(["IMAGE"]));
}

#[tokio::test]
async fn invalid_options_fail_the_invocation_naming_the_option_without_calling_wix() {
    let (h, _) = seeded(100, &[]).await;
    for (options, needle) in [
        (json!({"mediaTypes": ["PHOTO"]}), "mediaTypes"),
        (json!({"emailTo": ["not-an-address"]}), "emailTo[0]"),
        (json!({"colour": "blue"}), "colour"),
        (json!({"includePrivate": 1}), "includePrivate"),
    ] {
        let err = invoke_raw(&h, &json!({ "backup": options }))
            .await
            .expect_err("refused");
        assert_eq!(err.error_type(), "InvalidBackupOptions");
        assert!(err.to_string().contains(needle), "{err}");
    }
    assert!(h.emulator.api_calls().is_empty());
}

#[tokio::test]
async fn faults_during_listing_resume_from_the_same_cursor() {
    let (h, library) = seeded(1200, &[]).await;
    h.emulator.push_faults(
        "files/search",
        vec![
            Fault::Delay(Duration::ZERO),
            Fault::TooManyRequests { retry_after: Some(0) },
            Fault::Delay(Duration::ZERO),
            Fault::Status(503),
            Fault::Drop,
            Fault::Delay(Duration::ZERO),
            Fault::TooManyRequests { retry_after: None },
        ],
    );
    let body = invoke_raw(&h, &scheduled_event()).await.unwrap();
    assert_eq!(body["incomplete"], false, "{}", brief(&body));
    assert_eq!(body["duplicatesRemoved"], 0, "nothing listed twice");
    assert_eq!(
        body["listedFiles"].as_u64().unwrap() as usize,
        media_root_files(&library).len(),
        "nothing skipped"
    );
    assert_accounts(&body);
    let faulted = h
        .emulator
        .api_calls()
        .iter()
        .filter(|c| c.path.ends_with("/files/search") && c.fault.is_some())
        .count();
    assert!(faulted >= 4, "the faults were met: {faulted}");
}

#[tokio::test]
async fn a_listing_that_fails_for_good_ends_with_what_was_listed() {
    let (h, _) = seeded(1200, &[("WIX_MAX_RETRIES", "1")]).await;
    h.emulator.push_faults(
        "files/search",
        vec![
            Fault::Delay(Duration::ZERO),
            Fault::Delay(Duration::ZERO),
            Fault::Status(503),
            Fault::Status(503),
        ],
    );
    let body = invoke_raw(&h, &scheduled_event()).await.unwrap();
    assert_eq!(body["incomplete"], true);
    assert_eq!(body["error"]["code"], "WIX_UNAVAILABLE");
    assert_eq!(body["listedFiles"], 200, "two pages were listed");
    assert!(
        !body["archives"].as_array().unwrap().is_empty(),
        "what was listed is archived"
    );
    assert_accounts(&body);
}

#[tokio::test]
async fn a_cursor_that_repeats_forever_is_stopped() {
    let (h, _) = seeded(300, &[]).await;
    let page = json!({"files": [], "nextCursor": {"cursors": {"next": "again"}}}).to_string();
    let fault = || Fault::Body {
        status: 200,
        content_type: "application/json".into(),
        body: page.clone(),
    };
    h.emulator.push_faults("files/search", vec![fault(), fault(), fault()]);
    let started = Instant::now();
    let body = invoke_raw(&h, &scheduled_event()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(body["incomplete"], true);
    assert_eq!(body["error"]["code"], "WIX_INVALID_RESPONSE");
    assert_eq!(
        h.emulator
            .api_calls()
            .iter()
            .filter(|c| c.path.ends_with("/files/search"))
            .count(),
        2
    );
}

#[tokio::test]
async fn a_deadline_shorter_than_the_work_gives_an_honest_partial_report() {
    // About 185 calls (30 search pages, 3 archives, a link for each private file) at 200 ms
    // and 4 in flight: some 15 s of work for a deadline of 10.
    let (h, _) = seeded(3000, &[("WIX_REQUESTS_PER_MINUTE", "600")]).await;
    h.emulator.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    let body = wix_media_archiver::local::invoke(&h.app, &scheduled_event(), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered before the Lambda timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(body["incomplete"], true, "{}", brief(&body));
    assert!(
        !body["archives"].as_array().unwrap().is_empty() || !body["privateFiles"].as_array().unwrap().is_empty(),
        "links for what was done"
    );
    assert_accounts(&body);
    let codes: HashSet<String> = failure_codes(&body).into_iter().collect();
    assert!(codes.iter().all(|c| c == "DEADLINE"), "{codes:?}");
}
