//! Pacing and concurrency shared by every Wix call of the container: at most `concurrency`
//! calls in flight, and starts spaced so no 60-second window holds more than
//! `per_minute` of them.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The shared gate every Wix call passes through.
#[derive(Debug)]
pub struct Limiter {
    permits: Semaphore,
    interval: Duration,
    state: Mutex<Pace>,
}

#[derive(Debug)]
struct Pace {
    next_slot: Option<Instant>,
}

/// The right to make one call now; dropping it frees the concurrency slot.
#[derive(Debug)]
pub struct CallPermit<'a> {
    _permit: SemaphorePermit<'a>,
}

/// The start the caller wanted is later than it may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLate;

impl Limiter {
    /// A gate for `concurrency` calls in flight and `per_minute` starts a minute.
    pub fn new(concurrency: usize, per_minute: u32) -> Self {
        Limiter {
            permits: Semaphore::new(concurrency.max(1)),
            interval: Duration::from_secs(60) / per_minute.max(1),
            state: Mutex::new(Pace { next_slot: None }),
        }
    }

    /// Waits for a concurrency slot, then for the next start slot. Gives up without
    /// taking a start slot when that slot would come after `latest_start`.
    pub async fn acquire(&self, latest_start: Option<Instant>) -> Result<CallPermit<'_>, TooLate> {
        let permit = match latest_start {
            Some(latest) => tokio::time::timeout_at(latest, self.permits.acquire())
                .await
                .map_err(|_| TooLate)?,
            None => self.permits.acquire().await,
        }
        .expect("the semaphore is never closed");
        let slot = {
            let mut pace = self.state.lock().expect("pace lock");
            let now = Instant::now();
            let slot = pace.next_slot.map_or(now, |next| next.max(now));
            if latest_start.is_some_and(|latest| slot > latest) {
                return Err(TooLate);
            }
            pace.next_slot = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
        Ok(CallPermit { _permit: permit })
    }

    /// Holds every later start until `until` (Wix said `Retry-After`).
    pub fn pause_until(&self, until: Instant) {
        let mut pace = self.state.lock().expect("pace lock");
        if pace.next_slot.is_none_or(|next| next < until) {
            pace.next_slot = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn starts_are_spaced_by_the_rate() {
        let limiter = Limiter::new(8, 600); // one start every 100 ms
        let t0 = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..5 {
            let _p = limiter.acquire(None).await.unwrap();
            starts.push(t0.elapsed().as_millis());
        }
        assert_eq!(starts, vec![0, 100, 200, 300, 400]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_of_sixty_seconds_exceeds_the_rate() {
        let limiter = std::sync::Arc::new(Limiter::new(4, 120));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..300 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                let _p = l.acquire(None).await.unwrap();
                let at = t0.elapsed();
                tokio::time::sleep(Duration::from_millis(700)).await;
                at
            }));
        }
        let mut starts = Vec::new();
        for t in tasks {
            starts.push(t.await.unwrap());
        }
        starts.sort();
        for (i, s) in starts.iter().enumerate() {
            let in_window = starts[i..]
                .iter()
                .take_while(|t| **t < *s + Duration::from_secs(60))
                .count();
            assert!(in_window <= 120, "{in_window} starts within 60 s of {s:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded_and_late_starts_are_refused() {
        let limiter = Limiter::new(1, 60_000);
        let held = limiter.acquire(None).await.unwrap();
        let latest = Instant::now() + Duration::from_millis(50);
        assert_eq!(limiter.acquire(Some(latest)).await.err(), Some(TooLate));
        drop(held);
        assert!(limiter.acquire(Some(latest)).await.is_ok());
        limiter.pause_until(Instant::now() + Duration::from_secs(5));
        assert_eq!(
            limiter
                .acquire(Some(Instant::now() + Duration::from_secs(1)))
                .await
                .err(),
            Some(TooLate)
        );
        let t0 = Instant::now();
        let _p = limiter.acquire(None).await.unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(4900));
    }
}
