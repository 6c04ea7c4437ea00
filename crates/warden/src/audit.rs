//! The audit log: every denial and every limit a plugin hits, with who, when
//! and what was done about it.
//!
//! Entries are JSON lines appended to `audit.jsonl` in the host's data
//! directory, so the log survives a restart; when the file passes half the
//! size budget it becomes `audit.1.jsonl` (replacing the previous one), which
//! bounds the log to the budget. Without a data directory the log is a
//! bounded in-memory ring.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, TrapKind};
use crate::locks::lock;

/// The current log file's name in the data directory.
pub const AUDIT_FILE: &str = "audit.jsonl";
const ROTATED_FILE: &str = "audit.1.jsonl";

/// Entries kept when the log lives in memory only.
const MEMORY_ENTRIES: usize = 10_000;

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
}

impl AuditKind {
    /// The kind that records a trap of kind `trap`.
    pub fn of_trap(trap: TrapKind) -> Self {
        match trap {
            TrapKind::Timeout => AuditKind::Timeout,
            TrapKind::OutOfMemory => AuditKind::MemoryLimit,
            TrapKind::OutOfFuel => AuditKind::OutOfFuel,
            TrapKind::StackOverflow => AuditKind::StackOverflow,
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

impl AuditEntry {
    /// An entry stamped with the current time.
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
            resource: resource.into(),
            action: action.into(),
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
    sink: Mutex<Sink>,
    /// Entries recorded by this process, by kind (for metrics).
    recorded: Mutex<HashMap<AuditKind, u64>>,
}

enum Sink {
    Memory(VecDeque<AuditEntry>),
    File {
        dir: PathBuf,
        file: Option<File>,
        size: u64,
        max_bytes: u64,
    },
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*lock(&self.sink) {
            Sink::Memory(_) => f.write_str("AuditLog(memory)"),
            Sink::File { dir, .. } => write!(f, "AuditLog({})", dir.display()),
        }
    }
}

impl AuditLog {
    /// A log kept in memory (the newest 10,000 entries).
    pub fn in_memory() -> Self {
        AuditLog {
            sink: Mutex::new(Sink::Memory(VecDeque::new())),
            recorded: Mutex::default(),
        }
    }

    /// The log persisted in `dir` (created with the first entry), at most
    /// `max_bytes` on disk across the current and the rotated file.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self> {
        let dir = dir.into();
        let path = dir.join(AUDIT_FILE);
        end_torn_line(&path).map_err(|e| Error::io(&path, e))?;
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        Ok(AuditLog {
            sink: Mutex::new(Sink::File {
                dir,
                file: None,
                size,
                max_bytes: max_bytes.max(4096),
            }),
            recorded: Mutex::default(),
        })
    }

    /// Appends an entry (and logs it as a warning).
    pub fn record(&self, entry: AuditEntry) {
        tracing::warn!(
            plugin = %entry.plugin,
            version = %entry.version,
            call_id = entry.call_id.as_deref().unwrap_or(""),
            kind = %entry.kind,
            "audit: {} ({}): {}",
            entry.kind,
            entry.resource,
            entry.action
        );
        *lock(&self.recorded).entry(entry.kind).or_default() += 1;
        let mut sink = lock(&self.sink);
        match &mut *sink {
            Sink::Memory(ring) => {
                if ring.len() == MEMORY_ENTRIES {
                    ring.pop_front();
                }
                ring.push_back(entry);
            }
            Sink::File {
                dir,
                file,
                size,
                max_bytes,
            } => {
                if let Err(e) = append(dir, file, size, *max_bytes, &entry) {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot write the audit log");
                }
            }
        }
    }

    /// How many entries of each kind this process recorded (entries of
    /// earlier runs in the file are not counted).
    pub fn recorded(&self) -> Vec<(AuditKind, u64)> {
        let mut counts: Vec<(AuditKind, u64)> =
            lock(&self.recorded).iter().map(|(k, n)| (*k, *n)).collect();
        counts.sort_by_key(|(k, _)| k.as_str());
        counts
    }

    /// The entries matching `query`, oldest first.
    pub fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut found: Vec<AuditEntry> = match &*lock(&self.sink) {
            Sink::Memory(ring) => ring.iter().filter(|e| query.matches(e)).cloned().collect(),
            Sink::File { dir, .. } => read_dir_entries(dir, query)?,
        };
        if let Some(limit) = query.limit {
            let extra = found.len().saturating_sub(limit);
            found.drain(..extra);
        }
        Ok(found)
    }
}

/// A crash mid-write may leave the last line unfinished; end it so that the
/// next entry starts on a line of its own.
fn end_torn_line(path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match OpenOptions::new().read(true).append(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() == 0 {
        return Ok(());
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}

fn append(
    dir: &Path,
    file: &mut Option<File>,
    size: &mut u64,
    max_bytes: u64,
    entry: &AuditEntry,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let current = dir.join(AUDIT_FILE);
    if *size + line.len() as u64 > max_bytes / 2 && *size > 0 {
        *file = None;
        std::fs::rename(&current, dir.join(ROTATED_FILE))?;
        *size = 0;
    }
    if file.is_none() {
        std::fs::create_dir_all(dir)?;
        *file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&current)?,
        );
    }
    if let Some(f) = file {
        // One write per line: with O_APPEND, concurrent writers (a second
        // host on the same directory) never interleave within a line.
        f.write_all(&line)?;
        *size += line.len() as u64;
    }
    Ok(())
}

fn read_dir_entries(dir: &Path, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let mut found = Vec::new();
    for name in [ROTATED_FILE, AUDIT_FILE] {
        let path = dir.join(name);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| Error::io(&path, e))?;
            // A line cut short by a crash is skipped, not fatal.
            if let Ok(entry) = serde_json::from_str::<AuditEntry>(&line)
                && query.matches(&entry)
            {
                found.push(entry);
            }
        }
    }
    Ok(found)
}

pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
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
    fn stays_within_its_size_budget_and_skips_torn_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::open(dir.path(), 8192).expect("open");
        for i in 0..500 {
            log.record(entry("a", AuditKind::LogCap, &format!("call {i}")));
        }
        let on_disk: u64 = [AUDIT_FILE, ROTATED_FILE]
            .iter()
            .map(|f| std::fs::metadata(dir.path().join(f)).map_or(0, |m| m.len()))
            .sum();
        assert!(on_disk <= 8192, "{on_disk} bytes on disk");
        let kept = log.query(&AuditQuery::default()).expect("query");
        assert!(!kept.is_empty() && kept.len() < 500);
        assert_eq!(kept.last().map(|e| e.resource.as_str()), Some("call 499"));

        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(AUDIT_FILE))
            .expect("open log");
        f.write_all(b"{\"time\":\"20").expect("torn write");
        assert_eq!(
            log.query(&AuditQuery::default()).expect("query").len(),
            kept.len()
        );
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
