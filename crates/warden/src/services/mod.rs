//! Host services: everything a plugin can reach goes through one of these.
//!
//! Every service has the same shape, so adding one means adding one module:
//! a state struct kept per plugin instance, built from the plugin's
//! [`ServiceContext`], which implements the bindings' `Host` trait for its
//! WIT interface and links itself with [`HostService::add_to_linker`].
//! Register the module in [`Services`] below and that is all.

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
    /// The embedder's own interfaces.
    pub(crate) extensions: Vec<crate::extension::Extension>,
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
}

/// The shape every host service has.
pub(crate) trait HostService: Send + Sized + 'static {
    /// Builds the service's state for one new instance.
    fn new(ctx: &ServiceContext) -> Self;

    /// Adds the service's WIT interface to the linker, reaching the service's
    /// state through `get`.
    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut Self,
    ) -> wasmtime::Result<()>;
}

/// The state of every host service for one plugin instance.
pub(crate) struct Services {
    logging: logging::Logging,
    config: config::Config,
    events: events::Events,
    store: store::Store,
    http: http::Http,
    data: data::Data,
    /// The state of each of the embedder's extensions.
    extensions: Vec<Box<dyn std::any::Any + Send>>,
}

impl Services {
    /// The state of the extension whose state type is `E`.
    pub(crate) fn extension<E: 'static>(&mut self) -> Option<&mut E> {
        self.extensions
            .iter_mut()
            .find_map(|e| e.downcast_mut::<E>())
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

    pub(crate) fn new(ctx: &ServiceContext) -> Self {
        Services {
            logging: HostService::new(ctx),
            config: HostService::new(ctx),
            events: HostService::new(ctx),
            store: HostService::new(ctx),
            http: HostService::new(ctx),
            data: HostService::new(ctx),
            extensions: {
                let cx = crate::extension::ExtensionContext {
                    plugin: &ctx.scope.plugin,
                    version: &ctx.scope.version,
                };
                ctx.settings
                    .extensions
                    .iter()
                    .map(|e| e.make(&cx))
                    .collect()
            },
        }
    }

    /// Links every host service and the standard WASI interfaces.
    pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)?;
        // The shared-types interfaces have no functions, but components
        // that use their types import them, so they must exist in the linker.
        for types in crate::contract::ContractVersion::type_interfaces() {
            linker.instance(&types)?;
        }
        logging::Logging::add_to_linker(linker, |s| &mut s.services.logging)?;
        config::Config::add_to_linker(linker, |s| &mut s.services.config)?;
        events::Events::add_to_linker(linker, |s| &mut s.services.events)?;
        store::Store::add_to_linker(linker, |s| &mut s.services.store)?;
        http::Http::add_to_linker(linker, |s| &mut s.services.http)?;
        data::Data::add_to_linker(linker, |s| &mut s.services.data)?;
        Ok(())
    }
}
