//! The host budget of one plugin instance: the host memory it may make the
//! host hold on its behalf.
//!
//! An instance's handles live in its resource table, capped at
//! `limits.max-resources`; every handle's own buffers are capped too (see
//! [`crate::limits::HANDLE_BYTES`]), so their share is set aside up front.
//! What is left, [`crate::Limits::transfer_bytes`], bounds what the host
//! holds for the instance outside a handle: outbound HTTP requests in
//! flight (their connections and buffers) are charged to it as they are
//! sent, and no single host call may copy more than it out of the guest
//! (wasmtime's hostcall fuel). A charge is a [`Charge`] guard, given back
//! when dropped; one that does not fit fails with [`HostTrap`], which ends
//! the call as a `host-resource-limit` trap. What else the host keeps for a
//! plugin is bounded where it is kept (name lookups by their slots, guest
//! output by the longest line, events by their queues).
//!
//! The budget belongs to the instance, not to one call: what a reused
//! instance keeps from call to call stays charged, so leaking across calls
//! runs into the same wall as flooding within one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::TrapKind;

/// One instance's host-memory budget for transfers.
#[derive(Debug)]
pub(crate) struct HostBudget {
    limit: u64,
    used: AtomicU64,
}

impl HostBudget {
    pub(crate) fn new(limit: u64) -> Arc<Self> {
        Arc::new(HostBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Takes `bytes` for `what` (a short description: "an outbound HTTP
    /// request"); refused when it does not fit.
    pub(crate) fn charge(self: &Arc<Self>, bytes: u64, what: &str) -> Result<Charge, HostTrap> {
        let taken = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|n| *n <= self.limit)
            });
        match taken {
            Ok(_) => Ok(Charge {
                budget: self.clone(),
                bytes,
            }),
            Err(used) => Err(HostTrap::resource_limit(format!(
                "{what} needs {bytes} bytes of host memory, and the instance already holds \
                 {used} of the {} it may (`limits.host-memory-mb`, less {} KiB per handle of \
                 `limits.max-resources`)",
                self.limit,
                crate::limits::HANDLE_BYTES >> 10
            ))),
        }
    }
}

/// Bytes taken from a [`HostBudget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<HostBudget>,
    bytes: u64,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// A trap the host raises from a host function: a limit the instance went
/// past, or a capability it was not granted. Its message names the limit
/// and what to change; the trap report gives its kind.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HostTrap {
    pub(crate) kind: TrapKind,
    pub(crate) message: String,
}

impl HostTrap {
    /// The instance went past one of its host budgets.
    pub(crate) fn resource_limit(message: String) -> Self {
        HostTrap {
            kind: TrapKind::HostResourceLimit,
            message,
        }
    }

    /// The instance called a capability its permissions do not include.
    pub(crate) fn not_granted(message: String) -> Self {
        HostTrap {
            kind: TrapKind::NotGranted,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_refused_past_the_limit_and_given_back_on_drop() {
        let budget = HostBudget::new(100);
        let a = budget.charge(60, "a").expect("fits");
        let refused = budget.charge(41, "a lookup").expect_err("over");
        assert_eq!(refused.kind, TrapKind::HostResourceLimit);
        assert!(
            refused.message.starts_with("a lookup needs 41 bytes")
                && refused.message.contains("holds 60 of the 100"),
            "{}",
            refused.message
        );
        let b = budget.charge(40, "b").expect("fits exactly");
        assert_eq!(budget.used.load(Ordering::SeqCst), 100);
        drop(a);
        drop(b);
        assert_eq!(budget.used.load(Ordering::SeqCst), 0);
    }
}
