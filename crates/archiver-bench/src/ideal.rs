//! The ideal time of a benchmark: the best schedule the *outside* limit allows — Wix's
//! sliding window or token bucket (exactly as the emulator enforces them), Wix's latency and
//! the calls in flight — found by simulating it. Never the function's own schedule.
//!
//! The calls come in three kinds:
//! - **chain**: each needs the previous one's answer (a backup's search pages: a cursor chain);
//! - **free**: may go at any time (a request's archive calls; a backup's folder pages, which
//!   Wix would answer at any time, whenever the function chooses to ask);
//! - **after**: may go only once every chain and free call has been answered (a backup's
//!   archive calls: they are cut in folder order, so none is final before the last page).
//!
//! Every call takes exactly the latency and is counted by the limit when it arrives: the
//! emulator checks a call on arrival, then adds the latency to the answer (429s included).
//! A window admits a call arriving at `t` when fewer than `per_minute` admitted calls arrived
//! in the 60 s before `t` (one that arrived exactly 60 s earlier no longer counts); a bucket
//! is full at the first call, refills continuously at `per_minute / 60` tokens a second up
//! to `burst`, and admits a call that finds a whole token.
//!
//! The schedule starts every call as early as it may, chain first, then free, then after
//! calls (optimal when all calls are alike: each start is then as early as any schedule's).
//! With a chain beside free calls under a window, spending the free calls early is not always
//! best: a window copies the spacing of its first minute into the next, so a minute that
//! starts with the chain alone (one call per latency) makes the next one start slowly too.
//! [`best_schedule`] therefore also tries holding free calls back to later minutes and keeps
//! the fastest schedule found.

use std::collections::VecDeque;
use std::time::Duration;

/// Microseconds in the limit's minute.
const MINUTE_US: u64 = 60_000_000;

/// The outside limit on calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// No limit: only the latency and the calls in flight bind.
    None,
    /// At most `per_minute` calls admitted in any 60 s.
    Window { per_minute: u32 },
    /// `burst` tokens, refilled at `per_minute` a minute; a call takes one.
    Bucket { per_minute: u32, burst: u32 },
}

/// The calls to schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub chain: usize,
    pub free: usize,
    pub after: usize,
}

impl Work {
    fn total(&self) -> usize {
        self.chain + self.free + self.after
    }
}

/// What a call of a schedule is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Chain,
    Free,
    After,
}

/// A schedule: every call's start, in start order.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// (start in µs from the first call, kind).
    pub starts: Vec<(u64, Kind)>,
    pub latency_us: u64,
}

impl Schedule {
    /// First start to last answer.
    pub fn makespan(&self) -> Duration {
        Duration::from_micros(self.starts.last().map_or(0, |(t, _)| t + self.latency_us))
    }

    pub fn seconds(&self) -> f64 {
        self.makespan().as_secs_f64()
    }
}

/// The limit's state as calls are admitted.
struct Gate {
    limit: Limit,
    /// Window: every admitted call's arrival.
    admitted: Vec<u64>,
    /// Bucket: tokens in units of 1 / `MINUTE_US` token, at `at`; `None` before the first call.
    tokens: Option<(u64, u64)>,
}

impl Gate {
    fn new(limit: Limit) -> Gate {
        Gate {
            limit,
            admitted: Vec::new(),
            tokens: None,
        }
    }

    /// Bucket: (capacity, tokens now), in units.
    fn bucket_at(&self, per_minute: u32, burst: u32, t: u64) -> (u64, u64) {
        let capacity = u64::from(burst.max(1)) * MINUTE_US;
        let tokens = match self.tokens {
            None => capacity,
            Some((tokens, at)) => (tokens + (t - at) * u64::from(per_minute)).min(capacity),
        };
        (capacity, tokens)
    }

    /// The first instant at or after `t` the limit admits a call.
    fn earliest(&self, t: u64) -> u64 {
        match self.limit {
            Limit::None => t,
            Limit::Window { per_minute } => {
                let n = per_minute.max(1) as usize;
                match self.admitted.len().checked_sub(n) {
                    Some(i) => t.max(self.admitted[i] + MINUTE_US),
                    None => t,
                }
            }
            Limit::Bucket { per_minute, burst } => {
                let (_, tokens) = self.bucket_at(per_minute, burst, t);
                if tokens >= MINUTE_US {
                    t
                } else {
                    let rate = u64::from(per_minute.max(1));
                    t + (MINUTE_US - tokens).div_ceil(rate)
                }
            }
        }
    }

    fn admit(&mut self, t: u64) {
        match self.limit {
            Limit::None => {}
            Limit::Window { .. } => self.admitted.push(t),
            Limit::Bucket { per_minute, burst } => {
                let (_, tokens) = self.bucket_at(per_minute, burst, t);
                self.tokens = Some((tokens - MINUTE_US, t));
            }
        }
    }
}

/// Every call as early as it may go, chain before free before after calls; `holdback[p]` is
/// the most free calls started before the end of minute `p` (none beyond the slice).
pub fn simulate(work: Work, limit: Limit, latency: Duration, concurrency: usize, holdback: &[usize]) -> Schedule {
    let latency_us = latency.as_micros() as u64;
    let concurrency = concurrency.max(1);
    let mut gate = Gate::new(limit);
    let mut starts = Vec::with_capacity(work.total());
    let mut ends: VecDeque<u64> = VecDeque::new();
    let (mut chain_left, mut free_left, mut after_left) = (work.chain, work.free, work.after);
    let mut chain_ready = 0u64;
    let mut listing_left = work.chain + work.free;
    let mut listing_end = 0u64;
    let mut free_started = 0usize;
    let quota = |t: u64| holdback.get((t / MINUTE_US) as usize).copied().unwrap_or(usize::MAX);
    let mut t = 0u64;
    while starts.len() < work.total() {
        // Calls all take the latency, so they end in the order they started.
        while ends.front().is_some_and(|e| *e <= t) {
            ends.pop_front();
        }
        let admit_at = gate.earliest(t);
        let slot_free = ends.len() < concurrency;
        let free_allowed = free_started < quota(t);
        let listing_done = listing_left == 0 && listing_end <= t;
        if slot_free && admit_at <= t {
            let kind = if chain_left > 0 && chain_ready <= t {
                Some(Kind::Chain)
            } else if free_left > 0 && free_allowed {
                Some(Kind::Free)
            } else if after_left > 0 && listing_done {
                Some(Kind::After)
            } else {
                None
            };
            if let Some(kind) = kind {
                gate.admit(t);
                ends.push_back(t + latency_us);
                starts.push((t, kind));
                match kind {
                    Kind::Chain => {
                        chain_left -= 1;
                        chain_ready = t + latency_us;
                    }
                    Kind::Free => {
                        free_left -= 1;
                        free_started += 1;
                    }
                    Kind::After => after_left -= 1,
                }
                if kind != Kind::After {
                    listing_left -= 1;
                    listing_end = listing_end.max(t + latency_us);
                }
                continue;
            }
        }
        // Nothing can start now: on to the next instant something changes.
        let mut next = u64::MAX;
        let mut consider = |at: u64| {
            if at > t {
                next = next.min(at);
            }
        };
        if let Some(end) = ends.front() {
            consider(*end);
        }
        consider(admit_at);
        if chain_left > 0 {
            consider(chain_ready);
        }
        if after_left > 0 && listing_left == 0 {
            consider(listing_end);
        }
        if free_left > 0 && !free_allowed {
            consider((t / MINUTE_US + 1) * MINUTE_US);
        }
        assert!(next != u64::MAX, "the simulation is stuck at {t} µs");
        t = next;
    }
    Schedule { starts, latency_us }
}

/// The fastest schedule found: [`simulate`] as it is, and, where a chain runs beside free
/// calls under a window, with free calls held back to each of the first two later minutes.
pub fn best_schedule(work: Work, limit: Limit, latency: Duration, concurrency: usize) -> Schedule {
    let greedy = simulate(work, limit, latency, concurrency, &[]);
    if work.chain == 0 || work.free == 0 || !matches!(limit, Limit::Window { .. }) {
        return greedy;
    }
    let minutes = (greedy.makespan().as_micros() as u64 / MINUTE_US) as usize;
    let mut best = greedy;
    let mut try_holdback = |holdback: &[usize]| {
        let s = simulate(work, limit, latency, concurrency, holdback);
        if s.makespan() < best.makespan() {
            best = s;
        }
    };
    match minutes {
        0 => {}
        1 => (0..=work.free).for_each(|q| try_holdback(&[q])),
        _ => {
            for q0 in 0..=work.free {
                for q1 in q0..=work.free {
                    try_holdback(&[q0, q1]);
                }
            }
        }
    }
    best
}

/// The ideal in seconds.
pub fn ideal_seconds(work: Work, limit: Limit, latency: Duration, concurrency: usize) -> f64 {
    best_schedule(work, limit, latency, concurrency).seconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS50: Duration = Duration::from_millis(50);

    fn ms(s: &Schedule) -> u128 {
        s.makespan().as_millis()
    }

    fn free(n: usize) -> Work {
        Work {
            free: n,
            ..Work::default()
        }
    }

    /// Replays `s` against every rule independently of the simulation.
    fn assert_feasible(s: &Schedule, work: Work, limit: Limit, concurrency: usize) {
        let l = s.latency_us;
        let count = |k: Kind| s.starts.iter().filter(|(_, x)| *x == k).count();
        assert_eq!(
            (count(Kind::Chain), count(Kind::Free), count(Kind::After)),
            (work.chain, work.free, work.after)
        );
        let times: Vec<u64> = s.starts.iter().map(|(t, _)| *t).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "in start order");
        for (i, t) in times.iter().enumerate() {
            let in_flight = times[..i].iter().filter(|u| *u + l > *t).count();
            assert!(in_flight < concurrency, "call {i} at {t}: {in_flight} in flight");
        }
        let chain: Vec<u64> = s
            .starts
            .iter()
            .filter(|(_, k)| *k == Kind::Chain)
            .map(|(t, _)| *t)
            .collect();
        assert!(
            chain.windows(2).all(|w| w[1] >= w[0] + l),
            "a page after the previous answer"
        );
        let listing_end = s
            .starts
            .iter()
            .filter(|(_, k)| *k != Kind::After)
            .map(|(t, _)| t + l)
            .max()
            .unwrap_or(0);
        assert!(s
            .starts
            .iter()
            .filter(|(_, k)| *k == Kind::After)
            .all(|(t, _)| *t >= listing_end));
        match limit {
            Limit::None => {}
            Limit::Window { per_minute } => {
                for (i, t) in times.iter().enumerate() {
                    let earlier = times[..i].iter().filter(|u| *t - **u < MINUTE_US).count();
                    assert!(
                        earlier < per_minute as usize,
                        "call {i} at {t}: {earlier} in the window"
                    );
                }
            }
            Limit::Bucket { per_minute, burst } => {
                // Floating point, as the emulator counts.
                let rate = f64::from(per_minute) / 60e6;
                let (mut tokens, mut at) = (f64::from(burst), times[0]);
                for t in &times {
                    tokens = (tokens + (t - at) as f64 * rate).min(f64::from(burst));
                    at = *t;
                    assert!(tokens >= 1.0 - 1e-9, "no token at {t}: {tokens}");
                    tokens -= 1.0;
                }
            }
        }
    }

    #[test]
    fn a_window_lets_its_budget_go_at_once_and_the_rest_as_it_slides() {
        let window = Limit::Window { per_minute: 200 };
        // Fewer calls than the budget: only the latency binds, 25 rounds of 4.
        assert_eq!(ms(&best_schedule(free(100), window, MS50, 4)), 1250);
        // 200 in 50 rounds, then call 201 when call 1 leaves the window, at 60 s, and 25
        // more rounds: 61.25 s (the figure).
        let s = best_schedule(free(300), window, MS50, 4);
        assert_eq!(ms(&s), 61_250);
        assert_eq!(s.starts[199].0, 49 * 50_000);
        assert_eq!(s.starts[200].0, MINUTE_US);
        assert_feasible(&s, free(300), window, 4);
    }

    #[test]
    fn without_a_limit_the_latency_and_the_calls_in_flight_bind() {
        assert_eq!(
            ms(&best_schedule(free(100), Limit::None, Duration::from_millis(200), 4)),
            5000
        );
        assert_eq!(
            ms(&best_schedule(free(101), Limit::None, Duration::from_millis(200), 4)),
            5200
        );
        let chain = Work {
            chain: 10,
            ..Work::default()
        };
        assert_eq!(ms(&best_schedule(chain, Limit::None, MS50, 4)), 500);
    }

    #[test]
    fn a_bucket_gives_its_burst_then_a_call_per_token() {
        // 200 a minute: a token every 0.3 s. The burst of 20 goes in 5 rounds; call k > 20
        // waits for token k - 20, at (k - 20) x 0.3 s; call 300 at 84.0 s, answered 84.05 s.
        let bucket = Limit::Bucket {
            per_minute: 200,
            burst: 20,
        };
        let s = best_schedule(free(300), bucket, MS50, 4);
        assert_eq!(ms(&s), 84_050);
        assert_eq!(s.starts[19].0, 200_000);
        assert_eq!(s.starts[20].0, 300_000);
        assert_feasible(&s, free(300), bucket, 4);
        // A burst of 1: one call per token from the start.
        let slow = Limit::Bucket {
            per_minute: 60,
            burst: 1,
        };
        assert_eq!(ms(&best_schedule(free(5), slow, MS50, 4)), 4050);
    }

    #[test]
    fn a_backup_lists_then_archives() {
        // The 50,000-file backup under 1200/min: 500 pages one after the other (25 s), the
        // folder pages beside them, then 50 archive calls in 13 rounds.
        let work = Work {
            chain: 500,
            free: 2,
            after: 50,
        };
        let window = Limit::Window { per_minute: 1200 };
        let s = best_schedule(work, window, MS50, 4);
        assert_eq!(ms(&s), 25_650);
        assert_feasible(&s, work, window, 4);
    }

    #[test]
    fn holding_free_calls_back_can_beat_spending_them_at_once() {
        // 421 listing calls and 30 archive calls under 200 a minute: no schedule ends before
        // 120.70 s — the 401st to 421st calls start no sooner than 120 s + 5 rounds (each
        // start is at least 60 s after the one 200 earlier, and the first 21 take 6 rounds),
        // then 30 archive calls take 8 rounds. Spending the folder calls at once leaves the
        // chain alone, one call per 50 ms, in the next minutes: 122.55 s.
        let work = Work {
            chain: 300,
            free: 121,
            after: 30,
        };
        let window = Limit::Window { per_minute: 200 };
        let greedy = simulate(work, window, MS50, 4, &[]);
        assert_eq!(ms(&greedy), 122_550);
        let best = best_schedule(work, window, MS50, 4);
        assert_eq!(ms(&best), 120_700);
        assert_feasible(&greedy, work, window, 4);
        assert_feasible(&best, work, window, 4);
    }

    #[test]
    fn every_schedule_keeps_every_rule() {
        let limits = [
            Limit::None,
            Limit::Window { per_minute: 7 },
            Limit::Window { per_minute: 200 },
            Limit::Bucket {
                per_minute: 200,
                burst: 20,
            },
            Limit::Bucket {
                per_minute: 45,
                burst: 3,
            },
        ];
        let works = [
            free(37),
            Work {
                chain: 13,
                free: 9,
                after: 5,
            },
            Work {
                chain: 40,
                free: 0,
                after: 11,
            },
        ];
        for limit in limits {
            for work in works {
                for c in [1, 3, 4] {
                    let s = best_schedule(work, limit, Duration::from_millis(70), c);
                    assert_feasible(&s, work, limit, c);
                }
            }
        }
    }
}
