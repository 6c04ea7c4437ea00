//! File helpers shared by the cache, the build step, the mapped and the
//! data directories.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader never sees a half-written file (what the cache, the build and
/// uploads use).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Unique per process and per write, so concurrent writers in one process
    // never share a temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Creates `dir` and its missing parents, new ones readable by this user only.
pub fn create_owner_only_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A directory opened once. Everything that maps it later goes through the
/// open handle (on Linux, its `/proc/self/fd` entry), never through the path
/// again: replacing the path with a symlink after the directory was checked
/// cannot send a plugin elsewhere.
#[derive(Debug)]
pub struct HeldDir {
    file: std::fs::File,
    host: PathBuf,
}

impl HeldDir {
    /// Opens the directory at `path` (following symlinks, as an operator's
    /// path may) and learns where it really is from the open handle.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_DIRECTORY);
        let file = options.open(path)?;
        if !file.metadata()?.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory",
                path.display()
            )));
        }
        let host = match held_path(&file) {
            Some(link) => std::fs::read_link(link)?,
            None => path.canonicalize()?,
        };
        Ok(HeldDir { file, host })
    }

    /// Where the directory was when it was opened (canonical).
    pub(crate) fn host(&self) -> &Path {
        &self.host
    }

    /// A path that opens this very directory: its open handle where the
    /// platform has one, else the canonical path.
    pub(crate) fn path(&self) -> PathBuf {
        held_path(&self.file).unwrap_or_else(|| self.host.clone())
    }
}

impl PartialEq for HeldDir {
    fn eq(&self, other: &Self) -> bool {
        self.host == other.host
    }
}

impl Eq for HeldDir {}

/// The `/proc/self/fd` entry of `file`, where the system has one.
fn held_path(file: &std::fs::File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let link = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        link.exists().then_some(link)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}
