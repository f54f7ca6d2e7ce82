//! Real Wix where the emulator used to be kind: unknown and private IDs in every answer
//! shape Wix may use, silent omissions, documented paging, refused filters, `Retry-After`
//! extremes, the token call's deadline, pipelined lookups, folder names within budget,
//! link expiry stamps and answers that would not fit Lambda's payload limit.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use wix_emulator::{EmulatorConfig, Fault, Library, NewFile, PagingStyle, PrivateInArchive, UnknownIds, MEDIA_ROOT};

fn flat(n: usize) -> EmulatorConfig {
    EmulatorConfig {
        library: Library::flat(n),
        ..EmulatorConfig::default()
    }
}

fn unknown(i: usize) -> String {
    format!("ffffff_{i:032x}~mv2.jpg")
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

fn failed_ids(body: &Value) -> HashSet<String> {
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

#[tokio::test]
async fn one_stale_id_among_a_thousand_costs_only_itself_in_every_answer_shape() {
    // Where Wix names the bad ID: one call more. Where it does not: halving, at most about
    // 2·log2(1000) calls more, and one to pack the good files together again.
    for (mode, most_calls) in [
        (UnknownIds::Validation, 2),
        (UnknownIds::Reject, 2),
        (UnknownIds::ValidationUnnamed, 1 + 2 * 10 + 1),
    ] {
        let h = harness(flat(1000), &[]).await;
        h.emulator.set_unknown_ids(mode);
        let mut ids = flat_ids(999);
        ids.insert(617, unknown(1));
        let (status, body) = call(&h, &request_for(&ids)).await;
        assert_eq!(status, 207, "{mode:?}: {}", brief(&body));
        assert_eq!(failed_ids(&body), HashSet::from([unknown(1)]), "{mode:?}");
        assert_eq!(failure_codes(&body), vec!["WIX_REJECTED"], "{mode:?}");
        let good: Vec<String> = ids.iter().filter(|id| **id != unknown(1)).cloned().collect();
        assert_eq!(archived(&body), good, "{mode:?}: the good files keep their order");
        assert_eq!(
            body["archives"].as_array().unwrap().len(),
            1,
            "{mode:?}: in one archive"
        );
        let calls = h.emulator.api_calls().len();
        assert!(calls <= most_calls, "{mode:?}: {calls} calls");
        let zip = zip_entries(body["archives"][0]["downloadUrl"].as_str().unwrap()).await;
        assert_eq!(zip.len(), 999, "{mode:?}");
        assert_invariant(&body, &ids);
    }
}

#[tokio::test]
async fn several_unnamed_stale_ids_stay_within_the_bound() {
    let h = harness(flat(1000), &[]).await;
    h.emulator.set_unknown_ids(UnknownIds::ValidationUnnamed);
    let mut ids = flat_ids(996);
    for (at, i) in [(3, 1), (400, 2), (401, 3), (990, 4)] {
        ids.insert(at, unknown(i));
    }
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 207, "{}", brief(&body));
    assert_eq!(failed_ids(&body), (1..=4).map(unknown).collect::<HashSet<_>>());
    let calls = h.emulator.api_calls().len();
    assert!(calls <= 1 + 4 * 2 * 10 + 1, "{calls} calls");
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn private_ids_refused_in_an_archive_fail_alone() {
    let library = Library::seeded(300, 21);
    let private: Vec<String> = library
        .files
        .iter()
        .filter(|f| f.private && f.operation_status == "READY" && f.state == "OK")
        .take(2)
        .map(|f| f.id.clone())
        .collect();
    let public: Vec<String> = library
        .files
        .iter()
        .filter(|f| !f.private && f.operation_status == "READY" && f.state == "OK")
        .take(50)
        .map(|f| f.id.clone())
        .collect();
    let h = harness(
        EmulatorConfig {
            library,
            private_in_archive: PrivateInArchive::Reject,
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    let mut ids = public.clone();
    ids.insert(10, private[0].clone());
    ids.push(private[1].clone());
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 207, "{}", brief(&body));
    assert_eq!(failed_ids(&body), private.iter().cloned().collect::<HashSet<_>>());
    let message = body["failed"][0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("resolvePrivate"), "{message}");
    assert_eq!(archived(&body), public);
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn an_archive_of_only_unknown_ids_is_nothing_to_download() {
    let h = harness(flat(10), &[]).await;
    h.emulator.set_unknown_ids(UnknownIds::NothingToDownload);
    let ids: Vec<String> = (0..5).map(unknown).collect();
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 502, "{}", brief(&body));
    assert_eq!(failure_codes(&body), vec!["WIX_REJECTED"]);
    assert!(body["failed"][0]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Nothing to download"));
    assert_eq!(h.emulator.api_calls().len(), 1, "no halving: Wix said none is there");
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn silent_omission_is_invisible_to_a_link_only_answer() {
    // What the README says: the answer holds the link Wix gave; what the zip holds is only
    // checked by stored backups.
    let h = harness(flat(10), &[]).await;
    h.emulator.set_unknown_ids(UnknownIds::Ignore);
    let mut ids = flat_ids(3);
    ids.push(unknown(7));
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 200, "{}", brief(&body));
    assert_eq!(archived(&body), ids);
    let zip = zip_entries(body["archives"][0]["downloadUrl"].as_str().unwrap()).await;
    assert_eq!(zip.len(), 3, "the zip lacks the omitted file");
}

#[tokio::test]
async fn backups_list_everything_once_in_every_paging_style_and_never_filter_on_other() {
    for paging in [PagingStyle::Documented, PagingStyle::CursorsOnly, PagingStyle::Legacy] {
        let library = Library::seeded(1500, 31);
        let expected: usize = library.files.len();
        let h = harness(
            EmulatorConfig {
                library,
                paging,
                refuse_other_media_type: true,
                ..EmulatorConfig::default()
            },
            &[("BACKUP_INCLUDE_PRIVATE", "true")],
        )
        .await;
        let body = invoke_raw(&h, &json!({"backup": {}})).await.unwrap();
        assert_eq!(body["listedFiles"], expected, "{paging:?}");
        assert_eq!(body["incomplete"], false, "{paging:?}: {}", brief(&body));
        let searches = h
            .emulator
            .api_calls()
            .iter()
            .filter(|c| c.path.ends_with("/files/search"))
            .count();
        assert_eq!(searches, expected.div_ceil(100), "{paging:?}: one search per page");
    }
    // OTHER among the wanted types: listed unfiltered and filtered here.
    let library = Library::seeded(600, 32);
    let wanted = library
        .files
        .iter()
        .filter(|f| ["OTHER", "IMAGE"].contains(&f.media_type.as_str()))
        .count();
    let h = harness(
        EmulatorConfig {
            library,
            refuse_other_media_type: true,
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    let body = invoke_raw(&h, &json!({"backup": {"mediaTypes": ["OTHER", "IMAGE"]}}))
        .await
        .unwrap();
    assert_eq!(body["incomplete"], false, "{}", brief(&body));
    assert_eq!(body["listedFiles"], wanted);
}

#[tokio::test]
async fn a_retry_after_of_a_day_ends_the_retries_and_pauses_the_container_at_most_a_minute() {
    let h = harness(flat(10), &[]).await;
    h.emulator.push_faults(
        "generate-download-url",
        vec![Fault::TooManyRequests {
            retry_after: Some(86_400),
        }],
    );
    let started = Instant::now();
    let (status, body) = call(&h, &request_for(&flat_ids(2))).await;
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(status, 502, "{}", brief(&body));
    assert_eq!(failure_codes(&body), vec!["WIX_RATE_LIMITED"]);
    let pause = h.app.wix.limiter().time_for(1, None);
    assert!(pause <= Duration::from_secs(60), "{pause:?}");
    assert!(
        pause >= Duration::from_secs(55),
        "the pause is kept, clamped: {pause:?}"
    );
}

#[tokio::test]
async fn a_hanging_token_endpoint_is_given_up_at_the_deadline() {
    let h = harness(flat(10), &[]).await;
    let app_creds = EmulatorConfig::default().app.unwrap();
    // An app installation whose token request hangs.
    h.emulator
        .push_faults("oauth2/token", vec![Fault::Hang(Duration::from_secs(30))]);
    let creds = wix_media_archiver::credentials::Credentials {
        wix: wix_media_archiver::credentials::WixAuth::App {
            app_id: app_creds.app_id,
            app_secret: wix_media_archiver::credentials::SecretString::new(app_creds.app_secret),
            instance_id: app_creds.instance_id,
        },
        caller_keys: vec![wix_media_archiver::credentials::SecretString::new(CALLER_KEY.into())],
    };
    let mut settings = wix_media_archiver::wix::ClientSettings::from_config(&h.app.config);
    settings.timeout = Duration::from_secs(30);
    let app = wix_media_archiver::app::App::with_client_settings(
        h.app.config.clone(),
        std::sync::Arc::new(wix_media_archiver::credentials::StaticCredentials(std::sync::Arc::new(
            creds,
        ))),
        None,
        settings,
    )
    .unwrap();
    let started = Instant::now();
    let response = wix_media_archiver::local::invoke(&app, &request_for(&flat_ids(2)), Some(Duration::from_secs(6)))
        .await
        .unwrap();
    let (status, body) = http_parts(&response);
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    assert_eq!(status, 502, "{}", brief(&body));
    assert_eq!(failure_codes(&body), vec!["DEADLINE"]);
}

#[tokio::test]
async fn resolve_private_starts_archiving_before_the_last_lookup() {
    let h = harness(flat(5000), &[("WIX_MAX_CONCURRENCY", "2")]).await;
    h.emulator.set_latency(Duration::from_millis(40));
    let ids = flat_ids(5000);
    let body = json!({"fileIds": ids, "resolvePrivate": true}).to_string();
    let (status, body) = call(&h, &signed(&body)).await;
    assert_eq!(status, 200, "{}", brief(&body));
    let calls = h.emulator.api_calls();
    let first_archive = calls
        .iter()
        .position(|c| c.path.ends_with("generate-download-url"))
        .unwrap();
    let last_lookup = calls.iter().rposition(|c| c.path.ends_with("get-files")).unwrap();
    assert!(
        first_archive < last_lookup,
        "the first archive call (#{first_archive}) came before the last lookup (#{last_lookup})"
    );
    assert_eq!(archived(&body), ids);
}

#[tokio::test]
async fn folder_names_cost_a_call_per_hundred_folders() {
    let library = Library::seeded(12_000, 41);
    let folders = library.folders.len();
    let h = harness(
        EmulatorConfig {
            library,
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    let body = invoke_raw(&h, &json!({"backup": {}})).await.unwrap();
    assert_eq!(body["incomplete"], false, "{}", brief(&body));
    let calls = h.emulator.api_calls();
    let folder_calls = calls.iter().filter(|c| c.path.contains("/folders")).count();
    assert_eq!(folder_calls, folders.div_ceil(100), "{folders} folders");
    for a in body["archives"].as_array().unwrap() {
        for f in a["folders"].as_array().unwrap() {
            let f = f.as_str().unwrap();
            assert!(!f.contains("/f"), "named, not an ID: {f}");
        }
    }
}

#[tokio::test]
async fn without_search_folders_the_needed_folders_are_read_one_by_one() {
    let library = Library::seeded(3000, 42);
    let h = harness(
        EmulatorConfig {
            library,
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    h.emulator.push_faults("folders/search", vec![Fault::Status(404)]);
    let body = invoke_raw(&h, &json!({"backup": {}})).await.unwrap();
    let names: HashSet<String> = body["archives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["folders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
        })
        .collect();
    assert!(names.iter().all(|f| !f.contains("/f")), "{names:?}");
    let gets = h
        .emulator
        .api_calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path.starts_with("/site-media/v1/folders/"))
        .count();
    let folders = h.emulator.library().folders.len();
    assert!(gets <= folders, "one Get Folder per needed folder: {gets} of {folders}");
}

#[tokio::test]
async fn each_private_link_expires_counted_from_when_it_was_asked_for() {
    let h = harness(flat(5), &[("WIX_MAX_CONCURRENCY", "1")]).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let f = h
            .emulator
            .add_file(NewFile {
                display_name: format!("secret-{i}.pdf"),
                parent_folder_id: MEDIA_ROOT.into(),
                media_type: "DOCUMENT".into(),
                private: true,
                ..NewFile::default()
            })
            .unwrap();
        ids.push(f.id);
    }
    h.emulator.set_latency(Duration::from_millis(700));
    let body = json!({"fileIds": ids, "resolvePrivate": true}).to_string();
    let (status, body) = call(&h, &signed(&body)).await;
    assert_eq!(status, 200, "{}", brief(&body));
    let at: Vec<std::time::SystemTime> = body["privateFiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| humantime::parse_rfc3339(p["expiresAt"].as_str().unwrap()).unwrap())
        .collect();
    let span = at[3].duration_since(at[0]).unwrap();
    assert!(
        span >= Duration::from_secs(1),
        "links asked for ~2 s apart expire apart: {span:?}"
    );
}

#[tokio::test]
async fn an_answer_too_big_for_lambda_keeps_counts_links_and_first_failures() {
    let n = 110_000;
    // About the answer's size, not the caller's deadline: a debug build's 110 archive calls
    // of 1,000 IDs may take longer than a Function URL's 12 s on a busy machine.
    let h = harness(
        flat(n),
        &[("MAX_FILES_PER_REQUEST", "200000"), ("HTTP_DEADLINE_SECONDS", "110")],
    )
    .await;
    let mut ids = flat_ids(n);
    ids.extend((0..300).map(unknown));
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 207, "{}", brief(&body));
    let text = body.to_string();
    assert!(text.len() <= 5_000_000, "{} bytes", text.len());
    assert_eq!(body["fileCount"], ids.len());
    assert_eq!(body["shortened"]["archiveFileIdsOmitted"], true);
    let archives = body["archives"].as_array().unwrap();
    let counted: u64 = archives.iter().map(|a| a["fileCount"].as_u64().unwrap()).sum();
    assert_eq!(counted as usize, n, "every archive keeps its count and link");
    assert!(archives.iter().all(|a| a["downloadUrl"].as_str().is_some()));
    assert!(!body["failed"].as_array().unwrap().is_empty());
}
