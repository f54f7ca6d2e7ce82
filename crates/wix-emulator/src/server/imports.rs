//! Import File: the emulator fetches the URL itself (plain http, such as a presigned URL of a
//! local S3), keeps the bytes as the new file's content, and the file goes from `PENDING` to
//! `READY`, or to `FAILED` when the URL cannot be fetched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::HOST;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;

use super::files::file_json;
use super::folders::parent_not_found;
use super::respond::{json_resp, rule_violation, validation_error, Failure, Resp};
use super::routes::{bool_field, percent_decode, string_field};
use super::State;
use crate::store::{NewFile, Store};
use crate::MEDIA_ROOT;

/// Media types Import File takes (the SDK: "excluding: OTHER media type").
const IMPORTABLE: [&str; 7] = ["IMAGE", "VIDEO", "AUDIO", "DOCUMENT", "VECTOR", "ARCHIVE", "MODEL3D"];
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// One Import File call and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRecord {
    /// The `url` the call gave, fetched as it was.
    pub url: String,
    /// The new file's id.
    pub file_id: String,
    /// The folder the file went into (after `filePath`, when given).
    pub parent_folder_id: String,
    /// The new file's display name.
    pub display_name: String,
    /// The media type given, or the one inferred from `mimeType` and the name.
    pub media_type: String,
    /// Whether the file is private.
    pub private: bool,
    /// Pending, or the fetch's result.
    pub outcome: ImportOutcome,
}

/// Where an import stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Still `PENDING`.
    Pending,
    /// `READY`, with this many bytes fetched.
    Ready {
        /// Bytes fetched, now the file's content.
        bytes: u64,
    },
    /// `FAILED`: the URL could not be fetched.
    Failed {
        /// Why, in words.
        reason: String,
    },
}

pub(crate) fn import_file(state: &Arc<State>, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let url = match string_field(body, "url")? {
        Some(u) if u.chars().count() >= 2 && u.contains("://") => u,
        Some(u) if u.chars().count() >= 2 => return Err(validation_error("url", "must be a web URL", "FORMAT")),
        Some(_) => return Err(validation_error("url", "must be at least 2 characters", "MIN_LENGTH")),
        None => return Err(validation_error("url", "is required", "REQUIRED_FIELD")),
    };
    let mime_type = string_field(body, "mimeType")?;
    let display_name: String = match string_field(body, "displayName")? {
        Some(name) if !name.is_empty() => name.chars().take(255).collect(),
        _ => name_from_url(url),
    };
    let media_type = match string_field(body, "mediaType")? {
        Some("OTHER") => {
            return Err(rule_violation(
                "mediaType",
                "files of media type OTHER cannot be imported",
                "UNSUPPORTED_MEDIA_TYPE",
                Some(json!({ "allowedValues": IMPORTABLE, "requestValue": "OTHER" })),
            ))
        }
        Some(t) if IMPORTABLE.contains(&t) => t.to_string(),
        None | Some("") | Some("UNKNOWN") => infer_media_type(mime_type, &display_name, url).to_string(),
        Some(_) => return Err(validation_error("mediaType", "is not a media type", "ENUM")),
    };
    let private = bool_field(body, "private")?.unwrap_or(false);
    let parent = string_field(body, "parentFolderId")?
        .filter(|p| !p.is_empty())
        .unwrap_or(MEDIA_ROOT)
        .to_string();
    let file_path = string_field(body, "filePath")?;

    let config = state.config();
    let mut store = state.store();
    if !store.is_container(&parent) {
        return Err(parent_not_found(&parent));
    }
    let folder = match file_path {
        Some(path) => folder_at_path(&mut store, &parent, path),
        None => parent,
    };
    let extension = extension_of(&display_name).or_else(|| extension_of(&name_from_url(url)));
    let id = store.new_file_id(&media_type, extension.as_deref());
    let new = NewFile {
        display_name: display_name.clone(),
        parent_folder_id: folder.clone(),
        media_type: media_type.clone(),
        private,
        size_in_bytes: 0,
        bytes: None,
    };
    let slot = store
        .begin_import(new, id.clone(), url)
        .map_err(|_| parent_not_found(&folder))?;
    let descriptor = file_json(&store.view(slot), &config.site_id);
    drop(store);

    state.lock().imports.push(ImportRecord {
        url: url.to_string(),
        file_id: id.clone(),
        parent_folder_id: folder,
        display_name,
        media_type,
        private,
        outcome: ImportOutcome::Pending,
    });
    let task_state = state.clone();
    let url = url.to_string();
    let delay = config.import_delay;
    tokio::spawn(async move {
        let started = Instant::now();
        let fetched = match tokio::time::timeout(FETCH_TIMEOUT, fetch(&url)).await {
            Ok(result) => result,
            Err(_) => Err(format!("fetching {url} took more than {FETCH_TIMEOUT:?}")),
        };
        tokio::time::sleep_until((started + delay).into()).await;
        let outcome = match &fetched {
            Ok(bytes) => ImportOutcome::Ready {
                bytes: bytes.len() as u64,
            },
            Err(reason) => ImportOutcome::Failed { reason: reason.clone() },
        };
        task_state.store().finish_import(&id, fetched.ok());
        if let Some(record) = task_state.lock().imports.iter_mut().find(|r| r.file_id == id) {
            record.outcome = outcome;
        }
    });
    Ok(json_resp(200, &json!({ "file": descriptor })))
}

/// The folder `path` names below `parent` (`/videos/2024`), made where missing, as Wix's `filePath` does.
fn folder_at_path(store: &mut Store, parent: &str, path: &str) -> String {
    let mut current = parent.to_string();
    for name in path.split('/').filter(|s| !s.is_empty()) {
        current = match store.child_folder_named(&current, name) {
            Some(id) => id,
            None => match store.add_folder(name, &current) {
                Ok(slot) => store.folder_view(slot).id.to_string(),
                Err(_) => break,
            },
        };
    }
    current
}

/// The last path segment of a URL, or "imported-file".
fn name_from_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    match path.split_once('/') {
        Some((_, rest)) => match rest.rsplit('/').next() {
            Some(last) if !last.is_empty() => percent_decode(last),
            _ => "imported-file".into(),
        },
        None => "imported-file".into(),
    }
}

fn extension_of(name: &str) -> Option<String> {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())
}

/// A media type from the MIME type, else from the name's (or the URL's) extension; `DOCUMENT` when neither says.
fn infer_media_type(mime_type: Option<&str>, display_name: &str, url: &str) -> &'static str {
    if let Some(mime) = mime_type {
        let mime = mime.to_ascii_lowercase();
        let by_mime = match mime.split('/').next().unwrap_or_default() {
            _ if mime == "image/svg+xml" => Some("VECTOR"),
            "image" => Some("IMAGE"),
            "video" => Some("VIDEO"),
            "audio" => Some("AUDIO"),
            "model" => Some("MODEL3D"),
            _ if mime.contains("zip") || mime.contains("rar") || mime.contains("7z") || mime.contains("tar") => {
                Some("ARCHIVE")
            }
            "application" | "text" => Some("DOCUMENT"),
            _ => None,
        };
        if let Some(t) = by_mime {
            return t;
        }
    }
    let extension = extension_of(display_name).or_else(|| extension_of(&name_from_url(url)));
    match extension.as_deref().unwrap_or_default() {
        "jpg" | "jpeg" | "png" | "gif" | "webp" | "bmp" | "tif" | "tiff" | "heic" | "avif" => "IMAGE",
        "svg" => "VECTOR",
        "mp4" | "mov" | "avi" | "webm" | "mkv" | "m4v" | "mpeg" => "VIDEO",
        "mp3" | "wav" | "aac" | "ogg" | "flac" | "m4a" => "AUDIO",
        "zip" | "rar" | "7z" | "gz" | "tar" => "ARCHIVE",
        "glb" | "gltf" | "obj" | "fbx" | "stl" | "usdz" => "MODEL3D",
        _ => "DOCUMENT",
    }
}

/// GET over plain http with hyper's client connection; any non-2xx answer is a failure.
async fn fetch(url: &str) -> Result<Bytes, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL ({e}): {url}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("the emulator fetches only http:// URLs, not {url}"));
    }
    let authority = uri.authority().ok_or_else(|| format!("no host in {url}"))?.clone();
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let stream = TcpStream::connect((host, authority.port_u16().unwrap_or(80)))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {authority} failed: {e}"))?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad request for {url}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET {url} failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url} answered {}", response.status()));
    }
    response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| format!("reading {url} failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_media_types() {
        assert_eq!(name_from_url("http://h:1/bucket/a%20b.jpg?X-Amz=1"), "a b.jpg");
        assert_eq!(name_from_url("http://h:1/"), "imported-file");
        assert_eq!(name_from_url("http://h:1"), "imported-file");
        assert_eq!(infer_media_type(Some("image/png"), "x", "u"), "IMAGE");
        assert_eq!(infer_media_type(Some("image/svg+xml"), "x", "u"), "VECTOR");
        assert_eq!(infer_media_type(Some("application/zip"), "x", "u"), "ARCHIVE");
        assert_eq!(infer_media_type(None, "model.glb", "u"), "MODEL3D");
        assert_eq!(infer_media_type(None, "x", "http://h/a.mp3?sig=1"), "AUDIO");
        assert_eq!(infer_media_type(None, "x", "http://h/a"), "DOCUMENT");
    }
}
