//! `warden deploy`, `canary`, `promote`, `rollback` and `reload`: changes
//! to the deployments kept in the data directory. Each loads the kept
//! deployments, makes the change (loading and initializing whatever it
//! brings in, so a broken build is refused here), and stores the result.
//! `warden release-name` forgets which directories a name belongs to.

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{CanaryArgs, DeployArgs, Global, NameArgs};
use crate::commands::oci;
use crate::host;

pub fn deploy(global: &Global, args: &DeployArgs) -> Result<ExitCode> {
    let path = match args
        .path
        .to_str()
        .filter(|p| warden_oci::is_oci_reference(p))
    {
        Some(reference) => {
            oci::block_on(oci::pull_into_store(global, &global.data_dir, reference))?.dir
        }
        None => args.path.clone(),
    };
    if let Some(nats) = &args.cluster {
        let grants = match (&args.grants[..], args.clear_grants) {
            (_, true) => warden_cluster::GrantsChange::Clear,
            ([], false) => warden_cluster::GrantsChange::Keep,
            (specs, false) => warden_cluster::GrantsChange::Set(specs.to_vec()),
        };
        return deploy_to_cluster(nats, &path, grants, args.json);
    }
    let host = host::deployed(global)?;
    let plugin = host.deploy_blocking(&path)?;
    let status = host.deployment(plugin.name())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (name, version) = (plugin.name(), &plugin.info().version);
    if status.stable == *version {
        println!("deployed {name} {version}: it serves");
    } else {
        println!(
            "deployed {name} {version} beside stable {}; send it calls with `warden canary {name} {version} --percent 10`",
            status.stable
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `deploy --cluster`: the version joins the cluster's desired state, and
/// every node loads it.
fn deploy_to_cluster(
    nats: &str,
    path: &std::path::Path,
    grants: warden_cluster::GrantsChange,
    json: bool,
) -> Result<ExitCode> {
    let files = warden::PluginFiles::read(path)?;
    let record = oci::block_on(async {
        Ok(warden_cluster::deploy_at(nats, &files, grants, "warden deploy").await?)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else if record.stable == files.version.to_string() {
        println!(
            "deployed {} {} to the cluster: every node serves it",
            files.name, files.version
        );
    } else {
        println!(
            "deployed {} {} to the cluster beside stable {}; every node loads it",
            files.name, files.version, record.stable
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn canary(global: &Global, args: &CanaryArgs) -> Result<ExitCode> {
    let host = host::deployed(global)?;
    host.canary(&args.name, &args.version, args.percent)?;
    println!(
        "{} {} gets {}% of calls; `warden promote {}` or `warden rollback {}` ends the canary",
        args.name, args.version, args.percent, args.name, args.name
    );
    Ok(ExitCode::SUCCESS)
}

pub fn promote(global: &Global, args: &NameArgs) -> Result<ExitCode> {
    let host = host::deployed(global)?;
    let version = host.promote_blocking(&args.name)?;
    println!("{} {version} is now stable", args.name);
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(global: &Global, args: &NameArgs) -> Result<ExitCode> {
    let host = host::deployed(global)?;
    let version = host.rollback_blocking(&args.name)?;
    let stable = host.get(&args.name)?.info().version.clone();
    println!(
        "rolled back {} {version}; every call goes to {stable}",
        args.name
    );
    Ok(ExitCode::SUCCESS)
}

pub fn reload(global: &Global, args: &NameArgs) -> Result<ExitCode> {
    let host = host::deployed(global)?;
    match host.reload_blocking(&args.name)? {
        warden::Reloaded::Unchanged => println!("{}: files unchanged", args.name),
        warden::Reloaded::Replaced { from, to, .. } => {
            println!("reloaded {}: {from} -> {to}", args.name)
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn release_name(global: &Global, args: &NameArgs) -> Result<ExitCode> {
    let homes = host::host(global)?.release_name(&args.name)?;
    if homes.is_empty() {
        println!("`{}` belonged to no directory", args.name);
    }
    for home in homes {
        println!("`{}` no longer belongs to {}", args.name, home.display());
    }
    Ok(ExitCode::SUCCESS)
}
