//! The event bus as the host's API shows it: publishing, subscribing the
//! application and event-handler plugins, delivery counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::events::{Event, SubscriberStats};
use crate::locks::lock;
use crate::plugin::Plugin;

use super::Warden;

impl Warden {
    /// Puts `event` on the event bus: every subscriber whose patterns match
    /// (event-handler plugins and the application's callbacks) gets it
    /// through its own queue. Returns how many took it (0 when the event is
    /// refused: hop count or payload over the bus's limits); never waits.
    pub fn publish(&self, event: Event) -> usize {
        self.core.bus.publish(event).unwrap_or(0)
    }

    /// Delivers `event` straight to every event-handler plugin subscribed
    /// to its type and waits for each one's outcome, bypassing the bus
    /// queues (for tools and tests; the application's callbacks are not
    /// called). Events the plugins emit meanwhile go onto the bus.
    pub async fn dispatch_event(&self, event: &Event) -> Vec<(String, Result<()>)> {
        let mut outcomes = Vec::new();
        for plugin in self.registry.stables() {
            if plugin.info().world != crate::World::EventHandler {
                continue;
            }
            let wanted = match plugin.subscriptions().await {
                Ok(patterns) => patterns.iter().any(|p| event.matches(p)),
                Err(e) => {
                    outcomes.push((plugin.name().to_string(), Err(e)));
                    continue;
                }
            };
            if wanted {
                outcomes.push((plugin.name().to_string(), plugin.on_event(event).await));
            }
        }
        outcomes
    }

    /// Calls `f` with every event on the bus, on a thread of this
    /// subscription's own (see [`Warden::subscribe_to`]).
    pub fn subscribe(&self, f: impl Fn(&Event) + Send + Sync + 'static) -> Result<()> {
        self.subscribe_to(&["*"], f)
    }

    /// Calls `f` with every event on the bus whose type matches one of
    /// `patterns` (`order.created`, `order.*`, `*`). Calls happen in order
    /// on a thread of this subscription's own, fed by a bounded queue: a
    /// slow `f` only delays (and, once its queue is full, drops) its own
    /// events. A panic in `f` counts as a failed delivery.
    pub fn subscribe_to(
        &self,
        patterns: &[&str],
        f: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Result<()> {
        for p in patterns {
            crate::events::validate_pattern(p).map_err(Error::Host)?;
        }
        let bus = &self.core.bus;
        bus.subscribe(
            bus.host_subscriber_name(),
            patterns.iter().map(|p| p.to_string()).collect(),
            Box::new(move |e| {
                f(e);
                Ok(())
            }),
        )
    }

    /// Subscribes an event-handler plugin to the bus.
    pub(crate) fn subscribe_plugin(&self, plugin: &Plugin, patterns: Vec<String>) -> Result<()> {
        let core = self.core.clone();
        let target = Arc::new(Mutex::new(plugin.clone()));
        let slot = target.clone();
        self.core.bus.subscribe(
            plugin_subscriber(plugin.name()),
            patterns,
            Box::new(move |event| {
                // The build that serves now; if a reload retires it before
                // the delivery begins, the event goes to its successor.
                let mut outcome = None;
                for _ in 0..3 {
                    let current = lock(&slot).clone();
                    outcome = core
                        .block_on("event delivery", async { Ok(current.deliver(event).await) })
                        .unwrap_or_else(|e| Some(Err(e)));
                    if outcome.is_some() {
                        break;
                    }
                }
                match outcome {
                    Some(result) => result.map_err(|e| e.to_string()),
                    None => Err("the plugin was unloaded".into()),
                }
            }),
        )?;
        lock(&self.event_targets).insert(plugin.name().to_string(), target);
        Ok(())
    }

    /// Ends the event subscription of plugin `name`, if it has one.
    pub(crate) fn unsubscribe_plugin(&self, name: &str) {
        lock(&self.event_targets).remove(name);
        self.core.bus.unsubscribe(&plugin_subscriber(name));
    }

    /// Points plugin `next`'s event subscription (if any) at it, with its
    /// patterns: events already queued go to the new build.
    pub(crate) fn retarget_events(
        &self,
        next: &Plugin,
        patterns: Option<Vec<String>>,
    ) -> Result<()> {
        let slot = lock(&self.event_targets).get(next.name()).cloned();
        match (slot, patterns) {
            (Some(slot), Some(patterns)) => {
                *lock(&slot) = next.clone();
                self.core
                    .bus
                    .set_patterns(&plugin_subscriber(next.name()), patterns);
                Ok(())
            }
            (Some(_), None) => {
                self.unsubscribe_plugin(next.name());
                Ok(())
            }
            (None, Some(patterns)) => self.subscribe_plugin(next, patterns),
            (None, None) => Ok(()),
        }
    }

    /// Delivery counts of every subscriber of the event bus.
    pub fn event_stats(&self) -> Vec<SubscriberStats> {
        self.core.bus.stats()
    }

    /// Waits until the event bus is idle: every queued event delivered,
    /// including events emitted by those deliveries. Gives up after
    /// `timeout`; returns whether it became idle.
    pub async fn settle_events(&self, timeout: Duration) -> bool {
        self.core.bus.settle(timeout).await
    }
}

/// The event-bus subscriber name of plugin `name`.
pub(super) fn plugin_subscriber(name: &str) -> String {
    format!("plugin:{name}")
}
