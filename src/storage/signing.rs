//! How uploads are signed. The SDK signs a body held in memory by hashing it (SHA-256), a
//! second pass over every byte beside the CRC-32 each part already carries. Over TLS that
//! hash protects nothing the TLS record MACs and the checksum S3 verifies do not, so a
//! `PutObject` or `UploadPart` that carries its body's checksum goes `UNSIGNED-PAYLOAD`
//! there, as the AWS CLI does for uploads. Every other request (`CompleteMultipartUpload`'s
//! list of parts among them, whose checksum header is the object's, not its body's) is signed
//! as the SDK signs it. Over plain HTTP (a local endpoint) every body stays signed: there the
//! signature is what stops a body changed on the way with a matching CRC-32.

use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// The operations whose body is the object's bytes.
const UPLOADS: [&str; 2] = ["PutObject", "UploadPart"];

/// The headers that carry a checksum of the body, which S3 verifies (not
/// `x-amz-checksum-algorithm` or `-type`, which only name one).
const CHECKSUM_HEADERS: [&str; 5] = [
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
];

/// Leaves an upload's body unsigned when it goes over HTTPS and carries its checksum (set by
/// the caller, as this crate's uploads do); registered on every S3 client
/// ([`super::s3_client`]).
#[derive(Debug)]
pub struct UnsignedOverTls;

impl Intercept for UnsignedOverTls {
    fn name(&self) -> &'static str {
        "UnsignedOverTls"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let upload = cfg.load::<Metadata>().is_some_and(|m| UPLOADS.contains(&m.name()));
        let request = context.request();
        let over_tls = request.uri().starts_with("https://");
        let checksummed = request
            .headers()
            .iter()
            .any(|(name, _)| CHECKSUM_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)));
        if upload && over_tls && checksummed {
            cfg.interceptor_state()
                .store_put(PayloadSigningOverride::unsigned_payload());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_s3::config::{Credentials, Region};
    use aws_sdk_s3::primitives::SdkBody;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use bytes::Bytes;

    use crate::storage::{StorageSettings, Store};

    /// Answers every request 200 and keeps the `x-amz-content-sha256` each one was sent with.
    #[derive(Debug, Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl HttpConnector for Recorder {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let sent = request
                .headers()
                .get("x-amz-content-sha256")
                .unwrap_or("(none)")
                .to_owned();
            self.0.lock().unwrap().push(sent);
            let body = if request.uri().ends_with("?uploads") || request.uri().contains("?uploads&") {
                "<InitiateMultipartUploadResult><Bucket>owner-bucket</Bucket><Key>k</Key>\
                 <UploadId>u1</UploadId></InitiateMultipartUploadResult>"
            } else {
                ""
            };
            let mut response = HttpResponse::new(200.try_into().unwrap(), SdkBody::from(body));
            response.headers_mut().insert("etag", "\"0\"");
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    impl HttpClient for Recorder {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &aws_sdk_s3::config::RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    /// What `x-amz-content-sha256` a `PutObject` and an `UploadPart` are sent with against
    /// `endpoint`, through the crate's own S3 client.
    async fn payload_hashes(endpoint: &str) -> Vec<String> {
        let recorder = Recorder::default();
        let sdk = aws_config::SdkConfig::builder()
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            )))
            .endpoint_url(endpoint)
            .http_client(recorder.clone())
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let settings = StorageSettings {
            bucket: "owner-bucket".to_owned(),
            prefix: "wix-media-archiver/".to_owned(),
            storage_class: "STANDARD".to_owned(),
            kms_key_arn: None,
            part_size: 5 * 1024 * 1024,
        };
        let store = Store::new(crate::storage::s3_client(&sdk), settings, "site");
        store
            .put("k", Bytes::from_static(b"the bytes"), "application/zip")
            .await
            .expect("put");
        let body = Bytes::from(vec![7u8; 6 * 1024 * 1024]);
        let chunks = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(body)]);
        // Two parts: the upload is created, then parts are sent (the complete call fails on
        // the empty answer, which is not what is looked at here).
        let _ = store
            .upload_stream("big", "application/zip", None, 5 * 1024 * 1024, chunks)
            .await;
        let sent = recorder.0.lock().unwrap().clone();
        sent
    }

    #[tokio::test]
    async fn over_https_a_checksummed_body_is_not_hashed_again() {
        let sent = payload_hashes("https://s3.example.com").await;
        // PutObject, CreateMultipartUpload, two UploadParts, CompleteMultipartUpload.
        assert_eq!(sent.len(), 5, "{sent:?}");
        assert_eq!(sent[0], "UNSIGNED-PAYLOAD", "PutObject: {sent:?}");
        assert!(
            sent[2..4].iter().all(|h| h == "UNSIGNED-PAYLOAD"),
            "UploadPart: {sent:?}"
        );
        // CreateMultipartUpload (no body) and CompleteMultipartUpload (the list of parts, with
        // the object's checksum, not its own): signed as the SDK signs them.
        assert_ne!(sent[1], "UNSIGNED-PAYLOAD", "{sent:?}");
        assert_ne!(sent[4], "UNSIGNED-PAYLOAD", "{sent:?}");
    }

    #[tokio::test]
    async fn over_plain_http_the_body_stays_signed() {
        let sent = payload_hashes("http://127.0.0.1:9").await;
        assert!(sent.len() >= 4, "{sent:?}");
        let hash = |b: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
        assert_eq!(sent[0], hash(b"the bytes"));
        // The two parts go at once, in either order.
        let mut parts = sent[2..4].to_vec();
        parts.sort();
        let mut wanted = vec![hash(&[7u8; 5 * 1024 * 1024]), hash(&[7u8; 1024 * 1024])];
        wanted.sort();
        assert_eq!(parts, wanted);
    }
}
