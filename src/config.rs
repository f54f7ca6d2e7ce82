//! The configuration: read from the environment and checked once, before the first event.

use std::time::Duration;

use reqwest::Url;

use crate::credentials::{Credentials, SecretString, WixAuth};
use crate::domain::address;
use crate::storage::{StorageSettings, STORAGE_CLASSES};

/// Wix media types a backup may filter on.
pub const MEDIA_TYPES: [&str; 8] = [
    "IMAGE", "VIDEO", "AUDIO", "DOCUMENT", "VECTOR", "ARCHIVE", "MODEL3D", "OTHER",
];

/// Where the credentials are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretLocation {
    /// A Secrets Manager secret name or ARN.
    SecretsManager(String),
    /// An SSM SecureString parameter name (or its ARN).
    Ssm(String),
    /// `WIX_API_KEY`, `WIX_SITE_ID` and `CALLER_KEYS` from the environment (local use).
    Environment(Box<Credentials>),
}

/// The whole configuration of the function.
#[derive(Debug, Clone)]
pub struct Config {
    pub credentials: SecretLocation,
    pub wix_api_base_url: Url,
    pub email_from: Option<String>,
    pub backup_email_to: Vec<String>,
    pub backup_media_types: Vec<String>,
    pub backup_include_private: bool,
    pub max_files_per_request: usize,
    /// `MAX_FILES_PER_JOB`: files an asynchronous request may list.
    pub max_files_per_job: usize,
    pub wix_max_concurrency: usize,
    pub wix_requests_per_minute: u32,
    /// This container's share of `wix_requests_per_minute` (0 < share ≤ 1).
    pub wix_pace_share: f64,
    pub wix_max_retries: u32,
    pub wix_timeout: Duration,
    pub secret_cache_ttl: Duration,
    pub signature_tolerance_secs: u64,
    pub private_link_expiration_minutes: u32,
    /// Cap on a synchronous HTTP request's working time; unset: by event source.
    pub http_deadline: Option<Duration>,
    /// The owner's bucket for stored backups; `None`: link-only backups.
    pub storage: Option<StorageSettings>,
    /// Backups older than this are pruned after a complete backup (0: keep all).
    pub backup_retention_days: u32,
    /// A full backup at least this often; incremental in between.
    pub backup_full_every_days: u32,
    /// The Step Functions state machine that runs jobs; `None`: no jobs.
    pub job_state_machine_arn: Option<String>,
    /// The DynamoDB table of the site's shared Wix pace; `None`: each container paces alone.
    pub pace_table: Option<String>,
    /// `JOB_LIST_STEP_SECONDS`: how long one listing step of a job lists before it hands on.
    pub job_list_step_seconds: u64,
    /// `JOB_HEARTBEAT_SECONDS`: how often a running step tells Step Functions it is alive
    /// (the definition's `HeartbeatSeconds` must be longer).
    pub job_heartbeat_seconds: u64,
}

/// A variable with a value the function cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn bad(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`; an empty value counts as unset, so a template can
    /// pass an empty parameter through.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let credentials = match get("WIX_CREDENTIALS_SECRET") {
            Some(location) => parse_secret_location(&location)?,
            None => SecretLocation::Environment(Box::new(env_credentials(&get)?)),
        };

        let base = get("WIX_API_BASE_URL").unwrap_or_else(|| "https://www.wixapis.com".to_owned());
        let wix_api_base_url = Url::parse(&base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none())
            .ok_or_else(|| {
                bad(
                    "WIX_API_BASE_URL",
                    "must be an http(s) URL such as https://www.wixapis.com",
                )
            })?;

        let email_from = get("EMAIL_FROM");
        if let Some(from) = &email_from {
            if !address::is_valid(from) {
                return Err(bad("EMAIL_FROM", "is not an e-mail address"));
            }
        }
        let backup_email_to = match get("BACKUP_EMAIL_TO") {
            Some(list) => {
                let list = address::split_list(&list);
                if let Some(badly) = list.iter().position(|a| !address::is_valid(a)) {
                    return Err(bad(
                        "BACKUP_EMAIL_TO",
                        format!("entry {} is not an e-mail address", badly + 1),
                    ));
                }
                list
            }
            None => Vec::new(),
        };
        let backup_media_types = match get("BACKUP_MEDIA_TYPES") {
            Some(list) => parse_media_types(&list).map_err(|e| bad("BACKUP_MEDIA_TYPES", e))?,
            None => Vec::new(),
        };

        Ok(Config {
            credentials,
            wix_api_base_url,
            email_from,
            backup_email_to,
            backup_media_types,
            backup_include_private: parse_bool(&get, "BACKUP_INCLUDE_PRIVATE", true)?,
            max_files_per_request: number(&get, "MAX_FILES_PER_REQUEST", 50_000, 1, 1_000_000)? as usize,
            max_files_per_job: number(&get, "MAX_FILES_PER_JOB", 1_000_000, 1, 10_000_000)? as usize,
            wix_max_concurrency: number(&get, "WIX_MAX_CONCURRENCY", 4, 1, 64)? as usize,
            wix_requests_per_minute: number(&get, "WIX_REQUESTS_PER_MINUTE", 180, 1, 100_000)? as u32,
            wix_pace_share: match get("WIX_PACE_SHARE") {
                None => 1.0,
                Some(raw) => match raw.parse::<f64>() {
                    Ok(share) if share > 0.0 && share <= 1.0 => share,
                    _ => return Err(bad("WIX_PACE_SHARE", "must be a number above 0 and at most 1")),
                },
            },
            wix_max_retries: number(&get, "WIX_MAX_RETRIES", 5, 0, 20)? as u32,
            wix_timeout: Duration::from_secs(number(&get, "WIX_TIMEOUT_SECONDS", 10, 1, 900)?),
            secret_cache_ttl: Duration::from_secs(number(&get, "SECRET_CACHE_TTL_SECONDS", 300, 0, 86_400)?),
            signature_tolerance_secs: number(&get, "SIGNATURE_TOLERANCE_SECONDS", 300, 1, 86_400)?,
            private_link_expiration_minutes: number(&get, "PRIVATE_LINK_EXPIRATION_MINUTES", 1440, 1, 525_600)? as u32,
            http_deadline: match get("HTTP_DEADLINE_SECONDS") {
                Some(_) => Some(Duration::from_secs(number(&get, "HTTP_DEADLINE_SECONDS", 12, 1, 900)?)),
                None => None,
            },
            storage: storage_settings(&get)?,
            backup_retention_days: number(&get, "BACKUP_RETENTION_DAYS", 90, 0, 36_500)? as u32,
            backup_full_every_days: number(&get, "BACKUP_FULL_EVERY_DAYS", 30, 1, 3_650)? as u32,
            job_state_machine_arn: match get("JOB_STATE_MACHINE_ARN") {
                Some(arn) => {
                    let parts: Vec<&str> = arn.splitn(7, ':').collect();
                    if !matches!(parts.as_slice(), ["arn", _, "states", _, _, "stateMachine", name] if !name.is_empty())
                    {
                        return Err(bad(
                            "JOB_STATE_MACHINE_ARN",
                            "must be a state machine ARN (arn:aws:states:…:stateMachine:…)",
                        ));
                    }
                    Some(arn)
                }
                None => None,
            },
            job_list_step_seconds: number(&get, "JOB_LIST_STEP_SECONDS", 600, 1, 840)?,
            job_heartbeat_seconds: number(&get, "JOB_HEARTBEAT_SECONDS", 60, 1, 600)?,
            pace_table: match get("PACE_TABLE") {
                Some(t)
                    if (3..=255).contains(&t.len())
                        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
                {
                    Some(t)
                }
                Some(_) => {
                    return Err(bad(
                        "PACE_TABLE",
                        "must be a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, _ . -)",
                    ))
                }
                None => None,
            },
        })
    }

    /// Wix calls a minute this container may start: its share of the site's budget.
    pub fn wix_pace(&self) -> u32 {
        ((f64::from(self.wix_requests_per_minute) * self.wix_pace_share).floor() as u32).max(1)
    }

    /// Whether long work runs as jobs: a state machine and a bucket for their state.
    pub fn jobs_enabled(&self) -> bool {
        self.job_state_machine_arn.is_some() && self.storage.is_some()
    }

    /// Whether requests may ask for the links by e-mail.
    pub fn email_enabled(&self) -> bool {
        self.email_from.is_some()
    }
}

/// Comma-separated Wix media types, upper-cased and checked.
pub fn parse_media_types(list: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let upper = raw.to_ascii_uppercase();
        if !MEDIA_TYPES.contains(&upper.as_str()) {
            return Err(format!(
                "has unknown media type `{raw}` (known: {})",
                MEDIA_TYPES.join(", ")
            ));
        }
        if !out.contains(&upper) {
            out.push(upper);
        }
    }
    Ok(out)
}

/// `STORAGE_*`: the bucket (checked against S3's naming rules), the prefix (with a `/` at its
/// end added when missing), the storage class and the KMS key.
fn storage_settings(get: &impl Fn(&str) -> Option<String>) -> Result<Option<StorageSettings>, ConfigError> {
    let Some(bucket) = get("STORAGE_BUCKET") else {
        for other in ["STORAGE_PREFIX", "STORAGE_CLASS", "STORAGE_KMS_KEY_ARN"] {
            if get(other).is_some() {
                return Err(bad(other, "is set but STORAGE_BUCKET is not"));
            }
        }
        return Ok(None);
    };
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if !valid_bucket {
        return Err(bad(
            "STORAGE_BUCKET",
            "is not an S3 bucket name (3 to 63 characters of a-z, 0-9, '.' and '-')",
        ));
    }
    let mut prefix = get("STORAGE_PREFIX").unwrap_or_else(|| "wix-media-archiver/".to_owned());
    if prefix.starts_with('/') || prefix.len() > 512 || prefix.chars().any(char::is_control) {
        return Err(bad(
            "STORAGE_PREFIX",
            "must be a key prefix without a leading '/' or control characters",
        ));
    }
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    let storage_class = get("STORAGE_CLASS")
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_else(|| "STANDARD".to_owned());
    if !STORAGE_CLASSES.contains(&storage_class.as_str()) {
        return Err(bad(
            "STORAGE_CLASS",
            format!("must be one of {}", STORAGE_CLASSES.join(", ")),
        ));
    }
    let kms_key_arn = get("STORAGE_KMS_KEY_ARN");
    if let Some(arn) = &kms_key_arn {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if !matches!(parts.as_slice(), ["arn", _, "kms", _, _, resource] if resource.starts_with("key/") || resource.starts_with("alias/"))
        {
            return Err(bad(
                "STORAGE_KMS_KEY_ARN",
                "must be a KMS key ARN (arn:aws:kms:…:key/…)",
            ));
        }
    }
    Ok(Some(StorageSettings {
        bucket,
        prefix,
        storage_class,
        kms_key_arn,
        part_size: crate::storage::upload::DEFAULT_PART_SIZE,
    }))
}

fn parse_secret_location(location: &str) -> Result<SecretLocation, ConfigError> {
    if let Some(name) = location.strip_prefix("ssm:") {
        if name.is_empty() {
            return Err(bad("WIX_CREDENTIALS_SECRET", "`ssm:` needs a parameter name after it"));
        }
        return Ok(SecretLocation::Ssm(name.to_owned()));
    }
    if location.starts_with("arn:") {
        let parts: Vec<&str> = location.splitn(6, ':').collect();
        return match parts.as_slice() {
            [_, _, "ssm", _, _, resource] if resource.starts_with("parameter/") => {
                Ok(SecretLocation::Ssm(location.to_owned()))
            }
            [_, _, "secretsmanager", _, _, resource] if resource.starts_with("secret:") => {
                Ok(SecretLocation::SecretsManager(location.to_owned()))
            }
            _ => Err(bad(
                "WIX_CREDENTIALS_SECRET",
                "is an ARN of neither a Secrets Manager secret nor an SSM parameter",
            )),
        };
    }
    Ok(SecretLocation::SecretsManager(location.to_owned()))
}

fn env_credentials(get: &impl Fn(&str) -> Option<String>) -> Result<Credentials, ConfigError> {
    let missing = |v: &'static str| bad(v, "is not set (and WIX_CREDENTIALS_SECRET is unset)");
    let api_key = get("WIX_API_KEY").ok_or_else(|| missing("WIX_API_KEY"))?;
    let site_id = get("WIX_SITE_ID").ok_or_else(|| missing("WIX_SITE_ID"))?;
    let caller_keys: Vec<SecretString> = get("CALLER_KEYS")
        .ok_or_else(|| missing("CALLER_KEYS"))?
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| SecretString::new(k.to_owned()))
        .collect();
    if caller_keys.is_empty() {
        return Err(bad("CALLER_KEYS", "lists no key"));
    }
    Ok(Credentials {
        wix: WixAuth::ApiKey {
            api_key: SecretString::new(api_key),
            site_id,
        },
        caller_keys,
    })
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(name) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(name, format!("must be a whole number from {min} to {max}"))),
    }
}

fn parse_bool(get: &impl Fn(&str) -> Option<String>, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(_) => Err(bad(name, "must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const LOCAL: [(&str, &str); 3] = [("WIX_API_KEY", "k"), ("WIX_SITE_ID", "s"), ("CALLER_KEYS", "c1, c2")];

    #[test]
    fn defaults() {
        let c = load(&LOCAL).unwrap();
        assert_eq!(c.wix_api_base_url.as_str(), "https://www.wixapis.com/");
        assert_eq!(c.max_files_per_request, 50_000);
        assert_eq!(c.max_files_per_job, 1_000_000);
        assert_eq!(c.wix_max_concurrency, 4);
        assert_eq!(c.wix_requests_per_minute, 180);
        assert_eq!(c.wix_max_retries, 5);
        assert_eq!(c.wix_timeout, Duration::from_secs(10));
        assert_eq!(c.secret_cache_ttl, Duration::from_secs(300));
        assert_eq!(c.signature_tolerance_secs, 300);
        assert_eq!(c.private_link_expiration_minutes, 1440);
        assert_eq!(c.http_deadline, None);
        assert_eq!(c.wix_pace(), 180);
        assert_eq!(c.storage, None);
        assert_eq!((c.backup_retention_days, c.backup_full_every_days), (90, 30));
        assert!(c.backup_include_private);
        assert!(!c.email_enabled());
        match c.credentials {
            SecretLocation::Environment(creds) => assert_eq!(creds.caller_keys.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let cases: [(&str, &str); 27] = [
            ("JOB_STATE_MACHINE_ARN", "arn:aws:lambda:us-east-1:1:function:x"),
            ("PACE_TABLE", "a b"),
            ("STORAGE_PREFIX", "x/"),
            ("BACKUP_RETENTION_DAYS", "-1"),
            ("BACKUP_FULL_EVERY_DAYS", "0"),
            ("STORAGE_KMS_KEY_ARN", "arn:aws:kms:us-east-1:123456789012:key/x"),
            ("STORAGE_CLASS", "GLACIER"),
            ("STORAGE_BUCKET", "Bad_Bucket"),
            ("WIX_PACE_SHARE", "0"),
            ("WIX_PACE_SHARE", "1.5"),
            ("WIX_PACE_SHARE", "half"),
            ("HTTP_DEADLINE_SECONDS", "0"),
            ("HTTP_DEADLINE_SECONDS", "soon"),
            ("WIX_MAX_CONCURRENCY", "abc"),
            ("WIX_MAX_CONCURRENCY", "0"),
            ("WIX_REQUESTS_PER_MINUTE", "-1"),
            ("WIX_MAX_RETRIES", "1.5"),
            ("WIX_TIMEOUT_SECONDS", "0"),
            ("MAX_FILES_PER_REQUEST", "lots"),
            ("SECRET_CACHE_TTL_SECONDS", "x"),
            ("SIGNATURE_TOLERANCE_SECONDS", "0"),
            ("PRIVATE_LINK_EXPIRATION_MINUTES", "525601"),
            ("WIX_API_BASE_URL", "not a url"),
            ("WIX_API_BASE_URL", "ftp://example.com"),
            ("EMAIL_FROM", "nobody"),
            ("BACKUP_EMAIL_TO", "a@example.com,nope"),
            ("BACKUP_MEDIA_TYPES", "IMAGE,PHOTO"),
        ];
        for (var, value) in cases {
            let mut vars = LOCAL.to_vec();
            vars.push((var, value));
            let err = load(&vars).unwrap_err();
            assert_eq!(err.variable, var, "{var}={value}");
        }
        assert_eq!(
            load(&[("WIX_SITE_ID", "s"), ("CALLER_KEYS", "c")])
                .unwrap_err()
                .variable,
            "WIX_API_KEY"
        );
        assert_eq!(
            load(&[("WIX_API_KEY", "k"), ("WIX_SITE_ID", "s"), ("CALLER_KEYS", " , ")])
                .unwrap_err()
                .variable,
            "CALLER_KEYS"
        );
        let mut bad_bool = LOCAL.to_vec();
        bad_bool.push(("BACKUP_INCLUDE_PRIVATE", "maybe"));
        assert_eq!(load(&bad_bool).unwrap_err().variable, "BACKUP_INCLUDE_PRIVATE");
    }

    #[test]
    fn secret_locations() {
        let at = |v: &str| load(&[("WIX_CREDENTIALS_SECRET", v)]).map(|c| c.credentials);
        assert_eq!(
            at("wix/prod").unwrap(),
            SecretLocation::SecretsManager("wix/prod".into())
        );
        assert_eq!(at("ssm:/wix/creds").unwrap(), SecretLocation::Ssm("/wix/creds".into()));
        let sm = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wix-AbCdEf";
        assert_eq!(at(sm).unwrap(), SecretLocation::SecretsManager(sm.into()));
        let ssm = "arn:aws:ssm:us-east-1:123456789012:parameter/wix/creds";
        assert_eq!(at(ssm).unwrap(), SecretLocation::Ssm(ssm.into()));
        assert_eq!(
            at("arn:aws:s3:::bucket").unwrap_err().variable,
            "WIX_CREDENTIALS_SECRET"
        );
        assert_eq!(at("ssm:").unwrap_err().variable, "WIX_CREDENTIALS_SECRET");
    }

    #[test]
    fn empty_values_count_as_unset_and_lists_parse() {
        let mut vars = LOCAL.to_vec();
        vars.extend([
            ("EMAIL_FROM", ""),
            ("BACKUP_EMAIL_TO", " a@example.com , b@example.com "),
            ("BACKUP_MEDIA_TYPES", "image, Video,IMAGE"),
            ("BACKUP_INCLUDE_PRIVATE", "FALSE"),
            ("WIX_API_BASE_URL", "http://127.0.0.1:9999"),
        ]);
        let c = load(&vars).unwrap();
        assert!(c.email_from.is_none());
        assert_eq!(c.backup_email_to, vec!["a@example.com", "b@example.com"]);
        assert_eq!(c.backup_media_types, vec!["IMAGE", "VIDEO"]);
        assert!(!c.backup_include_private);
    }

    #[test]
    fn storage_settings_with_defaults_and_checks() {
        let mut vars = LOCAL.to_vec();
        vars.push(("STORAGE_BUCKET", "my-backups.example"));
        let s = load(&vars).unwrap().storage.unwrap();
        assert_eq!(
            (
                s.bucket.as_str(),
                s.prefix.as_str(),
                s.storage_class.as_str(),
                s.kms_key_arn
            ),
            ("my-backups.example", "wix-media-archiver/", "STANDARD", None)
        );
        vars.extend([
            ("STORAGE_PREFIX", "backups/wix"),
            ("STORAGE_CLASS", "glacier_ir"),
            ("STORAGE_KMS_KEY_ARN", "arn:aws:kms:us-east-1:123456789012:key/1234abcd"),
        ]);
        let s = load(&vars).unwrap().storage.unwrap();
        assert_eq!(
            (s.prefix.as_str(), s.storage_class.as_str()),
            ("backups/wix/", "GLACIER_IR")
        );
        let mut bad_prefix = vars.clone();
        bad_prefix.push(("STORAGE_PREFIX", "/abs"));
        assert_eq!(load(&bad_prefix).unwrap_err().variable, "STORAGE_PREFIX");
    }

    #[test]
    fn a_share_of_the_site_budget() {
        let mut vars = LOCAL.to_vec();
        vars.extend([("WIX_REQUESTS_PER_MINUTE", "180"), ("WIX_PACE_SHARE", "0.25")]);
        assert_eq!(load(&vars).unwrap().wix_pace(), 45);
        let mut tiny = LOCAL.to_vec();
        tiny.extend([("WIX_REQUESTS_PER_MINUTE", "3"), ("WIX_PACE_SHARE", "0.05")]);
        assert_eq!(load(&tiny).unwrap().wix_pace(), 1, "never zero");
    }
}
