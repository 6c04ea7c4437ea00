//! `warden up` and `warden serve`: the plugins of `warden.toml` behind
//! the HTTP server. `up` first builds what is stale (and with `--watch`
//! rebuilds on change, the new builds hot-reloaded); `serve` only serves
//! what is built.

use crate::telemetry::Telemetry;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use warden_server::Server;

use crate::config::{AppConfig, Planned};
use warden::{MANIFEST_FILE, Manifest, Warden};

use crate::args::{Global, ServeArgs, UpArgs};
use crate::commands::oci;
use crate::host;

/// How long source changes settle before a rebuild.
const SOURCE_DEBOUNCE: Duration = Duration::from_millis(300);
/// How long built files settle before a reload.
const BUILD_DEBOUNCE: Duration = Duration::from_millis(100);

pub fn up(global: &Global, args: &UpArgs, telemetry: &Telemetry) -> Result<ExitCode> {
    let config = AppConfig::load_or_default(&args.serve.file)?;
    let planned = config.planned()?;
    build_stale(&config, &planned)?;
    run(
        global,
        &config,
        &args.serve,
        &planned,
        args.watch,
        telemetry,
    )
}

pub fn serve(global: &Global, args: &ServeArgs, telemetry: &Telemetry) -> Result<ExitCode> {
    let config = AppConfig::load_or_default(&args.file)?;
    let planned = config.planned()?;
    run(global, &config, args, &planned, false, telemetry)
}

/// The directory each planned plugin is served from; an artifact is pulled
/// first. `None`: the pull failed (reported), the plugin is left out.
async fn served_dir(
    global: &Global,
    config: &AppConfig,
    planned: &Planned,
) -> Result<Option<PathBuf>> {
    match planned {
        Planned::Built(dir) => Ok(Some(dir.clone())),
        Planned::Source { source, .. } => {
            let manifest = Manifest::from_file(&source.join(MANIFEST_FILE))?;
            Ok(Some(config.out_dir().join(manifest.name)))
        }
        Planned::Pull(reference) => {
            match oci::pull_into_store(global, &config.data_dir(), reference).await {
                Ok(pulled) => Ok(Some(pulled.dir)),
                Err(e) => {
                    tracing::error!(reference, error = %format!("{e:#}"), "plugin not pulled");
                    Ok(None)
                }
            }
        }
    }
}

/// Builds the sources whose build is missing or stale, with a progress bar.
/// A source that fails to build is reported and left out (its last build,
/// if any, is served): one plugin's missing toolchain must not keep the
/// others from being served.
fn build_stale(config: &AppConfig, planned: &[Planned]) -> Result<usize> {
    let out = config.out_dir();
    let mut stale = Vec::new();
    for p in planned {
        if let Planned::Source { source, command } = p
            && warden_build::is_stale(source, &out)?
        {
            stale.push((source.clone(), command.clone()));
        }
    }
    Ok(crate::commands::build::build_with_progress(&stale, &out, true)?.len())
}

fn run(
    global: &Global,
    config: &AppConfig,
    args: &ServeArgs,
    planned: &[Planned],
    watch: bool,
    telemetry: &Telemetry,
) -> Result<ExitCode> {
    let mut settings = config.serve_settings()?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    raise_file_limit(settings.max_connections);
    let mut builder = config.builder()?;
    if let Some(hooks) = telemetry.hooks() {
        builder = builder.trace_hooks(Arc::new(hooks));
    }
    let host = Arc::new(host::with_cache(builder, global)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Before the banner, so that a SIGTERM right after it is a clean stop.
        let stop = warden_server::shutdown_signal();
        let mut dirs = Vec::new();
        for p in planned {
            dirs.extend(served_dir(global, config, p).await?);
        }
        let loaded = load(&host, &dirs).await;
        let cluster = match crate::commands::cluster::settings(config, args, &settings)? {
            Some(node) => Some(crate::commands::cluster::join(node, host.clone()).await?),
            None => None,
        };
        let remote = cluster
            .clone()
            .map(|c| Arc::new(c) as Arc<dyn warden_server::remote::Remote>);
        let server = Server::bind_in_cluster(host.clone(), settings.clone(), remote).await?;
        let addr = server.local_addr()?;
        print_banner(&host, config, addr, loaded, settings.admin_token.is_some());
        let _watchers = match watch {
            true => Some(start_watching(&host, config, planned)?),
            false => None,
        };
        if let Some(cluster) = &cluster {
            eprintln!(
                "  cluster: node `{}`; `warden cluster` lists the nodes",
                cluster.node()
            );
        }
        server.run(stop).await?;
        if let Some(cluster) = &cluster {
            cluster.leave().await;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Raises the soft limit of open files to the hard one: every connection
/// (up to `server.max-connections`), cached plugin, store and plugin socket
/// is a file descriptor. Warns when even that is short of the connections.
fn raise_file_limit(connections: usize) {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write `limit`.
        let soft = unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return;
            }
            if limit.rlim_cur < limit.rlim_max {
                limit.rlim_cur = limit.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            }
            limit.rlim_cur
        };
        let wanted = connections as u64 + 256;
        if soft < wanted {
            tracing::warn!(
                open_files = soft,
                wanted,
                "the open-file limit is low for `server.max-connections`; raise `ulimit -n`"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = connections;
}

/// Restores the deployments kept in the data directory, then loads each
/// plugin directory whose plugin is not deployed already. A plugin that
/// fails to load is reported and skipped. Returns how many are loaded.
async fn load(host: &Arc<Warden>, dirs: &[PathBuf]) -> usize {
    match host.restore().await {
        Ok(outcomes) => {
            for (plugin, outcome) in outcomes {
                if let Err(e) = outcome {
                    tracing::error!(plugin = %plugin, error = %e, "deployment not restored");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read the kept deployments"),
    }
    for dir in &warden::providers_first(dirs) {
        let deployed = Manifest::from_file(&dir.join(MANIFEST_FILE))
            .is_ok_and(|m| host.deployment(&m.name).is_ok());
        if deployed {
            continue;
        }
        if let Err(e) = host.load(dir).await {
            tracing::error!(dir = %dir.display(), error = %e, "plugin not loaded");
        }
    }
    host.deployments().len()
}

fn print_banner(
    host: &Warden,
    config: &AppConfig,
    addr: std::net::SocketAddr,
    loaded: usize,
    admin: bool,
) {
    let url = format!("http://{addr}");
    eprintln!("warden: serving {loaded} plugin(s) on {url}");
    let example = host
        .plugins()
        .into_iter()
        .find(|p| p.name() == "text-transform")
        .or_else(|| {
            host.plugins()
                .into_iter()
                .find(|p| p.info().world == warden::World::Processor)
        });
    if let Some(p) = example {
        let query = match p.name() {
            "text-transform" => "?op=upper",
            _ => "",
        };
        eprintln!(
            "  curl -X POST '{url}/v1/plugins/{}/process{query}' --data 'hello warden'",
            p.name()
        );
    }
    eprintln!("  curl {url}/v1/plugins");
    eprintln!("  curl {url}/metrics");
    eprintln!("  API description: {url}/v1/openapi.json");
    match (admin, &config.server.admin_token_file) {
        (true, Some(file)) => eprintln!(
            "  admin: curl -H \"Authorization: Bearer $(cat {})\" {url}/v1/admin/audit",
            config.path(file).display()
        ),
        (true, None) => eprintln!("  admin: {url}/v1/admin/… (bearer token from warden.toml)"),
        (false, _) => eprintln!("  admin API off (no `server.admin-token-file` in warden.toml)"),
    }
    eprintln!("  Ctrl-C stops (in-flight requests finish first)");
}

/// Hot reload of built plugins, and (for sources) rebuilds on change.
struct Watching {
    _built: Vec<warden::Watcher>,
    _sources: Option<notify::RecommendedWatcher>,
}

fn start_watching(host: &Arc<Warden>, config: &AppConfig, planned: &[Planned]) -> Result<Watching> {
    let mut built = Vec::new();
    let out = config.out_dir();
    let mut watched: Vec<PathBuf> = Vec::new();
    for p in planned {
        let dir = match p {
            Planned::Built(dir) => dir.parent().unwrap_or(dir).to_path_buf(),
            Planned::Source { .. } => out.clone(),
            // A pulled artifact never changes: its directory is its digest.
            Planned::Pull(_) => continue,
        };
        if !watched.contains(&dir) {
            built.push(host.watch(&dir, BUILD_DEBOUNCE)?);
            watched.push(dir);
        }
    }
    let sources: Vec<(PathBuf, Option<Vec<String>>)> = planned
        .iter()
        .filter_map(|p| match p {
            Planned::Source { source, command } => Some((source.clone(), command.clone())),
            Planned::Built(_) | Planned::Pull(_) => None,
        })
        .collect();
    let sources_watcher = match sources.is_empty() {
        true => None,
        false => Some(watch_sources(sources, out)?),
    };
    eprintln!("  watching for changes: sources are rebuilt, builds hot-reloaded");
    Ok(Watching {
        _built: built,
        _sources: sources_watcher,
    })
}

/// Rebuilds a source (into `out`, where the build watcher picks it up)
/// once its files have been quiet for [`SOURCE_DEBOUNCE`].
fn watch_sources(
    sources: Vec<(PathBuf, Option<Vec<String>>)>,
    out: PathBuf,
) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    // Watched by their canonical paths, which events then start with.
    let roots: Vec<PathBuf> = sources
        .iter()
        .map(|(s, _)| s.canonicalize().unwrap_or_else(|_| s.clone()))
        .collect();
    let watched = roots.clone();
    // Build outputs (`target/`) and hidden files inside a source do not
    // count; what lies above it (a hidden home directory) does not matter.
    let inside = move |p: &Path| {
        roots
            .iter()
            .filter_map(|root| p.strip_prefix(root).ok())
            .any(|rel| {
                !rel.components().any(|c| {
                    c.as_os_str() == "target" || c.as_os_str().to_string_lossy().starts_with('.')
                })
            })
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = event.is_ok_and(|e| e.paths.iter().any(|p| inside(p)));
        if relevant {
            let _ = tx.send(());
        }
    })?;
    for root in &watched {
        watcher.watch(root, notify::RecursiveMode::Recursive)?;
    }
    std::thread::Builder::new()
        .name("warden-source-watch".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // Settle: wait until the changes stop.
                while rx.recv_timeout(SOURCE_DEBOUNCE).is_ok() {}
                rebuild_changed(&sources, &out);
            }
        })?;
    Ok(watcher)
}

fn rebuild_changed(sources: &[(PathBuf, Option<Vec<String>>)], out: &Path) {
    for (source, command) in sources {
        match warden_build::is_stale(source, out) {
            Ok(false) => {}
            Ok(true) => match warden_build::build_with(source, command.as_deref(), out) {
                Ok(b) => tracing::info!(plugin = %b.name, version = %b.version, "rebuilt"),
                Err(e) => {
                    tracing::error!(source = %source.display(), error = %e, "rebuild failed; the loaded build keeps serving")
                }
            },
            Err(e) => {
                tracing::error!(source = %source.display(), error = %e, "cannot check the source")
            }
        }
    }
}
