//! The invocation's metrics (CloudWatch Embedded Metric Format): one document per
//! invocation, beside the summary line, whose values are the answer's own counts. The real
//! handler, its real log writer, the Wix emulator, and moto for the stored backups.

mod common;

use std::net::UdpSocket;
use std::sync::OnceLock;

use common::moto;
use common::*;
use serde_json::{json, Value};
use wix_emulator::{DownloadFault, EmulatorConfig, Library, UnknownIds};

const BUCKET: &str = "metrics-backups";

/// The X-Ray daemon the spans go to.
static XRAY: OnceLock<UdpSocket> = OnceLock::new();
const TRACE_ROOT: &str = "1-67a8b7c0-0123456789abcdef01234567";
const TRACE_PARENT: &str = "53995c3f42cd8ad8";

fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let daemon = UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
        daemon.set_nonblocking(true).unwrap();
        // The tests of this binary run one at a time (moto's lock), before any span.
        std::env::set_var("AWS_XRAY_DAEMON_ADDRESS", daemon.local_addr().unwrap().to_string());
        std::env::set_var(
            "_X_AMZN_TRACE_ID",
            format!("Root={TRACE_ROOT};Parent={TRACE_PARENT};Sampled=1"),
        );
        XRAY.set(daemon).unwrap();
        wix_media_archiver::logging::init(|| Capture)
    });
    LOGS.lock().unwrap().clear();
    subsegments();
}

/// The subsegments sent since the last call, checked: the daemon's header, the trace, and
/// no link, key, token or signature anywhere in them.
fn subsegments() -> Vec<Value> {
    let daemon = XRAY.get().expect("capture_logs first");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = daemon.recv(&mut buf) {
        let text = std::str::from_utf8(&buf[..n]).expect("UTF-8");
        let (header, body) = text.split_once('\n').expect("header and document");
        assert_eq!(header, r#"{"format": "json", "version": 1}"#);
        for never in [
            "http",
            "https",
            "Bearer",
            EmulatorConfig::default().api_key.as_str(),
            CALLER_KEY,
            "signature",
        ] {
            assert!(!body.contains(never), "{never:?} in a subsegment: {body}");
        }
        let doc: Value = serde_json::from_str(body).expect("a JSON subsegment");
        assert_eq!(doc["type"], "subsegment");
        assert_eq!(doc["trace_id"], TRACE_ROOT);
        assert!(doc["end_time"].as_f64().unwrap() >= doc["start_time"].as_f64().unwrap());
        out.push(doc);
    }
    out
}

fn named<'a>(subs: &'a [Value], name: &str) -> Vec<&'a Value> {
    subs.iter().filter(|s| s["name"] == name).collect()
}

/// The log lines since [`capture_logs`], parsed.
fn lines() -> Vec<Value> {
    let logs = LOGS.lock().unwrap();
    String::from_utf8_lossy(&logs)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}")))
        .collect()
}

/// The one EMF document and the one summary line of the invocation, checked for shape:
/// every declared metric has a number, the dimensions are those the template's alarms and
/// dashboard use, and nothing in it looks like a link.
fn emf_and_summary() -> (Value, Value) {
    let lines = lines();
    let emf: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    let summaries: Vec<&Value> = lines.iter().filter(|l| l["summary"] == true).collect();
    assert_eq!(emf.len(), 1, "one EMF document per invocation: {emf:?}");
    assert_eq!(summaries.len(), 1, "one summary line per invocation");
    let doc = emf[0].clone();
    let spec = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(spec["Namespace"], "WixMediaArchiver");
    assert_eq!(
        spec["Dimensions"],
        json!([["Function", "Kind"], ["Function"], ["Service"]])
    );
    assert!(doc["_aws"]["Timestamp"].is_u64());
    let units: Vec<(&str, &str)> = spec["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
        .collect();
    for (name, unit) in &units {
        assert!(doc[*name].is_u64(), "{name} is declared but has no value: {doc}");
        let expected = match *name {
            "BytesStored" => "Bytes",
            "Duration" | "BackupDuration" => "Milliseconds",
            _ => "Count",
        };
        assert_eq!(*unit, expected, "{name}");
    }
    for name in [
        "FilesArchived",
        "FilesStored",
        "FilesUnchanged",
        "FilesFailed",
        "WixCalls",
        "WixRetries",
        "WixRateLimited",
        "Duration",
        "ColdStart",
    ] {
        assert!(units.iter().any(|(n, _)| *n == name), "{name} is missing");
    }
    let text = doc.to_string();
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "a link in the metrics: {text}"
    );
    assert_eq!(
        doc["Function"], "local",
        "the function's name (AWS_LAMBDA_FUNCTION_NAME unset)"
    );
    let summary = summaries[0].clone();
    assert_eq!(doc["WixCalls"], summary["wix_calls"]);
    assert_eq!(doc["WixRetries"], summary["wix_retries"]);
    assert_eq!(doc["WixRateLimited"], summary["wix_rate_limited"]);
    assert_eq!(doc["Duration"], summary["duration_ms"]);
    assert_eq!(doc["Kind"], summary["kind"]);
    (doc, summary)
}

/// Per-code failure metrics of a document: code → count.
fn failed_by_code(doc: &Value) -> Vec<(String, u64)> {
    doc.as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("FilesFailed.")?.to_owned(), v.as_u64()?)))
        .collect()
}

async fn stored(config: EmulatorConfig) -> Harness {
    moto::stored_harness(config, BUCKET, &[], 64 * 1024).await
}

#[tokio::test]
async fn a_request_s_metrics_are_its_answer_s_counts() {
    let _serial = moto::setup().await;
    let h = harness(
        EmulatorConfig {
            library: Library::flat(2500),
            ..EmulatorConfig::default()
        },
        &[],
    )
    .await;
    h.emulator.set_unknown_ids(UnknownIds::Reject);
    let mut ids = flat_ids(2400);
    ids.insert(7, "ffffff_00000000000000000000000000000000~mv2.jpg".to_owned());
    ids.insert(1500, "ffffff_00000000000000000000000000000001~mv2.jpg".to_owned());

    capture_logs();
    let (status, body) = call(&h, &request_for(&ids)).await;
    assert_eq!(status, 207, "{}", brief(&body));
    let (doc, _) = emf_and_summary();

    let linked: u64 = body["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["fileCount"]
                .as_u64()
                .unwrap_or_else(|| a["fileIds"].as_array().unwrap().len() as u64)
        })
        .sum();
    assert_eq!(linked, 2400);
    assert_eq!(doc["Kind"], "http");
    assert_eq!(doc["FilesArchived"], linked);
    assert_eq!(doc["FilesFailed"], 2);
    assert_eq!(failed_by_code(&doc), vec![("WIX_REJECTED".to_owned(), 2)]);
    assert_eq!(doc["FilesStored"], 0);
    assert_eq!(
        doc["WixCalls"],
        h.emulator.api_calls().len() as u64,
        "every call the emulator saw"
    );
    assert!(doc.get("BackupsComplete").is_none(), "a request is not a backup");
    assert_eq!(doc["requestId"], body["requestId"]);

    // Traces: the invocation under the function's segment, each Wix call under it, with
    // the request ID.
    let subs = subsegments();
    let invocation = named(&subs, "invocation");
    assert_eq!(invocation.len(), 1, "{subs:?}");
    assert_eq!(invocation[0]["parent_id"], TRACE_PARENT);
    assert_eq!(invocation[0]["annotations"]["request_id"], body["requestId"]);
    let calls = named(&subs, "wix_call");
    assert_eq!(calls.len(), h.emulator.api_calls().len(), "one subsegment a Wix call");
    for c in &calls {
        assert_eq!(c["parent_id"], invocation[0]["id"]);
        assert_eq!(c["annotations"]["request_id"], body["requestId"], "inherited");
        assert!(c["annotations"]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("/site-media/"));
    }
}

#[tokio::test]
async fn a_stored_backup_s_metrics_are_its_summary() {
    let _moto = moto::setup().await;
    let h = stored(EmulatorConfig {
        library: Library::seeded_with(900, 10, 2000..8000),
        ..EmulatorConfig::default()
    })
    .await;

    capture_logs();
    let summary = invoke_raw(&h, &json!({"backup": {"includePrivate": true}}))
        .await
        .expect("the backup runs");
    assert_eq!(summary["status"], "COMPLETE", "{}", brief(&summary));
    let (doc, line) = emf_and_summary();
    assert_eq!(doc["Kind"], "backup");
    assert_eq!(doc["FilesStored"], summary["storedFiles"]);
    assert!(doc["FilesStored"].as_u64().unwrap() > 800);
    assert_eq!(doc["FilesUnchanged"], summary["unchangedFiles"]);
    assert_eq!(doc["BytesStored"], summary["storedBytes"]);
    assert!(doc["BytesStored"].as_u64().unwrap() > 0);
    assert_eq!(doc["FilesFailed"], 0);
    assert_eq!(doc["BackupsComplete"], 1);
    assert_eq!(doc["BackupsIncomplete"], 0);
    assert_eq!(doc["BackupDuration"], summary["durationMs"]);
    assert_eq!(doc["WixCalls"], h.emulator.api_calls().len() as u64);
    assert_eq!(line["stored_files"], summary["storedFiles"]);
    let subs = subsegments();
    let batches = named(&subs, "batch");
    assert!(!batches.is_empty(), "{subs:?}");
    let batch_ids: Vec<&Value> = batches.iter().map(|b| &b["id"]).collect();
    let uploads = named(&subs, "s3_upload");
    assert!(
        uploads.iter().filter(|u| batch_ids.contains(&&u["parent_id"])).count() >= batches.len(),
        "every batch uploads its object inside its span"
    );
    assert!(uploads.iter().all(|u| u["annotations"]["request_id"].is_string()));
    assert_eq!(
        named(&subs, "wix_call").len(),
        h.emulator.api_calls().len(),
        "one subsegment a Wix call"
    );

    // The next backup: incremental, everything unchanged.
    capture_logs();
    let summary = invoke_raw(&h, &json!({"backup": {"includePrivate": true}}))
        .await
        .expect("the backup runs");
    let (doc, _) = emf_and_summary();
    assert_eq!(doc["FilesStored"], 0);
    assert_eq!(doc["FilesUnchanged"], summary["unchangedFiles"]);
    let backed_up = summary["listedFiles"].as_u64().unwrap() - summary["skippedFiles"].as_u64().unwrap();
    assert_eq!(doc["FilesUnchanged"], backed_up, "every file backed up is unchanged");
    assert_eq!(doc["ColdStart"], 0, "a second invocation is warm");
}

#[tokio::test]
async fn a_failing_batch_is_counted_by_its_code() {
    let _moto = moto::setup().await;
    let h = stored(EmulatorConfig {
        library: Library::seeded_with(900, 13, 2000..8000),
        ..EmulatorConfig::default()
    })
    .await;
    // The one archive's download is cut on every try: its batch fails; the private files,
    // each downloaded on its own, are stored.
    h.emulator
        .push_download_faults("archives", vec![DownloadFault::CutAfter(100 * 1024); 3]);

    capture_logs();
    let summary = invoke_raw(&h, &json!({"backup": {"includePrivate": true}}))
        .await
        .expect("the backup runs");
    assert_eq!(summary["status"], "INCOMPLETE", "{}", brief(&summary));
    let (doc, line) = emf_and_summary();
    let failed = summary["failedFiles"].as_u64().unwrap();
    assert!(failed > 0);
    assert_eq!(doc["FilesFailed"], failed);
    assert_eq!(line["failed_files"], failed);
    let by_code: Vec<(String, u64)> = summary["failuresByCode"]
        .as_object()
        .expect("failures by code in the summary")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(failed_by_code(&doc), by_code);
    assert_eq!(by_code, vec![("WIX_UNAVAILABLE".to_owned(), failed)]);
    assert_eq!(doc["FilesStored"], summary["storedFiles"]);
    assert!(
        doc["FilesStored"].as_u64().unwrap() > 0,
        "the private files were stored"
    );
    assert_eq!(doc["BackupsComplete"], 0);
    assert_eq!(doc["BackupsIncomplete"], 1);
}
