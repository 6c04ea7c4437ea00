//! Watching plugin directories: a changed plugin is reloaded, a new one
//! loaded. File-system events are debounced (a deploy that writes several
//! files, or one file in several writes, settles first), and a change is
//! only acted on when the content differs: a touch reloads nothing (see
//! [`Warden::reload`]). A half-written component fails validation and
//! leaves the loaded build serving; the write that completes it triggers
//! the next attempt. Deploy by writing a temporary file and renaming it
//! over the old one, which is atomic. Deleting a plugin's files does not
//! unload it (use [`Warden::unload`]); stop the watcher before shutting the
//! host down.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

use crate::error::{Error, Result};
use crate::manifest::MANIFEST_FILE;
use crate::reload::Reloaded;
use crate::warden::Warden;

/// Watches a plugin directory for as long as it lives; dropping it stops
/// the watching.
pub struct Watcher {
    _watcher: notify::RecommendedWatcher,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

/// What a [`Watcher`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchStats {
    /// Plugins whose files changed and were looked at.
    pub checked: u64,
    /// Reloads that swapped a new build in.
    pub reloaded: u64,
    /// Changes that left the content as it was (a touch).
    pub unchanged: u64,
    /// Reloads or loads that failed (the loaded build kept serving).
    pub failed: u64,
    /// New plugins loaded.
    pub loaded: u64,
}

#[derive(Default)]
struct Counters {
    checked: AtomicU64,
    reloaded: AtomicU64,
    unchanged: AtomicU64,
    failed: AtomicU64,
    loaded: AtomicU64,
}

impl Watcher {
    /// What the watcher has done so far.
    pub fn stats(&self) -> WatchStats {
        let c = &self.counters;
        WatchStats {
            checked: c.checked.load(Ordering::SeqCst),
            reloaded: c.reloaded.load(Ordering::SeqCst),
            unchanged: c.unchanged.load(Ordering::SeqCst),
            failed: c.failed.load(Ordering::SeqCst),
            loaded: c.loaded.load(Ordering::SeqCst),
        }
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Warden {
    /// Watches `dir` (a plugins directory as [`Warden::load_dir`] reads it,
    /// or one plugin's directory): once changes have been quiet for
    /// `debounce`, every loaded plugin whose files changed is reloaded and
    /// every new plugin directory is loaded. Outcomes are logged (and
    /// failures audited by the reload).
    pub fn watch(self: &Arc<Self>, dir: impl AsRef<Path>, debounce: Duration) -> Result<Watcher> {
        let dir = dir.as_ref();
        let root = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx)
            .map_err(|e| Error::host("starting the file watcher", e))?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(|e| Error::host(&format!("watching {}", root.display()), e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let host = Arc::downgrade(self);
        let stopped = stop.clone();
        let counted = counters.clone();
        std::thread::Builder::new()
            .name("warden-watch".into())
            .spawn(move || {
                while let Some(changed) = next_batch(&rx, debounce, &stopped) {
                    // A host dropped meanwhile ends the watching.
                    let Some(host) = host.upgrade() else { return };
                    for plugin_dir in plugin_dirs(&root, &changed) {
                        let outcome = host.apply_change(&plugin_dir);
                        let counter = match outcome {
                            Change::Reloaded => &counted.reloaded,
                            Change::Unchanged => &counted.unchanged,
                            Change::Failed => &counted.failed,
                            Change::Loaded => &counted.loaded,
                            Change::NotAPlugin => continue,
                        };
                        counter.fetch_add(1, Ordering::SeqCst);
                        counted.checked.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
            .map_err(|e| Error::host("starting the watcher thread", e))?;
        Ok(Watcher {
            _watcher: watcher,
            stop,
            counters,
        })
    }

    /// Reloads the plugin loaded from `plugin_dir`, or loads it if none is.
    fn apply_change(&self, plugin_dir: &Path) -> Change {
        // Loaded from the directory, or from a file in it.
        let loaded = self.registry.list().into_iter().find(|p| {
            p.info()
                .source
                .as_deref()
                .and_then(|s| s.canonicalize().ok())
                .is_some_and(|s| s == plugin_dir || s.parent() == Some(plugin_dir))
        });
        match loaded {
            Some(plugin) => {
                let target = format!("{}@{}", plugin.name(), plugin.info().version);
                // Not waiting for the old build to retire: the next change
                // may come within its grace period.
                let reloaded = self
                    .core
                    .block_on("watcher reload", self.reload_detached(&target));
                match reloaded {
                    Ok((Reloaded::Unchanged, _)) => {
                        tracing::debug!(plugin = %plugin.name(), "files touched, content unchanged");
                        Change::Unchanged
                    }
                    Ok((Reloaded::Replaced { from, to, .. }, _)) => {
                        tracing::info!(plugin = %plugin.name(), %from, %to, "hot-reloaded");
                        Change::Reloaded
                    }
                    // Logged and audited by the reload itself.
                    Err(_) => Change::Failed,
                }
            }
            None if plugin_dir.join(MANIFEST_FILE).is_file() => {
                match self.load_blocking(plugin_dir) {
                    Ok(p) => {
                        tracing::info!(plugin = %p.name(), "new plugin loaded");
                        Change::Loaded
                    }
                    Err(e) => {
                        tracing::error!(dir = %plugin_dir.display(), error = %e, "new plugin not loaded");
                        Change::Failed
                    }
                }
            }
            None => Change::NotAPlugin,
        }
    }
}

/// What a change to one plugin directory led to.
enum Change {
    Reloaded,
    Unchanged,
    Failed,
    Loaded,
    NotAPlugin,
}

/// The paths changed in the next burst of events, once they have been
/// quiet for `debounce`; `None` when the watching ends.
fn next_batch(
    rx: &Receiver<notify::Result<notify::Event>>,
    debounce: Duration,
    stop: &AtomicBool,
) -> Option<Batch> {
    let mut changed = Batch::default();
    let mut collect = |event: notify::Result<notify::Event>| match event {
        // Without paths: the kernel's queue overflowed; changes were lost.
        Ok(e) if e.paths.is_empty() => changed.everything = true,
        Ok(e) if !e.kind.is_access() => changed.paths.extend(e.paths),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "file watcher error; checking every plugin");
            changed.everything = true;
        }
    };
    // Wait for a first event, checking now and then whether to stop.
    loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(event) => {
                collect(event);
                break;
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
    // Then until nothing happened for `debounce`, or for at most
    // `MAX_BATCH`, so that a directory written to all the time still gets
    // its changes applied.
    let until = std::time::Instant::now() + MAX_BATCH;
    while std::time::Instant::now() < until {
        match rx.recv_timeout(debounce) {
            Ok(event) => collect(event),
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
    (!stop.load(Ordering::SeqCst)).then_some(changed)
}

/// The longest changes are collected before they are applied.
const MAX_BATCH: Duration = Duration::from_secs(5);

/// The paths that changed in one burst of events.
#[derive(Default)]
struct Batch {
    paths: BTreeSet<PathBuf>,
    /// Events were lost: look at every plugin directory.
    everything: bool,
}

/// The plugin directories the changed paths belong to: `root` itself when
/// it holds a manifest, else the subdirectory of `root` each path is in
/// (every subdirectory when events were lost).
fn plugin_dirs(root: &Path, changed: &Batch) -> BTreeSet<PathBuf> {
    if root.join(MANIFEST_FILE).is_file() {
        return BTreeSet::from([root.to_path_buf()]);
    }
    if changed.everything {
        return std::fs::read_dir(root)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
    }
    changed
        .paths
        .iter()
        .filter_map(|path| {
            let first = path.strip_prefix(root).ok()?.components().next()?;
            Some(root.join(first))
        })
        .filter(|dir| dir.is_dir())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_map_to_their_plugin_directories() {
        let root = tempfile::tempdir().expect("tmp");
        let root = root.path().canonicalize().expect("canonical");
        for name in ["a", "b"] {
            std::fs::create_dir(root.join(name)).expect("dir");
        }
        std::fs::create_dir(root.join("c")).expect("dir");
        let mut changed = Batch {
            paths: BTreeSet::from([
                root.join("a/plugin.toml"),
                root.join("a/a.wasm.tmp"),
                root.join("b/nested/file"),
                root.join("stray.txt"),
                PathBuf::from("/elsewhere/x"),
            ]),
            everything: false,
        };
        assert_eq!(
            plugin_dirs(&root, &changed),
            BTreeSet::from([root.join("a"), root.join("b")])
        );
        changed.everything = true;
        assert_eq!(
            plugin_dirs(&root, &changed),
            BTreeSet::from([root.join("a"), root.join("b"), root.join("c")])
        );
        std::fs::write(root.join(MANIFEST_FILE), "").expect("manifest");
        assert_eq!(plugin_dirs(&root, &changed), BTreeSet::from([root.clone()]));
    }
}
