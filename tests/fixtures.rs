//! Every fixture in `events/` goes through the handler against the emulator, signed where
//! it asks to be, and its answer is checked against the contract.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use wix_emulator::{EmulatorConfig, Library};
use wix_media_archiver::local;

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn fixtures() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), load(&p)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 13, "the fixtures are there");
    out
}

/// What each HTTP fixture must answer: status and error code (none for success).
fn expected(name: &str) -> Option<(u16, Option<&'static str>)> {
    Some(match name {
        "function-url-archives.json" | "http-api-archives.json" | "rest-api-archives.json" | "alb-archives.json" => {
            (200, None)
        }
        "refused-unsigned.json" | "refused-bad-signature.json" => (401, Some("UNAUTHORIZED")),
        "refused-get.json" => (405, Some("METHOD_NOT_ALLOWED")),
        "refused-not-found.json" => (404, Some("NOT_FOUND")),
        "refused-text-plain.json" => (415, Some("UNSUPPORTED_MEDIA_TYPE")),
        "refused-invalid-json.json" => (400, Some("INVALID_JSON")),
        "refused-invalid-request.json" => (400, Some("INVALID_REQUEST")),
        // Jobs are not configured here; tests/jobs.rs runs them with the job engine.
        "async-archives.json" | "job-status.json" => (400, Some("ASYNC_DISABLED")),
        _ => return None,
    })
}

#[tokio::test]
async fn every_http_fixture_answers_as_the_contract_says() {
    let all = fixtures();
    let mut ids = Vec::new();
    for (_, event) in &all {
        ids.extend(local::event_file_ids(event));
    }
    let config = EmulatorConfig {
        library: library_with(Library::seeded(100, 3), &ids),
        ..EmulatorConfig::default()
    };
    let h = harness(config, &[]).await;
    let mut checked = 0;
    for (name, mut event) in all {
        if name == "sqs-job-step.json" {
            h.emulator.clear_calls();
            let refused = local::invoke(&h.app, &event, None).await.expect_err("no jobs here");
            assert_eq!(refused.error_type(), "JobsDisabled", "{name}");
            assert!(h.emulator.api_calls().is_empty(), "{name} made no Wix call");
            checked += 1;
            continue;
        }
        let Some((status, code)) = expected(&name) else {
            check_schedule(&h, &name, &event).await;
            checked += 1;
            continue;
        };
        let placeholder = local::sign_event(&mut event, CALLER_KEY, local::unix_now());
        assert_eq!(
            placeholder,
            !name.contains("unsigned") && !name.contains("bad-signature"),
            "{name} placeholder"
        );
        h.emulator.clear_calls();
        let response = local::invoke(&h.app, &event, Some(std::time::Duration::from_secs(60)))
            .await
            .unwrap();
        let (got, body) = http_parts(&response);
        assert_eq!(got, status, "{name}: {}", brief(&body));
        match code {
            Some(code) => {
                assert_eq!(body["error"]["code"], code, "{name}");
                assert!(h.emulator.api_calls().is_empty(), "{name} made no Wix call");
            }
            None => {
                assert_eq!(body["fileCount"], 5, "{name}");
                assert_eq!(body["duplicatesRemoved"], 1, "{name}");
                let expected_ids = local::event_file_ids(&event);
                assert_invariant(&body, &expected_ids);
                let entries = zip_entries(body["archives"][0]["downloadUrl"].as_str().unwrap()).await;
                assert_eq!(entries.len(), 5, "{name}");
                assert_eq!(h.emulator.api_calls().len(), 1, "{name}");
            }
        }
        // Each event kind answers in its own shape.
        match name.as_str() {
            "rest-api-archives.json" => assert!(response.get("multiValueHeaders").is_some()),
            "alb-archives.json" => assert_eq!(response["statusDescription"], "200 OK"),
            _ => assert!(response.get("cookies").is_some(), "{name} answers as HTTP API v2"),
        }
        checked += 1;
    }
    assert_eq!(checked, 16);
}

async fn check_schedule(h: &Harness, name: &str, event: &Value) {
    let body = local::invoke(&h.app, event, Some(std::time::Duration::from_secs(120)))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(body["incomplete"], false, "{name}");
    assert!(body["listedFiles"].as_u64().unwrap() > 50, "{name}");
    assert!(!body["archives"].as_array().unwrap().is_empty(), "{name}");
    match name {
        "eventbridge-scheduled.json" => {
            assert!(
                !body["privateFiles"].as_array().unwrap().is_empty(),
                "{name}: private files get links by default"
            )
        }
        "scheduler-backup-input.json" => {
            assert!(
                body["privateFiles"].as_array().unwrap().is_empty(),
                "{name}: includePrivate false"
            );
            assert_eq!(body["mediaTypes"], serde_json::json!(["IMAGE", "VIDEO"]));
        }
        other => panic!("fixture {other} has no expectation"),
    }
}
