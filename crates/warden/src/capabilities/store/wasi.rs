//! The standard `wasi:keyvalue` (store, atomics, batch) over the same store
//! as `warden:plugin/store`: the identifier `""` or `"default"` opens the
//! plugin's own namespace, any other name a shared store the plugin was
//! granted. Every operation goes through [`Store::run_kv`], so keys, values,
//! quotas and audit entries are those of the Warden interface.
//!
//! What the host keeps for the guest is bounded here: at most
//! [`MAX_BUCKETS`] open buckets per instance, its last [`CURSORS`] listing
//! cursors, and batches of at most [`MAX_PAGE`] keys whose answer is at most
//! [`MAX_BATCH_BYTES`] and is charged to the instance's host-memory budget
//! while it is being gathered.

use std::collections::{BTreeMap, VecDeque};

use wasmtime::component::{HasSelf, Linker, Resource};

use super::{Keys, KvBackend, KvError, MAX_PAGE, Store};
use crate::contract::standard::keyvalue::{Bucket, Error, KeyResponse};
use crate::contract::standard::{atomics, batch, keyvalue};
use crate::state::PluginState;

/// Most buckets one instance may hold open at once.
pub(crate) const MAX_BUCKETS: usize = 64;

/// Most bytes (keys and values) one `get-many` answers with.
pub(crate) const MAX_BATCH_BYTES: usize = 16 << 20;

/// Listing cursors an instance remembers; an older one is refused.
const CURSORS: usize = 16;

/// Adds `wasi:keyvalue/{store,atomics,batch}` to the linker.
pub(super) fn add_to_linker(
    linker: &mut Linker<PluginState>,
    get: fn(&mut PluginState) -> &mut Store,
) -> wasmtime::Result<()> {
    keyvalue::add_to_linker::<_, HasSelf<Store>>(linker, get)?;
    atomics::add_to_linker::<_, HasSelf<Store>>(linker, get)?;
    batch::add_to_linker::<_, HasSelf<Store>>(linker, get)
}

/// The buckets an instance holds open and the cursors it was given.
#[derive(Default)]
pub(super) struct Buckets {
    /// The backend namespace of each open bucket, by resource rep.
    open: BTreeMap<u32, String>,
    next_rep: u32,
    /// Where each recent `list-keys` page ended: cursor, namespace, last
    /// key. A cursor outlives its bucket handle (a guest that opens the
    /// bucket again resumes with it), not its namespace.
    cursors: VecDeque<(u64, String, String)>,
    next_cursor: u64,
}

impl Buckets {
    /// A rep no open bucket has (reps wrap around on a long-lived instance).
    fn free_rep(&mut self) -> u32 {
        while self.open.contains_key(&self.next_rep) {
            self.next_rep = self.next_rep.wrapping_add(1);
        }
        let rep = self.next_rep;
        self.next_rep = self.next_rep.wrapping_add(1);
        rep
    }
}

fn other(message: impl Into<String>) -> Error {
    Error::Other(message.into())
}

/// A store that is not granted is `access-denied`; the refusal is in the
/// audit log already.
fn to_wasi(e: KvError) -> Error {
    match e {
        KvError::NoSuchStore(_) => Error::AccessDenied,
        KvError::WouldWait(m) => Error::Other(KvError::Internal(m).to_string()),
        other => Error::Other(other.to_string()),
    }
}

impl Store {
    /// The bucket's namespace.
    fn bucket(&self, bucket: &Resource<Bucket>) -> Result<String, Error> {
        self.buckets
            .open
            .get(&bucket.rep())
            .cloned()
            .ok_or_else(|| other("this bucket is closed"))
    }

    /// The bucket's namespace, after checking `key`.
    fn keyed(&self, bucket: &Resource<Bucket>, key: &str) -> Result<String, Error> {
        self.check_key(key).map_err(to_wasi)?;
        self.bucket(bucket)
    }

    async fn wasi_run<T: Send + 'static>(
        &self,
        ns: String,
        keys: Keys,
        op: impl Fn(&dyn KvBackend, &super::KvLimits, &str) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, Error> {
        self.run_kv(ns, keys, op).await.map_err(to_wasi)
    }

    fn check_batch(&self, keys: usize) -> Result<(), Error> {
        match keys > MAX_PAGE as usize {
            true => Err(other(format!(
                "a batch has at most {MAX_PAGE} keys; this one has {keys}"
            ))),
            false => Ok(()),
        }
    }
}

impl keyvalue::Host for Store {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, Error> {
        let name = match identifier.as_str() {
            "default" => "",
            other => other,
        };
        let ns = self.namespace(name).map_err(to_wasi)?;
        if self.buckets.open.len() >= MAX_BUCKETS {
            return Err(other(format!(
                "an instance holds at most {MAX_BUCKETS} open buckets; drop one first"
            )));
        }
        let rep = self.buckets.free_rep();
        self.buckets.open.insert(rep, ns);
        Ok(Resource::new_own(rep))
    }
}

impl keyvalue::HostBucket for Store {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        let ns = self.keyed(&bucket, &key)?;
        self.wasi_run(ns, Keys::One, move |b, _, ns| b.get(ns, &key))
            .await
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        self.check_value(&value).map_err(to_wasi)?;
        let ns = self.keyed(&bucket, &key)?;
        self.wasi_run(ns, Keys::One, move |b, l, ns| b.set(l, ns, &key, &value))
            .await
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), Error> {
        let ns = self.keyed(&bucket, &key)?;
        self.wasi_run(ns, Keys::One, move |b, l, ns| {
            b.delete(l, ns, &key).map(drop)
        })
        .await
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, Error> {
        let ns = self.keyed(&bucket, &key)?;
        self.wasi_run(ns, Keys::One, move |b, _, ns| {
            b.get(ns, &key).map(|v| v.is_some())
        })
        .await
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<KeyResponse, Error> {
        let ns = self.bucket(&bucket)?;
        let after = match cursor {
            None => None,
            Some(c) => Some(
                self.buckets
                    .cursors
                    .iter()
                    .find(|(id, of, _)| *id == c && *of == ns)
                    .map(|(_, _, key)| key.clone())
                    .ok_or_else(|| {
                        other(format!(
                            "cursor {c} is unknown for this bucket or too old (an instance \
                             remembers its last {CURSORS}); list again from the start"
                        ))
                    })?,
            ),
        };
        let keys = self
            .wasi_run(ns.clone(), Keys::Many, move |b, _, ns| {
                b.list(ns, "", after.as_deref(), MAX_PAGE)
            })
            .await?;
        let cursor = match (keys.len() == MAX_PAGE as usize, keys.last()) {
            (true, Some(last)) => {
                let buckets = &mut self.buckets;
                let id = buckets.next_cursor;
                buckets.next_cursor += 1;
                if buckets.cursors.len() == CURSORS {
                    buckets.cursors.pop_front();
                }
                buckets.cursors.push_back((id, ns, last.clone()));
                Some(id)
            }
            _ => None,
        };
        Ok(KeyResponse { keys, cursor })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.buckets.open.remove(&bucket.rep());
        Ok(())
    }
}

impl atomics::Host for Store {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, Error> {
        let delta = i64::try_from(delta)
            .map_err(|_| other(format!("a delta is at most {}; {delta} is not", i64::MAX)))?;
        let ns = self.keyed(&bucket, &key)?;
        let value = self
            .wasi_run(ns, Keys::One, move |b, l, ns| {
                b.increment(l, ns, &key, delta)
            })
            .await?;
        u64::try_from(value).map_err(|_| other(format!("the value is {value}, which is not a u64")))
    }
}

impl batch::Host for Store {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, Error> {
        self.check_batch(keys.len())?;
        for key in &keys {
            self.check_key(key).map_err(to_wasi)?;
        }
        let ns = self.bucket(&bucket)?;
        let budget = self.budget.clone();
        let (found, _held) = self
            .wasi_run(ns, Keys::Many, move |b, _, ns| {
                let mut total = 0;
                let mut found = Vec::with_capacity(keys.len());
                let mut held = Vec::with_capacity(keys.len());
                for key in &keys {
                    let value = b.get(ns, key)?;
                    let size = key.len() + value.as_ref().map_or(0, Vec::len);
                    total += size;
                    if total > MAX_BATCH_BYTES {
                        return Err(KvError::ValueTooLarge(format!(
                            "the values asked for add up to more than {MAX_BATCH_BYTES} \
                             bytes; ask for fewer keys at once"
                        )));
                    }
                    held.push(
                        budget
                            .charge(size as u64, "a wasi:keyvalue get-many answer")
                            .map_err(|e| KvError::ValueTooLarge(e.to_string()))?,
                    );
                    found.push(value.map(|v| (key.clone(), v)));
                }
                Ok((found, held))
            })
            .await?;
        Ok(found)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Error> {
        self.check_batch(key_values.len())?;
        for (key, value) in &key_values {
            self.check_key(key).map_err(to_wasi)?;
            self.check_value(value).map_err(to_wasi)?;
        }
        let ns = self.bucket(&bucket)?;
        self.wasi_run(ns, Keys::Many, move |b, l, ns| {
            key_values
                .iter()
                .try_for_each(|(key, value)| b.set(l, ns, key, value))
        })
        .await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), Error> {
        self.check_batch(keys.len())?;
        for key in &keys {
            self.check_key(key).map_err(to_wasi)?;
        }
        let ns = self.bucket(&bucket)?;
        self.wasi_run(ns, Keys::Many, move |b, l, ns| {
            keys.iter()
                .try_for_each(|key| b.delete(l, ns, key).map(drop))
        })
        .await
    }
}
