//! Pushing a plugin directory to a registry and pulling one into a store
//! of pulled plugins, one directory per artifact digest.
//!
//! A registry is not trusted: the component's size is checked against a
//! limit before it is fetched, the bytes are counted while they arrive, and
//! what arrived must hash to the digest in the manifest before anything is
//! written. The plugin's own signature, if the host requires one, is checked
//! when the pulled directory is loaded, as for any other directory.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError};
use oci_client::secrets::RegistryAuth;
use sha2::{Digest, Sha256};

use warden::PluginFiles;

use crate::artifact::{CONFIG_MEDIA_TYPE, WASM_MEDIA_TYPE, artifact_of, plugin_of};
use crate::error::{Error, Result};
use crate::reference::OciReference;

/// The largest component a pull takes unless told otherwise.
pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// How long a push or a pull may take in all: a registry that sends
/// slowly cannot hold a server's start for ever.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(600);

/// A login to one registry.
#[derive(Clone)]
pub struct Credentials {
    /// The registry they are for (`host:port`, as in references); every
    /// other registry is spoken to anonymously.
    pub registry: String,
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}@{})", self.username, self.registry)
    }
}

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// A login (HTTP Basic) to one registry; `None`: anonymous everywhere.
    pub credentials: Option<Credentials>,
    /// Registries (`host:port`) spoken to over plain HTTP. Loopback
    /// registries always are.
    pub insecure: Vec<String>,
    /// The largest component a pull accepts.
    pub max_component_bytes: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            credentials: None,
            insecure: Vec::new(),
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
        }
    }
}

/// What a push stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    /// Where, `oci://…`.
    pub reference: String,
    /// The manifest's digest: `oci://registry/repo@<digest>` names exactly
    /// this artifact.
    pub digest: String,
    /// The component's digest (`sha256:…`), which is also the key of the
    /// compile cache.
    pub component_digest: String,
    /// The plugin.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Whether its signature went with it.
    pub signed: bool,
}

/// What a pull brought.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    /// The plugin directory, ready to load.
    pub dir: PathBuf,
    /// The manifest's digest.
    pub digest: String,
    /// The component's digest.
    pub component_digest: String,
    /// The plugin.
    pub name: String,
    /// Its version.
    pub version: String,
    /// False when the artifact was in the store already.
    pub fetched: bool,
}

/// Makes ring, the one TLS crypto provider built in, the process's default.
/// The HTTP client this crate uses (shared with everything else in the
/// process built on it, such as an OTLP exporter) cannot make a TLS-capable
/// client without a default provider; a second call is a no-op.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for OCI registries.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    options: RegistryOptions,
}

impl Registry {
    /// A client with `options`.
    pub fn new(options: RegistryOptions) -> Registry {
        install_tls_provider();
        Registry { options }
    }

    fn client(&self, reference: &OciReference) -> Client {
        let registry = reference.inner().resolve_registry().to_string();
        let protocol = if reference.is_loopback() || self.options.insecure.contains(&registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            ..ClientConfig::default()
        })
    }

    /// The login for `reference`'s registry: credentials go to the registry
    /// they are for, never to another one an artifact list names.
    fn auth(&self, reference: &OciReference) -> RegistryAuth {
        match &self.options.credentials {
            Some(c) if c.registry == reference.inner().resolve_registry() => {
                RegistryAuth::Basic(c.username.clone(), c.password.clone())
            }
            _ => RegistryAuth::Anonymous,
        }
    }

    /// Pushes the plugin in `dir` to `reference`.
    pub async fn push(&self, dir: &Path, reference: &str) -> Result<Pushed> {
        within_deadline(reference, self.push_now(dir, reference)).await
    }

    async fn push_now(&self, dir: &Path, reference: &str) -> Result<Pushed> {
        let target = OciReference::parse(reference)?;
        let files = PluginFiles::read(dir)?;
        let (layer, config, manifest) = artifact_of(&files)?;
        let component_digest = layer.sha256_digest();
        let client = self.client(&target);
        let registry_error = |source| Error::Registry {
            reference: reference.to_string(),
            source,
        };
        client
            .push(
                target.inner(),
                &[layer],
                config,
                &self.auth(&target),
                Some(manifest),
            )
            .await
            .map_err(registry_error)?;
        let digest = client
            .fetch_manifest_digest(target.inner(), &self.auth(&target))
            .await
            .map_err(registry_error)?;
        Ok(Pushed {
            reference: target.to_string(),
            digest,
            component_digest,
            name: files.name.clone(),
            version: files.version.to_string(),
            signed: files.signature.is_some(),
        })
    }

    /// Pulls `reference` into `store` (a directory per artifact digest) and
    /// returns the plugin directory. An artifact already in the store is
    /// not fetched again.
    pub async fn pull(&self, reference: &str, store: &Path) -> Result<Pulled> {
        within_deadline(reference, self.pull_now(reference, store)).await
    }

    async fn pull_now(&self, reference: &str, store: &Path) -> Result<Pulled> {
        let source = OciReference::parse(reference)?;
        let client = self.client(&source);
        let registry_error = |source| Error::Registry {
            reference: reference.to_string(),
            source,
        };
        let (manifest, digest) = client
            .pull_image_manifest(source.inner(), &self.auth(&source))
            .await
            .map_err(registry_error)?;
        let not_a_plugin = |message: String| Error::NotAPlugin {
            reference: reference.to_string(),
            message,
        };
        if manifest.config.media_type != CONFIG_MEDIA_TYPE {
            return Err(not_a_plugin(format!(
                "its config is `{}`, not `{CONFIG_MEDIA_TYPE}` (the CNCF wasm layout)",
                manifest.config.media_type
            )));
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(not_a_plugin(format!(
                "it has {} layers; a wasm artifact has exactly one",
                manifest.layers.len()
            )));
        };
        if layer.media_type != WASM_MEDIA_TYPE {
            return Err(not_a_plugin(format!(
                "its layer is `{}`, not `{WASM_MEDIA_TYPE}`",
                layer.media_type
            )));
        }
        let dir = store.join(digest_dir(&digest)?);
        let annotations = manifest.annotations.clone().unwrap_or_default();
        if dir.is_dir() {
            let files = plugin_of(reference, &annotations, Vec::new())?;
            return Ok(Pulled {
                dir,
                digest,
                component_digest: layer.digest.clone(),
                name: files.name,
                version: files.version.to_string(),
                fetched: false,
            });
        }
        let limit = self.options.max_component_bytes;
        let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
        if size > limit {
            return Err(Error::TooLarge {
                reference: reference.to_string(),
                size,
                limit,
            });
        }
        let mut component = Bounded::new(size.min(limit));
        client
            .pull_blob(source.inner(), layer, &mut component)
            .await
            .map_err(|e| match e {
                OciDistributionError::DigestError(DigestError::VerificationError {
                    expected,
                    actual,
                }) => Error::Digest {
                    reference: reference.to_string(),
                    expected,
                    actual,
                },
                other => registry_error(other),
            })?;
        let component = component.bytes;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&component)));
        if actual != layer.digest {
            return Err(Error::Digest {
                reference: reference.to_string(),
                expected: layer.digest.clone(),
                actual,
            });
        }
        let files = plugin_of(reference, &annotations, component)?;
        files.install(&dir)?;
        Ok(Pulled {
            dir,
            digest,
            component_digest: actual,
            name: files.name,
            version: files.version.to_string(),
            fetched: true,
        })
    }
}

/// `operation` on `reference`, given [`OPERATION_TIMEOUT`] in all.
async fn within_deadline<T>(
    reference: &str,
    operation: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(OPERATION_TIMEOUT, operation)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout {
                reference: reference.to_string(),
                limit: OPERATION_TIMEOUT,
            })
        })
}

/// The store's directory name for a manifest digest: its hex, checked, so
/// that a registry's answer cannot name a path.
fn digest_dir(digest: &str) -> Result<String> {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(hex.to_ascii_lowercase());
    }
    Err(Error::NotAPlugin {
        reference: digest.to_string(),
        message: "the registry named the manifest by something other than a sha256 digest"
            .to_string(),
    })
}

/// A writer that refuses to hold more than it was told to expect.
struct Bounded {
    bytes: Vec<u8>,
    limit: u64,
}

impl Bounded {
    fn new(limit: u64) -> Bounded {
        Bounded {
            bytes: Vec::with_capacity(usize::try_from(limit.min(16 << 20)).unwrap_or(0)),
            limit,
        }
    }
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.bytes.len() as u64 + buf.len() as u64 > self.limit {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the registry sent more than the {} bytes the manifest declares",
                self.limit
            ))));
        }
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
