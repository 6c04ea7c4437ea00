//! Deployments: several versions of a plugin side by side, a canary that
//! sends a share of calls to a candidate version (sticky by routing key),
//! promotion and rollback (by hand or automatic), and the state and
//! history of all this kept in the host's embedded store so that a
//! restarted host serves what it served before.

pub(crate) mod deployment;
pub(crate) mod rollback;
pub(crate) mod routing;
pub(crate) mod state;

use std::path::PathBuf;

use semver::Version;

use crate::error::{Error, Result};
use crate::lifecycle::State;
use crate::metrics::VersionMetrics;
use deployment::Deployment;
use state::Saved;

pub use rollback::RollbackPolicy;
pub use state::{DeployAction, HistoryEntry};

/// Where one plugin's calls go, and how each of its versions is doing.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct DeploymentStatus {
    /// The plugin's name.
    pub plugin: String,
    /// The version unqualified calls go to (outside the canary's share).
    pub stable: Version,
    /// The canary, if one runs.
    pub canary: Option<CanaryStatus>,
    /// Every loaded version, oldest first.
    pub versions: Vec<VersionStatus>,
    /// Whether the deployment is kept in the store and restored at start-up
    /// (it was made through [`Warden::deploy`] and friends).
    pub persisted: bool,
}

/// A running canary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CanaryStatus {
    /// The candidate version.
    pub version: Version,
    /// Its share of unqualified calls, in percent.
    pub percent: f64,
}

/// One loaded version of a plugin.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct VersionStatus {
    /// The version.
    pub version: Version,
    /// What it serves.
    pub role: Role,
    /// Its lifecycle state.
    pub state: State,
    /// Where it was loaded from.
    pub source: Option<PathBuf>,
    /// Its metrics.
    pub metrics: VersionMetrics,
}

/// What a loaded version serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Unqualified calls outside a canary's share.
    Stable,
    /// A canary's share of unqualified calls.
    Candidate,
    /// Only calls that name its version (`name@1.2.0`, `name@^1`).
    Pinned,
}

impl Deployment {
    pub(crate) fn status(&self, plugin: &str) -> DeploymentStatus {
        let role = |v: &Version| match &self.canary {
            _ if *v == self.stable => Role::Stable,
            Some(c) if c.version == *v => Role::Candidate,
            _ => Role::Pinned,
        };
        DeploymentStatus {
            plugin: plugin.to_string(),
            stable: self.stable.clone(),
            canary: self.canary.as_ref().map(|c| CanaryStatus {
                version: c.version.clone(),
                percent: f64::from(c.basis_points) / 100.0,
            }),
            versions: self
                .versions
                .iter()
                .map(|(v, p)| VersionStatus {
                    version: v.clone(),
                    role: role(v),
                    state: p.state(),
                    source: p.info().source.clone(),
                    metrics: p.metrics(),
                })
                .collect(),
            persisted: self.managed,
        }
    }

    pub(crate) fn saved(&self, plugin: &str) -> Saved {
        Saved {
            plugin: plugin.to_string(),
            stable: self.stable.clone(),
            canary: self
                .canary
                .as_ref()
                .map(|c| (c.version.clone(), c.basis_points)),
            // Versions that failed to restore stay stored: a file missing
            // for a moment must not drop a deployed version for good.
            versions: self
                .versions
                .iter()
                .filter_map(|(v, p)| Some((v.clone(), p.info().source.clone()?)))
                .chain(self.unrestored.iter().cloned())
                .collect(),
        }
    }
}

/// The version `text` names, or an error that says how to write one.
pub(crate) fn parse_version(plugin: &str, text: &str) -> Result<Version> {
    Version::parse(text.trim()).map_err(|e| {
        deploy_error(
            plugin,
            format!("`{text}` is not a version ({e}); write it as 1.2.0"),
        )
    })
}

/// The loaded versions of a deployment, for an error message.
pub(crate) fn loaded_versions(d: &Deployment) -> String {
    d.versions
        .keys()
        .map(Version::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error for a canary operation when no canary runs.
pub(crate) fn no_canary(plugin: &str) -> Error {
    deploy_error(
        plugin,
        "no canary runs; start one with `canary <name> <version> --percent N`".to_string(),
    )
}

/// An error of a deployment operation on `plugin`.
pub(crate) fn deploy_error(plugin: &str, message: String) -> Error {
    Error::Deploy {
        plugin: plugin.to_string(),
        message,
    }
}
