//! The set of loaded plugins, by name, and discovery of plugins in a
//! directory. Lookups take a read lock only for the moment of the lookup, so
//! calls to any plugins run in parallel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::manifest::MANIFEST_FILE;
use crate::plugin::Plugin;

#[derive(Default)]
pub(crate) struct Registry {
    plugins: RwLock<BTreeMap<String, Plugin>>,
}

impl Registry {
    pub(crate) fn insert(&self, plugin: Plugin) -> Result<()> {
        let mut plugins = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        if plugins.contains_key(plugin.name()) {
            return Err(Error::Host(format!(
                "a plugin named `{}` is already loaded; unload it first",
                plugin.name()
            )));
        }
        plugins.insert(plugin.name().to_string(), plugin);
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Result<Plugin> {
        let plugins = self.plugins.read().unwrap_or_else(|p| p.into_inner());
        plugins.get(name).cloned().ok_or_else(|| Error::NotFound {
            name: name.to_string(),
            loaded: plugins.keys().cloned().collect(),
        })
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.plugins.read().unwrap_or_else(|p| p.into_inner()).contains_key(name)
    }

    pub(crate) fn list(&self) -> Vec<Plugin> {
        self.plugins.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    pub(crate) fn remove(&self, name: &str) -> Result<Plugin> {
        let removed = self.plugins.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        removed.ok_or_else(|| Error::NotFound { name: name.to_string(), loaded: self.names() })
    }

    fn names(&self) -> Vec<String> {
        self.plugins.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }
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
