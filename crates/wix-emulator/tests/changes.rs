//! A library that changes while the emulator runs: content, added, trashed and deleted
//! files, folders over the API; and a million files (ignored test, with timings:
//! `cargo test -p wix-emulator --profile bench --test changes -- --ignored --nocapture`).

mod common;

use std::collections::HashSet;
use std::time::Instant;

use common::{violations, zip_entries, Site};
use serde_json::{json, Value};
use wix_emulator::{EmulatorConfig, Library, NewFile, MEDIA_ROOT, TRASH_ROOT};

fn descriptor(site: &Site, id: &str) -> Value {
    site.emu.file_descriptor(id).expect("a known file")
}

#[tokio::test]
async fn changed_content_has_new_bytes_hash_and_date() {
    let site = Site::start(EmulatorConfig::default()).await;
    let lib = site.emu.library();
    let file = lib.files.iter().find(|f| !f.private && f.state == "OK").unwrap();
    let before = (site.emu.file_bytes(&file.id).unwrap(), descriptor(&site, &file.id));
    assert_eq!(Some(&before.0), lib.content(&file.id).as_ref());
    let old_link = site.archive_url(std::slice::from_ref(&file.id)).await;

    assert!(site.emu.change_file_content(&file.id));
    let after = (site.emu.file_bytes(&file.id).unwrap(), descriptor(&site, &file.id));
    assert_eq!(after.0.len(), before.0.len());
    assert_ne!(after.0, before.0);
    assert_ne!(after.1["hash"], before.1["hash"]);
    assert!(after.1["updatedDate"].as_str() > before.1["updatedDate"].as_str());
    assert!(after.1["hash"].as_str().unwrap().len() <= 100);

    // A link keeps what it was made of; a new one serves the new bytes.
    let old = zip_entries(&site.download(&old_link).await);
    assert_eq!(old[0].1, before.0);
    let new = zip_entries(
        &site
            .download(&site.archive_url(std::slice::from_ref(&file.id)).await)
            .await,
    );
    assert_eq!(new[0].1, after.0);
    // The newest change comes first in a search.
    let (_, page) = site.post("/site-media/v1/files/search", json!({})).await;
    assert_eq!(page["files"][0]["id"], file.id.as_str());
    let (_, got) = site
        .post("/site-media/v1/files/get-files", json!({ "fileIds": [file.id] }))
        .await;
    assert_eq!(got["files"][0]["hash"], after.1["hash"]);

    assert!(site.emu.set_file_bytes(&file.id, b"exactly this".to_vec()));
    assert_eq!(site.emu.file_bytes(&file.id).unwrap(), b"exactly this");
    assert_eq!(descriptor(&site, &file.id)["sizeInBytes"], "12");
    let link = site.file_link(&file.id).await;
    assert_eq!(site.download(&link).await, b"exactly this");
    assert!(!site.emu.change_file_content("abcdef_nope"));
}

#[tokio::test]
async fn added_trashed_and_deleted_files() {
    let site = Site::start(EmulatorConfig::default()).await;
    let folder = site.emu.library().folders[0].clone();
    let added = site
        .emu
        .add_files(vec![
            NewFile {
                display_name: "new.mp3".into(),
                parent_folder_id: folder.id.clone(),
                media_type: "AUDIO".into(),
                size_in_bytes: 5000,
                ..NewFile::default()
            },
            NewFile {
                display_name: "secret.pdf".into(),
                media_type: "DOCUMENT".into(),
                private: true,
                bytes: Some(b"%PDF-1.4 secret".to_vec()),
                ..NewFile::default()
            },
        ])
        .unwrap();
    assert!(added[0].id.ends_with(".mp3") && added[1].id.ends_with(".pdf"));
    assert_eq!(
        (added[0].parent_folder_id.as_str(), added[0].size_in_bytes),
        (folder.id.as_str(), 5000)
    );
    assert!(added[1].private);
    assert_eq!(site.emu.file_count(), 252);
    let (_, listed) = site
        .get(&format!(
            "/site-media/v1/files?parentFolderId={}&paging.limit=100",
            folder.id
        ))
        .await;
    assert_eq!(listed["files"][0]["id"], added[0].id.as_str(), "newest first");
    let link = site.file_link(&added[1].id).await;
    assert_eq!(site.download(&link).await, b"%PDF-1.4 secret");
    assert!(site
        .emu
        .add_file(NewFile {
            parent_folder_id: "fnope".into(),
            ..NewFile::default()
        })
        .is_err());

    // Trash: out of the media root, into the trash root, still known by id.
    assert!(site.emu.trash_file(&added[0].id));
    let d = descriptor(&site, &added[0].id);
    assert_eq!(
        (d["parentFolderId"].as_str(), d["state"].as_str()),
        (Some(TRASH_ROOT), Some("DELETED"))
    );
    let media: HashSet<String> = site
        .search_all(json!({}))
        .await
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!media.contains(&added[0].id) && media.contains(&added[1].id));
    let trash = site.search_all(json!({ "rootFolder": "TRASH_ROOT" })).await;
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0]["id"], added[0].id.as_str());

    // Deleted: unknown everywhere.
    assert!(site.emu.delete_file(&added[1].id));
    assert!(site.emu.file(&added[1].id).is_none());
    let (status, body) = site
        .post("/site-media/v1/files/get-files", json!({ "fileIds": [added[1].id] }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(violations(&body)[0]["ruleName"], "RESOURCE_NOT_FOUND");
    assert_eq!(site.archive(std::slice::from_ref(&added[1].id)).await.0, 400);
    assert_eq!(site.emu.file_count(), 251);
    assert!(!site.emu.delete_file(&added[1].id));
}

#[tokio::test]
async fn folders_created_got_listed_searched_and_deleted() {
    let site = Site::start(EmulatorConfig {
        library: Library::seeded(12_000, 9),
        ..EmulatorConfig::default()
    })
    .await;
    let lib = site.emu.library();
    let total: u64 = lib.files.iter().map(|f| f.size_in_bytes).sum();
    assert!(
        (20_000_000..40_000_000).contains(&total),
        "12,000 seeded files hold {total} bytes"
    );
    assert_eq!(lib.folders.len(), 200);

    let (status, body) = site
        .post("/site-media/v1/folders", json!({ "displayName": "Restored" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let created = body["folder"].clone();
    assert_eq!(
        (created["parentFolderId"].as_str(), created["state"].as_str()),
        (Some(MEDIA_ROOT), Some("OK"))
    );
    let id = created["id"].as_str().unwrap().to_string();
    let (status, body) = site
        .post(
            "/site-media/v1/folders",
            json!({ "displayName": "2024", "parentFolderId": id }),
        )
        .await;
    assert_eq!(status, 200);
    let child = body["folder"]["id"].as_str().unwrap().to_string();
    let (_, got) = site.get(&format!("/site-media/v1/folders/{child}")).await;
    assert_eq!(
        (
            got["folder"]["displayName"].as_str(),
            got["folder"]["parentFolderId"].as_str()
        ),
        (Some("2024"), Some(id.as_str()))
    );
    let (_, listed) = site.get(&format!("/site-media/v1/folders?parentFolderId={id}")).await;
    assert_eq!(listed["folders"][0]["id"], child.as_str());
    for bad in [
        json!({}),
        json!({ "displayName": "" }),
        json!({ "displayName": "x", "parentFolderId": "fnope" }),
    ] {
        let (status, body) = site.post("/site-media/v1/folders", bad).await;
        assert_eq!(status, 400);
        assert!(!violations(&body).is_empty());
    }

    // Every folder of the root, in pages of 100: one call per 100 folders.
    site.emu.clear_calls();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = site
            .post(
                "/site-media/v1/folders/search",
                json!({ "rootFolder": "MEDIA_ROOT", "paging": { "limit": 100, "cursor": cursor } }),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["folders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap().to_string()),
        );
        match page["nextCursor"]["cursors"]["next"].as_str() {
            Some(next) if !next.is_empty() => cursor = next.to_string(),
            _ => break,
        }
    }
    assert_eq!(site.emu.api_calls().len(), 3);
    let mut expected: Vec<String> = lib.folders.iter().map(|f| f.id.clone()).collect();
    expected.extend([id.clone(), child.clone()]);
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
    let (_, named) = site
        .post("/site-media/v1/folders/search", json!({ "search": "restor" }))
        .await;
    assert_eq!(named["folders"].as_array().unwrap().len(), 1);

    // Trashed, then deleted with what was in it.
    let gallery = lib.folders.iter().find(|f| f.parent_folder_id == MEDIA_ROOT).unwrap();
    let inside: Vec<String> = lib
        .files
        .iter()
        .filter(|f| f.parent_folder_id == gallery.id)
        .map(|f| f.id.clone())
        .collect();
    assert!(site.emu.trash_folder(&gallery.id));
    let (_, trash) = site
        .post("/site-media/v1/folders/search", json!({ "rootFolder": "TRASH_ROOT" }))
        .await;
    assert_eq!(trash["folders"][0]["id"], gallery.id.as_str());
    let trashed = site.search_all(json!({ "rootFolder": "TRASH_ROOT" })).await;
    assert!(trashed.len() >= inside.len());
    assert!(site.emu.delete_folder(&gallery.id));
    assert_eq!(site.get(&format!("/site-media/v1/folders/{}", gallery.id)).await.0, 404);
    assert!(inside.iter().all(|f| site.emu.file(f).is_none()));
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a million files: run with --profile bench --nocapture for the timings"]
async fn a_million_files() {
    let rss_before = rss_mb();
    let started = Instant::now();
    let library = Library::seeded(1_000_000, 1);
    let built = started.elapsed();
    let id = library.files[123_456].id.clone();
    let rss_library = rss_mb();
    let started = Instant::now();
    let site = Site::start(EmulatorConfig {
        library,
        ..EmulatorConfig::default()
    })
    .await;
    let loaded = started.elapsed();
    let rss_emulator = rss_mb();

    let search = |cursor: &str| json!({ "paging": { "limit": 100, "cursor": cursor } });
    let started = Instant::now();
    let (status, first) = site.post("/site-media/v1/files/search", search("")).await;
    let first_page = started.elapsed();
    assert_eq!(status, 200);
    let mut cursor = first["nextCursor"]["cursors"]["next"].as_str().unwrap().to_string();
    let started = Instant::now();
    let pages = 200;
    for _ in 0..pages {
        let (_, page) = site.post("/site-media/v1/files/search", search(&cursor)).await;
        assert_eq!(page["files"].as_array().unwrap().len(), 100);
        cursor = page["nextCursor"]["cursors"]["next"].as_str().unwrap().to_string();
    }
    let per_page = started.elapsed() / pages;
    let started = Instant::now();
    let (status, _) = site
        .post("/site-media/v1/files/get-files", json!({ "fileIds": [id] }))
        .await;
    assert_eq!(status, 200);
    let lookup = started.elapsed();
    println!(
        "Library::seeded(1_000_000): {built:.2?} (RSS {rss_before:.0} -> {rss_library:.0} MB); \
         emulator start: {loaded:.2?} (RSS {rss_emulator:.0} MB); first search page (index built): {first_page:.2?}; \
         next pages: {per_page:.2?} each; get-files of one id: {lookup:.2?}; RSS at the end {:.0} MB",
        rss_mb()
    );
}
