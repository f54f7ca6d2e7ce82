//! The emulator over real HTTP, as the archiver's client sees it.

use std::collections::HashSet;
use std::io::{Cursor, Read};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use wix_emulator::{
    AuthMode, Emulator, EmulatorConfig, Fault, Library, PagingStyle, PrivateInArchive, RandomFaults, RateLimit,
    UnknownIds, MEDIA_ROOT,
};

const KEY: &str = "emulator-api-key";
const SITE: &str = "emulator-site-id";

async fn start(config: EmulatorConfig) -> (Emulator, Client) {
    let emulator = Emulator::start(config).await.expect("emulator starts");
    (emulator, Client::new())
}

async fn start_default() -> (Emulator, Client) {
    start(EmulatorConfig::default()).await
}

fn authed(rb: RequestBuilder) -> RequestBuilder {
    rb.header("Authorization", KEY).header("wix-site-id", SITE)
}

async fn post(client: &Client, emu: &Emulator, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = authed(client.post(format!("{}{path}", emu.base_url())))
        .json(&body)
        .send()
        .await
        .expect("request succeeds");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(client: &Client, emu: &Emulator, path_and_query: &str) -> (StatusCode, Value) {
    let resp = authed(client.get(format!("{}{path_and_query}", emu.base_url())))
        .send()
        .await
        .expect("request succeeds");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn archive(client: &Client, emu: &Emulator, ids: &[String]) -> (StatusCode, Value) {
    post(
        client,
        emu,
        "/site-media/v1/files/generate-download-url",
        json!({ "fileIds": ids }),
    )
    .await
}

fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("a real zip");
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (entry.name().to_string(), content)
        })
        .collect()
}

fn app_code(body: &Value) -> &str {
    body["details"]["applicationError"]["code"].as_str().unwrap_or("")
}

fn public_ready_ids(lib: &Library, n: usize) -> Vec<String> {
    lib.files
        .iter()
        .filter(|f| !f.private && f.state == "OK")
        .take(n)
        .map(|f| f.id.clone())
        .collect()
}

#[tokio::test]
async fn auth_is_required_and_key_rotation_applies() {
    let (emu, client) = start_default().await;
    let url = format!("{}/site-media/v1/folders", emu.base_url());

    // A missing or unknown credential is 401; the right key for another site is 403.
    let cases = [
        (client.get(&url), 401, "UNAUTHENTICATED"),
        (client.get(&url).header("Authorization", KEY), 403, "PERMISSION_DENIED"),
        (
            client
                .get(&url)
                .header("Authorization", format!("Bearer {KEY}"))
                .header("wix-site-id", SITE),
            401,
            "UNAUTHENTICATED",
        ),
        (
            client
                .get(&url)
                .header("Authorization", "wrong")
                .header("wix-site-id", SITE),
            401,
            "UNAUTHENTICATED",
        ),
        (
            client
                .get(&url)
                .header("Authorization", KEY)
                .header("wix-site-id", "other"),
            403,
            "PERMISSION_DENIED",
        ),
    ];
    for (rb, status, code) in cases {
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), status);
        assert!(resp.headers().contains_key("x-wix-request-id"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(app_code(&body), code);
    }
    let ok = authed(client.get(&url)).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let first_id = ok.headers()["x-wix-request-id"].clone();

    emu.set_api_key("rotated");
    assert_eq!(authed(client.get(&url)).send().await.unwrap().status(), 401);
    let resp = client
        .get(&url)
        .header("Authorization", "rotated")
        .header("wix-site-id", SITE)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_ne!(resp.headers()["x-wix-request-id"], first_id);

    let calls = emu.api_calls();
    assert_eq!(calls.len(), 8);
    assert_eq!(calls.iter().filter(|c| c.auth_ok).count(), 2);
    assert!(calls.iter().all(|c| c.path == "/site-media/v1/folders"));
}

#[tokio::test]
async fn auth_modes_missing_permission_and_all_forbidden() {
    let (emu, client) = start_default().await;
    let url = format!("{}/site-media/v1/folders", emu.base_url());
    emu.set_auth_mode(AuthMode::MissingPermission);
    let resp = authed(client.get(&url)).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(app_code(&resp.json().await.unwrap()), "PERMISSION_DENIED");
    // A bad key is still a bad key.
    let resp = client.get(&url).header("Authorization", "wrong").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // An app without the permission is refused the same way.
    let token: Value = client
        .post(format!("{}/oauth2/token", emu.base_url()))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": "emulator-app-id",
            "client_secret": "emulator-app-secret",
            "instance_id": "emulator-instance-id",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let with_token = || client.get(&url).header("Authorization", token.clone()).send();
    assert_eq!(with_token().await.unwrap().status(), 403);

    emu.set_auth_mode(AuthMode::AllForbidden);
    for rb in [client.get(&url), client.get(&url).header("Authorization", "wrong")] {
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert_eq!(app_code(&resp.json().await.unwrap()), "FORBIDDEN");
    }
    assert_eq!(with_token().await.unwrap().status(), 200);
    emu.expire_tokens();
    assert_eq!(with_token().await.unwrap().status(), 401);
    emu.set_auth_mode(AuthMode::Documented);
    assert_eq!(authed(client.get(&url)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn archive_link_serves_a_zip_of_exactly_the_requested_files() {
    let (emu, client) = start_default().await;
    let lib = emu.library();
    let mut ids = public_ready_ids(&lib, 5);
    let image = lib.files.iter().find(|f| f.media_type == "IMAGE").unwrap();
    if !ids.contains(&image.id) {
        ids.push(image.id.clone());
    }
    let mut sent = ids.clone();
    // A media URL stands for its id; the repeat is collapsed.
    sent.push(format!(
        "wix:image://v1/{}/photo.jpg#originWidth=10&originHeight=20",
        image.id
    ));

    let (status, body) = archive(&client, &emu, &sent).await;
    assert_eq!(status, 200, "{body}");
    let url = body["downloadUrl"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/_emulator/archives/", emu.base_url())));
    assert_eq!(emu.archive_file_ids(url), Some(ids.clone()));

    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let entries = zip_entries(&resp.bytes().await.unwrap());
    let names: Vec<String> = entries.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, ids);
    for (name, content) in &entries {
        assert_eq!(Some(content), lib.content(name).as_ref());
        assert_eq!(content.len() as u64, lib.file(name).unwrap().size_in_bytes);
    }

    let call = &emu.api_calls()[0];
    assert_eq!(
        (call.method.as_str(), call.status, call.file_ids),
        ("POST", 200, sent.len())
    );
    let all = emu.calls();
    assert_eq!(all.len(), 2);
    assert!(all[1].path.starts_with("/_emulator/archives/"));

    let missing = client
        .get(format!("{}/_emulator/archives/nope", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn archive_request_limits_are_validation_errors() {
    let (emu, client) = start(EmulatorConfig {
        library: Library::flat(1001),
        ..EmulatorConfig::default()
    })
    .await;
    let ids: Vec<String> = (0..1001).map(Library::file_id).collect();

    for body in [json!({}), json!({ "fileIds": [] }), json!({ "fileIds": ids })] {
        let (status, body) = post(&client, &emu, "/site-media/v1/files/generate-download-url", body).await;
        assert_eq!(status, 400);
        let violation = &body["details"]["validationError"]["fieldViolations"][0];
        assert_eq!(violation["field"], "fileIds");
    }
    let (status, body) = archive(&client, &emu, &["x".repeat(1001)]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["details"]["validationError"]["fieldViolations"][0]["violatedRule"],
        "MAX_LENGTH"
    );
    let (status, _) = archive(&client, &emu, &ids[..1000]).await;
    assert_eq!(status, 200);

    let resp = authed(client.post(format!("{}/site-media/v1/files/generate-download-url", emu.base_url())))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn unknown_and_private_ids_follow_the_configured_modes() {
    let (emu, client) = start_default().await;
    let lib = emu.library();
    let known = public_ready_ids(&lib, 2);
    let unknown = "abcdef_00000000000000000000000000000000~mv2.jpg".to_string();
    let ids = vec![known[0].clone(), unknown.clone(), known[1].clone()];

    // By default: a validation error naming the id and where it stood.
    let (status, body) = archive(&client, &emu, &ids).await;
    assert_eq!(status, 400);
    let violations = body["details"]["validationError"]["fieldViolations"]
        .as_array()
        .unwrap();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0]["field"], "fileIds[1]");
    assert_eq!(violations[0]["ruleName"], "RESOURCE_NOT_FOUND");
    assert_eq!(violations[0]["data"]["fileIds"], json!([unknown]));

    emu.set_unknown_ids(UnknownIds::Reject);
    let (status, body) = archive(&client, &emu, &ids).await;
    assert_eq!(status, 400);
    assert_eq!(app_code(&body), "RESOURCE_NOT_FOUND");
    assert_eq!(body["details"]["applicationError"]["data"]["fileIds"], json!([unknown]));

    emu.set_unknown_ids(UnknownIds::Ignore);
    let (status, body) = archive(&client, &emu, &ids).await;
    assert_eq!(status, 200);
    let url = body["downloadUrl"].as_str().unwrap();
    assert_eq!(emu.archive_file_ids(url), Some(known.clone()));
    let zip = client.get(url).send().await.unwrap().bytes().await.unwrap();
    let names: Vec<String> = zip_entries(&zip).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, known);

    let private = lib.files.iter().find(|f| f.private).unwrap().id.clone();
    let (status, _) = archive(&client, &emu, std::slice::from_ref(&private)).await;
    assert_eq!(status, 200);
    emu.set_private_in_archive(PrivateInArchive::Reject);
    let (status, body) = archive(&client, &emu, &[known[0].clone(), private.clone()]).await;
    assert_eq!(status, 403);
    assert_eq!(app_code(&body), "PRIVATE_FILE");
    assert_eq!(body["details"]["applicationError"]["data"]["fileIds"], json!([private]));
}

fn ids_of(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn dates_descend(body: &Value, key: &str) -> bool {
    let dates: Vec<&str> = body[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["updatedDate"].as_str().unwrap())
        .collect();
    dates.windows(2).all(|w| w[0] >= w[1])
}

#[tokio::test]
async fn search_pages_visit_every_media_root_file_once() {
    let (emu, client) = start_default().await;
    let lib = emu.library();
    let search = |cursor: Option<String>, limit: u64| {
        let mut paging = json!({ "limit": limit });
        if let Some(c) = cursor {
            paging["cursor"] = json!(c);
        }
        json!({ "rootFolder": "MEDIA_ROOT", "paging": paging })
    };

    let mut seen = Vec::new();
    let mut dates = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (status, body) = post(
            &client,
            &emu,
            "/site-media/v1/files/search",
            search(cursor.clone(), 100),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        assert!(body["nextCursor"].get("total").is_none(), "no total with cursor paging");
        for f in body["files"].as_array().unwrap() {
            assert!(f["sizeInBytes"].is_string());
            assert!(f["createdDate"].as_str().unwrap().ends_with('Z'));
            seen.push(f["id"].as_str().unwrap().to_string());
            dates.push(f["updatedDate"].as_str().unwrap().to_string());
        }
        let next = body["nextCursor"]["cursors"]["next"].as_str().unwrap();
        if next.is_empty() {
            assert_eq!(body["nextCursor"]["hasNext"], false);
            break;
        }
        assert_eq!(body["nextCursor"]["hasNext"], true);
        // Replaying a cursor gives the same page.
        let (_, again) = post(
            &client,
            &emu,
            "/site-media/v1/files/search",
            search(Some(next.to_string()), 100),
        )
        .await;
        let (_, once_more) = post(
            &client,
            &emu,
            "/site-media/v1/files/search",
            search(Some(next.to_string()), 100),
        )
        .await;
        assert_eq!(again, once_more);
        cursor = Some(next.to_string());
    }
    assert_eq!(pages, 3);
    // Newest first, every file once.
    assert!(dates.windows(2).all(|w| w[0] >= w[1]));
    let mut sorted = seen.clone();
    sorted.sort();
    let mut expected: Vec<String> = lib.files.iter().map(|f| f.id.clone()).collect();
    expected.sort();
    assert_eq!(sorted, expected);
    assert!(lib.files.iter().any(|f| f.state == "DELETED"));

    // A cursor only fits the query it came from.
    let (_, first) = post(&client, &emu, "/site-media/v1/files/search", search(None, 10)).await;
    let next = first["nextCursor"]["cursors"]["next"].as_str().unwrap();
    let (status, body) = post(
        &client,
        &emu,
        "/site-media/v1/files/search",
        json!({ "mediaTypes": ["VIDEO"], "paging": { "cursor": next } }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["details"]["validationError"]["fieldViolations"][0]["field"],
        "paging.cursor"
    );
    let (status, _) = post(&client, &emu, "/site-media/v1/files/search", search(None, 101)).await;
    assert_eq!(status, 400);

    let (status, body) = post(
        &client,
        &emu,
        "/site-media/v1/files/search",
        json!({ "mediaTypes": ["VIDEO", "AUDIO"], "private": false, "paging": { "limit": 100 } }),
    )
    .await;
    assert_eq!(status, 200);
    let expected = lib
        .files
        .iter()
        .filter(|f| (f.media_type == "VIDEO" || f.media_type == "AUDIO") && !f.private)
        .count();
    assert_eq!(body["files"].as_array().unwrap().len(), expected);
    let (_, trash) = post(
        &client,
        &emu,
        "/site-media/v1/files/search",
        json!({ "rootFolder": "TRASH_ROOT" }),
    )
    .await;
    assert_eq!(trash["files"], json!([]));
    assert_eq!(
        trash["nextCursor"],
        json!({ "cursors": { "next": "" }, "hasNext": false })
    );

    // The old shape, as a mode.
    emu.set_paging(PagingStyle::Legacy);
    let (_, last) = post(&client, &emu, "/site-media/v1/files/search", search(None, 100)).await;
    assert_eq!(last["nextCursor"]["total"], 250);
    assert!(last["nextCursor"].get("hasNext").is_none());
    let (_, trash) = post(
        &client,
        &emu,
        "/site-media/v1/files/search",
        json!({ "rootFolder": "TRASH_ROOT" }),
    )
    .await;
    assert_eq!(trash["nextCursor"], json!({ "total": 0, "cursors": {} }));
}

#[tokio::test]
async fn folder_listing_and_folder_archives() {
    let (emu, client) = start_default().await;
    let lib = emu.library();
    let (status, body) = get(&client, &emu, "/site-media/v1/folders").await;
    assert_eq!(status, 200);
    assert!(dates_descend(&body, "folders"));
    let mut top = ids_of(&body, "folders");
    top.sort();
    let mut expected: Vec<String> = lib
        .folders
        .iter()
        .filter(|f| f.parent_folder_id == MEDIA_ROOT)
        .map(|f| f.id.clone())
        .collect();
    expected.sort();
    assert_eq!(top, expected);

    let folder = &lib.folders[0];
    let (status, body) = get(&client, &emu, &format!("/site-media/v1/folders/{}", folder.id)).await;
    assert_eq!(status, 200);
    assert_eq!(body["folder"]["displayName"], folder.display_name.as_str());
    assert_eq!(get(&client, &emu, "/site-media/v1/folders/fnope").await.0, 404);

    // Listing one folder page by page.
    let mut in_folder: Vec<&str> = lib
        .files
        .iter()
        .filter(|f| f.parent_folder_id == folder.id)
        .map(|f| f.id.as_str())
        .collect();
    let mut listed = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = get(
            &client,
            &emu,
            &format!(
                "/site-media/v1/files?parentFolderId={}&paging.limit=7&paging.cursor={cursor}",
                folder.id
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(dates_descend(&body, "files"));
        listed.extend(ids_of(&body, "files"));
        match body["nextCursor"]["cursors"]["next"].as_str() {
            Some(next) if !next.is_empty() => cursor = next.to_string(),
            _ => break,
        }
    }
    listed.sort();
    in_folder.sort();
    assert_eq!(listed, in_folder);

    let (status, body) = post(
        &client,
        &emu,
        &format!("/site-media/v1/folders/{}/generate-download-url", folder.id),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ids = emu.archive_file_ids(body["downloadUrl"].as_str().unwrap()).unwrap();
    assert!(
        ids.len()
            >= in_folder
                .iter()
                .filter(|id| lib.file(id).unwrap().state == "OK")
                .count()
    );
    assert!(ids.iter().all(|id| lib.file(id).unwrap().state == "OK"));
}

#[tokio::test]
async fn get_files_limits_order_and_unknown_ids() {
    let (emu, client) = start_default().await;
    let lib = emu.library();
    let ids: Vec<String> = lib.files.iter().rev().take(3).map(|f| f.id.clone()).collect();
    let path = "/site-media/v1/files/get-files";

    let (status, body) = post(&client, &emu, path, json!({ "fileIds": ids })).await;
    assert_eq!(status, 200);
    let got: Vec<&str> = body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids);
    let file = &body["files"][0];
    for field in [
        "displayName",
        "url",
        "parentFolderId",
        "hash",
        "mediaType",
        "operationStatus",
        "state",
        "thumbnailUrl",
        "updatedDate",
        "siteId",
    ] {
        assert!(file[field].is_string(), "{field}");
    }
    assert!(file["private"].is_boolean() && file["labels"].is_array());

    let many: Vec<String> = lib.files.iter().take(101).map(|f| f.id.clone()).collect();
    for body in [json!({ "fileIds": [] }), json!({ "fileIds": many })] {
        let (status, body) = post(&client, &emu, path, body).await;
        assert_eq!(status, 400);
        assert!(body["details"]["validationError"].is_object());
    }

    // Unknown ids: a validation error by default, whatever the archive mode, unless it asks for the old shape.
    let with_unknown = json!({ "fileIds": [ids[0], "abcdef_nope"] });
    for mode in [
        UnknownIds::Validation,
        UnknownIds::Ignore,
        UnknownIds::NothingToDownload,
    ] {
        emu.set_unknown_ids(mode);
        let (status, body) = post(&client, &emu, path, with_unknown.clone()).await;
        assert_eq!(status, 400);
        let violation = &body["details"]["validationError"]["fieldViolations"][0];
        assert_eq!(violation["field"], "fileIds[1]");
        assert_eq!(violation["ruleName"], "RESOURCE_NOT_FOUND");
        assert_eq!(violation["data"]["fileIds"], json!(["abcdef_nope"]));
    }
    emu.set_unknown_ids(UnknownIds::ValidationUnnamed);
    let (status, body) = post(&client, &emu, path, with_unknown.clone()).await;
    assert_eq!(status, 400);
    let violations = &body["details"]["validationError"]["fieldViolations"];
    assert_eq!(violations[0]["field"], "fileIds");
    assert!(violations[0].get("data").is_none() && !body.to_string().contains("abcdef_nope"));
    emu.set_unknown_ids(UnknownIds::Reject);
    let (status, body) = post(&client, &emu, path, with_unknown).await;
    assert_eq!(status, 400);
    assert_eq!(app_code(&body), "RESOURCE_NOT_FOUND");
    assert_eq!(
        body["details"]["applicationError"]["data"]["fileIds"],
        json!(["abcdef_nope"])
    );

    let url = format!("wix:image://v1/{}/x.jpg#originWidth=1", ids[0]);
    let encoded: String = url
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = get(
        &client,
        &emu,
        &format!("/site-media/v1/files/get-file-by-id?fileId={encoded}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["file"]["id"], ids[0].as_str());
    // Get File By Id: 404 in the old mode, a validation error otherwise.
    let (status, body) = get(&client, &emu, "/site-media/v1/files/get-file-by-id?fileId=abcdef_nope").await;
    assert_eq!(status, 404);
    assert_eq!(app_code(&body), "RESOURCE_NOT_FOUND");
    emu.set_unknown_ids(UnknownIds::Validation);
    let (status, body) = get(&client, &emu, "/site-media/v1/files/get-file-by-id?fileId=abcdef_nope").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["details"]["validationError"]["fieldViolations"][0]["ruleName"],
        "RESOURCE_NOT_FOUND"
    );
}

#[tokio::test]
async fn single_file_links_serve_the_file() {
    let (emu, client) = start_default().await;
    let lib = emu.library();
    let private = lib.files.iter().find(|f| f.private).unwrap();
    let path = "/site-media/v1/files/generate-file-download-url";

    let (status, body) = post(
        &client,
        &emu,
        path,
        json!({ "fileId": private.id, "expirationInMinutes": 1440 }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["downloadUrls"][0]["assetKey"], "src");
    let url = body["downloadUrls"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/_emulator/files/{}?token=", emu.base_url(), private.id)));
    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-length"],
        private.size_in_bytes.to_string().as_str()
    );
    assert_eq!(Some(resp.bytes().await.unwrap().to_vec()), lib.content(&private.id));

    for bad in [0, 525_601] {
        let (status, body) = post(
            &client,
            &emu,
            path,
            json!({ "fileId": private.id, "expirationInMinutes": bad }),
        )
        .await;
        assert_eq!(status, 400);
        assert!(body["details"]["validationError"].is_object());
    }
    let (status, body) = post(&client, &emu, path, json!({ "fileId": "abcdef_nope" })).await;
    assert_eq!((status.as_u16(), app_code(&body)), (404, "RESOURCE_NOT_FOUND"));
    let forged = url.replace("token=", "token=0");
    assert_eq!(client.get(forged).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn queued_faults_apply_in_order_to_matching_paths() {
    let (emu, client) = start(EmulatorConfig {
        library: Library::flat(3),
        ..EmulatorConfig::default()
    })
    .await;
    let ids = vec![Library::file_id(0)];
    emu.push_faults(
        "generate-download-url",
        vec![
            Fault::TooManyRequests { retry_after: Some(7) },
            Fault::TooManyRequests { retry_after: None },
            Fault::Status(503),
            Fault::StatusEmptyBody(500),
            Fault::Body {
                status: 200,
                content_type: "text/html".into(),
                body: "<html>oops</html>".into(),
            },
            Fault::Delay(Duration::from_millis(50)),
        ],
    );
    // Another path is not affected by the queue.
    assert_eq!(get(&client, &emu, "/site-media/v1/folders").await.0, 200);

    let url = format!("{}/site-media/v1/files/generate-download-url", emu.base_url());
    let send = || authed(client.post(&url)).json(&json!({ "fileIds": ids })).send();

    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(app_code(&r.json().await.unwrap()), "TOO_MANY_REQUESTS");
    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(!r.headers().contains_key("retry-after"));
    let r = send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("x-wix-request-id"));
    assert_eq!(app_code(&r.json().await.unwrap()), "UNAVAILABLE");
    let r = send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (200, "<html>oops</html>".to_string())
    );
    let r = send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 200);
    let url = r.json::<Value>().await.unwrap()["downloadUrl"]
        .as_str()
        .unwrap()
        .to_string();

    // Download routes never take faults.
    emu.push_faults("", vec![Fault::Status(500)]);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(send().await.unwrap().status(), 500);

    let faults: Vec<(u16, Option<String>)> = emu.api_calls().into_iter().map(|c| (c.status, c.fault)).collect();
    let expected: Vec<(u16, Option<&str>)> = vec![
        (200, None),
        (429, Some("429")),
        (429, Some("429")),
        (503, Some("503")),
        (500, Some("500-empty")),
        (200, Some("body-200")),
        (200, Some("delay")),
        (200, None),
        (500, Some("500")),
    ];
    let expected: Vec<(u16, Option<String>)> = expected.into_iter().map(|(s, f)| (s, f.map(str::to_string))).collect();
    assert_eq!(faults, expected);
    emu.clear_calls();
    assert!(emu.calls().is_empty());
}

#[tokio::test]
async fn dropped_connection_and_hang_are_client_errors() {
    let (emu, client) = start(EmulatorConfig {
        library: Library::flat(3),
        ..EmulatorConfig::default()
    })
    .await;
    let url = format!("{}/site-media/v1/files/generate-download-url", emu.base_url());
    let body = json!({ "fileIds": [Library::file_id(1)] });

    emu.push_faults("generate-download-url", vec![Fault::Drop]);
    let err = authed(client.post(&url)).json(&body).send().await.unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    assert!(err.is_request() || err.is_connect(), "{err:?}");

    emu.push_faults("generate-download-url", vec![Fault::Hang(Duration::from_secs(5))]);
    let err = authed(client.post(&url))
        .json(&body)
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    // The connection pool recovers and the next call succeeds.
    let ok = authed(client.post(&url)).json(&body).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    let calls = emu.api_calls();
    assert_eq!((calls[0].status, calls[0].fault.as_deref()), (0, Some("drop")));
    assert_eq!((calls[1].status, calls[1].fault.as_deref()), (0, Some("hang")));
    assert_eq!(calls[2].status, 200);
}

#[tokio::test]
async fn dropped_connection_on_a_raw_socket_gets_no_bytes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (emu, _) = start_default().await;
    emu.push_faults("", vec![Fault::Drop]);
    let mut stream = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    stream
        .write_all(b"GET /site-media/v1/folders HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(buf.is_empty(), "no response bytes: {:?}", String::from_utf8_lossy(&buf));
}

#[tokio::test]
async fn rate_limit_answers_429_after_n_calls_a_minute() {
    let (emu, client) = start(EmulatorConfig {
        rate_limit: Some(RateLimit::window(5).with_retry_after()),
        ..EmulatorConfig::default()
    })
    .await;
    emu.push_faults("", vec![Fault::TooManyRequests { retry_after: None }]);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(get(&client, &emu, "/site-media/v1/folders").await.0.as_u16());
    }
    // The scripted 429 does not count towards the window.
    assert_eq!(statuses, vec![429, 200, 200, 200, 200, 200, 429]);
    let resp = authed(client.get(format!("{}/site-media/v1/folders", emu.base_url())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let secs: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Too many requests");
    assert_eq!(emu.api_calls().last().unwrap().fault.as_deref(), Some("rate-limit"));

    emu.set_rate_limit(Some(RateLimit::window(5)));
    let resp = authed(client.get(format!("{}/site-media/v1/folders", emu.base_url())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(!resp.headers().contains_key("retry-after"));
    emu.set_rate_limit(None);
    assert_eq!(get(&client, &emu, "/site-media/v1/folders").await.0, 200);
}

#[tokio::test]
async fn oauth_tokens_authorize_until_revoked_or_expired() {
    let (emu, client) = start_default().await;
    let token_url = format!("{}/oauth2/token", emu.base_url());
    let creds = json!({
        "grant_type": "client_credentials",
        "client_id": "emulator-app-id",
        "client_secret": "emulator-app-secret",
        "instance_id": "emulator-instance-id",
    });
    let fetch = |body: Value| client.post(&token_url).json(&body).send();

    let resp = fetch(creds.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["token_type"].as_str(), body["expires_in"].as_u64()),
        (Some("Bearer"), Some(14_400))
    );
    let token = body["access_token"].as_str().unwrap().to_string();

    let folders = format!("{}/site-media/v1/folders", emu.base_url());
    let with_token = |t: &str| client.get(&folders).header("Authorization", t.to_string()).send();
    assert_eq!(with_token(&token).await.unwrap().status(), 200);

    let mut wrong = creds.clone();
    wrong["client_secret"] = json!("nope");
    assert_eq!(fetch(wrong).await.unwrap().status(), 401);
    let mut bad_grant = creds.clone();
    bad_grant["grant_type"] = json!("password");
    assert_eq!(fetch(bad_grant).await.unwrap().status(), 400);

    emu.revoke_tokens();
    let resp = with_token(&token).await.unwrap();
    assert_eq!(resp.status(), 401);
    let fresh = fetch(creds.clone()).await.unwrap().json::<Value>().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap().to_string();
    assert_ne!(fresh, token);
    assert_eq!(with_token(&fresh).await.unwrap().status(), 200);
    emu.expire_tokens();
    assert_eq!(with_token(&fresh).await.unwrap().status(), 401);

    let calls = emu.api_calls();
    assert_eq!(calls.iter().filter(|c| c.path == "/oauth2/token").count(), 4);
    assert!(calls[0].auth_ok && !calls[2].auth_ok);
}

#[tokio::test]
async fn random_faults_are_reproducible() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let (emu, client) = start_default().await;
        emu.set_random_faults(Some(RandomFaults {
            seed,
            p_429: 0.2,
            p_5xx: 0.2,
            p_drop: 0.1,
            p_hang: 0.0,
            hang: Duration::ZERO,
            p_malformed: 0.1,
        }));
        let mut out = Vec::new();
        for _ in 0..40 {
            let resp = authed(client.get(format!("{}/site-media/v1/folders", emu.base_url())))
                .send()
                .await;
            out.push(resp.map_or(0, |r| r.status().as_u16()));
        }
        emu.set_random_faults(None);
        assert_eq!(get(&client, &emu, "/site-media/v1/folders").await.0, 200);
        out
    }
    let a = statuses(42).await;
    assert_eq!(a, statuses(42).await);
    assert!(a.contains(&0) && a.contains(&429) && a.contains(&200), "{a:?}");
    assert!(a.iter().any(|s| *s >= 500));
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_shutdown() {
    let (emu, client) = start_default().await;
    let (status, body) = get(&client, &emu, "/site-media/v1/nothing").await;
    assert_eq!(status, 404);
    assert!(body["message"].is_string());
    let resp = authed(client.get(format!("{}/site-media/v1/files/search", emu.base_url())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    assert_eq!(
        client
            .get(format!("{}/", emu.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let calls = emu.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(emu.api_calls().len(), 2);

    let base = emu.base_url();
    emu.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = Client::new();
    assert!(fresh.get(format!("{base}/site-media/v1/folders")).send().await.is_err());
}

#[tokio::test]
async fn every_seeded_id_is_unique_and_wix_shaped() {
    let lib = Library::seeded(1200, 1);
    let ids: HashSet<&str> = lib.files.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids.len(), 1200);
    for f in &lib.files {
        let (prefix, rest) = f.id.split_once('_').unwrap();
        assert_eq!(prefix.len(), 6);
        assert!(rest[..32].chars().all(|c| c.is_ascii_hexdigit()));
        let tail = &rest[32..];
        let expected = match f.media_type.as_str() {
            "IMAGE" => tail == "~mv2.jpg" || tail == "~mv2.png",
            "VIDEO" => tail.is_empty(),
            "AUDIO" => tail == ".mp3",
            "DOCUMENT" => tail == ".pdf",
            "VECTOR" => tail == ".svg",
            _ => tail.starts_with('.'),
        };
        assert!(expected, "{} {}", f.media_type, f.id);
    }
    let depth_ok = lib.folders.iter().all(|folder| {
        let mut depth = 0;
        let mut parent = folder.id.as_str();
        while parent != MEDIA_ROOT {
            parent = &lib.folder(parent).unwrap().parent_folder_id;
            depth += 1;
        }
        depth <= 3
    });
    assert!(depth_ok);
    assert_eq!(lib.folders.len(), 20);
}
