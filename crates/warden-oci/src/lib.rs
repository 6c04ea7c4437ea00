//! # warden-oci
//!
//! Warden plugins as OCI artifacts. [`Registry::push`] stores a plugin
//! directory in any OCI registry in the CNCF wasm layout (the component as
//! the one `application/wasm` layer, so `wkg` and `wash` can read it; its
//! `plugin.toml` as a manifest annotation, its `plugin.sig` as an artifact
//! referring to it, an OCI referrer), and
//! [`Registry::pull`] brings one back into a store of pulled plugins, one
//! directory per artifact digest, checked against the manifest's digests
//! and size before anything is written. The component's digest is the
//! compile cache's key, so a pulled plugin compiled once is not compiled
//! again.
//!
//! ```no_run
//! # async fn demo() -> warden_oci::Result<()> {
//! let registry = warden_oci::Registry::new(Default::default());
//! registry.push("plugins/upper".as_ref(), "oci://127.0.0.1:5000/upper:1.0").await?;
//! let pulled = registry
//!     .pull("oci://127.0.0.1:5000/upper:1.0", ".warden/oci".as_ref())
//!     .await?;
//! let warden = warden::Warden::new().map_err(warden_oci::Error::Plugin)?;
//! warden.load(&pulled.dir).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod artifact;
mod error;
mod reference;
mod registry;

pub use artifact::{
    CONFIG_MEDIA_TYPE, MANIFEST_ANNOTATION, SIGNATURE_ARTIFACT_TYPE, SIGNATURE_MEDIA_TYPE,
    WASM_MEDIA_TYPE,
};
pub use error::{Error, Result};
pub use reference::{OciReference, SCHEME, is_oci_reference};
pub use registry::{
    Credentials, DEFAULT_MAX_COMPONENT_BYTES, OPERATION_TIMEOUT, Pulled, Pushed, Registry,
    RegistryOptions, install_tls_provider,
};
