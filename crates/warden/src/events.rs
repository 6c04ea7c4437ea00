//! The host's event bus: events emitted by plugins (and by the application)
//! reach the subscribers registered with [`crate::Warden::subscribe`].

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::locks::{read, write};

/// An event, as plugins emit and receive it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// A dotted name such as `order.created`.
    pub event_type: String,
    /// The event's data, usually JSON.
    #[serde(with = "payload_text")]
    pub payload: Vec<u8>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The emitting plugin's name, or `host`.
    pub source: String,
}

impl Event {
    /// A new event stamped with the current time.
    pub fn new(event_type: impl Into<String>, payload: impl Into<Vec<u8>>, source: &str) -> Self {
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Event {
            event_type: event_type.into(),
            payload: payload.into(),
            timestamp_ms,
            source: source.to_string(),
        }
    }

    /// Whether `pattern` (an exact type, a `prefix.*`, or `*`) selects this event.
    pub fn matches(&self, pattern: &str) -> bool {
        pattern == "*"
            || pattern == self.event_type
            || pattern.strip_suffix(".*").is_some_and(|prefix| {
                self.event_type
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
    }
}

type Subscriber = Arc<dyn Fn(&Event) + Send + Sync>;

/// Fans events out to the host's subscribers.
#[derive(Default)]
pub(crate) struct EventBus {
    subscribers: RwLock<Vec<Subscriber>>,
}

impl EventBus {
    pub(crate) fn subscribe(&self, f: Subscriber) {
        write(&self.subscribers).push(f);
    }

    /// Hands `event` to every subscriber. A subscriber that panics is logged
    /// and skipped; it cannot unwind into the plugin call that emitted.
    pub(crate) fn publish(&self, event: Event) {
        tracing::debug!(event_type = %event.event_type, source = %event.source, bytes = event.payload.len(), "event");
        let subscribers = read(&self.subscribers).clone();
        for s in subscribers {
            if std::panic::catch_unwind(AssertUnwindSafe(|| s(&event))).is_err() {
                tracing::error!(event_type = %event.event_type, "an event subscriber panicked");
            }
        }
    }
}

mod payload_text {
    pub fn serialize<S: serde::Serializer>(p: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_types() {
        let e = Event::new("order.created", b"{}".to_vec(), "host");
        assert!(e.matches("*"));
        assert!(e.matches("order.created"));
        assert!(e.matches("order.*"));
        assert!(!e.matches("ord.*"));
        assert!(!e.matches("order.updated"));
        assert!(!Event::new("orders.x", vec![], "host").matches("order.*"));
    }
}
