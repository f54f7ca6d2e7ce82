//! What one invocation carries through its Wix calls: its deadlines, what the calls cost,
//! and what the pacer learned from Wix's answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::time::Instant;

use super::limiter::Smoothing;

/// Per-invocation state: the deadlines and what the calls cost.
#[derive(Debug, Default)]
pub struct CallContext {
    /// Latest time a Wix call may still be running.
    pub deadline: Option<Instant>,
    /// Latest time the answer must be ready (the Lambda deadline less a margin); mail and
    /// other last steps are cut off here.
    pub respond_by: Option<Instant>,
    pub stats: CallStats,
    /// Set by the first 429 of the invocation: from then on calls are spaced evenly
    /// instead of taking the window's allowance at once (Wix's limiter may refill smoothly).
    pub(crate) smoothing: Mutex<Option<Smoothing>>,
}

/// Counts of one invocation's Wix calls.
#[derive(Debug, Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl CallContext {
    /// A context whose Wix calls and answer share one deadline.
    pub fn new(deadline: Option<Instant>) -> Self {
        CallContext::with_deadlines(deadline, deadline)
    }

    /// A context with a deadline for Wix calls and a later one for the answer.
    pub fn with_deadlines(deadline: Option<Instant>, respond_by: Option<Instant>) -> Self {
        CallContext {
            deadline,
            respond_by,
            ..CallContext::default()
        }
    }

    /// Wix calls made (retries included).
    pub fn calls(&self) -> u64 {
        self.stats.calls.load(Ordering::Relaxed)
    }

    /// Retries made.
    pub fn retries(&self) -> u64 {
        self.stats.retries.load(Ordering::Relaxed)
    }

    /// 429 answers received.
    pub fn rate_limited(&self) -> u64 {
        self.stats.rate_limited.load(Ordering::Relaxed)
    }

    /// The even pace a 429 has set for the rest of the invocation, if any.
    pub fn smoothing(&self) -> Option<Smoothing> {
        *self.smoothing.lock().expect("smoothing lock")
    }
}
