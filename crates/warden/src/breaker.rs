//! The circuit breaker of one plugin version. It opens after a run of
//! consecutive failed calls or when the failure rate over a window is too
//! high; while open, calls are refused at once; after a cool-down it lets
//! one trial call through (half-open), and that call's outcome closes or
//! reopens it. Failures are the plugin's faults (traps and timeouts), not
//! errors it returns on purpose.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::locks::lock;

/// When a version's circuit breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Opens after this many failed calls in a row (0: never for this reason).
    pub consecutive_failures: u32,
    /// Opens when more than this share of calls in a window failed (1.0: never).
    pub failure_rate: f64,
    /// The window the failure rate is measured over.
    pub window: Duration,
    /// The failure rate counts only once a window has this many calls.
    pub min_calls: u32,
    /// How long it stays open before a trial call is let through.
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            min_calls: 20,
            cool_down: Duration::from_secs(5),
        }
    }
}

impl BreakerSettings {
    /// A breaker that never opens.
    pub fn disabled() -> Self {
        BreakerSettings {
            consecutive_failures: 0,
            failure_rate: 1.0,
            ..Self::default()
        }
    }
}

/// The position of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One trial call is under way; others are refused until it ends.
    HalfOpen,
}

/// Whether a call may go ahead, and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    Normal,
    /// The one call of a half-open breaker; its outcome decides.
    Trial,
}

pub(crate) struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

struct Inner {
    state: BreakerState,
    opened_at: Instant,
    consecutive: u32,
    window_start: Instant,
    window_calls: u32,
    window_failures: u32,
}

impl Breaker {
    pub(crate) fn new(settings: BreakerSettings) -> Self {
        let now = Instant::now();
        Breaker {
            settings,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                opened_at: now,
                consecutive: 0,
                window_start: now,
                window_calls: 0,
                window_failures: 0,
            }),
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        lock(&self.inner).state
    }

    /// Admits a call, or says how long until one may be tried.
    pub(crate) fn admit(&self, now: Instant) -> Result<Admit, Duration> {
        let mut b = lock(&self.inner);
        match b.state {
            BreakerState::Closed => Ok(Admit::Normal),
            BreakerState::Open => match b.opened_at.checked_add(self.settings.cool_down) {
                Some(reopens) if now >= reopens => {
                    b.state = BreakerState::HalfOpen;
                    Ok(Admit::Trial)
                }
                Some(reopens) => Err(reopens - now),
                // A cool-down too long to represent: open for good.
                None => Err(self.settings.cool_down),
            },
            BreakerState::HalfOpen => Err(self.settings.cool_down),
        }
    }

    /// Gives up a trial call that ended without an outcome (cancelled, or
    /// handed back unrun): the breaker opens again for a cool-down, so
    /// that another trial follows instead of refusing calls for good.
    pub(crate) fn abandon_trial(&self, now: Instant) {
        let mut b = lock(&self.inner);
        if b.state == BreakerState::HalfOpen {
            b.state = BreakerState::Open;
            b.opened_at = now;
        }
    }

    /// Records the outcome of a call `admit` let through; returns the new
    /// state when this call changed it.
    pub(crate) fn record(&self, admit: Admit, failed: bool, now: Instant) -> Option<BreakerState> {
        let s = &self.settings;
        let mut b = lock(&self.inner);
        if now.duration_since(b.window_start) >= s.window {
            b.window_start = now;
            b.window_calls = 0;
            b.window_failures = 0;
        }
        b.window_calls += 1;
        if failed {
            b.window_failures += 1;
            b.consecutive += 1;
        } else {
            b.consecutive = 0;
        }
        let before = b.state;
        let trips = (s.consecutive_failures > 0 && b.consecutive >= s.consecutive_failures)
            || (b.window_calls >= s.min_calls.max(1)
                && f64::from(b.window_failures) > s.failure_rate * f64::from(b.window_calls));
        b.state = match (admit, failed) {
            (Admit::Trial, true) => BreakerState::Open,
            (Admit::Trial, false) => BreakerState::Closed,
            (Admit::Normal, _) if b.state == BreakerState::Closed && trips => BreakerState::Open,
            (Admit::Normal, _) => b.state,
        };
        if b.state == BreakerState::Open && before != BreakerState::Open {
            b.opened_at = now;
        }
        if b.state == BreakerState::Closed && before != BreakerState::Closed {
            b.consecutive = 0;
            b.window_start = now;
            b.window_calls = 0;
            b.window_failures = 0;
        }
        (b.state != before).then_some(b.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 3,
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            min_calls: 10,
            cool_down: Duration::from_secs(1),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_half_opens_after_cool_down() {
        let b = Breaker::new(settings());
        let t = Instant::now();
        assert_eq!(b.record(Admit::Normal, true, t), None);
        assert_eq!(b.record(Admit::Normal, false, t), None);
        b.record(Admit::Normal, true, t);
        b.record(Admit::Normal, true, t);
        assert_eq!(b.record(Admit::Normal, true, t), Some(BreakerState::Open));
        let wait = b.admit(t + Duration::from_millis(400)).expect_err("open");
        assert_eq!(wait, Duration::from_millis(600));
        let trial = b.admit(t + Duration::from_secs(1)).expect("trial");
        assert_eq!(trial, Admit::Trial);
        assert!(
            b.admit(t + Duration::from_secs(1)).is_err(),
            "one trial at a time"
        );
        assert_eq!(
            b.record(trial, true, t + Duration::from_secs(1)),
            Some(BreakerState::Open)
        );
        let trial = b.admit(t + Duration::from_secs(2)).expect("trial");
        assert_eq!(
            b.record(trial, false, t + Duration::from_secs(2)),
            Some(BreakerState::Closed)
        );
        assert_eq!(b.admit(t + Duration::from_secs(2)), Ok(Admit::Normal));
    }

    #[test]
    fn opens_on_failure_rate_over_a_window() {
        let b = Breaker::new(settings());
        let t = Instant::now();
        // Alternating: never three in a row, but 6 of 11 fail.
        for i in 0..10 {
            assert_eq!(b.record(Admit::Normal, i % 2 == 0, t), None, "call {i}");
        }
        assert_eq!(b.record(Admit::Normal, true, t), Some(BreakerState::Open));
    }

    #[test]
    fn a_new_window_forgets_old_failures() {
        let b = Breaker::new(settings());
        let t = Instant::now();
        for i in 0..9 {
            b.record(Admit::Normal, i % 2 == 0, t);
        }
        let later = t + Duration::from_secs(11);
        assert_eq!(b.record(Admit::Normal, false, later), None);
        assert_eq!(b.record(Admit::Normal, true, later), None);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn an_abandoned_trial_reopens_the_breaker() {
        let b = Breaker::new(settings());
        let t = Instant::now();
        for _ in 0..3 {
            b.record(Admit::Normal, true, t);
        }
        let later = t + Duration::from_secs(1);
        assert_eq!(b.admit(later), Ok(Admit::Trial));
        b.abandon_trial(later);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit(later).is_err());
        assert_eq!(b.admit(later + Duration::from_secs(1)), Ok(Admit::Trial));
    }

    #[test]
    fn disabled_never_opens() {
        let b = Breaker::new(BreakerSettings::disabled());
        let t = Instant::now();
        for _ in 0..100 {
            assert_eq!(b.record(Admit::Normal, true, t), None);
        }
    }
}
