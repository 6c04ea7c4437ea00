//! A plugin as an OCI artifact in the CNCF wasm layout
//! (`application/vnd.wasm.config.v0+json` config, one `application/wasm`
//! layer), so that `wkg` and `wash` read what Warden pushes. What the layout
//! has no place for travels in manifest annotations: the plugin's
//! `plugin.toml` (its permissions and limits) and its `plugin.sig`, byte for
//! byte, so that a signature made before the push still verifies after the
//! pull. They are base64: registries parse the manifest as JSON, and the
//! canonical JSON the manifest is written in leaves newlines unescaped.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
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
/// The annotation holding `plugin.sig`, base64, when the plugin is signed.
pub const SIGNATURE_ANNOTATION: &str = "dev.warden.plugin.signature";

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

/// Takes the plugin out of a pulled artifact's annotations and layer.
pub(crate) fn plugin_of(
    reference: &str,
    annotations: &BTreeMap<String, String>,
    component: Vec<u8>,
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
        annotation(reference, annotations, SIGNATURE_ANNOTATION)?,
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
    if let Some(signature) = &files.signature {
        annotations.insert(SIGNATURE_ANNOTATION.to_string(), BASE64.encode(signature));
    }
    let layers = std::slice::from_ref(&layer);
    let mut manifest = OciImageManifest::build(layers, &config, Some(annotations));
    manifest.media_type = Some(MANIFEST_MEDIA_TYPE.to_string());
    Ok((layer, config, manifest))
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
