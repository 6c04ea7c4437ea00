//! The event bookkeeping of `audit-logger`, free of any WebAssembly bindings.
//!
//! Kept apart from `lib.rs` so the host's benchmarks can compile this file
//! natively (`#[path = ".../audit.rs"] mod audit;`). [`Auditor::record`] only
//! says what to log and what to emit; `lib.rs` does the host calls. Depends on
//! `std` and `serde_json` only.

use std::collections::BTreeMap;

/// The plugin's own name: events from this source are its summaries coming
/// back through the host, and counting them would feed back forever.
pub const OWN_SOURCE: &str = "audit-logger";

/// Event type of the periodic summaries.
pub const SUMMARY_EVENT: &str = "audit.summary";

/// Summary period when `summary-every` is unset or unusable.
pub const DEFAULT_SUMMARY_EVERY: u64 = 10;

/// Reads the `summary-every` config value. Returns the period and, when the
/// value was unusable, a warning for the log.
pub fn parse_summary_every(value: Option<&str>) -> (u64, Option<String>) {
    match value {
        None => (DEFAULT_SUMMARY_EVERY, None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => (n, None),
            _ => (
                DEFAULT_SUMMARY_EVERY,
                Some(format!(
                    "config `summary-every` must be a whole number above 0, got `{v}`; using {DEFAULT_SUMMARY_EVERY}"
                )),
            ),
        },
    }
}

/// What the plugin should do about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The event is the plugin's own; do nothing.
    Ignored,
    Counted {
        /// The info line to log.
        log_line: String,
        /// The payload of an `audit.summary` event to emit, when one is due.
        summary: Option<Vec<u8>>,
    },
}

/// Running counts since the instance was initialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auditor {
    summary_every: u64,
    total: u64,
    by_type: BTreeMap<String, u64>,
}

impl Default for Auditor {
    fn default() -> Self {
        Auditor::new(DEFAULT_SUMMARY_EVERY)
    }
}

impl Auditor {
    /// `summary_every` of 0 is treated as 1.
    pub fn new(summary_every: u64) -> Auditor {
        Auditor {
            summary_every: summary_every.max(1),
            total: 0,
            by_type: BTreeMap::new(),
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn count(&self, event_type: &str) -> u64 {
        self.by_type.get(event_type).copied().unwrap_or(0)
    }

    /// Counts one event and says what to log and emit.
    pub fn record(&mut self, event_type: &str, source: &str, payload_len: usize) -> Outcome {
        if source == OWN_SOURCE {
            return Outcome::Ignored;
        }
        self.total += 1;
        *self.by_type.entry(event_type.to_string()).or_insert(0) += 1;
        let log_line = format!("event {event_type} from {source} ({payload_len} bytes)");
        let summary = self
            .total
            .is_multiple_of(self.summary_every)
            .then(|| self.summary());
        Outcome::Counted { log_line, summary }
    }

    /// `{"total":n,"by_type":{...}}` with the types in sorted order.
    pub fn summary(&self) -> Vec<u8> {
        let by_type: serde_json::Map<String, serde_json::Value> = self
            .by_type
            .iter()
            .map(|(k, v)| (k.clone(), (*v).into()))
            .collect();
        let mut root = serde_json::Map::new();
        root.insert("total".to_string(), self.total.into());
        root.insert("by_type".to_string(), serde_json::Value::Object(by_type));
        serde_json::Value::Object(root).to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_every_parsing() {
        assert_eq!(parse_summary_every(None), (10, None));
        assert_eq!(parse_summary_every(Some(" 3 ")), (3, None));
        for bad in ["0", "-1", "ten", ""] {
            let (n, warn) = parse_summary_every(Some(bad));
            assert_eq!(n, 10);
            assert!(warn.is_some_and(|w| w.contains("summary-every")), "{bad}");
        }
    }

    #[test]
    fn counts_logs_and_summarises_periodically() {
        let mut a = Auditor::new(3);
        assert_eq!(
            a.record("order.created", "host", 12),
            Outcome::Counted {
                log_line: "event order.created from host (12 bytes)".into(),
                summary: None
            }
        );
        assert!(matches!(
            a.record("user.login", "auth", 0),
            Outcome::Counted { summary: None, .. }
        ));
        match a.record("order.created", "shop", 5) {
            Outcome::Counted {
                summary: Some(payload),
                ..
            } => assert_eq!(
                String::from_utf8(payload).unwrap_or_default(),
                r#"{"total":3,"by_type":{"order.created":2,"user.login":1}}"#
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            a.record("a.b", "host", 0),
            Outcome::Counted { summary: None, .. }
        ));
        assert_eq!(a.total(), 4);
        assert_eq!(a.count("order.created"), 2);
    }

    #[test]
    fn sorted_type_keys() {
        let mut a = Auditor::new(100);
        for t in ["zeta", "alpha", "mid", "alpha"] {
            a.record(t, "host", 0);
        }
        assert_eq!(
            String::from_utf8(a.summary()).unwrap_or_default(),
            r#"{"total":4,"by_type":{"alpha":2,"mid":1,"zeta":1}}"#
        );
    }

    #[test]
    fn own_events_are_ignored() {
        let mut a = Auditor::new(1);
        assert_eq!(a.record(SUMMARY_EVENT, OWN_SOURCE, 40), Outcome::Ignored);
        assert_eq!(a.total(), 0);
    }
}
