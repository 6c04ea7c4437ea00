//! Host capabilities: everything a plugin can reach beyond its own memory
//! is one [`Capability`] — logging, config, the key-value store, outbound
//! HTTP, events, the data directory, a plugin's own spans, and the
//! embedder's own.
//!
//! A capability owns, in one module, what used to be spread over the host:
//! the WIT functions it adds to the linker, the state each instance keeps,
//! the check that decides at load whether a plugin may use it (its
//! manifest section `[capabilities.<name>]` and the operator's policy,
//! which the capability value itself carries), and whatever it bounds and
//! counts. Each built-in one is a module here, registered by one line of
//! the `builtins!` list below; an embedder adds its own with
//! [`crate::WardenBuilder::capability`].
//!
//! An instance's store data ([`PluginState`]) keeps every capability's
//! state in a slot; each capability's functions reach theirs through the
//! accessor they were linked with, so the store data depends on no
//! capability. The accessor also counts the call, so every capability,
//! the embedder's too, has its calls per plugin version in the metrics
//! (`capability_calls`) without a line of its own.

mod config;
pub mod data;
mod events;
mod grant;
pub mod http;
pub(crate) mod links;
mod logging;
mod otel;
mod registration;
mod stdio;
pub mod store;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::Linker;

use crate::events::EventBus;
use crate::scope::CallScope;
use crate::state::{CapabilityStates, PluginState};

pub use config::ConfigSettings;
pub use data::DATA_GUEST_PATH;
use data::{DataDir, DataRoot};
pub(crate) use grant::Grant;
use http::HttpLimits;
pub use registration::{Capability, InstanceContext, PluginContext};
pub(crate) use registration::{Linking, Registered, Registry};
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
    /// The embedder's trace format: the context written into outbound
    /// HTTP requests, and where plugins' own spans go.
    pub(crate) trace: Option<Arc<dyn crate::TraceHooks>>,
    /// Where the plugins' data directories are.
    pub(crate) data_root: DataRoot,
    /// The embedder's capabilities (extensions among them).
    pub(crate) capabilities: Registry,
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
    /// The HTTP origins the plugin was granted, and its idle connections.
    pub(crate) http: Arc<http::Outbound>,
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
    /// The plugin version's count of calls into each capability
    /// ([`call_counters`]).
    pub(crate) capability_calls: Arc<[AtomicU64]>,
}

/// A count of calls into each capability of a host, by slot (built-in ones
/// first, then the embedder's), all zero.
pub(crate) fn call_counters(settings: &ServiceSettings) -> Arc<[AtomicU64]> {
    let slots = builtin_names().len() + settings.capabilities.iter().count();
    (0..slots).map(|_| AtomicU64::new(0)).collect()
}

/// `counters` by capability name, leaving out those never called.
pub(crate) fn calls_by_name(
    settings: &ServiceSettings,
    counters: &[AtomicU64],
) -> BTreeMap<String, u64> {
    let names = builtin_names()
        .into_iter()
        .chain(settings.capabilities.iter().map(|c| c.name()));
    names
        .zip(counters)
        .map(|(name, n)| (name.to_string(), n.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Declares the built-in capabilities: each one's per-instance state has
/// a fixed slot among an instance's states (reached without a search),
/// built and linked in the order given.
macro_rules! builtins {
    ($($slot:ident: $capability:path),* $(,)?) => {
        /// The slot of each built-in capability's state.
        #[allow(non_camel_case_types)]
        enum Slot {
            $($slot,)*
        }

        /// The state of every capability for one new instance: the
        /// built-in ones in [`Slot`] order, then the embedder's.
        pub(crate) fn instance_states(ctx: &ServiceContext) -> CapabilityStates {
            let cx = InstanceContext { inner: ctx };
            let mut states: Vec<Box<dyn Any + Send>> =
                vec![$(Box::new(<$capability as Capability>::instance_state(&$capability, &cx)),)*];
            let builtins = states.len();
            states.extend(ctx.settings.capabilities.iter().map(|c| c.make(&cx)));
            CapabilityStates::new(states, builtins, ctx.capability_calls.clone())
        }

        /// The names of the built-in capabilities, which the embedder's
        /// may not take.
        pub(crate) fn builtin_names() -> Vec<&'static str> {
            vec![$(Capability::name(&$capability)),*]
        }

        fn link_builtins(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
            $(<$capability as Capability>::add_to_linker(linker, |s| {
                s.capabilities().called(Slot::$slot as usize)
            })?;)*
            Ok(())
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
    links: links::LinksCapability,
    otel: otel::OtelCapability,
}

/// The built-in capabilities whose functions are linked per plugin, at
/// load, against what the plugin imports and was granted: one line each.
const PER_PLUGIN: [fn(&mut Linking<'_>) -> crate::error::Result<()>; 2] =
    [links::link_plugin, http::link_plugin];

/// The built-in capabilities that have operator grants of their own
/// (`http:`, `kv:`, `link:`), each holding none yet: one line each.
pub(crate) fn grants() -> Vec<Box<dyn Grant>> {
    vec![
        Box::new(http::HttpGrants::default()),
        Box::new(store::grants()),
        Box::new(links::grants()),
    ]
}

/// Links, in the plugin's own linker, what the capabilities link per plugin.
pub(crate) fn link_plugin(linking: &mut Linking<'_>) -> crate::error::Result<()> {
    PER_PLUGIN.iter().try_for_each(|link| link(linking))
}

/// Counts a call of the instance `state` through one of its links (their
/// functions are linked per plugin, not through an accessor).
pub(crate) fn count_link_call(state: &mut PluginState) {
    state.capabilities().count(Slot::links as usize);
}

/// The data-directory capability's state among `states`, which tracks
/// descriptors opened inside its directory.
pub(crate) fn data_of(states: &mut CapabilityStates) -> &mut data::Data {
    states.at(Slot::data as usize)
}

/// The data-directory capability's state of the instance `state`.
pub(crate) fn data(state: &mut PluginState) -> &mut data::Data {
    data_of(state.capabilities())
}

/// Links the standard WASI interfaces and every built-in capability.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    // The shared-types interfaces have no functions, but components that
    // use their types import them, so they must exist in the linker.
    for types in crate::contract::ContractVersion::type_interfaces() {
        linker.instance(&types)?;
    }
    link_builtins(linker)
}
