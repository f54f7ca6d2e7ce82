//! A proxy in front of moto's S3 that fails the requests it is told to: an error status, or
//! a connection closed without an answer, for the next uploads of parts, completions or
//! single-request puts. Everything else goes through unchanged (moto checks no signature).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Which S3 requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `PUT …?partNumber=…&uploadId=…`
    UploadPart,
    /// `POST …?uploadId=…`
    Complete,
    /// `PUT` without a part number (PutObject).
    PutObject,
    /// `POST …?delete` (DeleteObjects).
    DeleteObjects,
}

/// What the proxy does instead of forwarding.
#[derive(Clone, Copy, Debug)]
pub enum S3Fault {
    /// Answer this status with an S3 error body (500 InternalError, 503 SlowDown).
    Status(u16),
    /// Close the connection without an answer.
    Drop,
    /// Forward this one as it is (to fail only the requests after it).
    Pass,
}

/// A running proxy.
pub struct S3Proxy {
    pub url: String,
    faults: Arc<Mutex<VecDeque<(Op, S3Fault)>>>,
    /// Requests answered by a fault.
    pub injected: Arc<Mutex<Vec<(Op, String)>>>,
}

impl S3Proxy {
    /// Starts a proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: String) -> S3Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let faults: Arc<Mutex<VecDeque<(Op, S3Fault)>>> = Arc::default();
        let injected: Arc<Mutex<Vec<(Op, String)>>> = Arc::default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let (f, i) = (faults.clone(), injected.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (f, i, http, upstream) = (f.clone(), i.clone(), http.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        forward(req, f.clone(), i.clone(), http.clone(), upstream.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        S3Proxy { url, faults, injected }
    }

    /// Queues `count` faults for requests of `op`, used in order.
    pub fn fail(&self, op: Op, fault: S3Fault, count: usize) {
        let mut faults = self.faults.lock().unwrap();
        for _ in 0..count {
            faults.push_back((op, fault));
        }
    }

    /// Drops every queued fault.
    pub fn clear(&self) {
        self.faults.lock().unwrap().clear();
    }

    /// How many requests of `op` were answered by a fault.
    pub fn injected(&self, op: Op) -> usize {
        self.injected.lock().unwrap().iter().filter(|(o, _)| *o == op).count()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn forward(
    req: Request<Incoming>,
    faults: Arc<Mutex<VecDeque<(Op, S3Fault)>>>,
    injected: Arc<Mutex<Vec<(Op, String)>>>,
    http: reqwest::Client,
    upstream: String,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let method = req.method().clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let query = req.uri().query().unwrap_or("").to_owned();
    let op = match method.as_str() {
        "PUT" if query.contains("partNumber=") => Some(Op::UploadPart),
        "PUT" if !query.contains("uploadId=") => Some(Op::PutObject),
        "POST" if query.contains("uploadId=") => Some(Op::Complete),
        "POST" if query.split('&').any(|p| p == "delete" || p.starts_with("delete=")) => Some(Op::DeleteObjects),
        _ => None,
    };
    let headers = req.headers().clone();
    let body = req.into_body().collect().await?.to_bytes();
    let fault = op.and_then(|op| {
        let mut queue = faults.lock().unwrap();
        let at = queue.iter().position(|(o, _)| *o == op)?;
        queue.remove(at).map(|(_, f)| f)
    });
    if let (Some(op), Some(fault)) = (op, fault.filter(|f| !matches!(f, S3Fault::Pass))) {
        injected.lock().unwrap().push((op, path_and_query.clone()));
        return match fault {
            S3Fault::Drop | S3Fault::Pass => Err("connection dropped by the proxy".into()),
            S3Fault::Status(status) => Ok(Response::builder()
                .status(status)
                .header("content-type", "application/xml")
                .body(Full::new(Bytes::from(format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>injected by the test proxy</Message></Error>",
                    if status == 503 { "SlowDown" } else { "InternalError" }
                ))))?),
        };
    }
    let mut out = http.request(method, format!("{upstream}{path_and_query}"));
    for (name, value) in headers.iter() {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    let answer = out.body(body).send().await?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "content-length" {
            response = response.header(name, value);
        }
    }
    Ok(response.body(Full::new(answer.bytes().await?))?)
}
