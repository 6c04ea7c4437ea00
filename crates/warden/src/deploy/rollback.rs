//! Automatic rollback: while a canary runs, the calls of the stable and
//! the candidate version are compared over a window; when the candidate's
//! error rate (or p99 latency) is worse than the stable one's by more than
//! the policy allows, the candidate is rolled back and the reason recorded.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::locks::lock;
use crate::metrics::{BUCKETS, LatencyHistogram, bucket_of};

/// When a canary candidate is rolled back without anyone asking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollbackPolicy {
    /// Compare nothing until the candidate has this many calls in the window.
    pub min_calls: u64,
    /// Roll back when the candidate's error rate exceeds the stable
    /// version's by more than this (0.05: five percentage points).
    pub max_error_rate_increase: f64,
    /// Roll back when the candidate's p99 latency exceeds the stable
    /// version's times this (`None`: latency is not compared).
    pub max_p99_ratio: Option<f64>,
    /// The window calls are compared over; counts restart after it.
    pub window: Duration,
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        RollbackPolicy {
            min_calls: 100,
            max_error_rate_increase: 0.05,
            max_p99_ratio: None,
            window: Duration::from_secs(60),
        }
    }
}

impl RollbackPolicy {
    /// Never roll back automatically.
    pub fn disabled() -> Self {
        RollbackPolicy {
            min_calls: u64::MAX,
            max_error_rate_increase: f64::INFINITY,
            max_p99_ratio: None,
            ..Self::default()
        }
    }
}

/// Which side of a canary a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Stable,
    Candidate,
}

/// The comparison of one running canary.
pub(crate) struct CanaryWatch {
    policy: RollbackPolicy,
    window: Mutex<Window>,
    tripped: AtomicBool,
}

struct Window {
    started: Instant,
    stable: Tally,
    candidate: Tally,
}

#[derive(Clone, Copy)]
struct Tally {
    calls: u64,
    errors: u64,
    latency: [u64; BUCKETS],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            calls: 0,
            errors: 0,
            latency: [0; BUCKETS],
        }
    }
}

impl Tally {
    fn error_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.errors as f64 / self.calls as f64
        }
    }

    fn p99(&self) -> Duration {
        LatencyHistogram::from_counts(self.latency.to_vec(), 0).quantile(0.99)
    }
}

impl CanaryWatch {
    pub(crate) fn new(policy: RollbackPolicy) -> Self {
        CanaryWatch {
            policy,
            window: Mutex::new(Window {
                started: Instant::now(),
                stable: Tally::default(),
                candidate: Tally::default(),
            }),
            tripped: AtomicBool::new(false),
        }
    }

    /// Counts one call; returns why to roll back, once, when the
    /// candidate crosses the policy's thresholds.
    pub(crate) fn record(&self, side: Side, failed: bool, elapsed: Duration) -> Option<String> {
        let p = &self.policy;
        let mut w = lock(&self.window);
        let now = Instant::now();
        if now.duration_since(w.started) >= p.window {
            w.started = now;
            w.stable = Tally::default();
            w.candidate = Tally::default();
        }
        let tally = match side {
            Side::Stable => &mut w.stable,
            Side::Candidate => &mut w.candidate,
        };
        tally.calls += 1;
        tally.errors += u64::from(failed);
        tally.latency[bucket_of(elapsed).0] += 1;
        let (stable, candidate) = (w.stable, w.candidate);
        drop(w);
        if side != Side::Candidate || candidate.calls < p.min_calls {
            return None;
        }
        let (bad, good) = (candidate.error_rate(), stable.error_rate());
        let reason = if bad - good > p.max_error_rate_increase {
            Some(format!(
                "error rate {:.1}% against {:.1}% for stable over {} candidate calls \
                 (allowed: +{:.1} points)",
                bad * 100.0,
                good * 100.0,
                candidate.calls,
                p.max_error_rate_increase * 100.0
            ))
        } else {
            p.max_p99_ratio
                .filter(|_| stable.calls >= p.min_calls)
                .and_then(|ratio| {
                    let (slow, fast) = (candidate.p99(), stable.p99());
                    (slow.as_secs_f64() > fast.as_secs_f64() * ratio).then(|| {
                        format!(
                            "p99 latency {slow:?} against {fast:?} for stable (allowed: ×{ratio})"
                        )
                    })
                })
        }?;
        (!self.tripped.swap(true, Ordering::SeqCst)).then_some(reason)
    }

    /// Lets the watch trip again (when a rollback it asked for could not run).
    pub(crate) fn rearm(&self) {
        self.tripped.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RollbackPolicy {
        RollbackPolicy {
            min_calls: 10,
            max_error_rate_increase: 0.2,
            max_p99_ratio: Some(4.0),
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn trips_once_on_error_rate() {
        let w = CanaryWatch::new(policy());
        let fast = Duration::from_micros(100);
        for _ in 0..50 {
            assert_eq!(w.record(Side::Stable, false, fast), None);
        }
        for i in 0..9 {
            assert_eq!(w.record(Side::Candidate, true, fast), None, "call {i}");
        }
        let why = w.record(Side::Candidate, true, fast).expect("trips");
        assert!(why.contains("100.0%"), "{why}");
        assert_eq!(w.record(Side::Candidate, true, fast), None, "only once");
        w.rearm();
        assert!(w.record(Side::Candidate, true, fast).is_some());
    }

    #[test]
    fn tolerates_what_stable_also_does() {
        let w = CanaryWatch::new(policy());
        let fast = Duration::from_micros(100);
        for i in 0..100 {
            assert_eq!(w.record(Side::Stable, i % 2 == 0, fast), None);
            assert_eq!(w.record(Side::Candidate, i % 2 == 1, fast), None);
        }
    }

    #[test]
    fn trips_on_p99() {
        let w = CanaryWatch::new(policy());
        for _ in 0..20 {
            assert_eq!(
                w.record(Side::Stable, false, Duration::from_micros(100)),
                None
            );
        }
        let mut tripped = None;
        for _ in 0..20 {
            tripped = tripped.or(w.record(Side::Candidate, false, Duration::from_millis(20)));
        }
        assert!(tripped.expect("trips").contains("p99"));
    }
}
