//! The Lambda entry: `classify` on arbitrary JSON, `BackupOptions::parse` on arbitrary
//! JSON objects, and `handle_event` itself for every event that classifies as HTTP.
//!
//! Input: a Lambda event as JSON; inputs that are not JSON are skipped.
//!
//! Checked, besides "never panics":
//! - `Schedule(Some(options))` only for an object-valued `backup`;
//! - `BackupOptions::parse` (of the event's `backup`, or of the whole event when it is an
//!   object) keeps its rules on `Ok`: a known root folder, known and unique upper-case
//!   media types, at most 50 addresses that are trimmed and non-empty;
//! - `handle_event` on an HTTP event (which the fixed caller keys never sign, so it stops
//!   at the signature check and never calls Wix) either refuses it as `MalformedHttpEvent`
//!   or answers with a status of 400..=499 and a JSON error body.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use serde_json::Value;
use wix_media_archiver::app::App;
use wix_media_archiver::backup::BackupOptions;
use wix_media_archiver::config::{self, Config, SecretLocation};
use wix_media_archiver::credentials::StaticCredentials;
use wix_media_archiver::entry::lambda::{self, EventError, EventKind};

struct Fixture {
    config: Config,
    app: App,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let lookup = |name: &str| {
            Some(
                match name {
                    "WIX_API_KEY" => "fuzz-api-key",
                    "WIX_SITE_ID" => "fuzz-site",
                    "CALLER_KEYS" => "fuzz-caller-key-1, fuzz-caller-key-2",
                    // Never reached (no event gets past the signature), and a closed port if it were.
                    "WIX_API_BASE_URL" => "http://127.0.0.1:9",
                    "WIX_MAX_RETRIES" => "0",
                    "BACKUP_MEDIA_TYPES" => "IMAGE,video",
                    "BACKUP_EMAIL_TO" => "ops@example.com",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let config = Config::from_lookup(lookup).expect("the fuzz configuration is valid");
        let SecretLocation::Environment(creds) = &config.credentials else {
            panic!("credentials come from the lookup");
        };
        let credentials = Arc::new(StaticCredentials(Arc::new((**creds).clone())));
        let app = App::new(config.clone(), credentials, None).expect("the HTTP client builds");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime");
        Fixture { config, app, runtime }
    })
}

fn check_options(raw: &RawValue, config: &Config) {
    if let Ok(o) = BackupOptions::parse(Some(raw), config) {
        assert!(
            ["MEDIA_ROOT", "VISITOR_UPLOADS_ROOT", "TRASH_ROOT"].contains(&o.root_folder.as_str()),
            "{o:?}"
        );
        for (i, t) in o.media_types.iter().enumerate() {
            assert!(config::MEDIA_TYPES.contains(&t.as_str()), "{o:?}");
            assert!(!o.media_types[..i].contains(t), "{o:?}");
        }
        assert!(o.email_to.len() <= 50, "{o:?}");
        for a in &o.email_to {
            assert!(!a.is_empty() && a.trim() == a, "{o:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Box<RawValue>>(data) else {
        return;
    };
    let fx = fixture();

    // The whole event as backup options, when it is an object.
    if event.get().starts_with('{') {
        check_options(&event, &fx.config);
    } else {
        assert!(BackupOptions::parse(Some(&event), &fx.config).is_err());
    }

    match lambda::classify(&event) {
        Ok(EventKind::Schedule(Some(options), _)) => {
            assert!(options.get().trim_start().starts_with('{'));
            check_options(&options, &fx.config);
        }
        Ok(EventKind::Schedule(None, _)) | Err(_) => {}
        // These reach S3, SQS or Step Functions, which the fixture does not have: that
        // classifying them does not panic is what is checked here.
        Ok(EventKind::JobSteps(_) | EventKind::Restore(_) | EventKind::Verify(_)) => {}
        Ok(EventKind::Http(_)) => {
            let mut context = lambda_runtime::Context::default();
            context.request_id = "fuzz-request".to_owned();
            let invocation = lambda_runtime::LambdaEvent::new(event, context);
            let answer = match fx.runtime.block_on(lambda::handle_event(&fx.app, invocation)) {
                Ok(answer) => answer,
                // An HTTP-shaped event whose parts cannot be read (say a body marked
                // base64 that is not) is refused as a whole, by design.
                Err(EventError::MalformedHttpEvent { .. }) => return,
                Err(e) => panic!("an HTTP event failed as {e:?}"),
            };
            let status = answer["statusCode"].as_u64().expect("a status code");
            assert!((400..500).contains(&status), "status {status}: {answer}");
            let body = answer["body"].as_str().expect("a body");
            let body: Value = serde_json::from_str(body).expect("the body is JSON");
            assert!(body["error"]["code"].is_string(), "{body}");
        }
    }
});
