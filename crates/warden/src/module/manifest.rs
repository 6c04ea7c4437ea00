//! The `plugin.toml` of a core-module plugin: like a component's, with the
//! ABI the module speaks instead of a world.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::{ManifestLimits, check_inside, describe_toml_error};
use crate::names::validate_name;
use crate::permissions::Permissions;

/// How the host talks to a core module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleAbi {
    /// Exported functions of numbers (`add(i32, i32) -> i32`), called by
    /// name with typed arguments.
    Exports,
    /// The linear-memory JSON ABI: `allocate(len) -> ptr`,
    /// `execute(ptr, len) -> i64` and `meta() -> i64`, where the `i64` packs
    /// the result's pointer (high 32 bits) and length (low 32 bits).
    Json,
}

impl ModuleAbi {
    /// The ABI's name in manifests.
    pub fn name(self) -> &'static str {
        match self {
            ModuleAbi::Exports => "exports",
            ModuleAbi::Json => "json",
        }
    }
}

/// A parsed core-module manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModuleManifest {
    /// The plugin's name: lowercase ASCII letters, digits and `-`.
    pub name: String,
    /// Its version.
    pub version: semver::Version,
    /// One sentence saying what it does.
    #[serde(default)]
    pub description: String,
    /// The ABI the module speaks.
    pub abi: ModuleAbi,
    /// `true`: a WASI preview1 module, given the same sandbox as components
    /// (mapped directories and environment from its permissions, no
    /// sockets).
    #[serde(default)]
    pub wasi: bool,
    /// The module file, relative to the manifest (default `<name>.wasm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<PathBuf>,
    /// Resource limits, as for components.
    #[serde(default)]
    pub limits: ManifestLimits,
    /// What it asks to reach (`fs` and `env` apply to WASI modules).
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub permissions: Permissions,
}

impl ModuleManifest {
    /// Parses and checks `text`, read from `file`.
    pub fn parse(text: &str, file: &Path) -> Result<ModuleManifest> {
        let bad = |message: String| Error::Manifest {
            file: file.to_path_buf(),
            message,
        };
        let manifest: ModuleManifest =
            toml::from_str(text).map_err(|e| bad(describe_toml_error(text, &e)))?;
        validate_name(&manifest.name).map_err(|m| bad(format!("key `name`: {m}")))?;
        manifest.limits.validate().map_err(bad)?;
        if let Some(module) = &manifest.module {
            check_inside("module", module).map_err(bad)?;
        }
        Ok(manifest)
    }

    /// Whether the manifest text declares a core module (has an `abi` key).
    pub fn is_module_manifest(text: &str) -> bool {
        toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("abi"))
    }

    /// The module file, resolved against the manifest's directory.
    pub fn module_path(&self, dir: &Path) -> PathBuf {
        dir.join(
            self.module
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.wasm", self.name))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_manifest_names_its_abi() {
        let text = "name = \"math\"\nversion = \"1.0.0\"\nabi = \"exports\"\n";
        assert!(ModuleManifest::is_module_manifest(text));
        let m = ModuleManifest::parse(text, Path::new("plugin.toml")).unwrap();
        assert_eq!(m.abi, ModuleAbi::Exports);
        assert!(!m.wasi);
        assert_eq!(m.module_path(Path::new("/p")), Path::new("/p/math.wasm"));
    }

    #[test]
    fn an_unknown_abi_is_refused_with_the_line() {
        let text = "name = \"math\"\nversion = \"1.0.0\"\nabi = \"cbor\"\n";
        let err = ModuleManifest::parse(text, Path::new("plugin.toml")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("plugin.toml") && message.contains("cbor"),
            "{message}"
        );
    }

    #[test]
    fn the_module_path_stays_inside_the_plugin() {
        let text = "name = \"m\"\nversion = \"1.0.0\"\nabi = \"json\"\nmodule = \"../x.wasm\"\n";
        let err = ModuleManifest::parse(text, Path::new("plugin.toml")).unwrap_err();
        assert!(err.to_string().contains("key `module`"), "{err}");
    }

    #[test]
    fn component_manifests_are_not_module_manifests() {
        let text = "name = \"x\"\nversion = \"1.0.0\"\nworld = \"processor\"\n";
        assert!(!ModuleManifest::is_module_manifest(text));
    }
}
