//! The body of `POST /archives`: parsed leniently so every bad field is named, then
//! validated into an [`ArchiveRequest`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::address;
use super::ids::{self, UniqueIds};

/// Most addresses one request may ask the links to be mailed to.
pub const MAX_EMAIL_RECIPIENTS: usize = 10;
/// Most field errors listed in one refusal, so a huge bad body gets a small answer.
const MAX_DETAILS: usize = 100;

/// A validated request: unique normalized IDs in first-seen order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRequest<'a> {
    pub ids: UniqueIds<'a>,
    pub email: Vec<String>,
    pub resolve_private: bool,
    /// Run as a job and answer at once (`"async": true`).
    pub asynchronous: bool,
}

/// What the configuration allows a request to ask for.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Files a synchronous request may list.
    pub max_files: usize,
    /// Files a job (`"async": true`, or `Prefer: respond-async`) may list.
    pub max_files_async: usize,
    pub email_enabled: bool,
    /// The caller asked for a job outside the body (`Prefer: respond-async`).
    pub prefer_async: bool,
}

/// One field that is wrong, named as the caller wrote it (`fileIds[3]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a body was refused; each maps to one row of the contract's error table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the request has invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("e-mail delivery is not configured (EMAIL_FROM is unset)")]
    EmailDisabled,
    #[error("{count} unique files requested; at most {max} are allowed per request")]
    TooManyFiles { count: usize, max: usize },
}

/// Parses and validates a raw body.
pub fn parse(body: &[u8], limits: RequestLimits) -> Result<ArchiveRequest<'_>, RequestError> {
    // JSON is UTF-8; checked up front because serde_json does not check the strings it skips.
    let body = std::str::from_utf8(body)
        .map_err(|e| RequestError::InvalidJson(format!("the body is not UTF-8 (at byte {})", e.valid_up_to())))?;
    let raw: RawBody = serde_json::from_str(body).map_err(|e| {
        if e.is_data() {
            // Only the shape visitors below report data errors, and they never fail.
            RequestError::Invalid(vec![FieldError::new("body", e.to_string())])
        } else {
            RequestError::InvalidJson(e.to_string())
        }
    })?;
    raw.validate(limits)
}

impl<'a> RawBody<'a> {
    fn validate(self, limits: RequestLimits) -> Result<ArchiveRequest<'a>, RequestError> {
        let mut errors = Vec::new();
        if let Some(shape) = self.not_object {
            errors.push(FieldError::new("body", format!("must be a JSON object, not {shape}")));
            return Err(RequestError::Invalid(errors));
        }
        for name in &self.repeated {
            errors.push(FieldError::new(name.clone(), "appears more than once"));
        }
        for name in &self.unknown {
            errors.push(FieldError::new(name.clone(), "is not a known field"));
        }

        let mut normalized: Vec<Cow<'a, str>> = Vec::new();
        match self.file_ids {
            None | Some(Lenient::Null) => errors.push(FieldError::new("fileIds", "is required")),
            Some(Lenient::Wrong(shape)) => errors.push(FieldError::new(
                "fileIds",
                format!("must be an array of strings, not {shape}"),
            )),
            Some(Lenient::Ok(file_ids)) if file_ids.entries == 0 => {
                errors.push(FieldError::new("fileIds", "must list at least one file"))
            }
            Some(Lenient::Ok(file_ids)) => {
                errors.extend(file_ids.errors);
                normalized = file_ids.ids;
            }
        }

        let mut email = Vec::new();
        match &self.email {
            None | Some(Lenient::Null) => {}
            Some(Lenient::Wrong(shape)) => errors.push(FieldError::new(
                "email",
                format!("must be an array of addresses, not {shape}"),
            )),
            Some(Lenient::Ok(entries)) => {
                if entries.len() > MAX_EMAIL_RECIPIENTS {
                    errors.push(FieldError::new(
                        "email",
                        format!(
                            "lists {} addresses; at most {MAX_EMAIL_RECIPIENTS} are allowed",
                            entries.len()
                        ),
                    ));
                }
                for (i, entry) in entries.iter().enumerate() {
                    match entry {
                        Entry::Str(s) if address::is_valid(s.trim()) => {
                            let s = s.trim();
                            if !email.iter().any(|e: &String| e.eq_ignore_ascii_case(s)) {
                                email.push(s.to_owned());
                            }
                        }
                        Entry::Str(_) => {
                            errors.push(FieldError::new(format!("email[{i}]"), "is not a valid e-mail address"))
                        }
                        Entry::Wrong(shape) => errors.push(FieldError::new(
                            format!("email[{i}]"),
                            format!("must be a string, not {shape}"),
                        )),
                    }
                }
            }
        }

        let asynchronous = limits.prefer_async
            || match self.asynchronous {
                None | Some(Lenient::Null) => false,
                Some(Lenient::Ok(b)) => b,
                Some(Lenient::Wrong(shape)) => {
                    errors.push(FieldError::new("async", format!("must be true or false, not {shape}")));
                    false
                }
            };

        let resolve_private = match self.resolve_private {
            None | Some(Lenient::Null) => false,
            Some(Lenient::Ok(b)) => b,
            Some(Lenient::Wrong(shape)) => {
                errors.push(FieldError::new(
                    "resolvePrivate",
                    format!("must be true or false, not {shape}"),
                ));
                false
            }
        };

        if !errors.is_empty() {
            if errors.len() > MAX_DETAILS {
                let more = errors.len() - MAX_DETAILS;
                errors.truncate(MAX_DETAILS);
                errors.push(FieldError::new("…", format!("{more} more fields are invalid")));
            }
            return Err(RequestError::Invalid(errors));
        }
        if !email.is_empty() && !limits.email_enabled {
            return Err(RequestError::EmailDisabled);
        }
        let unique = ids::dedupe(normalized);
        let max = if asynchronous {
            limits.max_files_async
        } else {
            limits.max_files
        };
        if unique.ids.len() > max {
            return Err(RequestError::TooManyFiles {
                count: unique.ids.len(),
                max,
            });
        }
        Ok(ArchiveRequest {
            ids: unique,
            email,
            resolve_private,
            asynchronous,
        })
    }
}

/// The body as sent, with wrong shapes recorded instead of failing the parse.
#[derive(Default)]
struct RawBody<'a> {
    file_ids: Option<Lenient<FileIds<'a>>>,
    email: Option<Lenient<Vec<Entry<'a>>>>,
    resolve_private: Option<Lenient<bool>>,
    asynchronous: Option<Lenient<bool>>,
    unknown: Vec<String>,
    repeated: Vec<String>,
    not_object: Option<&'static str>,
}

/// A field's value, or the JSON shape found instead of the expected one.
enum Lenient<T> {
    Ok(T),
    Null,
    Wrong(&'static str),
}

/// One array entry: a string, or the JSON shape found instead.
enum Entry<'a> {
    Str(Cow<'a, str>),
    Wrong(&'static str),
}

/// Visitor methods that answer "wrong shape" for every JSON kind not listed in the
/// visitor itself, draining nested values so the parse goes on.
macro_rules! wrong_shapes {
    ($wrong:expr; $($kind:ident),*) => {
        $(wrong_shapes!(@one $kind, $wrong);)*
    };
    (@one bool, $wrong:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> { Ok($wrong("a boolean")) }
    };
    (@one num, $wrong:expr) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> { Ok($wrong("a number")) }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> { Ok($wrong("a number")) }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> { Ok($wrong("a number")) }
    };
    (@one str, $wrong:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> { Ok($wrong("a string")) }
    };
    (@one unit, $wrong:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> { Ok($wrong("null")) }
    };
    (@one seq, $wrong:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($wrong("an array"))
        }
    };
    (@one map, $wrong:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($wrong("an object"))
        }
    };
}

impl<'de> Deserialize<'de> for Entry<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Entry::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Entry::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Entry::Str(Cow::Owned(s)))
            }
            wrong_shapes!(Entry::Wrong; bool, num, unit, seq, map);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Lenient<Vec<Entry<'de>>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<Vec<Entry<'de>>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(entry) = seq.next_element()? {
                    out.push(entry);
                }
                Ok(Lenient::Ok(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient::Null)
            }
            wrong_shapes!(Lenient::Wrong; bool, num, str, map);
        }
        d.deserialize_any(V)
    }
}

/// `fileIds` as read: each entry normalized as soon as it is read (no list of raw entries is
/// kept), and each bad one named.
struct FileIds<'a> {
    /// The normalized IDs in order, borrowing from the body unless the entry had escapes.
    ids: Vec<Cow<'a, str>>,
    /// How many entries the array had, good and bad.
    entries: usize,
    errors: Vec<FieldError>,
}

impl<'de> Deserialize<'de> for Lenient<FileIds<'de>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<FileIds<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = FileIds {
                    ids: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096)),
                    entries: 0,
                    errors: Vec::new(),
                };
                while let Some(entry) = seq.next_element::<Entry<'de>>()? {
                    let field = |i: usize| format!("fileIds[{i}]");
                    let i = out.entries;
                    out.entries += 1;
                    let id = match entry {
                        // Read from the body as it is: the ID borrows from the body.
                        Entry::Str(Cow::Borrowed(s)) => ids::normalize(s).map(Cow::Borrowed),
                        // Unescaped into a string of its own.
                        Entry::Str(Cow::Owned(s)) => ids::normalize(&s).map(|id| Cow::Owned(id.to_owned())),
                        Entry::Wrong(shape) => {
                            out.errors
                                .push(FieldError::new(field(i), format!("must be a string, not {shape}")));
                            continue;
                        }
                    };
                    match id {
                        Ok(id) => out.ids.push(id),
                        Err(e) => out.errors.push(FieldError::new(field(i), e.to_string())),
                    }
                }
                Ok(Lenient::Ok(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient::Null)
            }
            wrong_shapes!(Lenient::Wrong; bool, num, str, map);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Lenient<bool> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<bool>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Lenient::Ok(b))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient::Null)
            }
            wrong_shapes!(Lenient::Wrong; num, str, seq, map);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawBody<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn not_object(shape: &'static str) -> RawBody<'static> {
            RawBody {
                not_object: Some(shape),
                ..RawBody::default()
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = RawBody<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut body = RawBody::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let slot_taken = match key.as_ref() {
                        "fileIds" => body.file_ids.replace(map.next_value()?).is_some(),
                        "email" => body.email.replace(map.next_value()?).is_some(),
                        "resolvePrivate" => body.resolve_private.replace(map.next_value()?).is_some(),
                        "async" => body.asynchronous.replace(map.next_value()?).is_some(),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            body.unknown.push(key.clone().into_owned());
                            false
                        }
                    };
                    if slot_taken {
                        body.repeated.push(key.into_owned());
                    }
                }
                Ok(body)
            }
            wrong_shapes!(not_object; bool, num, str, unit, seq);
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_files: 5,
        max_files_async: 7,
        email_enabled: true,
        prefer_async: false,
    };

    fn fields(err: RequestError) -> Vec<String> {
        match err {
            RequestError::Invalid(list) => list.into_iter().map(|f| f.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request() {
        let body = br#"{"fileIds": ["a1", "wix:image://v1/a1/x.jpg#w=1", " b2 ", "a1"],
                        "email": ["o@example.com", "O@example.com"], "resolvePrivate": true}"#;
        let req = parse(body, LIMITS).unwrap();
        assert_eq!(req.ids.ids, vec!["a1", "b2"]);
        assert_eq!(req.ids.duplicates_removed, 2);
        assert_eq!(req.email, vec!["o@example.com"]);
        assert!(req.resolve_private);
    }

    #[test]
    fn escaped_strings_are_read() {
        let req = parse(br#"{"fileIds": ["a\u0031"]}"#, LIMITS).unwrap();
        assert_eq!(req.ids.ids, vec!["a1"]);
    }

    #[test]
    fn not_json() {
        for body in [
            &b""[..],
            b"{",
            b"{\"fileIds\": [}",
            b"nul",
            b"{\"fileIds\": [\"\xff\"]}",
            b"{} x",
        ] {
            assert!(
                matches!(parse(body, LIMITS), Err(RequestError::InvalidJson(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_anywhere_is_not_json() {
        for body in [&b"[\"\xff\"]"[..], b"{\"fileIds\": [\"a\"], \"x\": \"\xc3\"}"] {
            assert!(
                matches!(parse(body, LIMITS), Err(RequestError::InvalidJson(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = br#"{"fileIds": ["ok", 3, "a/b", "", null, {"x": [1]}], "email": ["nope", 5],
                        "resolvePrivate": "yes", "extra": {"deep": [1, 2]}}"#;
        let got = fields(parse(body, LIMITS).unwrap_err());
        assert_eq!(
            got,
            vec![
                "extra",
                "fileIds[1]",
                "fileIds[2]",
                "fileIds[3]",
                "fileIds[4]",
                "fileIds[5]",
                "email[0]",
                "email[1]",
                "resolvePrivate"
            ]
        );
    }

    #[test]
    fn wrong_shapes_and_missing() {
        assert_eq!(fields(parse(b"{}", LIMITS).unwrap_err()), vec!["fileIds"]);
        assert_eq!(
            fields(parse(br#"{"fileIds": null}"#, LIMITS).unwrap_err()),
            vec!["fileIds"]
        );
        assert_eq!(
            fields(parse(br#"{"fileIds": []}"#, LIMITS).unwrap_err()),
            vec!["fileIds"]
        );
        assert_eq!(
            fields(parse(br#"{"fileIds": "a1"}"#, LIMITS).unwrap_err()),
            vec!["fileIds"]
        );
        assert_eq!(
            fields(parse(br#"{"fileIds": {"a": 1}}"#, LIMITS).unwrap_err()),
            vec!["fileIds"]
        );
        assert_eq!(
            fields(parse(br#"{"fileIds": ["a"], "email": "o@example.com"}"#, LIMITS).unwrap_err()),
            vec!["email"]
        );
        assert_eq!(
            fields(parse(br#"{"fileIds": ["a"], "fileIds": ["b"]}"#, LIMITS).unwrap_err()),
            vec!["fileIds"]
        );
        for body in [&br#"[]"#[..], b"\"x\"", b"1", b"true", b"null"] {
            assert_eq!(fields(parse(body, LIMITS).unwrap_err()), vec!["body"], "{body:?}");
        }
    }

    #[test]
    fn email_limits() {
        let many: Vec<String> = (0..11).map(|i| format!("\"u{i}@example.com\"")).collect();
        let body = format!(r#"{{"fileIds": ["a"], "email": [{}]}}"#, many.join(","));
        assert_eq!(fields(parse(body.as_bytes(), LIMITS).unwrap_err()), vec!["email"]);
        let off = RequestLimits {
            email_enabled: false,
            ..LIMITS
        };
        assert_eq!(
            parse(br#"{"fileIds": ["a"], "email": ["o@example.com"]}"#, off),
            Err(RequestError::EmailDisabled)
        );
        assert!(parse(br#"{"fileIds": ["a"], "email": []}"#, off).is_ok());
        assert!(parse(br#"{"fileIds": ["a"], "email": null}"#, off).is_ok());
    }

    #[test]
    fn count_is_checked_after_fields_on_unique_ids() {
        let ok = br#"{"fileIds": ["a", "b", "c", "d", "e", "a", "b"]}"#;
        assert_eq!(parse(ok, LIMITS).unwrap().ids.ids.len(), 5);
        let six = br#"{"fileIds": ["a", "b", "c", "d", "e", "f"]}"#;
        assert_eq!(parse(six, LIMITS), Err(RequestError::TooManyFiles { count: 6, max: 5 }));
        let six_and_bad = br#"{"fileIds": ["a", "b", "c", "d", "e", "f", "/"]}"#;
        assert_eq!(fields(parse(six_and_bad, LIMITS).unwrap_err()), vec!["fileIds[6]"]);
    }

    #[test]
    fn jobs_may_list_more_files() {
        let six = br#"{"fileIds": ["a", "b", "c", "d", "e", "f"], "async": true}"#;
        let request = parse(six, LIMITS).unwrap();
        assert!(request.asynchronous);
        assert_eq!(request.ids.ids.len(), 6);
        let eight = br#"{"fileIds": ["a", "b", "c", "d", "e", "f", "g", "h"], "async": true}"#;
        assert_eq!(
            parse(eight, LIMITS),
            Err(RequestError::TooManyFiles { count: 8, max: 7 })
        );
        // The header asks for a job as the body's flag does.
        let header = RequestLimits {
            prefer_async: true,
            ..LIMITS
        };
        let six = br#"{"fileIds": ["a", "b", "c", "d", "e", "f"]}"#;
        assert!(parse(six, header).unwrap().asynchronous);
        assert_eq!(
            fields(parse(br#"{"fileIds": ["a"], "async": "yes"}"#, LIMITS).unwrap_err()),
            vec!["async"]
        );
    }

    #[test]
    fn details_are_capped() {
        let bad: Vec<&str> = vec!["1"; 500];
        let body = format!(r#"{{"fileIds": [{}]}}"#, bad.join(","));
        let errs = match parse(body.as_bytes(), LIMITS).unwrap_err() {
            RequestError::Invalid(list) => list,
            other => panic!("{other:?}"),
        };
        assert_eq!(errs.len(), MAX_DETAILS + 1);
        assert!(errs.last().unwrap().message.contains("400 more"));
    }
}
