//! The plugin contract (`wit/`, package `warden:plugin`) as seen from the
//! host: generated bindings and the worlds a plugin can target.

use std::fmt;
use std::str::FromStr;

/// Host-side bindings generated from `wit/`.
///
/// The host binds one world that imports every host service and exports
/// every plugin interface; each plugin interface is then looked up on its
/// own, so a component only needs the exports of the world it declares.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        inline: "
            package warden:host;
            world host {
                include warden:plugin/host-services@0.1.0;
                export warden:plugin/plugin@0.1.0;
                export warden:plugin/processing@0.1.0;
                export warden:plugin/event-handling@0.1.0;
            }
        ",
        world: "warden:host/host",
        imports: { default: async },
        exports: { default: async },
    });

    pub(crate) use self::warden::plugin::types;
    pub(crate) use exports::warden::plugin::{
        event_handling as event_handler, plugin, processing as processor,
    };
}

/// The contract package and version this host implements.
pub const CONTRACT_PACKAGE: &str = "warden:plugin@0.1.0";

/// A world of the contract: what a plugin exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", try_from = "String")]
pub enum World {
    /// Identity and lifecycle only (`plugin`).
    Minimal,
    /// `plugin` + `processor`: turns an input into an output.
    Processor,
    /// `plugin` + `event-handler`: reacts to events.
    EventHandler,
}

impl World {
    /// Every world, in the order they are documented.
    pub const ALL: [World; 3] = [World::Minimal, World::Processor, World::EventHandler];

    /// The world's WIT name.
    pub fn name(self) -> &'static str {
        match self {
            World::Minimal => "minimal",
            World::Processor => "processor",
            World::EventHandler => "event-handler",
        }
    }

    /// The exported interfaces a component of this world must have.
    pub fn required_exports(self) -> &'static [&'static str] {
        const PLUGIN: &str = "warden:plugin/plugin@0.1.0";
        const PROCESSOR: &str = "warden:plugin/processing@0.1.0";
        const EVENT_HANDLER: &str = "warden:plugin/event-handling@0.1.0";
        match self {
            World::Minimal => &[PLUGIN],
            World::Processor => &[PLUGIN, PROCESSOR],
            World::EventHandler => &[PLUGIN, EVENT_HANDLER],
        }
    }

    /// The exports this world requires that are not in `exports`.
    pub fn missing_exports(self, exports: &[String]) -> Vec<String> {
        self.required_exports()
            .iter()
            .filter(|needed| !exports.iter().any(|e| e == *needed))
            .map(|s| s.to_string())
            .collect()
    }

    /// The richest world whose exports are all in `exports` (used when a
    /// component comes without a manifest).
    pub fn infer<'a>(exports: impl IntoIterator<Item = &'a str> + Clone) -> Option<World> {
        [World::Processor, World::EventHandler, World::Minimal]
            .into_iter()
            .find(|world| {
                world
                    .required_exports()
                    .iter()
                    .all(|needed| exports.clone().into_iter().any(|e| e == *needed))
            })
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for World {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for World {
    type Err = String;

    /// Accepts the short name (`processor`) or the qualified one
    /// (`warden:plugin/processor@0.1.0`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let short = s
            .strip_prefix("warden:plugin/")
            .map(|rest| rest.strip_suffix("@0.1.0").unwrap_or(rest))
            .unwrap_or(s);
        World::ALL
            .into_iter()
            .find(|w| w.name() == short)
            .ok_or_else(|| {
                format!("unknown world `{s}`; expected one of: minimal, processor, event-handler")
            })
    }
}
