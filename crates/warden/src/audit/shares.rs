//! Where audit entries are kept: one share per plugin, each bounded on its
//! own. On disk a share is `<plugin>.jsonl`, which becomes `<plugin>.1.jsonl`
//! (replacing the previous one) when it passes half the share's budget; in
//! memory it is a ring of the plugin's newest entries. Each share has its
//! own lock, so one plugin's flood of entries does not queue another's.
//!
//! Entries written by earlier versions to `audit.jsonl` in the data
//! directory are still read.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::{AUDIT_DIR, AuditEntry, AuditQuery};
use crate::error::{Error, Result};
use crate::locks::{lock, read, write};
use crate::throttle::Throttle;

/// Audit entries that could not be written are logged at most this often.
static APPEND_FAILED_LOGGED: Throttle = Throttle::new(Duration::from_secs(10));

/// Entries of one plugin kept when the log lives in memory only.
const MEMORY_ENTRIES: usize = 1000;

/// Warnings one plugin's entries may write to the host log per second; the
/// rest are counted and the count is reported with the next warning.
const WARNINGS_PER_SECOND: u32 = 20;

/// The files earlier versions kept every plugin's entries in.
const LEGACY_FILES: [&str; 2] = ["audit.1.jsonl", "audit.jsonl"];

pub(super) struct Shares {
    place: Place,
    shares: RwLock<HashMap<String, Arc<Mutex<Share>>>>,
}

enum Place {
    Memory,
    Dir { data_dir: PathBuf, max_bytes: u64 },
}

/// One plugin's part of the log.
#[derive(Default)]
struct Share {
    ring: VecDeque<AuditEntry>,
    file: Option<File>,
    size: u64,
    /// Warnings written in the current second, and those held back.
    window: Option<Instant>,
    warned: u32,
    held_back: u64,
}

impl Shares {
    pub(super) fn in_memory() -> Self {
        Shares {
            place: Place::Memory,
            shares: RwLock::default(),
        }
    }

    pub(super) fn open(data_dir: PathBuf, max_bytes: u64) -> Result<Self> {
        let shares = Shares {
            place: Place::Dir {
                data_dir,
                max_bytes: max_bytes.max(4096),
            },
            shares: RwLock::default(),
        };
        if let Some(dir) = shares.dir() {
            for file in files_in(&dir)? {
                end_torn_line(&file).map_err(|e| Error::io(&file, e))?;
            }
        }
        Ok(shares)
    }

    /// The directory of the files, if the log is on disk.
    pub(super) fn dir(&self) -> Option<PathBuf> {
        match &self.place {
            Place::Memory => None,
            Place::Dir { data_dir, .. } => Some(data_dir.join(AUDIT_DIR)),
        }
    }

    fn share(&self, key: &str) -> Arc<Mutex<Share>> {
        if let Some(share) = read(&self.shares).get(key) {
            return share.clone();
        }
        write(&self.shares)
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    pub(super) fn record(&self, entry: AuditEntry) {
        let key = share_key(&entry.plugin);
        let share = self.share(&key);
        let mut share = lock(&share);
        share.warn(&entry);
        match &self.place {
            Place::Memory => {
                if share.ring.len() == MEMORY_ENTRIES {
                    share.ring.pop_front();
                }
                share.ring.push_back(entry);
            }
            Place::Dir {
                data_dir,
                max_bytes,
            } => {
                let dir = data_dir.join(AUDIT_DIR);
                // A plugin can cause entries as fast as it likes; on a full
                // disk each would fail, so the failure is logged now and then.
                if let Err(e) = share.append(&dir, &key, *max_bytes, &entry)
                    && APPEND_FAILED_LOGGED.ready()
                {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot write the audit log");
                }
            }
        }
    }

    /// Every entry matching `query`, in no particular order.
    pub(super) fn read(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let Some(dir) = self.dir() else {
            let shares: Vec<_> = read(&self.shares).values().cloned().collect();
            return Ok(shares
                .iter()
                .flat_map(|s| {
                    lock(s)
                        .ring
                        .iter()
                        .filter(|e| query.matches(e))
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .collect());
        };
        let mut files = files_in(&dir)?;
        if let Place::Dir { data_dir, .. } = &self.place {
            files.extend(LEGACY_FILES.iter().map(|f| data_dir.join(f)));
        }
        if let Some(plugin) = &query.plugin {
            let key = share_key(plugin);
            files.retain(|f| {
                f.parent() != Some(dir.as_path()) || file_key(f).is_some_and(|k| k == key)
            });
        }
        let mut found = Vec::new();
        for path in files {
            read_file(&path, query, &mut found)?;
        }
        Ok(found)
    }
}

impl Share {
    /// Writes the entry to the host log, unless this plugin already wrote
    /// [`WARNINGS_PER_SECOND`] this second.
    fn warn(&mut self, entry: &AuditEntry) {
        let now = Instant::now();
        if self
            .window
            .is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1))
        {
            self.window = Some(now);
            self.warned = 0;
        }
        if self.warned == WARNINGS_PER_SECOND {
            self.held_back += 1;
            return;
        }
        self.warned += 1;
        let held_back = std::mem::take(&mut self.held_back);
        tracing::warn!(
            plugin = %entry.plugin,
            version = %entry.version,
            call_id = entry.call_id.as_deref().unwrap_or(""),
            kind = %entry.kind,
            held_back,
            "audit: {} ({}): {}",
            entry.kind,
            entry.resource,
            entry.action
        );
    }

    fn append(
        &mut self,
        dir: &Path,
        key: &str,
        max_bytes: u64,
        entry: &AuditEntry,
    ) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let current = dir.join(format!("{key}.jsonl"));
        if self.file.is_none() {
            std::fs::create_dir_all(dir)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&current)?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        if self.size + line.len() as u64 > max_bytes / 2 && self.size > 0 {
            self.file = None;
            std::fs::rename(&current, dir.join(format!("{key}.1.jsonl")))?;
            self.size = 0;
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&current)?,
            );
        }
        if let Some(f) = &mut self.file {
            // One write per line: with O_APPEND, concurrent writers (a second
            // host on the same directory) never interleave within a line.
            f.write_all(&line)?;
            self.size += line.len() as u64;
        }
        Ok(())
    }
}

/// The file name a plugin's share goes by: its name, which plugin names
/// make safe; anything else shares `_other`.
fn share_key(plugin: &str) -> String {
    match crate::names::validate_name(plugin) {
        Ok(()) => plugin.to_string(),
        Err(_) => "_other".to_string(),
    }
}

/// The share a file in the audit directory belongs to.
fn file_key(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".jsonl")?;
    Some(stem.strip_suffix(".1").unwrap_or(stem))
}

/// The log files in `dir`, rotated ones first for each share.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().is_some_and(|x| x == "jsonl") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(path: &Path, query: &AuditQuery, found: &mut Vec<AuditEntry>) -> Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::io(path, e))?;
        // A line cut short by a crash is skipped, not fatal.
        if let Ok(entry) = serde_json::from_str::<AuditEntry>(&line)
            && query.matches(&entry)
        {
            found.push(entry);
        }
    }
    Ok(())
}

/// A crash mid-write may leave the last line unfinished; end it so that the
/// next entry starts on a line of its own.
fn end_torn_line(path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = OpenOptions::new().read(true).append(true).open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(());
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::audit::AuditKind;

    fn entry(plugin: &str, resource: String) -> AuditEntry {
        AuditEntry {
            time: SystemTime::now(),
            plugin: plugin.into(),
            version: "1.0.0".into(),
            call_id: None,
            kind: AuditKind::FsDenied,
            resource,
            action: "denied".into(),
        }
    }

    fn count(shares: &Shares, plugin: &str) -> usize {
        let query = AuditQuery {
            plugin: Some(plugin.into()),
            ..Default::default()
        };
        shares.read(&query).expect("read").len()
    }

    /// A flood from one plugin rotates only its own share: the other
    /// plugin's single denial survives, on disk and in memory, and every
    /// share stays within its budget.
    #[test]
    fn one_plugins_flood_never_pushes_out_anothers_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        for shares in [
            Shares::open(dir.path().to_path_buf(), 8192).expect("open"),
            Shares::in_memory(),
        ] {
            shares.record(entry("quiet", "open /etc/shadow".into()));
            for i in 0..5000 {
                shares.record(entry("noisy", format!("open /flood/{i}")));
            }
            assert_eq!(count(&shares, "quiet"), 1);
            let noisy = count(&shares, "noisy");
            assert!(noisy > 0 && noisy < 5000, "{noisy}");
        }
        let on_disk: u64 = files_in(&dir.path().join(AUDIT_DIR))
            .expect("files")
            .iter()
            .filter(|f| file_key(f) == Some("noisy"))
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
        assert!(on_disk <= 8192, "{on_disk} bytes on disk");
    }

    #[test]
    fn torn_lines_are_skipped_and_legacy_files_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let legacy =
            serde_json::to_string(&entry("old", "before the upgrade".into())).expect("json");
        std::fs::write(dir.path().join("audit.jsonl"), format!("{legacy}\n")).expect("legacy");
        let shares = Shares::open(dir.path().to_path_buf(), 1 << 20).expect("open");
        shares.record(entry("a", "first".into()));
        let file = dir.path().join(AUDIT_DIR).join("a.jsonl");
        let mut f = OpenOptions::new().append(true).open(&file).expect("open");
        f.write_all(b"{\"time\":\"20").expect("torn write");
        let all = shares.read(&AuditQuery::default()).expect("read");
        assert_eq!(all.len(), 2, "{all:?}");
        drop(shares);
        let reopened = Shares::open(dir.path().to_path_buf(), 1 << 20).expect("reopen");
        reopened.record(entry("a", "second".into()));
        assert_eq!(count(&reopened, "a"), 2);
    }
}
