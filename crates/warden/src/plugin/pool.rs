//! The idle instances of a plugin, oldest first, and which of them have
//! been idle too long.

use std::time::Instant;

use crate::instance::Instance;

/// Idle instances, each with the time it went idle, oldest first. Once
/// `closed` (the plugin is unloading), an instance that finishes a call is
/// shut down instead of put back.
#[derive(Default)]
pub(super) struct Pool {
    instances: Vec<(Instance, Instant)>,
    pub(super) closed: bool,
}

impl Pool {
    /// The instance that went idle last (its memory is the warmest).
    pub(super) fn pop(&mut self) -> Option<Instance> {
        self.instances.pop().map(|(instance, _)| instance)
    }

    pub(super) fn push(&mut self, instance: Instance) {
        self.instances.push((instance, Instant::now()));
    }

    pub(super) fn len(&self) -> usize {
        self.instances.len()
    }

    /// Takes out the instances idle for longer than `ttl`, keeping one.
    pub(super) fn expired(&mut self, ttl: std::time::Duration) -> Vec<Instance> {
        let keep_from = self
            .instances
            .iter()
            .take(self.instances.len().saturating_sub(1))
            .take_while(|(_, since)| since.elapsed() > ttl)
            .count();
        self.instances
            .drain(..keep_from)
            .map(|(instance, _)| instance)
            .collect()
    }

    /// Takes out every instance.
    pub(super) fn drain(&mut self) -> Vec<Instance> {
        std::mem::take(&mut self.instances)
            .into_iter()
            .map(|(instance, _)| instance)
            .collect()
    }
}
