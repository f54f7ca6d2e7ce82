//! Nightly backups that cost only the changes, retention that never loses a kept file,
//! `verify`, and restores back into Wix — against the emulator (which really fetches the
//! presigned moto URLs it is given) and moto's S3.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::time::{Duration, SystemTime};

use common::moto;
use common::*;
use serde_json::{json, Value};
use wix_emulator::{EmulatorConfig, Library, NewFile};
use wix_media_archiver::backup::manifest::{self, LineStatus, ManifestLine};
use wix_media_archiver::zipdir;

const BUCKET: &str = "owner-backups";

async fn stored(config: EmulatorConfig, env: &[(&str, &str)]) -> Harness {
    moto::stored_harness(config, BUCKET, env, 256 * 1024).await
}

async fn run(h: &Harness, event: Value) -> Value {
    invoke_raw(h, &event).await.unwrap_or_else(|e| panic!("{event}: {e}"))
}

fn prefix() -> String {
    format!("wix-media-archiver/{}/", EmulatorConfig::default().site_id)
}

async fn manifest_at(key: &str) -> Vec<ManifestLine> {
    manifest::decode(&moto::get(BUCKET, key).await).expect("a readable manifest")
}

async fn manifest_of(summary: &Value) -> Vec<ManifestLine> {
    let uri = summary["manifest"].as_str().unwrap();
    manifest_at(uri.strip_prefix(&format!("s3://{BUCKET}/")).unwrap()).await
}

static OBJECTS: std::sync::Mutex<Option<HashMap<String, Vec<u8>>>> = std::sync::Mutex::new(None);

/// Forgets the objects [`stored_bytes`] read, so the next check reads S3 again.
fn forget_objects() {
    *OBJECTS.lock().unwrap() = None;
}

/// The bytes a STORED line points at, read out of S3 (each object fetched once until
/// [`forget_objects`]).
async fn stored_bytes(line: &ManifestLine) -> Vec<u8> {
    let key = line.object.clone().unwrap();
    let cached = OBJECTS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .get(&key)
        .cloned();
    let object = match cached {
        Some(bytes) => bytes,
        None => {
            let bytes = moto::get(BUCKET, &key).await;
            let mut cache = OBJECTS.lock().unwrap();
            let cache = cache.get_or_insert_with(HashMap::new);
            if cache.len() > 64 {
                cache.clear();
            }
            cache.insert(key, bytes.clone());
            bytes
        }
    };
    match &line.entry {
        None => object,
        Some(entry) => {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(object)).unwrap();
            let mut e = zip.by_name(entry).unwrap();
            let mut out = Vec::new();
            e.read_to_end(&mut out).unwrap();
            out
        }
    }
}

fn ready(f: &wix_emulator::FileRecord) -> bool {
    f.state == "OK" && f.operation_status == "READY"
}

#[tokio::test]
async fn nightly_backups_download_only_what_changed_and_each_manifest_is_complete() {
    let _moto = moto::setup().await;
    let h = stored(
        EmulatorConfig {
            library: Library::seeded(3000, 51),
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    let first = run(&h, json!({"backup": {}})).await;
    assert_eq!(first["status"], "COMPLETE", "{}", brief(&first));
    assert_eq!(first["full"], true);
    let mut previous = manifest_of(&first).await;

    for night in 0..2 {
        // 1 % changed, 1 % new, 1 % deleted.
        let library = h.emulator.library();
        let live: Vec<&wix_emulator::FileRecord> = library.files.iter().filter(|f| ready(f)).collect();
        let mut rng = fastrand::Rng::with_seed(night);
        let mut picks: Vec<&wix_emulator::FileRecord> = live.clone();
        rng.shuffle(&mut picks);
        let (changed, rest) = picks.split_at(30);
        let (deleted, _) = rest.split_at(30);
        for f in changed {
            assert!(h.emulator.change_file_content(&f.id));
        }
        for f in deleted {
            assert!(h.emulator.delete_file(&f.id));
        }
        let added = h
            .emulator
            .add_files(
                (0..30)
                    .map(|i| NewFile {
                        display_name: format!("night-{night}-{i}.jpg"),
                        private: i % 10 == 0,
                        size_in_bytes: 3000 + i,
                        ..NewFile::default()
                    })
                    .collect(),
            )
            .unwrap();
        h.emulator.take_download_stats();
        let summary = run(&h, json!({"backup": {}})).await;
        assert_eq!(summary["status"], "COMPLETE", "{}", brief(&summary));
        assert_eq!(summary["full"], false, "incremental");
        assert_eq!(summary["changedFiles"], 30);
        assert_eq!(summary["newFiles"], 30);
        assert_eq!(summary["removedFiles"], 30);
        assert_eq!(summary["storedFiles"], 60, "only the changed and the new");
        let fresh: u64 =
            changed.iter().map(|f| f.size_in_bytes).sum::<u64>() + added.iter().map(|f| f.size_in_bytes).sum::<u64>();
        let stats = h.emulator.take_download_stats();
        let downloaded = stats.bytes_sent();
        assert!(
            downloaded >= fresh && downloaded < fresh + 60 * 400,
            "downloaded {downloaded} bytes for {fresh} changed and new bytes"
        );
        let private_fresh = changed.iter().filter(|f| f.private).count() + added.iter().filter(|f| f.private).count();
        assert_eq!(
            stats.file_downloads as usize, private_fresh,
            "only the changed and new private files"
        );

        // Complete: every listed file once; unchanged files point at the earlier backup.
        let lines = manifest_of(&summary).await;
        let listed = h.emulator.library().files.len();
        assert_eq!(lines.len(), listed);
        assert_eq!(lines.iter().map(|l| &l.file_id).collect::<HashSet<_>>().len(), listed);
        let before: HashMap<&str, &ManifestLine> = previous.iter().map(|l| (l.file_id.as_str(), l)).collect();
        let changed_ids: HashSet<&str> = changed.iter().map(|f| f.id.as_str()).collect();
        for l in lines.iter().filter(|l| l.status == LineStatus::Stored) {
            match before.get(l.file_id.as_str()) {
                Some(old) if !changed_ids.contains(l.file_id.as_str()) => {
                    assert_eq!(
                        (&l.backup_id, &l.object, &l.entry),
                        (&old.backup_id, &old.object, &old.entry)
                    );
                }
                _ => assert_eq!(l.backup_id.as_deref(), summary["backupId"].as_str()),
            }
            assert_eq!(
                stored_bytes(l).await,
                h.emulator.file_bytes(&l.file_id).unwrap(),
                "{}",
                l.file_id
            );
        }
        for f in deleted {
            assert!(
                !lines.iter().any(|l| l.file_id == f.id),
                "removed files leave the manifest"
            );
        }
        let verified = run(&h, json!({"verify": {"backupId": "latest"}})).await;
        assert_eq!(verified["ok"], true, "{}", brief(&verified));
        assert_eq!(verified["backupId"], summary["backupId"]);
        previous = lines;
    }
    // A full one when asked.
    let full = run(&h, json!({"backup": {"full": true}})).await;
    assert_eq!(full["full"], true);
    assert_eq!(full["unchangedFiles"], 0);
}

#[tokio::test]
async fn an_unreadable_previous_manifest_means_a_full_backup_with_a_warning() {
    let _moto = moto::setup().await;
    let h = stored(
        EmulatorConfig {
            library: Library::seeded(500, 52),
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    run(&h, json!({"backup": {}})).await;
    let s3 = moto::s3().await;
    for (broken, needle) in [
        (b"not gzip at all".to_vec(), "not readable"),
        (Vec::new(), "not readable"),
    ] {
        let latest: Value =
            serde_json::from_slice(&moto::get(BUCKET, &format!("{}latest.json", prefix())).await).unwrap();
        let manifest_key = latest["manifest"].as_str().unwrap().to_owned();
        s3.put_object()
            .bucket(BUCKET)
            .key(&manifest_key)
            .body(broken.into())
            .send()
            .await
            .unwrap();
        let summary = run(&h, json!({"backup": {}})).await;
        assert_eq!(summary["full"], true, "{}", brief(&summary));
        let warnings = summary["warnings"].to_string();
        assert!(warnings.contains(needle), "{warnings}");
        assert_eq!(manifest_of(&summary).await.len(), 500, "nothing dropped");
        // The new backup is complete: the next one builds on it again.
        let next = run(&h, json!({"backup": {}})).await;
        assert_eq!(next["full"], false);
    }
    // latest.json pointing at another site's prefix.
    s3.put_object()
        .bucket(BUCKET)
        .key(format!("{}latest.json", prefix()))
        .body(
            json!({"backupId": "20260101T000000Z-00000000", "completedAt": "2026-01-01T00:00:00Z",
                   "manifest": "wix-media-archiver/another-site/backups/x/manifest.jsonl.gz", "files": 1, "bytes": 1,
                   "fullBackupId": "x", "fullCompletedAt": "2026-11-30T00:00:00Z"})
            .to_string()
            .into_bytes()
            .into(),
        )
        .send()
        .await
        .unwrap();
    let summary = run(&h, json!({"backup": {}})).await;
    assert_eq!(summary["full"], true);
    assert!(summary["warnings"].to_string().contains("outside this site's prefix"));
}

/// Copies a backup's objects under an old-dated backup ID and rewrites its manifest and
/// latest.json to point there: the backup now looks `days` old.
async fn age_backup(summary: &Value, days: u64) -> String {
    let id = summary["backupId"].as_str().unwrap();
    let at = SystemTime::now() - Duration::from_secs(days * 86_400);
    let old_id = format!(
        "{}-{}",
        humantime::format_rfc3339_seconds(at)
            .to_string()
            .replace(['-', ':'], ""),
        &id[id.len() - 8..]
    );
    let s3 = moto::s3().await;
    let from = format!("{}backups/{id}/", prefix());
    let to = format!("{}backups/{old_id}/", prefix());
    for key in moto::keys(BUCKET, &from).await {
        let body = moto::get(BUCKET, &key).await;
        let new_key = key.replace(&from, &to);
        let body = if key.ends_with("manifest.jsonl.gz") {
            let mut lines = manifest::decode(&body).unwrap();
            for l in &mut lines {
                if l.backup_id.as_deref() == Some(id) {
                    l.backup_id = Some(old_id.clone());
                    l.object = l.object.as_ref().map(|o| o.replace(&from, &to));
                }
            }
            manifest::encode(&lines).unwrap()
        } else {
            body
        };
        s3.put_object()
            .bucket(BUCKET)
            .key(&new_key)
            .body(body.into())
            .send()
            .await
            .unwrap();
        s3.delete_object().bucket(BUCKET).key(&key).send().await.unwrap();
    }
    let mut latest: Value =
        serde_json::from_slice(&moto::get(BUCKET, &format!("{}latest.json", prefix())).await).unwrap();
    latest["backupId"] = json!(old_id);
    latest["manifest"] = json!(format!("{to}manifest.jsonl.gz"));
    latest["fullBackupId"] = json!(old_id);
    latest["fullCompletedAt"] =
        json!(humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(86_400)).to_string());
    s3.put_object()
        .bucket(BUCKET)
        .key(format!("{}latest.json", prefix()))
        .body(latest.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    old_id
}

/// Every STORED line of every manifest in the bucket points at bytes that are there.
async fn every_kept_line_is_there() -> usize {
    forget_objects();
    let mut checked = 0;
    for key in moto::keys(BUCKET, &format!("{}backups/", prefix())).await {
        if !key.ends_with("manifest.jsonl.gz") {
            continue;
        }
        for l in manifest_at(&key)
            .await
            .iter()
            .filter(|l| l.status == LineStatus::Stored)
        {
            assert!(
                !stored_bytes(l).await.is_empty() || l.size_in_bytes == Some(0),
                "{}",
                l.file_id
            );
            checked += 1;
        }
    }
    checked
}

#[tokio::test]
async fn retention_prunes_old_backups_but_never_what_a_kept_one_points_at_nor_latest() {
    let _moto = moto::setup().await;
    let h = stored(
        EmulatorConfig {
            library: Library::seeded(2500, 53),
            ..EmulatorConfig::default()
        },
        &[("BACKUP_RETENTION_DAYS", "90")],
    )
    .await;
    let first = run(&h, json!({"backup": {}})).await;
    let old_id = age_backup(&first, 200).await;
    // An old crashed backup (objects, no manifest) and an old complete one nobody needs.
    let s3 = moto::s3().await;
    let stray = format!("{}backups/20240101T000000Z-deadbeef/archives/00001.zip", prefix());
    s3.put_object()
        .bucket(BUCKET)
        .key(&stray)
        .body(b"partial".to_vec().into())
        .send()
        .await
        .unwrap();

    // Every file of one archive changes: that old archive is no longer needed.
    let lines = manifest_at(&format!("{}backups/{old_id}/manifest.jsonl.gz", prefix())).await;
    let first_archive = lines
        .iter()
        .find(|l| l.object.as_deref().is_some_and(|o| o.ends_with("archives/00001.zip")))
        .unwrap()
        .object
        .clone()
        .unwrap();
    for l in lines.iter().filter(|l| l.object.as_deref() == Some(&first_archive)) {
        h.emulator.change_file_content(&l.file_id);
    }
    // The old backup is latest: kept by this run even though old (and built on).
    let second = run(&h, json!({"backup": {}})).await;
    assert_eq!(second["status"], "COMPLETE", "{}", brief(&second));
    assert_eq!(second["full"], false);
    let report: Value = serde_json::from_slice(
        &moto::get(
            BUCKET,
            second["report"]
                .as_str()
                .unwrap()
                .trim_start_matches("s3://owner-backups/"),
        )
        .await,
    )
    .unwrap();
    let pruned: Vec<&str> = report["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["backupId"].as_str().unwrap())
        .collect();
    assert_eq!(
        pruned,
        vec!["20240101T000000Z-deadbeef"],
        "latest was not pruned; the stray one was"
    );
    assert!(moto::keys(BUCKET, &stray).await.is_empty());
    assert!(
        !moto::keys(BUCKET, &first_archive).await.is_empty(),
        "the latest's objects stay"
    );

    // Now the old backup is no longer latest: its unneeded archive goes, the rest stays.
    let third = run(&h, json!({"backup": {}})).await;
    assert_eq!(third["status"], "COMPLETE");
    let report: Value = serde_json::from_slice(
        &moto::get(
            BUCKET,
            third["report"]
                .as_str()
                .unwrap()
                .trim_start_matches("s3://owner-backups/"),
        )
        .await,
    )
    .unwrap();
    let pruned = &report["pruned"][0];
    assert_eq!(pruned["backupId"], old_id);
    assert!(pruned["deletedObjects"].as_u64().unwrap() >= 1);
    assert!(
        pruned["keptObjects"].as_u64().unwrap() >= 1,
        "what the new manifests point at is kept"
    );
    assert!(
        moto::keys(BUCKET, &first_archive).await.is_empty(),
        "the unneeded archive went"
    );
    assert!(every_kept_line_is_there().await > 2000);
    let verified = run(&h, json!({"verify": {}})).await;
    assert_eq!(verified["ok"], true, "{}", brief(&verified));
}

#[tokio::test]
async fn a_crash_half_way_through_pruning_loses_no_kept_file() {
    use common::s3_proxy::{Op, S3Fault, S3Proxy};
    let _moto = moto::setup().await;
    let h = stored(
        EmulatorConfig {
            library: Library::seeded(2500, 54),
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    let first = run(&h, json!({"backup": {}})).await;
    let old_id = age_backup(&first, 400).await;
    for l in manifest_at(&format!("{}backups/{old_id}/manifest.jsonl.gz", prefix()))
        .await
        .iter()
        .take(1500)
    {
        h.emulator.change_file_content(&l.file_id);
    }
    let second = run(&h, json!({"backup": {}})).await;
    assert_eq!(second["status"], "COMPLETE");
    assert_eq!(second["full"], false, "it builds on the old backup's objects");
    let current_id = second["backupId"].as_str().unwrap().to_owned();
    let current = manifest_of(&second).await;
    let carried = current
        .iter()
        .filter(|l| l.backup_id.as_deref() == Some(old_id.as_str()))
        .count();
    assert!(carried > 500, "{carried} lines point into the old backup");

    // Prune through a proxy that lets the first DeleteObjects through and refuses the rest:
    // the process stops half-way, as far as S3 can tell.
    let proxy = S3Proxy::start(moto::moto_url()).await;
    let sdk = wix_media_archiver::aws::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .endpoint_url(&proxy.url)
            .force_path_style(true)
            .build(),
    );
    let store = wix_media_archiver::storage::Store::new(
        s3,
        h.app.config.storage.clone().unwrap(),
        &EmulatorConfig::default().site_id,
    );
    proxy.fail(Op::DeleteObjects, S3Fault::Pass, 1);
    proxy.fail(Op::DeleteObjects, S3Fault::Status(500), 100);
    let prune = |store| {
        let current = &current;
        let id = current_id.clone();
        async move {
            wix_media_archiver::backup::retention::prune(store, (&id, current), Some(&id), 90, SystemTime::now()).await
        }
    };
    let cut = prune(&store).await;
    assert!(cut.is_err(), "pruning stopped half-way");
    assert!(proxy.injected(Op::DeleteObjects) >= 1);
    proxy.clear();
    forget_objects();
    for l in current.iter().filter(|l| l.status == LineStatus::Stored) {
        assert_eq!(
            stored_bytes(l).await,
            h.emulator.file_bytes(&l.file_id).unwrap(),
            "{} is intact",
            l.file_id
        );
    }
    // Pruning again finishes the job and still keeps every kept file.
    let done = prune(&store).await.expect("pruned");
    assert_eq!(done.len(), 1);
    assert!(
        moto::keys(BUCKET, &format!("{}backups/{old_id}/manifest.jsonl.gz", prefix()))
            .await
            .is_empty()
    );
    let verified = run(&h, json!({"verify": {"backupId": current_id}})).await;
    assert_eq!(verified["ok"], true, "{}", brief(&verified));
    assert_eq!(
        verified["checkedFiles"].as_u64().unwrap() as usize,
        current.iter().filter(|l| l.status == LineStatus::Stored).count()
    );
}

#[tokio::test]
async fn deleted_files_come_back_byte_identical_in_their_folders_and_a_second_restore_does_nothing() {
    let _moto = moto::setup().await;
    let h = stored(
        EmulatorConfig {
            library: Library::seeded(2000, 55),
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    // A nested folder of our own, two levels down, to delete as a whole later.
    let top = h
        .emulator
        .library()
        .folders
        .iter()
        .find(|f| f.parent_folder_id == "media-root")
        .unwrap()
        .clone();
    let middle = h.emulator.add_folder("Summer 2026", &top.id).unwrap();
    let leaf = h.emulator.add_folder("Sale/Week 1", &middle.id).unwrap();
    for i in 0..8 {
        h.emulator
            .add_file(NewFile {
                display_name: format!("banner-{i}.png"),
                parent_folder_id: leaf.id.clone(),
                private: i == 3,
                size_in_bytes: 1500 + i,
                ..NewFile::default()
            })
            .unwrap();
    }
    let backup = run(&h, json!({"backup": {}})).await;
    assert_eq!(backup["status"], "COMPLETE", "{}", brief(&backup));
    let lines = manifest_of(&backup).await;
    let by_id: HashMap<&str, &ManifestLine> = lines.iter().map(|l| (l.file_id.as_str(), l)).collect();
    // 100 files: private ones, ones in nested folders, and a whole leaf folder with what is in
    // it. Not OTHER ones: Wix's Import File refuses that media type (see below).
    let library = h.emulator.library();
    let importable = |f: &wix_emulator::FileRecord| {
        ready(f) && f.media_type != "OTHER" && by_id.get(f.id.as_str()).is_some_and(|l| l.status == LineStatus::Stored)
    };
    let mut gone: Vec<wix_emulator::FileRecord> = library
        .files
        .iter()
        .filter(|f| f.parent_folder_id == leaf.id)
        .cloned()
        .collect();
    gone.extend(
        library
            .files
            .iter()
            .filter(|f| f.private && importable(f))
            .take(10)
            .cloned(),
    );
    for f in library
        .files
        .iter()
        .filter(|f| importable(f) && !f.private && f.parent_folder_id != leaf.id)
    {
        if gone.len() >= 100 {
            break;
        }
        gone.push(f.clone());
    }
    assert_eq!(gone.len(), 100);
    let originals: HashMap<String, Vec<u8>> = gone
        .iter()
        .map(|f| (f.id.clone(), h.emulator.file_bytes(&f.id).unwrap()))
        .collect();
    assert!(h.emulator.delete_folder(&leaf.id), "the folder and what is in it");
    for f in &gone {
        h.emulator.delete_file(&f.id);
    }
    let nested_folder = leaf;
    let before = h.emulator.file_count();

    let report = run(&h, json!({"restore": {"onlyMissing": true}})).await;
    let restored: HashMap<&str, &Value> = report["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["fileId"].as_str().unwrap(), r))
        .collect();
    let expected: HashSet<&str> = gone.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        restored.keys().copied().collect::<HashSet<_>>(),
        expected,
        "{}",
        brief(&report)
    );
    assert_eq!(report["failedFiles"], 0, "{}", brief(&report));
    assert_eq!(
        report["selectedFiles"].as_u64().unwrap() as usize,
        report["restored"].as_array().unwrap().len() + report["skipped"].as_array().unwrap().len(),
        "every selected file once"
    );
    for f in &gone {
        let r = restored[f.id.as_str()];
        let new_id = r["newFileId"].as_str().unwrap();
        let now = h.emulator.file(new_id).expect("the new file");
        assert_eq!(
            h.emulator.file_bytes(new_id).unwrap(),
            originals[&f.id],
            "{} byte for byte",
            f.id
        );
        assert_eq!(now.display_name, f.display_name);
        assert_eq!(now.private, f.private);
        assert_eq!(now.operation_status, "READY");
        assert_eq!(r["folderPath"].as_str().unwrap(), by_id[f.id.as_str()].folder_path);
    }
    assert_eq!(h.emulator.file_count(), before + 100);
    // The folder was made again, where it was.
    let folders = h.emulator.library().folders;
    assert!(folders
        .iter()
        .any(|x| x.display_name == nested_folder.display_name && x.parent_folder_id == nested_folder.parent_folder_id));
    let imports = h.emulator.imports();
    assert_eq!(imports.len(), 100);
    assert!(
        moto::keys(BUCKET, &format!("{}restore-tmp/", prefix()))
            .await
            .is_empty(),
        "temporary objects deleted"
    );

    // OTHER files cannot go back through Import File: they fail, named, and nothing else.
    let other = lines
        .iter()
        .find(|l| l.media_type == "OTHER" && l.status == LineStatus::Stored && !l.private)
        .expect("the seeded library holds OTHER files");
    h.emulator.delete_file(&other.file_id);
    let refused = run(&h, json!({"restore": {"fileIds": [other.file_id]}})).await;
    assert_eq!(
        refused["failed"][0]["error"]["code"],
        "WIX_REJECTED",
        "{}",
        brief(&refused)
    );

    let again = run(&h, json!({"restore": {}})).await;
    assert_eq!(again["restoredFiles"], 0, "{}", brief(&again));
    assert_eq!(again["failedFiles"], 1, "only the OTHER file, again: {}", brief(&again));
    assert_eq!(h.emulator.imports().len(), 100, "nothing imported twice");
}

#[tokio::test]
async fn a_corrupted_object_is_named_by_verify_and_fails_its_files_restore_alone() {
    let _moto = moto::setup().await;
    let h = stored(
        EmulatorConfig {
            library: Library::seeded(1500, 56),
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    let backup = run(&h, json!({"backup": {"includePrivate": false}})).await;
    let lines = manifest_of(&backup).await;
    let stored: Vec<&ManifestLine> = lines.iter().filter(|l| l.status == LineStatus::Stored).collect();
    let victim = stored[0].object.clone().unwrap();
    // Flip bytes inside one file's entry data (the directory stays readable).
    let in_victim = *stored
        .iter()
        .find(|l| l.object.as_deref() == Some(&victim) && l.entry.is_some())
        .unwrap();
    let mut bytes = moto::get(BUCKET, &victim).await;
    let tail = &bytes[bytes.len().saturating_sub(zipdir::TAIL_LEN as usize)..];
    let zipdir::Located::Directory(dir) = zipdir::locate(tail, bytes.len() as u64).unwrap() else {
        panic!("a small zip")
    };
    let entries = zipdir::parse_directory(&bytes[dir.offset as usize..(dir.offset + dir.size) as usize], &dir).unwrap();
    let entry = entries
        .iter()
        .find(|e| Some(e.name.as_str()) == in_victim.entry.as_deref())
        .unwrap();
    let at = entry.local_header_offset as usize;
    let data = zipdir::data_offset(entry, &bytes[at..at + 30]).unwrap() as usize;
    for b in &mut bytes[data..data + 10.min(entry.compressed_size as usize)] {
        *b ^= 0xff;
    }
    moto::s3()
        .await
        .put_object()
        .bucket(BUCKET)
        .key(&victim)
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
        .body(bytes.into())
        .send()
        .await
        .unwrap();
    let verified = run(&h, json!({"verify": {"backupId": backup["backupId"]}})).await;
    assert_eq!(verified["ok"], false);
    let problem = &verified["problems"][0];
    assert_eq!(problem["object"], victim);
    assert_eq!(problem["problem"], "CHECKSUM");

    // Delete that file and one of a good archive; restore both.
    let good = stored.iter().find(|l| l.object.as_deref() != Some(&victim)).unwrap();
    h.emulator.delete_file(&in_victim.file_id);
    h.emulator.delete_file(&good.file_id);
    let report = run(&h, json!({"restore": {"fileIds": [in_victim.file_id, good.file_id]}})).await;
    assert_eq!(report["restoredFiles"], 1, "{}", brief(&report));
    assert_eq!(report["restored"][0]["fileId"], good.file_id);
    assert_eq!(report["failed"][0]["fileId"], in_victim.file_id);
    assert_eq!(report["failed"][0]["error"]["code"], "CORRUPT", "{}", brief(&report));
}

#[tokio::test]
async fn restore_and_verify_refuse_bad_options_before_any_call() {
    let _moto = moto::setup().await;
    let h = stored(EmulatorConfig::default(), &[]).await;
    for event in [
        json!({"restore": {"backupId": "../../etc"}}),
        json!({"restore": {"fileIds": ["a/b"]}}),
        json!({"restore": {"folderPath": "Shop"}}),
        json!({"restore": {"onlyMissing": "yes"}}),
        json!({"restore": {"surprise": 1}}),
        json!({"restore": 5}),
        json!({"verify": {"backupId": 7}}),
        json!({"verify": {"other": true}}),
    ] {
        let err = invoke_raw(&h, &event).await.unwrap_err();
        assert_eq!(err.error_type(), "InvalidOptions", "{event}");
    }
    assert!(h.emulator.api_calls().is_empty());
    let err = invoke_raw(&h, &json!({"verify": {}})).await.unwrap_err();
    assert_eq!(err.error_type(), "VerifyFailed", "no backup yet: {err}");
}
