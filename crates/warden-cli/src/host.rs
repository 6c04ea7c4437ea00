//! Creating the host for a command and finding plugins by name or path.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use warden::{GrantPolicy, Grants, Plugin, Warden, WardenBuilder};

use crate::args::Global;

/// A host with the command line's grants, data directory and cache
/// settings. An explicitly chosen cache directory that is unsafe is an
/// error; the default one only costs the cache (with a warning), so that
/// every command still works.
pub fn host(global: &Global) -> Result<Warden> {
    with_cache(by_hand(global)?, global)
}

/// `builder`'s host, with the compile cache the command line chose.
pub fn with_cache(builder: WardenBuilder, global: &Global) -> Result<Warden> {
    if global.no_cache {
        return Ok(builder.build()?);
    }
    if let Some(dir) = &global.cache_dir {
        return Ok(builder.cache_dir(dir).build()?);
    }
    match warden::default_cache_dir().map(|dir| builder.clone().cache_dir(dir).build()) {
        Some(Ok(host)) => Ok(host),
        Some(Err(e)) => {
            tracing::warn!("running without the compile cache: {e}");
            Ok(builder.build()?)
        }
        None => Ok(builder.build()?),
    }
}

fn builder(global: &Global) -> Result<WardenBuilder> {
    let mut grants = Grants::new();
    for spec in &global.grants {
        grants = grants.grant(spec)?;
    }
    for spec in &global.denies {
        grants = grants.deny(spec)?;
    }
    if global.trim {
        grants = grants.policy(GrantPolicy::Trim);
    }
    let mut builder = Warden::builder();
    for (plugin, key, value) in &global.config {
        builder = builder.config(plugin.as_deref(), key, value);
    }
    if let Some(secrets) = &global.secrets {
        builder = builder.secrets_file(secrets);
    }
    Ok(builder
        .grants(grants)
        .fuel(global.fuel)
        .data_dir(&global.data_dir))
}

/// `builder` for a command run by hand: the directories it names are the
/// operator's choice, so loading one neither checks nor changes the name
/// claims (see [`WardenBuilder::trust_loaded_dirs`]); `warden serve` keeps
/// them.
fn by_hand(global: &Global) -> Result<WardenBuilder> {
    Ok(builder(global)?.trust_loaded_dirs(true))
}

/// A host holding the deployments kept in the data directory, each loaded
/// again; a deployment that no longer loads is reported and skipped.
pub fn deployed(global: &Global) -> Result<Warden> {
    let host = host(global)?;
    for (plugin, outcome) in host.restore_blocking()? {
        if let Err(e) = outcome {
            eprintln!("warning: deployment of `{plugin}`: {e}");
        }
    }
    Ok(host)
}

/// Loads `plugin`: an existing path, or a name looked up in `dir`. The
/// plugins its links name are loaded from `dir` first, unless loaded
/// already.
pub fn load(host: &Warden, plugin: &str, dir: &Path) -> Result<Plugin> {
    let path = locate(plugin, dir)?;
    load_providers(host, &path, dir, &mut Vec::new())?;
    Ok(host.load_blocking(&path)?)
}

/// Loads, from `dir`, the providers that the plugin at `path` links to and
/// that are not loaded, theirs first. `seen` ends link cycles.
fn load_providers(host: &Warden, path: &Path, dir: &Path, seen: &mut Vec<String>) -> Result<()> {
    let manifest_file = warden::Manifest::file_for(path);
    if !manifest_file.is_file() {
        return Ok(());
    }
    let manifest = warden::Manifest::from_file(&manifest_file)?;
    for (interface, link) in &manifest.permissions.links {
        let name = link.provider_name();
        if seen.iter().any(|s| s == name) || host.get(&link.plugin).is_ok() {
            continue;
        }
        seen.push(name.to_string());
        let provider = locate(name, dir).with_context(|| {
            format!(
                "plugin `{}` links `{interface}` to plugin `{name}`, which must be loaded too",
                manifest.name
            )
        })?;
        load_providers(host, &provider, dir, seen)?;
        host.load_blocking(&provider)?;
    }
    Ok(())
}

/// The path of `plugin`: an existing path, or a name looked up in `dir`.
fn locate(plugin: &str, dir: &Path) -> Result<PathBuf> {
    let as_path = Path::new(plugin);
    if as_path.exists() {
        return Ok(as_path.to_path_buf());
    }
    let by_dir = dir.join(plugin);
    if by_dir.join(warden::MANIFEST_FILE).is_file() {
        return Ok(by_dir);
    }
    let sources = warden::discover(dir).with_context(|| {
        format!("`{plugin}` is not a file, and there is no plugin directory {}; build plugins with `warden build`", dir.display())
    })?;
    for source in sources {
        let manifest = warden::Manifest::from_file(&source.join(warden::MANIFEST_FILE))?;
        if manifest.name == plugin {
            return Ok(source);
        }
    }
    anyhow::bail!(
        "no plugin named `{plugin}` in {}; `warden list --dir {}` shows what is there",
        dir.display(),
        dir.display()
    )
}

/// The core-module plugin `plugin` names: an existing path, or a name
/// looked up in `dir`, as [`load`] does for components.
pub fn core_module_path(plugin: &str, dir: &Path) -> Option<std::path::PathBuf> {
    let as_path = Path::new(plugin);
    let path = if as_path.exists() {
        as_path.to_path_buf()
    } else {
        dir.join(plugin)
    };
    is_core_module(&path).then_some(path)
}

/// Whether `path` is a core-module plugin: a core `.wasm` module, or a
/// directory whose `plugin.toml` names an `abi`.
pub fn is_core_module(path: &Path) -> bool {
    if path.is_dir() {
        return std::fs::read_to_string(path.join(warden::MANIFEST_FILE))
            .is_ok_and(|text| warden::module::ModuleManifest::is_module_manifest(&text));
    }
    let mut header = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok_and(|()| warden::module::is_core_module_bytes(&header))
}
