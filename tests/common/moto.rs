//! A moto server for the AWS parts (started by `scripts/test`, its address in `MOTO_URL`):
//! the SDK pointed at it, tests of one binary serialized, moto reset between them.

use std::sync::OnceLock;

use tokio::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::const_new(());

/// The moto server's URL.
pub fn moto_url() -> String {
    std::env::var("MOTO_URL").expect("MOTO_URL is unset: run scripts/test, which starts a moto server for these tests")
}

/// Serializes the tests of this binary, points the AWS SDK at moto and resets it.
pub async fn setup() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().await;
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let url = moto_url();
        // The tests of a binary that uses this run one at a time, so this is safe.
        for (k, v) in [
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ] {
            std::env::set_var(k, v);
        }
        std::env::remove_var("AWS_PROFILE");
    });
    reqwest::Client::new()
        .post(format!("{}/moto-api/reset", moto_url()))
        .send()
        .await
        .expect("moto reset");
    guard
}

/// An S3 client on moto.
pub async fn s3() -> aws_sdk_s3::Client {
    let sdk = wix_media_archiver::aws::sdk_config().await;
    wix_media_archiver::storage::s3_client(&sdk)
}

/// Creates a bucket on moto.
pub async fn create_bucket(name: &str) {
    s3().await
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("create bucket");
}

/// Every key of a bucket under `prefix`.
pub async fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3()
        .await
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// An object's bytes.
pub async fn get(bucket: &str, key: &str) -> Vec<u8> {
    s3().await
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"))
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

/// Multipart uploads still open in a bucket.
pub async fn open_uploads(bucket: &str) -> usize {
    s3().await
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .expect("list uploads")
        .uploads()
        .len()
}

/// Resets moto (for a test that holds the [`setup`] guard already).
pub async fn reset() {
    reqwest::Client::new()
        .post(format!("{}/moto-api/reset", moto_url()))
        .send()
        .await
        .expect("moto reset");
}

/// An app writing stored backups into `bucket` on moto (created here), with parts of
/// `part_size` bytes, over a fresh emulator with `config`; `env` on top of the base.
#[allow(dead_code)]
pub async fn stored_harness(
    config: wix_emulator::EmulatorConfig,
    bucket: &str,
    env: &[(&str, &str)],
    part_size: usize,
) -> super::Harness {
    create_bucket(bucket).await;
    let emulator = wix_emulator::Emulator::start(config.clone())
        .await
        .expect("emulator starts");
    let mut vars = super::base_env(&emulator, &config);
    vars.insert("STORAGE_BUCKET".into(), bucket.into());
    for (k, v) in env {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut config =
        wix_media_archiver::config::Config::from_lookup(|k| vars.get(k).cloned()).expect("valid configuration");
    config.storage.as_mut().expect("storage configured").part_size = part_size;
    let app = wix_media_archiver::app::App::from_config(config)
        .await
        .expect("app builds");
    super::Harness { emulator, app }
}
