//! The host's event bus: events emitted by plugins (and published by the
//! application) reach every subscriber whose patterns match, through a
//! bounded queue per subscriber drained by its own thread.
//!
//! Subscribers are the application's callbacks ([`crate::Warden::subscribe`])
//! and event-handler plugins (their manifest's `subscribe`). Publishing never
//! waits: a full queue drops the event for that subscriber only, and a
//! subscriber that fails or panics only fails its own deliveries. Both are
//! counted ([`SubscriberStats`]) and logged. An event emitted while handling
//! an event is one hop further; past [`EventSettings::max_hops`] it is dropped,
//! so plugins that answer each other's events cannot loop forever. No one
//! source (a plugin, the HTTP API, the application) may hold more than three
//! quarters of a subscriber's queue, in events or bytes: one flooding
//! source cannot crowd out the events of the others.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::locks::{lock, read, write};

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
    /// How many event deliveries led to this event: 0 for an event from the
    /// application or from a plugin's `process`, n + 1 for one emitted while
    /// handling an event of hop n.
    pub hops: u32,
}

impl Event {
    /// A new event (hop 0) stamped with the current time.
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
            hops: 0,
        }
    }

    /// Checks an event type before anything is published with it: dotted
    /// parts of letters, digits, `-` and `_` (`order.created`), at most 128
    /// bytes; the error says what is wrong.
    pub fn check_type(event_type: &str) -> std::result::Result<(), String> {
        validate_type(event_type)
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

/// The longest event type, in bytes.
pub(crate) const MAX_EVENT_TYPE: usize = 128;

/// Checks an event type: dotted parts of letters, digits, `-` and `_`
/// (`order.created`), at most [`MAX_EVENT_TYPE`] bytes.
fn validate_type(event_type: &str) -> std::result::Result<(), String> {
    if event_type.len() > MAX_EVENT_TYPE {
        return Err(format!(
            "the event type is {} bytes, more than the {MAX_EVENT_TYPE} allowed",
            event_type.len()
        ));
    }
    if event_type == "*" || event_type.ends_with(".*") {
        return Err(format!("`{event_type}` is a pattern, not an event type"));
    }
    validate_pattern(event_type).map_err(|_| {
        format!("`{event_type}` is not an event type: write dotted names such as `order.created`")
    })
}

/// Checks a subscription pattern: `*`, an event type, or `prefix.*`.
pub(crate) fn validate_pattern(pattern: &str) -> std::result::Result<(), String> {
    let name = pattern.strip_suffix(".*").unwrap_or(pattern);
    let ok = pattern == "*"
        || (!name.is_empty()
            && name.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "`{pattern}` is not an event pattern: write `*`, `order.created` or `order.*`"
        )),
    }
}

/// How the bus queues and forwards events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSettings {
    /// Events waiting per subscriber (at least 1); more are dropped for that
    /// subscriber. One source may hold three quarters of them (and of
    /// `queue_bytes`), the rest being kept for the others.
    pub queue_capacity: usize,
    /// Payload bytes waiting per subscriber; more are dropped for that
    /// subscriber.
    pub queue_bytes: u64,
    /// The largest payload an event may carry; larger ones are refused.
    pub max_payload_bytes: usize,
    /// The highest hop count an event may have; deeper events are dropped.
    pub max_hops: u32,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            queue_capacity: 1024,
            queue_bytes: 16 << 20,
            max_payload_bytes: 1 << 20,
            max_hops: 8,
        }
    }
}

/// Delivery counts of one subscriber.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubscriberStats {
    /// `plugin:<name>` for a plugin, `host#<n>` for an application callback.
    pub subscriber: String,
    /// The event patterns it receives.
    pub patterns: Vec<String>,
    /// Events handled successfully.
    pub delivered: u64,
    /// Events dropped because its queue was full (or it went away).
    pub dropped: u64,
    /// Events whose delivery failed (an error, a trap, a panic).
    pub failed: u64,
    /// Events waiting or being delivered right now.
    pub queued: u64,
}

/// Hands one event to a subscriber; an error is counted as a failed delivery.
pub(crate) type Deliver = Box<dyn FnMut(&Event) -> std::result::Result<(), String> + Send>;

/// Why an event was not published.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotPublished {
    /// It is more than `max_hops` deliveries away from its origin.
    TooManyHops { max: u32 },
    /// Its payload is larger than `max_payload_bytes`.
    TooLarge { max: usize },
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    queued: AtomicU64,
    queued_bytes: AtomicU64,
    /// Events and payload bytes queued per source.
    by_source: Mutex<HashMap<String, (u64, u64)>>,
    /// Set when the subscriber is removed: what is still queued is dropped.
    closed: AtomicBool,
}

impl Counters {
    /// Takes a place for an event of `bytes` from `source`, unless that
    /// source already holds three quarters of the queue (in events or in
    /// bytes), the rest being kept for the other sources.
    fn take_share(&self, source: &str, bytes: u64, settings: &EventSettings) -> bool {
        let share = |total: u64| total - total / 4;
        let mut by_source = lock(&self.by_source);
        let (events, held) = by_source.get(source).copied().unwrap_or((0, 0));
        let fits = events < share(settings.queue_capacity.max(1) as u64)
            && held.saturating_add(bytes) <= share(settings.queue_bytes);
        if fits {
            by_source.insert(source.to_string(), (events + 1, held + bytes));
        }
        fits
    }

    /// Gives back the place of a delivered (or dropped) event.
    fn give_share(&self, source: &str, bytes: u64) {
        let mut by_source = lock(&self.by_source);
        if let Some((events, held)) = by_source.get_mut(source) {
            *events = events.saturating_sub(1);
            *held = held.saturating_sub(bytes);
            if *events == 0 {
                by_source.remove(source);
            }
        }
    }
}

struct Subscriber {
    name: String,
    patterns: Vec<String>,
    queue: SyncSender<Event>,
    counters: Arc<Counters>,
}

/// Fans events out to the subscribers' queues.
pub(crate) struct EventBus {
    settings: EventSettings,
    subscribers: RwLock<Vec<Subscriber>>,
    next_host_id: AtomicU64,
    /// Events queued or in delivery, over all subscribers. One counter, so
    /// that an event a delivery emits is counted before that delivery ends.
    in_flight: Arc<AtomicU64>,
}

impl EventBus {
    /// A bus without subscribers.
    pub(crate) fn new(settings: EventSettings) -> Self {
        EventBus {
            settings,
            subscribers: RwLock::new(Vec::new()),
            next_host_id: AtomicU64::new(1),
            in_flight: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The name for the next application callback.
    pub(crate) fn host_subscriber_name(&self) -> String {
        format!("host#{}", self.next_host_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Adds a subscriber that receives the events matching `patterns`, on a
    /// thread of its own.
    pub(crate) fn subscribe(
        &self,
        name: String,
        patterns: Vec<String>,
        deliver: Deliver,
    ) -> Result<()> {
        let (queue, rx) = std::sync::mpsc::sync_channel(self.settings.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let worker = counters.clone();
        let in_flight = self.in_flight.clone();
        let thread_name = format!("warden-events-{name}");
        let subscriber = name.clone();
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || drain(&subscriber, rx, deliver, &worker, &in_flight))
            .map_err(|e| Error::host("starting an event subscriber", e))?;
        write(&self.subscribers).push(Subscriber {
            name,
            patterns,
            queue,
            counters,
        });
        Ok(())
    }

    /// Changes the patterns of subscriber `name`.
    pub(crate) fn set_patterns(&self, name: &str, patterns: Vec<String>) {
        if let Some(s) = write(&self.subscribers).iter_mut().find(|s| s.name == name) {
            s.patterns = patterns;
        }
    }

    /// Removes subscriber `name`; events still queued for it are dropped.
    pub(crate) fn unsubscribe(&self, name: &str) {
        write(&self.subscribers).retain(|s| {
            let keep = s.name != name;
            if !keep {
                s.counters.closed.store(true, Ordering::SeqCst);
            }
            keep
        });
    }

    /// Removes every subscriber; each thread ends after its current delivery.
    pub(crate) fn close(&self) {
        for s in write(&self.subscribers).drain(..) {
            s.counters.closed.store(true, Ordering::SeqCst);
        }
    }

    /// Queues `event` for every subscriber whose patterns match; returns
    /// how many took it. Never blocks.
    pub(crate) fn publish(&self, event: Event) -> std::result::Result<usize, NotPublished> {
        let max = self.settings.max_hops;
        if event.hops > max {
            tracing::warn!(event_type = %event.event_type, source = %event.source, hops = event.hops, max, "event dropped: too many hops");
            return Err(NotPublished::TooManyHops { max });
        }
        let max = self.settings.max_payload_bytes;
        if event.payload.len() > max {
            tracing::warn!(event_type = %event.event_type, source = %event.source, bytes = event.payload.len(), max, "event dropped: payload too large");
            return Err(NotPublished::TooLarge { max });
        }
        let bytes = event.payload.len() as u64;
        tracing::debug!(event_type = %event.event_type, source = %event.source, hops = event.hops, bytes = event.payload.len(), "event");
        let subscribers = read(&self.subscribers);
        let mut queued = 0;
        for s in subscribers
            .iter()
            .filter(|s| s.patterns.iter().any(|p| event.matches(p)))
        {
            let within_share = s.counters.take_share(&event.source, bytes, &self.settings);
            let within_bytes = within_share
                && s.counters
                    .queued_bytes
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                        held.checked_add(bytes)
                            .filter(|n| *n <= self.settings.queue_bytes)
                    })
                    .is_ok();
            s.counters.queued.fetch_add(1, Ordering::SeqCst);
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let sent = match within_bytes {
                true => s.queue.try_send(event.clone()).map_err(|_| ()),
                false => Err(()),
            };
            match sent {
                Ok(()) => queued += 1,
                Err(()) => {
                    if within_bytes {
                        s.counters.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
                    }
                    if within_share {
                        s.counters.give_share(&event.source, bytes);
                    }
                    s.counters.queued.fetch_sub(1, Ordering::SeqCst);
                    self.in_flight.fetch_sub(1, Ordering::SeqCst);
                    let dropped = s.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    // The first drop and then one in a thousand: a flood must
                    // not turn into a flood of log lines.
                    if dropped % 1000 == 1 {
                        tracing::warn!(subscriber = %s.name, event_type = %event.event_type, dropped, "event dropped: the subscriber's queue is full");
                    }
                }
            }
        }
        Ok(queued)
    }

    /// The delivery counts of every subscriber.
    pub(crate) fn stats(&self) -> Vec<SubscriberStats> {
        read(&self.subscribers)
            .iter()
            .map(|s| SubscriberStats {
                subscriber: s.name.clone(),
                patterns: s.patterns.clone(),
                delivered: s.counters.delivered.load(Ordering::Relaxed),
                dropped: s.counters.dropped.load(Ordering::Relaxed),
                failed: s.counters.failed.load(Ordering::Relaxed),
                queued: s.counters.queued.load(Ordering::SeqCst),
            })
            .collect()
    }

    /// Waits until every queue is empty and every delivery finished (events
    /// emitted by those deliveries included), at most `timeout`. Returns
    /// whether the bus became idle.
    pub(crate) async fn settle(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        loop {
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A subscriber's thread: delivers its queue in order until it is removed.
fn drain(
    name: &str,
    rx: Receiver<Event>,
    mut deliver: Deliver,
    counters: &Counters,
    in_flight: &AtomicU64,
) {
    for event in rx {
        if counters.closed.load(Ordering::SeqCst) {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            match std::panic::catch_unwind(AssertUnwindSafe(|| deliver(&event))) {
                Ok(Ok(())) => {
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(subscriber = %name, event_type = %event.event_type, error = %e, "event delivery failed");
                }
                Err(_) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(subscriber = %name, event_type = %event.event_type, "event subscriber panicked");
                }
            }
        }
        let bytes = event.payload.len() as u64;
        counters.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
        counters.give_share(&event.source, bytes);
        counters.queued.fetch_sub(1, Ordering::SeqCst);
        in_flight.fetch_sub(1, Ordering::SeqCst);
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
    use std::sync::Mutex;

    #[test]
    fn patterns_match_types() {
        let e = Event::new("order.created", b"{}".to_vec(), "host");
        assert!(e.matches("*"));
        assert!(e.matches("order.created"));
        assert!(e.matches("order.*"));
        assert!(!e.matches("ord.*"));
        assert!(!e.matches("order.updated"));
        assert!(!Event::new("orders.x", vec![], "host").matches("order.*"));
        for good in ["*", "order.*", "order.created", "a-b_c.d"] {
            assert!(validate_pattern(good).is_ok(), "{good}");
        }
        for bad in ["", "order.", ".*", "or der", "order.*.x", "**"] {
            assert!(validate_pattern(bad).is_err(), "{bad}");
        }
    }

    fn settle(bus: &EventBus) -> bool {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(bus.settle(Duration::from_secs(5)))
    }

    /// A source flooding a stuck subscriber cannot fill its queue: a quiet
    /// source's event still gets in.
    #[test]
    fn one_source_cannot_take_a_whole_queue() {
        let bus = EventBus::new(EventSettings {
            queue_capacity: 8,
            ..EventSettings::default()
        });
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        bus.subscribe(
            "stuck".into(),
            vec!["*".into()],
            Box::new(move |_| {
                let _ = gate.lock().expect("gate").recv();
                Ok(())
            }),
        )
        .expect("subscribe");
        let flood: usize = (0..100)
            .map(|_| {
                bus.publish(Event::new("spam.x", vec![], "noisy"))
                    .expect("publish")
            })
            .sum();
        assert!(flood <= 7, "the flood queued {flood}");
        let quiet = bus
            .publish(Event::new("order.created", vec![], "quiet"))
            .expect("publish");
        assert_eq!(quiet, 1, "the quiet source's event was crowded out");
        drop(release);
    }

    #[test]
    fn a_stuck_subscriber_drops_its_own_events_only() {
        let bus = EventBus::new(EventSettings {
            queue_capacity: 2,
            ..EventSettings::default()
        });
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        bus.subscribe(
            "slow".into(),
            vec!["*".into()],
            Box::new(move |_| {
                let _ = gate.lock().expect("gate").recv();
                Ok(())
            }),
        )
        .expect("subscribe");
        let seen = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        bus.subscribe(
            "fast".into(),
            vec!["order.*".into()],
            Box::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
        )
        .expect("subscribe");
        // Batches no larger than the queue: the fast one keeps up with each,
        // while the slow one stays stuck.
        for batch in 1..=5 {
            for _ in 0..2 {
                assert!(
                    bus.publish(Event::new("order.created", vec![], "host"))
                        .is_ok()
                );
            }
            let until = Instant::now() + Duration::from_secs(5);
            while seen.load(Ordering::SeqCst) < batch * 2 && Instant::now() < until {
                std::thread::yield_now();
            }
            assert_eq!(seen.load(Ordering::SeqCst), batch * 2);
        }
        for _ in 0..10 {
            let _ = release.send(());
        }
        assert!(settle(&bus));
        let stats = bus.stats();
        let slow = &stats[0];
        assert_eq!(slow.delivered + slow.dropped, 10);
        assert!(slow.dropped >= 7, "{slow:?}");
        assert_eq!((stats[1].delivered, stats[1].dropped), (10, 0));
    }

    #[test]
    fn failures_and_panics_are_counted_and_hops_are_capped() {
        let bus = EventBus::new(EventSettings::default());
        bus.subscribe(
            "flaky".into(),
            vec!["*".into()],
            Box::new(|e| match e.event_type.as_str() {
                "boom" => panic!("subscriber bug"),
                "fail" => Err("nope".into()),
                _ => Ok(()),
            }),
        )
        .expect("subscribe");
        for t in ["ok", "fail", "boom", "ok"] {
            assert_eq!(bus.publish(Event::new(t, vec![], "host")), Ok(1));
        }
        let mut deep = Event::new("ok", vec![], "host");
        deep.hops = 9;
        assert_eq!(bus.publish(deep), Err(NotPublished::TooManyHops { max: 8 }));
        assert_eq!(
            bus.publish(Event::new("ok", vec![0; (1 << 20) + 1], "host")),
            Err(NotPublished::TooLarge { max: 1 << 20 })
        );
        assert!(settle(&bus));
        let s = &bus.stats()[0];
        assert_eq!((s.delivered, s.failed, s.dropped, s.queued), (2, 2, 0, 0));
        bus.unsubscribe("flaky");
        assert!(bus.stats().is_empty());
        assert_eq!(bus.publish(Event::new("ok", vec![], "host")), Ok(0));
    }
}
