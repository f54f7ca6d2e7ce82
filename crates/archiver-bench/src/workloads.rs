//! The benchmark inputs: libraries for the emulator and the Lambda events.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use wix_emulator::{Library, MEDIA_ROOT};
use wix_media_archiver::signature;

/// The caller key the HTTP events are signed with (also given to the function).
pub const CALLER_KEY: &str = "bench-caller-key";

/// `n` Wix-shaped file IDs (`a1b2c3_<32 hex>~mv2.jpg`), known to the emulator.
pub fn http_library(n: usize) -> Library {
    Library::flat(n)
}

/// The body of `POST /archives` for every file of `library`: bare IDs, with one in
/// `url_every` sent as a `wix:image://v1/…` media URL instead.
pub fn archives_body(library: &Library, url_every: usize) -> String {
    let ids: Vec<String> = library
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if url_every > 0 && i % url_every == url_every - 1 {
                format!(
                    "wix:image://v1/{}/{}#originWidth=3024&originHeight=4032",
                    f.id, f.display_name
                )
            } else {
                f.id.clone()
            }
        })
        .collect();
    json!({ "fileIds": ids }).to_string()
}

/// A signed Function URL event (payload format 2.0) for `POST /archives` with `body`.
pub fn signed_function_url_event(body: &str) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let sig = signature::sign(CALLER_KEY, now, body.as_bytes());
    let event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/archives", "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "abcdefghijklmnopqrstuvwxyz123456.lambda-url.us-east-1.on.aws",
            "user-agent": "archiver-bench",
            "x-forwarded-proto": "https",
            "x-archive-signature": sig,
        },
        "requestContext": {
            "accountId": "anonymous", "apiId": "abcdefghijklmnopqrstuvwxyz123456",
            "domainName": "abcdefghijklmnopqrstuvwxyz123456.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz123456",
            "http": {"method": "POST", "path": "/archives", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": "archiver-bench"},
            "requestId": "bench", "routeKey": "$default", "stage": "$default",
            "time": "27/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_773_600_000u64
        },
        "body": body, "isBase64Encoded": false
    });
    serde_json::to_vec(&event).expect("the event serializes")
}

/// A media library of `files` public, READY files under `folders` nested folders (depth
/// up to 3; a tenth of the files sit in the root), no private, pending or deleted files.
/// Built from the emulator's seeded library, with the folder tree cut to `folders`.
pub fn backup_library(files: usize, folders: usize, seed: u64) -> Library {
    let mut lib = Library::seeded(files, seed);
    // Parents come before their children, so the first `folders` folders form a tree.
    lib.folders.truncate(folders);
    let kept: HashMap<String, usize> = lib.folders.iter().enumerate().map(|(i, f)| (f.id.clone(), i)).collect();
    for (i, file) in lib.files.iter_mut().enumerate() {
        if file.parent_folder_id != MEDIA_ROOT && !kept.contains_key(&file.parent_folder_id) {
            file.parent_folder_id = if lib.folders.is_empty() {
                MEDIA_ROOT.to_owned()
            } else {
                lib.folders[i % lib.folders.len()].id.clone()
            };
        }
        file.private = false;
        file.operation_status = "READY".to_owned();
        file.state = "OK".to_owned();
    }
    lib
}

/// Least calls a backup of `library` can make with pages of `page` files and folders:
/// (search pages, folder pages, archive calls).
pub fn backup_minimum(library: &Library, page: usize) -> (usize, usize, usize) {
    let files = library.files.len();
    let search = files.div_ceil(page).max(1);
    let mut children: HashMap<&str, usize> = HashMap::new();
    children.insert(MEDIA_ROOT, 0);
    for f in &library.folders {
        children.entry(f.id.as_str()).or_insert(0);
        *children.entry(f.parent_folder_id.as_str()).or_insert(0) += 1;
    }
    let folder_calls = children.values().map(|n| n.div_ceil(page).max(1)).sum();
    let archives = files.div_ceil(1000);
    (search, folder_calls, archives)
}

/// The function's environment for a run against the emulator at `base_url`.
pub fn function_env(base_url: &str, requests_per_minute: u32, concurrency: u32) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("WIX_API_KEY", "emulator-api-key"),
        ("WIX_SITE_ID", "emulator-site-id"),
        ("CALLER_KEYS", CALLER_KEY),
        ("MAX_FILES_PER_REQUEST", "100000"),
        ("AWS_LAMBDA_FUNCTION_NAME", "wix-media-archiver-bench"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]bench"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/wix-media-archiver-bench"),
        ("AWS_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.push(("WIX_API_BASE_URL".to_owned(), base_url.to_owned()));
    env.push(("WIX_REQUESTS_PER_MINUTE".to_owned(), requests_per_minute.to_string()));
    env.push(("WIX_MAX_CONCURRENCY".to_owned(), concurrency.to_string()));
    env
}

/// The `body` of a Lambda HTTP response, parsed.
pub fn http_body(response: &[u8]) -> Option<(u16, Value)> {
    let outer: Value = serde_json::from_slice(response).ok()?;
    let status = outer.get("statusCode")?.as_u64()? as u16;
    let body: Value = serde_json::from_str(outer.get("body")?.as_str()?).ok()?;
    Some((status, body))
}
