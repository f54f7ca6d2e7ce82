//! X-Ray subsegments from `tracing` spans: with active tracing Lambda runs an X-Ray daemon
//! at `AWS_XRAY_DAEMON_ADDRESS` and passes each invocation's trace header in
//! `_X_AMZN_TRACE_ID`; each closed span of this crate becomes a subsegment of the
//! invocation's segment (one UDP datagram), nested as the spans are. Only the annotations
//! named in [`ANNOTATIONS`] leave the process — IDs, names and counts, never a link, key,
//! token or signature.

use std::net::{SocketAddr, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The span fields sent as annotations.
pub const ANNOTATIONS: &[&str] = &[
    "request_id",
    "job_id",
    "step",
    "kind",
    "endpoint",
    "batch",
    "status",
    "files",
];

/// Fields looked for in the enclosing spans when a span has none of its own.
const INHERITED: &[&str] = &["request_id", "job_id"];

/// The layer, when `AWS_XRAY_DAEMON_ADDRESS` names a daemon.
pub fn layer_from_env() -> Option<XrayLayer> {
    let address = std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?;
    let daemon = daemon_address(&address)?;
    let socket = UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    socket.set_nonblocking(true).ok()?;
    Some(XrayLayer { socket, daemon })
}

/// `host:port`, or the UDP one of `tcp:host:port udp:host:port`.
fn daemon_address(text: &str) -> Option<SocketAddr> {
    text.split_whitespace()
        .filter(|part| !part.starts_with("tcp:"))
        .filter_map(|part| part.strip_prefix("udp:").unwrap_or(part).parse().ok())
        .next()
}

/// Sends each closed span to the daemon.
pub struct XrayLayer {
    socket: UdpSocket,
    daemon: SocketAddr,
}

/// What a span keeps until it closes.
struct Open {
    id: String,
    start: f64,
    annotations: Map<String, Value>,
}

struct Annotate<'a>(&'a mut Map<String, Value>);

impl Annotate<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        if ANNOTATIONS.contains(&field.name()) {
            self.0.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Annotate<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, json!(value.chars().take(250).collect::<String>()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, json!(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, json!(format!("{value:?}").chars().take(250).collect::<String>()));
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn new_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// `Root` and `Parent` of a sampled trace header.
fn trace_header() -> Option<(String, String)> {
    let header = std::env::var("_X_AMZN_TRACE_ID").ok()?;
    let mut root = None;
    let mut parent = None;
    let mut sampled = false;
    for part in header.split(';') {
        match part.split_once('=') {
            Some(("Root", v)) => root = Some(v.to_owned()),
            Some(("Parent", v)) => parent = Some(v.to_owned()),
            Some(("Sampled", v)) => sampled = v == "1",
            _ => {}
        }
    }
    sampled.then_some(())?;
    Some((root?, parent?))
}

impl<S> Layer<S> for XrayLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut annotations = Map::new();
        attrs.record(&mut Annotate(&mut annotations));
        span.extensions_mut().insert(Open {
            id: new_id(),
            start: now(),
            annotations,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(open) = ext.get_mut::<Open>() {
            values.record(&mut Annotate(&mut open.annotations));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some((root, invocation)) = trace_header() else {
            return;
        };
        let Some(span) = ctx.span(&id) else { return };
        let Some(open) = span.extensions_mut().remove::<Open>() else {
            return;
        };
        let mut annotations = open.annotations;
        let mut parent_id = None;
        for ancestor in span.scope().skip(1) {
            let ext = ancestor.extensions();
            let Some(up) = ext.get::<Open>() else { continue };
            parent_id.get_or_insert_with(|| up.id.clone());
            for name in INHERITED {
                if let (false, Some(v)) = (annotations.contains_key(*name), up.annotations.get(*name)) {
                    annotations.insert((*name).to_owned(), v.clone());
                }
            }
        }
        let document = json!({
            "type": "subsegment",
            "name": span.name(),
            "id": open.id,
            "trace_id": root,
            "parent_id": parent_id.unwrap_or(invocation),
            "start_time": open.start,
            "end_time": now(),
            "annotations": annotations,
        });
        let datagram = format!("{{\"format\": \"json\", \"version\": 1}}\n{document}");
        let _ = self.socket.send_to(datagram.as_bytes(), self.daemon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_address_in_either_form() {
        assert_eq!(
            daemon_address("169.254.79.129:2000"),
            "169.254.79.129:2000".parse().ok()
        );
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001"),
            "127.0.0.2:2001".parse().ok()
        );
        assert_eq!(daemon_address("nowhere"), None);
    }
}
