//! The loaded plugins: one [`Deployment`] per name (every loaded version,
//! the stable one and the canary), and discovery of plugins in a
//! directory. Lookups take a read lock only for the moment of the lookup,
//! so calls to any plugins run in parallel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use semver::Version;
use wasmtime::component::Component;

use crate::capabilities::links::{LinkCall, Provider, Providers, Served};
use crate::deploy::deployment::{Deployment, Routed};
use crate::deploy::routing::parse_target;
use crate::error::{Error, Result};
use crate::locks::{read, write};
use crate::manifest::MANIFEST_FILE;
use crate::plugin::Plugin;

#[derive(Default)]
pub(crate) struct Registry {
    deployments: RwLock<BTreeMap<String, Deployment>>,
}

/// What [`Registry::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The first version of its name: it serves.
    Stable,
    /// Another version beside the loaded ones; it serves calls that name
    /// it, or a canary share once one is set.
    Beside,
}

impl Registry {
    pub(crate) fn insert(&self, plugin: Plugin) -> Result<Inserted> {
        let mut deployments = write(&self.deployments);
        check_free(&deployments, plugin.name(), &plugin.info().version)?;
        match deployments.get_mut(plugin.name()) {
            Some(d) => {
                d.versions.insert(plugin.info().version.clone(), plugin);
                Ok(Inserted::Beside)
            }
            None => {
                deployments.insert(plugin.name().to_string(), Deployment::new(plugin));
                Ok(Inserted::Stable)
            }
        }
    }

    /// Fails when version `version` of plugin `name` is loaded.
    pub(crate) fn ensure_free(&self, name: &str, version: &Version) -> Result<()> {
        check_free(&read(&self.deployments), name, version)
    }

    /// The build `target` names: `name` is the stable version, `name@1.2.0`
    /// that version, `name@^1.2` the highest loaded match.
    pub(crate) fn get(&self, target: &str) -> Result<Plugin> {
        let (name, spec) = parse_target(target)?;
        let deployments = read(&self.deployments);
        let d = deployments
            .get(name)
            .ok_or_else(|| not_found(&deployments, name))?;
        match spec {
            None => Ok(d.stable().clone()),
            Some(spec) => d.resolve(&spec).cloned().ok_or_else(|| Error::NotFound {
                name: target.to_string(),
                loaded: d.versions.keys().map(|v| format!("{name}@{v}")).collect(),
            }),
        }
    }

    /// The build a call to `target` goes to; an unqualified name follows
    /// the canary split by `key`.
    pub(crate) fn route(&self, target: &str, key: Option<&str>) -> Result<Routed> {
        if target.contains('@') {
            return self.get(target).map(|plugin| Routed {
                plugin,
                canary: None,
            });
        }
        let deployments = read(&self.deployments);
        deployments
            .get(target)
            .map(|d| d.route(key))
            .ok_or_else(|| not_found(&deployments, target))
    }

    /// Every loaded build, by name then version.
    pub(crate) fn list(&self) -> Vec<Plugin> {
        read(&self.deployments)
            .values()
            .flat_map(|d| d.versions.values().cloned())
            .collect()
    }

    /// The stable build of every plugin, by name.
    pub(crate) fn stables(&self) -> Vec<Plugin> {
        read(&self.deployments)
            .values()
            .map(|d| d.stable().clone())
            .collect()
    }

    /// Runs `f` on plugin `name`'s deployment, under the write lock: what
    /// `f` changes, every later lookup sees at once.
    pub(crate) fn update<R>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Deployment) -> Result<R>,
    ) -> Result<R> {
        let mut deployments = write(&self.deployments);
        match deployments.get_mut(name) {
            Some(d) => f(d),
            None => Err(not_found(&deployments, name)),
        }
    }

    /// Reads plugin `name`'s deployment.
    pub(crate) fn inspect<R>(&self, name: &str, f: impl FnOnce(&Deployment) -> R) -> Result<R> {
        let deployments = read(&self.deployments);
        match deployments.get(name) {
            Some(d) => Ok(f(d)),
            None => Err(not_found(&deployments, name)),
        }
    }

    /// The names of the loaded plugins.
    pub(crate) fn names(&self) -> Vec<String> {
        read(&self.deployments).keys().cloned().collect()
    }

    /// Puts `next` in the place of build `current`, in one step (under a
    /// new version key if the version changed; the stable or candidate
    /// role goes with it); fails if `current` is no longer loaded or the
    /// new version is already loaded beside it.
    pub(crate) fn replace(&self, current: &Plugin, next: Plugin) -> Result<()> {
        let name = next.name().to_string();
        self.update(&name, |d| {
            let old = current.info().version.clone();
            if !d.versions.get(&old).is_some_and(|p| p.same_build(current)) {
                return Err(Error::Host(format!(
                    "plugin `{name}` changed while it was being reloaded; try again"
                )));
            }
            let new = next.info().version.clone();
            if new != old && d.versions.contains_key(&new) {
                return Err(Error::Deploy {
                    plugin: name.clone(),
                    message: format!(
                        "the new build is version {new}, which is already loaded beside {old}; \
                         give it another version, or unload `{name}@{new}` first"
                    ),
                });
            }
            d.versions.remove(&old);
            d.versions.insert(new.clone(), next);
            if d.stable == old {
                d.stable = new.clone();
            }
            if let Some(canary) = d.canary.as_mut().filter(|c| c.version == old) {
                canary.version = new;
            }
            Ok(())
        })
    }

    /// Removes build `plugin` from its deployment, in one step; returns
    /// whether it was the last version (the deployment is gone with it).
    /// The stable version goes only as the last one: promote another first.
    pub(crate) fn remove_version(&self, plugin: &Plugin) -> Result<bool> {
        let name = plugin.name();
        let version = &plugin.info().version;
        let mut deployments = write(&self.deployments);
        let d = match deployments.get_mut(name) {
            Some(d)
                if d.versions
                    .get(version)
                    .is_some_and(|p| p.same_build(plugin)) =>
            {
                d
            }
            _ => return Err(not_found(&deployments, &format!("{name}@{version}"))),
        };
        if d.versions.len() == 1 {
            deployments.remove(name);
            return Ok(true);
        }
        if d.stable == *version {
            return Err(Error::Deploy {
                plugin: name.to_string(),
                message: format!(
                    "{version} is the stable version; promote another version first, or \
                     unload `{name}` altogether"
                ),
            });
        }
        if d.canary.as_ref().is_some_and(|c| c.version == *version) {
            d.canary = None;
        }
        d.versions.remove(version);
        Ok(false)
    }

    /// Removes every version of plugin `name`.
    pub(crate) fn remove(&self, name: &str) -> Result<Vec<Plugin>> {
        let mut deployments = write(&self.deployments);
        match deployments.remove(name) {
            Some(d) => Ok(d.versions.into_values().collect()),
            None => Err(not_found(&deployments, name)),
        }
    }
}

fn not_found(deployments: &BTreeMap<String, Deployment>, name: &str) -> Error {
    Error::NotFound {
        name: name.to_string(),
        loaded: deployments.keys().cloned().collect(),
    }
}

fn check_free(
    deployments: &BTreeMap<String, Deployment>,
    name: &str,
    version: &Version,
) -> Result<()> {
    if deployments
        .get(name)
        .is_some_and(|d| d.versions.contains_key(version))
    {
        return Err(Error::Deploy {
            plugin: name.to_string(),
            message: format!(
                "version {version} is already loaded; unload it first, or give the new build \
                 another version to load it beside"
            ),
        });
    }
    Ok(())
}

/// The plugins in `dir`: every subdirectory holding a `plugin.toml`, and
/// `dir` itself if it holds one. Sorted, so loading order is stable.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>> {
    if dir.join(MANIFEST_FILE).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.join(MANIFEST_FILE).is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Links find their providers among the loaded plugins.
impl Providers for Registry {
    fn find(&self, target: &str) -> Result<Box<dyn Provider>> {
        Ok(Box::new(self.get(target)?))
    }
}

impl Provider for Plugin {
    fn name(&self) -> &str {
        Plugin::name(self)
    }

    fn describe(&self) -> (Version, String) {
        (self.info().version.clone(), self.info().world.to_string())
    }

    fn build_id(&self) -> u64 {
        Plugin::build_id(self)
    }

    fn component(&self) -> &Component {
        Plugin::component(self)
    }

    fn serve<'a>(&'a self, call: LinkCall<'a>) -> Served<'a> {
        Box::pin(self.serve_link(call))
    }
}
