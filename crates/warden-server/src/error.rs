//! The server layer's one error type.

use std::net::SocketAddr;

/// Result alias of the server layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting or running the server. Failures of single
/// requests are answered as [`crate::problem::Problem`]s instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening address could not be bound (or read back).
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] warden::Error),
}
