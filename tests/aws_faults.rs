//! AWS faults: Secrets Manager or SES unreachable or silent. Answers stay clear and on time,
//! and the links still go out when only SES fails.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{Credentials, Region};
use common::*;
use serde_json::json;
use wix_emulator::{Emulator, EmulatorConfig, Library};
use wix_media_archiver::app::App;
use wix_media_archiver::aws::{timeouts, AwsCredentials, SecretStore, SesMailer};
use wix_media_archiver::config::Config;
use wix_media_archiver::credentials::{CredentialsSource, SecretString, StaticCredentials, WixAuth};
use wix_media_archiver::local;

/// A port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A server that accepts connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(wix_media_archiver::aws::behavior_version())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .timeout_config(timeouts())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

fn ses_client(endpoint: &str) -> aws_sdk_sesv2::Client {
    let conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(wix_media_archiver::aws::behavior_version())
        .region(aws_sdk_sesv2::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .timeout_config(timeouts())
        .build();
    aws_sdk_sesv2::Client::from_conf(conf)
}

async fn app(emulator: &Emulator, credentials: Arc<dyn CredentialsSource>, ses: Option<&str>) -> App {
    let mut env: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    env.insert("WIX_CREDENTIALS_SECRET", "wix/media-archiver".into());
    env.insert("WIX_API_BASE_URL", emulator.base_url());
    env.insert("WIX_REQUESTS_PER_MINUTE", "60000".into());
    if ses.is_some() {
        env.insert("EMAIL_FROM", "backups@example.com".into());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let mailer = ses.map(|endpoint| Arc::new(SesMailer::new(ses_client(endpoint))) as _);
    App::new(config, credentials, mailer).unwrap()
}

fn static_credentials(emu: &EmulatorConfig) -> Arc<dyn CredentialsSource> {
    Arc::new(StaticCredentials(Arc::new(
        wix_media_archiver::credentials::Credentials {
            wix: WixAuth::ApiKey {
                api_key: SecretString::new(emu.api_key.clone()),
                site_id: emu.site_id.clone(),
            },
            caller_keys: vec![SecretString::new(CALLER_KEY.into())],
        },
    )))
}

fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        library: Library::flat(20),
        ..EmulatorConfig::default()
    }
}

#[tokio::test]
async fn secrets_manager_unreachable_answers_500_quickly_without_calling_wix() {
    let emulator = Emulator::start(emulator_config()).await.unwrap();
    let source = AwsCredentials::new(
        SecretStore::SecretsManager(secrets_client(&closed_port()), "wix/media-archiver".into()),
        Duration::from_secs(60),
    );
    let app = app(&emulator, Arc::new(source), None).await;
    let started = Instant::now();
    let response = local::invoke(&app, &request_for(&flat_ids(2)), Some(Duration::from_secs(20)))
        .await
        .unwrap();
    let (status, body) = http_parts(&response);
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "INTERNAL");
    assert!(!body.to_string().contains("wix/media-archiver"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(emulator.api_calls().is_empty());
}

#[tokio::test]
async fn secrets_manager_silent_is_given_up_before_the_lambda_times_out() {
    let emulator = Emulator::start(emulator_config()).await.unwrap();
    let source = AwsCredentials::new(
        SecretStore::SecretsManager(secrets_client(&black_hole().await), "wix/media-archiver".into()),
        Duration::from_secs(60),
    );
    let app = app(&emulator, Arc::new(source), None).await;
    let started = Instant::now();
    let response = local::invoke(&app, &request_for(&flat_ids(2)), Some(Duration::from_secs(4)))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let (status, body) = http_parts(&response);
    assert_eq!(status, 500, "{}", brief(&body));
    assert!(
        elapsed < Duration::from_secs(4),
        "answered within the Lambda timeout: {elapsed:?}"
    );
    assert_eq!(body["error"]["code"], "INTERNAL", "{}", brief(&body));

    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
    let started = Instant::now();
    let err = local::invoke(&app, &event, Some(Duration::from_secs(4)))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "CredentialsUnavailable");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(emulator.api_calls().is_empty());
}

#[tokio::test]
async fn ses_unreachable_still_returns_the_links() {
    let emu = emulator_config();
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    let closed = closed_port();
    let app = app(&emulator, static_credentials(&emu), Some(&closed)).await;
    let ids = flat_ids(3);
    let event = signed(&json!({"fileIds": ids, "email": ["owner@example.com"]}).to_string());
    let (status, body) = call(&Harness { emulator, app }, &event).await;
    assert_eq!(status, 200);
    assert_eq!(body["emailedTo"], json!([]));
    assert!(
        body["emailError"].as_str().unwrap().contains("could not connect"),
        "{}",
        body["emailError"]
    );
    assert_invariant(&body, &ids);
    assert_eq!(body["archives"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn ses_silent_is_cut_off_so_the_answer_goes_out_in_time() {
    let emu = emulator_config();
    let emulator = Emulator::start(emu.clone()).await.unwrap();
    let hole = black_hole().await;
    let app = app(&emulator, static_credentials(&emu), Some(&hole)).await;
    let ids = flat_ids(3);
    let event = signed(&json!({"fileIds": ids, "email": ["owner@example.com"]}).to_string());
    let h = Harness { emulator, app };
    let started = Instant::now();
    let (status, body) = call_with_timeout(&h, &event, Some(Duration::from_secs(5))).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "answered within the Lambda timeout: {elapsed:?}"
    );
    assert_eq!(status, 200);
    assert_eq!(body["emailedTo"], json!([]));
    let error = body["emailError"].as_str().unwrap();
    assert!(error.contains("deadline") || error.contains("timed out"), "{error}");
    assert_invariant(&body, &ids);
}
