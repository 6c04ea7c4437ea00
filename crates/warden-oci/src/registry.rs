//! Pushing a plugin directory to a registry and pulling one into a store
//! of pulled plugins, one directory per artifact digest.
//!
//! A registry is not trusted: the component's size is checked against a
//! limit before it is fetched, the bytes are counted while they arrive, and
//! what arrived must hash to the digest in the manifest before anything is
//! written. A signature travels as a referrer of the plugin's artifact,
//! listed in the registry's referrers API or, where the registry has none,
//! in the referrers tag (`sha256-<hex>`) that the push keeps; it is checked,
//! if the host requires one, when the pulled directory is loaded, as for
//! any other directory.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError};
use oci_client::manifest::{ImageIndexEntry, OciDescriptor};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};

use warden::PluginFiles;

use crate::artifact::{
    CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, SIGNATURE_ARTIFACT_TYPE, SIGNATURE_MEDIA_TYPE,
    WASM_MEDIA_TYPE, artifact_of, descriptor_of, plugin_of, signature_artifact,
};
use crate::error::{Error, Result};
use crate::reference::OciReference;

/// The largest component a pull takes unless told otherwise.
pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// The largest signature a pull takes (a `plugin.sig` is under 1 KiB).
const MAX_SIGNATURE_BYTES: u64 = 64 << 10;

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
    /// Whether a signature came with it (or, when not fetched, is there).
    pub signed: bool,
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
        let auth = self.auth(&target);
        let subject = descriptor_of(&manifest)?;
        let digest = subject.digest.clone();
        client
            .push(target.inner(), &[layer], config, &auth, Some(manifest))
            .await
            .map_err(registry_error)?;
        if let Some(signature) = &files.signature {
            push_signature(&client, target.inner(), &auth, subject, signature)
                .await
                .map_err(registry_error)?;
        }
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
            let files = plugin_of(reference, &annotations, Vec::new(), None)?;
            // A signature pushed after this artifact was first pulled.
            let signature_file = dir.join(warden::SIGNATURE_FILE);
            if !signature_file.is_file()
                && let Some(signature) = self.signature_of(&client, &source, &digest).await
            {
                warden::write_atomically(&signature_file, signature.as_bytes())
                    .map_err(|e| Error::Plugin(warden::Error::io(&signature_file, e)))?;
            }
            return Ok(Pulled {
                signed: signature_file.is_file(),
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
        let signature = self.signature_of(&client, &source, &digest).await;
        let files = plugin_of(reference, &annotations, component, signature)?;
        files.install(&dir)?;
        Ok(Pulled {
            dir,
            digest,
            component_digest: actual,
            name: files.name,
            version: files.version.to_string(),
            fetched: true,
            signed: files.signature.is_some(),
        })
    }

    /// A signature among the referrers of the artifact `digest` in
    /// `source`'s repository, the last listed that is well formed; `None`
    /// when there is none, or the registry cannot list them. What is wrong
    /// with a listed one is logged and it is passed over: the signature is
    /// only a claim until a host that requires one checks it at load.
    async fn signature_of(
        &self,
        client: &Client,
        source: &OciReference,
        digest: &str,
    ) -> Option<String> {
        let subject = source.inner().clone_with_digest(digest.to_string());
        let referrers = match client
            .pull_referrers(&subject, Some(SIGNATURE_ARTIFACT_TYPE))
            .await
        {
            Ok(referrers) => referrers,
            Err(e) => {
                tracing::warn!(reference = %source, error = %e, "cannot list the artifact's referrers; pulled as unsigned");
                return None;
            }
        };
        // A registry may ignore the filter.
        for entry in referrers
            .manifests
            .iter()
            .rev()
            .filter(|e| e.artifact_type.as_deref() == Some(SIGNATURE_ARTIFACT_TYPE))
        {
            match self
                .signature_at(client, source, digest, &entry.digest)
                .await
            {
                Ok(text) => return Some(text),
                Err(message) => tracing::warn!(
                    reference = %source,
                    signature = %entry.digest,
                    "a listed signature was passed over: {message}"
                ),
            }
        }
        None
    }

    /// The text of the signature artifact `at` (a digest), checked: it
    /// refers to `digest`, and holds one signature layer of at most
    /// [`MAX_SIGNATURE_BYTES`] whose bytes match their digest.
    async fn signature_at(
        &self,
        client: &Client,
        source: &OciReference,
        digest: &str,
        at: &str,
    ) -> std::result::Result<String, String> {
        digest_dir(at).map_err(|_| "it is not named by a sha256 digest".to_string())?;
        let at = source.inner().clone_with_digest(at.to_string());
        let (manifest, _) = client
            .pull_image_manifest(&at, &self.auth(source))
            .await
            .map_err(|e| e.to_string())?;
        if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(digest) {
            return Err("it refers to another artifact".to_string());
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(format!("it has {} layers, not one", manifest.layers.len()));
        };
        let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
        if layer.media_type != SIGNATURE_MEDIA_TYPE || size > MAX_SIGNATURE_BYTES {
            return Err(format!(
                "it holds `{}` of {size} bytes, not a `{SIGNATURE_MEDIA_TYPE}` of at most \
                 {MAX_SIGNATURE_BYTES}",
                layer.media_type
            ));
        }
        let mut text = Bounded::new(size);
        client
            .pull_blob(&at, layer, &mut text)
            .await
            .map_err(|e| e.to_string())?;
        String::from_utf8(text.bytes).map_err(|_| "it is not UTF-8 text".to_string())
    }
}

/// Pushes `signature` as an artifact referring to `subject` (a plugin's
/// manifest) in `image`'s repository, tagged `sha256-<hex>.plugin-sig`
/// (registries keep tagged manifests; the OCI client cannot push by digest
/// to a registry that answers without a `Location`), and lists it in the
/// referrers tag `sha256-<hex>` that clients read where a registry has no
/// referrers API (registries that have one list it themselves; the tag
/// does no harm there). Pushing the same signature again lists it once.
async fn push_signature(
    client: &Client,
    image: &Reference,
    auth: &RegistryAuth,
    subject: OciDescriptor,
    signature: &str,
) -> std::result::Result<(), OciDistributionError> {
    let artifact = signature_artifact(signature, subject.clone())
        .map_err(|e| OciDistributionError::GenericError(Some(e.to_string())))?;
    let tag = |suffix: &str| {
        Reference::with_tag(
            image.resolve_registry().to_string(),
            image.repository().to_string(),
            format!("{}{suffix}", subject.digest.replace(':', "-")),
        )
    };
    client
        .push(
            &tag(".plugin-sig"),
            &[artifact.layer],
            artifact.config,
            auth,
            Some(artifact.manifest),
        )
        .await?;
    let of = image.clone_with_digest(subject.digest.clone());
    let mut index = client.pull_referrers(&of, None).await?;
    index
        .manifests
        .retain(|e| e.digest != artifact.descriptor.digest);
    index.manifests.push(ImageIndexEntry {
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        digest: artifact.descriptor.digest,
        size: artifact.descriptor.size,
        platform: None,
        annotations: None,
        artifact_type: Some(SIGNATURE_ARTIFACT_TYPE.to_string()),
    });
    client.push_manifest_list(&tag(""), auth, index).await?;
    Ok(())
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
