//! The `fileIds` lists calls take, and the errors ids that are not in the library get.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::respond::{app_error, validation_error, violations, Failure, Violation};
use crate::config::UnknownIds;
use crate::normalize_file_id;

const MAX_ID_CHARS: usize = 1000;

/// Reads `fileIds` as 1..=max strings of at most 1000 characters each.
pub(crate) fn file_id_list(body: &Map<String, Value>, max: usize) -> Result<Vec<String>, Failure> {
    let list = match body.get("fileIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(validation_error("fileIds", "must be an array", "TYPE")),
    };
    if list.is_empty() {
        return Err(validation_error("fileIds", "must have at least 1 entry", "MIN_SIZE"));
    }
    if list.len() > max {
        return Err(validation_error(
            "fileIds",
            &format!("must have at most {max} entries"),
            "MAX_SIZE",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| match v.as_str() {
            Some(s) if s.chars().count() > MAX_ID_CHARS => Err(validation_error(
                &format!("fileIds[{i}]"),
                &format!("must be at most {MAX_ID_CHARS} characters"),
                "MAX_LENGTH",
            )),
            Some(s) => Ok(s.to_string()),
            None => Err(validation_error(&format!("fileIds[{i}]"), "must be a string", "TYPE")),
        })
        .collect()
}

/// Bare ids in request order, each with the index it first stood at; repeats (also as media URLs) dropped.
pub(crate) fn unique_ids(raw: &[String]) -> Vec<(usize, String)> {
    let mut seen = HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, s)| (i, normalize_file_id(s)))
        .filter(|(_, id)| seen.insert(id.clone()))
        .collect()
}

/// How a lookup refuses unknown ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorShape {
    /// One `validationError` field violation per id, naming it.
    Validation,
    /// One `validationError` field violation on the list, naming none.
    ValidationUnnamed,
    /// `applicationError` `RESOURCE_NOT_FOUND` with every id.
    Application,
}

impl ErrorShape {
    /// The shape Get Files and Get File By Id use under an archive mode.
    pub(crate) fn of(mode: UnknownIds) -> ErrorShape {
        match mode {
            UnknownIds::Reject => ErrorShape::Application,
            UnknownIds::ValidationUnnamed => ErrorShape::ValidationUnnamed,
            _ => ErrorShape::Validation,
        }
    }
}

/// 400 for `unknown` ids (with their indexes in the request's `fileIds`).
pub(crate) fn unknown_ids_error(shape: ErrorShape, unknown: &[(usize, String)]) -> Failure {
    match shape {
        ErrorShape::Application => app_error(
            400,
            "RESOURCE_NOT_FOUND",
            &format!("{} of the files were not found", unknown.len()),
            Some(json!({ "fileIds": unknown.iter().map(|(_, id)| id).collect::<Vec<_>>() })),
        ),
        ErrorShape::ValidationUnnamed => violations(&[Violation {
            field: "fileIds".into(),
            description: "some of the files were not found".into(),
            rule: "OTHER",
            rule_name: Some("RESOURCE_NOT_FOUND"),
            data: None,
        }]),
        ErrorShape::Validation => violations(
            &unknown
                .iter()
                .map(|(i, id)| Violation {
                    field: format!("fileIds[{i}]"),
                    description: format!("file {id} not found"),
                    rule: "OTHER",
                    rule_name: Some("RESOURCE_NOT_FOUND"),
                    data: Some(json!({ "fileIds": [id] })),
                })
                .collect::<Vec<_>>(),
        ),
    }
}
