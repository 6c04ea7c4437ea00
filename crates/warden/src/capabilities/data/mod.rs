//! Host service "data directory": a private, persistent directory per plugin,
//! mounted read-write at [`DATA_GUEST_PATH`] when the manifest says
//! `data-dir = true`, with a byte quota (`limits.data-mb`). Every
//! read-write directory the plugin is granted is held to a quota the same
//! way: what it held when the plugin loaded, plus `limits.data-mb`.
//!
//! The directory is plain WASI file system, so plugins use their language's
//! file API. Warden interposes on the WASI calls that use space (`write`,
//! `write-via-stream`, `append-via-stream`, `set-size`, and creating files,
//! directories, symlinks and links, each entry counted as [`ENTRY_BYTES`])
//! for descriptors inside a quota'd directory, and refuses one that would
//! take the directory past its quota (`insufficient-space`, audited as
//! `data-quota`). A rename into a quota'd directory from outside it is
//! refused (`cross-device`), so files cannot be moved in uncounted. Usage
//! is counted as it happens, so overwriting counts twice; deleting a file
//! (its last link) or a directory gives back what it held; when the count
//! reaches the quota, the directory is measured again (at most once a
//! second) before anything is refused. Files count with their apparent
//! size, every entry with at least [`ENTRY_BYTES`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod wasi;

use bytes::Bytes;
use wasmtime::component::Linker;
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::audit::AuditKind;
use crate::capabilities::{Capability, InstanceContext};
use crate::error::{Error, Result};
use crate::fsutil::HeldDir;
use crate::locks::lock;
use crate::scope::CallScope;
use crate::state::PluginState;

/// Where a plugin sees its data directory.
pub const DATA_GUEST_PATH: &str = "/data";

/// What a file or directory costs at least, in bytes: a file system block.
pub const ENTRY_BYTES: u64 = 4096;

/// The longest a refused write waits for a new measurement of the directory.
const MEASURE_EVERY: Duration = Duration::from_secs(1);

/// Where the plugins' data directories live: under the host's data
/// directory, or in a temporary directory that lives as long as the host.
pub(crate) enum DataRoot {
    /// `<data-dir>/plugins`.
    Dir(PathBuf),
    /// Created on first use, removed when the host is dropped.
    Temporary(OnceLock<std::result::Result<tempfile::TempDir, String>>),
}

impl DataRoot {
    /// `<data-dir>/plugins`, or a temporary directory without a data dir.
    pub(crate) fn new(data_dir: Option<&Path>) -> Self {
        match data_dir {
            Some(dir) => DataRoot::Dir(dir.join("plugins")),
            None => DataRoot::Temporary(OnceLock::new()),
        }
    }

    fn path(&self) -> Result<PathBuf> {
        match self {
            DataRoot::Dir(dir) => Ok(dir.clone()),
            DataRoot::Temporary(dir) => dir
                .get_or_init(|| {
                    tempfile::Builder::new()
                        .prefix("warden-data-")
                        .tempdir()
                        .map_err(|e| e.to_string())
                })
                .as_ref()
                .map(|d| d.path().to_path_buf())
                .map_err(|e| Error::Host(format!("creating a temporary data directory: {e}"))),
        }
    }

    /// Opens (creating it, owner-only) the data directory of `plugin`, and
    /// measures what it holds.
    pub(crate) fn open(&self, plugin: &str, quota: u64) -> Result<Arc<DataDir>> {
        let host = self.path()?.join(plugin).join("data");
        crate::fsutil::create_owner_only_dir(&host).map_err(|e| Error::io(&host, e))?;
        let held = HeldDir::open(&host).map_err(|e| Error::io(&host, e))?;
        let dir = DataDir::new(Arc::new(held), DATA_GUEST_PATH, |_| quota)?;
        if dir.used.load(Ordering::SeqCst) > quota {
            tracing::warn!(
                plugin,
                quota,
                "data directory is over its quota; writes will be refused"
            );
        }
        Ok(dir)
    }
}

/// A directory a plugin writes to and its quota, shared by its instances:
/// its data directory, or a read-write mount.
#[derive(Debug)]
pub(crate) struct DataDir {
    host: PathBuf,
    /// The directory, open: what instances map.
    held: Arc<HeldDir>,
    /// Where the plugin sees it.
    guest: String,
    quota: u64,
    /// Bytes counted against the quota.
    used: AtomicU64,
    /// When the directory was last measured.
    measured: Mutex<Instant>,
}

impl DataDir {
    /// `held`, seen at `guest`, measured now; its quota is `quota(used)`.
    fn new(held: Arc<HeldDir>, guest: &str, quota: impl Fn(u64) -> u64) -> Result<Arc<Self>> {
        let host = held.host().to_path_buf();
        let used = measure(&held.path()).map_err(|e| Error::io(&host, e))?;
        Ok(Arc::new(DataDir {
            host,
            held,
            guest: guest.to_string(),
            quota: quota(used),
            used: AtomicU64::new(used),
            measured: Mutex::new(Instant::now()),
        }))
    }

    /// A read-write mount held to what it holds now plus `growth` bytes.
    pub(crate) fn for_mount(held: Arc<HeldDir>, guest: &str, growth: u64) -> Result<Arc<Self>> {
        Self::new(held, guest, |used| used.saturating_add(growth))
    }

    /// The directory on the host.
    pub(crate) fn host_path(&self) -> &Path {
        &self.host
    }

    /// Gives back what a deleted entry held.
    fn refund(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Takes `len` bytes from the quota. When the count says no and the last
    /// measurement is a second old, measures the directory again (what
    /// overwrites counted twice comes back) and retries once.
    fn charge(&self, len: u64) -> bool {
        let take = || {
            self.used
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                    used.checked_add(len).filter(|n| *n <= self.quota)
                })
                .is_ok()
        };
        if take() {
            return true;
        }
        // One measurement at a time; the others wait for its result.
        let mut measured = lock(&self.measured);
        if measured.elapsed() < MEASURE_EVERY {
            return take();
        }
        let Ok(actual) = measure(&self.held.path()) else {
            return false;
        };
        *measured = Instant::now();
        self.used.store(actual, Ordering::SeqCst);
        take()
    }
}

/// Bytes held under `dir`: every file with its apparent size, every entry
/// at least [`ENTRY_BYTES`]. Iterative, so depth costs no open directories;
/// symlinks are not followed, and what vanishes during the walk (a plugin
/// deleting as it goes) counts for nothing.
fn measure(dir: &Path) -> std::io::Result<u64> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    let mut top = true;
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if gone(&e) && !top => continue,
            Err(e) => return Err(e),
        };
        top = false;
        for entry in entries {
            let meta = match entry.and_then(|e| e.metadata().map(|m| (e.path(), m))) {
                Ok(found) => found,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            if meta.1.is_dir() {
                pending.push(meta.0);
            }
            total += meta.1.len().max(ENTRY_BYTES);
        }
    }
    Ok(total)
}

/// The per-instance state: the quota'd directories, and which open
/// descriptors are inside which.
pub(crate) struct Data {
    /// The data directory, if the plugin has one.
    dir: Option<Arc<DataDir>>,
    /// Every quota'd directory: the data directory and the read-write mounts.
    roots: Arc<Vec<Arc<DataDir>>>,
    scope: Arc<CallScope>,
    descriptors: HashMap<u32, Arc<DataDir>>,
}

impl Data {
    /// The directory to mount, if the plugin has one.
    pub(crate) fn mount(&self) -> Option<&HeldDir> {
        self.dir.as_deref().map(|d| &*d.held)
    }

    /// Records that `opened` was opened through `dir`, so that it is inside
    /// whichever quota'd directory `dir` is.
    pub(crate) fn opened(&mut self, dir: u32, opened: u32) {
        match self.descriptors.get(&dir).cloned() {
            Some(root) => {
                self.descriptors.insert(opened, root);
            }
            // A resource number is reused once its descriptor is closed.
            None => {
                self.descriptors.remove(&opened);
            }
        }
    }

    /// The quota that writes through descriptor `fd` count against.
    fn quota_for(&self, fd: u32) -> Option<Arc<DataDir>> {
        self.descriptors.get(&fd).cloned()
    }

    /// Whether a rename from `from` into `to` keeps within the quotas: a
    /// move into a quota'd directory must come from that same directory.
    fn may_move(&self, from: u32, to: u32) -> bool {
        match (self.quota_for(from), self.quota_for(to)) {
            (_, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(&a, &b),
            (None, Some(_)) => false,
        }
    }

    /// Takes `bytes` from the quota when `fd` is inside the data directory;
    /// false (audited) when the quota refuses.
    fn charge(&self, fd: u32, bytes: u64) -> bool {
        match self.quota_for(fd) {
            Some(dir) if !dir.charge(bytes) => {
                refuse(&self.scope, &dir);
                false
            }
            _ => true,
        }
    }

    /// Whether a new entry may be created through `fd`.
    pub(crate) fn may_create(&self, fd: u32) -> bool {
        self.charge(fd, ENTRY_BYTES)
    }
}

/// The capability: the data directory and read-write mounts (`wasi:filesystem`).
pub(crate) struct DataCapability;

impl Capability for DataCapability {
    type State = Data;

    fn name(&self) -> &'static str {
        "data-dir"
    }

    fn instance_state(&self, cx: &InstanceContext<'_>) -> Data {
        let ctx = cx.inner;
        Data {
            dir: ctx.data_dir.clone(),
            roots: ctx.quotas.clone(),
            scope: ctx.scope.clone(),
            descriptors: HashMap::new(),
        }
    }

    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut Data,
    ) -> wasmtime::Result<()> {
        wasi::add_to_linker(linker, get)
    }
}

fn refuse(scope: &CallScope, dir: &DataDir) {
    scope.audit(
        AuditKind::DataQuota,
        format!("{} bytes in {}", dir.quota, dir.guest),
        "write refused",
    );
}

/// A file stream in the data directory that stops at the quota.
struct QuotaStream {
    inner: DynOutputStream,
    dir: Arc<DataDir>,
    scope: Arc<CallScope>,
}

#[async_trait::async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[async_trait::async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if !self.dir.charge(bytes.len() as u64) {
            refuse(&self.scope, &self.dir);
            // An `io::Error`, so that `filesystem-error-code` reports
            // `insufficient-space` to guests that ask (wasi-libc does not).
            return Err(StreamError::LastOperationFailed(no_space().into()));
        }
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

fn no_space() -> std::io::Error {
    #[cfg(unix)]
    return std::io::Error::from_raw_os_error(libc::ENOSPC);
    #[cfg(not(unix))]
    return std::io::ErrorKind::StorageFull.into();
}
