//! The AWS adapters: credentials from Secrets Manager or SSM, and e-mail through SES v2.
//! Clients are built once per container; endpoints follow the SDK's standard variables
//! (`AWS_ENDPOINT_URL…`), so tests point them at a local moto server.

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::credentials::{parse_secret_json, BoxFuture, Credentials, CredentialsError, CredentialsSource};
use crate::mail::{Email, MailError, Mailer};

/// The SDK behaviour this build was tested with; pinned so an SDK upgrade cannot change
/// retry or checksum defaults unnoticed.
pub fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// The shared SDK configuration, with timeouts short enough to stay inside an invocation.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(behavior_version())
        .timeout_config(timeouts())
        .load()
        .await
}

/// Timeouts of every AWS call: 2 s to connect, 3 s an attempt, 8 s in all.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// Which service holds the credentials.
#[derive(Clone, Debug)]
pub enum SecretStore {
    SecretsManager(aws_sdk_secretsmanager::Client, String),
    Ssm(aws_sdk_ssm::Client, String),
}

impl SecretStore {
    fn name(&self) -> &str {
        match self {
            SecretStore::SecretsManager(_, name) | SecretStore::Ssm(_, name) => name,
        }
    }

    /// The secret's text, or why it could not be read (never its value).
    async fn read(&self) -> Result<String, CredentialsError> {
        let label = self.label();
        match self {
            SecretStore::SecretsManager(client, name) => {
                let out = client.get_secret_value().secret_id(name).send().await.map_err(|e| {
                    CredentialsError::new(
                        label.clone(),
                        format!("Secrets Manager GetSecretValue failed: {}", describe(&e)),
                    )
                })?;
                out.secret_string().map(str::to_owned).ok_or_else(|| {
                    CredentialsError::new(
                        label,
                        "the secret has no SecretString (binary secrets are not supported)",
                    )
                })
            }
            SecretStore::Ssm(client, name) => {
                let out = client
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| {
                        CredentialsError::new(label.clone(), format!("SSM GetParameter failed: {}", describe(&e)))
                    })?;
                out.parameter()
                    .and_then(|p| p.value())
                    .map(str::to_owned)
                    .ok_or_else(|| CredentialsError::new(label, "the parameter has no value"))
            }
        }
    }

    fn label(&self) -> String {
        match self {
            SecretStore::SecretsManager(_, name) => format!("secret `{name}`"),
            SecretStore::Ssm(_, name) => format!("SSM parameter `{name}`"),
        }
    }
}

/// Credentials read from AWS and reused for a while; concurrent callers share one read.
pub struct AwsCredentials {
    store: SecretStore,
    ttl: Duration,
    cached: Mutex<Option<(Arc<Credentials>, Instant)>>,
}

impl AwsCredentials {
    /// A cached source over `store`, reused for `ttl`.
    pub fn new(store: SecretStore, ttl: Duration) -> Self {
        AwsCredentials {
            store,
            ttl,
            cached: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<Arc<Credentials>, CredentialsError> {
        let text = self.store.read().await?;
        let creds = Arc::new(parse_secret_json(&self.store.label(), &text)?);
        tracing::info!(source = self.store.name(), "read the credentials");
        Ok(creds)
    }
}

/// After a failed re-read past the TTL, how long the stale copy is used before trying again.
const STALE_RETRY: Duration = Duration::from_secs(30);

impl CredentialsSource for AwsCredentials {
    fn current(&self) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            if let Some((creds, at)) = cached.as_ref() {
                if at.elapsed() < self.ttl {
                    return Ok(creds.clone());
                }
            }
            match self.fetch().await {
                Ok(fresh) => {
                    *cached = Some((fresh.clone(), Instant::now()));
                    Ok(fresh)
                }
                // A secret that was readable a moment ago and is not now (a throttled or
                // briefly unreachable Secrets Manager): the last good copy still works, and
                // failing every request would not.
                Err(e) => match cached.as_mut() {
                    Some((creds, at)) => {
                        tracing::warn!(
                            source = self.store.name(),
                            error = %e,
                            "could not read the credentials again; using the last good copy (stale)"
                        );
                        let retry_in = STALE_RETRY.min(self.ttl);
                        *at = Instant::now()
                            .checked_sub(self.ttl.saturating_sub(retry_in))
                            .unwrap_or_else(Instant::now);
                        Ok(creds.clone())
                    }
                    None => Err(e),
                },
            }
        })
    }

    fn refresh(&self, stale: Arc<Credentials>) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            // Another caller may already have replaced what Wix refused.
            if let Some((creds, _)) = cached.as_ref() {
                if *creds != stale {
                    return Ok(creds.clone());
                }
            }
            let fresh = self.fetch().await?;
            *cached = Some((fresh.clone(), Instant::now()));
            Ok(fresh)
        })
    }
}

/// Sends mail with SES v2 `SendEmail` (simple content: a text and an HTML part).
#[derive(Clone, Debug)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
}

impl SesMailer {
    /// A mailer over an SES v2 client.
    pub fn new(client: aws_sdk_sesv2::Client) -> Self {
        SesMailer { client }
    }
}

impl Mailer for SesMailer {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let content = |text: &str| {
                Content::builder()
                    .data(text)
                    .charset("UTF-8")
                    .build()
                    .map_err(|e| MailError(format!("the message could not be built: {e}")))
            };
            let message = Message::builder()
                .subject(content(&email.subject)?)
                .body(
                    Body::builder()
                        .text(content(&email.text)?)
                        .html(content(&email.html)?)
                        .build(),
                )
                .build();
            self.client
                .send_email()
                .from_email_address(&email.from)
                .destination(Destination::builder().set_to_addresses(Some(email.to.clone())).build())
                .content(EmailContent::builder().simple(message).build())
                .send()
                .await
                .map_err(|e| MailError(format!("SES SendEmail failed: {}", describe(&e))))?;
            Ok(())
        })
    }
}

/// An SDK error in words: the service's code and message, or the transport failure.
pub(crate) fn describe<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => "the service refused the request".to_owned(),
            }
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(d) if d.is_timeout() => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "could not connect".to_owned(),
        SdkError::ResponseError(_) => "the answer could not be read".to_owned(),
        SdkError::ConstructionFailure(_) => "the request could not be built".to_owned(),
        _ => "unknown error".to_owned(),
    }
}
