//! The build layer's one error type.

use std::path::PathBuf;

/// Result alias of the build layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong building or composing a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A build step failed: a tool is missing or failed, the result does
    /// not fit the plugin's world.
    #[error("building {}: {message}", dir.display())]
    Build {
        /// The plugin source directory.
        dir: PathBuf,
        /// What failed, including the toolchain's own output where useful.
        message: String,
    },

    /// A tool the build runs is missing or is not what it should be.
    #[error("{}: {message}", program.display())]
    Tool {
        /// The program.
        program: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },

    /// Components could not be composed.
    #[error("{part}: cannot compose: {reason}")]
    Compose {
        /// The component (socket or plug) at fault.
        part: String,
        /// What is wrong.
        reason: String,
    },

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },

    /// The runtime refused something the build reads: a manifest, a
    /// component.
    #[error(transparent)]
    Runtime(#[from] warden::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
