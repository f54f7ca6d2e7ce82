//! The rate limits: a sliding one-minute window, or a continuously refilled token bucket.
//!
//! A call is checked first and counted only once it is known not to be answered 429 (by the
//! limit or by a scripted fault), so refused calls never use up the allowance.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{LimiterKind, RateLimit};

const WINDOW: Duration = Duration::from_secs(60);

/// Calls the limiter let through and calls it answered 429.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimiterStats {
    /// Calls that passed the limiter (every API call while no limit is set).
    pub admitted: u64,
    /// Calls the limiter answered 429 (`fault: "rate-limit"` in the call log).
    pub refused: u64,
}

struct Bucket {
    limit: RateLimit,
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
pub(crate) struct Limiter {
    /// Times of counted calls in the last minute; kept while no limit is set, so a limit set later sees them.
    window: VecDeque<Instant>,
    bucket: Option<Bucket>,
    stats: LimiterStats,
}

fn per_second(limit: &RateLimit) -> f64 {
    f64::from(limit.per_minute) / 60.0
}

impl Limiter {
    /// `Err(retry_after)` when the call is refused; `retry_after` is `Some` only when the limit sends it.
    pub(crate) fn check(&mut self, limit: Option<RateLimit>, now: Instant) -> Result<(), Option<u64>> {
        while self.window.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            self.window.pop_front();
        }
        let Some(limit) = limit else {
            self.bucket = None;
            self.stats.admitted += 1;
            return Ok(());
        };
        let wait = match limit.kind {
            LimiterKind::Window => self.window_wait(&limit, now),
            LimiterKind::TokenBucket { burst } => self.bucket_wait(limit, burst, now),
        };
        match wait {
            None => {
                self.stats.admitted += 1;
                Ok(())
            }
            Some(wait) => {
                self.stats.refused += 1;
                Err(limit.retry_after.then(|| wait.as_secs_f64().ceil().max(1.0) as u64))
            }
        }
    }

    fn window_wait(&self, limit: &RateLimit, now: Instant) -> Option<Duration> {
        if self.window.len() < limit.per_minute as usize {
            return None;
        }
        Some(match self.window.front() {
            Some(oldest) => WINDOW.saturating_sub(now.duration_since(*oldest)),
            None => WINDOW,
        })
    }

    fn bucket_wait(&mut self, limit: RateLimit, burst: u32, now: Instant) -> Option<Duration> {
        let capacity = f64::from(burst.max(1));
        let bucket = match &mut self.bucket {
            Some(b) if b.limit == limit => b,
            // A new or changed limit starts with a full bucket.
            _ => self.bucket.insert(Bucket {
                limit,
                tokens: capacity,
                at: now,
            }),
        };
        let rate = per_second(&limit);
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            return None;
        }
        Some(if rate > 0.0 {
            Duration::from_secs_f64((1.0 - bucket.tokens) / rate)
        } else {
            WINDOW
        })
    }

    /// Counts an admitted call that was not answered 429 after all.
    pub(crate) fn commit(&mut self, now: Instant) {
        self.window.push_back(now);
        if let Some(bucket) = &mut self.bucket {
            bucket.tokens -= 1.0;
        }
    }

    pub(crate) fn stats(&self) -> LimiterStats {
        self.stats
    }

    pub(crate) fn reset_stats(&mut self) {
        self.stats = LimiterStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(l: &mut Limiter, limit: RateLimit, at: Instant) -> Result<(), Option<u64>> {
        let r = l.check(Some(limit), at);
        if r.is_ok() {
            l.commit(at);
        }
        r
    }

    #[test]
    fn bucket_refills_continuously_up_to_its_burst() {
        let t0 = Instant::now();
        let limit = RateLimit::token_bucket(60, 3).with_retry_after();
        let mut l = Limiter::default();
        for _ in 0..3 {
            assert_eq!(call(&mut l, limit, t0), Ok(()));
        }
        assert_eq!(call(&mut l, limit, t0), Err(Some(1)));
        assert_eq!(call(&mut l, limit, t0 + Duration::from_millis(500)), Err(Some(1)));
        assert_eq!(call(&mut l, limit, t0 + Duration::from_millis(1000)), Ok(()));
        // A long pause fills the bucket to its burst, not beyond.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert_eq!(call(&mut l, limit, later), Ok(()));
        }
        assert!(call(&mut l, limit, later).is_err());
        assert_eq!(
            l.stats(),
            LimiterStats {
                admitted: 7,
                refused: 3
            }
        );

        // 12 a minute: the next token is 5 s away.
        let slow = RateLimit::token_bucket(12, 1).with_retry_after();
        let mut l = Limiter::default();
        assert_eq!(call(&mut l, slow, t0), Ok(()));
        assert_eq!(call(&mut l, slow, t0 + Duration::from_millis(100)), Err(Some(5)));
        assert_eq!(
            call(&mut l, RateLimit::token_bucket(12, 1), t0),
            Ok(()),
            "a changed limit starts full"
        );
    }

    #[test]
    fn window_counts_only_committed_calls() {
        let t0 = Instant::now();
        let limit = RateLimit::window(2).with_retry_after();
        let mut l = Limiter::default();
        assert_eq!(l.check(Some(limit), t0), Ok(()));
        // Not committed: answered 429 by a scripted fault.
        assert_eq!(call(&mut l, limit, t0), Ok(()));
        assert_eq!(call(&mut l, limit, t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(call(&mut l, limit, t0 + Duration::from_secs(20)), Err(Some(40)));
        assert_eq!(call(&mut l, limit, t0 + Duration::from_secs(60)), Ok(()));
        assert_eq!(
            call(&mut l, RateLimit::window(2), t0 + Duration::from_secs(61)),
            Err(None)
        );
    }
}
