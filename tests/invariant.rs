//! Property: whatever the request and whatever Wix does, every unique ID stands exactly
//! once in archives, private links or failures.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use wix_emulator::{Emulator, EmulatorConfig, Fault, Library, UnknownIds};
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

#[derive(Debug, Clone)]
struct Case {
    picks: Vec<usize>,
    unknown: Vec<usize>,
    faults: Vec<Fault>,
    resolve_private: bool,
    reject_unknown: bool,
    retries: u32,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(0usize..400, 1..60),
        prop::collection::vec(0usize..5, 0..3),
        prop::collection::vec(fault(), 0..12),
        any::<bool>(),
        any::<bool>(),
        0u32..3,
    )
        .prop_map(
            |(picks, unknown, faults, resolve_private, reject_unknown, retries)| Case {
                picks,
                unknown,
                faults,
                resolve_private,
                reject_unknown,
                retries,
            },
        )
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
    let library = Library::seeded(400, 5);
    let pool: Vec<String> = library.files.iter().map(|f| f.id.clone()).collect();
    let config = EmulatorConfig {
        library,
        unknown_ids: if case.reject_unknown {
            UnknownIds::Reject
        } else {
            UnknownIds::Ignore
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
    // Repeat picks so batches get large and duplicates occur.
    let mut raw: Vec<String> = Vec::new();
    for (i, p) in case.picks.iter().enumerate() {
        let id = &pool[*p];
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
    prop_assert_eq!(outcome.check_accounts_for(&unique), Ok(()));
    for failure in &outcome.failed {
        prop_assert!(!failure.file_ids.is_empty());
    }
    if case.faults.is_empty() && !case.reject_unknown && !case.resolve_private {
        prop_assert_eq!(outcome.failed_files(), 0);
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
            let picks: Vec<usize> = (0..400).cycle().take(400).collect();
            let case = Case {
                picks,
                unknown: vec![],
                faults,
                resolve_private: seed % 2 == 0,
                reject_unknown: true,
                retries: 1,
            };
            run(case).await.unwrap();
        }
    });
}
