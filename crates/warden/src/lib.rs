//! # Warden
//!
//! A sandboxed WebAssembly plugin host for Rust applications. Plugins are
//! WebAssembly components built against the `warden:plugin` WIT contract
//! (the `wit/` directory); the host runs them with wasmtime in pooled
//! instances, every call with a deadline and every instance with a memory
//! limit, and a plugin that traps never harms the host or other calls.
//!
//! ```no_run
//! use warden::{ProcessRequest, Warden};
//!
//! # fn main() -> warden::Result<()> {
//! let host = Warden::new()?;
//! let plugin = host.load_blocking("dist/text-transform")?; // built by `warden build plugins`
//! let out = plugin.process_blocking(ProcessRequest::new("hello").option("op", "upper"))?;
//! assert_eq!(out.output, b"HELLO");
//! # Ok(())
//! # }
//! ```
//!
//! The core is async (`Warden::load`, `Plugin::process`, ...) and runs on
//! tokio, so it fits tokio servers; every such method has a `_blocking` twin
//! for programs without a runtime.
//!
//! Everything a plugin reaches goes through a [`Capability`]: the built-in
//! ones (logging, config, events, key-value store, outbound HTTP, data
//! directory, and the standard `wasi:keyvalue`, `wasi:config` and
//! `wasi:logging` over the same backends) and the embedder's own
//! ([`WardenBuilder::capability`]). Building plugins from source is the
//! `warden-build` crate, serving them over HTTP the `warden-server` crate;
//! neither is a dependency of this one.

#![warn(missing_docs)]

mod audit;
mod breaker;
mod budget;
mod cache;
mod call;
mod capabilities;
mod claims;
mod contract;
mod core;
mod db;
mod deploy;
mod digest;
mod engine;
mod error;
mod events;
mod extension;
mod files;
mod firewall;
mod fsutil;
mod grants;
mod health;
pub mod inspect;
mod instance;
mod lane;
mod lifecycle;
mod limits;
mod loader;
mod locks;
mod manifest;
mod metrics;
pub mod module;
mod names;
pub mod permissions;
mod plugin;
mod prepared;
mod processing;
mod registry;
mod reload;
mod sandbox;
mod scope;
mod signature;
mod state;
mod target;
mod throttle;
mod trace;
mod trap;
mod values;
mod warden;
#[cfg(feature = "watch")]
mod watch;

pub use audit::{
    AUDIT_DIR, AuditEntry, AuditKind, AuditLog, AuditQuery, MAX_AUDIT_TEXT, parse_since,
};
pub use breaker::{BreakerSettings, BreakerState};
pub use cache::{CacheOutcome, CacheStats, default_cache_dir};
pub use call::{OptionDoc, PluginMetadata, PluginStatus, ProcessRequest, ProcessResponse};
pub use capabilities::ConfigSettings;
pub use capabilities::http::{HTTP_IDLE_FOR, HTTP_MAX_IDLE, HttpLimits};
pub use capabilities::store::{KvBackend, KvError, KvLimits, SqliteBackend};
pub use capabilities::{Capability, InstanceContext, PluginContext};
pub use contract::{CONTRACT_PACKAGE, CONTRACT_WIT, ContractVersion, World, write_contract_wit};
pub use db::STORE_FILE;
pub use deploy::{
    CanaryStatus, DeployAction, DeploymentStatus, HistoryEntry, Role, RollbackPolicy, VersionStatus,
};
pub use digest::sha256_hex;
pub use engine::{Allocator, EngineConfig, PoolingConfig};
pub use error::{Error, PluginError, Result, TrapKind, Unavailability};
pub use events::{Event, EventSettings, SubscriberStats};
pub use extension::{Extension, ExtensionContext, LinkFn};
pub use files::PluginFiles;
pub use fsutil::{create_owner_only_dir, write_atomically};
pub use grants::Grants;
pub use health::{HealthMonitor, HealthSettings, HealthStats};
pub use lifecycle::{State, Transition};
pub use limits::{HANDLE_BYTES, Limits};
pub use loader::providers_first;
pub use manifest::{MANIFEST_FILE, Manifest, ManifestLimits, describe_toml_error};
pub use metrics::{LatencyHistogram, VersionMetrics};
pub use names::validate_name;
pub use permissions::{EffectivePermissions, GrantPolicy, Permissions};
pub use plugin::{Plugin, PluginInfo, PluginStats};
pub use registry::discover;
pub use reload::Reloaded;
pub use signature::{
    PublicKey, SIGNATURE_FILE, SignatureProblem, SigningKey, verify as verify_signature,
};
pub use state::PluginState;
pub use trace::{GuestSpan, GuestSpanEvent, GuestSpanKind, SPAN_TARGET, SpanIds, TraceHooks};
pub use warden::{BatchLimits, ReloadStats, Warden, WardenBuilder};
#[cfg(feature = "watch")]
pub use watch::{WatchStats, Watcher};
