//! The set of loaded plugins, by name, and discovery of plugins in a
//! directory. Lookups take a read lock only for the moment of the lookup, so
//! calls to any plugins run in parallel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::locks::{read, write};
use crate::manifest::MANIFEST_FILE;
use crate::plugin::Plugin;

#[derive(Default)]
pub(crate) struct Registry {
    plugins: RwLock<BTreeMap<String, Plugin>>,
}

impl Registry {
    pub(crate) fn insert(&self, plugin: Plugin) -> Result<()> {
        let mut plugins = write(&self.plugins);
        check_free(&plugins, plugin.name())?;
        plugins.insert(plugin.name().to_string(), plugin);
        Ok(())
    }

    /// Fails when a plugin called `name` is loaded.
    pub(crate) fn ensure_free(&self, name: &str) -> Result<()> {
        check_free(&read(&self.plugins), name)
    }

    pub(crate) fn get(&self, name: &str) -> Result<Plugin> {
        let plugins = read(&self.plugins);
        plugins.get(name).cloned().ok_or_else(|| Error::NotFound {
            name: name.to_string(),
            loaded: plugins.keys().cloned().collect(),
        })
    }

    pub(crate) fn list(&self) -> Vec<Plugin> {
        read(&self.plugins).values().cloned().collect()
    }

    /// Puts `next` in the place of `current`, in one step; fails if the
    /// name no longer holds `current`.
    pub(crate) fn replace(&self, current: &Plugin, next: Plugin) -> Result<()> {
        let mut plugins = write(&self.plugins);
        match plugins.get_mut(next.name()) {
            Some(slot) if slot.same_build(current) => {
                *slot = next;
                Ok(())
            }
            Some(_) => Err(Error::Host(format!(
                "plugin `{}` changed while it was being reloaded; try again",
                next.name()
            ))),
            None => Err(Error::NotFound {
                name: next.name().to_string(),
                loaded: plugins.keys().cloned().collect(),
            }),
        }
    }

    pub(crate) fn remove(&self, name: &str) -> Result<Plugin> {
        let removed = write(&self.plugins).remove(name);
        removed.ok_or_else(|| Error::NotFound {
            name: name.to_string(),
            loaded: self.names(),
        })
    }

    fn names(&self) -> Vec<String> {
        read(&self.plugins).keys().cloned().collect()
    }
}

fn check_free(plugins: &BTreeMap<String, Plugin>, name: &str) -> Result<()> {
    if plugins.contains_key(name) {
        return Err(Error::Host(format!(
            "a plugin named `{name}` is already loaded; unload it first"
        )));
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
