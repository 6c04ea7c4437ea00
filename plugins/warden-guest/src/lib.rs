//! Helpers for writing Warden plugins in Rust.
//!
//! Every plugin exports the `warden:plugin/plugin` interface, and most
//! implement it the same way: metadata from `Cargo.toml`, a status that
//! follows `initialize` and `shutdown`. [`plugin_lifecycle!`] writes that
//! implementation, so a plugin's code is only what it really does:
//!
//! ```ignore
//! wit_bindgen::generate!({ path: "../../wit", world: "processor" });
//! struct Component;
//! warden_guest::plugin_lifecycle!(Component);
//! // or, to read the configuration at start-up:
//! warden_guest::plugin_lifecycle!(Component, initialize = my_initialize);
//! ```
//!
//! The macro must be invoked in the module that invoked
//! `wit_bindgen::generate!`, whose generated `exports` and `warden` modules
//! it uses. Metadata comes from the crate's `name`, `version`,
//! `description` and `authors`.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where an instance is in its life, as `get-status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `initialize` has not succeeded yet.
    Uninitialized,
    /// `initialize` succeeded.
    Ready,
    /// `shutdown` ran.
    Stopped,
}

/// The phase of this instance. A `static` per plugin: one instance is one
/// wasm module instance, so globals are per instance.
pub struct Lifecycle(AtomicU8);

impl Lifecycle {
    /// A lifecycle in [`Phase::Uninitialized`].
    pub const fn new() -> Self {
        Lifecycle(AtomicU8::new(0))
    }

    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        let code = match phase {
            Phase::Uninitialized => 0,
            Phase::Ready => 1,
            Phase::Stopped => 2,
        };
        self.0.store(code, Ordering::Relaxed);
    }

    /// The current phase.
    pub fn get(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
            1 => Phase::Ready,
            2 => Phase::Stopped,
            _ => Phase::Uninitialized,
        }
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

/// The `authors` of `Cargo.toml` (colon-separated in `CARGO_PKG_AUTHORS`)
/// as one human-readable string.
pub fn authors(cargo_pkg_authors: &str) -> String {
    cargo_pkg_authors
        .split(':')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Implements the `warden:plugin/plugin` interface for `$component`.
///
/// With `initialize = f`, `f(config)` runs first in `initialize` (a
/// `fn(Vec<KeyValue>) -> Result<(), PluginError>`); its error fails the
/// instance's start. With `shutdown = g` as well, `g()` runs in `shutdown`
/// (a `fn() -> Result<(), PluginError>`). With `status = h` as well,
/// `get-status` answers `h(status)` (a `fn(PluginStatus) -> PluginStatus`
/// given the lifecycle's own status), so a plugin can report itself
/// `degraded` or `failed` to the host's health checks.
///
/// A plugin of contract 0.2.0 or later has two versions of the package in
/// its bindings, whose modules wit-bindgen names with the version; it
/// says which one holds `plugin` (0.1.0's) by starting with
/// `bindings = plugin0_1_0`:
///
/// ```ignore
/// wit_bindgen::generate!({ path: "../../wit/0.2.0", world: "processor", generate_all });
/// warden_guest::plugin_lifecycle!(bindings = plugin0_1_0, Component);
/// ```
#[macro_export]
macro_rules! plugin_lifecycle {
    (bindings = $package:ident, $($rest:tt)*) => {
        $crate::__plugin_lifecycle!($package; $($rest)*);
    };
    ($($rest:tt)*) => {
        $crate::__plugin_lifecycle!(plugin; $($rest)*);
    };
}

/// [`plugin_lifecycle!`] with the bindings' package module spelled out.
#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_lifecycle {
    ($p:ident; $component:ident) => {
        $crate::__plugin_lifecycle!($p; $component, initialize = |_| Ok(()));
    };
    ($p:ident; $component:ident, initialize = $initialize:expr) => {
        $crate::__plugin_lifecycle!($p; $component, initialize = $initialize, shutdown = || Ok(()));
    };
    ($p:ident; $component:ident, initialize = $initialize:expr, shutdown = $shutdown:expr) => {
        $crate::__plugin_lifecycle!(
            $p;
            $component,
            initialize = $initialize,
            shutdown = $shutdown,
            status = |status| status
        );
    };
    ($p:ident; $component:ident, initialize = $initialize:expr, shutdown = $shutdown:expr, status = $status:expr) => {
        static WARDEN_GUEST_LIFECYCLE: $crate::Lifecycle = $crate::Lifecycle::new();

        impl exports::warden::$p::plugin::Guest for $component {
            fn get_metadata() -> warden::$p::types::PluginMetadata {
                warden::$p::types::PluginMetadata {
                    name: env!("CARGO_PKG_NAME").to_string(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    description: env!("CARGO_PKG_DESCRIPTION").to_string(),
                    author: $crate::authors(env!("CARGO_PKG_AUTHORS")),
                }
            }

            fn initialize(
                config: Vec<warden::$p::types::KeyValue>,
            ) -> Result<(), warden::$p::types::PluginError> {
                let initialize: fn(
                    Vec<warden::$p::types::KeyValue>,
                ) -> Result<(), warden::$p::types::PluginError> = $initialize;
                initialize(config)?;
                WARDEN_GUEST_LIFECYCLE.set($crate::Phase::Ready);
                Ok(())
            }

            fn shutdown() -> Result<(), warden::$p::types::PluginError> {
                let shutdown: fn() -> Result<(), warden::$p::types::PluginError> = $shutdown;
                WARDEN_GUEST_LIFECYCLE.set($crate::Phase::Stopped);
                shutdown()
            }

            fn get_status() -> warden::$p::types::PluginStatus {
                let status: fn(
                    warden::$p::types::PluginStatus,
                ) -> warden::$p::types::PluginStatus = $status;
                status(match WARDEN_GUEST_LIFECYCLE.get() {
                    $crate::Phase::Uninitialized => {
                        warden::$p::types::PluginStatus::Uninitialized
                    }
                    $crate::Phase::Ready => warden::$p::types::PluginStatus::Ready,
                    $crate::Phase::Stopped => warden::$p::types::PluginStatus::Stopped,
                })
            }
        }
    };
}

/// A closure that looks up an option of a `process` request by key
/// (`Fn(&str) -> Option<String>`; the first option with the key wins):
///
/// ```ignore
/// let option = warden_guest::option_lookup!(request);
/// let op = option("op").unwrap_or_default();
/// ```
#[macro_export]
macro_rules! option_lookup {
    ($request:expr) => {
        |key: &str| {
            $request
                .options
                .iter()
                .find(|kv| kv.key == key)
                .map(|kv| kv.value.clone())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_follows_phases() {
        let l = Lifecycle::new();
        assert_eq!(l.get(), Phase::Uninitialized);
        l.set(Phase::Ready);
        assert_eq!(l.get(), Phase::Ready);
        l.set(Phase::Stopped);
        assert_eq!(l.get(), Phase::Stopped);
    }

    #[test]
    fn authors_are_joined() {
        assert_eq!(authors("Ada <a@x>:Bob"), "Ada <a@x>, Bob");
        assert_eq!(authors(""), "");
    }
}
