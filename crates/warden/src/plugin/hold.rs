//! Quarantine by an operator: a build that refuses every call until an
//! operator releases it, whatever the health monitor sees meanwhile.

use std::sync::atomic::Ordering;

use crate::lifecycle::State;
use crate::locks::lock;

use super::Plugin;

impl Plugin {
    /// Whether an operator quarantined this build (see [`crate::Warden::quarantine`]).
    pub fn held(&self) -> bool {
        self.inner.held.load(Ordering::SeqCst)
    }

    /// Refuses this build's calls; running calls
    /// finish. The health monitor leaves a held build alone until
    /// [`Plugin::end_quarantine`].
    pub(crate) fn hold(&self, reason: &str) {
        self.inner.held.store(true, Ordering::SeqCst);
        self.set_state(State::Quarantined, reason);
    }

    /// Ends a quarantine, an operator's or the health monitor's: the build
    /// takes calls again (and is quarantined again if it keeps failing).
    /// False when it was not quarantined.
    pub(crate) fn end_quarantine(&self, reason: &str) -> bool {
        if self.state() != State::Quarantined {
            return false;
        }
        self.inner.held.store(false, Ordering::SeqCst);
        *lock(&self.inner.quarantined_until) = None;
        self.set_state(State::Ready, reason);
        true
    }
}
