//! The built-in host capabilities: everything a plugin can reach goes
//! through one of these or through one of the embedder's.
//!
//! Each is one module implementing [`Capability`]: its per-instance state,
//! which implements the bindings' `Host` traits of its WIT interfaces, and
//! how it links them. Adding one is adding its module and one line to the
//! `builtins!` list below.

mod config;
pub mod data;
mod events;
pub mod http;
mod logging;
mod stdio;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::Linker;

use crate::capability::{Capability, InstanceContext};
use crate::events::EventBus;
use crate::sandbox::{CallScope, PluginState};

pub use config::ConfigSettings;
pub use data::DATA_GUEST_PATH;
use data::{DataDir, DataRoot};
use http::HttpLimits;
pub(crate) use logging::write_log;
pub(crate) use stdio::GuestOutput;
use store::{KvBackend, KvLimits};

/// The operator's settings of every host service, shared by all plugins.
pub(crate) struct ServiceSettings {
    /// Config values set by the operator.
    pub(crate) config: ConfigSettings,
    /// The key-value backend and its limits.
    pub(crate) kv: Arc<dyn KvBackend>,
    pub(crate) kv_limits: KvLimits,
    /// Bounds on outbound HTTP.
    pub(crate) http: HttpLimits,
    /// Where the plugins' data directories are.
    pub(crate) data_root: DataRoot,
    /// The embedder's capabilities (extensions among them).
    pub(crate) capabilities: crate::capability::Registry,
}

/// What a service may know about the plugin it serves.
pub(crate) struct ServiceContext<'a> {
    /// Attribution and log budget of the call in progress.
    pub(crate) scope: Arc<CallScope>,
    /// The operator's settings.
    pub(crate) settings: &'a ServiceSettings,
    /// The plugin's effective configuration.
    pub(crate) config: Arc<BTreeMap<String, String>>,
    /// Where emitted events go.
    pub(crate) bus: Arc<EventBus>,
    /// The named key-value stores the plugin was granted.
    pub(crate) shared_stores: Arc<Vec<String>>,
    /// The HTTP origins the plugin was granted.
    pub(crate) http_origins: Arc<Vec<crate::permissions::Origin>>,
    /// The plugin's data directory, if its manifest asks for one.
    pub(crate) data_dir: Option<Arc<DataDir>>,
    /// Every directory the plugin writes to, each with its quota: the data
    /// directory and the read-write mounts.
    pub(crate) quotas: Arc<Vec<Arc<DataDir>>>,
    /// The quota of the plugin's own key-value namespace, in bytes.
    pub(crate) kv_quota: u64,
    /// The instance's host-memory budget, for what a service holds while
    /// it answers.
    pub(crate) budget: Arc<crate::budget::HostBudget>,
}

/// Declares the built-in capabilities: each one's per-instance state is a
/// field of [`Services`] (reached without a lookup), built and linked in
/// the order given.
macro_rules! builtins {
    ($($field:ident: $capability:path),* $(,)?) => {
        /// The state of every capability for one plugin instance.
        pub(crate) struct Services {
            $($field: <$capability as Capability>::State,)*
            /// The state of each of the embedder's capabilities.
            embedded: Vec<Box<dyn std::any::Any + Send>>,
        }

        impl Services {
            pub(crate) fn new(ctx: &ServiceContext) -> Self {
                let cx = InstanceContext { inner: ctx };
                Services {
                    $($field: $capability.instance_state(&cx),)*
                    embedded: ctx.settings.capabilities.iter().map(|c| c.make(&cx)).collect(),
                }
            }

            /// The names of the built-in capabilities, which the
            /// embedder's may not take.
            pub(crate) fn builtin_names() -> Vec<&'static str> {
                vec![$($capability.name()),*]
            }

            fn link_builtins(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
                $(<$capability as Capability>::add_to_linker(linker, |s| &mut s.services.$field)?;)*
                Ok(())
            }
        }
    };
}

// The registration of the built-in capabilities: one line each.
builtins! {
    logging: logging::LoggingCapability,
    config: config::ConfigCapability,
    events: events::EventsCapability,
    store: store::StoreCapability,
    http: http::HttpCapability,
    data: data::DataCapability,
}

impl Services {
    /// The state of the embedder's capability whose state type is `S`.
    pub(crate) fn embedded<S: 'static>(&mut self) -> Option<&mut S> {
        self.embedded.iter_mut().find_map(|e| e.downcast_mut::<S>())
    }

    /// The host directory to mount at [`DATA_GUEST_PATH`], if any.
    pub(crate) fn data_mount(&self) -> Option<&crate::fsutil::HeldDir> {
        self.data.mount()
    }

    /// The data-directory service, which tracks descriptors opened inside it.
    pub(crate) fn data(&mut self) -> &mut data::Data {
        &mut self.data
    }

    /// The HTTP service's state, for [`wasmtime_wasi_http::WasiHttpView`].
    pub(crate) fn http(&mut self) -> &mut http::Http {
        &mut self.http
    }

    /// Links every host service and the standard WASI interfaces.
    pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)?;
        // The shared-types interfaces have no functions, but components
        // that use their types import them, so they must exist in the linker.
        for types in crate::contract::ContractVersion::type_interfaces() {
            linker.instance(&types)?;
        }
        Self::link_builtins(linker)
    }
}
