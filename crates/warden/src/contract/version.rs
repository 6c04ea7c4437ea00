//! The contract versions this host serves, the interfaces each is made of,
//! and finding the version a component targets from its own imports and
//! exports.

use std::fmt;

use crate::error::{Error, Result};

/// The package of the contract, without a version.
pub const CONTRACT_PACKAGE: &str = "warden:plugin";

/// A version of the `warden:plugin` contract that this host serves. A
/// host serves every version listed here side by side: plugins built
/// against any of them load and run in one host.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub enum ContractVersion {
    /// `warden:plugin@0.1.0`, the first.
    V0_1_0,
    /// `warden:plugin@0.2.0`: `process-request.call-id` and
    /// `processing.describe-options`.
    V0_2_0,
}

impl ContractVersion {
    /// Every version this host serves, oldest first.
    pub const ALL: [ContractVersion; 2] = [ContractVersion::V0_1_0, ContractVersion::V0_2_0];

    /// The newest version: what new plugins should target.
    pub const LATEST: ContractVersion = ContractVersion::V0_2_0;

    /// The version number, `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1_0 => "0.1.0",
            ContractVersion::V0_2_0 => "0.2.0",
        }
    }

    /// The interfaces of this contract version as `name@version`. An
    /// interface a version did not change keeps the version it was last
    /// changed in, so the host links and calls it the same way for both.
    pub fn interfaces(self) -> &'static [&'static str] {
        match self {
            ContractVersion::V0_1_0 => &[
                "types@0.1.0",
                "logging@0.1.0",
                "config@0.1.0",
                "events@0.1.0",
                "store@0.1.0",
                "plugin@0.1.0",
                "processing@0.1.0",
                "event-handling@0.1.0",
            ],
            ContractVersion::V0_2_0 => &[
                "types@0.1.0",
                "types@0.2.0",
                "logging@0.1.0",
                "config@0.1.0",
                "events@0.1.0",
                "store@0.1.0",
                "plugin@0.1.0",
                "processing@0.2.0",
                "event-handling@0.1.0",
            ],
        }
    }

    /// The full name of `interface` (`processing`) in this contract
    /// version: `warden:plugin/processing@0.2.0`.
    pub fn qualified(self, interface: &str) -> Option<String> {
        self.interface_version(interface)
            .map(|version| format!("{CONTRACT_PACKAGE}/{interface}@{version}"))
    }

    /// The version of `interface` in this contract version (`0.2.0`).
    pub(crate) fn interface_version(self, interface: &str) -> Option<&'static str> {
        self.interfaces()
            .iter()
            .filter_map(|i| i.split_once('@'))
            .find(|(name, _)| *name == interface)
            .map(|(_, version)| version)
    }

    /// Every version of the function-less `types` interface that some
    /// served contract version has, fully qualified.
    pub(crate) fn type_interfaces() -> std::collections::BTreeSet<String> {
        ContractVersion::ALL
            .iter()
            .flat_map(|v| v.interfaces())
            .filter(|i| i.starts_with("types@"))
            .map(|i| format!("{CONTRACT_PACKAGE}/{i}"))
            .collect()
    }

    /// The supported versions as `0.1.0, 0.2.0`, for errors.
    pub fn supported_list() -> String {
        ContractVersion::ALL.map(ContractVersion::as_str).join(", ")
    }

    /// The contract version a component targets, from the names of its
    /// imports and exports: the oldest version every `warden:plugin`
    /// interface it uses belongs to. (A component that uses nothing a
    /// later version changed is, to the host, a component of the earlier
    /// one: they are the same.) A component using an interface version no
    /// served contract version has is refused, naming the versions served.
    pub fn detect<'a>(
        plugin: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<ContractVersion> {
        let used: Vec<&str> = names
            .into_iter()
            .filter_map(|n| n.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/'))
            .collect();
        ContractVersion::ALL
            .into_iter()
            .find(|version| used.iter().all(|u| version.interfaces().contains(u)))
            .ok_or_else(|| {
                let mut unknown: Vec<String> = used
                    .iter()
                    .filter(|u| {
                        !ContractVersion::ALL
                            .iter()
                            .any(|v| v.interfaces().contains(u))
                    })
                    .map(|u| format!("{CONTRACT_PACKAGE}/{u}"))
                    .collect();
                if unknown.is_empty() {
                    // Each interface exists, but not all in one version.
                    unknown = used
                        .iter()
                        .map(|u| format!("{CONTRACT_PACKAGE}/{u}"))
                        .collect();
                }
                unknown.sort();
                unknown.dedup();
                Error::UnsupportedContract {
                    plugin: plugin.to_string(),
                    interfaces: unknown,
                    supported: ContractVersion::supported_list(),
                }
            })
    }
}

impl fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ContractVersion> for String {
    fn from(v: ContractVersion) -> String {
        v.as_str().to_string()
    }
}

impl TryFrom<String> for ContractVersion {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for ContractVersion {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ContractVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown contract version `{s}`; this host serves {}",
                    ContractVersion::supported_list()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(names: &[&str]) -> Result<ContractVersion> {
        ContractVersion::detect("p", names.iter().copied())
    }

    #[test]
    fn the_version_comes_from_the_interfaces_used() {
        let v1 = [
            "wasi:cli/environment@0.2.6",
            "warden:plugin/types@0.1.0",
            "warden:plugin/logging@0.1.0",
            "warden:plugin/plugin@0.1.0",
            "warden:plugin/processing@0.1.0",
        ];
        assert_eq!(detect(&v1).unwrap(), ContractVersion::V0_1_0);
        let v2 = [
            "warden:plugin/types@0.1.0",
            "warden:plugin/types@0.2.0",
            "warden:plugin/plugin@0.1.0",
            "warden:plugin/processing@0.2.0",
        ];
        assert_eq!(detect(&v2).unwrap(), ContractVersion::V0_2_0);
        // Nothing 0.2.0 changed: the same as 0.1.0.
        let handler = [
            "warden:plugin/plugin@0.1.0",
            "warden:plugin/event-handling@0.1.0",
        ];
        assert_eq!(detect(&handler).unwrap(), ContractVersion::V0_1_0);
    }

    #[test]
    fn unknown_versions_are_refused_naming_the_supported_ones() {
        let err = detect(&[
            "warden:plugin/plugin@0.1.0",
            "warden:plugin/processing@0.9.0",
        ])
        .unwrap_err();
        match &err {
            Error::UnsupportedContract {
                plugin,
                interfaces,
                supported,
            } => {
                assert_eq!(plugin, "p");
                assert_eq!(interfaces, &["warden:plugin/processing@0.9.0"]);
                assert_eq!(supported, "0.1.0, 0.2.0");
            }
            other => panic!("expected UnsupportedContract, got {other:?}"),
        }
        // Both processing versions at once fit no single version.
        let err = detect(&[
            "warden:plugin/processing@0.1.0",
            "warden:plugin/processing@0.2.0",
        ])
        .unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedContract { interfaces, .. } if interfaces.len() == 2),
            "{err:?}"
        );
    }

    #[test]
    fn interfaces_resolve_per_version() {
        assert_eq!(
            ContractVersion::V0_2_0.qualified("processing").as_deref(),
            Some("warden:plugin/processing@0.2.0")
        );
        assert_eq!(
            ContractVersion::V0_2_0.qualified("plugin").as_deref(),
            Some("warden:plugin/plugin@0.1.0")
        );
        assert_eq!(
            ContractVersion::V0_1_0.interface_version("processing"),
            Some("0.1.0")
        );
        assert_eq!(
            "0.2.0".parse::<ContractVersion>(),
            Ok(ContractVersion::V0_2_0)
        );
        assert!(
            "0.3.0"
                .parse::<ContractVersion>()
                .unwrap_err()
                .contains("0.1.0, 0.2.0")
        );
    }
}
