//! File calls: descriptors, search and listing, and per-file temporary links.

use serde_json::{json, Map, Value};

use super::file_ids::{file_id_list, unknown_ids_error, ErrorShape};
use super::paging::{cursor_offset, page_limit, parse_sort, PageRequest};
use super::respond::{app_error, json_resp, not_found, rule_violation, validation_error, Failure, Resp};
use super::routes::{bool_field, string_field, Query};
use super::State;
use crate::config::EmulatorConfig;
use crate::dates::{rfc3339_ms, unix_now};
use crate::library::fnv64;
use crate::normalize_file_id;
use crate::store::{FileFilter, FileView, Root, Scope, Sort, SortField};

const MAX_GET_FILES: usize = 100;
const SORT_FIELDS: [SortField; 3] = [SortField::DisplayName, SortField::UpdatedDate, SortField::SizeInBytes];
/// The media types a search may filter on when `OTHER` is refused (Query lists these).
const FILTERABLE: [&str; 7] = ["IMAGE", "VIDEO", "AUDIO", "DOCUMENT", "VECTOR", "ARCHIVE", "MODEL3D"];

/// A per-file temporary link handed out by Generate File Download URL.
pub(crate) struct FileLink {
    pub(crate) id: String,
    pub(crate) expires_unix: u64,
    pub(crate) file_name: Option<String>,
    pub(crate) inline: bool,
}

/// A file descriptor in Wix's REST shape.
pub(crate) fn file_json(file: &FileView, site_id: &str) -> Value {
    let id = file.id;
    let thumbnail = match file.media_type {
        "IMAGE" => format!("https://static.wixstatic.com/media/{id}/v1/fit/w_50,h_50,q_90/file.jpg"),
        _ => "https://static.wixstatic.com/media/2ba5c3_generic_icon~mv2.png".to_string(),
    };
    let mut v = json!({
        "id": id,
        "displayName": file.display_name,
        "url": format!("https://static.wixstatic.com/media/{id}"),
        "parentFolderId": file.parent_folder_id,
        "hash": file.hash,
        "private": file.private,
        "mediaType": file.media_type,
        "operationStatus": file.operation_status,
        "state": file.state,
        "sizeInBytes": file.size.map(|s| s.to_string()),
        "thumbnailUrl": thumbnail,
        "labels": [],
        "createdDate": rfc3339_ms(file.created_ms),
        "updatedDate": rfc3339_ms(file.updated_ms),
        "siteId": site_id,
    });
    if let Some(url) = file.source_url {
        v["sourceUrl"] = json!(url);
    }
    v
}

pub(crate) fn get_files(state: &State, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let ids: Vec<String> = file_id_list(body, MAX_GET_FILES)?
        .iter()
        .map(|s| normalize_file_id(s))
        .collect();
    let config = state.config();
    let store = state.store();
    let unknown: Vec<(usize, String)> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| store.lookup(id).is_none())
        .map(|(i, id)| (i, id.clone()))
        .collect();
    if !unknown.is_empty() {
        return Err(unknown_ids_error(ErrorShape::of(config.unknown_ids), &unknown));
    }
    let files: Vec<Value> = ids
        .iter()
        .filter_map(|id| store.lookup(id))
        .map(|slot| file_json(&store.view(slot), &config.site_id))
        .collect();
    Ok(json_resp(200, &json!({ "files": files })))
}

pub(crate) fn get_file_by_id(state: &State, query: &Query) -> Result<Resp, Failure> {
    let raw = query
        .get("fileId")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| validation_error("fileId", "is required", "REQUIRED_FIELD"))?;
    let id = normalize_file_id(raw);
    let config = state.config();
    let store = state.store();
    let Some(slot) = store.lookup(&id) else {
        let description = format!("file {id} not found");
        return Err(match ErrorShape::of(config.unknown_ids) {
            ErrorShape::Application => not_found("file", &id),
            ErrorShape::ValidationUnnamed => rule_violation("fileId", &description, "RESOURCE_NOT_FOUND", None),
            ErrorShape::Validation => rule_violation(
                "fileId",
                &description,
                "RESOURCE_NOT_FOUND",
                Some(json!({ "fileIds": [id] })),
            ),
        });
    };
    Ok(json_resp(
        200,
        &json!({ "file": file_json(&store.view(slot), &config.site_id) }),
    ))
}

/// Refuses an `OTHER` filter when the mode says so; Wix documents `UNSUPPORTED_MEDIA_TYPE`.
fn check_media_types(config: &EmulatorConfig, media_types: &[String]) -> Result<(), Failure> {
    if config.refuse_other_media_type && media_types.iter().any(|t| t == "OTHER") {
        return Err(rule_violation(
            "mediaTypes",
            "files of media type OTHER cannot be filtered on",
            "UNSUPPORTED_MEDIA_TYPE",
            Some(json!({ "allowedValues": FILTERABLE, "requestValue": "OTHER" })),
        ));
    }
    Ok(())
}

/// One page of file slots and the answer's `nextCursor`.
fn file_page(state: &State, config: &EmulatorConfig, filter: &FileFilter, sort: Sort, page: &PageRequest) -> Resp {
    let mut store = state.store();
    let index = store.files_matching(page.fingerprint, filter, sort);
    let (items, next) = page.cut(&index, config.paging);
    let files: Vec<Value> = items
        .iter()
        .map(|&slot| file_json(&store.view(slot), &config.site_id))
        .collect();
    json_resp(200, &json!({ "files": files, "nextCursor": next }))
}

pub(crate) fn search(state: &State, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let config = state.config();
    let text = string_field(body, "search")?.unwrap_or("").to_lowercase();
    let root = match string_field(body, "rootFolder")?.unwrap_or("MEDIA_ROOT") {
        "MEDIA_ROOT" => Root::Media,
        "TRASH_ROOT" => Root::Trash,
        "VISITOR_UPLOADS_ROOT" => Root::Visitor,
        _ => {
            return Err(validation_error(
                "rootFolder",
                "must be MEDIA_ROOT, TRASH_ROOT or VISITOR_UPLOADS_ROOT",
                "ENUM",
            ))
        }
    };
    let media_types: Vec<String> = match body.get("mediaTypes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| validation_error("mediaTypes", "must be strings", "TYPE"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(validation_error("mediaTypes", "must be an array", "TYPE")),
    };
    check_media_types(&config, &media_types)?;
    let private = bool_field(body, "private")?;
    let sort = body.get("sort").filter(|v| !v.is_null());
    let sort = parse_sort(
        sort.and_then(|s| s.get("fieldName")).and_then(Value::as_str),
        sort.and_then(|s| s.get("order")).and_then(Value::as_str),
        &SORT_FIELDS,
    )?;
    let paging = body.get("paging");
    let limit = page_limit(config.max_search_page, paging.and_then(|p| p.get("limit")))?;
    let cursor = paging.and_then(|p| p.get("cursor")).and_then(Value::as_str);

    let mut sorted_types = media_types.clone();
    sorted_types.sort();
    let fingerprint =
        fnv64(format!("search|{text}|{root:?}|{}|{private:?}|{sort:?}", sorted_types.join(",")).as_bytes());
    let offset = cursor_offset(cursor, fingerprint)?;
    let filter = FileFilter {
        scope: Scope::Root(root),
        media_types: &media_types,
        private,
        text: &text,
    };
    let page = PageRequest {
        fingerprint,
        offset,
        limit,
    };
    Ok(file_page(state, &config, &filter, sort, &page))
}

/// `GET /files`: one folder's files, with Wix's query parameters.
pub(crate) fn list(state: &State, query: &Query) -> Result<Resp, Failure> {
    let config = state.config();
    let parent = query
        .get("parentFolderId")
        .filter(|s| !s.is_empty())
        .unwrap_or(crate::MEDIA_ROOT);
    let limit = page_limit(
        config.max_search_page,
        query.get("paging.limit").map(|s| json!(s)).as_ref(),
    )?;
    let media_types = query.all("mediaTypes");
    check_media_types(&config, &media_types)?;
    let private = match query.get("private") {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(validation_error("private", "must be true or false", "TYPE")),
    };
    let sort = parse_sort(query.get("sort.fieldName"), query.get("sort.order"), &SORT_FIELDS)?;
    let mut sorted_types = media_types.clone();
    sorted_types.sort();
    let fingerprint = fnv64(format!("files|{parent}|{}|{private:?}|{sort:?}", sorted_types.join(",")).as_bytes());
    let offset = cursor_offset(query.get("paging.cursor"), fingerprint)?;
    let filter = FileFilter {
        scope: Scope::Parent(parent),
        media_types: &media_types,
        private,
        text: "",
    };
    let page = PageRequest {
        fingerprint,
        offset,
        limit,
    };
    Ok(file_page(state, &config, &filter, sort, &page))
}

pub(crate) fn generate_file_download_url(state: &State, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let raw = match body.get("fileId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(validation_error("fileId", "is required", "REQUIRED_FIELD"))
        }
        Some(_) => return Err(validation_error("fileId", "must be a string", "TYPE")),
    };
    if raw.chars().count() > 1000 {
        return Err(validation_error(
            "fileId",
            "must be at most 1000 characters",
            "MAX_LENGTH",
        ));
    }
    let minutes = match body.get("expirationInMinutes") {
        None | Some(Value::Null) => 600,
        Some(v) => match v.as_u64().or_else(|| v.as_str()?.parse().ok()) {
            Some(m) if (1..=525_600).contains(&m) => m,
            _ => {
                return Err(validation_error(
                    "expirationInMinutes",
                    "must be between 1 and 525600",
                    "RANGE",
                ))
            }
        },
    };
    let file_name = match body.get("downloadFileName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 100 => Some(s.clone()),
        Some(_) => {
            return Err(validation_error(
                "downloadFileName",
                "must be a string of at most 100 characters",
                "MAX_LENGTH",
            ))
        }
    };
    let inline = match body.get("contentDisposition").and_then(Value::as_str) {
        None | Some("ATTACHMENT") => false,
        Some("INLINE") => true,
        Some(_) => {
            return Err(validation_error(
                "contentDisposition",
                "must be ATTACHMENT or INLINE",
                "ENUM",
            ))
        }
    };
    let asset_keys: Vec<String> = match body.get("assetKeys") {
        None | Some(Value::Null) => vec!["src".into()],
        Some(Value::Array(keys)) if keys.is_empty() => vec!["src".into()],
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| match k.as_str() {
                Some("src") => Ok("src".to_string()),
                _ => Err(app_error(
                    400,
                    "INVALID_ASSET_KEY",
                    "only the asset key src exists for this file",
                    Some(json!({ "assetKey": k })),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(validation_error("assetKeys", "must be an array", "TYPE")),
    };
    let id = normalize_file_id(&raw);
    if state.store().lookup(&id).is_none() {
        return Err(not_found("file", &id));
    }
    let expires_unix = unix_now() + minutes * 60;
    let mut urls = Vec::new();
    for key in asset_keys {
        let token = state.token(32);
        state.lock().file_links.insert(
            token.clone(),
            FileLink {
                id: id.clone(),
                expires_unix,
                file_name: file_name.clone(),
                inline,
            },
        );
        let url = format!(
            "{}/_emulator/files/{id}?token={token}&expires={expires_unix}",
            state.base_url
        );
        urls.push(json!({ "url": url, "assetKey": key }));
    }
    Ok(json_resp(200, &json!({ "downloadUrls": urls })))
}
