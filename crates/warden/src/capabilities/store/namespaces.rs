//! The SQLite backend's namespaces: one database and one lock each, opened
//! on first use, reached either waiting (for the lock, for another process
//! holding the file, for a checkpoint) or not at all.
//!
//! A call that does not wait is one the host makes at once on the thread
//! of the plugin call, so it must cost its own small work and nothing
//! more. It takes the namespace's lock only if the lock is free and no
//! waiting call is queued for it (which would otherwise be overtaken again
//! and again), gives up at once if another process holds the file, and
//! leaves to the blocking pool every namespace that holds a value over
//! [`LARGE_VALUE`] (SQLite reads a whole row when it compares keys, and
//! rows live with their keys here) and every write while the write-ahead
//! log is due for a checkpoint. Checkpoints and the sync that restarting
//! the log after one makes (`synchronous = NORMAL` syncs nothing else) run
//! only on the pool: the write-ahead log's hook counts its pages, the first
//! waiting write past [`CHECKPOINT_PAGES`] checkpoints it, and the count
//! stays until the next commit, which restarts the log and also waits.
//! SQLite's automatic checkpoint, which the hook replaces, would run inside
//! whichever commit crossed the line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::KvError;
use crate::db::{BUSY_WAIT, open_file};
use crate::locks::{lock, read, write};

/// Pages in a namespace's write-ahead log past which it is checkpointed:
/// SQLite's own default for its automatic checkpoints.
pub(super) const CHECKPOINT_PAGES: i32 = 1000;

/// The largest value a namespace may hold and still be reached without
/// waiting, in bytes.
pub(super) const LARGE_VALUE: usize = 64 << 10;

/// Whether a call waits to reach its namespace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Wait {
    /// For its lock, another process and a due checkpoint.
    Yes,
    /// Not at all: what would wait is given up, undone, as
    /// [`KvError::WouldWait`].
    No,
}

/// Every open namespace of a backend, and where their files live.
pub(super) struct Namespaces {
    dir: Option<PathBuf>,
    schema: &'static str,
    open: RwLock<HashMap<String, Arc<Slot>>>,
}

/// An open namespace, and how many waiting calls are queued for its lock.
pub(super) struct Slot {
    waiting: AtomicU32,
    namespace: Mutex<Namespace>,
}

/// One namespace's database, how full its write-ahead log is, and whether
/// it holds large values.
pub(super) struct Namespace {
    pub(super) conn: Connection,
    /// Pages in the write-ahead log, as its hook last counted them.
    wal_pages: Arc<AtomicI32>,
    /// Whether a value over [`LARGE_VALUE`] was stored (or was there when
    /// the namespace opened); never unset while it is open.
    large_values: bool,
}

impl Namespaces {
    /// Namespaces with `schema`, in files under `dir` (`None`: in memory).
    pub(super) fn new(dir: Option<PathBuf>, schema: &'static str) -> Self {
        Namespaces {
            dir,
            schema,
            open: RwLock::default(),
        }
    }

    /// Runs `f` on namespace `ns`, holding its lock.
    pub(super) fn with<T>(
        &self,
        wait: Wait,
        ns: &str,
        stem: impl FnOnce() -> String,
        f: impl FnOnce(&mut Namespace) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        let slot = self.slot(wait, ns, stem)?;
        let mut held = match wait {
            Wait::Yes => {
                slot.waiting.fetch_add(1, Ordering::SeqCst);
                let held = lock(&slot.namespace);
                slot.waiting.fetch_sub(1, Ordering::SeqCst);
                held
            }
            Wait::No if slot.waiting.load(Ordering::SeqCst) > 0 => {
                return Err(would_wait("a waiting call is queued for the namespace"));
            }
            Wait::No => match slot.namespace.try_lock() {
                Ok(held) => held,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    return Err(would_wait("another call holds the namespace"));
                }
            },
        };
        match wait {
            Wait::Yes => f(&mut held),
            Wait::No if held.large_values => Err(would_wait("the namespace holds large values")),
            Wait::No => without_busy_wait(&mut held, f),
        }
    }

    /// Runs `f`, which stores a value of `stored` bytes (0: none), in an
    /// immediate (write-locked) transaction of `ns`; a waiting write then
    /// checkpoints a full write-ahead log.
    pub(super) fn write<T>(
        &self,
        wait: Wait,
        ns: &str,
        stem: impl FnOnce() -> String,
        stored: usize,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        self.with(wait, ns, stem, |namespace| {
            if wait == Wait::No && namespace.checkpoint_due() {
                return Err(would_wait("a checkpoint is due"));
            }
            if wait == Wait::No && stored > LARGE_VALUE {
                return Err(would_wait("the value is large"));
            }
            let tx = namespace
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(super::sqlite::internal)?;
            let out = f(&tx)?;
            tx.commit().map_err(super::sqlite::internal)?;
            namespace.large_values |= stored > LARGE_VALUE;
            if wait == Wait::Yes && namespace.checkpoint_due() {
                namespace.checkpoint();
            }
            Ok(out)
        })
    }

    /// The namespace `ns`, opened (from file `stem()`.sqlite) on first use
    /// by a waiting call; a call that does not wait gives up on a namespace
    /// not open yet.
    fn slot(
        &self,
        wait: Wait,
        ns: &str,
        stem: impl FnOnce() -> String,
    ) -> Result<Arc<Slot>, KvError> {
        let found = match wait {
            Wait::Yes => read(&self.open).get(ns).cloned(),
            Wait::No => match self.open.try_read() {
                Ok(open) => open.get(ns).cloned(),
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().get(ns).cloned(),
                Err(TryLockError::WouldBlock) => None,
            },
        };
        match (found, wait) {
            (Some(slot), _) => Ok(slot),
            (None, Wait::No) => Err(would_wait("the namespace is not open yet")),
            (None, Wait::Yes) => self.open_namespace(ns, stem),
        }
    }

    fn open_namespace(
        &self,
        ns: &str,
        stem: impl FnOnce() -> String,
    ) -> Result<Arc<Slot>, KvError> {
        let mut open = write(&self.open);
        if let Some(slot) = open.get(ns) {
            return Ok(slot.clone());
        }
        let file = self
            .dir
            .as_ref()
            .map(|d| d.join(format!("{}.sqlite", stem())));
        let mut conn = open_file(file.as_deref(), "a key-value namespace", self.schema)
            .map_err(|why| super::sqlite::unopenable(ns, why))?;
        let wal_pages = Arc::new(AtomicI32::new(0));
        let counted = wal_pages.clone();
        // Replaces SQLite's automatic checkpoint (see the module's doc).
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
            counted.store(pages, Ordering::Relaxed);
            Ok(())
        }))
        .map_err(|e| super::sqlite::unopenable(ns, e.to_string()))?;
        let large_values = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM kv WHERE length(value) > ?1)",
                [LARGE_VALUE as i64],
                |r| r.get(0),
            )
            .map_err(|e| super::sqlite::unopenable(ns, e.to_string()))?;
        let slot = Arc::new(Slot {
            waiting: AtomicU32::new(0),
            namespace: Mutex::new(Namespace {
                conn,
                wal_pages,
                large_values,
            }),
        });
        open.insert(ns.to_string(), slot.clone());
        Ok(slot)
    }
}

impl Namespace {
    fn checkpoint_due(&self) -> bool {
        self.wal_pages.load(Ordering::Relaxed) >= CHECKPOINT_PAGES
    }

    /// Copies the write-ahead log into the database. The count stays: the
    /// next commit restarts the log (or, if another process's reader kept
    /// frames, finds it still full) and says how many pages it holds.
    fn checkpoint(&mut self) {
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!("a key-value checkpoint failed ({e}); the next write tries again");
        }
    }
}

/// Runs `f` with SQLite's busy handler off, so that a file another process
/// holds is given up at once (SQLite's busy error becomes
/// [`KvError::WouldWait`]) instead of waited for.
fn without_busy_wait<T>(
    namespace: &mut MutexGuard<'_, Namespace>,
    f: impl FnOnce(&mut Namespace) -> Result<T, KvError>,
) -> Result<T, KvError> {
    let set = |namespace: &Namespace, wait: Duration| {
        namespace
            .conn
            .busy_timeout(wait)
            .map_err(super::sqlite::internal)
    };
    set(namespace, Duration::ZERO)?;
    let out = f(namespace);
    set(namespace, BUSY_WAIT)?;
    out
}

fn would_wait(why: &str) -> KvError {
    KvError::WouldWait(why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str =
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);";

    /// A waiting call queued for the lock is not overtaken: while one is,
    /// calls that do not wait give way, even with the lock free.
    #[test]
    fn calls_that_do_not_wait_give_way_to_a_queued_waiting_call() {
        let namespaces = Namespaces::new(None, SCHEMA);
        let stem = || "a".to_string();
        let nothing = |_: &mut Namespace| Ok(());
        namespaces
            .with(Wait::Yes, "a", stem, nothing)
            .expect("open");
        assert_eq!(namespaces.with(Wait::No, "a", stem, nothing), Ok(()));
        let slot = namespaces.slot(Wait::No, "a", stem).expect("open");
        slot.waiting.fetch_add(1, Ordering::SeqCst);
        assert!(matches!(
            namespaces.with(Wait::No, "a", stem, nothing),
            Err(KvError::WouldWait(_))
        ));
        slot.waiting.fetch_sub(1, Ordering::SeqCst);
        assert_eq!(namespaces.with(Wait::No, "a", stem, nothing), Ok(()));
    }

    /// A waiting call registers while it waits for the lock, and leaves.
    #[test]
    fn a_waiting_call_is_counted_while_it_waits() {
        let namespaces = Namespaces::new(None, SCHEMA);
        let stem = || "a".to_string();
        let slot = namespaces.slot(Wait::Yes, "a", stem).expect("open");
        std::thread::scope(|s| {
            let held = lock(&slot.namespace);
            let waiter = s.spawn(|| namespaces.with(Wait::Yes, "a", stem, |_| Ok(())));
            while slot.waiting.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
            drop(held);
            assert_eq!(waiter.join().expect("waiter"), Ok(()));
        });
        assert_eq!(slot.waiting.load(Ordering::SeqCst), 0);
    }
}
