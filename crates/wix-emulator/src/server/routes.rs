//! Which handler answers which API call, and the request parsing they share.

use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderValue};
use hyper::Method;
use serde_json::{Map, Value};

use super::respond::{app_error, not_found_route, validation_error, Failure, Resp};
use super::{archives, auth, files, folders, imports, State};

enum Route {
    Token,
    GenerateDownloadUrl,
    GenerateFileDownloadUrl,
    Search,
    ListFiles,
    GetFiles,
    GetFileById,
    Import,
    ListFolders,
    CreateFolder,
    SearchFolders,
    GetFolder(String),
    FolderDownload(String),
}

/// The route, or the methods the path allows.
fn match_route(path: &str, method: &Method) -> Option<Result<Route, &'static str>> {
    let post = |route| if method == Method::POST { Ok(route) } else { Err("POST") };
    let get = |route| if method == Method::GET { Ok(route) } else { Err("GET") };
    let route = match path {
        "/oauth2/token" => post(Route::Token),
        "/site-media/v1/files/generate-download-url" => post(Route::GenerateDownloadUrl),
        "/site-media/v1/files/generate-file-download-url" => post(Route::GenerateFileDownloadUrl),
        "/site-media/v1/files/search" => post(Route::Search),
        "/site-media/v1/files" => get(Route::ListFiles),
        "/site-media/v1/files/get-files" => post(Route::GetFiles),
        "/site-media/v1/files/get-file-by-id" => get(Route::GetFileById),
        "/site-media/v1/files/import" => post(Route::Import),
        "/site-media/v1/folders" if method == Method::GET => Ok(Route::ListFolders),
        "/site-media/v1/folders" if method == Method::POST => Ok(Route::CreateFolder),
        "/site-media/v1/folders" => Err("GET, POST"),
        "/site-media/v1/folders/search" if method == Method::POST => Ok(Route::SearchFolders),
        _ => {
            let rest = path.strip_prefix("/site-media/v1/folders/")?;
            match rest.split_once('/') {
                None if !rest.is_empty() => get(Route::GetFolder(percent_decode(rest))),
                Some((id, "generate-download-url")) if !id.is_empty() => {
                    post(Route::FolderDownload(percent_decode(id)))
                }
                _ => return None,
            }
        }
    };
    Some(route)
}

/// The answer to an API call and whether its credentials were accepted.
pub(crate) fn dispatch(
    state: &Arc<State>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Resp, bool) {
    let route = match match_route(path, method) {
        None => return (not_found_route(path), false),
        Some(Err(allowed)) => {
            let mut resp = *app_error(405, "METHOD_NOT_ALLOWED", "method not allowed", None);
            resp.headers_mut().insert("allow", HeaderValue::from_static(allowed));
            return (resp, false);
        }
        Some(Ok(route)) => route,
    };
    if matches!(route, Route::Token) {
        return match parse_body(body) {
            Ok(b) => auth::token(state, &b),
            Err(resp) => (*resp, false),
        };
    }
    if let Err(resp) = auth::check(state, headers) {
        return (*resp, false);
    }
    let query = Query::parse(query);
    let result = match route {
        Route::Token => unreachable!("answered above"),
        Route::GenerateDownloadUrl => parse_body(body).and_then(|b| archives::generate_download_url(state, &b)),
        Route::GenerateFileDownloadUrl => parse_body(body).and_then(|b| files::generate_file_download_url(state, &b)),
        Route::Search => parse_body(body).and_then(|b| files::search(state, &b)),
        Route::ListFiles => files::list(state, &query),
        Route::GetFiles => parse_body(body).and_then(|b| files::get_files(state, &b)),
        Route::GetFileById => files::get_file_by_id(state, &query),
        Route::Import => parse_body(body).and_then(|b| imports::import_file(state, &b)),
        Route::ListFolders => folders::list(state, &query),
        Route::CreateFolder => parse_body(body).and_then(|b| folders::create(state, &b)),
        Route::SearchFolders => parse_body(body).and_then(|b| folders::search(state, &b)),
        Route::GetFolder(id) => folders::get(state, &id),
        Route::FolderDownload(id) => archives::folder_download(state, &id),
    };
    (result.unwrap_or_else(|e| *e), true)
}

pub(crate) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(validation_error("body", "must be a JSON object", "TYPE")),
        Err(e) => Err(validation_error("body", &format!("malformed JSON: {e}"), "FORMAT")),
    }
}

/// A query string's parameters; a name may repeat (`mediaTypes=IMAGE&mediaTypes=VIDEO`).
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(query: &str) -> Query {
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex_digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A string field; `Ok(None)` when absent or null.
pub(crate) fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Failure> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(validation_error(name, "must be a string", "TYPE")),
    }
}

/// A boolean field; `Ok(None)` when absent or null.
pub(crate) fn bool_field(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, Failure> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(validation_error(name, "must be a boolean", "TYPE")),
    }
}
