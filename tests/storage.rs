//! Stored backups (`STORAGE_BUCKET`) end to end: the real handler, the Wix emulator serving
//! real zips, aws-sdk-s3 against moto's S3. What is in the bucket is read back and compared
//! with what the emulator holds, byte for byte.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::time::Duration;

use common::moto;
use common::*;
use serde_json::{json, Value};
use wix_emulator::{DownloadFault, EmulatorConfig, EntryNames, Library, ZipFormat};
use wix_media_archiver::app::App;
use wix_media_archiver::backup::manifest::{self, LineStatus, ManifestLine};
use wix_media_archiver::config::Config;

const BUCKET: &str = "owner-backups";

/// An app writing stored backups into moto, with parts of `part_size` bytes.
async fn stored(config: EmulatorConfig, env: &[(&str, &str)], part_size: usize) -> Harness {
    moto::stored_harness(config, BUCKET, env, part_size).await
}

async fn backup(h: &Harness, options: Value) -> Value {
    invoke_raw(h, &json!({ "backup": options }))
        .await
        .unwrap_or_else(|e| panic!("the backup reports: {e}"))
}

fn key_of(uri: &str) -> String {
    uri.strip_prefix(&format!("s3://{BUCKET}/")).unwrap().to_owned()
}

async fn manifest_of(summary: &Value) -> Vec<ManifestLine> {
    let bytes = moto::get(BUCKET, &key_of(summary["manifest"].as_str().unwrap())).await;
    manifest::decode(&bytes).expect("a readable manifest")
}

/// Entries of a stored zip: name → bytes.
async fn zip_contents(key: &str) -> HashMap<String, Vec<u8>> {
    let bytes = moto::get(BUCKET, key).await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a real zip");
    let mut out = HashMap::new();
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).unwrap();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        out.insert(e.name().to_owned(), content);
    }
    out
}

fn site_prefix() -> String {
    format!("wix-media-archiver/{}/", EmulatorConfig::default().site_id)
}

#[tokio::test]
async fn a_library_of_12000_files_is_copied_into_the_bucket_checked_and_indexed() {
    let _moto = moto::setup().await;
    let library = Library::seeded(12_000, 7);
    let h = stored(
        EmulatorConfig {
            library: library.clone(),
            ..EmulatorConfig::default()
        },
        &[],
        512 * 1024,
    )
    .await;
    let summary = backup(&h, json!({})).await;
    let text = summary.to_string();
    assert!(text.len() < 64 * 1024, "the answer is a summary: {} bytes", text.len());
    assert!(!text.contains("/_emulator/"), "no download link in the answer");
    assert_eq!(summary["status"], "COMPLETE", "{}", brief(&summary));
    assert_eq!(summary["full"], true);
    let ready = |f: &&wix_emulator::FileRecord| f.state == "OK" && f.operation_status == "READY";
    let stored_expected = library.files.iter().filter(ready).count();
    assert_eq!(summary["listedFiles"], 12_000);
    assert_eq!(summary["storedFiles"], stored_expected);
    assert_eq!(summary["skippedFiles"], 12_000 - stored_expected);
    assert_eq!(summary["failedFiles"], 0);

    let lines = manifest_of(&summary).await;
    assert_eq!(lines.len(), 12_000, "one line per listed file");
    let ids: HashSet<&str> = lines.iter().map(|l| l.file_id.as_str()).collect();
    assert_eq!(ids.len(), 12_000, "each file once");
    assert!(
        lines
            .windows(2)
            .all(|w| (&w[0].folder_path, &w[0].display_name) <= (&w[1].folder_path, &w[1].display_name)),
        "sorted by folder path, then display name"
    );
    let by_id: HashMap<&str, &wix_emulator::FileRecord> = library.files.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut objects: HashMap<String, Vec<&ManifestLine>> = HashMap::new();
    for l in &lines {
        let f = by_id[l.file_id.as_str()];
        if ready(&f) {
            assert_eq!(l.status, LineStatus::Stored, "{}", l.file_id);
            assert_eq!(l.size_in_bytes, Some(f.size_in_bytes));
            assert!(l.object.as_deref().unwrap().starts_with(&site_prefix()));
            assert_eq!(l.private, f.private);
            assert!(l.hash.is_some() && l.updated_date.is_some(), "{}", l.file_id);
            objects.entry(l.object.clone().unwrap()).or_default().push(l);
        } else {
            assert_eq!(l.status, LineStatus::Skipped, "{}", l.file_id);
            let reason = if f.state == "DELETED" { "DELETED" } else { "NOT_READY" };
            assert_eq!(l.reason.as_deref(), Some(reason));
        }
    }
    let client = moto::s3().await;
    let mut archives = 0;
    let mut multipart = 0;
    for (key, files) in &objects {
        let head = client
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let checksum = head.checksum_crc32().expect("an S3 checksum");
        assert_eq!(
            Some(checksum.split('-').next().unwrap()),
            files[0].object_checksum.as_deref()
        );
        // The recorded checksum is the CRC-32 of the bytes S3 holds (the parts' CRCs folded
        // into the object's as they streamed).
        let stored_bytes = moto::get(BUCKET, key).await;
        use base64::Engine as _;
        let actual = base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&stored_bytes).to_be_bytes());
        assert_eq!(files[0].object_checksum.as_deref(), Some(actual.as_str()), "{key}");
        if stored_bytes.len() > 512 * 1024 {
            multipart += 1;
        }
        if key.contains("/archives/") {
            archives += 1;
            let zip = zip_contents(key).await;
            assert_eq!(zip.len(), files.len(), "{key} holds exactly its files");
            for l in files {
                let entry = l.entry.as_deref().unwrap();
                let expected = h.emulator.file_bytes(&l.file_id).unwrap();
                assert_eq!(zip[entry], expected, "{} in {key}", l.file_id);
                assert_eq!(
                    l.crc32.as_deref(),
                    Some(format!("{:08x}", crc32fast::hash(&expected)).as_str())
                );
            }
        } else {
            assert!(key.contains("/private/"), "{key}");
            assert_eq!(files.len(), 1);
            assert!(files[0].private);
            assert!(files[0].entry.is_none());
            assert_eq!(
                moto::get(BUCKET, key).await,
                h.emulator.file_bytes(&files[0].file_id).unwrap()
            );
        }
    }
    let public = library.files.iter().filter(ready).filter(|f| !f.private).count();
    assert_eq!(archives, public.div_ceil(1000), "the fewest archives");
    assert!(multipart > 0, "some object went up in several parts");

    let latest: Value =
        serde_json::from_slice(&moto::get(BUCKET, &format!("{}latest.json", site_prefix())).await).unwrap();
    assert_eq!(latest["backupId"], summary["backupId"]);
    assert_eq!(latest["manifest"], key_of(summary["manifest"].as_str().unwrap()));
    assert_eq!(latest["files"], 12_000);
    assert_eq!(latest["fullBackupId"], summary["backupId"]);
    let report: Value =
        serde_json::from_slice(&moto::get(BUCKET, &key_of(summary["report"].as_str().unwrap())).await).unwrap();
    assert_eq!(report["backupId"], summary["backupId"]);
    assert_eq!(report["archives"].as_array().unwrap().len(), archives);
    assert!(
        !report.to_string().contains("/_emulator/"),
        "no download link in the report"
    );
    assert_eq!(moto::open_uploads(BUCKET).await, 0);
}

#[tokio::test]
async fn files_wix_leaves_out_of_its_zips_are_archive_incomplete_and_nothing_else_is_lost() {
    let _moto = moto::setup().await;
    let library = Library::seeded(1500, 8);
    let models: HashSet<String> = library
        .files
        .iter()
        .filter(|f| f.media_type == "MODEL3D" && !f.private && f.state == "OK" && f.operation_status == "READY")
        .map(|f| f.id.clone())
        .collect();
    assert!(!models.is_empty(), "the seeded library holds 3D models");
    let h = stored(
        EmulatorConfig {
            library,
            omit_media_types: vec!["MODEL3D".into()],
            ..EmulatorConfig::default()
        },
        &[],
        1024 * 1024,
    )
    .await;
    let summary = backup(&h, json!({})).await;
    let lines = manifest_of(&summary).await;
    let incomplete: HashSet<String> = lines
        .iter()
        .filter(|l| l.error.as_ref().is_some_and(|e| e.code == "ARCHIVE_INCOMPLETE"))
        .map(|l| l.file_id.clone())
        .collect();
    assert_eq!(incomplete, models, "exactly the omitted files");
    assert_eq!(summary["failedFiles"], models.len());
    assert!(lines
        .iter()
        .all(|l| l.status != LineStatus::Failed || incomplete.contains(&l.file_id)));
    // A file Wix will not put into its archives is the file's own fault: the backup did
    // everything it could, so it is complete and latest.json moves.
    assert_eq!(summary["status"], "COMPLETE", "{}", brief(&summary));
}

#[tokio::test]
async fn entries_are_matched_however_wix_names_them() {
    let _moto = moto::setup().await;
    for (names, format) in [
        (EntryNames::DisplayName, ZipFormat::Stored),
        (EntryNames::FolderPath, ZipFormat::Deflated),
        (EntryNames::FileId, ZipFormat::StoredCrcFirst),
    ] {
        let h = stored(
            EmulatorConfig {
                library: Library::seeded(1200, 9),
                entry_names: names,
                zip_format: format,
                content_length: format != ZipFormat::Stored,
                ..EmulatorConfig::default()
            },
            &[],
            1024 * 1024,
        )
        .await;
        let summary = backup(&h, json!({"includePrivate": false})).await;
        assert_eq!(
            summary["status"],
            "COMPLETE",
            "{names:?}/{format:?}: {}",
            brief(&summary)
        );
        assert_eq!(summary["failedFiles"], 0, "{names:?}/{format:?}: {}", brief(&summary));
        for l in manifest_of(&summary)
            .await
            .iter()
            .filter(|l| l.status == LineStatus::Stored)
        {
            let zip = zip_contents(l.object.as_deref().unwrap()).await;
            assert_eq!(
                zip[l.entry.as_deref().unwrap()],
                h.emulator.file_bytes(&l.file_id).unwrap(),
                "{names:?}: {} is the entry it names",
                l.file_id
            );
        }
        moto::reset().await;
    }
}

#[tokio::test]
async fn a_cut_download_is_tried_again_and_leaves_no_partial_object_or_open_upload() {
    let _moto = moto::setup().await;
    let h = stored(
        EmulatorConfig {
            library: Library::seeded_with(900, 10, 2000..8000),
            ..EmulatorConfig::default()
        },
        &[],
        64 * 1024,
    )
    .await;
    // The first download is cut past its first parts; the second is fine.
    h.emulator
        .push_download_faults("archives", vec![DownloadFault::CutAfter(300 * 1024)]);
    let summary = backup(&h, json!({"includePrivate": false})).await;
    assert_eq!(summary["status"], "COMPLETE", "{}", brief(&summary));
    assert_eq!(summary["failedFiles"], 0);
    assert_eq!(moto::open_uploads(BUCKET).await, 0, "the cut upload was aborted");
    let stats = h.emulator.download_stats();
    assert_eq!(stats.archive_downloads, 2, "the cut download and one whole one");

    // Cut every time: the batch fails, and still nothing partial is left.
    let summary = full_backup_cut_every_try(&h, 100 * 1024).await;
    let lines = manifest_of(&summary).await;
    assert!(lines
        .iter()
        .filter(|l| l.status == LineStatus::Failed)
        .all(|l| l.error.as_ref().unwrap().code == "WIX_UNAVAILABLE"));
    assert!(
        lines.iter().all(|l| l.status != LineStatus::Stored),
        "no STORED line for bytes not there"
    );
    assert_eq!(h.emulator.download_stats().archive_downloads, 2 + 3, "three tries");
    let archives: Vec<String> = moto::keys(BUCKET, &site_prefix())
        .await
        .into_iter()
        .filter(|k| k.contains("/archives/"))
        .collect();
    assert!(archives.is_empty(), "{archives:?}");
    assert_eq!(moto::open_uploads(BUCKET).await, 0);
    assert!(
        moto::keys(BUCKET, &format!("{}latest.json", site_prefix()))
            .await
            .is_empty(),
        "no latest.json for an incomplete backup"
    );

    // Cut inside the first part, every time: the upload made while that part filled (the
    // archive announced more than one part) is aborted before the copy's error is answered.
    let summary = full_backup_cut_every_try(&h, 10 * 1024).await;
    assert!(manifest_of(&summary)
        .await
        .iter()
        .all(|l| l.status != LineStatus::Stored));
    assert_eq!(
        moto::open_uploads(BUCKET).await,
        0,
        "no upload left open by a cut first part"
    );
}

/// A full backup into an emptied bucket with every try of the archive's download cut after
/// `cut` bytes: the batch fails, so the backup is INCOMPLETE.
async fn full_backup_cut_every_try(h: &Harness, cut: u64) -> Value {
    moto::reset().await;
    moto::create_bucket(BUCKET).await;
    h.emulator
        .push_download_faults("archives", vec![DownloadFault::CutAfter(cut); 3]);
    let summary = backup(h, json!({"includePrivate": false, "full": true})).await;
    assert_eq!(summary["status"], "INCOMPLETE");
    summary
}

#[tokio::test]
async fn what_is_not_a_zip_is_tried_once_more_then_archive_unreadable() {
    let _moto = moto::setup().await;
    let h = stored(
        EmulatorConfig {
            library: Library::seeded(300, 11),
            ..EmulatorConfig::default()
        },
        &[],
        64 * 1024,
    )
    .await;
    h.emulator.push_download_faults("archives", vec![DownloadFault::NotZip]);
    let summary = backup(&h, json!({"includePrivate": false})).await;
    assert_eq!(
        summary["failedFiles"],
        0,
        "the second link served a zip: {}",
        brief(&summary)
    );

    h.emulator
        .push_download_faults("archives", vec![DownloadFault::NotZip, DownloadFault::NotZip]);
    let summary = backup(&h, json!({"includePrivate": false, "full": true})).await;
    let lines = manifest_of(&summary).await;
    let unreadable = lines
        .iter()
        .filter(|l| l.error.as_ref().is_some_and(|e| e.code == "ARCHIVE_UNREADABLE"))
        .count();
    assert!(unreadable > 0, "{}", brief(&summary));
    assert_eq!(summary["status"], "INCOMPLETE");
    let backup_id = summary["backupId"].as_str().unwrap();
    let left: Vec<String> = moto::keys(BUCKET, &format!("{}backups/{backup_id}/archives/", site_prefix())).await;
    assert!(left.is_empty(), "the unreadable object is not kept: {left:?}");
}

#[tokio::test]
async fn private_files_are_downloaded_once_each_and_checked_against_their_size() {
    let _moto = moto::setup().await;
    let library = Library::seeded(2000, 12);
    let private: Vec<String> = library
        .files
        .iter()
        .filter(|f| f.private && f.state == "OK" && f.operation_status == "READY")
        .map(|f| f.id.clone())
        .collect();
    let h = stored(
        EmulatorConfig {
            library,
            ..EmulatorConfig::default()
        },
        &[],
        64 * 1024,
    )
    .await;
    // One private file is served short of the size Wix reports for it: not stored.
    let reported = h.emulator.file(&private[0]).unwrap().size_in_bytes;
    assert!(h.emulator.set_mismatched_bytes(&private[0], vec![1, 2, 3], reported));
    let summary = backup(&h, json!({})).await;
    let lines = manifest_of(&summary).await;
    let line = |id: &str| lines.iter().find(|l| l.file_id == id).unwrap();
    let short = line(&private[0]);
    assert_eq!(short.status, LineStatus::Failed);
    assert_eq!(short.error.as_ref().unwrap().code, "WIX_INVALID_RESPONSE");
    for id in &private[1..] {
        let l = line(id);
        assert_eq!(l.status, LineStatus::Stored, "{id}");
        assert_eq!(
            moto::get(BUCKET, l.object.as_deref().unwrap()).await,
            h.emulator.file_bytes(id).unwrap()
        );
    }
    let file_downloads = h.emulator.download_stats().file_downloads as usize;
    assert_eq!(file_downloads, private.len(), "each link downloaded once");
}

#[tokio::test]
async fn a_backup_cut_off_mid_way_leaves_latest_json_as_it_was() {
    let _moto = moto::setup().await;
    let h = stored(
        EmulatorConfig {
            library: Library::seeded(3000, 13),
            ..EmulatorConfig::default()
        },
        &[],
        64 * 1024,
    )
    .await;
    let first = backup(&h, json!({"includePrivate": false})).await;
    assert_eq!(first["status"], "COMPLETE");
    let latest_key = format!("{}latest.json", site_prefix());
    let before = moto::get(BUCKET, &latest_key).await;
    // The next backup dies in the middle (the process killed, the future dropped).
    h.emulator.set_latency(Duration::from_millis(200));
    let cut = tokio::time::timeout(
        Duration::from_secs(4),
        invoke_raw(&h, &json!({"backup": {"includePrivate": false, "full": true}})),
    )
    .await;
    assert!(cut.is_err(), "the backup was still running");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(moto::get(BUCKET, &latest_key).await, before, "latest.json untouched");
    assert_eq!(moto::open_uploads(BUCKET).await, 0, "its open upload was aborted");
}

/// Keeps every message instead of sending it (SES itself is tested in tests/aws.rs;
/// moto's data dump fails once S3 objects of a reset bucket linger).
#[derive(Default)]
struct Outbox(std::sync::Mutex<Vec<wix_media_archiver::mail::Email>>);

impl wix_media_archiver::mail::Mailer for Outbox {
    fn send<'a>(
        &'a self,
        email: &'a wix_media_archiver::mail::Email,
    ) -> wix_media_archiver::credentials::BoxFuture<'a, Result<(), wix_media_archiver::mail::MailError>> {
        self.0.lock().unwrap().push(email.clone());
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn the_mail_carries_the_summary_and_where_the_backup_is_but_no_link() {
    let _moto = moto::setup().await;
    moto::create_bucket(BUCKET).await;
    let config = EmulatorConfig {
        library: Library::seeded(800, 14),
        ..EmulatorConfig::default()
    };
    let emulator = wix_emulator::Emulator::start(config.clone()).await.unwrap();
    let mut vars = base_env(&emulator, &config);
    vars.insert("STORAGE_BUCKET".into(), BUCKET.into());
    vars.insert("EMAIL_FROM".into(), "backups@example.com".into());
    vars.insert("BACKUP_EMAIL_TO".into(), "owner@example.com".into());
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let wix_media_archiver::config::SecretLocation::Environment(creds) = config.credentials.clone() else {
        unreachable!()
    };
    let outbox = std::sync::Arc::new(Outbox::default());
    let settings = wix_media_archiver::wix::ClientSettings::from_config(&config);
    let app = App::with_client_settings(
        config,
        std::sync::Arc::new(wix_media_archiver::credentials::StaticCredentials(std::sync::Arc::new(
            *creds,
        ))),
        Some(outbox.clone()),
        settings,
    )
    .unwrap()
    .with_s3(moto::s3().await);
    let h = Harness { emulator, app };
    let summary = backup(&h, json!({})).await;
    assert_eq!(summary["emailedTo"], json!(["owner@example.com"]));
    let sent = outbox.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one message");
    let mail = &sent[0];
    assert_eq!(mail.to, vec!["owner@example.com"]);
    for part in [&mail.text, &mail.html] {
        assert!(part.contains(summary["backupId"].as_str().unwrap()), "{part}");
        assert!(
            part.contains("s3.console.aws.amazon.com/s3/buckets/owner-backups"),
            "{part}"
        );
        assert!(
            part.contains(&format!("{} files listed", summary["listedFiles"])),
            "{part}"
        );
        assert!(
            !part.contains("/_emulator/") && !part.contains("token="),
            "no download link: {part}"
        );
    }
    let report: Value =
        serde_json::from_slice(&moto::get(BUCKET, &key_of(summary["report"].as_str().unwrap())).await).unwrap();
    assert_eq!(
        report["emailedTo"],
        json!(["owner@example.com"]),
        "the report records the mail"
    );
}

/// A stored-backup app whose S3 goes through a fault-injecting proxy.
async fn behind_proxy(config: EmulatorConfig, part_size: usize) -> (Harness, common::s3_proxy::S3Proxy) {
    moto::create_bucket(BUCKET).await;
    let proxy = common::s3_proxy::S3Proxy::start(moto::moto_url()).await;
    let emulator = wix_emulator::Emulator::start(config.clone()).await.unwrap();
    let mut vars = base_env(&emulator, &config);
    vars.insert("STORAGE_BUCKET".into(), BUCKET.into());
    let mut config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    config.storage.as_mut().unwrap().part_size = part_size;
    let sdk = wix_media_archiver::aws::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .endpoint_url(&proxy.url)
            .force_path_style(true)
            .build(),
    );
    let app = App::from_config(config).await.unwrap().with_s3(s3);
    (Harness { emulator, app }, proxy)
}

#[tokio::test]
async fn s3_failing_now_and_then_is_retried_and_the_backup_completes() {
    use common::s3_proxy::{Op, S3Fault};
    let _moto = moto::setup().await;
    let (h, proxy) = behind_proxy(
        EmulatorConfig {
            library: Library::seeded_with(1200, 15, 2000..6000),
            ..EmulatorConfig::default()
        },
        64 * 1024,
    )
    .await;
    proxy.fail(Op::UploadPart, S3Fault::Status(500), 1);
    proxy.fail(Op::UploadPart, S3Fault::Drop, 1);
    proxy.fail(Op::UploadPart, S3Fault::Status(503), 1);
    proxy.fail(Op::Complete, S3Fault::Status(500), 1);
    proxy.fail(Op::PutObject, S3Fault::Status(500), 1);
    let summary = backup(&h, json!({})).await;
    assert_eq!(summary["status"], "COMPLETE", "{}", brief(&summary));
    assert_eq!(summary["failedFiles"], 0);
    assert!(proxy.injected(Op::UploadPart) == 3 && proxy.injected(Op::Complete) == 1);
    for l in manifest_of(&summary)
        .await
        .iter()
        .filter(|l| l.status == LineStatus::Stored)
    {
        let expected = h.emulator.file_bytes(&l.file_id).unwrap();
        let got = match &l.entry {
            Some(entry) => zip_contents(l.object.as_deref().unwrap()).await.remove(entry).unwrap(),
            None => moto::get(BUCKET, l.object.as_deref().unwrap()).await,
        };
        assert_eq!(got, expected, "{} is in S3 as it is in Wix", l.file_id);
    }
    assert_eq!(moto::open_uploads(BUCKET).await, 0);
}

#[tokio::test]
async fn s3_refusing_every_part_is_storage_failed_and_never_a_stored_line() {
    use common::s3_proxy::{Op, S3Fault};
    let _moto = moto::setup().await;
    let (h, proxy) = behind_proxy(
        EmulatorConfig {
            library: Library::seeded_with(600, 16, 2000..6000),
            ..EmulatorConfig::default()
        },
        64 * 1024,
    )
    .await;
    proxy.fail(Op::UploadPart, S3Fault::Status(500), 10_000);
    let summary = backup(&h, json!({"includePrivate": false})).await;
    assert_eq!(summary["status"], "INCOMPLETE", "{}", brief(&summary));
    let lines = manifest_of(&summary).await;
    let failed: Vec<&ManifestLine> = lines.iter().filter(|l| l.status == LineStatus::Failed).collect();
    assert!(!failed.is_empty());
    assert!(
        failed
            .iter()
            .all(|l| l.error.as_ref().unwrap().code == "STORAGE_FAILED"),
        "{:?}",
        failed[0].error
    );
    assert!(
        lines.iter().all(|l| l.status != LineStatus::Stored),
        "no STORED line for bytes that are not there"
    );
    let archives: Vec<String> = moto::keys(BUCKET, &site_prefix())
        .await
        .into_iter()
        .filter(|k| k.contains("/archives/"))
        .collect();
    assert!(archives.is_empty(), "{archives:?}");
    assert_eq!(moto::open_uploads(BUCKET).await, 0, "every refused upload was aborted");
}
