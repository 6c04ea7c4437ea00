//! One plugin's deployment: every loaded version of it, which one is
//! stable, and the canary (a candidate version and its share of calls).

use std::collections::BTreeMap;
use std::sync::Arc;

use semver::Version;

use super::rollback::{CanaryWatch, Side};
use super::routing::{VersionSpec, bucket, next_unkeyed_bucket};
use crate::plugin::Plugin;

pub(crate) struct Deployment {
    pub(crate) versions: BTreeMap<Version, Plugin>,
    pub(crate) stable: Version,
    pub(crate) canary: Option<Canary>,
    /// Made or changed through the deploy API, so persisted and restored.
    pub(crate) managed: bool,
    /// Stored versions that failed to load at restore (kept in the store).
    pub(crate) unrestored: Vec<(Version, std::path::PathBuf)>,
}

#[derive(Clone)]
pub(crate) struct Canary {
    pub(crate) version: Version,
    /// The candidate's share of unqualified calls, in basis points.
    pub(crate) basis_points: u32,
    pub(crate) watch: Arc<CanaryWatch>,
}

/// The build a call goes to, and its side of a running canary.
pub(crate) struct Routed {
    pub(crate) plugin: Plugin,
    pub(crate) canary: Option<(Arc<CanaryWatch>, Side)>,
}

impl Deployment {
    pub(crate) fn new(plugin: Plugin) -> Self {
        let stable = plugin.info().version.clone();
        Deployment {
            versions: BTreeMap::from([(stable.clone(), plugin)]),
            stable,
            canary: None,
            managed: false,
            unrestored: Vec::new(),
        }
    }

    pub(crate) fn stable(&self) -> &Plugin {
        // The stable version is always among the versions: every change of
        // either keeps them in step (see `Registry`).
        &self.versions[&self.stable]
    }

    /// The version `spec` names (the highest match of a range).
    pub(crate) fn resolve(&self, spec: &VersionSpec) -> Option<&Plugin> {
        spec.pick(self.versions.keys())
            .and_then(|v| self.versions.get(v))
    }

    /// The build an unqualified call goes to: the candidate for keys whose
    /// bucket is under its share, the stable version otherwise.
    pub(crate) fn route(&self, key: Option<&str>) -> Routed {
        let Some(canary) = &self.canary else {
            return Routed {
                plugin: self.stable().clone(),
                canary: None,
            };
        };
        let bucket = key.map_or_else(next_unkeyed_bucket, bucket);
        let (side, version) = match bucket < canary.basis_points {
            true => (Side::Candidate, &canary.version),
            false => (Side::Stable, &self.stable),
        };
        Routed {
            plugin: self.versions[version].clone(),
            canary: Some((canary.watch.clone(), side)),
        }
    }
}
