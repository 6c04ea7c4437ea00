//! The lifecycle of one loaded build of a plugin: the states it goes
//! through (loading → initializing → ready → draining → unloaded, or
//! errored / quarantined) and a bounded log of its transitions, each
//! logged as it happens.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;

use crate::locks::lock;

/// Where a loaded build of a plugin is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum State {
    /// Compiled and linked; no instance yet.
    Loading,
    /// Its first instance is running `initialize`.
    Initializing,
    /// Taking calls.
    Ready,
    /// Takes no new calls; running calls finish, then instances shut down.
    Draining,
    /// Gone: every instance shut down.
    Unloaded,
    /// Failed to start, or failed its health checks (a restart follows).
    Errored,
    /// Crash-looping: calls are refused at once until the next restart
    /// attempt, which waits longer after each failure.
    Quarantined,
}

impl State {
    const ALL: [State; 7] = [
        State::Loading,
        State::Initializing,
        State::Ready,
        State::Draining,
        State::Unloaded,
        State::Errored,
        State::Quarantined,
    ];

    /// The state's name, as `warden status` shows it.
    pub fn name(self) -> &'static str {
        match self {
            State::Loading => "loading",
            State::Initializing => "initializing",
            State::Ready => "ready",
            State::Draining => "draining",
            State::Unloaded => "unloaded",
            State::Errored => "errored",
            State::Quarantined => "quarantined",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One change of state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// When it happened.
    #[serde(serialize_with = "crate::audit::rfc3339::serialize")]
    pub at: SystemTime,
    /// Why.
    pub reason: String,
}

/// How many transitions a build remembers; the oldest are dropped first.
const KEPT: usize = 64;

/// The state of one build and its recent transitions.
pub(crate) struct Lifecycle {
    state: AtomicU8,
    log: Mutex<VecDeque<Transition>>,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Lifecycle {
            state: AtomicU8::new(State::Loading as u8),
            log: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn get(&self) -> State {
        let raw = self.state.load(Ordering::Acquire);
        State::ALL
            .into_iter()
            .find(|s| *s as u8 == raw)
            .unwrap_or(State::Errored)
    }

    /// Moves to `to` (logged, and remembered with `reason`). A build that
    /// is unloaded stays unloaded.
    pub(crate) fn set(&self, plugin: &str, version: &str, to: State, reason: &str) {
        let mut log = lock(&self.log);
        let from = self.get();
        if from == to || from == State::Unloaded {
            return;
        }
        self.state.store(to as u8, Ordering::Release);
        match to {
            State::Errored | State::Quarantined => {
                tracing::warn!(plugin, version, %from, %to, reason, "plugin state changed")
            }
            _ => tracing::info!(plugin, version, %from, %to, reason, "plugin state changed"),
        }
        if log.len() == KEPT {
            log.pop_front();
        }
        log.push_back(Transition {
            from,
            to,
            at: SystemTime::now(),
            reason: reason.to_string(),
        });
    }

    pub(crate) fn transitions(&self) -> Vec<Transition> {
        lock(&self.log).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_changes_and_stays_unloaded() {
        let life = Lifecycle::new();
        life.set("p", "1.0.0", State::Initializing, "first instance");
        life.set("p", "1.0.0", State::Ready, "initialized");
        life.set("p", "1.0.0", State::Ready, "again");
        life.set("p", "1.0.0", State::Unloaded, "gone");
        life.set("p", "1.0.0", State::Ready, "too late");
        assert_eq!(life.get(), State::Unloaded);
        let seen: Vec<_> = life.transitions().iter().map(|t| t.to).collect();
        assert_eq!(seen, [State::Initializing, State::Ready, State::Unloaded]);
    }

    #[test]
    fn keeps_a_bounded_log() {
        let life = Lifecycle::new();
        for i in 0..(KEPT * 2) {
            let to = if i % 2 == 0 {
                State::Errored
            } else {
                State::Ready
            };
            life.set("p", "1.0.0", to, "flap");
        }
        assert_eq!(life.transitions().len(), KEPT);
    }
}
