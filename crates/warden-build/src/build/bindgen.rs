//! Guest bindings generated in-process with wit-bindgen's generators, for
//! the languages whose toolchains do not generate their own (Go and C).

use std::path::{Path, PathBuf};

use wit_bindgen_core::{Files, WorldGenerator};
use wit_parser::{Resolve, WorldId};

use super::componentize::WitWorld;
use crate::error::{Error, Result};

/// Parses the WIT directory and finds the world in it.
pub(crate) fn resolve_world(wit: &WitWorld<'_>, plugin_dir: &Path) -> Result<(Resolve, WorldId)> {
    let fail = |e: anyhow::Error| Error::Build {
        dir: plugin_dir.to_path_buf(),
        message: format!(
            "reading the WIT in {} (world `{}`): {e:#}",
            wit.dir.display(),
            wit.world
        ),
    };
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(wit.dir).map_err(fail)?;
    let world = resolve
        .select_world(&[package], Some(wit.world))
        .map_err(fail)?;
    Ok((resolve, world))
}

/// Runs `generator` for the world and writes its files under `out`, except
/// those named in `skip`, returning their paths.
pub(crate) fn generate(
    mut generator: Box<dyn WorldGenerator>,
    wit: &WitWorld<'_>,
    out: &Path,
    skip: &[&str],
    plugin_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let (mut resolve, world) = resolve_world(wit, plugin_dir)?;
    let mut files = Files::default();
    generator
        .generate(&mut resolve, world, &mut files)
        .map_err(|e| Error::Build {
            dir: plugin_dir.to_path_buf(),
            message: format!("generating bindings for world `{}`: {e:#}", wit.world),
        })?;
    let mut written = Vec::new();
    for (name, bytes) in files.iter().filter(|(name, _)| !skip.contains(name)) {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        warden::write_atomically(&path, bytes).map_err(|e| Error::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
