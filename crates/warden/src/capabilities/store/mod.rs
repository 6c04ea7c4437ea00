//! Host service `warden:plugin/store`: a persistent key-value store with a
//! private namespace per plugin and named stores shared by grant.
//!
//! The backend sits behind [`KvBackend`]; the embedded default is SQLite
//! ([`SqliteBackend`]), one database per namespace in the host's data
//! directory. A networked store (Redis is the intended one) is another
//! implementation of the trait.
//!
//! A plugin's own namespace has the quota of its `limits.kv-mb`; a shared
//! store has the host's [`KvLimits::quota_bytes`]. Keys, prefixes and
//! cursors are at most [`KvLimits::max_key_bytes`] long.

mod namespaces;
mod sqlite;
mod wasi;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::audit::AuditKind;
use crate::capabilities::{Capability, InstanceContext};
use crate::contract::bindings::store::{self, KeyPage, StoreError};
use crate::scope::CallScope;
use crate::state::PluginState;

pub use sqlite::SqliteBackend;

/// Why a store operation failed (the WIT `store-error`). Backends make
/// these; a match on one outside this crate needs a catch-all arm, so that
/// a later kind (as `WouldWait` was) does not break it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The key is empty or too long.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The value is too large.
    #[error("value too large: {0}")]
    ValueTooLarge(String),
    /// The namespace's quota would be exceeded.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The named store is not granted.
    #[error("no such store: {0}")]
    NoSuchStore(String),
    /// `increment` on a value that is not an integer.
    #[error("not a number: {0}")]
    NotANumber(String),
    /// The backend failed.
    #[error("store failure: {0}")]
    Internal(String),
    /// A view from [`KvBackend::without_waiting`] gave the call up, undone,
    /// because it would have had to wait; the host makes it again on the
    /// blocking pool, so plugins never see this.
    #[error("the call would have waited: {0}")]
    WouldWait(String),
}

/// Sizes the store enforces per namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Most bytes (keys + values) one shared store may hold. A plugin's
    /// own namespace has the quota of its `limits.kv-mb` instead.
    pub quota_bytes: u64,
}

impl Default for KvLimits {
    fn default() -> Self {
        KvLimits {
            max_key_bytes: 512,
            max_value_bytes: 1 << 20,
            quota_bytes: 64 << 20,
        }
    }
}

/// A key-value backend. Namespaces are opaque strings; every method is
/// blocking and is called off the async runtime's workers (except those
/// of the view [`KvBackend::without_waiting`] gives). `increment` and
/// `compare_and_swap` must be atomic with respect to every other call.
pub trait KvBackend: Send + Sync {
    /// This backend as it answers a call at once, on the calling thread,
    /// when it can without waiting on anything (a lock another call holds,
    /// another process, the network, a flush to disk, a large read), and
    /// otherwise gives the call up undone with [`KvError::WouldWait`]. The host asks it
    /// first for one-key calls, which then cost no trip to the blocking
    /// pool and back; batches, and calls given up, go to the pool, where
    /// the plugin call's deadline can abandon them. The default, `None`:
    /// every call goes to the pool.
    fn without_waiting(&self) -> Option<&dyn KvBackend> {
        None
    }
    /// The value of `key`.
    fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Sets `key`, within `limits.quota_bytes` for the namespace.
    fn set(&self, limits: &KvLimits, ns: &str, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Removes `key`; true if it was set.
    fn delete(&self, limits: &KvLimits, ns: &str, key: &str) -> Result<bool, KvError>;
    /// Up to `limit` keys starting with `prefix`, greater than `after`, in order.
    fn list(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, KvError>;
    /// Adds `delta` to the integer at `key` (missing: 0); the new value.
    fn increment(&self, limits: &KvLimits, ns: &str, key: &str, delta: i64)
    -> Result<i64, KvError>;
    /// Sets `key` to `new` if it holds `expected`; true if it did.
    fn compare_and_swap(
        &self,
        limits: &KvLimits,
        ns: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError>;
}

/// How many keys a store call touches: one-key calls may run at once
/// ([`Store::run_kv`]); batches and listings (which read whole rows, as
/// many as a page holds) always run on the blocking pool.
#[derive(Clone, Copy)]
pub(crate) enum Keys {
    One,
    Many,
}

/// Most keys one `list-keys` call returns.
const MAX_PAGE: u32 = 1000;

/// The store service of one plugin instance.
pub(crate) struct Store {
    backend: Arc<dyn KvBackend>,
    limits: KvLimits,
    /// The limits of the plugin's own namespace: its own quota.
    own_limits: KvLimits,
    plugin: String,
    shared: Arc<Vec<String>>,
    scope: Arc<CallScope>,
    /// The `wasi:keyvalue` buckets the instance holds open.
    buckets: wasi::Buckets,
    /// What a batch answer is charged to.
    budget: Arc<crate::budget::HostBudget>,
}

/// The operator's `kv:STORE` grants (`kv:*`: every shared store): the
/// shared stores plugins may be given.
pub(crate) fn grants() -> super::grant::ByName {
    super::grant::ByName::new(
        "kv",
        crate::permissions::validate_store_name,
        |grants, requested, out, refused| {
            for req in &requested.kv {
                match grants.covers(&req.name) {
                    true => out.kv.push(req.name.clone()),
                    false => refused.push(crate::permissions::Refusal::not_granted(
                        "kv",
                        &req.name,
                        &req.reason,
                    )),
                }
            }
        },
    )
}

/// The capability: the key-value store (`warden:plugin/store`, `wasi:keyvalue`).
pub(crate) struct StoreCapability;

impl Capability for StoreCapability {
    type State = Store;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn instance_state(&self, cx: &InstanceContext<'_>) -> Store {
        let ctx = cx.inner;
        Store {
            backend: ctx.settings.kv.clone(),
            limits: ctx.settings.kv_limits,
            own_limits: KvLimits {
                quota_bytes: ctx.kv_quota,
                ..ctx.settings.kv_limits
            },
            plugin: ctx.scope.plugin.to_string(),
            shared: ctx.shared_stores.clone(),
            scope: ctx.scope.clone(),
            buckets: wasi::Buckets::default(),
            budget: ctx.budget.clone(),
        }
    }

    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut Store,
    ) -> wasmtime::Result<()> {
        store::add_to_linker::<_, HasSelf<Store>>(linker, get)?;
        wasi::add_to_linker(linker, get)
    }
}

impl Store {
    /// The backend namespace of `store`, if this plugin may use it.
    fn namespace(&self, store: &str) -> Result<String, KvError> {
        if store.is_empty() {
            Ok(format!("plugin:{}", self.plugin))
        } else if self.shared.iter().any(|s| s == store) {
            Ok(format!("shared:{store}"))
        } else {
            self.scope
                .audit(AuditKind::StoreDenied, format!("store {store}"), "denied");
            Err(KvError::NoSuchStore(format!(
                "store `{store}` is not granted to this plugin; ask for it in `[permissions] kv`"
            )))
        }
    }

    fn check_key(&self, key: &str) -> Result<(), KvError> {
        if key.is_empty() || key.len() > self.limits.max_key_bytes {
            return Err(KvError::InvalidKey(format!(
                "keys are 1 to {} bytes; this one is {}",
                self.limits.max_key_bytes,
                key.len()
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), KvError> {
        if value.len() > self.limits.max_value_bytes {
            return Err(KvError::ValueTooLarge(format!(
                "values are at most {} bytes; this one is {}",
                self.limits.max_value_bytes,
                value.len()
            )));
        }
        Ok(())
    }

    /// The namespace for `store`, after checking it and `key`.
    fn prepare(&self, store: &str, key: Option<&str>) -> Result<String, StoreError> {
        let ns = self.namespace(store).map_err(to_wit)?;
        if let Some(key) = key {
            self.check_key(key).map_err(to_wit)?;
        }
        Ok(ns)
    }

    /// Runs `op`, one key's call, on namespace `ns` ([`Store::run_kv`]).
    async fn run<T: Send + 'static>(
        &self,
        ns: String,
        op: impl Fn(&dyn KvBackend, &KvLimits, &str) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.run_kv(ns, Keys::One, op).await.map_err(to_wit)
    }

    /// [`Store::run`] with the backend's own error: the one place every
    /// operation of both interfaces passes, so quota refusals are audited
    /// alike.
    ///
    /// A call on one key is first offered to the backend's view that does
    /// not wait ([`KvBackend::without_waiting`]), here on the calling
    /// thread; a batch, or a call that view gave up, runs on the blocking
    /// pool (a trip there and back, and on a busy runtime a wait in its
    /// queue to resume), where the plugin call's deadline can abandon it.
    async fn run_kv<T: Send + 'static>(
        &self,
        ns: String,
        keys: Keys,
        op: impl Fn(&dyn KvBackend, &KvLimits, &str) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let limits = match ns.starts_with("plugin:") {
            true => self.own_limits,
            false => self.limits,
        };
        let now = match (keys, self.backend.without_waiting()) {
            (Keys::One, Some(now)) => Some(op(now, &limits, &ns)),
            _ => None,
        };
        let outcome = match now {
            Some(Err(KvError::WouldWait(_))) | None => {
                let backend = self.backend.clone();
                tokio::task::spawn_blocking(move || op(&*backend, &limits, &ns))
                    .await
                    .unwrap_or_else(|e| Err(KvError::Internal(e.to_string())))
            }
            Some(done) => done,
        };
        if let Err(KvError::QuotaExceeded(detail)) = &outcome {
            self.scope
                .audit(AuditKind::StoreQuota, detail.clone(), "write refused");
        }
        outcome
    }
}

fn to_wit(e: KvError) -> StoreError {
    match e {
        KvError::InvalidKey(m) => StoreError::InvalidKey(m),
        KvError::ValueTooLarge(m) => StoreError::ValueTooLarge(m),
        KvError::QuotaExceeded(m) => StoreError::QuotaExceeded(m),
        KvError::NoSuchStore(m) => StoreError::NoSuchStore(m),
        KvError::NotANumber(m) => StoreError::NotANumber(m),
        KvError::Internal(m) | KvError::WouldWait(m) => StoreError::Internal(m),
    }
}

impl store::Host for Store {
    async fn get(&mut self, store: String, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(self.prepare(&store, Some(&key))?, move |b, _, ns| {
            b.get(ns, &key)
        })
        .await
    }

    async fn set(&mut self, store: String, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        self.check_value(&value).map_err(to_wit)?;
        self.run(self.prepare(&store, Some(&key))?, move |b, l, ns| {
            b.set(l, ns, &key, &value)
        })
        .await
    }

    async fn delete(&mut self, store: String, key: String) -> Result<bool, StoreError> {
        self.run(self.prepare(&store, Some(&key))?, move |b, l, ns| {
            b.delete(l, ns, &key)
        })
        .await
    }

    async fn exists(&mut self, store: String, key: String) -> Result<bool, StoreError> {
        self.run(self.prepare(&store, Some(&key))?, move |b, _, ns| {
            b.get(ns, &key).map(|v| v.is_some())
        })
        .await
    }

    async fn list_keys(
        &mut self,
        store: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<KeyPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let ns = self.prepare(&store, None)?;
        for (what, text) in [("prefix", Some(&prefix)), ("cursor", cursor.as_ref())] {
            if text.is_some_and(|t| t.len() > self.limits.max_key_bytes) {
                return Err(StoreError::InvalidKey(format!(
                    "the {what} is longer than a key may be ({} bytes)",
                    self.limits.max_key_bytes
                )));
            }
        }
        self.run_kv(ns, Keys::Many, move |b, _, ns| {
            let keys = b.list(ns, &prefix, cursor.as_deref(), limit)?;
            let next_cursor = match keys.len() as u32 == limit {
                true => keys.last().cloned(),
                false => None,
            };
            Ok(KeyPage { keys, next_cursor })
        })
        .await
        .map_err(to_wit)
    }

    async fn increment(
        &mut self,
        store: String,
        key: String,
        delta: i64,
    ) -> Result<i64, StoreError> {
        self.run(self.prepare(&store, Some(&key))?, move |b, l, ns| {
            b.increment(l, ns, &key, delta)
        })
        .await
    }

    async fn compare_and_swap(
        &mut self,
        store: String,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.check_value(&new).map_err(to_wit)?;
        self.run(self.prepare(&store, Some(&key))?, move |b, l, ns| {
            b.compare_and_swap(l, ns, &key, expected.as_deref(), &new)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_backend_persists_counts_quota_and_pages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = KvLimits {
            quota_bytes: 100,
            ..KvLimits::default()
        };
        {
            let db = SqliteBackend::open(Some(dir.path())).expect("open");
            db.set(&limits, "a", "k1", b"v1").expect("set");
            assert_eq!(db.increment(&limits, "a", "n", 5), Ok(5));
            assert_eq!(db.increment(&limits, "a", "n", -2), Ok(3));
            assert!(matches!(
                db.increment(&limits, "a", "k1", 1),
                Err(KvError::NotANumber(_))
            ));
            assert_eq!(db.compare_and_swap(&limits, "a", "c", None, b"x"), Ok(true));
            assert_eq!(
                db.compare_and_swap(&limits, "a", "c", None, b"y"),
                Ok(false)
            );
            assert_eq!(
                db.compare_and_swap(&limits, "a", "c", Some(b"x"), b"y"),
                Ok(true)
            );
            assert!(matches!(
                db.set(&limits, "a", "big", &[0; 100]),
                Err(KvError::QuotaExceeded(_))
            ));
            assert_eq!(db.get("b", "k1"), Ok(None), "namespaces are separate");
        }
        let db = SqliteBackend::open(Some(dir.path())).expect("reopen");
        assert_eq!(db.get("a", "k1"), Ok(Some(b"v1".to_vec())));
        assert_eq!(db.get("a", "n"), Ok(Some(b"3".to_vec())));
        for i in 0..5 {
            db.set(&KvLimits::default(), "p", &format!("user:{i}"), b"x")
                .expect("set");
        }
        db.set(&KvLimits::default(), "p", "other", b"x")
            .expect("set");
        let first = db.list("p", "user:", None, 3).expect("page");
        assert_eq!(first, ["user:0", "user:1", "user:2"]);
        let rest = db.list("p", "user:", Some("user:2"), 3).expect("page");
        assert_eq!(rest, ["user:3", "user:4"]);
        assert_eq!(db.delete(&limits, "a", "k1"), Ok(true));
        assert_eq!(db.delete(&limits, "a", "k1"), Ok(false));
        // Freed space counts again: the quota is back below the limit.
        db.set(&limits, "a", "k2", &[1; 60])
            .expect("fits after the delete");
    }
}
