//! What one container builds once and every invocation borrows.

use std::sync::Arc;

use crate::config::Config;
use crate::credentials::CredentialsSource;
use crate::mail::Mailer;
use crate::wix::{ClientSettings, WixClient};

/// The configuration and the adapters, built before the first event.
pub struct App {
    pub config: Config,
    pub credentials: Arc<dyn CredentialsSource>,
    pub wix: WixClient,
    pub mailer: Option<Arc<dyn Mailer>>,
    /// The S3 client, when `STORAGE_BUCKET` is set.
    pub s3: Option<aws_sdk_s3::Client>,
    /// The client that downloads what Wix links to (archives, private files).
    pub downloads: reqwest::Client,
    /// Step Functions, when jobs are configured (`JOB_STATE_MACHINE_ARN` and a bucket).
    pub engine: Option<crate::jobs::engine::Engine>,
}

impl App {
    /// Builds the Wix client around the given adapters.
    pub fn new(
        config: Config,
        credentials: Arc<dyn CredentialsSource>,
        mailer: Option<Arc<dyn Mailer>>,
    ) -> Result<App, reqwest::Error> {
        let settings = ClientSettings::from_config(&config);
        App::with_client_settings(config, credentials, mailer, settings)
    }

    /// Builds the app with client settings of the caller's choosing (tests shorten the backoff).
    pub fn with_client_settings(
        config: Config,
        credentials: Arc<dyn CredentialsSource>,
        mailer: Option<Arc<dyn Mailer>>,
        settings: ClientSettings,
    ) -> Result<App, reqwest::Error> {
        let downloads = crate::backup::download::client(&settings)?;
        let wix = WixClient::new(settings, credentials.clone())?;
        Ok(App {
            config,
            credentials,
            wix,
            mailer,
            s3: None,
            downloads,
            engine: None,
        })
    }

    /// The same app starting jobs on `engine`.
    pub fn with_engine(mut self, engine: crate::jobs::engine::Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// The same app writing stored backups through `s3`.
    pub fn with_s3(mut self, s3: aws_sdk_s3::Client) -> Self {
        self.s3 = Some(s3);
        self
    }

    /// The store of the site these credentials are for, when storage is configured.
    pub fn store(&self, credentials: &crate::credentials::Credentials) -> Option<crate::storage::Store> {
        let settings = self.config.storage.clone()?;
        let s3 = self.s3.clone()?;
        Some(crate::storage::Store::new(s3, settings, credentials.site()))
    }
}

impl App {
    /// Where this container's mail goes out from.
    pub fn outbox(&self) -> crate::mail::Outbox<'_> {
        crate::mail::Outbox {
            mailer: self.mailer.as_deref(),
            from: self.config.email_from.as_deref(),
        }
    }

    /// The current credentials, given up on at the invocation's working deadline.
    pub async fn credentials_by(
        &self,
        ctx: &crate::wix::CallContext,
    ) -> Result<Arc<crate::credentials::Credentials>, String> {
        let read = self.credentials.current();
        let result = match ctx.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, read)
                .await
                .map_err(|_| "reading them took until the invocation's deadline".to_owned())?,
            None => read.await,
        };
        result.map_err(|e| e.to_string())
    }
}

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("the HTTP client could not be built: {0}")]
    Client(#[from] reqwest::Error),
}

impl App {
    /// Reads the environment and builds the adapters it names.
    pub async fn from_env() -> Result<App, StartError> {
        let config = crate::config::Config::from_env()?;
        App::from_config(config).await
    }

    /// Builds the adapters a configuration names.
    pub async fn from_config(config: crate::config::Config) -> Result<App, StartError> {
        use crate::aws::{AwsCredentials, SecretStore, SesMailer};
        use crate::config::SecretLocation;
        let needs_aws = !matches!(config.credentials, SecretLocation::Environment(_))
            || config.email_from.is_some()
            || config.storage.is_some()
            || config.job_state_machine_arn.is_some()
            || config.pace_table.is_some();
        let sdk = if needs_aws {
            Some(crate::aws::sdk_config().await)
        } else {
            None
        };
        let credentials: Arc<dyn CredentialsSource> = match (&config.credentials, &sdk) {
            (SecretLocation::Environment(creds), _) => {
                Arc::new(crate::credentials::StaticCredentials(Arc::new((**creds).clone())))
            }
            (SecretLocation::SecretsManager(name), Some(sdk)) => Arc::new(AwsCredentials::new(
                SecretStore::SecretsManager(aws_sdk_secretsmanager::Client::new(sdk), name.clone()),
                config.secret_cache_ttl,
            )),
            (SecretLocation::Ssm(name), Some(sdk)) => Arc::new(AwsCredentials::new(
                SecretStore::Ssm(aws_sdk_ssm::Client::new(sdk), name.clone()),
                config.secret_cache_ttl,
            )),
            _ => unreachable!("an AWS configuration is loaded whenever the credentials live in AWS"),
        };
        let mailer: Option<Arc<dyn Mailer>> = match (&config.email_from, &sdk) {
            (Some(_), Some(sdk)) => Some(Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(sdk)))),
            _ => None,
        };
        let s3 = match (&config.storage, &sdk) {
            (Some(_), Some(sdk)) => Some(crate::storage::s3_client(sdk)),
            _ => None,
        };
        let engine = match (&config.job_state_machine_arn, &sdk) {
            (Some(arn), Some(sdk)) if config.jobs_enabled() => Some(crate::jobs::engine::Engine::new(
                aws_sdk_sfn::Client::new(sdk),
                arn.clone(),
            )),
            _ => None,
        };
        let pace = match (&config.pace_table, &sdk) {
            (Some(table), Some(sdk)) => Some(Arc::new(crate::pace::DynamoPace::new(
                aws_sdk_dynamodb::Client::new(sdk),
                table.clone(),
                credentials.clone(),
            ))),
            _ => None,
        };
        let budget = config.wix_requests_per_minute;
        let mut app = App::new(config, credentials, mailer)?;
        if let Some(pace) = pace {
            app.wix = app.wix.with_shared_pace(pace, budget);
        }
        if let Some(s3) = s3 {
            app = app.with_s3(s3);
        }
        if let Some(engine) = engine {
            app = app.with_engine(engine);
        }
        Ok(app)
    }
}
