//! A plugin as an OCI artifact in the CNCF wasm layout
//! (`application/vnd.wasm.config.v0+json` config, one `application/wasm`
//! layer), so that `wkg` and `wash` read what Warden pushes. The plugin's
//! `plugin.toml` (its permissions and limits), which the layout has no
//! place for, travels in a manifest annotation, byte for byte; base64,
//! because registries parse the manifest as JSON and the canonical JSON it
//! is written in leaves newlines unescaped.
//!
//! Its `plugin.sig` is an artifact of its own that refers to the plugin's
//! (an OCI 1.1 referrer: its `subject` is the plugin's manifest), so a
//! signature can be found, added or replaced without touching the artifact
//! it vouches for, and still verifies after the pull.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use serde::Serialize;

use warden::{MANIFEST_FILE, PluginFiles};

use crate::error::{Error, Result};

/// The manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config's media type in the CNCF wasm layout.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The one layer's media type: the component (or core module) itself.
pub const WASM_MEDIA_TYPE: &str = "application/wasm";
/// The annotation holding `plugin.toml`, base64.
pub const MANIFEST_ANNOTATION: &str = "dev.warden.plugin.manifest";
/// The artifact type of a plugin's signature, a referrer of the plugin's
/// artifact.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.warden.plugin.signature.v1";
/// The signature artifact's one layer: `plugin.sig` as written.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.dev.warden.plugin.signature.v1+toml";
/// The config of an artifact that has none (OCI image spec 1.1).
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Annotation `key` of `annotations`, decoded; `None` when absent.
fn annotation(
    reference: &str,
    annotations: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<String>> {
    let Some(text) = annotations.get(key) else {
        return Ok(None);
    };
    BASE64
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| Error::NotAPlugin {
            reference: reference.to_string(),
            message: format!("the `{key}` annotation is not base64 of UTF-8 text"),
        })
}

/// Takes the plugin out of a pulled artifact's annotations and layer, with
/// the signature found among its referrers.
pub(crate) fn plugin_of(
    reference: &str,
    annotations: &BTreeMap<String, String>,
    component: Vec<u8>,
    signature: Option<String>,
) -> Result<PluginFiles> {
    let manifest_text =
        annotation(reference, annotations, MANIFEST_ANNOTATION)?.ok_or_else(|| {
            Error::NotAPlugin {
                reference: reference.to_string(),
                message: format!(
                    "the manifest has no `{MANIFEST_ANNOTATION}` annotation (a component pushed \
                 by another tool; give it a {MANIFEST_FILE} and push it with `warden push`)"
                ),
            }
        })?;
    Ok(PluginFiles::from_parts(
        &manifest_text,
        component,
        signature,
        Path::new(MANIFEST_FILE),
    )?)
}

/// The layer, config and manifest of `files`' artifact.
pub(crate) fn artifact_of(files: &PluginFiles) -> Result<(ImageLayer, Config, OciImageManifest)> {
    let layer = ImageLayer::new(files.component.clone(), WASM_MEDIA_TYPE.to_string(), None);
    let config = WasmConfig::of(&files.component, layer.sha256_digest());
    let config_json = serde_json::to_vec(&config).map_err(|e| Error::NotAPlugin {
        reference: files.name.clone(),
        message: format!("encoding the config: {e}"),
    })?;
    let config = Config::new(config_json, CONFIG_MEDIA_TYPE.to_string(), None);
    let mut annotations = BTreeMap::from([
        (
            "org.opencontainers.image.title".to_string(),
            files.name.clone(),
        ),
        (
            "org.opencontainers.image.version".to_string(),
            files.version.to_string(),
        ),
        (
            MANIFEST_ANNOTATION.to_string(),
            BASE64.encode(&files.manifest_text),
        ),
    ]);
    if !files.description.is_empty() {
        annotations.insert(
            "org.opencontainers.image.description".to_string(),
            files.description.clone(),
        );
    }
    let layers = std::slice::from_ref(&layer);
    let mut manifest = OciImageManifest::build(layers, &config, Some(annotations));
    manifest.media_type = Some(MANIFEST_MEDIA_TYPE.to_string());
    Ok((layer, config, manifest))
}

/// A plugin's signature as an artifact referring to the plugin's.
pub(crate) struct SignatureArtifact {
    /// `plugin.sig`.
    pub layer: ImageLayer,
    /// The empty config.
    pub config: Config,
    /// The manifest, whose `subject` is the plugin's manifest.
    pub manifest: OciImageManifest,
    /// Where the manifest is: its digest and size.
    pub descriptor: OciDescriptor,
}

/// The descriptor of `manifest` as a registry stores it: the digest and
/// size of the canonical JSON the OCI client sends, computed here rather
/// than read back, so that no other push to the same tag can slip in.
pub(crate) fn descriptor_of(manifest: &OciImageManifest) -> Result<OciDescriptor> {
    let mut body = Vec::new();
    let mut writer =
        serde_json::Serializer::with_formatter(&mut body, olpc_cjson::CanonicalFormatter::new());
    OciManifest::Image(manifest.clone())
        .serialize(&mut writer)
        .map_err(|e| Error::NotAPlugin {
            reference: "the manifest".to_string(),
            message: format!("encoding it: {e}"),
        })?;
    Ok(OciDescriptor {
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        digest: format!("sha256:{}", warden::sha256_hex(&body)),
        size: i64::try_from(body.len()).unwrap_or(i64::MAX),
        ..OciDescriptor::default()
    })
}

/// The artifact of `signature`, referring to `subject`.
pub(crate) fn signature_artifact(
    signature: &str,
    subject: OciDescriptor,
) -> Result<SignatureArtifact> {
    let layer = ImageLayer::new(
        signature.as_bytes().to_vec(),
        SIGNATURE_MEDIA_TYPE.to_string(),
        None,
    );
    let config = Config::new(b"{}".to_vec(), EMPTY_MEDIA_TYPE.to_string(), None);
    let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
    manifest.media_type = Some(MANIFEST_MEDIA_TYPE.to_string());
    manifest.artifact_type = Some(SIGNATURE_ARTIFACT_TYPE.to_string());
    manifest.subject = Some(subject);
    Ok(SignatureArtifact {
        layer,
        config,
        descriptor: descriptor_of(&manifest)?,
        manifest,
    })
}

/// The CNCF wasm config (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig {
    created: String,
    author: Option<String>,
    architecture: &'static str,
    os: &'static str,
    layer_digests: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    component: Option<ComponentInfo>,
}

/// The config's description of a component: what it imports and exports.
#[derive(Debug, Serialize)]
struct ComponentInfo {
    exports: Vec<String>,
    imports: Vec<String>,
    target: Option<String>,
}

impl WasmConfig {
    fn of(wasm: &[u8], layer_digest: String) -> WasmConfig {
        // A core module does not decode as a component: the layout calls
        // it `wasip1` and has no component section for it.
        let component = warden::inspect::inspect(wasm, "component").ok();
        WasmConfig {
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            author: None,
            architecture: "wasm",
            os: if component.is_some() {
                "wasip2"
            } else {
                "wasip1"
            },
            layer_digests: vec![layer_digest],
            component: component.map(|c| ComponentInfo {
                exports: c.exports,
                imports: c.imports,
                target: None,
            }),
        }
    }
}
