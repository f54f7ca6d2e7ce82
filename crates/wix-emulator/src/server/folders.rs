//! Folder calls: list one folder's sub-folders, get one, create one, search a whole root.

use serde_json::{json, Map, Value};

use super::paging::{cursor_offset, page_limit, parse_sort, PageRequest};
use super::respond::{json_resp, not_found, rule_violation, validation_error, Failure, Resp};
use super::routes::{string_field, Query};
use super::State;
use crate::config::EmulatorConfig;
use crate::dates::rfc3339_ms;
use crate::library::fnv64;
use crate::store::{FolderView, Root, Scope, Sort, SortField};
use crate::MEDIA_ROOT;

/// Folders sort by these only (the SDK lists no size for them).
const SORT_FIELDS: [SortField; 2] = [SortField::DisplayName, SortField::UpdatedDate];
const MAX_NAME_CHARS: usize = 1000;

/// A folder in Wix's REST shape.
pub(crate) fn folder_json(folder: &FolderView, site_id: &str) -> Value {
    json!({
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent_folder_id,
        "createdDate": rfc3339_ms(folder.created_ms),
        "updatedDate": rfc3339_ms(folder.updated_ms),
        "state": folder.state,
        "siteId": site_id,
    })
}

fn folder_page(
    state: &State,
    config: &EmulatorConfig,
    scope: Scope,
    text: &str,
    sort: Sort,
    page: &PageRequest,
) -> Resp {
    let mut store = state.store();
    let index = store.folders_matching(page.fingerprint, scope, text, sort);
    let (items, next) = page.cut(&index, config.paging);
    let folders: Vec<Value> = items
        .iter()
        .map(|&slot| folder_json(&store.folder_view(slot), &config.site_id))
        .collect();
    json_resp(200, &json!({ "folders": folders, "nextCursor": next }))
}

/// `GET /folders?parentFolderId=…`: the folders directly in one folder.
pub(crate) fn list(state: &State, query: &Query) -> Result<Resp, Failure> {
    let config = state.config();
    let parent = query
        .get("parentFolderId")
        .filter(|s| !s.is_empty())
        .unwrap_or(MEDIA_ROOT);
    let limit = page_limit(
        config.max_search_page,
        query.get("paging.limit").map(|s| json!(s)).as_ref(),
    )?;
    let sort = parse_sort(query.get("sort.fieldName"), query.get("sort.order"), &SORT_FIELDS)?;
    let fingerprint = fnv64(format!("folders|{parent}|{sort:?}").as_bytes());
    let offset = cursor_offset(query.get("paging.cursor"), fingerprint)?;
    let page = PageRequest {
        fingerprint,
        offset,
        limit,
    };
    Ok(folder_page(state, &config, Scope::Parent(parent), "", sort, &page))
}

/// `POST /folders/search`: every folder at any level of a root, in pages.
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
    let sort = body.get("sort").filter(|v| !v.is_null());
    let sort = parse_sort(
        sort.and_then(|s| s.get("fieldName")).and_then(Value::as_str),
        sort.and_then(|s| s.get("order")).and_then(Value::as_str),
        &SORT_FIELDS,
    )?;
    let paging = body.get("paging");
    let limit = page_limit(config.max_search_page, paging.and_then(|p| p.get("limit")))?;
    let fingerprint = fnv64(format!("folder-search|{text}|{root:?}|{sort:?}").as_bytes());
    let offset = cursor_offset(
        paging.and_then(|p| p.get("cursor")).and_then(Value::as_str),
        fingerprint,
    )?;
    let page = PageRequest {
        fingerprint,
        offset,
        limit,
    };
    Ok(folder_page(state, &config, Scope::Root(root), &text, sort, &page))
}

pub(crate) fn get(state: &State, id: &str) -> Result<Resp, Failure> {
    let site = state.site_id();
    let store = state.store();
    let slot = store.folder_lookup(id).ok_or_else(|| not_found("folder", id))?;
    Ok(json_resp(
        200,
        &json!({ "folder": folder_json(&store.folder_view(slot), &site) }),
    ))
}

/// `POST /folders` with `displayName` and `parentFolderId` (default `media-root`).
pub(crate) fn create(state: &State, body: &Map<String, Value>) -> Result<Resp, Failure> {
    let name = match string_field(body, "displayName")? {
        Some(n) if !n.trim().is_empty() && n.chars().count() <= MAX_NAME_CHARS => n,
        Some(n) if !n.trim().is_empty() => {
            return Err(validation_error(
                "displayName",
                &format!("must be at most {MAX_NAME_CHARS} characters"),
                "MAX_LENGTH",
            ))
        }
        _ => return Err(validation_error("displayName", "is required", "REQUIRED_FIELD")),
    };
    let parent = string_field(body, "parentFolderId")?
        .filter(|p| !p.is_empty())
        .unwrap_or(MEDIA_ROOT);
    let site = state.site_id();
    let mut store = state.store();
    let slot = store.add_folder(name, parent).map_err(|_| parent_not_found(parent))?;
    Ok(json_resp(
        200,
        &json!({ "folder": folder_json(&store.folder_view(slot), &site) }),
    ))
}

/// A parent folder that does not exist, in the lookups' validation shape.
pub(crate) fn parent_not_found(parent: &str) -> Failure {
    rule_violation(
        "parentFolderId",
        &format!("folder {parent} not found"),
        "RESOURCE_NOT_FOUND",
        Some(json!({ "folderId": parent })),
    )
}
