//! A plugin compiled, checked against its world and linked against the
//! host: what the loader hands a new plugin, with where each of the
//! component's exports is, looked up once.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::InstancePre;

use crate::cache::CacheOutcome;
use crate::capabilities::data::DataDir;
use crate::contract::bindings::{event_handler, plugin};
use crate::contract::{ContractVersion, World};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::manifest::Manifest;
use crate::permissions::EffectivePermissions;
use crate::processing::ProcessingIndices;
use crate::state::PluginState;

/// A plugin ready to instantiate: compiled, checked against its world, and
/// linked against the host.
pub(crate) struct Prepared {
    pub(crate) manifest: Manifest,
    pub(crate) limits: Limits,
    pub(crate) config: std::collections::BTreeMap<String, String>,
    pub(crate) permissions: EffectivePermissions,
    pub(crate) data_dir: Option<Arc<DataDir>>,
    /// The data directory and every read-write mount, each with its quota.
    pub(crate) quotas: Vec<Arc<DataDir>>,
    pub(crate) origin: Option<PathBuf>,
    /// What identifies this exact plugin: component and manifest.
    pub(crate) fingerprint: String,
    pub(crate) sha256: String,
    pub(crate) size: usize,
    pub(crate) path: Option<PathBuf>,
    pub(crate) cache: CacheOutcome,
    pub(crate) pre: InstancePre<PluginState>,
    pub(crate) exports: ExportIndices,
    pub(crate) contract: ContractVersion,
}

/// The size of `pre`'s compiled code, as mapped in memory.
pub(crate) fn code_bytes(pre: &InstancePre<PluginState>) -> u64 {
    let code = pre.component().image_range();
    (code.end as usize).saturating_sub(code.start as usize) as u64
}

/// Where each plugin interface lives in the component, looked up once.
#[derive(Clone)]
pub(crate) struct ExportIndices {
    pub(crate) plugin: plugin::GuestIndices,
    pub(crate) processor: Option<ProcessingIndices>,
    pub(crate) event_handler: Option<event_handler::GuestIndices>,
}

impl ExportIndices {
    pub(crate) fn new(
        pre: &InstancePre<PluginState>,
        world: World,
        contract: ContractVersion,
        name: &str,
    ) -> Result<Self> {
        // The interfaces are present (checked above); a failure here means a
        // function inside one is missing or has the wrong type.
        let wrong = |e: wasmtime::Error| Error::WrongWorld {
            plugin: name.to_string(),
            world: world.to_string(),
            missing: vec![format!("{e:#}")],
        };
        Ok(ExportIndices {
            plugin: plugin::GuestIndices::new(pre).map_err(wrong)?,
            processor: match (world, contract.interface_version("processing")) {
                (World::Processor, Some(version)) => {
                    Some(ProcessingIndices::new(pre, version).map_err(wrong)?)
                }
                _ => None,
            },
            event_handler: match world {
                World::EventHandler => Some(event_handler::GuestIndices::new(pre).map_err(wrong)?),
                _ => None,
            },
        })
    }
}
