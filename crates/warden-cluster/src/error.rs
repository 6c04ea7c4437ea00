//! The cluster layer's one error type.

use std::path::PathBuf;

/// Result alias of the cluster layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong joining or working in a cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The NATS server could not be reached.
    #[error("cannot reach the NATS server at {url}: {source}; is `nats-server -js` running there?")]
    Connect {
        /// The server's URL.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },

    /// A JetStream bucket could not be opened or used (JetStream off?).
    #[error("JetStream {what}: {message}; start the server with JetStream (`nats-server -js`)")]
    JetStream {
        /// The bucket or operation.
        what: String,
        /// The client's error.
        message: String,
    },

    /// An artifact fetched by digest is not what the digest names.
    #[error("artifact {digest} of `{plugin}`: {message}; it was not loaded")]
    Artifact {
        /// The plugin.
        plugin: String,
        /// The digest asked for.
        digest: String,
        /// What is wrong.
        message: String,
    },

    /// A desired-state record could not be read.
    #[error("desired state of `{plugin}`: {message}")]
    Record {
        /// The plugin (the record's key).
        plugin: String,
        /// What is wrong.
        message: String,
    },

    /// A version asks for more than the cluster's grants for its plugin
    /// allow.
    #[error(
        "`{plugin}` {version} asks for more than the cluster grants it ({}); no node loads it. \
         Deploy it again with `warden deploy --cluster URL --grant SPEC` naming what it needs, \
         or take the permission out of its manifest",
        refused.join("; ")
    )]
    OutsideGrants {
        /// The plugin.
        plugin: String,
        /// The version refused.
        version: String,
        /// Each permission it asks for and why it is refused.
        refused: Vec<String>,
    },

    /// The host refused a change.
    #[error(transparent)]
    Warden(#[from] warden::Error),

    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn jetstream(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
        Error::JetStream {
            what: what.into(),
            message: e.to_string(),
        }
    }
}
