//! `warden keygen`, `sign` and `verify`: ed25519 signatures over a built
//! plugin's component and manifest, which a host that requires signatures
//! checks before it compiles anything (`[signatures]` in warden.toml).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};

use crate::args::{KeygenArgs, SignArgs, VerifyArgs};
use warden::{Manifest, PluginFiles, PublicKey, SIGNATURE_FILE, SigningKey};

pub fn keygen(args: &KeygenArgs) -> Result<ExitCode> {
    let key = SigningKey::generate().map_err(|e| anyhow!(e))?;
    write_private(&args.out, &key.to_text())?;
    println!("{}", key.public_key());
    eprintln!(
        "secret key in {}; trust the public key above with `[signatures] trusted-keys`",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn sign(args: &SignArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading the key {}", args.key.display()))?;
    let key = SigningKey::from_text(&text)
        .map_err(|e| anyhow!("{}: {e}; make one with `warden keygen`", args.key.display()))?;
    let plugin = PluginFiles::read(&args.path)?;
    let signature = key.sign(&plugin.component, plugin.manifest_text.as_bytes());
    let file = Manifest::file_for(&args.path).with_file_name(SIGNATURE_FILE);
    warden::write_atomically(&file, signature.as_bytes())
        .with_context(|| format!("writing {}", file.display()))?;
    println!(
        "signed {} {} with {}: {}",
        plugin.name,
        plugin.version,
        key.public_key(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn verify(args: &VerifyArgs) -> Result<ExitCode> {
    let trusted = args
        .keys
        .iter()
        .map(|k| k.parse::<PublicKey>().map_err(|e| anyhow!("--key: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let plugin = PluginFiles::read(&args.path)?;
    let name = &plugin.name;
    match warden::verify_signature(
        plugin.signature.as_deref(),
        &plugin.component,
        plugin.manifest_text.as_bytes(),
        &trusted,
    ) {
        Ok(key) => {
            println!("{name} {}: signed by {key}", plugin.version);
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            eprintln!("error: plugin `{name}`: {problem}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Creates `path` with `text`, readable by its owner only; never
/// replaces an existing file.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        format!(
            "creating {} (an existing key is never overwritten)",
            path.display()
        )
    })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
