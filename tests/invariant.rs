//! Property: whatever the request and whatever Wix does, every unique ID stands exactly
//! once in archives, private links or failures. Checked on the answer's JSON by the
//! tests' own `assert_invariant`, not by the crate's check; the lists cross the 1000-file
//! batch edges, so faults land on the edges too.

mod common;

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use wix_emulator::{Emulator, EmulatorConfig, Fault, Library, PrivateInArchive, UnknownIds};
use wix_media_archiver::archive;
use wix_media_archiver::credentials::{Credentials, SecretString, StaticCredentials, WixAuth};
use wix_media_archiver::domain::ids;
use wix_media_archiver::wix::{CallContext, ClientSettings, WixClient};

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::Status(503)),
        Just(Fault::Status(500)),
        Just(Fault::StatusEmptyBody(504)),
        Just(Fault::Status(400)),
        Just(Fault::Status(404)),
        Just(Fault::TooManyRequests { retry_after: None }),
        Just(Fault::TooManyRequests { retry_after: Some(0) }),
        Just(Fault::Drop),
        Just(Fault::Hang(Duration::from_millis(400))),
        Just(Fault::Delay(Duration::from_millis(30))),
        Just(Fault::Body {
            status: 200,
            content_type: "application/json".into(),
            body: "{}".into()
        }),
        Just(Fault::Body {
            status: 200,
            content_type: "text/html".into(),
            body: "<html>".into()
        }),
        Just(Fault::Body {
            status: 502,
            content_type: "text/html".into(),
            body: "<html>bad gateway</html>".into()
        }),
    ]
}

const UNKNOWN_MODES: [UnknownIds; 6] = [
    UnknownIds::Validation,
    UnknownIds::ValidationUnnamed,
    UnknownIds::Reject,
    UnknownIds::Ignore,
    UnknownIds::NothingToDownload,
    UnknownIds::NothingToDownloadOnLink,
];

#[derive(Debug, Clone)]
struct Case {
    /// How many IDs (up to 2500: three batches), and a seed to draw them.
    count: usize,
    draw: u64,
    unknown: Vec<usize>,
    faults: Vec<Fault>,
    resolve_private: bool,
    unknown_mode: usize,
    reject_private: bool,
    retries: u32,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![1usize..60, 990usize..1010, 1990usize..2010, 1usize..2500],
        any::<u64>(),
        prop::collection::vec(0usize..5, 0..3),
        prop::collection::vec(fault(), 0..12),
        any::<bool>(),
        0usize..UNKNOWN_MODES.len(),
        any::<bool>(),
        0u32..3,
    )
        .prop_map(
            |(count, draw, unknown, faults, resolve_private, unknown_mode, reject_private, retries)| Case {
                count,
                draw,
                unknown,
                faults,
                resolve_private,
                unknown_mode,
                reject_private,
                retries,
            },
        )
}

/// Ready public and private files to pick from (the seeded library, without what is
/// deleted or pending, which archives would not hold anyway).
fn library() -> Library {
    static LIBRARY: std::sync::OnceLock<Library> = std::sync::OnceLock::new();
    LIBRARY
        .get_or_init(|| {
            let mut library = Library::seeded(3000, 5);
            library
                .files
                .retain(|f| f.state == "OK" && f.operation_status == "READY" && f.media_type != "MODEL3D");
            library
        })
        .clone()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

async fn run(case: Case) -> Result<(), TestCaseError> {
    let library = library();
    let pool: Vec<String> = library.files.iter().map(|f| f.id.clone()).collect();
    let config = EmulatorConfig {
        library: library.clone(),
        unknown_ids: UNKNOWN_MODES[case.unknown_mode],
        private_in_archive: if case.reject_private {
            PrivateInArchive::Reject
        } else {
            PrivateInArchive::Include
        },
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config.clone()).await.unwrap();
    emulator.push_faults("", case.faults.clone());
    let settings = ClientSettings {
        base_url: emulator.base_url().parse().unwrap(),
        timeout: Duration::from_millis(200),
        max_retries: case.retries,
        concurrency: 4,
        requests_per_minute: 600_000,
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(5),
    };
    let creds = Credentials {
        wix: WixAuth::ApiKey {
            api_key: SecretString::new(config.api_key.clone()),
            site_id: config.site_id.clone(),
        },
        caller_keys: vec![SecretString::new("k".into())],
    };
    let client = WixClient::new(settings, Arc::new(StaticCredentials(Arc::new(creds)))).unwrap();
    // Draws with repeats, so duplicates occur.
    let mut rng = fastrand::Rng::with_seed(case.draw);
    let mut raw: Vec<String> = Vec::new();
    for i in 0..case.count {
        let id = &pool[rng.usize(..pool.len())];
        raw.push(if i % 3 == 0 {
            format!("wix:image://v1/{id}/name.jpg#originWidth=1")
        } else {
            id.clone()
        });
    }
    for u in &case.unknown {
        raw.push(format!("ffffff_{u:032x}"));
    }
    let unique = ids::dedupe(raw.iter().map(|r| ids::normalize(r).unwrap())).ids;
    let ctx = CallContext::new(None);
    let outcome = if case.resolve_private {
        archive::archive_resolving_private(&client, &ctx, &unique, 60).await
    } else {
        archive::archive_ids(&client, &ctx, &unique).await
    };
    let answer = serde_json::to_value(&outcome).unwrap();
    let unique_owned: Vec<String> = unique.iter().map(|id| id.to_string()).collect();
    common::assert_invariant(&answer, &unique_owned);
    for failure in &outcome.failed {
        prop_assert!(!failure.file_ids.is_empty());
    }
    // Without faults, only the IDs Wix refuses may fail, and only them.
    let refuses_unknown = !matches!(
        UNKNOWN_MODES[case.unknown_mode],
        UnknownIds::Ignore | UnknownIds::NothingToDownloadOnLink
    ) || case.resolve_private;
    if case.faults.is_empty() && !case.reject_private {
        let known: std::collections::HashSet<&str> = pool.iter().map(String::as_str).collect();
        for failure in &outcome.failed {
            for id in &failure.file_ids {
                prop_assert!(
                    !known.contains(id.as_str()) && refuses_unknown,
                    "{id} failed: {:?}",
                    failure.error
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_unique_id_is_accounted_for_exactly_once(case in case()) {
        runtime().block_on(run(case))?;
    }
}

#[test]
fn fixed_fault_schedules_keep_the_invariant() {
    runtime().block_on(async {
        for seed in 0..4u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let faults: Vec<Fault> = (0..8)
                .map(|_| match rng.u8(0..4) {
                    0 => Fault::Status(503),
                    1 => Fault::Drop,
                    2 => Fault::TooManyRequests { retry_after: Some(0) },
                    _ => Fault::Status(400),
                })
                .collect();
            let case = Case {
                count: 2400,
                draw: seed,
                unknown: vec![1, 3],
                faults,
                resolve_private: seed % 2 == 0,
                unknown_mode: seed as usize % UNKNOWN_MODES.len(),
                reject_private: seed % 3 == 0,
                retries: 1,
            };
            run(case).await.unwrap();
        }
    });
}
