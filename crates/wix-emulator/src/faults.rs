//! Scripted misbehaviour: of API calls (queued or random) and of downloads (queued).

use std::time::Duration;

/// One scripted misbehaviour of an API call.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status with a Wix-style error body (applicationError).
    Status(u16),
    /// Answer this status with an empty body, as Wix's system errors do.
    StatusEmptyBody(u16),
    /// 429, with `Retry-After: N` seconds when `Some`.
    TooManyRequests {
        /// Seconds for the `Retry-After` header.
        retry_after: Option<u64>,
    },
    /// Wait this long, then answer normally (makes a client time out).
    Hang(Duration),
    /// Extra latency, then a normal answer.
    Delay(Duration),
    /// Close the connection without any answer.
    Drop,
    /// Answer exactly this.
    Body {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header.
        content_type: String,
        /// Raw body.
        body: String,
    },
}

/// Faults rolled at random on every API call, reproducibly from `seed`.
#[derive(Clone, Debug)]
pub struct RandomFaults {
    /// Seed of the roll sequence.
    pub seed: u64,
    /// Probability of a 429 (half of them with `Retry-After: 1`).
    pub p_429: f64,
    /// Probability of a 500, 503 or 504 (some with an empty body).
    pub p_5xx: f64,
    /// Probability of a dropped connection.
    pub p_drop: f64,
    /// Probability of a hang of `hang`.
    pub p_hang: f64,
    /// How long a hang lasts before the normal answer.
    pub hang: Duration,
    /// Probability of a 200 with a truncated JSON body.
    pub p_malformed: f64,
}

/// One scripted misbehaviour of a download (`/_emulator/archives/…` or `/_emulator/files/…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownloadFault {
    /// Send the headers (with `Content-Length` when the mode has one) and the first N body bytes, then close the connection.
    CutAfter(u64),
    /// Answer this status (e.g. 500, 503) with a JSON error body instead of the content.
    Status(u16),
    /// 403, as an expired or used-up link answers.
    Expired,
    /// 200 with an HTML page instead of the zip or file.
    NotZip,
    /// Send the first `after_bytes` body bytes, wait `pause`, then the rest (a client's read timeout fires first).
    Stall {
        /// Body bytes sent before the pause.
        after_bytes: u64,
        /// How long nothing is sent.
        pause: Duration,
    },
}

impl DownloadFault {
    /// The label the call log's `fault` carries.
    pub(crate) fn label(&self) -> String {
        match self {
            DownloadFault::CutAfter(n) => format!("cut-{n}"),
            DownloadFault::Status(s) => format!("download-{s}"),
            DownloadFault::Expired => "expired".into(),
            DownloadFault::NotZip => "not-zip".into(),
            DownloadFault::Stall { .. } => "stall".into(),
        }
    }
}

/// One-shot faults, each queue tied to the paths that contain its key ("" matches all).
pub(crate) struct FaultQueues<T> {
    queues: Vec<(String, std::collections::VecDeque<T>)>,
}

impl<T> Default for FaultQueues<T> {
    fn default() -> Self {
        FaultQueues { queues: Vec::new() }
    }
}

impl<T> FaultQueues<T> {
    pub(crate) fn push(&mut self, path_contains: &str, faults: Vec<T>) {
        match self.queues.iter_mut().find(|(p, _)| p == path_contains) {
            Some((_, queue)) => queue.extend(faults),
            None => self.queues.push((path_contains.to_string(), faults.into())),
        }
    }

    /// The next fault of the first queue (in the order queues were made) that matches `path` and is not empty.
    pub(crate) fn pop(&mut self, path: &str) -> Option<T> {
        self.queues
            .iter_mut()
            .find(|(p, q)| !q.is_empty() && path.contains(p.as_str()))
            .and_then(|(_, q)| q.pop_front())
    }
}

pub(crate) fn fault_label(fault: &Fault) -> String {
    match fault {
        Fault::Status(s) => s.to_string(),
        Fault::StatusEmptyBody(s) => format!("{s}-empty"),
        Fault::TooManyRequests { .. } => "429".into(),
        Fault::Hang(_) => "hang".into(),
        Fault::Delay(_) => "delay".into(),
        Fault::Drop => "drop".into(),
        Fault::Body { status, .. } => format!("body-{status}"),
    }
}

pub(crate) fn roll_random((cfg, rng): &mut (RandomFaults, fastrand::Rng)) -> Option<(Fault, String)> {
    let roll = rng.f64();
    let mut edge = cfg.p_429;
    if roll < edge {
        let retry_after = rng.bool().then_some(1);
        return Some((Fault::TooManyRequests { retry_after }, "429".into()));
    }
    edge += cfg.p_5xx;
    if roll < edge {
        let status = [500, 503, 504][rng.usize(..3)];
        let fault = if rng.bool() {
            Fault::Status(status)
        } else {
            Fault::StatusEmptyBody(status)
        };
        let label = fault_label(&fault);
        return Some((fault, label));
    }
    edge += cfg.p_drop;
    if roll < edge {
        return Some((Fault::Drop, "drop".into()));
    }
    edge += cfg.p_hang;
    if roll < edge {
        return Some((Fault::Hang(cfg.hang), "hang".into()));
    }
    edge += cfg.p_malformed;
    if roll < edge {
        let fault = Fault::Body {
            status: 200,
            content_type: "application/json".into(),
            body: r#"{"downloadUrl": "htt"#.into(),
        };
        return Some((fault, "malformed".into()));
    }
    None
}
