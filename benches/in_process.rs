//! In-process cost of taking a `POST /archives` body apart: the signature check, the JSON
//! parse with ID normalization and de-duplication, and cutting the IDs into batches of 1000 —
//! everything the function does before its first Wix call, through the public API.
//!
//! `cargo bench --bench in_process` (targets: ≤ 20 ms for 100,000 IDs, ≤ 0.3 ms for 1,000).

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wix_media_archiver::credentials::SecretString;
use wix_media_archiver::domain::batch::{self, MAX_BATCH};
use wix_media_archiver::domain::ids;
use wix_media_archiver::domain::request::{self, RequestLimits};
use wix_media_archiver::signature;

const KEY: &str = "bench-caller-key";

/// A body of `n` unique realistic Wix IDs (`746af3_<32 hex>~mv2.jpg` and other media
/// types), one in 20 sent as a `wix:image://v1/…` URL, plus 1% repeated entries.
fn body(n: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(42);
    let hex = |rng: &mut fastrand::Rng, len: usize| -> String {
        (0..len)
            .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap())
            .collect()
    };
    let prefix = "746af3";
    let mut entries: Vec<String> = Vec::with_capacity(n + n / 100);
    let mut ids: Vec<String> = Vec::with_capacity(n);
    for i in 0..n {
        let body = hex(&mut rng, 32);
        let id = match i % 10 {
            0..=6 => format!("{prefix}_{body}~mv2.jpg"),
            7 => format!("{prefix}_{body}~mv2.png"),
            8 => format!("{prefix}_{body}.pdf"),
            _ => format!("{prefix}_{body}"),
        };
        let entry = if i % 20 == 19 {
            format!("wix:image://v1/{id}/IMG_{i:05}.jpg#originWidth=3024&originHeight=4032")
        } else {
            id.clone()
        };
        entries.push(entry);
        ids.push(id);
    }
    for i in (0..n).step_by(100) {
        entries.push(ids[i].clone());
    }
    serde_json::json!({ "fileIds": entries }).to_string()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// What the edge does with a body before the first Wix call; returns the batch count.
fn take_apart(header: &[u8], body: &[u8], keys: &[SecretString], now: u64) -> usize {
    signature::verify(Some(header), body, keys, now, 300).expect("the signature matches");
    let limits = RequestLimits {
        max_files: 1_000_000,
        max_files_async: 1_000_000,
        email_enabled: false,
        prefer_async: false,
    };
    let request = request::parse(body, limits).expect("the body is valid");
    let batches: Vec<_> = batch::batches(&request.ids.ids, MAX_BATCH).collect();
    black_box(&batches);
    batches.len()
}

fn in_process(c: &mut Criterion) {
    // Two caller keys, the signing one second: a rotation in progress checks both.
    let keys = vec![
        SecretString::new("previous-caller-key".to_owned()),
        SecretString::new(KEY.to_owned()),
    ];
    let mut group = c.benchmark_group("signature+parse+normalize+dedupe+batch");
    for n in [1_000usize, 100_000] {
        let body = body(n);
        let now = unix_now();
        let header = signature::sign(KEY, now, body.as_bytes());
        assert_eq!(
            take_apart(header.as_bytes(), body.as_bytes(), &keys, now),
            n.div_ceil(MAX_BATCH)
        );
        eprintln!("{n} IDs: body {} bytes", body.len());
        group.throughput(Throughput::Bytes(body.len() as u64));
        if n >= 100_000 {
            group.sample_size(30).measurement_time(Duration::from_secs(6));
        } else {
            group.sample_size(100).measurement_time(Duration::from_secs(3));
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &body, |b, body| {
            b.iter(|| take_apart(header.as_bytes(), body.as_bytes(), &keys, now))
        });
    }
    // The usual case: one caller key (no rotation in progress), so one HMAC over the body.
    let body_100k = body(100_000);
    let now = unix_now();
    let header = signature::sign(KEY, now, body_100k.as_bytes());
    group.bench_with_input(BenchmarkId::new("one-key", 100_000), &body_100k, |b, body| {
        b.iter(|| take_apart(header.as_bytes(), body.as_bytes(), &keys[1..], now))
    });
    group.finish();

    // The parts of the 100,000-ID case, to see where the time goes.
    let body = body(100_000);
    let now = unix_now();
    let header = signature::sign(KEY, now, body.as_bytes());
    let mut parts = c.benchmark_group("parts-100000");
    parts.sample_size(30).measurement_time(Duration::from_secs(4));
    parts.bench_function("signature::verify", |b| {
        b.iter(|| signature::verify(Some(header.as_bytes()), body.as_bytes(), &keys, now, 300))
    });
    parts.bench_function("request::parse", |b| {
        let limits = RequestLimits {
            max_files: 1_000_000,
            max_files_async: 1_000_000,
            email_enabled: false,
            prefer_async: false,
        };
        b.iter(|| request::parse(body.as_bytes(), limits).map(|r| r.ids.ids.len()))
    });
    // The steps of `request::parse`: the JSON alone (into borrowed strings), then the
    // normalization and the de-duplication of those strings.
    let entries: Vec<&str> = {
        #[derive(serde::Deserialize)]
        struct Body<'a> {
            #[serde(borrow, rename = "fileIds")]
            file_ids: Vec<&'a str>,
        }
        serde_json::from_str::<Body>(&body)
            .map(|b| b.file_ids)
            .unwrap_or_default()
    };
    parts.bench_function("json-only", |b| {
        b.iter(|| {
            #[derive(serde::Deserialize)]
            struct Body<'a> {
                #[serde(borrow, rename = "fileIds")]
                file_ids: Vec<&'a str>,
            }
            serde_json::from_str::<Body>(&body).map(|b| b.file_ids.len())
        })
    });
    parts.bench_function("ids::normalize", |b| {
        b.iter(|| entries.iter().filter_map(|e| ids::normalize(e).ok()).count())
    });
    let normalized: Vec<&str> = entries.iter().filter_map(|e| ids::normalize(e).ok()).collect();
    parts.bench_function("ids::dedupe", |b| {
        b.iter(|| ids::dedupe(normalized.iter().copied()).ids.len())
    });
    parts.finish();
}

criterion_group!(benches, in_process);
criterion_main!(benches);
