//! A minimal Lambda Runtime API (the part a function's runtime client talks to), enough to
//! drive the real Lambda binary through invocations — one to time it, or many, the way a
//! Lambda container serves an event source:
//!
//! - `GET  /2018-06-01/runtime/invocation/next` — long poll; answered when the driver hands
//!   out an event, with `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms` (a real
//!   future deadline) and `Lambda-Runtime-Invoked-Function-Arn`;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `…/{id}/error`;
//! - `POST /2018-06-01/runtime/init/error`.
//!
//! Every request is handed to the driver with the instant it arrived.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

/// What the function sent back for an invocation.
#[derive(Debug)]
pub enum Outcome {
    /// `POST …/invocation/{id}/response`.
    Response { request_id: String, body: Bytes },
    /// `POST …/invocation/{id}/error`.
    Error { request_id: String, body: Bytes },
    /// `POST /runtime/init/error`.
    InitError { body: Bytes },
}

/// The request ID a benchmark's one invocation gets.
pub const REQUEST_ID: &str = "bench-invocation-1";

impl Outcome {
    /// The response body of the benchmark's invocation, or what went wrong instead.
    pub fn response(&self) -> Result<&Bytes, String> {
        self.response_to(REQUEST_ID)
    }

    /// The response body of invocation `id`, or what went wrong instead.
    pub fn response_to(&self, id: &str) -> Result<&Bytes, String> {
        match self {
            Outcome::Response { request_id, body } if request_id == id => Ok(body),
            Outcome::Response { request_id, .. } => Err(format!("a response for another request: {request_id}")),
            Outcome::Error { request_id, body } => Err(format!(
                "invocation {request_id} failed: {}",
                String::from_utf8_lossy(body)
            )),
            Outcome::InitError { body } => Err(format!(
                "the function failed to start: {}",
                String::from_utf8_lossy(body)
            )),
        }
    }
}

/// A `GET …/next` waiting for an event.
pub struct NextPoll {
    /// When the request reached the server.
    pub arrived: Instant,
    reply: oneshot::Sender<Invocation>,
}

impl NextPoll {
    /// Answers the poll with `event`. Returns the instant just before the answer was handed
    /// to the connection.
    pub fn deliver(self, request_id: &str, event: Bytes, deadline_in: Duration) -> Instant {
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(deadline_in)
            .as_millis() as u64;
        let sent = Instant::now();
        let _ = self.reply.send(Invocation {
            request_id: request_id.to_owned(),
            deadline_ms,
            event,
        });
        sent
    }
}

struct Invocation {
    request_id: String,
    deadline_ms: u64,
    event: Bytes,
}

/// The running server; it stops when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    polls: mpsc::UnboundedReceiver<NextPoll>,
    outcomes: mpsc::UnboundedReceiver<(Outcome, Instant)>,
    _stop: watch::Sender<bool>,
}

struct Shared {
    polls: mpsc::UnboundedSender<NextPoll>,
    outcomes: mpsc::UnboundedSender<(Outcome, Instant)>,
}

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:wix-media-archiver-local";

impl RuntimeApi {
    /// Listens on 127.0.0.1 (any free port) in the current tokio runtime.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (poll_tx, polls) = mpsc::unbounded_channel();
        let (outcome_tx, outcomes) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            polls: poll_tx,
            outcomes: outcome_tx,
        });
        tokio::spawn(serve(listener, shared, stopped));
        Ok(RuntimeApi {
            addr,
            polls,
            outcomes,
            _stop: stop,
        })
    }

    /// `127.0.0.1:<port>`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The next `GET …/next`, or `None` after `timeout`.
    pub async fn next_poll(&mut self, timeout: Duration) -> Option<NextPoll> {
        tokio::time::timeout(timeout, self.polls.recv()).await.ok().flatten()
    }

    /// The next response or error the function posts, with the instant its body was read
    /// in full; `None` after `timeout`.
    pub async fn outcome(&mut self, timeout: Duration) -> Option<(Outcome, Instant)> {
        tokio::time::timeout(timeout, self.outcomes.recv()).await.ok().flatten()
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        }
    }
}

type Resp = Response<Full<Bytes>>;

fn status(code: StatusCode, body: &'static str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = code;
    resp
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let arrived = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let rest = path.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
    if method == Method::GET && rest == "invocation/next" {
        let (reply, answer) = oneshot::channel();
        if shared.polls.send(NextPoll { arrived, reply }).is_err() {
            return Ok(status(StatusCode::GONE, "{}"));
        }
        // Held until the driver hands out an event (or forever: the child is killed).
        let Ok(invocation) = answer.await else {
            return Ok(status(StatusCode::GONE, "{}"));
        };
        let resp = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", invocation.request_id)
            .header("lambda-runtime-deadline-ms", invocation.deadline_ms.to_string())
            .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0",
            )
            .body(Full::new(invocation.event))
            .expect("a valid response");
        return Ok(resp);
    }
    if method != Method::POST {
        return Ok(status(StatusCode::NOT_FOUND, "{}"));
    }
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST, "{}")),
    };
    let read = Instant::now();
    let outcome = if rest == "init/error" {
        Outcome::InitError { body }
    } else if let Some(tail) = rest.strip_prefix("invocation/") {
        match tail.rsplit_once('/') {
            Some((id, "response")) => Outcome::Response {
                request_id: id.to_owned(),
                body,
            },
            Some((id, "error")) => Outcome::Error {
                request_id: id.to_owned(),
                body,
            },
            _ => return Ok(status(StatusCode::NOT_FOUND, "{}")),
        }
    } else {
        return Ok(status(StatusCode::NOT_FOUND, "{}"));
    };
    let _ = shared.outcomes.send((outcome, read));
    Ok(status(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
}
