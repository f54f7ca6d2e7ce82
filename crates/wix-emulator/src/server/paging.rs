//! Cursor paging: page sizes, opaque cursors, `nextCursor` shapes and sort orders.

use serde_json::{json, Value};

use super::respond::{rule_violation, validation_error, Failure};
use crate::config::PagingStyle;
use crate::store::{Sort, SortField};

/// Page size when a call gives none.
const DEFAULT_PAGE: usize = 50;

pub(crate) fn page_limit(max: usize, limit: Option<&Value>) -> Result<usize, Failure> {
    let limit = match limit {
        None | Some(Value::Null) => return Ok(DEFAULT_PAGE),
        Some(v) => v.as_u64().or_else(|| v.as_str()?.parse().ok()),
    };
    match limit {
        Some(0) => Ok(DEFAULT_PAGE),
        Some(n) if n as usize <= max => Ok(n as usize),
        _ => Err(validation_error(
            "paging.limit",
            &format!("must be between 0 and {max}"),
            "MAX",
        )),
    }
}

/// Opaque on purpose, so that a client cannot build or edit cursors itself.
pub(crate) fn encode_cursor(offset: usize, fingerprint: u64) -> String {
    let plain = format!("{offset}.{fingerprint:016x}");
    plain.bytes().rev().map(|b| format!("{:02x}", b ^ 0x5a)).collect()
}

/// The offset a cursor stands for; it must come from the same query (filters, sort, folder).
pub(crate) fn cursor_offset(cursor: Option<&str>, fingerprint: u64) -> Result<usize, Failure> {
    let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(0);
    };
    let bad = || validation_error("paging.cursor", "invalid cursor", "INVALID_CURSOR");
    if cursor.len() % 2 != 0 || !cursor.is_ascii() {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).map(|b| b ^ 0x5a))
        .rev()
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let plain = String::from_utf8(bytes).map_err(|_| bad())?;
    let (offset, fp) = plain.split_once('.').ok_or_else(bad)?;
    if u64::from_str_radix(fp, 16).ok() != Some(fingerprint) {
        return Err(validation_error(
            "paging.cursor",
            "cursor belongs to a different query",
            "INVALID_CURSOR",
        ));
    }
    offset.parse().map_err(|_| bad())
}

/// `nextCursor` for a page that ended at `end` of `total` items.
pub(crate) fn next_cursor(style: PagingStyle, end: usize, total: usize, fingerprint: u64) -> Value {
    let more = end < total;
    let next = if more {
        encode_cursor(end, fingerprint)
    } else {
        String::new()
    };
    match style {
        PagingStyle::Documented => json!({ "cursors": { "next": next }, "hasNext": more }),
        PagingStyle::CursorsOnly => json!({ "cursors": { "next": next } }),
        PagingStyle::Legacy if more => json!({ "total": total, "cursors": { "next": next } }),
        PagingStyle::Legacy => json!({ "total": total, "cursors": {} }),
    }
}

/// Which page of a query's index a call asked for.
pub(crate) struct PageRequest {
    /// Tells queries apart; cursors carry it.
    pub(crate) fingerprint: u64,
    pub(crate) offset: usize,
    pub(crate) limit: usize,
}

impl PageRequest {
    /// The page's part of `index` and the answer's `nextCursor`.
    pub(crate) fn cut<'a>(&self, index: &'a [u32], style: PagingStyle) -> (&'a [u32], Value) {
        let start = self.offset.min(index.len());
        let end = (start + self.limit).min(index.len());
        (
            &index[start..end],
            next_cursor(style, end, index.len(), self.fingerprint),
        )
    }
}

fn field_name(field: SortField) -> &'static str {
    match field {
        SortField::DisplayName => "displayName",
        SortField::UpdatedDate => "updatedDate",
        SortField::SizeInBytes => "sizeInBytes",
    }
}

/// A sort from `fieldName` and `order`; without a field, `updatedDate` newest first (Wix's default).
pub(crate) fn parse_sort(field: Option<&str>, order: Option<&str>, allowed: &[SortField]) -> Result<Sort, Failure> {
    let field = field.filter(|f| !f.is_empty());
    let descending = match order.filter(|o| !o.is_empty()) {
        None => field.is_none(),
        Some("ASC") => false,
        Some("DESC") => true,
        Some(_) => return Err(validation_error("sort.order", "must be ASC or DESC", "ENUM")),
    };
    let Some(name) = field else {
        return Ok(Sort {
            field: SortField::UpdatedDate,
            descending,
        });
    };
    match allowed.iter().find(|f| field_name(**f) == name) {
        Some(&field) => Ok(Sort { field, descending }),
        None => {
            let allowed_values: Vec<&str> = allowed.iter().map(|f| field_name(*f)).collect();
            Err(rule_violation(
                "sort.fieldName",
                &format!("unsupported sort field {name}"),
                "UNSUPPORTED_SORT_VALUE",
                Some(json!({ "allowedValues": allowed_values, "requestValue": name })),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_query() {
        let c = encode_cursor(150, 42);
        assert_eq!(cursor_offset(Some(&c), 42).ok(), Some(150));
        assert!(cursor_offset(Some(&c), 43).is_err());
        assert!(cursor_offset(Some("zz"), 42).is_err());
        assert_eq!(cursor_offset(Some(""), 42).ok(), Some(0));
    }

    #[test]
    fn next_cursor_shapes() {
        assert_eq!(
            next_cursor(PagingStyle::Documented, 10, 10, 1),
            json!({"cursors": {"next": ""}, "hasNext": false})
        );
        assert_eq!(next_cursor(PagingStyle::Documented, 5, 10, 1)["hasNext"], true);
        assert_eq!(
            next_cursor(PagingStyle::CursorsOnly, 10, 10, 1),
            json!({"cursors": {"next": ""}})
        );
        assert_eq!(
            next_cursor(PagingStyle::Legacy, 10, 10, 1),
            json!({"total": 10, "cursors": {}})
        );
        assert!(next_cursor(PagingStyle::Legacy, 5, 10, 1)["cursors"]["next"].is_string());
    }

    #[test]
    fn sorts() {
        let all = [SortField::DisplayName, SortField::UpdatedDate, SortField::SizeInBytes];
        let s = parse_sort(None, None, &all).ok().unwrap();
        assert!(s.field == SortField::UpdatedDate && s.descending);
        let s = parse_sort(Some("sizeInBytes"), None, &all).ok().unwrap();
        assert!(s.field == SortField::SizeInBytes && !s.descending);
        assert!(
            parse_sort(Some("displayName"), Some("DESC"), &all)
                .ok()
                .unwrap()
                .descending
        );
        assert!(parse_sort(Some("createdDate"), None, &all).is_err());
        assert!(parse_sort(Some("sizeInBytes"), None, &all[..2]).is_err());
        assert!(parse_sort(None, Some("UP"), &all).is_err());
    }
}
