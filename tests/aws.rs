//! Credentials from Secrets Manager and SSM, Wix app tokens, e-mail through SES and the
//! log scan — the real AWS SDK against a real moto server (`MOTO_URL`, started by
//! `scripts/test`), and the real Wix client against the emulator. Tests here share one
//! moto server, so they run one at a time and reset it first.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_secretsmanager::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept};
use aws_sdk_secretsmanager::error::BoxError;
use common::*;
use serde_json::{json, Value};
use tokio::sync::{Mutex, MutexGuard};
use wix_emulator::{AuthMode, Emulator, EmulatorConfig, Library};
use wix_media_archiver::app::App;
use wix_media_archiver::aws::{AwsCredentials, SecretStore};
use wix_media_archiver::config::Config;

static SERIAL: Mutex<()> = Mutex::const_new(());
const REGION: &str = "us-east-1";
const API_KEY: &str = "IST.eyJraWQiOiJQb3pIX2FDMiIsImFsZyI6IlJTMjU2In0-test-api-key";
const CALLER: &str = "caller-key-from-secrets-manager";
const SENDER: &str = "backups@example.com";

fn moto_url() -> String {
    std::env::var("MOTO_URL").expect("MOTO_URL is unset: run scripts/test, which starts a moto server for these tests")
}

/// Serializes the tests, points the SDK at moto, captures every log line at TRACE, and
/// resets moto.
async fn setup() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().await;
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let url = moto_url();
        // Tests in this binary run one at a time (SERIAL), so setting the environment is safe.
        for (k, v) in [
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", REGION),
            ("RUST_LOG", "trace"),
        ] {
            std::env::set_var(k, v);
        }
        std::env::remove_var("AWS_PROFILE");
        wix_media_archiver::logging::init(|| Capture);
    });
    reqwest::Client::new()
        .post(format!("{}/moto-api/reset", moto_url()))
        .send()
        .await
        .expect("moto reset");
    guard
}

async fn sdk() -> aws_config::SdkConfig {
    wix_media_archiver::aws::sdk_config().await
}

async fn create_secret(name: &str, value: &Value) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    let out = client
        .create_secret()
        .name(name)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create secret");
    out.arn().unwrap().to_owned()
}

async fn put_secret(name: &str, value: &Value) {
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    client
        .put_secret_value()
        .secret_id(name)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("put secret");
}

async fn put_parameter(name: &str, value: &Value) {
    let client = aws_sdk_ssm::Client::new(&sdk().await);
    client
        .put_parameter()
        .name(name)
        .value(value.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put parameter");
}

async fn verify_sender(address: &str) {
    let client = aws_sdk_sesv2::Client::new(&sdk().await);
    client
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
        .expect("create identity");
}

fn api_key_secret(emu: &EmulatorConfig, key: &str) -> Value {
    json!({"apiKey": key, "siteId": emu.site_id, "callerKeys": [CALLER, "an-older-caller-key"]})
}

fn emulator_config(key: &str) -> EmulatorConfig {
    EmulatorConfig {
        api_key: key.to_owned(),
        library: Library::flat(3000),
        ..EmulatorConfig::default()
    }
}

/// An app built the way the Lambda builds it, from variables.
async fn app(emulator: &Emulator, vars: &[(&str, &str)]) -> Result<App, String> {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("WIX_API_BASE_URL".into(), emulator.base_url());
    env.insert("WIX_REQUESTS_PER_MINUTE".into(), "60000".into());
    env.insert("WIX_MAX_RETRIES".into(), "2".into());
    for (k, v) in vars {
        env.insert((*k).into(), (*v).into());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).map_err(|e| e.to_string())?;
    App::from_config(config).await.map_err(|e| e.to_string())
}

fn signed_by_caller(ids: &[String], extra: Value) -> Value {
    let mut body = json!({ "fileIds": ids });
    if let Value::Object(extra) = extra {
        body.as_object_mut().unwrap().extend(extra);
    }
    let body = body.to_string();
    let sig = wix_media_archiver::signature::sign(CALLER, wix_media_archiver::local::unix_now(), body.as_bytes());
    function_url_event("POST", "/archives", &body, &[("x-archive-signature", &sig)])
}

async fn send(app: &App, event: &Value) -> (u16, Value) {
    let response = wix_media_archiver::local::invoke(app, event, Some(Duration::from_secs(60)))
        .await
        .expect("HTTP answer");
    http_parts(&response)
}

/// Counts Secrets Manager operations as the SDK executes them.
#[derive(Debug, Clone, Default)]
struct CountCalls(Arc<AtomicUsize>);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }
    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn counted_app(emulator: &Emulator, secret: &str, counter: &CountCalls, ttl: Duration) -> App {
    let conf = aws_sdk_secretsmanager::config::Builder::from(&sdk().await)
        .interceptor(counter.clone())
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(conf);
    let source = AwsCredentials::new(SecretStore::SecretsManager(client, secret.to_owned()), ttl);
    let mut env: HashMap<&str, String> = HashMap::new();
    env.insert("WIX_CREDENTIALS_SECRET", secret.to_owned());
    env.insert("WIX_API_BASE_URL", emulator.base_url());
    env.insert("WIX_REQUESTS_PER_MINUTE", "60000".to_owned());
    let config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    App::new(config, Arc::new(source), None).unwrap()
}

#[tokio::test]
async fn secrets_manager_by_name_and_arn_with_an_api_key() {
    let _serial = setup().await;
    let emu = emulator_config(API_KEY);
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    let arn = create_secret("wix/media-archiver", &api_key_secret(&emu, API_KEY)).await;
    for location in ["wix/media-archiver", arn.as_str()] {
        let app = app(&emulator, &[("WIX_CREDENTIALS_SECRET", location)]).await.unwrap();
        let ids = flat_ids(1500);
        let (status, body) = send(&app, &signed_by_caller(&ids, json!({}))).await;
        assert_eq!(status, 200, "{location}: {}", brief(&body));
        assert_eq!(body["archives"].as_array().unwrap().len(), 2);
        assert_invariant(&body, &ids);
    }
    assert!(emulator.api_calls().iter().all(|c| c.auth_ok));
}

#[tokio::test]
async fn ssm_parameter_by_name_and_arn_with_app_credentials() {
    let _serial = setup().await;
    let emu = emulator_config(API_KEY);
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    let app_creds = emu.app.clone().unwrap();
    let secret = json!({"appId": app_creds.app_id, "appSecret": app_creds.app_secret, "instanceId": app_creds.instance_id, "callerKeys": [CALLER]});
    put_parameter("/wix/media-archiver", &secret).await;
    for location in [
        "ssm:/wix/media-archiver",
        "arn:aws:ssm:us-east-1:123456789012:parameter/wix/media-archiver",
    ] {
        let app = app(&emulator, &[("WIX_CREDENTIALS_SECRET", location)]).await.unwrap();
        for _ in 0..2 {
            let (status, body) = send(&app, &signed_by_caller(&flat_ids(10), json!({}))).await;
            assert_eq!(status, 200, "{location}: {}", brief(&body));
        }
    }
    let tokens = emulator
        .api_calls()
        .iter()
        .filter(|c| c.path == "/oauth2/token")
        .count();
    assert_eq!(tokens, 2, "one token per container, reused across invocations");
}

#[tokio::test]
async fn secrets_manager_api_key_json_in_ssm_too() {
    let _serial = setup().await;
    let emu = emulator_config(API_KEY);
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    put_parameter("/wix/key", &api_key_secret(&emu, API_KEY)).await;
    let app = app(&emulator, &[("WIX_CREDENTIALS_SECRET", "ssm:/wix/key")])
        .await
        .unwrap();
    let (status, _) = send(&app, &signed_by_caller(&flat_ids(3), json!({}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn app_credentials_from_secrets_manager_refresh_the_token_on_401() {
    let _serial = setup().await;
    let emu = EmulatorConfig {
        token_ttl_seconds: 3600,
        ..emulator_config(API_KEY)
    };
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    let a = emu.app.clone().unwrap();
    create_secret(
        "wix/app",
        &json!({"appId": a.app_id, "appSecret": a.app_secret, "instanceId": a.instance_id, "callerKeys": [CALLER]}),
    )
    .await;
    let app = app(&emulator, &[("WIX_CREDENTIALS_SECRET", "wix/app")]).await.unwrap();
    let (status, _) = send(&app, &signed_by_caller(&flat_ids(3), json!({}))).await;
    assert_eq!(status, 200);
    emulator.expire_tokens();
    let (status, body) = send(&app, &signed_by_caller(&flat_ids(3), json!({}))).await;
    assert_eq!(status, 200, "{}", brief(&body));
    let paths: Vec<(String, u16)> = emulator
        .api_calls()
        .iter()
        .map(|c| (c.path.clone(), c.status))
        .collect();
    let tokens = paths.iter().filter(|(p, _)| p == "/oauth2/token").count();
    assert_eq!(tokens, 2, "{paths:?}");
    assert!(paths.iter().any(|(_, s)| *s == 401), "{paths:?}");
}

#[tokio::test]
async fn ten_invocations_read_the_secret_once() {
    let _serial = setup().await;
    let emu = emulator_config(API_KEY);
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    create_secret("wix/counted", &api_key_secret(&emu, API_KEY)).await;
    let counter = CountCalls::default();
    let app = counted_app(&emulator, "wix/counted", &counter, Duration::from_secs(300)).await;
    for _ in 0..10 {
        let (status, _) = send(&app, &signed_by_caller(&flat_ids(2), json!({}))).await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        1,
        "ten sequential invocations, one read"
    );

    let counter = CountCalls::default();
    let app = counted_app(&emulator, "wix/counted", &counter, Duration::from_secs(300)).await;
    let event = signed_by_caller(&flat_ids(2), json!({}));
    let answers = futures_util::future::join_all((0..10).map(|_| send(&app, &event))).await;
    assert!(answers.iter().all(|(s, _)| *s == 200));
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        1,
        "ten concurrent invocations share one read"
    );

    let counter = CountCalls::default();
    let app = counted_app(&emulator, "wix/counted", &counter, Duration::ZERO).await;
    for _ in 0..3 {
        send(&app, &event).await;
    }
    assert!(counter.0.load(Ordering::SeqCst) >= 3, "a zero TTL reads every time");
}

#[tokio::test]
async fn a_missing_permission_is_not_mistaken_for_a_rotated_key() {
    let _serial = setup().await;
    let emu = EmulatorConfig {
        auth: AuthMode::MissingPermission,
        ..emulator_config("a-key-without-permission")
    };
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    create_secret("wix/no-permission", &api_key_secret(&emu, "a-key-without-permission")).await;
    let counter = CountCalls::default();
    let app = counted_app(&emulator, "wix/no-permission", &counter, Duration::from_secs(300)).await;
    let (status, body) = send(&app, &signed_by_caller(&flat_ids(2), json!({}))).await;
    assert_eq!(status, 502, "{}", brief(&body));
    assert_eq!(body["failed"][0]["error"]["status"], 403);
    assert_eq!(body["failed"][0]["error"]["code"], "WIX_REJECTED");
    assert_eq!(emulator.api_calls().len(), 1, "a 403 for a permission is not retried");
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "nor is the secret read again");
}

#[tokio::test]
async fn a_rotated_wix_key_works_after_one_refresh() {
    let _serial = setup().await;
    let emu = emulator_config("old-wix-key");
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    create_secret("wix/rotating", &api_key_secret(&emu, "old-wix-key")).await;
    let counter = CountCalls::default();
    let app = counted_app(&emulator, "wix/rotating", &counter, Duration::from_secs(300)).await;
    let (status, _) = send(&app, &signed_by_caller(&flat_ids(2), json!({}))).await;
    assert_eq!(status, 200);

    put_secret("wix/rotating", &api_key_secret(&emu, "new-wix-key")).await;
    emulator.set_api_key("new-wix-key");
    emulator.clear_calls();
    let (status, body) = send(&app, &signed_by_caller(&flat_ids(2), json!({}))).await;
    assert_eq!(status, 200, "{}", brief(&body));
    let statuses: Vec<u16> = emulator.api_calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![401, 200], "refused once, then the fresh key");
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        2,
        "read at start and once after the refusal"
    );
}

#[tokio::test]
async fn unreadable_credentials_give_a_bare_500_and_log_the_secret_and_field_without_calling_wix() {
    let _serial = setup().await;
    let emu = emulator_config(API_KEY);
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    create_secret("wix/not-json", &json!("just text")).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    client
        .create_secret()
        .name("wix/not-json-at-all")
        .secret_string("{oops")
        .send()
        .await
        .unwrap();
    create_secret("wix/no-key", &json!({"siteId": "s", "callerKeys": ["c"]})).await;
    create_secret("wix/no-site", &json!({"apiKey": API_KEY, "callerKeys": ["c"]})).await;
    create_secret("wix/no-callers", &json!({"apiKey": API_KEY, "siteId": "s"})).await;
    create_secret(
        "wix/app-no-secret",
        &json!({"appId": "a", "instanceId": "i", "callerKeys": ["c"]}),
    )
    .await;
    let cases = [
        ("wix/missing", "ResourceNotFoundException"),
        ("ssm:/wix/missing", "ParameterNotFound"),
        ("wix/not-json", "not a JSON object"),
        ("wix/not-json-at-all", "not valid JSON"),
        ("wix/no-key", "`apiKey`"),
        ("wix/no-site", "`siteId`"),
        ("wix/no-callers", "`callerKeys`"),
        ("wix/app-no-secret", "`appSecret`"),
    ];
    for (location, needle) in cases {
        let app = app(&emulator, &[("WIX_CREDENTIALS_SECRET", location)]).await.unwrap();
        LOGS.lock().unwrap().clear();
        let (status, body) = send(&app, &signed_by_caller(&flat_ids(2), json!({}))).await;
        assert_eq!(status, 500, "{location}: {}", brief(&body));
        assert_eq!(body["error"]["code"], "INTERNAL");
        let name = location.trim_start_matches("ssm:");
        // The caller (who may not even be signed: the caller keys are in that secret) is told
        // nothing about it; the log names the secret and what is wrong with it.
        assert_is_bare_internal(&body, &[name, needle, API_KEY]);
        let logs = String::from_utf8(LOGS.lock().unwrap().clone()).unwrap();
        assert!(
            logs.contains(name) && logs.contains(needle),
            "{location}: the log says why"
        );
    }
    assert!(emulator.api_calls().is_empty(), "no Wix call without credentials");
}

#[tokio::test]
async fn an_unreadable_secret_past_its_ttl_falls_back_to_the_last_good_copy() {
    let _serial = setup().await;
    let emu = emulator_config(API_KEY);
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    create_secret("wix/flaky", &api_key_secret(&emu, API_KEY)).await;
    let app = app(
        &emulator,
        &[
            ("WIX_CREDENTIALS_SECRET", "wix/flaky"),
            ("SECRET_CACHE_TTL_SECONDS", "1"),
        ],
    )
    .await
    .unwrap();
    let (status, _) = send(&app, &signed_by_caller(&flat_ids(2), json!({}))).await;
    assert_eq!(status, 200);
    // The secret goes away (a denied or throttled read looks the same to the function).
    aws_sdk_secretsmanager::Client::new(&sdk().await)
        .delete_secret()
        .secret_id("wix/flaky")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    LOGS.lock().unwrap().clear();
    let (status, body) = send(&app, &signed_by_caller(&flat_ids(2), json!({}))).await;
    assert_eq!(status, 200, "served with the stale copy: {}", brief(&body));
    let logs = String::from_utf8(LOGS.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("last good copy (stale)"), "the log says so");
}

#[tokio::test]
async fn a_denied_read_is_logged_not_answered() {
    let _serial = setup().await;
    // Secrets Manager answering AccessDenied, as IAM would without the grant.
    let denied = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(400).set_body_raw(
            r#"{"__type": "AccessDeniedException", "message": "User is not authorized to perform: secretsmanager:GetSecretValue"}"#,
            "application/x-amz-json-1.1",
        ))
        .mount(&denied)
        .await;
    let emulator = Emulator::start(emulator_config(API_KEY)).await.unwrap();
    let conf = aws_sdk_secretsmanager::config::Builder::from(&sdk().await)
        .endpoint_url(denied.uri())
        .build();
    let source = AwsCredentials::new(
        SecretStore::SecretsManager(aws_sdk_secretsmanager::Client::from_conf(conf), "wix/locked".into()),
        Duration::from_secs(60),
    );
    let env: HashMap<&str, String> = [
        ("WIX_CREDENTIALS_SECRET", "wix/locked".to_owned()),
        ("WIX_API_BASE_URL", emulator.base_url()),
    ]
    .into();
    let app = App::new(
        Config::from_lookup(|k| env.get(k).cloned()).unwrap(),
        Arc::new(source),
        None,
    )
    .unwrap();
    LOGS.lock().unwrap().clear();
    let (status, body) = send(&app, &signed_by_caller(&flat_ids(2), json!({}))).await;
    assert_eq!(status, 500);
    // AWS's AccessDenied text carries account IDs and ARNs: the log only.
    assert_is_bare_internal(&body, &["wix/locked", "AccessDenied", "secretsmanager:"]);
    let logs = String::from_utf8(LOGS.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("wix/locked") && logs.contains("AccessDeniedException"));
    assert!(emulator.api_calls().is_empty());
}

/// A 500 that says nothing but INTERNAL and where to look (the requestId in the log).
fn assert_is_bare_internal(body: &Value, never: &[&str]) {
    assert_eq!(body["error"]["code"], "INTERNAL");
    let text = body.to_string();
    for word in never {
        assert!(!text.contains(word), "{word:?} in {text}");
    }
    assert!(body["requestId"].as_str().is_some_and(|r| !r.is_empty()), "{text}");
    assert!(body["error"]["details"].as_array().unwrap().is_empty(), "{text}");
}

async fn sent_messages() -> Vec<Value> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data["ses"]["Message"].as_array().cloned().unwrap_or_default()
}

fn unescape(html: &str) -> String {
    html.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

#[tokio::test]
async fn links_are_mailed_through_ses() {
    let _serial = setup().await;
    let emu = emulator_config(API_KEY);
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    create_secret("wix/mail", &api_key_secret(&emu, API_KEY)).await;
    verify_sender(SENDER).await;
    let app = app(
        &emulator,
        &[("WIX_CREDENTIALS_SECRET", "wix/mail"), ("EMAIL_FROM", SENDER)],
    )
    .await
    .unwrap();
    let ids = flat_ids(2100);
    let event = signed_by_caller(&ids, json!({"email": ["owner@example.com", "assistant@example.org"]}));
    let (status, body) = send(&app, &event).await;
    assert_eq!(status, 200, "{}", brief(&body));
    assert_eq!(body["emailedTo"], json!(["owner@example.com", "assistant@example.org"]));
    assert!(body.get("emailError").is_none());
    let messages = sent_messages().await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["source"], SENDER);
    assert_eq!(
        m["destinations"]["ToAddresses"],
        json!(["owner@example.com", "assistant@example.org"])
    );
    assert!(
        m["subject"].as_str().unwrap().contains("2100 files"),
        "{}",
        m["subject"]
    );
    let text = unescape(m["body"].as_str().unwrap());
    for a in body["archives"].as_array().unwrap() {
        assert!(
            text.contains(a["downloadUrl"].as_str().unwrap()),
            "every link is in the message"
        );
    }
    assert_eq!(body["archives"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_unverified_sender_gives_email_error_and_still_the_links() {
    let _serial = setup().await;
    let emu = emulator_config(API_KEY);
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    create_secret("wix/mail", &api_key_secret(&emu, API_KEY)).await;
    let app = app(
        &emulator,
        &[
            ("WIX_CREDENTIALS_SECRET", "wix/mail"),
            ("EMAIL_FROM", "unverified@example.com"),
        ],
    )
    .await
    .unwrap();
    let ids = flat_ids(5);
    let (status, body) = send(&app, &signed_by_caller(&ids, json!({"email": ["owner@example.com"]}))).await;
    assert_eq!(status, 200, "the status follows the archives: {}", brief(&body));
    assert_eq!(body["emailedTo"], json!([]));
    let error = body["emailError"].as_str().unwrap();
    assert!(error.contains("MessageRejected"), "{error}");
    assert_eq!(body["archives"].as_array().unwrap().len(), 1);
    assert!(sent_messages().await.is_empty());
}

#[tokio::test]
async fn no_secret_token_signature_or_link_in_any_log_line() {
    let _serial = setup().await;
    LOGS.lock().unwrap().clear();
    let emu = emulator_config(API_KEY);
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    let a = emu.app.clone().unwrap();
    create_secret("wix/key", &api_key_secret(&emu, API_KEY)).await;
    create_secret(
        "wix/app",
        &json!({"appId": a.app_id, "appSecret": a.app_secret, "instanceId": a.instance_id, "callerKeys": [CALLER]}),
    )
    .await;
    create_secret("wix/broken", &json!({"apiKey": API_KEY, "callerKeys": [CALLER]})).await;
    verify_sender(SENDER).await;

    let mut secrets: Vec<String> = vec![
        API_KEY.into(),
        CALLER.into(),
        "an-older-caller-key".into(),
        a.app_secret.clone(),
    ];
    let mut responses = Vec::new();
    for location in ["wix/key", "wix/app", "wix/broken"] {
        let app = app(
            &emulator,
            &[
                ("WIX_CREDENTIALS_SECRET", location),
                ("EMAIL_FROM", SENDER),
                ("WIX_MAX_RETRIES", "1"),
            ],
        )
        .await
        .unwrap();
        emulator.push_faults("generate-download-url", vec![wix_emulator::Fault::Status(503)]);
        let event = signed_by_caller(
            &flat_ids(1200),
            json!({"email": ["owner@example.com"], "resolvePrivate": location == "wix/app"}),
        );
        secrets.push(
            event["headers"]["x-archive-signature"]
                .as_str()
                .unwrap()
                .split("v1=")
                .nth(1)
                .unwrap()
                .to_owned(),
        );
        responses.push(send(&app, &event).await.1);
        // A refused signature is logged too.
        let mut forged = event.clone();
        forged["headers"]["x-archive-signature"] = json!(format!(
            "t={},v1={}",
            wix_media_archiver::local::unix_now(),
            "ab".repeat(32)
        ));
        send(&app, &forged).await;
    }
    emulator.expire_tokens();
    let app = app(&emulator, &[("WIX_CREDENTIALS_SECRET", "wix/key")]).await.unwrap();
    assert!(wix_media_archiver::local::invoke(&app, &json!({}), None).await.is_err());
    let logs = String::from_utf8(LOGS.lock().unwrap().clone()).unwrap();
    let summaries = logs.lines().filter(|l| l.contains("\"summary\":true")).count();
    assert_eq!(
        summaries,
        3 * 2 + 1,
        "one summary line per invocation, refused ones too"
    );
    assert!(logs.contains("\"kind\":\"refused\""));
    assert!(
        logs.lines()
            .filter(|l| l.contains("\"level\":\"DEBUG\"") || l.contains("\"level\":\"TRACE\""))
            .all(|l| l.contains("\"target\":\"wix_media_archiver")),
        "below info, only this crate logs"
    );
    assert!(logs.lines().count() > 10, "the flows logged at TRACE");
    assert!(
        logs.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "every line is JSON"
    );
    assert!(logs.contains("\"summary\":true"), "the summary line is there");
    let mut links = Vec::new();
    for body in &responses {
        for a in body["archives"].as_array().into_iter().flatten() {
            links.push(a["downloadUrl"].as_str().unwrap().to_owned());
        }
        for p in body["privateFiles"].as_array().into_iter().flatten() {
            links.push(p["downloadUrl"].as_str().unwrap().to_owned());
        }
    }
    assert!(links.len() >= 2, "the flows made links: {}", links.len());
    for needle in secrets.iter().chain(links.iter()) {
        assert!(!logs.contains(needle.as_str()), "a log line holds a secret or link");
    }
    for marker in ["OauthNG.JWS.", "/_emulator/archives/", "/_emulator/files/", "token="] {
        assert!(!logs.contains(marker), "a log line holds {marker}");
    }
}

#[tokio::test]
async fn a_backup_mails_one_report_to_the_backup_recipients() {
    let _serial = setup().await;
    let emu = EmulatorConfig {
        api_key: API_KEY.to_owned(),
        library: Library::seeded(2500, 9),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    create_secret("wix/backup", &api_key_secret(&emu, API_KEY)).await;
    verify_sender(SENDER).await;
    let app = app(
        &emulator,
        &[
            ("WIX_CREDENTIALS_SECRET", "wix/backup"),
            ("EMAIL_FROM", SENDER),
            ("BACKUP_EMAIL_TO", "owner@example.com, it@example.com"),
        ],
    )
    .await
    .unwrap();
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let body = wix_media_archiver::local::invoke(&app, &event, Some(Duration::from_secs(120)))
        .await
        .unwrap();
    assert_eq!(body["emailedTo"], json!(["owner@example.com", "it@example.com"]));
    let messages = sent_messages().await;
    assert_eq!(messages.len(), 1, "one report");
    let m = &messages[0];
    assert_eq!(
        m["destinations"]["ToAddresses"],
        json!(["owner@example.com", "it@example.com"])
    );
    assert!(m["subject"].as_str().unwrap().starts_with("Wix media backup"));
    let html = unescape(m["body"].as_str().unwrap());
    let mut links = 0;
    for key in ["archives", "privateFiles"] {
        for item in body[key].as_array().unwrap() {
            assert!(
                html.contains(item["downloadUrl"].as_str().unwrap()),
                "every link is in the report"
            );
            links += 1;
        }
    }
    assert!(links > 3);
    for item in body["archives"].as_array().unwrap() {
        for folder in item["folders"].as_array().unwrap() {
            assert!(html.contains(folder.as_str().unwrap()), "archive folders are shown");
        }
    }
    assert!(html.contains("By media type") && html.contains("Total size"));
    for s in body["skipped"].as_array().unwrap() {
        assert!(html.contains(s["fileId"].as_str().unwrap()));
    }

    // emailTo replaces BACKUP_EMAIL_TO; an empty list mails nothing.
    reqwest::Client::new()
        .post(format!("{}/moto-api/reset", moto_url()))
        .send()
        .await
        .unwrap();
    verify_sender(SENDER).await;
    let body = wix_media_archiver::local::invoke(
        &app,
        &json!({"backup": {"emailTo": []}}),
        Some(Duration::from_secs(120)),
    )
    .await
    .unwrap();
    assert_eq!(body["emailedTo"], json!([]));
    assert!(sent_messages().await.is_empty());
}

#[tokio::test]
async fn a_backup_with_unreadable_credentials_fails_the_invocation() {
    let _serial = setup().await;
    let emulator = Emulator::start(emulator_config(API_KEY)).await.unwrap();
    let app = app(&emulator, &[("WIX_CREDENTIALS_SECRET", "wix/absent")])
        .await
        .unwrap();
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let err = wix_media_archiver::local::invoke(&app, &event, Some(Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "CredentialsUnavailable");
    assert!(err.to_string().contains("wix/absent"), "{err}");
    assert!(emulator.api_calls().is_empty());
    assert!(sent_messages().await.is_empty());
}
