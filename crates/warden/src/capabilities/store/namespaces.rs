//! The SQLite backend's namespaces: one database and one lock each, opened
//! on first use, reached either waiting (for the lock, for another process
//! holding the file, for a checkpoint) or not at all.
//!
//! A call that does not wait is one the host makes at once on the thread
//! of the plugin call: it takes the namespace's lock only if it is free,
//! gives up at once if another process holds the file, and writes only
//! while no checkpoint is due, so it costs its own work and nothing more.
//! Checkpoints, SQLite's only flush to disk here (`synchronous = NORMAL`
//! syncs nothing at commit), are taken off that path: the write-ahead
//! log's hook counts its pages, and the first waiting write past
//! [`CHECKPOINT_PAGES`] checkpoints it (SQLite's own automatic checkpoint,
//! which the hook replaces, would run inside whichever commit crossed the
//! line).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::KvError;
use crate::db::{BUSY_WAIT, open_file};
use crate::locks::{lock, read, write};

/// Pages in a namespace's write-ahead log past which it is checkpointed:
/// SQLite's own default for its automatic checkpoints.
pub(super) const CHECKPOINT_PAGES: i32 = 1000;

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
    open: RwLock<HashMap<String, Arc<Mutex<Namespace>>>>,
}

/// One namespace's database, and how full its write-ahead log is.
pub(super) struct Namespace {
    pub(super) conn: Connection,
    /// Pages in the write-ahead log, as its hook last counted them.
    wal_pages: Arc<AtomicI32>,
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
        let namespace = self.namespace(wait, ns, stem)?;
        let mut held = match wait {
            Wait::Yes => lock(&namespace),
            Wait::No => match namespace.try_lock() {
                Ok(held) => held,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    return Err(would_wait("another call holds the namespace"));
                }
            },
        };
        match wait {
            Wait::Yes => f(&mut held),
            Wait::No => without_busy_wait(&mut held, f),
        }
    }

    /// Runs `f` in an immediate (write-locked) transaction of `ns`; a
    /// waiting write then checkpoints a full write-ahead log.
    pub(super) fn write<T>(
        &self,
        wait: Wait,
        ns: &str,
        stem: impl FnOnce() -> String,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        self.with(wait, ns, stem, |namespace| {
            if wait == Wait::No && namespace.checkpoint_due() {
                return Err(would_wait("a checkpoint is due"));
            }
            let tx = namespace
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(super::sqlite::internal)?;
            let out = f(&tx)?;
            tx.commit().map_err(super::sqlite::internal)?;
            if wait == Wait::Yes && namespace.checkpoint_due() {
                namespace.checkpoint();
            }
            Ok(out)
        })
    }

    /// The namespace `ns`, opened (from file `stem()`.sqlite) on first use
    /// by a waiting call; a call that does not wait gives up on a namespace
    /// not open yet.
    fn namespace(
        &self,
        wait: Wait,
        ns: &str,
        stem: impl FnOnce() -> String,
    ) -> Result<Arc<Mutex<Namespace>>, KvError> {
        let found = match wait {
            Wait::Yes => read(&self.open).get(ns).cloned(),
            Wait::No => match self.open.try_read() {
                Ok(open) => open.get(ns).cloned(),
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().get(ns).cloned(),
                Err(TryLockError::WouldBlock) => None,
            },
        };
        match (found, wait) {
            (Some(namespace), _) => Ok(namespace),
            (None, Wait::No) => Err(would_wait("the namespace is not open yet")),
            (None, Wait::Yes) => self.open_namespace(ns, stem),
        }
    }

    fn open_namespace(
        &self,
        ns: &str,
        stem: impl FnOnce() -> String,
    ) -> Result<Arc<Mutex<Namespace>>, KvError> {
        let mut open = write(&self.open);
        if let Some(namespace) = open.get(ns) {
            return Ok(namespace.clone());
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
        let namespace = Arc::new(Mutex::new(Namespace { conn, wal_pages }));
        open.insert(ns.to_string(), namespace.clone());
        Ok(namespace)
    }
}

impl Namespace {
    fn checkpoint_due(&self) -> bool {
        self.wal_pages.load(Ordering::Relaxed) >= CHECKPOINT_PAGES
    }

    /// Copies the write-ahead log into the database; a failure (another
    /// process reading) leaves the count, and the next waiting write tries
    /// again.
    fn checkpoint(&mut self) {
        match self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i32>(0))
        {
            Ok(0) => self.wal_pages.store(0, Ordering::Relaxed),
            Ok(_) => tracing::debug!("a key-value checkpoint was blocked; retried later"),
            Err(e) => tracing::debug!("a key-value checkpoint failed ({e}); retried later"),
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
