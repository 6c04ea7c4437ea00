//! The embedded key-value backend: one SQLite database (WAL) per namespace,
//! `kv/<namespace>.sqlite` in the host's data directory, or in memory
//! without one. Each namespace has its own connection and lock, so one
//! plugin's traffic never waits for another's; listing scans only the keys
//! under the prefix asked for (an index range, not the namespace).
//!
//! Every write is one transaction, and the namespace's usage that quotas
//! are checked against is updated in the same transaction, so a killed host
//! leaves neither a torn value nor a wrong count. Namespaces that earlier
//! versions kept together in `store.sqlite` are moved to their own files
//! when the backend opens.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::namespaces::{Namespaces, Wait};
use super::{KvBackend, KvError, KvLimits};
use crate::db::STORE_FILE;
use crate::throttle::Throttle;

/// The directory, in the data directory, that holds the namespaces' files.
const KV_DIR: &str = "kv";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kv (
         key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS usage (
         id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);";

/// One SQLite database per namespace, each behind its own mutex: one
/// writer at a time per namespace, which is what makes `increment` and
/// `compare-and-swap` atomic.
pub struct SqliteBackend {
    namespaces: Arc<Namespaces>,
    /// Whether its calls wait to reach a namespace.
    wait: Wait,
    /// The same namespaces reached without waiting, the view
    /// [`KvBackend::without_waiting`] gives (`None` in that view itself).
    at_once: Option<Box<SqliteBackend>>,
}

impl SqliteBackend {
    /// Opens the stores under `data_dir/kv` (created on first use); `None`:
    /// in-memory stores. Moves namespaces left in `data_dir/store.sqlite`
    /// by earlier versions to their own files.
    pub fn open(data_dir: Option<&Path>) -> Result<Self, String> {
        let namespaces = Arc::new(Namespaces::new(data_dir.map(|d| d.join(KV_DIR)), SCHEMA));
        let backend = SqliteBackend {
            namespaces: namespaces.clone(),
            wait: Wait::Yes,
            at_once: Some(Box::new(SqliteBackend {
                namespaces,
                wait: Wait::No,
                at_once: None,
            })),
        };
        if let Some(dir) = data_dir {
            backend.move_legacy(&dir.join(STORE_FILE))?;
        }
        Ok(backend)
    }

    /// Runs `f` on namespace `ns`'s connection.
    fn read<T>(
        &self,
        ns: &str,
        f: impl FnOnce(&Connection) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        self.namespaces
            .with(self.wait, ns, || file_stem(ns), |n| f(&n.conn))
    }

    /// Runs `f`, which stores a value of `stored` bytes (0: none), in an
    /// immediate (write-locked) transaction of `ns`.
    fn write<T>(
        &self,
        ns: &str,
        stored: usize,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        self.namespaces
            .write(self.wait, ns, || file_stem(ns), stored, f)
    }

    /// Moves every namespace of the shared `kv` table of earlier versions
    /// into its own file, one namespace per transaction on each side.
    fn move_legacy(&self, legacy: &Path) -> Result<(), String> {
        if !legacy.is_file() {
            return Ok(());
        }
        let moving = |e: rusqlite::Error| format!("moving the key-value store to kv/: {e}");
        let old = Connection::open(legacy).map_err(moving)?;
        let has_table: bool = old
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv')",
                [],
                |r| r.get(0),
            )
            .map_err(moving)?;
        if !has_table {
            return Ok(());
        }
        let namespaces: Vec<String> = old
            .prepare("SELECT DISTINCT ns FROM kv")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(moving)?;
        for ns in namespaces {
            let rows: Vec<(String, Vec<u8>)> = old
                .prepare("SELECT key, value FROM kv WHERE ns = ?1")
                .and_then(|mut s| {
                    s.query_map(params![ns], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .map_err(moving)?;
            let largest = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
            self.write(&ns, largest, |tx| {
                for (key, value) in &rows {
                    let old = current(tx, key)?;
                    put(tx, None, key, old.as_deref(), Some(value))?;
                }
                Ok(())
            })
            .map_err(|e| format!("moving namespace `{ns}` to kv/: {e}"))?;
            old.execute("DELETE FROM kv WHERE ns = ?1", params![ns])
                .map_err(moving)?;
        }
        Ok(())
    }
}

/// The file a namespace is kept in: `plugin-<name>` and `shared-<store>`
/// for the namespaces Warden makes, a hash for anything else.
fn file_stem(ns: &str) -> String {
    let plain = |name: &str| {
        !name.is_empty()
            && name.len() <= 100
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match ns.split_once(':') {
        Some((kind @ ("plugin" | "shared"), name)) if plain(name) => format!("{kind}-{name}"),
        _ => format!("ns-{}", &crate::digest::sha256_hex(ns.as_bytes())[..16]),
    }
}

/// The error a plugin sees when the backend fails. A full disk is said in
/// plain words (the transaction was rolled back, so nothing is half
/// written) and told to the operator in the host's log, at most once per
/// [`LOG_EVERY`] however often plugins retry.
pub(super) fn internal(e: rusqlite::Error) -> KvError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => disk_full(&e.to_string()),
        // Another process holds the file: given up at once by a call that
        // does not wait, after the busy timeout by one that does.
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            KvError::WouldWait(e.to_string())
        }
        _ => KvError::Internal(e.to_string()),
    }
}

/// What a plugin is told when its namespace cannot be opened: not why
/// (that names host paths), which goes to the host's log instead.
pub(super) fn unopenable(ns: &str, why: String) -> KvError {
    if why.contains("disk is full") || why.contains("No space left") {
        return disk_full(&why);
    }
    if UNOPENABLE_LOGGED.ready() {
        tracing::error!(namespace = %ns, error = %why, "cannot open a key-value namespace");
    }
    KvError::Internal("the host cannot open this store; its log says why".into())
}

fn disk_full(why: &str) -> KvError {
    if DISK_FULL_LOGGED.ready() {
        tracing::error!(
            "a key-value write failed: the disk under the data directory is full ({why}); \
             free space there, writes resume by themselves"
        );
    }
    KvError::Internal(
        "the host's disk is full: the write was not made, and what was stored before is kept"
            .into(),
    )
}

/// How often each of the store's failures is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);
static DISK_FULL_LOGGED: Throttle = Throttle::new(LOG_EVERY);
static UNOPENABLE_LOGGED: Throttle = Throttle::new(LOG_EVERY);

fn current(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, KvError> {
    first(conn, "SELECT value FROM kv WHERE key = ?1", params![key]).map_err(internal)
}

/// The first column of the first row `sql` answers, if any. Each statement
/// a store runs per call is prepared once per connection (rusqlite's cache),
/// not parsed again at every call.
fn first<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Option<T>> {
    conn.prepare_cached(sql)?
        .query_row(params, |r| r.get(0))
        .optional()
}

/// Runs `sql`, prepared once per connection like [`first`]'s.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Writes `value` (or deletes, for `None`) and charges the size change to
/// the namespace's usage, refused past `limits.quota_bytes` (unchecked
/// without limits, when moving data written before).
fn put(
    tx: &rusqlite::Transaction<'_>,
    limits: Option<&KvLimits>,
    key: &str,
    old: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), KvError> {
    let size = |v: Option<&[u8]>| v.map_or(0, |v| (key.len() + v.len()) as i64);
    let delta = size(value) - size(old);
    let used: i64 = first(tx, "SELECT bytes FROM usage WHERE id = 0", [])
        .map_err(internal)?
        .unwrap_or(0);
    if let Some(limits) = limits
        && delta > 0
        && used + delta > limits.quota_bytes as i64
    {
        return Err(KvError::QuotaExceeded(format!(
            "the store holds {used} bytes; this write needs {delta} more and the quota is {}",
            limits.quota_bytes
        )));
    }
    match value {
        Some(v) => exec(
            tx,
            "INSERT INTO kv (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, v],
        ),
        None => exec(tx, "DELETE FROM kv WHERE key = ?1", params![key]),
    }
    .map_err(internal)?;
    exec(
        tx,
        "INSERT INTO usage (id, bytes) VALUES (0, ?1)
         ON CONFLICT (id) DO UPDATE SET bytes = bytes + ?1",
        params![delta],
    )
    .map_err(internal)?;
    Ok(())
}

/// The least string greater than every string starting with `prefix`, if
/// any: the end of the index range a prefix scan reads. Keys compare by
/// their UTF-8 bytes, which order like their characters.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl KvBackend for SqliteBackend {
    fn without_waiting(&self) -> Option<&dyn KvBackend> {
        self.at_once.as_deref().map(|b| b as &dyn KvBackend)
    }

    fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.read(ns, |conn| current(conn, key))
    }

    fn set(&self, limits: &KvLimits, ns: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.write(ns, value.len(), |tx| {
            let old = current(tx, key)?;
            put(tx, Some(limits), key, old.as_deref(), Some(value))
        })
    }

    fn delete(&self, limits: &KvLimits, ns: &str, key: &str) -> Result<bool, KvError> {
        self.write(ns, 0, |tx| {
            let old = current(tx, key)?;
            if old.is_some() {
                put(tx, Some(limits), key, old.as_deref(), None)?;
            }
            Ok(old.is_some())
        })
    }

    fn list(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, KvError> {
        // One index range: from the prefix (or past `after`) to the end of
        // the prefix's keys.
        let (start, from) = match after {
            Some(after) if after >= prefix => (after, ">"),
            _ => (prefix, ">="),
        };
        let end = prefix_end(prefix);
        let upto = if end.is_some() {
            "AND key < ?3"
        } else {
            "AND ?3 IS NULL"
        };
        let sql = format!("SELECT key FROM kv WHERE key {from} ?1 {upto} ORDER BY key LIMIT ?2");
        self.read(ns, |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
            let rows = stmt
                .query_map(params![start, limit, end], |r| r.get(0))
                .map_err(internal)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(internal)
        })
    }

    fn increment(
        &self,
        limits: &KvLimits,
        ns: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvError> {
        self.write(ns, 0, |tx| {
            let old = current(tx, key)?;
            let value = match &old {
                None => 0,
                Some(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or_else(|| {
                        KvError::NotANumber(format!("`{key}` does not hold a decimal integer"))
                    })?,
            };
            let new = value.checked_add(delta).ok_or_else(|| {
                KvError::NotANumber(format!("`{key}` would overflow a 64-bit integer"))
            })?;
            put(
                tx,
                Some(limits),
                key,
                old.as_deref(),
                Some(new.to_string().as_bytes()),
            )?;
            Ok(new)
        })
    }

    fn compare_and_swap(
        &self,
        limits: &KvLimits,
        ns: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        self.write(ns, new.len(), |tx| {
            let old = current(tx, key)?;
            if old.as_deref() != expected {
                return Ok(false);
            }
            put(tx, Some(limits), key, old.as_deref(), Some(new))?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_end_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end("user:").as_deref(), Some("user;"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }

    #[test]
    fn namespaces_live_in_files_of_their_own() {
        assert_eq!(file_stem("plugin:counter"), "plugin-counter");
        assert_eq!(file_stem("shared:orders"), "shared-orders");
        assert!(file_stem("plugin:../x").starts_with("ns-"));
        assert!(file_stem("custom").starts_with("ns-"));
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteBackend::open(Some(dir.path())).expect("open");
        db.set(&KvLimits::default(), "plugin:a", "k", b"v")
            .expect("set");
        assert!(dir.path().join("kv/plugin-a.sqlite").is_file());
    }

    /// A namespace whose database is locked (a long write, another
    /// process) holds up no other namespace: each has its own.
    #[test]
    fn a_locked_namespace_holds_up_no_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteBackend::open(Some(dir.path())).expect("open");
        let limits = KvLimits::default();
        db.set(&limits, "plugin:a", "k", b"v").expect("a");
        let holder = Connection::open(dir.path().join("kv/plugin-a.sqlite")).expect("a's file");
        holder.execute_batch("BEGIN IMMEDIATE").expect("lock a");
        db.set(&limits, "plugin:b", "k", b"v")
            .expect("b writes while a is locked");
        assert_eq!(db.list("plugin:b", "", None, 10), Ok(vec!["k".to_string()]));
        holder.execute_batch("ROLLBACK").expect("unlock a");
    }

    fn at_once(db: &SqliteBackend) -> &dyn KvBackend {
        db.without_waiting().expect("the view that does not wait")
    }

    fn would_wait<T: std::fmt::Debug>(outcome: Result<T, KvError>) -> bool {
        matches!(outcome, Err(KvError::WouldWait(_)))
    }

    /// Without waiting, a call on a file another process holds is given up
    /// at once and undone; the waiting backend then makes it.
    #[test]
    fn a_call_that_does_not_wait_gives_up_a_file_another_process_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteBackend::open(Some(dir.path())).expect("open");
        let limits = KvLimits::default();
        db.set(&limits, "plugin:a", "k", b"before").expect("set");
        let holder = Connection::open(dir.path().join("kv/plugin-a.sqlite")).expect("a's file");
        holder.execute_batch("BEGIN IMMEDIATE").expect("lock a");
        let started = std::time::Instant::now();
        assert!(would_wait(
            at_once(&db).set(&limits, "plugin:a", "k", b"now")
        ));
        assert!(
            started.elapsed() < crate::db::BUSY_WAIT,
            "gave up without the busy wait"
        );
        assert_eq!(
            at_once(&db).get("plugin:a", "k"),
            Ok(Some(b"before".to_vec()))
        );
        holder.execute_batch("ROLLBACK").expect("unlock a");
        db.set(&limits, "plugin:a", "k", b"later")
            .expect("the waiting backend writes");
        assert_eq!(
            at_once(&db).get("plugin:a", "k"),
            Ok(Some(b"later".to_vec()))
        );
    }

    /// Without waiting, a namespace another call holds, or one not open
    /// yet, is given up.
    #[test]
    fn a_call_that_does_not_wait_gives_up_a_held_or_unopened_namespace() {
        let db = SqliteBackend::open(None).expect("open");
        let limits = KvLimits::default();
        assert!(would_wait(at_once(&db).get("plugin:a", "k")));
        db.set(&limits, "plugin:a", "k", b"v").expect("opens it");
        assert_eq!(at_once(&db).get("plugin:a", "k"), Ok(Some(b"v".to_vec())));
        let inside = db.namespaces.with(Wait::Yes, "plugin:a", String::new, |_| {
            Ok(at_once(&db).increment(&limits, "plugin:a", "n", 1))
        });
        assert!(would_wait(inside.expect("held")));
        assert_eq!(at_once(&db).get("plugin:a", "n"), Ok(None));
    }

    /// Writes that do not wait never checkpoint: once the write-ahead log
    /// is full they are given up, the next waiting write checkpoints it
    /// (the database file then holds what the log held), the one after
    /// restarts the log, and they go on.
    #[test]
    fn only_waiting_writes_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteBackend::open(Some(dir.path())).expect("open");
        let limits = KvLimits::default();
        db.set(&limits, "plugin:a", "start", b"v").expect("open a");
        let file = dir.path().join("kv/plugin-a.sqlite");
        let value = vec![b'x'; 60 << 10];
        let mut written = 0;
        while at_once(&db)
            .set(&limits, "plugin:a", &format!("k{written}"), &value)
            .is_ok()
        {
            written += 1;
            assert!(written < 1000, "a full log was never reported");
        }
        // Each write adds 15 pages of value and a few of the trees'.
        let pages = super::super::namespaces::CHECKPOINT_PAGES;
        assert!(written * 20 >= pages, "given up early, after {written}");
        let before = std::fs::metadata(&file).expect("database").len();
        assert!(before < (1 << 20), "nothing was checkpointed yet: {before}");
        db.set(&limits, "plugin:a", "waiting", b"v")
            .expect("checkpoints");
        let after = std::fs::metadata(&file).expect("database").len();
        assert!(
            after >= written as u64 * (60 << 10),
            "checkpointed: {after}"
        );
        assert!(would_wait(
            at_once(&db).set(&limits, "plugin:a", "again", b"v")
        ));
        db.set(&limits, "plugin:a", "restart", b"v")
            .expect("restarts the log");
        at_once(&db)
            .set(&limits, "plugin:a", "again", b"v")
            .expect("writes go on after the restart");
    }

    /// A namespace that holds a value over the large-value bound is left to
    /// the waiting backend, reads included, as is a large write.
    #[test]
    fn large_values_are_left_to_waiting_calls() {
        let db = SqliteBackend::open(None).expect("open");
        let limits = KvLimits::default();
        let large = vec![b'x'; super::super::namespaces::LARGE_VALUE + 1];
        db.set(&limits, "plugin:a", "small", b"v").expect("open a");
        assert!(would_wait(
            at_once(&db).set(&limits, "plugin:a", "big", &large)
        ));
        assert_eq!(
            at_once(&db).get("plugin:a", "small"),
            Ok(Some(b"v".to_vec()))
        );
        db.set(&limits, "plugin:a", "big", &large).expect("waiting");
        assert!(would_wait(at_once(&db).get("plugin:a", "small")));
        assert_eq!(db.get("plugin:a", "small"), Ok(Some(b"v".to_vec())));
    }

    /// Namespaces earlier versions kept in `store.sqlite` move to their own
    /// files, with their usage, and leave the old table empty.
    #[test]
    fn namespaces_of_earlier_versions_are_moved() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let old = Connection::open(dir.path().join(STORE_FILE)).expect("legacy");
            old.execute_batch(
                "CREATE TABLE kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                     PRIMARY KEY (ns, key)) WITHOUT ROWID;
                 INSERT INTO kv VALUES ('plugin:a', 'k1', x'7631'), ('plugin:a', 'k2', x'76'),
                     ('shared:s', 'x', x'79');",
            )
            .expect("legacy rows");
        }
        let db = SqliteBackend::open(Some(dir.path())).expect("open");
        assert_eq!(db.get("plugin:a", "k1"), Ok(Some(b"v1".to_vec())));
        assert_eq!(db.get("shared:s", "x"), Ok(Some(b"y".to_vec())));
        let tight = KvLimits {
            quota_bytes: 6,
            ..KvLimits::default()
        };
        assert!(
            matches!(
                db.set(&tight, "plugin:a", "k3", b"v"),
                Err(KvError::QuotaExceeded(_))
            ),
            "the moved usage counts"
        );
        let old = Connection::open(dir.path().join(STORE_FILE)).expect("legacy");
        let left: i64 = old
            .query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))
            .expect("count");
        assert_eq!(left, 0);
        drop(db);
        SqliteBackend::open(Some(dir.path())).expect("a second open moves nothing");
    }
}
