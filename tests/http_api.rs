//! `POST /archives` end to end: the real handler and Wix client against the Wix emulator.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use wix_emulator::{EmulatorConfig, Fault, Library, RandomFaults, UnknownIds};
use wix_media_archiver::signature;

fn flat(n: usize) -> EmulatorConfig {
    EmulatorConfig {
        library: Library::flat(n),
        ..EmulatorConfig::default()
    }
}

fn archive_ids(body: &Value) -> Vec<Vec<String>> {
    body["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["fileIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn ids_2500_become_three_archives_whose_zips_hold_exactly_those_files() {
    let h = harness(flat(2600), &[]).await;
    let ids = flat_ids(2500);
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 200, "{}", brief(&body));
    assert_eq!(body["fileCount"], 2500);
    assert_eq!(body["duplicatesRemoved"], 0);
    let batches = archive_ids(&body);
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![1000, 1000, 500]);
    assert_eq!(batches.concat(), ids, "batches keep the request's order");
    for (archive, expected) in body["archives"].as_array().unwrap().iter().zip(&batches) {
        let mut entries = zip_entries(archive["downloadUrl"].as_str().unwrap()).await;
        let mut expected = expected.clone();
        entries.sort();
        expected.sort();
        assert_eq!(entries, expected);
    }
    assert_eq!(h.emulator.api_calls().len(), 3);
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn duplicates_and_url_forms_collapse_to_unique_ids() {
    let h = harness(flat(10), &[]).await;
    let a = Library::file_id(0);
    let b = Library::file_id(1);
    let body = json!({"fileIds": [a, format!("wix:image://v1/{a}/x.jpg#originWidth=1"), b, format!(" {b} "), a]});
    let (status, body) = call(&h, &signed(&body.to_string())).await;
    assert_eq!(status, 200, "{}", brief(&body));
    assert_eq!(body["fileCount"], 2);
    assert_eq!(body["duplicatesRemoved"], 3);
    assert_eq!(archive_ids(&body), vec![vec![a, b]]);
}

#[tokio::test]
async fn every_refusal_answers_its_status_and_code_without_calling_wix() {
    let h = harness(flat(10), &[("MAX_FILES_PER_REQUEST", "5")]).await;
    let good = json!({"fileIds": [Library::file_id(0)]}).to_string();
    let now = wix_media_archiver::local::unix_now();
    let sig = |body: &str| signature::sign(CALLER_KEY, now, body.as_bytes());
    let with = |method: &str, path: &str, body: &str, headers: &[(&str, &str)]| {
        function_url_event(method, path, body, headers)
    };
    let six = json!({"fileIds": flat_ids(6)}).to_string();
    let email = json!({"fileIds": [Library::file_id(0)], "email": ["owner@example.com"]}).to_string();
    let bad_fields = json!({"fileIds": ["ok", 3, "a/b"], "extra": 1}).to_string();
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "other path",
            with("POST", "/files", &good, &[("x-archive-signature", &sig(&good))]),
            404,
            "NOT_FOUND",
        ),
        (
            "deep path",
            with("POST", "/a/b/archives", &good, &[("x-archive-signature", &sig(&good))]),
            404,
            "NOT_FOUND",
        ),
        ("path before method", with("GET", "/nope", "", &[]), 404, "NOT_FOUND"),
        ("GET", with("GET", "/archives", "", &[]), 405, "METHOD_NOT_ALLOWED"),
        (
            "PUT signed",
            with("PUT", "/archives", &good, &[("x-archive-signature", &sig(&good))]),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        ("unsigned", with("POST", "/archives", &good, &[]), 401, "UNAUTHORIZED"),
        (
            "malformed signature",
            with("POST", "/archives", &good, &[("x-archive-signature", "v1=abc")]),
            401,
            "UNAUTHORIZED",
        ),
        (
            "wrong key",
            with(
                "POST",
                "/archives",
                &good,
                &[("x-archive-signature", &signature::sign("other", now, good.as_bytes()))],
            ),
            401,
            "UNAUTHORIZED",
        ),
        (
            "stale",
            with(
                "POST",
                "/archives",
                &good,
                &[(
                    "x-archive-signature",
                    &signature::sign(CALLER_KEY, now - 301, good.as_bytes()),
                )],
            ),
            401,
            "UNAUTHORIZED",
        ),
        (
            "tampered body",
            with("POST", "/archives", &six, &[("x-archive-signature", &sig(&good))]),
            401,
            "UNAUTHORIZED",
        ),
        (
            "unsigned and not JSON: signature first",
            with("POST", "/archives", "x", &[("content-type", "text/plain")]),
            401,
            "UNAUTHORIZED",
        ),
        (
            "text/plain",
            with(
                "POST",
                "/archives",
                &good,
                &[("x-archive-signature", &sig(&good)), ("content-type", "text/plain")],
            ),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "no content type",
            with(
                "POST",
                "/archives",
                &good,
                &[("x-archive-signature", &sig(&good)), ("content-type", "")],
            ),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "not JSON",
            with("POST", "/archives", "{", &[("x-archive-signature", &sig("{"))]),
            400,
            "INVALID_JSON",
        ),
        (
            "bad fields",
            with(
                "POST",
                "/archives",
                &bad_fields,
                &[("x-archive-signature", &sig(&bad_fields))],
            ),
            400,
            "INVALID_REQUEST",
        ),
        (
            "e-mail off",
            with("POST", "/archives", &email, &[("x-archive-signature", &sig(&email))]),
            400,
            "EMAIL_DISABLED",
        ),
        (
            "too many",
            with("POST", "/archives", &six, &[("x-archive-signature", &sig(&six))]),
            413,
            "TOO_MANY_FILES",
        ),
        (
            "stage prefix still checks the rest",
            with("POST", "/prod/archives", &six, &[("x-archive-signature", &sig(&six))]),
            413,
            "TOO_MANY_FILES",
        ),
    ];
    for (name, event, status, code) in cases {
        let response = wix_media_archiver::local::invoke(&h.app, &event, Some(Duration::from_secs(30)))
            .await
            .unwrap();
        let (got, body) = http_parts(&response);
        assert_eq!(
            (got, body["error"]["code"].as_str().unwrap_or_default()),
            (status, code),
            "{name}: {}",
            brief(&body)
        );
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        assert!(body["error"]["details"].is_array(), "{name}");
        assert!(body["requestId"].as_str().is_some_and(|r| !r.is_empty()), "{name}");
        if status == 405 {
            assert_eq!(response["headers"]["allow"], "POST", "{name}");
        }
        if code == "INVALID_REQUEST" {
            let fields: Vec<&str> = body["error"]["details"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["field"].as_str().unwrap())
                .collect();
            assert_eq!(fields, vec!["extra", "fileIds[1]", "fileIds[2]"]);
        }
    }
    assert_eq!(h.emulator.api_calls().len(), 0, "no refusal calls Wix");
}

#[tokio::test]
async fn a_503_twice_then_success_is_retried() {
    let h = harness(flat(10), &[]).await;
    h.emulator.push_faults(
        "generate-download-url",
        vec![Fault::Status(503), Fault::StatusEmptyBody(503)],
    );
    let ids = flat_ids(3);
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 200, "{}", brief(&body));
    let statuses: Vec<u16> = h.emulator.api_calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out() {
    let h = harness(flat(10), &[]).await;
    h.emulator.push_faults(
        "generate-download-url",
        vec![Fault::TooManyRequests { retry_after: Some(1) }],
    );
    let started = Instant::now();
    let (status, body) = call(&h, &request_for(&flat_ids(2))).await;
    assert_eq!(status, 200, "{}", brief(&body));
    let calls = h.emulator.api_calls();
    assert_eq!(calls.iter().map(|c| c.status).collect::<Vec<_>>(), vec![429, 200]);
    assert!(
        calls[1].at_ms - calls[0].at_ms >= 990,
        "waited {} ms",
        calls[1].at_ms - calls[0].at_ms
    );
    assert!(started.elapsed() >= Duration::from_millis(990));
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_and_succeeds() {
    let h = harness(flat(10), &[]).await;
    h.emulator.push_faults(
        "generate-download-url",
        vec![Fault::TooManyRequests { retry_after: None }],
    );
    let (status, body) = call(&h, &request_for(&flat_ids(2))).await;
    assert_eq!(status, 200, "{}", brief(&body));
    assert_eq!(
        h.emulator.api_calls().iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
}

#[tokio::test]
async fn one_batch_failing_for_good_gives_207_with_exactly_its_ids() {
    // One attempt each, in order: the first batch's 503 is final.
    let h = harness(flat(2600), &[("WIX_MAX_CONCURRENCY", "1"), ("WIX_MAX_RETRIES", "0")]).await;
    h.emulator
        .push_faults("generate-download-url", vec![Fault::Status(503)]);
    let ids = flat_ids(2500);
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 207, "{}", brief(&body));
    let failed = body["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    let failed_ids: Vec<String> = failed[0]["fileIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(failed_ids, ids[..1000].to_vec());
    assert_eq!(failed[0]["error"]["code"], "WIX_UNAVAILABLE");
    assert_eq!(failed[0]["error"]["status"], 503);
    assert!(failed[0]["error"]["wixRequestId"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(archive_ids(&body), vec![ids[1000..2000].to_vec(), ids[2000..].to_vec()]);
    assert_eq!(h.emulator.api_calls().len(), 3);
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn all_batches_failing_gives_502() {
    let h = harness(flat(2600), &[("WIX_MAX_RETRIES", "1")]).await;
    h.emulator.set_random_faults(Some(RandomFaults {
        seed: 1,
        p_429: 0.0,
        p_5xx: 1.0,
        p_drop: 0.0,
        p_hang: 0.0,
        hang: Duration::ZERO,
        p_malformed: 0.0,
    }));
    let ids = flat_ids(2500);
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 502, "{}", brief(&body));
    assert!(body["archives"].as_array().unwrap().is_empty());
    assert_eq!(failure_codes(&body), vec!["WIX_UNAVAILABLE"; 3]);
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn other_4xx_is_not_retried() {
    let h = harness(flat(10), &[]).await;
    h.emulator
        .push_faults("generate-download-url", vec![Fault::Status(403)]);
    let ids = flat_ids(3);
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 502, "{}", brief(&body));
    assert_eq!(failure_codes(&body), vec!["WIX_REJECTED"]);
    assert_eq!(body["failed"][0]["error"]["status"], 403);
    assert_eq!(h.emulator.api_calls().len(), 1);
}

#[tokio::test]
async fn one_unknown_id_costs_only_itself_its_link() {
    let h = harness(flat(10), &[]).await;
    h.emulator.set_unknown_ids(UnknownIds::Reject);
    let mut ids = flat_ids(3);
    ids.insert(1, "ffffff_00000000000000000000000000000000~mv2.jpg".to_owned());
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 207, "{}", brief(&body));
    assert_eq!(failure_codes(&body), vec!["WIX_REJECTED"]);
    assert_eq!(body["failed"][0]["fileIds"], json!([ids[1]]));
    assert!(body["failed"][0]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("RESOURCE_NOT_FOUND"));
    let archives = body["archives"].as_array().unwrap();
    assert_eq!(archives.len(), 1, "the good files still share one archive");
    assert_eq!(archives[0]["fileIds"], json!([ids[0], ids[2], ids[3]]));
    assert_eq!(h.emulator.api_calls().len(), 2, "Wix named the ID: one call more");
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn dropped_connections_and_timeouts_are_retried() {
    let h = harness(flat(10), &[("WIX_TIMEOUT_SECONDS", "1")]).await;
    h.emulator.push_faults(
        "generate-download-url",
        vec![Fault::Drop, Fault::Hang(Duration::from_secs(3))],
    );
    let ids = flat_ids(2);
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 200, "{}", brief(&body));
    let calls = h.emulator.api_calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[2].status, 200);
}

#[tokio::test]
async fn unusable_2xx_answers_are_invalid_responses() {
    for (body, content_type) in [
        ("{}", "application/json"),
        (r#"{"downloadUrl": ""}"#, "application/json"),
        (r#"{"downloadUrl": "ftp://example.com/a.zip"}"#, "application/json"),
        (r#"{"downloadUrl": "not a url"}"#, "application/json"),
        ("<html>ok</html>", "text/html"),
        ("", "application/json"),
    ] {
        let h = harness(flat(10), &[]).await;
        h.emulator.push_faults(
            "generate-download-url",
            vec![Fault::Body {
                status: 200,
                content_type: content_type.to_owned(),
                body: body.to_owned(),
            }],
        );
        let ids = flat_ids(2);
        let (status, got) = call(&h, &request_for(&ids)).await;
        assert_eq!(status, 502, "{body}: {}", brief(&got));
        assert_eq!(failure_codes(&got), vec!["WIX_INVALID_RESPONSE"], "{body}");
        assert_eq!(h.emulator.api_calls().len(), 1, "not retried: {body}");
    }
}

#[tokio::test]
async fn a_deadline_shorter_than_the_work_reports_the_rest_as_deadline() {
    let h = harness(flat(3100), &[("WIX_MAX_CONCURRENCY", "1")]).await;
    h.emulator.set_latency(Duration::from_millis(1500));
    let ids = flat_ids(3000);
    let started = Instant::now();
    let (status, body) = call_with_timeout(&h, &request_for(&ids), Some(Duration::from_secs(5))).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered before the Lambda timeout"
    );
    assert_eq!(status, 207, "{}", brief(&body));
    assert!(failure_codes(&body).iter().all(|c| c == "DEADLINE"), "{}", brief(&body));
    assert!(!body["archives"].as_array().unwrap().is_empty());
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn a_synchronous_answer_comes_within_the_callers_limit() {
    // The Lambda may run a minute, but the caller waits three seconds.
    let h = harness(
        flat(3100),
        &[("HTTP_DEADLINE_SECONDS", "3"), ("WIX_MAX_CONCURRENCY", "1")],
    )
    .await;
    h.emulator.set_latency(Duration::from_millis(700));
    let ids = flat_ids(3000);
    let started = Instant::now();
    let (status, body) = call_with_timeout(&h, &request_for(&ids), Some(Duration::from_secs(60))).await;
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(status, 207, "{}", brief(&body));
    assert!(failure_codes(&body).iter().all(|c| c == "DEADLINE"), "{}", brief(&body));
    assert_eq!(body["archives"].as_array().unwrap().len(), 1);
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn a_burst_within_the_budget_goes_at_once() {
    let h = harness(
        flat(6000),
        &[("WIX_REQUESTS_PER_MINUTE", "10"), ("WIX_MAX_CONCURRENCY", "5")],
    )
    .await;
    h.emulator.set_latency(Duration::from_millis(300));
    let ids = flat_ids(5000);
    let started = Instant::now();
    let (status, _) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 200);
    let at: Vec<u64> = h.emulator.api_calls().iter().map(|c| c.at_ms).collect();
    assert_eq!(at.len(), 5);
    // Five calls fit a budget of ten a minute: they start together, not six seconds apart.
    assert!(at[4] - at[0] < 250, "{at:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn calls_past_the_budget_are_deadline_at_once_when_the_window_cannot_free_in_time() {
    let h = harness(
        flat(6000),
        &[("WIX_REQUESTS_PER_MINUTE", "3"), ("WIX_MAX_CONCURRENCY", "4")],
    )
    .await;
    let ids = flat_ids(5000);
    let started = Instant::now();
    let (status, body) = call_with_timeout(&h, &request_for(&ids), Some(Duration::from_secs(10))).await;
    assert_eq!(status, 207, "{}", brief(&body));
    assert_eq!(body["archives"].as_array().unwrap().len(), 3);
    assert_eq!(failure_codes(&body), vec!["DEADLINE", "DEADLINE"]);
    assert_eq!(h.emulator.api_calls().len(), 3, "no call past the budget");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered without waiting for the window: {:?}",
        started.elapsed()
    );
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn resolve_private_gives_private_files_their_own_links() {
    let library = Library::seeded(400, 11);
    let ready = |f: &&wix_emulator::FileRecord| f.operation_status == "READY" && f.state == "OK";
    let private: Vec<String> = library
        .files
        .iter()
        .filter(ready)
        .filter(|f| f.private)
        .take(2)
        .map(|f| f.id.clone())
        .collect();
    let public: Vec<String> = library
        .files
        .iter()
        .filter(ready)
        .filter(|f| !f.private)
        .take(150)
        .map(|f| f.id.clone())
        .collect();
    assert_eq!(private.len(), 2, "the seeded library has private files");
    let h = harness(
        EmulatorConfig {
            library,
            ..EmulatorConfig::default()
        },
        &[("PRIVATE_LINK_EXPIRATION_MINUTES", "60")],
    )
    .await;
    let unknown = "ffffff_00000000000000000000000000000000~mv2.jpg".to_owned();
    let mut ids = vec![private[0].clone(), unknown.clone()];
    ids.extend(public.iter().cloned());
    ids.push(private[1].clone());
    let body = json!({"fileIds": ids, "resolvePrivate": true}).to_string();
    let (status, body) = call(&h, &signed(&body)).await;
    assert_eq!(status, 207, "{}", brief(&body));
    let links: Vec<&str> = body["privateFiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["fileId"].as_str().unwrap())
        .collect();
    assert_eq!(links, vec![private[0].as_str(), private[1].as_str()]);
    for p in body["privateFiles"].as_array().unwrap() {
        assert!(p["expiresAt"].as_str().unwrap().ends_with('Z'));
        let file = reqwest::get(p["downloadUrl"].as_str().unwrap()).await.unwrap();
        assert_eq!(file.status(), 200);
    }
    assert_eq!(archive_ids(&body).concat(), public);
    for a in body["archives"].as_array().unwrap() {
        let entries = zip_entries(a["downloadUrl"].as_str().unwrap()).await;
        assert!(
            entries.iter().all(|e| !private.contains(e)),
            "no private file in an archive"
        );
    }
    assert_eq!(body["failed"][0]["fileIds"], json!([unknown]));
    assert_eq!(body["failed"][0]["error"]["code"], "WIX_REJECTED");
    assert_invariant(&body, &ids);
}

#[tokio::test]
async fn non_http_events_fail_the_invocation_without_calling_wix() {
    let h = harness(flat(10), &[]).await;
    for (event, error_type) in [
        (json!({}), "UnrecognizedEvent"),
        (json!({"foo": 1}), "UnrecognizedEvent"),
        (json!([1, 2]), "UnrecognizedEvent"),
        (json!({"Records": [{"eventSource": "aws:s3"}]}), "UnrecognizedEvent"),
        (json!({"Records": [{"eventSource": "aws:sqs"}]}), "MalformedJobEvent"),
        (
            json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": "{}"}]}),
            "JobsDisabled",
        ),
        (
            json!({"version": "2.0", "requestContext": {"http": {"method": 5}}, "rawPath": "/archives"}),
            "MalformedHttpEvent",
        ),
        (json!({"backup": "yes"}), "InvalidBackupOptions"),
    ] {
        let err = invoke_raw(&h, &event).await.expect_err("the invocation fails");
        assert_eq!(err.error_type(), error_type, "{event}");
    }
    assert_eq!(h.emulator.api_calls().len(), 0);
}
