//! The embedded key-value backend: one SQLite database (WAL) in the host's
//! data directory, or in memory without one.
//!
//! Every write is one transaction, and the per-namespace usage that quotas
//! are checked against is updated in the same transaction, so a killed host
//! leaves neither a torn value nor a wrong count.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{KvBackend, KvError, KvLimits};
use crate::locks::lock;

/// The file name of the store in the data directory.
pub const STORE_FILE: &str = "store.sqlite";

/// Opens (or creates) the host's embedded database, `dir/store.sqlite`
/// (`None`: in memory), and creates `schema`'s tables if missing. `what`
/// names the user of the connection in errors.
pub(crate) fn open_database(
    dir: Option<&Path>,
    what: &str,
    schema: &str,
) -> Result<Connection, String> {
    let conn = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Connection::open(dir.join(STORE_FILE))
        }
        None => Connection::open_in_memory(),
    }
    .map_err(|e| format!("opening {what}: {e}"))?;
    // Other processes (CLI commands sharing the data directory) may hold the
    // lock. The busy timeout covers ordinary waits; switching to WAL and a
    // read lock upgraded by `CREATE TABLE` can report busy at once instead
    // (SQLite refuses to wait where waiting could deadlock), so those are
    // retried until the same deadline.
    const WAIT: Duration = Duration::from_secs(5);
    conn.busy_timeout(WAIT)
        .map_err(|e| format!("preparing {what}: {e}"))?;
    let deadline = Instant::now() + WAIT;
    let prepare = format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         BEGIN IMMEDIATE;
         {schema}
         COMMIT;"
    );
    loop {
        match conn.execute_batch(&prepare) {
            Ok(()) => return Ok(conn),
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                // A failed batch may leave its transaction open.
                let _ = conn.execute_batch("ROLLBACK");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("preparing {what}: {e}")),
        }
    }
}

/// Whether `e` is SQLite's "another connection holds the lock".
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// SQLite behind a mutex: one writer at a time, which is what makes
/// `increment` and `compare-and-swap` atomic.
pub struct SqliteBackend {
    conn: Mutex<Connection>,
}

impl SqliteBackend {
    /// Opens (or creates) `dir/store.sqlite`; `None`: an in-memory store.
    pub fn open(dir: Option<&Path>) -> Result<Self, String> {
        let conn = open_database(
            dir,
            "the key-value store",
            "CREATE TABLE IF NOT EXISTS kv (
                 ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                 PRIMARY KEY (ns, key)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS usage (
                 ns TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;",
        )?;
        Ok(SqliteBackend {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` in an immediate (write-locked) transaction.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(internal)?;
        let out = f(&tx)?;
        tx.commit().map_err(internal)?;
        Ok(out)
    }
}

fn internal(e: rusqlite::Error) -> KvError {
    KvError::Internal(e.to_string())
}

fn current(conn: &Connection, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
    conn.query_row(
        "SELECT value FROM kv WHERE ns = ?1 AND key = ?2",
        params![ns, key],
        |r| r.get(0),
    )
    .optional()
    .map_err(internal)
}

/// Writes `value` (or deletes, for `None`) and charges the size change to
/// the namespace's quota.
fn put(
    tx: &rusqlite::Transaction<'_>,
    limits: &KvLimits,
    ns: &str,
    key: &str,
    old: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), KvError> {
    let size = |v: Option<&[u8]>| v.map_or(0, |v| (key.len() + v.len()) as i64);
    let delta = size(value) - size(old);
    let used: i64 = tx
        .query_row("SELECT bytes FROM usage WHERE ns = ?1", params![ns], |r| {
            r.get(0)
        })
        .optional()
        .map_err(internal)?
        .unwrap_or(0);
    if delta > 0 && used + delta > limits.quota_bytes as i64 {
        return Err(KvError::QuotaExceeded(format!(
            "the store holds {used} bytes; this write needs {delta} more and the quota is {}",
            limits.quota_bytes
        )));
    }
    match value {
        Some(v) => tx.execute(
            "INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
            params![ns, key, v],
        ),
        None => tx.execute(
            "DELETE FROM kv WHERE ns = ?1 AND key = ?2",
            params![ns, key],
        ),
    }
    .map_err(internal)?;
    tx.execute(
        "INSERT INTO usage (ns, bytes) VALUES (?1, ?2)
         ON CONFLICT (ns) DO UPDATE SET bytes = bytes + ?2",
        params![ns, delta],
    )
    .map_err(internal)?;
    Ok(())
}

impl KvBackend for SqliteBackend {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        current(&lock(&self.conn), ns, key)
    }

    fn set(&self, limits: &KvLimits, ns: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.write(|tx| {
            let old = current(tx, ns, key)?;
            put(tx, limits, ns, key, old.as_deref(), Some(value))
        })
    }

    fn delete(&self, limits: &KvLimits, ns: &str, key: &str) -> Result<bool, KvError> {
        self.write(|tx| {
            let old = current(tx, ns, key)?;
            if old.is_some() {
                put(tx, limits, ns, key, old.as_deref(), None)?;
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
        let conn = lock(&self.conn);
        let mut stmt = conn
            .prepare_cached(
                "SELECT key FROM kv WHERE ns = ?1 AND substr(key, 1, length(?2)) = ?2
                 AND key > ?3 ORDER BY key LIMIT ?4",
            )
            .map_err(internal)?;
        let rows = stmt
            .query_map(params![ns, prefix, after.unwrap_or(""), limit], |r| {
                r.get(0)
            })
            .map_err(internal)?;
        rows.collect::<Result<Vec<String>, _>>().map_err(internal)
    }

    fn increment(
        &self,
        limits: &KvLimits,
        ns: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvError> {
        self.write(|tx| {
            let old = current(tx, ns, key)?;
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
                limits,
                ns,
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
        self.write(|tx| {
            let old = current(tx, ns, key)?;
            if old.as_deref() != expected {
                return Ok(false);
            }
            put(tx, limits, ns, key, old.as_deref(), Some(new))?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Several processes (CLI commands) may open one fresh data directory at
    /// once; none of them may fail with "database is locked".
    #[test]
    fn concurrent_first_opens_wait_for_each_other() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let opened: Vec<Result<Connection, String>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|i| {
                        let dir = dir.path();
                        s.spawn(move || {
                            open_database(
                                Some(dir),
                                "a test table",
                                &format!("CREATE TABLE IF NOT EXISTS t{i} (x INTEGER);"),
                            )
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("thread"))
                    .collect()
            });
            for result in opened {
                assert!(result.is_ok(), "{}", result.err().unwrap_or_default());
            }
        }
    }
}
