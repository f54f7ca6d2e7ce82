//! Pacing and concurrency shared by every Wix call of the container: at most `concurrency`
//! calls in flight, and at most `per_minute` starts in any 60-second window — a true
//! sliding window, so a burst up to the budget goes at once and the rest follows as the
//! window slides. After a 429 an invocation spaces its starts evenly instead (Wix's own
//! limiter is not documented and may be a bucket that refills smoothly).
//!
//! With a [`SharedPace`] (a DynamoDB table, `PACE_TABLE`) every container that calls Wix
//! for the site takes its starts from one window of the whole budget; when the shared
//! window cannot be reached, the container falls back to its own share of the budget.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The window the budget is counted over.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Kept between a start and the one `per_minute` starts later, beyond the window, so that
/// network jitter (an early call arriving late, a later one early) cannot put one call too
/// many into Wix's window.
const EDGE_MARGIN: Duration = Duration::from_millis(250);
/// Longest pause a `Retry-After` may impose on the whole container.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Each further 429 while already spacing calls slows the spacing by this factor.
const SLOWDOWN: f64 = 0.9;
/// The share of the burst Wix allowed before a 429 that the pace then allows itself.
const BURST_SHARE: f64 = 0.9;
/// The slowest the pace gets after repeated 429s: a tenth of the budget.
const SLOWEST: f64 = 0.1;

/// The window a shared pace keeps, with the edge margin, in milliseconds.
pub const SHARED_WINDOW_MS: u64 = 60_000 + 250;

/// A future a [`SharedPace`] returns.
pub type PaceFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One window of starts shared by every container that calls Wix for the site.
pub trait SharedPace: Send + Sync + fmt::Debug {
    /// Reserves the first start at or after `earliest` that keeps every window of the
    /// shared starts within `budget` (starts are handed out in order); `None`, reserving
    /// nothing, when that start would come after `latest`.
    fn reserve(
        &self,
        earliest: SystemTime,
        latest: Option<SystemTime>,
        budget: u32,
    ) -> PaceFuture<'_, Result<Option<SystemTime>, String>>;

    /// Holds every container's later starts until `until` (Wix said `Retry-After`).
    fn pause(&self, until: SystemTime) -> PaceFuture<'_, Result<(), String>>;
}

/// The first start at or after `earliest` (ms) that a window of `budget` starts allows,
/// given the `starts` handed out (ms, in order) and a pause: the rule of a shared pace.
pub fn window_slot(starts: &[u64], earliest: u64, paused_until: u64, budget: u32) -> u64 {
    let mut slot = earliest.max(paused_until);
    if let Some(last) = starts.last() {
        slot = slot.max(*last);
    }
    let budget = budget.max(1) as usize;
    if starts.len() >= budget {
        slot = slot.max(starts[starts.len() - budget] + SHARED_WINDOW_MS);
    }
    slot
}

/// The shared gate every Wix call passes through.
pub struct Limiter {
    permits: Semaphore,
    per_minute: u32,
    state: Mutex<Pace>,
    shared: Option<Shared>,
}

struct Shared {
    pace: Arc<dyn SharedPace>,
    /// The whole site's budget (the local `per_minute` is this container's fallback share).
    budget: u32,
    failures: AtomicU64,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("per_minute", &self.per_minute)
            .field("shared", &self.shared.as_ref().map(|s| s.budget))
            .finish()
    }
}

#[derive(Debug, Default)]
struct Pace {
    /// Start times handed out (some may lie ahead), oldest first, never decreasing.
    starts: VecDeque<Instant>,
    /// No start before this (Wix said `Retry-After`).
    paused_until: Option<Instant>,
    /// The theoretical arrival time of a bucket refilling at the pace of each start (the
    /// budget's, or the smoothing's): it remembers starts the window has forgotten.
    tat: Option<Instant>,
    /// When a 429 last showed Wix's bucket empty: starts before it no longer count in the
    /// bucket (the refused ones took no token, and the rest are in the emptiness).
    bucket_since: Option<Instant>,
}

/// How an invocation wants its calls spaced; held in its [`super::CallContext`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoothing {
    /// Starts a minute when spacing evenly.
    pub per_minute: f64,
    /// Starts that may go at once when the pace has been idle: the burst Wix allowed before
    /// its first 429, as learnt (1 = strictly even spacing). The pace is then a token bucket
    /// refilling `per_minute`, the likeliest shape of a limiter that answered 429 below the
    /// window's budget.
    pub burst: f64,
    /// Calls started before this do not slow the pace further when they get a 429: they
    /// were already under way when the pace was set.
    pub since: Instant,
}

/// The right to make one call now; dropping it frees the concurrency slot.
#[derive(Debug)]
pub struct CallPermit<'a> {
    _permit: SemaphorePermit<'a>,
    /// When the call was allowed to start.
    pub started: Instant,
}

/// The start the caller wanted is later than it may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLate;

impl Limiter {
    /// A gate for `concurrency` calls in flight and `per_minute` starts in any minute.
    pub fn new(concurrency: usize, per_minute: u32) -> Self {
        Limiter {
            permits: Semaphore::new(concurrency.max(1)),
            per_minute: per_minute.max(1),
            state: Mutex::new(Pace::default()),
            shared: None,
        }
    }

    /// The same gate taking its starts from `pace`, a window of `budget` for the whole site;
    /// this container's own `per_minute` is then the fallback when `pace` cannot be reached.
    pub fn with_shared(mut self, pace: Arc<dyn SharedPace>, budget: u32) -> Self {
        self.shared = Some(Shared {
            pace,
            budget: budget.max(1),
            failures: AtomicU64::new(0),
        });
        self
    }

    /// Whether starts come from a shared pace.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The budget of starts per window (the site's, with a shared pace).
    pub fn per_minute(&self) -> u32 {
        self.shared.as_ref().map_or(self.per_minute, |s| s.budget)
    }

    /// Waits for a concurrency slot, then for the first start the window (and the
    /// smoothing `smooth` gives, when set) allows. The smoothing is read once the slot is
    /// held, so a call that waited for its slot while a 429 set the pace keeps that pace.
    /// Gives up without taking a start when that start would come after `latest_start`.
    pub async fn acquire(
        &self,
        latest_start: Option<Instant>,
        smooth: impl Fn() -> Option<Smoothing>,
    ) -> Result<CallPermit<'_>, TooLate> {
        let permit = match latest_start {
            Some(latest) => tokio::time::timeout_at(latest, self.permits.acquire())
                .await
                .map_err(|_| TooLate)?,
            None => self.permits.acquire().await,
        }
        .expect("the semaphore is never closed");
        let smooth = smooth();
        if let Some(shared) = &self.shared {
            match self.shared_slot(shared, latest_start, smooth).await {
                Ok(Some(slot)) => {
                    wait_for(slot).await;
                    return Ok(CallPermit {
                        _permit: permit,
                        started: slot,
                    });
                }
                Ok(None) => return Err(TooLate),
                Err(e) => {
                    let n = shared.failures.fetch_add(1, Ordering::Relaxed);
                    if n % 100 == 0 {
                        tracing::warn!(error = %e, failures = n + 1, per_minute = self.per_minute, "the shared Wix pace could not be reached; pacing this container alone at its share");
                    }
                }
            }
        }
        let slot = {
            let mut pace = self.state.lock().expect("pace lock");
            let slot = pace.next_slot(Instant::now(), self.per_minute as usize, smooth);
            if latest_start.is_some_and(|latest| slot > latest) {
                return Err(TooLate);
            }
            pace.starts.push_back(slot);
            pace.note_start(slot, interval(self.per_minute, smooth));
            slot
        };
        wait_for(slot).await;
        Ok(CallPermit {
            _permit: permit,
            started: slot,
        })
    }

    /// A start from the shared pace, no earlier than this container's own pace allows
    /// (its pause, its smoothing, the order of its starts).
    async fn shared_slot(
        &self,
        shared: &Shared,
        latest_start: Option<Instant>,
        smooth: Option<Smoothing>,
    ) -> Result<Option<Instant>, String> {
        let earliest = {
            let mut pace = self.state.lock().expect("pace lock");
            pace.next_slot(Instant::now(), shared.budget as usize, smooth)
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        let to_wall = |i: Instant| wall + i.saturating_duration_since(now);
        let Some(at) = shared
            .pace
            .reserve(to_wall(earliest), latest_start.map(to_wall), shared.budget)
            .await?
        else {
            return Ok(None);
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        let slot = now + at.duration_since(wall).unwrap_or_default();
        let mut pace = self.state.lock().expect("pace lock");
        let i = pace.starts.partition_point(|s| *s <= slot);
        pace.starts.insert(i, slot);
        pace.note_start(slot, interval(shared.budget, smooth));
        Ok(Some(slot))
    }

    /// Holds every later start until `until`, at most [`MAX_PAUSE`] from now; with a
    /// shared pace, every container's.
    pub fn pause_until(&self, until: Instant) {
        let until = until.min(Instant::now() + MAX_PAUSE);
        if let Some(shared) = &self.shared {
            let pace = shared.pace.clone();
            let wall = SystemTime::now() + until.saturating_duration_since(Instant::now());
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = pace.pause(wall).await {
                        tracing::warn!(error = %e, "the pause could not be shared");
                    }
                });
            }
        }
        let mut pace = self.state.lock().expect("pace lock");
        if pace.paused_until.is_none_or(|p| p < until) {
            pace.paused_until = Some(until);
        }
    }

    /// Wix answered 429 and the pace is now `smooth`: its bucket is empty at this moment,
    /// whatever the starts before suggested, so its next token comes one interval on and
    /// the burst refills from here. (Counting the starts before would count the refused
    /// ones, which took no token, and hold the pace back by seconds.)
    pub fn bucket_empty_now(&self, smooth: Smoothing) {
        let now = Instant::now();
        let interval = interval(self.per_minute(), Some(smooth));
        let mut pace = self.state.lock().expect("pace lock");
        pace.bucket_since = Some(now);
        pace.tat = Some(now + interval.mul_f64(smooth.burst.max(1.0)));
    }

    /// About how long `calls` more starts take from now, at the window's pace (or evenly
    /// spaced when `smooth` is set). A planning estimate, not a promise.
    pub fn time_for(&self, calls: usize, smooth: Option<Smoothing>) -> Duration {
        let now = Instant::now();
        let mut pace = self.state.lock().expect("pace lock");
        pace.prune(now);
        let paused = pace
            .paused_until
            .map_or(Duration::ZERO, |p| p.saturating_duration_since(now));
        let spread = match smooth {
            Some(s) => WINDOW.mul_f64(calls as f64 / s.per_minute.max(1.0)),
            None => {
                let budget = self.per_minute as usize;
                let free_now = budget.saturating_sub(pace.starts.len());
                let later = calls.saturating_sub(free_now);
                (WINDOW + EDGE_MARGIN) * later.div_ceil(budget) as u32
            }
        };
        paused + spread
    }
}

impl Pace {
    /// Forgets starts that can no longer hold a later one back.
    fn prune(&mut self, now: Instant) {
        while self.starts.front().is_some_and(|s| *s + WINDOW + EDGE_MARGIN <= now) {
            self.starts.pop_front();
        }
    }

    /// The first start at or after `now` that keeps every window within `budget`, keeps
    /// starts in the order they were asked for, and honours a pause and the smoothing.
    fn next_slot(&mut self, now: Instant, budget: usize, smooth: Option<Smoothing>) -> Instant {
        self.prune(now);
        let mut slot = now;
        if let Some(last) = self.starts.back() {
            slot = slot.max(*last);
        }
        if let Some(s) = smooth {
            slot = slot.max(self.bucket_slot(now, s));
        }
        if self.starts.len() >= budget {
            slot = slot.max(self.starts[self.starts.len() - budget] + WINDOW + EDGE_MARGIN);
        }
        if let Some(paused) = self.paused_until {
            slot = slot.max(paused);
        }
        slot
    }
}

impl Pace {
    /// The first time a start fits a token bucket of `s.burst` refilling `s.per_minute`,
    /// given the starts of the last window (GCRA: each start moves the theoretical arrival
    /// time one interval on from itself or from the one before, whichever is later).
    /// The later of two bounds: the starts of the window at the smoothing's pace, and the
    /// remembered arrival time (which counts starts older than the window).
    fn bucket_slot(&self, now: Instant, s: Smoothing) -> Instant {
        let interval = WINDOW.div_f64(s.per_minute.max(0.01));
        let mut tat: Option<Instant> = None;
        let since = self.bucket_since;
        for start in self.starts.iter().filter(|s| since.is_none_or(|t| **s >= t)) {
            tat = Some(tat.map_or(*start, |t| t.max(*start)) + interval);
        }
        let tat = match (tat, self.tat) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return now,
            },
        };
        let tolerance = interval.mul_f64((s.burst - 1.0).max(0.0));
        tat.checked_sub(tolerance).unwrap_or(now)
    }

    fn note_start(&mut self, slot: Instant, interval: Duration) {
        self.tat = Some(self.tat.map_or(slot, |t| t.max(slot)) + interval);
    }
}

/// The time between starts at `per_minute`, or at the smoothing's pace when set.
fn interval(per_minute: u32, smooth: Option<Smoothing>) -> Duration {
    let per_minute = smooth.map_or(f64::from(per_minute.max(1)), |s| s.per_minute.max(0.01));
    WINDOW.div_f64(per_minute)
}

impl Limiter {
    /// The burst a 429 on the call started at `started` shows: the starts of the window
    /// before it, less what a bucket refilling at the budget gained meanwhile, nine tenths
    /// of that; at least 1.
    pub fn burst_before(&self, started: Instant) -> f64 {
        let pace = self.state.lock().expect("pace lock");
        let since = started.checked_sub(WINDOW).unwrap_or(started);
        let before: Vec<Instant> = pace
            .starts
            .iter()
            .copied()
            .filter(|s| *s >= since && *s < started)
            .collect();
        let Some(first) = before.first() else { return 1.0 };
        let refilled = started.duration_since(*first).as_secs_f64() * f64::from(self.per_minute()) / 60.0;
        // A tenth held back: the refill is estimated, and one call too many is a 429.
        ((before.len() as f64 - refilled) * BURST_SHARE).floor().max(1.0)
    }
}

impl Smoothing {
    /// The pace after a 429 on a call that started at `started`, `burst` the burst it
    /// showed ([`Limiter::burst_before`]): a bucket at the budget with that burst for the
    /// first one; a little slower, with half the burst, for each later one that started
    /// after the pace was set.
    pub fn after_429(current: Option<Smoothing>, budget: u32, started: Instant, burst: f64) -> Smoothing {
        let budget = f64::from(budget.max(1));
        match current {
            None => Smoothing {
                per_minute: budget,
                burst: burst.max(1.0),
                since: Instant::now(),
            },
            Some(s) if started >= s.since => Smoothing {
                per_minute: (s.per_minute * SLOWDOWN).max(budget * SLOWEST),
                burst: (s.burst / 2.0).floor().max(1.0),
                since: Instant::now(),
            },
            Some(s) => s,
        }
    }
}

/// Sleeps until `slot` if it is still ahead. A start that is already due goes at once:
/// tokio's timer rounds a deadline up to its next millisecond tick and fires it on the
/// driver's next turn, which would hold every free call back by up to a millisecond or two.
async fn wait_for(slot: Instant) {
    if slot > Instant::now() {
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Every 60-second window of `starts` (sorted) holds at most `budget` of them.
    fn assert_window(starts: &[Duration], budget: usize) {
        for (i, s) in starts.iter().enumerate() {
            let in_window = starts[i..].iter().take_while(|t| **t < *s + WINDOW).count();
            assert!(in_window <= budget, "{in_window} starts within 60 s of {s:?}");
        }
    }

    async fn starts_of(limiter: Arc<Limiter>, calls: usize, hold: Duration) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..calls {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                let permit = l.acquire(None, || None).await.unwrap();
                let at = permit.started - t0;
                tokio::time::sleep(hold).await;
                at
            }));
        }
        let mut starts = Vec::new();
        for t in tasks {
            starts.push(t.await.unwrap());
        }
        starts.sort();
        starts
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_up_to_the_budget_goes_at_once() {
        let limiter = Arc::new(Limiter::new(100, 100));
        let starts = starts_of(limiter, 100, Duration::from_millis(50)).await;
        assert_eq!(starts.last(), Some(&Duration::ZERO), "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rest_follows_as_the_window_slides() {
        // 4 in flight, 50 ms a call: 200 in the first 2.5 s, then the window must slide.
        let limiter = Arc::new(Limiter::new(4, 200));
        let starts = starts_of(limiter, 300, Duration::from_millis(50)).await;
        assert_window(&starts, 200);
        assert_eq!(starts[199], Duration::from_millis(49 * 50), "{:?}", &starts[195..205]);
        // Call 201 waits for call 1 to leave the window, plus the edge margin.
        assert_eq!(starts[200], WINDOW + EDGE_MARGIN);
        // The next hundred go as their predecessors leave: as fast as the first hundred.
        let last = *starts.last().unwrap();
        assert!(last < WINDOW + EDGE_MARGIN + Duration::from_millis(1300), "{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_exceeds_the_budget_under_contention() {
        let limiter = Arc::new(Limiter::new(4, 120));
        let starts = starts_of(limiter, 400, Duration::from_millis(700)).await;
        assert_window(&starts, 120);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_count_like_first_attempts() {
        // A call that is retried acquires again; every acquisition is a start in the window.
        let limiter = Limiter::new(1, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            let _p = limiter.acquire(None, || None).await.unwrap();
        }
        let fourth = limiter.acquire(None, || None).await.unwrap();
        assert_eq!(fourth.started - t0, WINDOW + EDGE_MARGIN);
    }

    #[tokio::test(start_paused = true)]
    async fn smoothing_spaces_starts_evenly() {
        let limiter = Limiter::new(8, 600);
        let smooth = Smoothing {
            per_minute: 600.0,
            burst: 1.0,
            since: Instant::now(),
        };
        let t0 = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..5 {
            let p = limiter.acquire(None, || Some(smooth)).await.unwrap();
            starts.push((p.started - t0).as_millis());
        }
        assert_eq!(starts, vec![0, 100, 200, 300, 400]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_waiting_for_its_slot_takes_the_pace_a_429_set_meanwhile() {
        let limiter = Arc::new(Limiter::new(1, 600));
        let pace: Arc<std::sync::Mutex<Option<Smoothing>>> = Arc::default();
        let t0 = Instant::now();
        let held = limiter.acquire(None, || None).await.unwrap();
        let waiting = {
            let (limiter, pace) = (limiter.clone(), pace.clone());
            tokio::spawn(async move {
                let p = limiter.acquire(None, || *pace.lock().unwrap()).await.unwrap();
                p.started - t0
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The held call got a 429: the pace is set while the other waits for the slot.
        *pace.lock().unwrap() = Some(Smoothing {
            per_minute: 60.0,
            burst: 1.0,
            since: Instant::now(),
        });
        drop(held);
        assert_eq!(
            waiting.await.unwrap(),
            Duration::from_secs(1),
            "spaced a second after the first start"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_429_the_pace_is_a_bucket_with_the_burst_wix_allowed() {
        // 20 starts at once, then a 429: the burst learnt is nine tenths of 20 less what a
        // bucket at the budget refilled meanwhile (nothing: no time passed).
        let limiter = Limiter::new(20, 60);
        let t0 = Instant::now();
        for _ in 0..20 {
            drop(limiter.acquire(None, || None).await.unwrap());
        }
        assert_eq!(limiter.burst_before(t0 + Duration::from_millis(1)), 17.0);
        assert_eq!(limiter.burst_before(t0), 1.0, "no start before the first");
        let smooth = Smoothing::after_429(None, 60, t0, 4.0);
        assert_eq!(smooth.burst, 4.0);
        // Without knowing the bucket is empty, the 20 starts (refused ones among them) at 1
        // a second hold the next start until 20 s less the burst's tolerance: 17 s.
        let held = Limiter::new(20, 60);
        for _ in 0..20 {
            drop(held.acquire(None, || None).await.unwrap());
        }
        assert_eq!(
            held.acquire(None, || Some(smooth)).await.unwrap().started - t0,
            Duration::from_secs(17)
        );
        // The 429 arrives a little later and says the bucket (1 a second, 4 at once) is empty
        // then: one a second from a second after it; after idling, 4 at once.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let emptied = Instant::now();
        limiter.bucket_empty_now(smooth);
        let mut starts = Vec::new();
        for _ in 0..3 {
            starts.push((limiter.acquire(None, || Some(smooth)).await.unwrap().started - emptied).as_secs());
        }
        assert_eq!(starts, vec![1, 2, 3]);
        tokio::time::sleep_until(t0 + Duration::from_secs(30)).await;
        let mut burst = Vec::new();
        for _ in 0..5 {
            burst.push((limiter.acquire(None, || Some(smooth)).await.unwrap().started - t0).as_secs());
        }
        assert_eq!(burst, vec![30, 30, 30, 30, 31]);
        // A later 429 halves the burst and slows the pace.
        let later = Smoothing::after_429(Some(smooth), 60, smooth.since, 4.0);
        assert_eq!(later.burst, 2.0);
        assert!((later.per_minute - 54.0).abs() < 1e-9);
    }

    #[test]
    fn later_429s_slow_the_pace_only_for_calls_started_after_it_was_set() {
        let t0 = Instant::now();
        let first = Smoothing::after_429(None, 200, t0, 1.0);
        assert_eq!(first.per_minute, 200.0);
        // A call already under way when the pace was set: no change.
        assert_eq!(Smoothing::after_429(Some(first), 200, t0, 1.0), first);
        let second = Smoothing::after_429(Some(first), 200, first.since, 1.0);
        assert!((second.per_minute - 180.0).abs() < 1e-9);
        let mut s = second;
        for _ in 0..100 {
            s = Smoothing::after_429(Some(s), 200, s.since, 1.0);
        }
        assert!((s.per_minute - 20.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded_and_late_starts_are_refused() {
        let limiter = Limiter::new(1, 60_000);
        let held = limiter.acquire(None, || None).await.unwrap();
        let latest = Instant::now() + Duration::from_millis(50);
        assert_eq!(limiter.acquire(Some(latest), || None).await.err(), Some(TooLate));
        drop(held);
        assert!(limiter.acquire(Some(latest), || None).await.is_ok());
        limiter.pause_until(Instant::now() + Duration::from_secs(5));
        assert_eq!(
            limiter
                .acquire(Some(Instant::now() + Duration::from_secs(1)), || None)
                .await
                .err(),
            Some(TooLate)
        );
        let t0 = Instant::now();
        let _p = limiter.acquire(None, || None).await.unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(4900));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_window_refuses_at_once_when_the_deadline_is_near() {
        let limiter = Limiter::new(4, 2);
        let _a = limiter.acquire(None, || None).await.unwrap();
        let _b = limiter.acquire(None, || None).await.unwrap();
        let t0 = Instant::now();
        let latest = Some(t0 + Duration::from_secs(10));
        assert_eq!(limiter.acquire(latest, || None).await.err(), Some(TooLate));
        assert_eq!(t0.elapsed(), Duration::ZERO, "refused without waiting");
        // The refused call took no start: the window still admits exactly at its edge.
        let third = limiter.acquire(None, || None).await.unwrap();
        assert_eq!(third.started - t0, WINDOW + EDGE_MARGIN);
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_are_clamped() {
        let limiter = Limiter::new(1, 60_000);
        limiter.pause_until(Instant::now() + Duration::from_secs(86_400));
        let t0 = Instant::now();
        let p = limiter.acquire(None, || None).await.unwrap();
        assert_eq!(p.started - t0, MAX_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn time_for_estimates_the_window() {
        let limiter = Limiter::new(4, 100);
        assert_eq!(limiter.time_for(100, None), Duration::ZERO);
        assert_eq!(limiter.time_for(101, None), WINDOW + EDGE_MARGIN);
        for _ in 0..50 {
            drop(limiter.acquire(None, || None).await.unwrap());
        }
        assert_eq!(limiter.time_for(50, None), Duration::ZERO);
        assert_eq!(limiter.time_for(51, None), WINDOW + EDGE_MARGIN);
        let smooth = Smoothing {
            per_minute: 60.0,
            burst: 1.0,
            since: Instant::now(),
        };
        assert_eq!(limiter.time_for(10, Some(smooth)), Duration::from_secs(10));
    }
}
