//! The distribution layer's one error type.
/// Result alias of the distribution layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong pushing or pulling a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference is not `oci://registry/repository[:tag|@digest]`.
    #[error("`{reference}` is not an OCI reference: {message}")]
    Reference {
        /// What was given.
        reference: String,
        /// What is wrong with it.
        message: String,
    },

    /// The registry refused or failed a request.
    #[error("{reference}: the registry answered: {source}")]
    Registry {
        /// The artifact.
        reference: String,
        /// The client's error.
        #[source]
        source: oci_client::errors::OciDistributionError,
    },

    /// The artifact is not a Warden plugin in the wasm layout: no wasm
    /// layer, more than one, or no plugin manifest.
    #[error("{reference}: not a Warden plugin: {message}")]
    NotAPlugin {
        /// The artifact.
        reference: String,
        /// What is missing or wrong.
        message: String,
    },

    /// The registry took longer than a push or pull may.
    #[error(
        "{reference}: the registry did not finish within {limit:?}; try again, or check the registry"
    )]
    Timeout {
        /// The artifact.
        reference: String,
        /// The limit.
        limit: std::time::Duration,
    },

    /// A blob is larger than the pull allows.
    #[error(
        "{reference}: the component is {size} bytes, more than the {limit} a pull accepts; \
         it was not fetched"
    )]
    TooLarge {
        /// The artifact.
        reference: String,
        /// The size the manifest declares.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// What arrived is not what the manifest's digest names: the artifact
    /// was changed in the registry or on the way.
    #[error(
        "{reference}: the component's digest is {actual}, the manifest says {expected}; it was not kept"
    )]
    Digest {
        /// The artifact.
        reference: String,
        /// The digest the manifest names.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },

    /// The plugin directory or its manifest is wrong.
    #[error(transparent)]
    Plugin(#[from] warden::Error),
}
