//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(name = "warden", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args)]
pub struct Global {
    /// Show plugin logs, metadata and timings on stderr.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/warden or ~/.cache/warden].
    #[arg(long, global = true, env = "WARDEN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not use the on-disk compile cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Grant plugins a permission: fs:ro:PATH, fs:rw:PATH, net:HOST:PORTS,
    /// net:listen:HOST:PORTS, http:ORIGIN, env:NAME, kv:STORE, link:PLUGIN
    /// (repeatable). Nothing is granted by default.
    #[arg(long = "grant", global = true, value_name = "SPEC")]
    pub grants: Vec<String>,
    /// Deny a path or destination whatever is granted: fs:PATH, net:HOST:PORTS
    /// (repeatable).
    #[arg(long = "deny", global = true, value_name = "SPEC")]
    pub denies: Vec<String>,
    /// Load plugins that ask for more than is granted without the extra
    /// permissions, instead of refusing them.
    #[arg(long, global = true)]
    pub trim: bool,
    /// Meter fuel, so that `limits.fuel` in manifests is enforced.
    #[arg(long, global = true)]
    pub fuel: bool,
    /// Set a plugin config value over its manifest's `[config]`, for every
    /// plugin or (with `PLUGIN:`) one. The value may use `${env:NAME}` and
    /// `${secret:NAME}` (repeatable).
    #[arg(long = "config", global = true, value_name = "[PLUGIN:]KEY=VALUE", value_parser = parse_config)]
    pub config: Vec<(Option<String>, String, String)>,
    /// The secrets file `${secret:NAME}` reads (TOML, readable by you only).
    #[arg(long, global = true, env = "WARDEN_SECRETS")]
    pub secrets: Option<PathBuf>,
    /// The host's data directory (the audit log lives there).
    #[arg(
        long,
        global = true,
        env = "WARDEN_DATA_DIR",
        default_value = ".warden"
    )]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a plugin from a template: a working plugin in any of five languages.
    New(NewArgs),
    /// Plug components' exports into a plugin's imports, making one component.
    Compose(ComposeArgs),
    /// Build plugin sources into components and place them in an output directory.
    Build(BuildArgs),
    /// Call a plugin's `process` with an input and print its output.
    Call(CallArgs),
    /// List the plugins in a directory.
    List(ListArgs),
    /// Show a component's imports, exports and metadata.
    Inspect(InspectArgs),
    /// Deliver an event to every event-handler plugin in a directory.
    Event(EventArgs),
    /// Show the audit log: every denial and limit hit of every plugin.
    Audit(AuditArgs),
    /// Deploy a built plugin: the first version of a name serves, a later
    /// one is loaded beside it for a canary. Kept in the data directory.
    Deploy(DeployArgs),
    /// Send a share of a deployed plugin's calls to one of its versions.
    Canary(CanaryArgs),
    /// Make a plugin's canary version its stable version.
    Promote(NameArgs),
    /// End a plugin's canary: all calls go to the stable version again.
    Rollback(NameArgs),
    /// Load a deployed plugin's files again and swap in the new build.
    Reload(NameArgs),
    /// Show deployed plugins: versions, roles, canary share, state.
    Status(StatusArgs),
    /// Show a plugin's deploys, canaries, promotions, rollbacks, restarts.
    History(HistoryArgs),
    /// Forget which directories a plugin name belongs to, so that the next
    /// plugin loaded under it (from another directory) may have it.
    ReleaseName(NameArgs),
    /// Make a key pair for signing plugins: a secret key file, and the
    /// public key a host trusts (`[signatures] trusted-keys`).
    Keygen(KeygenArgs),
    /// Sign a built plugin: its component and its manifest (which grants
    /// its permissions), into `plugin.sig` beside them.
    Sign(SignArgs),
    /// Check a built plugin's signature against public keys you trust.
    Verify(VerifyArgs),
    /// List the nodes of a cluster: their plugins and load.
    Cluster(ClusterArgs),
    /// Push a built plugin to an OCI registry (the CNCF wasm layout, with its
    /// manifest and signature).
    Push(PushArgs),
    /// Pull a plugin from an OCI registry into the data directory.
    Pull(PullArgs),
    /// Build what is stale, load the plugins of `warden.toml` and serve them
    /// over HTTP.
    Up(UpArgs),
    /// Serve the built plugins of `warden.toml` over HTTP (no building).
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Rebuild sources when they change and hot-reload the new builds.
    #[arg(long)]
    pub watch: bool,
}

#[derive(Args)]
pub struct ServeArgs {
    /// The app config [default: ./warden.toml; defaults when missing].
    #[arg(long, short = 'f', default_value = "warden.toml")]
    pub file: PathBuf,
    /// Listen on this address instead of `server.listen`.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Join the cluster on this NATS server (`nats://host:4222`) instead of
    /// `cluster.nats`.
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// This node's name in the cluster instead of `cluster.name`.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
}

#[derive(Args)]
pub struct ClusterArgs {
    /// The app config whose `[cluster]` names the NATS server.
    #[arg(long, short = 'f', default_value = "warden.toml")]
    pub file: PathBuf,
    /// The NATS server instead of `cluster.nats`.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DeployArgs {
    /// The built plugin's directory (as `warden build` places it), or an
    /// artifact, `oci://registry/repository:tag`, pulled first.
    pub path: PathBuf,
    /// Deploy to every node of the cluster on this NATS server
    /// (`nats://host:4222`) instead of the local data directory.
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// With `--cluster`: the most any version of the plugin may be granted
    /// on any node, as `--grant` takes it (repeatable; replaces what the
    /// cluster held). Each node's own grants still apply: these only narrow.
    #[arg(long = "grant", value_name = "SPEC", requires = "cluster")]
    pub grants: Vec<String>,
    /// With `--cluster`: take the plugin's grants out of the cluster's
    /// record, so that each node's own grants alone decide.
    #[arg(long, requires = "cluster", conflicts_with = "grants")]
    pub clear_grants: bool,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CanaryArgs {
    /// The plugin's name.
    pub name: String,
    /// The deployed version to send calls to.
    pub version: String,
    /// Its share of calls, in percent (0-100).
    #[arg(long, short)]
    pub percent: f64,
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (created readable by you only; an
    /// existing file is not overwritten).
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct PushArgs {
    /// The built plugin's directory (or its `plugin.toml`).
    pub path: PathBuf,
    /// Where to, `oci://registry/repository:tag`.
    pub reference: String,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PullArgs {
    /// What, `oci://registry/repository:tag` or `…@sha256:…`.
    pub reference: String,
    /// Also write the plugin's files into this directory.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// How `push`, `pull` and `oci://` references reach registries.
#[derive(Args, Clone, Default)]
pub struct RegistryArgs {
    /// The registry the user name and password are for (`host:port`);
    /// every other registry is spoken to anonymously.
    #[arg(long, global = true, env = "WARDEN_REGISTRY", value_name = "HOST:PORT")]
    pub registry: Option<String>,
    /// The registry user name (HTTP Basic); anonymous without it.
    #[arg(
        long,
        global = true,
        env = "WARDEN_REGISTRY_USERNAME",
        hide_env_values = true
    )]
    pub registry_username: Option<String>,
    /// The registry password or token.
    #[arg(
        long,
        global = true,
        env = "WARDEN_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub registry_password: Option<String>,
    /// A registry (`host:port`) spoken to over plain HTTP; loopback ones
    /// always are (repeatable).
    #[arg(long = "insecure-registry", global = true, value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
}

#[derive(Args)]
pub struct SignArgs {
    /// The built plugin's directory (or its `plugin.toml`).
    pub path: PathBuf,
    /// The secret key file (`warden keygen`).
    #[arg(long, short)]
    pub key: PathBuf,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The built plugin's directory (or its `plugin.toml`).
    pub path: PathBuf,
    /// A public key you trust, `ed25519:...` (repeatable).
    #[arg(long = "key", short, required = true, value_name = "KEY")]
    pub keys: Vec<String>,
}

#[derive(Args)]
pub struct NameArgs {
    /// The plugin's name (`reload` also takes `name@version`).
    pub name: String,
}

#[derive(Args)]
pub struct StatusArgs {
    /// Only this plugin.
    pub name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Ask the running `warden serve` at this URL (its public API) instead
    /// of loading what the data directory keeps: live instances, their
    /// memory and recycling are only there.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// The plugin's name.
    pub name: String,
    /// At most this many entries (the newest).
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct AuditArgs {
    /// Only this plugin's entries.
    #[arg(long, short)]
    pub plugin: Option<String>,
    /// Only entries since this time: RFC 3339 (`2026-11-21T10:00:00Z`) or a
    /// duration ago (`10m`, `2h`, `1day`).
    #[arg(long, short)]
    pub since: Option<String>,
    /// Only entries of this kind (e.g. `socket-denied`, `timeout`).
    #[arg(long, short)]
    pub kind: Option<warden::AuditKind>,
    /// At most this many (the newest).
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BuildArgs {
    /// Plugin source directories, or directories of them [default: .].
    pub dirs: Vec<PathBuf>,
    /// Where to place the built plugins.
    #[arg(long, short, default_value = "dist")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct ComposeArgs {
    /// The plugin whose imports are plugged: a built plugin directory, or a
    /// component file.
    pub socket: PathBuf,
    /// A component whose exports fill the socket's imports (repeatable).
    #[arg(long = "plug", short = 'p', required = true)]
    pub plugs: Vec<PathBuf>,
    /// Where the result goes: a plugin directory (for a plugin directory
    /// socket: component and plugin.toml), or a component file.
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct NewArgs {
    /// The plugin's name (lowercase letters, digits, `-`); also its directory.
    pub name: String,
    /// The language to write it in.
    #[arg(long, short, default_value = "rust", value_parser = ["rust", "python", "js", "javascript", "go", "c"])]
    pub lang: String,
    /// The world it targets.
    #[arg(long, short, default_value = "processor", value_parser = ["processor", "event-handler"])]
    pub world: String,
    /// Where to create the plugin's directory.
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// The plugin's one-line description.
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Args)]
pub struct CallArgs {
    /// A plugin name (looked up in --dir), a plugin directory, or a .wasm file.
    pub plugin: String,
    /// The input, as text.
    #[arg(long, short, conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the input from this file [default: stdin, when it is not a terminal].
    #[arg(long, short = 'f')]
    pub input_file: Option<PathBuf>,
    /// An option for the plugin, as key=value (repeatable).
    #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub options: Vec<(String, String)>,
    /// The content type of the input.
    #[arg(long, short = 't', default_value = "")]
    pub content_type: String,
    /// Where plugins are looked up by name.
    #[arg(long, short, default_value = "dist", env = "WARDEN_PLUGIN_DIR")]
    pub dir: PathBuf,
    /// Write the output to this file instead of stdout.
    #[arg(long = "output-file", short = 'O')]
    pub output_file: Option<PathBuf>,
    /// Print a JSON object (output, content type, items, timings) instead of raw output.
    #[arg(long, conflicts_with = "output_file")]
    pub json: bool,
    /// Core modules with numeric exports: the export to call.
    #[arg(long)]
    pub export: Option<String>,
    /// Core modules: the export's arguments, parsed by its parameter types.
    #[arg(long, num_args = 1.., allow_negative_numbers = true, requires = "export")]
    pub args: Vec<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// The directory of built plugins.
    #[arg(long, short, default_value = "dist", env = "WARDEN_PLUGIN_DIR")]
    pub dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The component (.wasm) or plugin directory.
    pub path: PathBuf,
    /// Print JSON instead of WIT.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct EventArgs {
    /// The event type, e.g. `order.created`.
    pub event_type: String,
    /// The payload (usually JSON).
    pub payload: String,
    /// The directory of built plugins.
    #[arg(long, short, default_value = "dist", env = "WARDEN_PLUGIN_DIR")]
    pub dir: PathBuf,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

fn parse_config(s: &str) -> Result<(Option<String>, String, String), String> {
    let (key, value) = parse_key_value(s)?;
    Ok(match key.split_once(':') {
        Some((plugin, key)) if !plugin.is_empty() && !key.is_empty() => {
            (Some(plugin.to_string()), key.to_string(), value)
        }
        _ => (None, key, value),
    })
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}
