//! The host's embedded SQLite databases: opened the same way everywhere,
//! waiting for other processes (CLI commands sharing the data directory)
//! instead of failing.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

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
    open_file(dir.map(|d| d.join(STORE_FILE)).as_deref(), what, schema)
}

/// How long a connection waits for a lock another process holds.
pub(crate) const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Opens (or creates) the database `file` (`None`: in memory) and its
/// directory, and creates `schema`'s tables if missing.
pub(crate) fn open_file(
    file: Option<&Path>,
    what: &str,
    schema: &str,
) -> Result<Connection, String> {
    let conn = match file {
        Some(file) => {
            if let Some(dir) = file.parent() {
                crate::fsutil::create_owner_only_dir(dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            Connection::open(file)
        }
        None => Connection::open_in_memory(),
    }
    .map_err(|e| format!("opening {what}: {e}"))?;
    // Other processes (CLI commands sharing the data directory) may hold the
    // lock. The busy timeout covers ordinary waits; switching to WAL and a
    // read lock upgraded by `CREATE TABLE` can report busy at once instead
    // (SQLite refuses to wait where waiting could deadlock), so those are
    // retried until the same deadline.
    conn.busy_timeout(BUSY_WAIT)
        .map_err(|e| format!("preparing {what}: {e}"))?;
    let deadline = Instant::now() + BUSY_WAIT;
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
