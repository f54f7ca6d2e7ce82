//! The function as a Function URL on a laptop, for `archiver-local console`: plain HTTP/1.1
//! on a loopback port, each request turned into the Function URL event AWS would send and
//! run through the very same handler in-process. One request per connection; no TLS (a
//! browser counts loopback as a secure context, so the console's WebCrypto works).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::app::App;

/// The largest request head read.
const MAX_HEAD: usize = 64 * 1024;
/// The largest body read: Lambda's own request limit.
const MAX_BODY: usize = 6 * 1024 * 1024;
/// How long one request may take, as the template gives the HTTP function.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until the future is dropped. Requests run concurrently on
/// this thread (the handler's future is not provably `Send`, so not on the pool).
pub async fn serve(app: Arc<App>, listener: TcpListener) -> std::io::Result<()> {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            loop {
                let (stream, _) = listener.accept().await?;
                let app = app.clone();
                tokio::task::spawn_local(async move {
                    let _ = one(&app, stream).await;
                });
            }
        })
        .await
}

async fn one(app: &App, mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return respond(&mut stream, 431, &[], b"").await;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target) = match (request_line.next(), request_line.next()) {
        (Some(m), Some(t)) if !m.is_empty() && t.starts_with('/') => (m.to_owned(), t.to_owned()),
        _ => return respond(&mut stream, 400, &[], b"").await,
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return respond(&mut stream, 413, &[], b"").await;
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 * 1024)];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let event = function_url_event(&method, &target, &headers, &body);
    let response = match crate::local::invoke(app, &event, Some(TIMEOUT)).await {
        Ok(r) => r,
        Err(_) => return respond(&mut stream, 502, &[], b"").await,
    };
    let status = response["statusCode"].as_u64().unwrap_or(502) as u16;
    let mut out_headers: Vec<(String, String)> = response["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let text = response["body"].as_str().unwrap_or_default();
    let bytes = if response["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    out_headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
    respond(&mut stream, status, &out_headers, &bytes).await
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = lambda_http::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// The Function URL event (payload format 2.0) of one request.
pub fn function_url_event(method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> Value {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut map = serde_json::Map::new();
    for (k, v) in headers {
        // Repeated headers are joined with commas, as Function URLs do.
        let joined = match map.get(k).and_then(Value::as_str) {
            Some(before) => format!("{before},{v}"),
            None => v.clone(),
        };
        map.insert(k.clone(), Value::String(joined));
    }
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": map,
        "requestContext": {
            "accountId": "anonymous", "apiId": "local", "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": ""},
            "requestId": "local", "routeKey": "$default", "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "body": body, "isBase64Encoded": base64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_becomes_a_function_url_event() {
        let headers = vec![
            ("x-archive-signature".to_owned(), "t=1,v1=ab".to_owned()),
            ("accept".to_owned(), "a".to_owned()),
            ("accept".to_owned(), "b".to_owned()),
        ];
        let e = function_url_event("GET", "/backups/latest/files?folder=%2FShop&q=x", &headers, b"");
        assert_eq!(e["rawPath"], "/backups/latest/files");
        assert_eq!(e["rawQueryString"], "folder=%2FShop&q=x");
        assert_eq!(e["requestContext"]["http"]["method"], "GET");
        assert_eq!(e["headers"]["accept"], "a,b");
        assert_eq!(e["isBase64Encoded"], false);
        let binary = function_url_event("POST", "/archives", &[], &[0xff, 0x00]);
        assert_eq!(binary["isBase64Encoded"], true);
        assert_eq!(binary["body"], "/wA=");
    }
}
