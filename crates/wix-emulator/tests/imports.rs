//! Import File: the emulator fetches the URL, and the file goes PENDING → READY (or FAILED).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{violations, zip_entries, Site};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wix_emulator::{EmulatorConfig, ImportOutcome, Library, MEDIA_ROOT};

/// A plain-http origin (standing in for a presigned S3 URL) that answers every GET with `status` and `body`, and keeps each request's head.
async fn origin(status: u16, body: &'static [u8]) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut byte = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut byte).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&byte[..n]),
                }
            }
            seen.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body).await;
        }
    });
    (base, heads)
}

async fn file_by_id(site: &Site, id: &str) -> Value {
    let (status, body) = site
        .get(&format!("/site-media/v1/files/get-file-by-id?fileId={id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["file"].clone()
}

/// Polls Get File By Id until the file leaves PENDING.
async fn settled(site: &Site, id: &str) -> Value {
    for _ in 0..100 {
        let file = file_by_id(site, id).await;
        if file["operationStatus"] != "PENDING" {
            return file;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id} stayed PENDING");
}

#[tokio::test]
async fn imported_file_is_fetched_and_served() {
    let site = Site::start(EmulatorConfig {
        library: Library::flat(3),
        ..EmulatorConfig::default()
    })
    .await;
    let (base, heads) = origin(200, b"restored bytes of a photo").await;
    let url = format!("{base}/backup-bucket/photos/leon.jpg?X-Amz-Signature=abc%2Bdef&X-Amz-Expires=600");
    let folder = site.emu.add_folder("Photos", MEDIA_ROOT).unwrap();
    let (status, body) = site
        .post(
            "/site-media/v1/files/import",
            json!({
                "url": url,
                "mediaType": "IMAGE",
                "displayName": "leon.jpg",
                "parentFolderId": folder.id,
                "private": true,
                "mimeType": "image/jpeg",
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let file = &body["file"];
    let id = file["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("a1b2c3_") && id.ends_with("~mv2.jpg"), "{id}");
    assert_eq!(file["operationStatus"], "PENDING");
    assert!(file["sizeInBytes"].is_null());
    assert_eq!(
        (file["private"].as_bool(), file["parentFolderId"].as_str()),
        (Some(true), Some(folder.id.as_str()))
    );
    assert_eq!(file["sourceUrl"], url.as_str());

    let ready = settled(&site, &id).await;
    assert_eq!(ready["operationStatus"], "READY");
    assert_eq!(ready["sizeInBytes"], "25");
    assert_eq!(ready["mediaType"], "IMAGE");
    assert_eq!(site.emu.file_bytes(&id).unwrap(), b"restored bytes of a photo");
    // The URL was fetched as given, Host and query included.
    let head = heads.lock().unwrap()[0].clone();
    let path = url.strip_prefix(&base).unwrap();
    assert!(head.starts_with(&format!("GET {path} HTTP/1.1\r\n")), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains(&format!("host: {}", base.strip_prefix("http://").unwrap())));

    let link = site.file_link(&id).await;
    assert_eq!(site.download(&link).await, b"restored bytes of a photo");
    let zip = site.download(&site.archive_url(std::slice::from_ref(&id)).await).await;
    assert_eq!(zip_entries(&zip)[0].1, b"restored bytes of a photo");

    let imports = site.emu.imports();
    assert_eq!(imports.len(), 1);
    let record = &imports[0];
    assert_eq!(
        (record.url.as_str(), record.file_id.as_str()),
        (url.as_str(), id.as_str())
    );
    assert_eq!(record.parent_folder_id, folder.id);
    assert_eq!(record.outcome, ImportOutcome::Ready { bytes: 25 });
}

#[tokio::test]
async fn unreachable_urls_fail_and_bad_requests_are_refused() {
    let site = Site::start(EmulatorConfig {
        import_delay: Duration::ZERO,
        ..EmulatorConfig::default()
    })
    .await;
    let (base, _) = origin(403, b"<Error>AccessDenied</Error>").await;
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/gone.pdf", listener.local_addr().unwrap())
    };
    for url in [
        format!("{base}/expired.pdf"),
        closed,
        "https://example.com/x.pdf".to_string(),
    ] {
        let (status, body) = site
            .post(
                "/site-media/v1/files/import",
                json!({ "url": url, "mediaType": "DOCUMENT" }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let id = body["file"]["id"].as_str().unwrap().to_string();
        let failed = settled(&site, &id).await;
        assert_eq!(failed["operationStatus"], "FAILED", "{url}");
        assert_eq!(failed["displayName"], url.rsplit('/').next().unwrap());
    }
    assert!(site
        .emu
        .imports()
        .iter()
        .all(|r| matches!(&r.outcome, ImportOutcome::Failed { reason } if !reason.is_empty())));

    for (body, rule) in [
        (
            json!({ "url": "http://h/x.csv", "mediaType": "OTHER" }),
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (json!({ "mediaType": "IMAGE" }), "REQUIRED_FIELD"),
        (json!({ "url": "x" }), "MIN_LENGTH"),
        (
            json!({ "url": "http://h/x.jpg", "parentFolderId": "fnope" }),
            "RESOURCE_NOT_FOUND",
        ),
        (json!({ "url": "http://h/x.jpg", "mediaType": "PHOTO" }), "ENUM"),
    ] {
        let (status, answer) = site.post("/site-media/v1/files/import", body).await;
        assert_eq!(status, 400);
        assert_eq!(violations(&answer)[0]["ruleName"], rule);
    }
}

#[tokio::test]
async fn media_type_is_inferred_and_file_path_folders_are_made() {
    let site = Site::start(EmulatorConfig {
        import_delay: Duration::ZERO,
        ..EmulatorConfig::default()
    })
    .await;
    let (base, _) = origin(200, b"ID3 some audio").await;
    let import = |body: Value| site.post("/site-media/v1/files/import", body);
    let (_, a) = import(json!({ "url": format!("{base}/a/track.mp3"), "filePath": "/music/2024" })).await;
    let (_, b) =
        import(json!({ "url": format!("{base}/b"), "mimeType": "audio/mpeg", "filePath": "music/2024/" })).await;
    let (a, b) = (&a["file"], &b["file"]);
    assert_eq!(
        (a["mediaType"].as_str(), b["mediaType"].as_str()),
        (Some("AUDIO"), Some("AUDIO"))
    );
    assert_eq!(
        a["parentFolderId"], b["parentFolderId"],
        "the second import finds the folders the first made"
    );
    let lib = site.emu.library();
    let year = lib.folder(a["parentFolderId"].as_str().unwrap()).unwrap();
    assert_eq!(year.display_name, "2024");
    assert_eq!(lib.folder(&year.parent_folder_id).unwrap().display_name, "music");
    assert_eq!(settled(&site, b["id"].as_str().unwrap()).await["sizeInBytes"], "14");
}
