//! The audit log: every denial and every limit a plugin hits, with who, when
//! and what was done about it.
//!
//! Every plugin has its own share of the log ([`shares`]): its own files in
//! the `audit/` directory of the host's data directory (or its own ring in
//! memory without one), bounded on its own. A plugin that floods the log
//! only rotates its own entries away; no plugin's traffic can push out
//! another's denials. The warnings the log also writes to the host log are
//! rate-limited per plugin for the same reason.

mod shares;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrapKind};
use crate::locks::lock;
use shares::Shares;

/// The directory, in the host's data directory, that holds the log: one
/// `<plugin>.jsonl` (and its rotated `<plugin>.1.jsonl`) per plugin.
pub const AUDIT_DIR: &str = "audit";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AuditKind {
    /// A permission the manifest asks for was not granted; the load failed.
    GrantRefused,
    /// A permission the manifest asks for was not granted; the plugin was
    /// loaded without it (the operator chose to trim).
    GrantTrimmed,
    /// A socket bind, connect, listen or send the permissions do not allow.
    SocketDenied,
    /// A name lookup for a host no `net` permission names.
    NameLookupDenied,
    /// A file-system access outside what the mapped directories allow.
    FsDenied,
    /// An outbound HTTP request to an origin that is not allowed.
    HttpDenied,
    /// A call ran past its deadline and was interrupted.
    Timeout,
    /// A call used up its fuel budget.
    OutOfFuel,
    /// An instance tried to grow its memory past its limit.
    MemoryLimit,
    /// A call overflowed the wasm stack.
    StackOverflow,
    /// The plugin panicked or hit another trap.
    Trap,
    /// A call's input was larger than the plugin's limit.
    InputLimit,
    /// A call's output was larger than the plugin's limit.
    OutputLimit,
    /// A call logged more than its log budget; the rest was dropped.
    LogCap,
    /// A call emitted more events than its budget; the rest were dropped.
    EventCap,
    /// Every instance stayed busy; the call was refused.
    InstanceCap,
    /// A named key-value store that was not granted.
    StoreDenied,
    /// A key-value write past the namespace's quota.
    StoreQuota,
    /// An outbound HTTP response larger than the host allows.
    HttpResponseLimit,
    /// An event emitted while handling an event, past the hop limit.
    EventHops,
    /// A write to the plugin's data directory past its quota.
    DataQuota,
    /// A reload failed; the loaded build kept serving.
    ReloadFailed,
    /// A crash-looping plugin was quarantined: its calls are refused until
    /// the next restart attempt.
    Quarantined,
    /// A canary candidate did worse than the stable version and was rolled
    /// back automatically.
    AutoRollback,
    /// A core module broke its ABI (a pointer or length outside its memory,
    /// output that is not JSON).
    AbiViolation,
    /// An instance went past a host budget (handles or host memory).
    HostResourceLimit,
    /// A plugin called a capability it was not granted.
    NotGranted,
    /// A plugin from another directory asked for a name that belongs to an
    /// earlier plugin; the load was refused.
    NameClaimed,
    /// A plugin's signature was missing, untrusted or did not match (the
    /// host requires signatures); it was not loaded.
    SignatureRefused,
    /// An operator ended a plugin version's quarantine.
    Released,
}

impl AuditKind {
    /// The kind that records a trap of kind `trap`.
    pub fn of_trap(trap: TrapKind) -> Self {
        match trap {
            TrapKind::Timeout => AuditKind::Timeout,
            TrapKind::OutOfMemory => AuditKind::MemoryLimit,
            TrapKind::OutOfFuel => AuditKind::OutOfFuel,
            TrapKind::StackOverflow => AuditKind::StackOverflow,
            TrapKind::HostResourceLimit => AuditKind::HostResourceLimit,
            TrapKind::NotGranted => AuditKind::NotGranted,
            _ => AuditKind::Trap,
        }
    }

    /// The kind as used in the log and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::GrantRefused => "grant-refused",
            AuditKind::GrantTrimmed => "grant-trimmed",
            AuditKind::SocketDenied => "socket-denied",
            AuditKind::NameLookupDenied => "name-lookup-denied",
            AuditKind::FsDenied => "fs-denied",
            AuditKind::HttpDenied => "http-denied",
            AuditKind::Timeout => "timeout",
            AuditKind::OutOfFuel => "out-of-fuel",
            AuditKind::MemoryLimit => "memory-limit",
            AuditKind::StackOverflow => "stack-overflow",
            AuditKind::Trap => "trap",
            AuditKind::InputLimit => "input-limit",
            AuditKind::OutputLimit => "output-limit",
            AuditKind::LogCap => "log-cap",
            AuditKind::EventCap => "event-cap",
            AuditKind::InstanceCap => "instance-cap",
            AuditKind::StoreDenied => "store-denied",
            AuditKind::StoreQuota => "store-quota",
            AuditKind::HttpResponseLimit => "http-response-limit",
            AuditKind::EventHops => "event-hops",
            AuditKind::DataQuota => "data-quota",
            AuditKind::ReloadFailed => "reload-failed",
            AuditKind::Quarantined => "quarantined",
            AuditKind::AutoRollback => "auto-rollback",
            AuditKind::AbiViolation => "abi-violation",
            AuditKind::HostResourceLimit => "host-resource-limit",
            AuditKind::NotGranted => "not-granted",
            AuditKind::NameClaimed => "name-claimed",
            AuditKind::SignatureRefused => "signature-refused",
            AuditKind::Released => "released",
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AuditKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| format!("unknown audit kind `{s}`"))
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened (RFC 3339 in the file).
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    /// The plugin's name.
    pub plugin: String,
    /// The plugin's version.
    pub version: String,
    /// The call it happened in, if it happened in a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// What happened.
    pub kind: AuditKind,
    /// What was reached for: an address, a path, a permission, a limit.
    pub resource: String,
    /// What the host did about it.
    pub action: String,
}

/// The longest `resource` or `action` an entry keeps, in bytes: what a
/// plugin reached for may be a string it made up, of any length.
pub const MAX_AUDIT_TEXT: usize = 256;

/// `text` cut to [`MAX_AUDIT_TEXT`] bytes, saying how long it was.
fn bounded(text: String) -> String {
    if text.len() <= MAX_AUDIT_TEXT {
        return text;
    }
    let mut end = MAX_AUDIT_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

impl AuditEntry {
    /// An entry stamped with the current time; `resource` and `action` are
    /// cut to [`MAX_AUDIT_TEXT`] bytes.
    pub fn now(
        plugin: &str,
        version: &str,
        call_id: Option<String>,
        kind: AuditKind,
        resource: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        AuditEntry {
            time: SystemTime::now(),
            plugin: plugin.to_string(),
            version: version.to_string(),
            call_id,
            kind,
            resource: bounded(resource.into()),
            action: bounded(action.into()),
        }
    }
}

/// Which entries [`AuditLog::query`] returns. The default matches all.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this plugin's entries.
    pub plugin: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries of this kind.
    pub kind: Option<AuditKind>,
    /// At most this many entries (the newest ones).
    pub limit: Option<usize>,
}

/// Reads a `since` bound: an RFC 3339 time (`2026-11-21T10:00:00Z`) or a
/// duration ago (`10m`, `2h`).
pub fn parse_since(text: &str) -> std::result::Result<SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    let ago = humantime::parse_duration(text).map_err(|_| {
        format!("`{text}` is neither an RFC 3339 time nor a duration such as `10m`")
    })?;
    Ok(SystemTime::now()
        .checked_sub(ago)
        .unwrap_or(SystemTime::UNIX_EPOCH))
}

impl AuditQuery {
    fn matches(&self, e: &AuditEntry) -> bool {
        self.plugin.as_ref().is_none_or(|p| *p == e.plugin)
            && self.since.is_none_or(|t| e.time >= t)
            && self.kind.is_none_or(|k| k == e.kind)
    }
}

/// The host's audit log. Cheap to share; recording never fails a call (a
/// write error is logged instead).
pub struct AuditLog {
    shares: Shares,
    /// Entries recorded by this process, by kind (for metrics).
    recorded: Mutex<HashMap<AuditKind, u64>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shares.dir() {
            Some(dir) => write!(f, "AuditLog({})", dir.display()),
            None => f.write_str("AuditLog(memory)"),
        }
    }
}

impl AuditLog {
    /// A log kept in memory: the newest 1,000 entries of each plugin.
    pub fn in_memory() -> Self {
        AuditLog {
            shares: Shares::in_memory(),
            recorded: Mutex::default(),
        }
    }

    /// The log persisted in `data_dir/audit` (created with the first
    /// entry); each plugin's entries take at most `max_bytes_per_plugin` on
    /// disk, across its current and its rotated file.
    pub fn open(data_dir: impl Into<PathBuf>, max_bytes_per_plugin: u64) -> Result<Self> {
        Ok(AuditLog {
            shares: Shares::open(data_dir.into(), max_bytes_per_plugin)?,
            recorded: Mutex::default(),
        })
    }

    /// Appends an entry to its plugin's share (and logs it as a warning,
    /// unless the plugin already had many this second).
    pub fn record(&self, entry: AuditEntry) {
        *lock(&self.recorded).entry(entry.kind).or_default() += 1;
        self.shares.record(entry);
    }

    /// How many entries of each kind this process recorded (entries of
    /// earlier runs in the files are not counted).
    pub fn recorded(&self) -> Vec<(AuditKind, u64)> {
        let mut counts: Vec<(AuditKind, u64)> =
            lock(&self.recorded).iter().map(|(k, n)| (*k, *n)).collect();
        counts.sort_by_key(|(k, _)| k.as_str());
        counts
    }

    /// The entries matching `query`, oldest first.
    pub fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut found = self.shares.read(query)?;
        found.sort_by_key(|e| e.time);
        if let Some(limit) = query.limit {
            let extra = found.len().saturating_sub(limit);
            found.drain(..extra);
        }
        Ok(found)
    }
}

pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_micros(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(plugin: &str, kind: AuditKind, resource: &str) -> AuditEntry {
        AuditEntry {
            time: SystemTime::now(),
            plugin: plugin.into(),
            version: "1.0.0".into(),
            call_id: Some("c1".into()),
            kind,
            resource: resource.into(),
            action: "denied".into(),
        }
    }

    #[test]
    fn persists_filters_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::open(dir.path(), 1 << 20).expect("open");
        log.record(entry(
            "a",
            AuditKind::SocketDenied,
            "tcp connect 127.0.0.1:1",
        ));
        log.record(entry("b", AuditKind::Timeout, "5s"));
        drop(log);

        let log = AuditLog::open(dir.path(), 1 << 20).expect("reopen");
        log.record(entry("a", AuditKind::Timeout, "5s"));
        let all = log.query(&AuditQuery::default()).expect("query");
        assert_eq!(all.len(), 3);
        let a = AuditQuery {
            plugin: Some("a".into()),
            ..Default::default()
        };
        assert_eq!(log.query(&a).expect("query").len(), 2);
        let timeouts = AuditQuery {
            kind: Some(AuditKind::Timeout),
            limit: Some(1),
            ..Default::default()
        };
        let last = log.query(&timeouts).expect("query");
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].plugin, "a");
        let future = AuditQuery {
            since: Some(SystemTime::now() + std::time::Duration::from_secs(60)),
            ..Default::default()
        };
        assert!(log.query(&future).expect("query").is_empty());
    }

    #[test]
    fn made_up_strings_are_cut_short() {
        let long = "é".repeat(10_000);
        let e = AuditEntry::now("p", "1", None, AuditKind::FsDenied, long.clone(), long);
        assert!(
            e.resource.len() < MAX_AUDIT_TEXT + 32,
            "{}",
            e.resource.len()
        );
        assert!(e.resource.ends_with("(20000 bytes)"), "{}", e.resource);
        assert_eq!(e.action.len(), e.resource.len());
    }

    #[test]
    fn kinds_round_trip_through_text() {
        for kind in [
            AuditKind::GrantRefused,
            AuditKind::NameLookupDenied,
            AuditKind::InstanceCap,
        ] {
            assert_eq!(kind.as_str().parse::<AuditKind>(), Ok(kind));
        }
        assert!("nope".parse::<AuditKind>().is_err());
    }
}
