//! The worlds of the contract: what a plugin exports, by kind of plugin.

use std::fmt;
use std::str::FromStr;

use super::version::{CONTRACT_PACKAGE, ContractVersion};

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

    /// The interfaces (unversioned) a component of this world exports.
    pub fn interfaces(self) -> &'static [&'static str] {
        match self {
            World::Minimal => &["plugin"],
            World::Processor => &["plugin", "processing"],
            World::EventHandler => &["plugin", "event-handling"],
        }
    }

    /// The exported interfaces a component of this world must have in
    /// contract version `contract`.
    pub fn required_exports(self, contract: ContractVersion) -> Vec<String> {
        self.interfaces()
            .iter()
            .filter_map(|i| contract.qualified(i))
            .collect()
    }

    /// The exports this world requires in `contract` that are not in
    /// `exports`.
    pub fn missing_exports(self, contract: ContractVersion, exports: &[String]) -> Vec<String> {
        self.required_exports(contract)
            .into_iter()
            .filter(|needed| !exports.iter().any(|e| e == needed))
            .collect()
    }

    /// Refuses a component of plugin `plugin` whose `exports` lack what
    /// this world requires in `contract`, naming what is missing.
    pub fn check_exports(
        self,
        plugin: &str,
        contract: ContractVersion,
        exports: &[String],
    ) -> crate::error::Result<()> {
        let missing = self.missing_exports(contract, exports);
        match missing.is_empty() {
            true => Ok(()),
            false => Err(crate::error::Error::WrongWorld {
                plugin: plugin.to_string(),
                world: self.to_string(),
                missing,
            }),
        }
    }

    /// The richest world whose exports in `contract` are all in `exports`
    /// (used when a component comes without a manifest).
    pub fn infer(contract: ContractVersion, exports: &[String]) -> Option<World> {
        [World::Processor, World::EventHandler, World::Minimal]
            .into_iter()
            .find(|world| world.missing_exports(contract, exports).is_empty())
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

    /// Accepts the short name (`processor`) or the qualified one, with or
    /// without a version (`warden:plugin/processor@0.2.0`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let short = s
            .strip_prefix(CONTRACT_PACKAGE)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(|rest| rest.split_once('@').map_or(rest, |(name, _)| name))
            .unwrap_or(s);
        World::ALL
            .into_iter()
            .find(|w| w.name() == short)
            .ok_or_else(|| {
                format!("unknown world `{s}`; expected one of: minimal, processor, event-handler")
            })
    }
}
