//! `warden compose`: static composition of components into one plugin.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use warden_build::compose::{Part, compose};

use crate::args::ComposeArgs;

pub fn run(args: &ComposeArgs) -> Result<ExitCode> {
    let manifest = args
        .socket
        .is_dir()
        .then(|| warden::Manifest::from_file(&args.socket.join(warden::MANIFEST_FILE)))
        .transpose()?;
    let socket_file: PathBuf = match &manifest {
        Some(m) => m.component_path(&args.socket),
        None => args.socket.clone(),
    };
    let socket = read(&socket_file)?;
    let plugs = args
        .plugs
        .iter()
        .map(|p| Ok((p.display().to_string(), read(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let parts: Vec<Part<'_>> = plugs
        .iter()
        .map(|(name, bytes)| Part { name, bytes })
        .collect();
    let socket_name = socket_file.display().to_string();
    let composed = compose(
        Part {
            name: &socket_name,
            bytes: &socket,
        },
        &parts,
    )?;
    let written = match &manifest {
        Some(m) => {
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("creating {}", args.out.display()))?;
            let target = args.out.join(warden::MANIFEST_FILE);
            std::fs::copy(args.socket.join(warden::MANIFEST_FILE), &target)
                .with_context(|| format!("writing {}", target.display()))?;
            m.component_path(&args.out)
        }
        None => args.out.clone(),
    };
    std::fs::write(&written, &composed)
        .with_context(|| format!("writing {}", written.display()))?;
    eprintln!(
        "composed {} with {} plug(s) -> {} ({} KiB)",
        socket_file.display(),
        parts.len(),
        written.display(),
        composed.len().div_ceil(1024)
    );
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
