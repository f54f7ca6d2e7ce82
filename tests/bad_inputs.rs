//! A table of bad inputs — bodies, headers, encodings, methods, paths, foreign events and
//! bad configuration — each with its documented outcome. None reaches Wix.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use wix_emulator::{EmulatorConfig, Library};
use wix_media_archiver::config::Config;
use wix_media_archiver::{local, signature};

/// What an input must produce.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An HTTP answer with this status and error code.
    Http(u16, &'static str),
    /// A failed invocation with this error type.
    Fails(&'static str),
}

fn sig(body: &[u8]) -> String {
    signature::sign(CALLER_KEY, local::unix_now(), body)
}

/// A signed Function URL `POST /archives` with raw body bytes.
fn post(body: &[u8]) -> Value {
    post_with(body, &[])
}

fn post_with(body: &[u8], headers: &[(&str, &str)]) -> Value {
    let signature = sig(body);
    let mut all: Vec<(&str, &str)> = vec![("x-archive-signature", signature.as_str())];
    all.extend_from_slice(headers);
    match std::str::from_utf8(body) {
        Ok(text) => function_url_event("POST", "/archives", text, &all),
        Err(_) => {
            let mut event = function_url_event("POST", "/archives", "", &all);
            event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
            event["isBase64Encoded"] = json!(true);
            event
        }
    }
}

fn with_signature(body: &str, header: &str) -> Value {
    function_url_event("POST", "/archives", body, &[("x-archive-signature", header)])
}

fn request(method: &str, path: &str) -> Value {
    let body = r#"{"fileIds": ["a1"]}"#;
    function_url_event(method, path, body, &[("x-archive-signature", &sig(body.as_bytes()))])
}

fn nested(depth: usize) -> String {
    format!(
        r#"{{"fileIds": ["a1"], "extra": {}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

fn cases() -> Vec<(String, Value, Expect)> {
    use Expect::*;
    let mut c: Vec<(String, Value, Expect)> = Vec::new();
    let mut add = |name: &str, event: Value, expect: Expect| c.push((name.to_owned(), event, expect));
    let now = local::unix_now();
    let good = br#"{"fileIds": ["a1"]}"#;
    let good_sig = sig(good);
    let good_hex = good_sig.split("v1=").nth(1).unwrap().to_owned();
    let good_text = std::str::from_utf8(good).unwrap();

    // Bodies that are not JSON.
    for (name, body) in [
        ("empty body", &b""[..]),
        ("open brace", b"{"),
        ("unterminated array", br#"{"fileIds": ["a1""#),
        ("trailing garbage", br#"{"fileIds": ["a1"]} x"#),
        ("trailing comma", br#"{"fileIds": ["a1"],}"#),
        ("single quotes", b"{'fileIds': ['a1']}"),
        ("NaN", br#"{"fileIds": ["a1"], "x": NaN}"#),
        ("comment", br#"{"fileIds": ["a1"] /* c */}"#),
        ("byte order mark", b"\xef\xbb\xbf{\"fileIds\": [\"a1\"]}"),
        ("invalid UTF-8 in a string", b"{\"fileIds\": [\"a\xff\"]}"),
        ("invalid UTF-8 outside strings", b"{\"fileIds\": [\"a1\"]\xc3}"),
        ("lone surrogate escape", br#"{"fileIds": ["\ud800"]}"#),
        ("bare word", b"fileIds"),
        ("only whitespace", b"  \n\t "),
        ("NUL byte", b"\0"),
        ("unquoted key", br#"{fileIds: ["a1"]}"#),
        ("missing colon", br#"{"fileIds" ["a1"]}"#),
    ] {
        add(name, post(body), Http(400, "INVALID_JSON"));
    }
    // Deep nesting is valid JSON: it is skipped without recursion and refused by field.
    add(
        "nesting 200 deep in an unknown field",
        post(nested(200).as_bytes()),
        Http(400, "INVALID_REQUEST"),
    );
    add(
        "nesting 100000 deep in an unknown field",
        post(nested(100_000).as_bytes()),
        Http(400, "INVALID_REQUEST"),
    );
    let deep_entry = format!(r#"{{"fileIds": [{}{}]}}"#, "[".repeat(50_000), "]".repeat(50_000));
    add(
        "nesting 50000 deep in an id",
        post(deep_entry.as_bytes()),
        Http(400, "INVALID_REQUEST"),
    );
    let deep_body = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    add(
        "a body nested 50000 deep",
        post(deep_body.as_bytes()),
        Http(400, "INVALID_REQUEST"),
    );

    // JSON of the wrong shape.
    for (name, body) in [
        ("null body", "null"),
        ("array body", "[]"),
        ("string body", r#""a1""#),
        ("number body", "42"),
        ("boolean body", "true"),
        ("empty object", "{}"),
        ("fileIds null", r#"{"fileIds": null}"#),
        ("fileIds empty", r#"{"fileIds": []}"#),
        ("fileIds a string", r#"{"fileIds": "a1"}"#),
        ("fileIds an object", r#"{"fileIds": {"a": 1}}"#),
        ("fileIds a number", r#"{"fileIds": 7}"#),
        ("id a number", r#"{"fileIds": [1]}"#),
        ("id null", r#"{"fileIds": [null]}"#),
        ("id an array", r#"{"fileIds": [["a1"]]}"#),
        ("id an object", r#"{"fileIds": [{"id": "a1"}]}"#),
        ("id a boolean", r#"{"fileIds": [true]}"#),
        ("id empty", r#"{"fileIds": [""]}"#),
        ("id blank", r#"{"fileIds": ["   "]}"#),
        ("id with a slash", r#"{"fileIds": ["a/b"]}"#),
        ("id with a space", r#"{"fileIds": ["a b"]}"#),
        ("id with a hash", r#"{"fileIds": ["a#b"]}"#),
        ("id with a question mark", r#"{"fileIds": ["a?b"]}"#),
        ("id with a percent", r#"{"fileIds": ["a%20b"]}"#),
        ("id not ASCII", r#"{"fileIds": ["café.jpg"]}"#),
        ("id with a control character", r#"{"fileIds": ["a\u0000b"]}"#),
        ("id with a newline inside", r#"{"fileIds": ["a\nb"]}"#),
        (
            "an https URL",
            r#"{"fileIds": ["https://static.wixstatic.com/media/a1.jpg"]}"#,
        ),
        ("media URL without an id", r#"{"fileIds": ["wix:image://v1/"]}"#),
        ("media URL of version 2", r#"{"fileIds": ["wix:image://v2/a1/x.jpg"]}"#),
        (
            "media URL of an unknown type",
            r#"{"fileIds": ["wix:model://v1/a1/x"]}"#,
        ),
        (
            "media URL with a bad id",
            r#"{"fileIds": ["wix:image://v1/a%20b/x.jpg"]}"#,
        ),
        ("one bad among good", r#"{"fileIds": ["a1", "b2", "c/3"]}"#),
        ("unknown field", r#"{"fileIds": ["a1"], "colour": "blue"}"#),
        (
            "unknown field holding a huge number",
            r#"{"fileIds": ["a1"], "x": 1e999}"#,
        ),
        ("empty field name", r#"{"fileIds": ["a1"], "": 1}"#),
        ("field in other case", r#"{"fileids": ["a1"]}"#),
        ("repeated fileIds", r#"{"fileIds": ["a1"], "fileIds": ["b2"]}"#),
        ("email a string", r#"{"fileIds": ["a1"], "email": "o@example.com"}"#),
        ("email a number", r#"{"fileIds": ["a1"], "email": [5]}"#),
        ("email not an address", r#"{"fileIds": ["a1"], "email": ["owner"]}"#),
        (
            "email without a domain dot",
            r#"{"fileIds": ["a1"], "email": ["o@example"]}"#,
        ),
        (
            "email with a display name",
            r#"{"fileIds": ["a1"], "email": ["Owner <o@example.com>"]}"#,
        ),
        (
            "resolvePrivate a string",
            r#"{"fileIds": ["a1"], "resolvePrivate": "true"}"#,
        ),
        ("resolvePrivate a number", r#"{"fileIds": ["a1"], "resolvePrivate": 1}"#),
    ] {
        add(name, post(body.as_bytes()), Http(400, "INVALID_REQUEST"));
    }
    let long_id = format!(r#"{{"fileIds": ["{}"]}}"#, "a".repeat(1001));
    add(
        "id of 1001 characters",
        post(long_id.as_bytes()),
        Http(400, "INVALID_REQUEST"),
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("u{i}@example.com")).collect();
    let eleven = json!({"fileIds": ["a1"], "email": eleven}).to_string();
    add(
        "eleven recipients",
        post(eleven.as_bytes()),
        Http(400, "INVALID_REQUEST"),
    );
    let many_bad = json!({ "fileIds": vec![7; 100_000] }).to_string();
    add(
        "100000 bad entries",
        post(many_bad.as_bytes()),
        Http(400, "INVALID_REQUEST"),
    );
    let too_many = json!({ "fileIds": flat_ids(50_001) }).to_string();
    add(
        "50001 unique ids",
        post(too_many.as_bytes()),
        Http(413, "TOO_MANY_FILES"),
    );
    add(
        "email while e-mail is off",
        post(br#"{"fileIds": ["a1"], "email": ["o@example.com"]}"#),
        Http(400, "EMAIL_DISABLED"),
    );

    // Signatures.
    add(
        "no signature",
        function_url_event("POST", "/archives", good_text, &[]),
        Http(401, "UNAUTHORIZED"),
    );
    for (name, header) in [
        ("empty signature", String::new()),
        ("signature without t", format!("v1={good_hex}")),
        ("signature without v1", format!("t={now}")),
        ("empty t and v1", "t=,v1=".to_owned()),
        ("t not a number", format!("t=abc,v1={good_hex}")),
        ("negative t", format!("t=-{now},v1={good_hex}")),
        ("t repeated", format!("t={now},t={now},v1={good_hex}")),
        ("t an hour old", format!("t={},v1={good_hex}", now - 3600)),
        ("t an hour ahead", format!("t={},v1={good_hex}", now + 3600)),
        ("t of year 1970", format!("t=0,v1={good_hex}")),
        ("v1 upper-case hex", format!("t={now},v1={}", good_hex.to_uppercase())),
        ("v1 too short", format!("t={now},v1={}", &good_hex[..40])),
        ("v1 not hex", format!("t={now},v1={}", "z".repeat(64))),
        ("v1 of zeros", format!("t={now},v1={}", "0".repeat(64))),
        ("a sha1-sized v1", format!("t={now},v1={}", "a".repeat(40))),
        ("separator semicolons", good_sig.replace(',', ";")),
        ("wrong key", signature::sign("not-the-key", now, good)),
        ("another body's signature", signature::sign(CALLER_KEY, now, b"{}")),
        (
            "signature of a trimmed body",
            signature::sign(CALLER_KEY, now, good_text.trim().replace(' ', "").as_bytes()),
        ),
        ("bearer token instead", format!("Bearer {CALLER_KEY}")),
        ("the caller key itself", CALLER_KEY.to_owned()),
    ] {
        add(name, with_signature(good_text, &header), Http(401, "UNAUTHORIZED"));
    }
    let stale_tampered = json!({"fileIds": ["a1", "a2"]}).to_string();
    add(
        "body changed after signing",
        function_url_event(
            "POST",
            "/archives",
            &stale_tampered,
            &[("x-archive-signature", &good_sig)],
        ),
        Http(401, "UNAUTHORIZED"),
    );
    add(
        "unsigned and not JSON: signature first",
        function_url_event("POST", "/archives", "{", &[("content-type", "text/plain")]),
        Http(401, "UNAUTHORIZED"),
    );

    // Content types.
    for (name, ct) in [
        ("text/plain", "text/plain"),
        ("form encoded", "application/x-www-form-urlencoded"),
        ("multipart", "multipart/form-data; boundary=x"),
        ("json-seq", "application/json-seq"),
        ("jsonx", "application/jsonx"),
        ("vendor json", "application/vnd.api+json"),
        ("no content type", ""),
    ] {
        add(
            &format!("content type {name}"),
            post_with(good, &[("content-type", ct)]),
            Http(415, "UNSUPPORTED_MEDIA_TYPE"),
        );
    }
    add(
        "content type checked before JSON",
        post_with(b"{", &[("content-type", "text/plain")]),
        Http(415, "UNSUPPORTED_MEDIA_TYPE"),
    );
    add(
        "upper-case JSON type still parses the body",
        post_with(b"{", &[("content-type", "APPLICATION/JSON")]),
        Http(400, "INVALID_JSON"),
    );

    // Methods and paths.
    for method in ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"] {
        add(
            &format!("method {method}"),
            request(method, "/archives"),
            Http(405, "METHOD_NOT_ALLOWED"),
        );
    }
    for path in [
        "/",
        "/archive",
        "/archives/x",
        "/a/b/archives",
        "/ARCHIVES",
        "//archives",
        "/archives.json",
        "",
    ] {
        add(&format!("path {path:?}"), request("POST", path), Http(404, "NOT_FOUND"));
    }
    add(
        "path checked before method",
        request("GET", "/nope"),
        Http(404, "NOT_FOUND"),
    );

    // Encodings and base64 flags.
    let mut bad_b64 = post(good);
    bad_b64["body"] = json!("%%% not base64 %%%");
    bad_b64["isBase64Encoded"] = json!(true);
    add(
        "base64 flag on a body that is not base64",
        bad_b64,
        Fails("MalformedHttpEvent"),
    );
    let mut b64_signed_as_text = post(good);
    let encoded = base64::engine::general_purpose::STANDARD.encode(good);
    b64_signed_as_text["body"] = json!(encoded);
    b64_signed_as_text["isBase64Encoded"] = json!(true);
    b64_signed_as_text["headers"]["x-archive-signature"] = json!(sig(encoded.as_bytes()));
    add(
        "base64 body signed over its encoded text",
        b64_signed_as_text,
        Http(401, "UNAUTHORIZED"),
    );
    let mut b64_not_flagged = post(encoded.as_bytes());
    b64_not_flagged["isBase64Encoded"] = json!(false);
    add(
        "base64 text without the flag",
        b64_not_flagged,
        Http(400, "INVALID_JSON"),
    );
    add(
        "base64 of invalid UTF-8",
        post(b"\xff\xfe{}"),
        Http(400, "INVALID_JSON"),
    );

    // The job queue's events, where jobs are not configured, or not as SQS sends them.
    add(
        "SQS event without jobs",
        json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m-1", "body": "{}"}]}),
        Fails("JobsDisabled"),
    );
    add(
        "SQS event without message IDs",
        json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
        Fails("MalformedJobEvent"),
    );

    // Events of foreign shapes.
    for (name, event) in [
        ("empty object event", json!({})),
        ("unknown field event", json!({"foo": 1})),
        ("array event", json!([1, 2])),
        ("string event", json!("archives")),
        ("number event", json!(42)),
        ("null event", Value::Null),
        (
            "S3 event",
            json!({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}}}]}),
        ),
        (
            "SNS event",
            json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]}),
        ),
        ("DynamoDB stream", json!({"Records": [{"eventSource": "aws:dynamodb"}]})),
        ("CloudWatch Logs", json!({"awslogs": {"data": "H4sI"}})),
        (
            "EventBridge non-schedule",
            json!({"source": "aws.events", "detail-type": "Object Created", "detail": {}}),
        ),
        (
            "custom Scheduled Event source",
            json!({"source": "my.app", "detail-type": "Scheduled Event"}),
        ),
        (
            "Cognito trigger",
            json!({"triggerSource": "PreSignUp_SignUp", "userPoolId": "x", "request": {}}),
        ),
        (
            "authorizer event",
            json!({"type": "TOKEN", "authorizationToken": "x", "methodArn": "arn"}),
        ),
        (
            "WebSocket connect",
            json!({"requestContext": {"eventType": "CONNECT", "connectionId": "x", "routeKey": "$connect"}}),
        ),
        (
            "httpMethod without context",
            json!({"httpMethod": "POST", "path": "/archives"}),
        ),
    ] {
        add(name, event, Fails("UnrecognizedEvent"));
    }
    for (name, event) in [
        (
            "HTTP v2 with a numeric method",
            json!({"version": "2.0", "rawPath": "/archives", "requestContext": {"http": {"method": 5}}}),
        ),
        (
            "HTTP v2 with a bad method",
            json!({"version": "2.0", "rawPath": "/archives", "requestContext": {"http": {"method": "PO ST"}}}),
        ),
        (
            "REST with a numeric method",
            json!({"httpMethod": 7, "requestContext": {}, "path": "/archives"}),
        ),
        (
            "ALB with a numeric path",
            json!({"requestContext": {"elb": {"targetGroupArn": "a"}}, "httpMethod": "POST", "path": 5}),
        ),
        (
            "HTTP v2 with a header of bad type",
            json!({"version": "2.0", "rawPath": "/archives", "headers": {"x": 5}, "requestContext": {"http": {"method": "POST"}}}),
        ),
    ] {
        add(name, event, Fails("MalformedHttpEvent"));
    }
    for (name, event) in [
        ("backup not an object", json!({"backup": 5})),
        ("backup null", json!({"backup": null})),
        ("backup unknown option", json!({"backup": {"x": 1}})),
        (
            "backup unknown media type",
            json!({"backup": {"mediaTypes": ["PHOTO"]}}),
        ),
        ("backup bad address", json!({"backup": {"emailTo": ["x"]}})),
        ("backup unknown root", json!({"backup": {"rootFolder": "ELSEWHERE"}})),
    ] {
        add(name, event, Fails("InvalidBackupOptions"));
    }
    c
}

#[tokio::test]
async fn every_bad_input_gets_its_documented_outcome_and_no_wix_call() {
    let h = harness(
        EmulatorConfig {
            library: Library::flat(10),
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    let cases = cases();
    let mut names = std::collections::HashSet::new();
    for (name, event, expect) in &cases {
        assert!(names.insert(name.clone()), "duplicate case name {name}");
        let result = local::invoke(&h.app, event, Some(Duration::from_secs(30))).await;
        match (expect, result) {
            (Expect::Http(status, code), Ok(response)) => {
                let (got, body) = http_parts(&response);
                assert_eq!(
                    (got, body["error"]["code"].as_str().unwrap_or("")),
                    (*status, *code),
                    "{name}: {}",
                    brief(&body)
                );
                assert!(
                    body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{name}"
                );
            }
            (Expect::Fails(error_type), Err(e)) => assert_eq!(e.error_type(), *error_type, "{name}: {e}"),
            (expect, other) => panic!("{name}: expected {expect:?}, got {other:?}"),
        }
        assert!(h.emulator.api_calls().is_empty(), "{name} reached Wix");
    }
    let config_cases = bad_configuration();
    println!(
        "{} bad inputs and {} bad configurations checked",
        cases.len(),
        config_cases
    );
    assert!(cases.len() + config_cases >= 100);
}

/// Bad configuration values: each is refused naming its variable. Returns how many.
fn bad_configuration() -> usize {
    let base = [("WIX_API_KEY", "k"), ("WIX_SITE_ID", "s"), ("CALLER_KEYS", "c")];
    let cases: &[(&str, &str)] = &[
        ("WIX_MAX_CONCURRENCY", "abc"),
        ("WIX_MAX_CONCURRENCY", "0"),
        ("WIX_MAX_CONCURRENCY", "65"),
        ("WIX_REQUESTS_PER_MINUTE", "0"),
        ("WIX_REQUESTS_PER_MINUTE", "1e3"),
        ("WIX_MAX_RETRIES", "-1"),
        ("WIX_MAX_RETRIES", "21"),
        ("WIX_TIMEOUT_SECONDS", "0"),
        ("WIX_TIMEOUT_SECONDS", "ten"),
        ("MAX_FILES_PER_REQUEST", "0"),
        ("SECRET_CACHE_TTL_SECONDS", "1h"),
        ("SIGNATURE_TOLERANCE_SECONDS", "0"),
        ("PRIVATE_LINK_EXPIRATION_MINUTES", "0"),
        ("PRIVATE_LINK_EXPIRATION_MINUTES", "600000"),
        ("WIX_API_BASE_URL", "www.wixapis.com"),
        ("WIX_API_BASE_URL", "ftp://www.wixapis.com"),
        ("WIX_API_BASE_URL", "https://"),
        ("WIX_API_BASE_URL", "https://www.wixapis.com?x=1"),
        ("EMAIL_FROM", "backups"),
        ("BACKUP_EMAIL_TO", "a@example.com;b@example.com"),
        ("BACKUP_MEDIA_TYPES", "IMAGES"),
        ("BACKUP_INCLUDE_PRIVATE", "sometimes"),
        ("WIX_CREDENTIALS_SECRET", "arn:aws:s3:::bucket"),
        ("WIX_CREDENTIALS_SECRET", "ssm:"),
    ];
    for (variable, value) in cases {
        let mut vars: Vec<(&str, &str)> = base.to_vec();
        vars.push((variable, value));
        let err = Config::from_lookup(|k| vars.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
            .expect_err(&format!("{variable}={value} is refused"));
        assert_eq!(err.variable, *variable, "{variable}={value}");
    }
    cases.len()
}

#[test]
fn the_lambda_binary_refuses_a_bad_variable_at_start_in_one_line() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wix-media-archiver"))
        .env_clear()
        .env("WIX_API_KEY", "k")
        .env("WIX_SITE_ID", "s")
        .env("CALLER_KEYS", "c")
        .env("WIX_MAX_CONCURRENCY", "abc")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stdout}");
    let line: Value = serde_json::from_str(lines[0]).expect("a JSON log line");
    assert_eq!(line["level"], "ERROR");
    assert!(
        line["error"].as_str().unwrap().contains("WIX_MAX_CONCURRENCY"),
        "{line}"
    );
}
