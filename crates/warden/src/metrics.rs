//! Per-version call metrics: calls, errors by kind, a latency histogram,
//! instances, peak memory and fuel, kept with lock-free counters on the
//! call path and read as a [`VersionMetrics`] snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::breaker::BreakerState;
use crate::error::{Error, TrapKind};
use crate::lifecycle::State;

/// Upper bounds of the latency buckets, in microseconds (the last bucket
/// is unbounded). Roughly ×2.5 apart, from 25 µs to 10 s.
const BOUNDS_US: [u64; 17] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// Buckets in a latency histogram.
pub(crate) const BUCKETS: usize = BOUNDS_US.len() + 1;

/// The bucket `elapsed` falls in, and `elapsed` in microseconds.
pub(crate) fn bucket_of(elapsed: Duration) -> (usize, u64) {
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    (BOUNDS_US.partition_point(|bound| *bound < us), us)
}

/// Why a call failed, as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ErrorKind {
    /// The plugin returned its own error.
    Plugin,
    /// The plugin trapped; one counter per trap kind.
    Trap(TrapKind),
    /// Every instance stayed busy.
    Busy,
    /// Input or output over the plugin's limit.
    Limit,
    /// Refused at once: breaker open or quarantined.
    Unavailable,
    /// A call through a link failed on the provider's side.
    Link,
    /// The host could not run the call.
    Host,
}

impl ErrorKind {
    pub(crate) fn of(error: &Error) -> ErrorKind {
        match error {
            Error::Plugin { .. } => ErrorKind::Plugin,
            Error::Trap { kind, .. } => ErrorKind::Trap(*kind),
            Error::Busy { .. } => ErrorKind::Busy,
            Error::LimitExceeded { .. } => ErrorKind::Limit,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Linked { .. } => ErrorKind::Link,
            _ => ErrorKind::Host,
        }
    }

    fn label(self) -> String {
        match self {
            ErrorKind::Plugin => "plugin".into(),
            ErrorKind::Trap(kind) => format!("trap:{kind}"),
            ErrorKind::Busy => "busy".into(),
            ErrorKind::Limit => "limit".into(),
            ErrorKind::Unavailable => "unavailable".into(),
            ErrorKind::Link => "link".into(),
            ErrorKind::Host => "host".into(),
        }
    }
}

/// The counters of one build, updated on every call.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) instances_created: AtomicU64,
    pub(crate) instances_recycled: AtomicU64,
    pub(crate) peak_memory: AtomicU64,
    /// Linear memory every live instance holds now, in bytes.
    pub(crate) memory_held: std::sync::Arc<AtomicU64>,
    pub(crate) fuel_used: AtomicU64,
    latency: [AtomicU64; BUCKETS],
    latency_sum_us: AtomicU64,
    errors: std::sync::Mutex<BTreeMap<ErrorKind, u64>>,
}

impl Counters {
    pub(crate) fn observe_latency(&self, elapsed: Duration) {
        let (bucket, us) = bucket_of(elapsed);
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub(crate) fn count_error(&self, kind: ErrorKind) {
        *crate::locks::lock(&self.errors).entry(kind).or_default() += 1;
    }

    pub(crate) fn errors_of(&self, kind: ErrorKind) -> u64 {
        crate::locks::lock(&self.errors)
            .get(&kind)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn errors_where(&self, pick: impl Fn(ErrorKind) -> bool) -> u64 {
        crate::locks::lock(&self.errors)
            .iter()
            .filter(|(k, _)| pick(**k))
            .map(|(_, n)| n)
            .sum()
    }

    pub(crate) fn latency(&self) -> LatencyHistogram {
        LatencyHistogram::from_counts(
            self.latency
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            self.latency_sum_us.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn errors(&self) -> BTreeMap<String, u64> {
        crate::locks::lock(&self.errors)
            .iter()
            .map(|(k, n)| (k.label(), *n))
            .collect()
    }
}

/// Call latencies in buckets (Prometheus style: a bucket's count is the
/// calls no slower than its bound and slower than the previous bound).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LatencyHistogram {
    /// Upper bounds of the buckets; one more bucket after the last holds
    /// everything slower.
    pub bounds: Vec<Duration>,
    /// Calls per bucket (`bounds.len() + 1` entries).
    pub counts: Vec<u64>,
    /// Calls measured.
    pub count: u64,
    /// Their total time.
    pub sum: Duration,
}

impl LatencyHistogram {
    pub(crate) fn from_counts(counts: Vec<u64>, sum_us: u64) -> Self {
        LatencyHistogram {
            bounds: BOUNDS_US
                .iter()
                .map(|us| Duration::from_micros(*us))
                .collect(),
            count: counts.iter().sum(),
            counts,
            sum: Duration::from_micros(sum_us),
        }
    }

    /// The latency under which a share `q` (0.0–1.0) of calls finished:
    /// the upper bound of the bucket holding that call (the last bound for
    /// the open bucket); zero without calls.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return self
                    .bounds
                    .get(i)
                    .or(self.bounds.last())
                    .copied()
                    .unwrap_or_default();
            }
        }
        self.bounds.last().copied().unwrap_or_default()
    }
}

/// A snapshot of one plugin version's metrics.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct VersionMetrics {
    /// The plugin's name.
    pub plugin: String,
    /// The version.
    pub version: semver::Version,
    /// Its lifecycle state.
    pub state: State,
    /// Its circuit breaker.
    pub breaker: BreakerState,
    /// Calls made into it (successful or not).
    pub calls: u64,
    /// Failed calls by kind: `plugin`, `trap:<kind>`, `busy`, `limit`,
    /// `unavailable`, `host`.
    pub errors: BTreeMap<String, u64>,
    /// How long calls took, waiting for an instance included.
    pub latency: LatencyHistogram,
    /// Instances created so far.
    pub instances_created: u64,
    /// Instances retired while healthy, before they could fail a call
    /// (`limits.recycle-after-calls`, `limits.recycle-at-memory-percent`).
    pub instances_recycled: u64,
    /// Instances running a call now.
    pub instances_busy: u64,
    /// Instances idle in the pool now.
    pub instances_idle: u64,
    /// The largest linear memory any instance reached, in bytes.
    pub peak_memory: u64,
    /// The linear memory of every live instance together, busy or idle,
    /// now, in bytes.
    pub memory_bytes: u64,
    /// Its compiled code, mapped in the host's memory, in bytes.
    pub code_bytes: u64,
    /// Calls of its instances into each host capability, by the
    /// capability's name (`logging`, `config`, `kv`, `http`, `events`,
    /// `links`, the embedder's own); capabilities never called are left
    /// out. (The data directory's files are reached through wasmtime's
    /// own `wasi:filesystem`, which is not counted.)
    pub capability_calls: BTreeMap<String, u64>,
    /// Fuel burnt by all calls (`None` when the host does not meter fuel).
    pub fuel_used: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        let c = Counters::default();
        for _ in 0..98 {
            c.observe_latency(Duration::from_micros(30));
        }
        c.observe_latency(Duration::from_millis(3));
        c.observe_latency(Duration::from_secs(60));
        let h = c.latency();
        assert_eq!(h.count, 100);
        assert_eq!(h.counts[1], 98, "30 µs is in the ≤ 50 µs bucket");
        assert_eq!(h.quantile(0.5), Duration::from_micros(50));
        assert_eq!(h.quantile(0.99), Duration::from_millis(5));
        assert_eq!(h.quantile(1.0), Duration::from_secs(10));
        assert_eq!(*h.counts.last().expect("open bucket"), 1);
    }

    #[test]
    fn errors_by_kind() {
        let c = Counters::default();
        c.count_error(ErrorKind::Plugin);
        c.count_error(ErrorKind::Trap(TrapKind::GuestPanic));
        c.count_error(ErrorKind::Trap(TrapKind::GuestPanic));
        let errors = c.errors();
        assert_eq!(errors.get("plugin"), Some(&1));
        assert_eq!(errors.get("trap:guest-panic"), Some(&2));
        assert_eq!(c.errors_where(|k| matches!(k, ErrorKind::Trap(_))), 2);
    }
}
