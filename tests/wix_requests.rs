//! The exact requests the Wix client sends (path, headers, body), checked with wiremock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{body_json, header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};
use wix_media_archiver::credentials::{Credentials, SecretString, StaticCredentials, WixAuth};
use wix_media_archiver::wix::{CallContext, ClientSettings, WixClient, WixErrorKind};

fn client(base: &str, wix: WixAuth) -> WixClient {
    let settings = ClientSettings {
        base_url: base.parse().unwrap(),
        timeout: Duration::from_secs(2),
        max_retries: 2,
        concurrency: 2,
        requests_per_minute: 60_000,
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
    };
    let creds = Credentials {
        wix,
        caller_keys: vec![SecretString::new("ck".into())],
    };
    WixClient::new(settings, Arc::new(StaticCredentials(Arc::new(creds)))).unwrap()
}

fn api_key() -> WixAuth {
    WixAuth::ApiKey {
        api_key: SecretString::new("IST.secret-key".into()),
        site_id: "site-123".into(),
    }
}

#[tokio::test]
async fn generate_download_url_request_shape() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/site-media/v1/files/generate-download-url"))
        .and(header("authorization", "IST.secret-key"))
        .and(header("wix-site-id", "site-123"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"fileIds": ["a1~mv2.jpg", "b2.pdf"]})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"downloadUrl": "https://archive.wixmp.com/a.zip"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server.uri(), api_key());
    let ctx = CallContext::new(None);
    let url = c
        .generate_files_download_url(&ctx, &["a1~mv2.jpg", "b2.pdf"])
        .await
        .unwrap();
    assert_eq!(url.expose(), "https://archive.wixmp.com/a.zip");
    assert_eq!((ctx.calls(), ctx.retries()), (1, 0));
}

#[tokio::test]
async fn a_base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/proxy/site-media/v1/files/generate-download-url"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"downloadUrl": "https://x.example/a.zip"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&format!("{}/proxy/", server.uri()), api_key());
    c.generate_files_download_url(&CallContext::new(None), &["a"])
        .await
        .unwrap();
}

#[tokio::test]
async fn private_link_and_lookup_request_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/site-media/v1/files/generate-file-download-url"))
        .and(header("authorization", "IST.secret-key"))
        .and(body_json(
            json!({"fileId": "p1.jpg", "downloadFileName": "Holiday.jpg", "expirationInMinutes": 90}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"downloadUrls": [{"url": "https://x.example/p1?token=t", "assetKey": "src"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/site-media/v1/files/get-files"))
        .and(body_json(json!({"fileIds": ["p1.jpg"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"files": [
            {"id": "p1.jpg", "displayName": "Holiday.jpg", "private": true, "sizeInBytes": "5918720", "mediaType": "IMAGE",
             "operationStatus": "READY", "state": "OK", "parentFolderId": "media-root"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server.uri(), api_key());
    let ctx = CallContext::new(None);
    let files = c.get_files(&ctx, &["p1.jpg".into()]).await.unwrap();
    assert_eq!(files[0].size_in_bytes, Some(5_918_720));
    assert!(files[0].private);
    let before = std::time::SystemTime::now();
    let (link, asked_at) = c
        .generate_file_download_url(&ctx, "p1.jpg", Some("Holiday.jpg"), 90)
        .await
        .unwrap();
    assert_eq!(link.expose(), "https://x.example/p1?token=t");
    assert!(asked_at >= before - std::time::Duration::from_millis(5) && asked_at <= std::time::SystemTime::now());
}

#[tokio::test]
async fn app_credentials_fetch_a_token_once_and_send_it_raw() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_json(json!({"grant_type": "client_credentials", "client_id": "app-1", "client_secret": "s3cret", "instance_id": "inst-1"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "OAUTH-TOKEN", "token_type": "Bearer", "expires_in": 14400})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/site-media/v1/files/generate-download-url"))
        .and(header("authorization", "OAUTH-TOKEN"))
        .respond_with(|req: &Request| {
            assert!(!req.headers.contains_key("wix-site-id"), "apps send no site id");
            ResponseTemplate::new(200).set_body_json(json!({"downloadUrl": "https://x.example/a.zip"}))
        })
        .expect(3)
        .mount(&server)
        .await;
    let c = client(
        &server.uri(),
        WixAuth::App {
            app_id: "app-1".into(),
            app_secret: SecretString::new("s3cret".into()),
            instance_id: "inst-1".into(),
        },
    );
    let ctx = CallContext::new(None);
    for _ in 0..3 {
        c.generate_files_download_url(&ctx, &["a"]).await.unwrap();
    }
}

#[tokio::test]
async fn errors_keep_the_wix_request_id_and_4xx_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header_exists("authorization"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-wix-request-id", "1700000000.123abc")
                .set_body_json(json!({"message": "bad", "details": {"applicationError": {"code": "RESOURCE_NOT_FOUND", "description": "no such file"}}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server.uri(), api_key());
    let err = c
        .generate_files_download_url(&CallContext::new(None), &["a"])
        .await
        .unwrap_err();
    assert_eq!(err.kind, WixErrorKind::Rejected);
    assert_eq!(err.status, Some(400));
    assert_eq!(err.wix_request_id.as_deref(), Some("1700000000.123abc"));
    assert_eq!(err.app_code.as_deref(), Some("RESOURCE_NOT_FOUND"));
}

#[tokio::test]
async fn retries_stop_after_the_configured_number() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&server)
        .await;
    let c = client(&server.uri(), api_key());
    let ctx = CallContext::new(None);
    let err = c.generate_files_download_url(&ctx, &["a"]).await.unwrap_err();
    assert_eq!((err.kind, err.status), (WixErrorKind::Unavailable, Some(500)));
    assert_eq!((ctx.calls(), ctx.retries()), (3, 2));
}

#[tokio::test]
async fn an_oversized_answer_is_an_invalid_response() {
    let server = MockServer::start().await;
    let huge = format!(
        r#"{{"downloadUrl": "https://x.example/{}"}}"#,
        "a".repeat(10 * 1024 * 1024)
    );
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(huge, "application/json"))
        .mount(&server)
        .await;
    let c = client(&server.uri(), api_key());
    let err = c
        .generate_files_download_url(&CallContext::new(None), &["a"])
        .await
        .unwrap_err();
    assert_eq!(err.kind, WixErrorKind::InvalidResponse);
}
