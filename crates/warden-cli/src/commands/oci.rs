//! `warden push` and `warden pull`: plugins as OCI artifacts, and the
//! `oci://` references `deploy` and `warden.toml` accept, pulled into the
//! data directory's store (one directory per artifact digest).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use warden_oci::{Credentials, Pulled, Registry, RegistryOptions};

use crate::args::{Global, PullArgs, PushArgs, RegistryArgs};

/// The data directory's store of pulled plugins.
pub fn store(data_dir: &Path) -> PathBuf {
    data_dir.join("oci")
}

/// The registry client the command line's options describe.
pub fn registry(args: &RegistryArgs) -> Result<Registry> {
    let credentials = match (
        &args.registry,
        &args.registry_username,
        &args.registry_password,
    ) {
        (Some(registry), Some(username), Some(password)) => Some(Credentials {
            registry: registry.clone(),
            username: username.clone(),
            password: password.clone(),
        }),
        (_, None, None) => None,
        _ => bail!(
            "give the registry, its user name and password together (`--registry`, \
             `--registry-username` and `--registry-password`, or WARDEN_REGISTRY, \
             WARDEN_REGISTRY_USERNAME and WARDEN_REGISTRY_PASSWORD), or no user name and \
             password for anonymous access"
        ),
    };
    Ok(Registry::new(RegistryOptions {
        credentials,
        insecure: args.insecure_registries.clone(),
        ..RegistryOptions::default()
    }))
}

/// Pulls `reference` into the store of the data directory `data_dir`.
pub async fn pull_into_store(global: &Global, data_dir: &Path, reference: &str) -> Result<Pulled> {
    let pulled = registry(&global.registry)?
        .pull(reference, &store(data_dir))
        .await?;
    tracing::info!(
        reference,
        digest = %pulled.digest,
        dir = %pulled.dir.display(),
        fetched = pulled.fetched,
        "pulled"
    );
    Ok(pulled)
}

/// Runs `f` on a runtime of its own (the commands are synchronous).
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

pub fn push(global: &Global, args: &PushArgs) -> Result<ExitCode> {
    let pushed = block_on(async {
        Ok(registry(&global.registry)?
            .push(&args.path, &args.reference)
            .await?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&pushed)?);
    } else {
        let signed = if pushed.signed { "signed" } else { "unsigned" };
        println!(
            "pushed {} {} ({signed}) to {}@{}",
            pushed.name,
            pushed.version,
            pushed
                .reference
                .split_once('@')
                .map_or(pushed.reference.as_str(), |(r, _)| r),
            pushed.digest
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pull(global: &Global, args: &PullArgs) -> Result<ExitCode> {
    let pulled = block_on(pull_into_store(global, &global.data_dir, &args.reference))?;
    if let Some(out) = &args.out {
        let files = warden::PluginFiles::read(&pulled.dir)?;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        files.write(out)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&pulled)?);
    } else {
        let signed = if pulled.signed { "signed" } else { "unsigned" };
        println!(
            "pulled {} {} ({signed}, {}) into {}",
            pulled.name,
            pulled.version,
            pulled.digest,
            args.out.as_ref().unwrap_or(&pulled.dir).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
