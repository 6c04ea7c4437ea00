//! What a loaded plugin is and has done, readable without calling it.

use std::path::PathBuf;

use crate::cache::CacheOutcome;
use crate::contract::{ContractVersion, World};
use crate::limits::Limits;
use crate::permissions::{EffectivePermissions, Permissions};

/// What is known about a loaded plugin without calling it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    /// The plugin's name.
    pub name: String,
    /// Its version, from the manifest.
    pub version: semver::Version,
    /// Its description, from the manifest.
    pub description: String,
    /// The world it implements.
    pub world: World,
    /// The contract version its component targets (found in the
    /// component itself).
    pub contract: ContractVersion,
    /// The event patterns its manifest subscribes to (`subscribe`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<String>>,
    /// The sha256 of the component, hex.
    pub sha256: String,
    /// The component's size in bytes.
    pub size: usize,
    /// Its compiled code, mapped in the host's memory (resident where it
    /// runs), in bytes.
    pub code_bytes: u64,
    /// The component file, when it was loaded from one.
    pub path: Option<PathBuf>,
    /// The path it was loaded from (a directory, manifest or `.wasm`, made
    /// absolute), which [`crate::Warden::reload`] reads again.
    pub source: Option<PathBuf>,
    /// Whether loading compiled the component or found it in a cache.
    pub cache: CacheOutcome,
    /// The effective limits.
    pub limits: Limits,
    /// What the manifest asks for.
    pub requested: Permissions,
    /// What the plugin may actually reach (the request intersected with the
    /// host's grants).
    pub permissions: EffectivePermissions,
    /// The host directory mounted at `/data` (`data-dir = true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// Call counters of a plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PluginStats {
    /// Calls made (successful or not).
    pub calls: u64,
    /// Calls where the plugin returned its own error.
    pub plugin_errors: u64,
    /// Calls where the plugin trapped.
    pub traps: u64,
    /// Calls refused because every instance stayed busy.
    pub busy: u64,
    /// Calls cut short because a plugin they called through a link failed.
    pub link_failures: u64,
    /// Instances created so far.
    pub instances_created: u64,
    /// Instances idle in the pool right now.
    pub instances_idle: u64,
    /// Instances retired while healthy, before they could fail a call.
    pub instances_recycled: u64,
    /// The largest linear memory any instance reached, in bytes.
    pub peak_memory: u64,
    /// The linear memory of every live instance together now, in bytes.
    pub memory_bytes: u64,
}
