//! Compile once: compiled components cached in memory and on disk, keyed by
//! the component's sha256 and the engine's compatibility hash. The disk
//! cache has a size cap: after each write, the entries used longest ago
//! (a hit marks an entry used) are removed until it fits.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::error::{Error, Result};
use crate::fsutil::write_atomically;
use crate::locks::lock;

/// Where a compiled component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// Already compiled in this process.
    Memory,
    /// Loaded from the on-disk cache.
    Disk,
    /// Compiled now (and written to the disk cache if there is one).
    Compiled,
}

/// Counters of the compiled-artifact cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Loads served from memory.
    pub memory_hits: u64,
    /// Loads served from disk.
    pub disk_hits: u64,
    /// Loads that had to compile.
    pub compiled: u64,
}

pub(crate) struct ArtifactCache {
    /// What compiles: an engine of its own per compile, dropped with the
    /// buffers its compiler keeps for reuse.
    compiler: wasmtime::Config,
    dir: Option<PathBuf>,
    max_bytes: u64,
    engine_key: String,
    memory: Mutex<HashMap<String, Component>>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiled: AtomicU64,
}

impl ArtifactCache {
    pub(crate) fn new(
        engine: &wasmtime::Engine,
        compiler: wasmtime::Config,
        dir: Option<PathBuf>,
        max_bytes: u64,
    ) -> Result<Self> {
        if let Some(dir) = &dir {
            create_private_dir(dir)?;
        }
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(ArtifactCache {
            compiler,
            dir,
            max_bytes,
            engine_key,
            memory: Mutex::new(HashMap::new()),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            compiled: AtomicU64::new(0),
        })
    }

    /// Drops the in-memory copy of a component no loaded plugin uses any more.
    pub(crate) fn forget(&self, sha256: &str) {
        self.lock_memory().remove(sha256);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
        }
    }

    /// The compiled form of `bytes` (whose sha256 is `sha256`), compiling
    /// only when neither cache has it.
    pub(crate) fn get_or_compile(
        &self,
        engine: &wasmtime::Engine,
        bytes: &[u8],
        sha256: &str,
        source_name: &str,
    ) -> Result<(Component, CacheOutcome)> {
        if let Some(c) = self.lock_memory().get(sha256) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((c.clone(), CacheOutcome::Memory));
        }
        let file = self
            .dir
            .as_ref()
            .map(|d| d.join(format!("{sha256}-{}.cwasm", self.engine_key)));
        let (component, outcome) = match file.as_deref().and_then(|f| load_from_disk(engine, f)) {
            Some(c) => {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                (c, CacheOutcome::Disk)
            }
            None => {
                let compiled = self.compile(engine, bytes, file.as_deref(), source_name);
                give_back_compiler_memory();
                let c = compiled?;
                self.compiled.fetch_add(1, Ordering::Relaxed);
                (c, CacheOutcome::Compiled)
            }
        };
        self.lock_memory()
            .insert(sha256.to_string(), component.clone());
        Ok((component, outcome))
    }

    fn compile(
        &self,
        engine: &wasmtime::Engine,
        bytes: &[u8],
        file: Option<&Path>,
        source_name: &str,
    ) -> Result<Component> {
        let invalid = |e: wasmtime::Error| Error::InvalidComponent {
            source_name: source_name.to_string(),
            reason: format!("{e:#}"),
        };
        let compiler = wasmtime::Engine::new(&self.compiler)
            .map_err(|e| Error::host("creating the wasm compiler", e))?;
        let serialized = compiler.precompile_component(bytes).map_err(invalid)?;
        drop(compiler);
        // SAFETY (both): the bytes were produced just now by an engine of
        // this one's configuration, and the file holds them (private to this
        // host, see `load_from_disk`). Loading can still refuse a component
        // the instance pool cannot hold: that is the component's fault.
        let Some(file) = file else {
            return unsafe { Component::deserialize(engine, &serialized) }.map_err(invalid);
        };
        if let Err(e) = write_atomically(file, &serialized) {
            tracing::warn!(file = %file.display(), error = %e, "could not write the compiled-plugin cache");
            return unsafe { Component::deserialize(engine, &serialized) }.map_err(invalid);
        }
        // Mapped from the file, code is resident only where it runs (and
        // shared with the page cache); copied from `serialized`, all of it is.
        match unsafe { Component::deserialize_file(engine, file) } {
            Ok(component) => {
                evict(file, self.max_bytes);
                Ok(component)
            }
            Err(e) => {
                let _ = std::fs::remove_file(file);
                Err(invalid(e))
            }
        }
    }

    fn lock_memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Component>> {
        lock(&self.memory)
    }
}

/// Returns what the compiler freed to the operating system. Cranelift
/// allocates hundreds of megabytes on its worker threads and frees them at
/// the end; glibc keeps freed memory in each thread's arena, so a server
/// that had just compiled the example plugins stayed at 583 MiB resident
/// without this, and at 238 MiB with it (147 MiB loading them from the disk
/// cache): `scripts/idle-rss.sh`.
fn give_back_compiler_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free pages of the allocator's own
    // arenas; it touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn load_from_disk(engine: &wasmtime::Engine, file: &Path) -> Option<Component> {
    if !file.is_file() {
        return None;
    }
    // SAFETY: the cache directory is private to this host (created 0700)
    // and only ever holds files this host wrote with `precompile_component`;
    // the name binds the content hash and the engine's compatibility hash.
    match unsafe { Component::deserialize_file(engine, file) } {
        Ok(c) => {
            // Used now: the last to go when the cache must shrink.
            let _ = std::fs::File::options()
                .append(true)
                .open(file)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            Some(c)
        }
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "discarding unusable cache entry");
            let _ = std::fs::remove_file(file);
            None
        }
    }
}

/// Removes the cache entries beside `kept` used longest ago until the
/// directory's entries take at most `max_bytes` (`kept`, just written,
/// stays even if it alone is larger).
fn evict(kept: &Path, max_bytes: u64) {
    let Some(dir) = kept.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let meta = e.metadata().ok()?;
            let path = e.path();
            let cached = meta.is_file() && path.extension().is_some_and(|x| x == "cwasm");
            cached.then_some((meta.modified().ok()?, meta.len(), path))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if path == kept {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => total -= len,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "could not shrink the compiled-plugin cache")
            }
        }
    }
}

/// Creates the cache directory owner-only, and refuses one that another
/// user could write to: whoever can write there can make this host run
/// their native code.
fn create_private_dir(dir: &Path) -> Result<()> {
    crate::fsutil::create_owner_only_dir(dir).map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let problem = if !meta.is_dir() {
            Some("is not a directory (a symlink is not accepted)")
        } else if meta.uid() != me {
            Some("belongs to another user")
        } else if meta.mode() & 0o022 != 0 {
            Some("is writable by other users (make it 0700 or 0755)")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::Host(format!(
                "compiled-plugin cache {} {problem}; Warden loads native code from it, so it must be private",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Feeds `Hash` output into sha256, so the key is stable across processes
/// (unlike `DefaultHasher`'s seeded output).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// `$XDG_CACHE_HOME/warden`, else `~/.cache/warden`. Relative values are
/// ignored, as the XDG spec says: a cache of native code must not follow
/// the current directory into an untrusted checkout.
pub fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |p: PathBuf| p.is_absolute().then_some(p);
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache"))
                .and_then(absolute)
        })?;
    Some(base.join("warden"))
}
