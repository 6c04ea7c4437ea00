//! The app config `warden.toml`: the plugins to serve (built directories
//! and sources with their build), the operator's grants and limit caps,
//! and the server's address, data directory, admin token, log format and
//! limits. `warden up` and `warden serve` run from it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use warden::{Error, GrantPolicy, Grants, Limits, ManifestLimits, Result, Warden, WardenBuilder};
use warden_server::ServeSettings;

/// The file `warden up` and `warden serve` read by default.
pub const APP_CONFIG_FILE: &str = "warden.toml";

/// A parsed `warden.toml`. Relative paths in it are relative to the
/// file's directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AppConfig {
    /// The server.
    #[serde(default)]
    pub server: ServerSection,
    /// What to serve.
    #[serde(default)]
    pub plugins: PluginsSection,
    /// What plugins may reach.
    #[serde(default)]
    pub grants: GrantsSection,
    /// The most any manifest may ask for (the keys of a manifest's
    /// `[limits]`).
    #[serde(default)]
    pub limits: ManifestLimits,
    /// Config values over the plugins' `[config]`: a table per plugin name
    /// (`"*"` for every plugin), values may use `${env:NAME}` and
    /// `${secret:NAME}`.
    #[serde(default)]
    pub config: BTreeMap<String, BTreeMap<String, String>>,
    /// Where traces go.
    #[serde(default)]
    pub telemetry: TelemetrySection,
    /// Which plugins may load: signed ones only, by the keys trusted here.
    #[serde(default)]
    pub signatures: SignaturesSection,
    /// The cluster this server is a node of.
    #[serde(default)]
    pub cluster: ClusterSection,
    /// The directory relative paths are resolved against (the file's).
    #[serde(skip)]
    pub base: PathBuf,
    /// The file it was read from (`None`: defaults).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// `[cluster]`: with `nats` set, `warden serve` and `warden up` join the
/// cluster on that NATS server (with JetStream) as node `name`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterSection {
    /// The NATS server, `nats://host:4222` (credentials in the URL).
    pub nats: Option<String>,
    /// This node's name, unique in the cluster [default: the host name].
    pub name: Option<String>,
}

/// `[signatures]`: with `require = true`, only plugins whose component and
/// manifest one of `trusted-keys` signed (`warden sign`) are loaded.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignaturesSection {
    /// Refuse unsigned plugins and plugins signed by other keys.
    pub require: bool,
    /// The public keys trusted to sign plugins, `ed25519:...`.
    pub trusted_keys: Vec<String>,
}

impl SignaturesSection {
    /// The trusted keys, each checked.
    fn keys(&self) -> std::result::Result<Vec<warden::PublicKey>, String> {
        self.trusted_keys.iter().map(|k| k.parse()).collect()
    }
}

/// `[telemetry]`: spans of every request, call, instance, link and
/// outbound request, exported over OTLP/HTTP (protobuf) when `otlp` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TelemetrySection {
    /// The OTLP/HTTP endpoint's base, such as `http://127.0.0.1:4318`
    /// (spans are sent to `/v1/traces` under it). Unset: no tracing.
    pub otlp: Option<String>,
    /// The `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection {
            otlp: None,
            service_name: "warden".to_string(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerSection {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The host's data directory: audit log, embedded store, deployments,
    /// uploads.
    pub data_dir: PathBuf,
    /// The admin API's bearer token. Prefer `admin-token-file`.
    pub admin_token: Option<String>,
    /// A file holding the admin token (made with a random token, readable
    /// by its owner only, when missing). Without a token the admin API is
    /// off.
    pub admin_token_file: Option<PathBuf>,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// The secrets file `${secret:NAME}` reads.
    pub secrets_file: Option<PathBuf>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest total size of a request's headers, in bytes.
    pub max_header_bytes: usize,
    /// How long a request body may take to arrive, in milliseconds.
    pub body_read_timeout_ms: u64,
    /// How long a request may take, queueing included, in milliseconds.
    pub request_timeout_ms: u64,
    /// Connections open at once; one more is closed at once.
    pub max_connections: usize,
    /// How long a connection may take to deliver a request's headers once
    /// the server waits for them, in milliseconds (also how long a
    /// kept-alive connection may sit idle).
    pub header_read_timeout_ms: u64,
    /// How long a connection may stay with no byte moving while none of its
    /// requests is being handled, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Most options one call may pass.
    pub max_options: usize,
    /// Most output bytes one batch may return.
    pub max_batch_output_bytes: u64,
    /// Requests handled at once.
    pub max_concurrency: usize,
    /// Requests waiting for a turn; more are refused with 503.
    pub max_queue: usize,
    /// Calls of one batch run at once.
    pub batch_concurrency: usize,
    /// Most calls in one batch.
    pub max_batch: usize,
    /// How long in-flight requests may take to finish at shutdown, in
    /// milliseconds.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        let s = ServeSettings::default();
        ServerSection {
            listen: s.listen,
            data_dir: PathBuf::from(".warden"),
            admin_token: None,
            admin_token_file: None,
            log_format: LogFormat::Text,
            secrets_file: None,
            max_body_bytes: s.max_body_bytes,
            max_header_bytes: s.max_header_bytes,
            body_read_timeout_ms: s.body_read_timeout.as_millis() as u64,
            request_timeout_ms: s.request_timeout.as_millis() as u64,
            max_connections: s.max_connections,
            header_read_timeout_ms: s.header_read_timeout.as_millis() as u64,
            idle_timeout_ms: s.idle_timeout.as_millis() as u64,
            max_options: s.max_options,
            max_batch_output_bytes: s.max_batch_output_bytes,
            max_concurrency: s.max_concurrency,
            max_queue: s.max_queue,
            batch_concurrency: s.batch_concurrency,
            max_batch: s.max_batch,
            shutdown_grace_ms: s.shutdown_grace.as_millis() as u64,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (with the request id as a field).
    Json,
}

/// `[plugins]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginsSection {
    /// Built plugins to serve: plugin directories, directories of them, or
    /// artifacts in a registry (`oci://registry/repository:tag`, pulled into
    /// the data directory at start).
    pub dirs: Vec<PathBuf>,
    /// Plugin sources: a source (a directory with `plugin.toml` and the
    /// sources of a language `warden build` knows, or a `build` entry), or
    /// a directory of them. `warden up` builds the stale ones into `out`; a
    /// directory here holding a built plugin (no sources) is served as it
    /// is.
    pub sources: Vec<PathBuf>,
    /// Where built sources go, and are served from.
    pub out: PathBuf,
    /// Sources built by a command of their own (other languages).
    pub build: Vec<CustomBuild>,
}

impl Default for PluginsSection {
    fn default() -> Self {
        PluginsSection {
            dirs: Vec::new(),
            sources: vec![PathBuf::from(".")],
            out: PathBuf::from(".warden/dist"),
            build: Vec::new(),
        }
    }
}

/// A plugin source with its own build command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CustomBuild {
    /// The source directory (holding `plugin.toml`).
    pub source: PathBuf,
    /// The program and its arguments, run in `source`; it must write the
    /// component the manifest names.
    pub command: Vec<String>,
}

/// `[grants]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct GrantsSection {
    /// Permissions granted, as `--grant` takes them (`http:https://x.org`,
    /// `fs:ro:/srv/data`, `kv:*`...).
    pub allow: Vec<String>,
    /// Paths and destinations denied whatever is granted (`fs:PATH`,
    /// `net:HOST:PORTS`).
    pub deny: Vec<String>,
    /// What happens to a plugin asking for more than is granted.
    pub policy: Option<PolicyName>,
    /// Meter fuel, so that `limits.fuel` is enforced.
    pub fuel: bool,
}

/// `grants.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyName {
    /// Refuse to load it.
    Refuse,
    /// Load it without the extra permissions.
    Trim,
}

impl AppConfig {
    /// Reads `file`.
    pub fn load(file: &Path) -> Result<AppConfig> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        let mut config: AppConfig = toml::from_str(&text).map_err(|e| Error::Manifest {
            file: file.to_path_buf(),
            message: warden::describe_toml_error(&text, &e),
        })?;
        config.base = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        config.file = Some(file.to_path_buf());
        config.check()?;
        Ok(config)
    }

    /// The defaults, for a directory without `warden.toml`: its plugins,
    /// 127.0.0.1:8080, data in `.warden/`.
    pub fn defaults(dir: &Path) -> AppConfig {
        AppConfig {
            base: dir.to_path_buf(),
            ..AppConfig::default()
        }
    }

    /// `file` if it exists; the defaults for its directory otherwise.
    pub fn load_or_default(file: &Path) -> Result<AppConfig> {
        match file.is_file() {
            true => AppConfig::load(file),
            false => Ok(AppConfig::defaults(
                file.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            )),
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |key: &str, message: &str| Error::Manifest {
            file: self.file.clone().unwrap_or_default(),
            message: format!("key `{key}`: {message}"),
        };
        let s = &self.server;
        if s.admin_token.is_some() && s.admin_token_file.is_some() {
            return Err(bad(
                "server.admin-token",
                "give `admin-token` or `admin-token-file`, not both",
            ));
        }
        if s.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(bad(
                "server.admin-token",
                "the token is shorter than 16 characters; use a long random one",
            ));
        }
        for (key, value) in [
            ("server.max-concurrency", s.max_concurrency),
            ("server.batch-concurrency", s.batch_concurrency),
            ("server.max-batch", s.max_batch),
            ("server.max-body-bytes", s.max_body_bytes),
            ("server.max-header-bytes", s.max_header_bytes),
            ("server.max-connections", s.max_connections),
            ("server.max-options", s.max_options),
        ] {
            if value == 0 {
                return Err(bad(key, "must be at least 1"));
            }
        }
        for (key, value) in [
            ("server.request-timeout-ms", s.request_timeout_ms),
            ("server.body-read-timeout-ms", s.body_read_timeout_ms),
            ("server.header-read-timeout-ms", s.header_read_timeout_ms),
            ("server.idle-timeout-ms", s.idle_timeout_ms),
            ("server.max-batch-output-bytes", s.max_batch_output_bytes),
        ] {
            if value == 0 {
                return Err(bad(key, "must be at least 1"));
            }
        }
        if let Some(endpoint) = &self.telemetry.otlp
            && !endpoint.starts_with("http://")
        {
            return Err(bad(
                "telemetry.otlp",
                "is not an http:// URL; give the OTLP/HTTP endpoint, such as \
                 `http://127.0.0.1:4318` (spans are sent without TLS: to reach a remote \
                 collector over TLS, run a local OpenTelemetry Collector that forwards them)",
            ));
        }
        let keys = self
            .signatures
            .keys()
            .map_err(|e| bad("signatures.trusted-keys", &e))?;
        if self.signatures.require && keys.is_empty() {
            return Err(bad(
                "signatures.trusted-keys",
                "is empty while `require = true`: no plugin could load; add the public key \
                 `warden keygen` printed",
            ));
        }
        Limits::caps_from(&self.limits, &self.file.clone().unwrap_or_default())?;
        for (i, dir) in self.plugins.dirs.iter().enumerate() {
            if let Some(reference) = dir.to_str().filter(|d| warden_oci::is_oci_reference(d)) {
                warden_oci::OciReference::parse(reference)
                    .map_err(|e| bad(&format!("plugins.dirs[{i}]"), &e.to_string()))?;
            }
        }
        for (i, b) in self.plugins.build.iter().enumerate() {
            if b.command.is_empty() {
                return Err(bad(
                    &format!("plugins.build[{i}].command"),
                    "is empty; give the program and its arguments",
                ));
            }
        }
        Ok(())
    }

    /// `path` resolved against the file's directory.
    pub fn path(&self, path: &Path) -> PathBuf {
        self.base.join(path)
    }

    /// Where built sources go.
    pub fn out_dir(&self) -> PathBuf {
        self.path(&self.plugins.out)
    }

    /// Every plugin to serve: the built ones as they are, and the sources
    /// with how each is built.
    pub fn planned(&self) -> Result<Vec<Planned>> {
        let mut planned = Vec::new();
        for dir in &self.plugins.dirs {
            if let Some(reference) = dir.to_str().filter(|d| warden_oci::is_oci_reference(d)) {
                planned.push(Planned::Pull(reference.to_string()));
                continue;
            }
            for found in warden::discover(&self.path(dir))? {
                planned.push(Planned::Built(found));
            }
        }
        let custom = |dir: &Path| {
            self.plugins
                .build
                .iter()
                .find(|b| same_dir(&self.path(&b.source), dir))
                .map(|b| b.command.clone())
        };
        for root in &self.plugins.sources {
            for found in warden::discover(&self.path(root))? {
                let command = custom(&found);
                if command.is_some() || warden_build::Language::detect(&found).is_ok() {
                    planned.push(Planned::Source {
                        source: found,
                        command,
                    });
                } else {
                    planned.push(Planned::Built(found));
                }
            }
        }
        for b in &self.plugins.build {
            let source = self.path(&b.source);
            let known = planned.iter().any(|p| match p {
                Planned::Source { source: s, .. } => same_dir(s, &source),
                Planned::Built(_) | Planned::Pull(_) => false,
            });
            if !known {
                planned.push(Planned::Source {
                    source,
                    command: Some(b.command.clone()),
                });
            }
        }
        Ok(planned)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.path(&self.server.data_dir)
    }

    /// A host builder with this file's grants, caps, config values and
    /// data directory.
    pub fn builder(&self) -> Result<WardenBuilder> {
        let mut grants = Grants::new();
        for spec in &self.grants.allow {
            grants = grants.grant(spec)?;
        }
        for spec in &self.grants.deny {
            grants = grants.deny(spec)?;
        }
        if self.grants.policy == Some(PolicyName::Trim) {
            grants = grants.policy(GrantPolicy::Trim);
        }
        let file = self
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from(APP_CONFIG_FILE));
        let mut builder = Warden::builder()
            .grants(grants)
            .fuel(self.grants.fuel)
            .limit_caps(Limits::caps_from(&self.limits, &file)?)
            .data_dir(self.data_dir());
        for (plugin, values) in &self.config {
            let plugin = (plugin != "*").then_some(plugin.as_str());
            for (key, value) in values {
                builder = builder.config(plugin, key, value);
            }
        }
        if let Some(secrets) = &self.server.secrets_file {
            builder = builder.secrets_file(self.path(secrets));
        }
        if self.signatures.require {
            let keys = self.signatures.keys().map_err(|message| Error::Manifest {
                file: file.clone(),
                message,
            })?;
            builder = builder.require_signatures(keys);
        }
        Ok(builder)
    }

    /// The server's settings. The admin token comes from `admin-token`,
    /// else from `admin-token-file` (created with a random token when
    /// missing), else the admin API is off.
    pub fn serve_settings(&self) -> Result<ServeSettings> {
        let s = &self.server;
        let admin_token = match (&s.admin_token, &s.admin_token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(file)) => Some(read_or_make_token(&self.path(file))?),
            (None, None) => None,
        };
        Ok(ServeSettings {
            listen: s.listen,
            admin_token,
            upload_dir: Some(self.data_dir().join("uploads")),
            max_body_bytes: s.max_body_bytes,
            max_header_bytes: s.max_header_bytes,
            body_read_timeout: Duration::from_millis(s.body_read_timeout_ms),
            request_timeout: Duration::from_millis(s.request_timeout_ms),
            max_connections: s.max_connections,
            header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(s.idle_timeout_ms),
            max_options: s.max_options,
            max_batch_output_bytes: s.max_batch_output_bytes,
            max_concurrency: s.max_concurrency,
            max_queue: s.max_queue,
            batch_concurrency: s.batch_concurrency,
            max_batch: s.max_batch,
            shutdown_grace: Duration::from_millis(s.shutdown_grace_ms),
        })
    }
}

/// A plugin `warden up` or `warden serve` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// A built plugin directory, served as it is.
    Built(PathBuf),
    /// An artifact in a registry, pulled into the data directory and served
    /// from there.
    Pull(String),
    /// A source, built into the output directory and served from there.
    Source {
        /// The source directory.
        source: PathBuf,
        /// Its build command (`None`: cargo).
        command: Option<Vec<String>>,
    },
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The token in `file` (trimmed), or a new random one written there,
/// readable by its owner only.
fn read_or_make_token(file: &Path) -> Result<String> {
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.len() < 16 {
                return Err(Error::Manifest {
                    file: file.to_path_buf(),
                    message: "the admin token is shorter than 16 characters; use a long random one"
                        .into(),
                });
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            if let Some(dir) = file.parent() {
                warden::create_owner_only_dir(dir).map_err(|e| Error::io(dir, e))?;
            }
            write_owner_only(file, token.as_bytes()).map_err(|e| Error::io(file, e))?;
            tracing::info!(file = %file.display(), "made a new admin token");
            Ok(token)
        }
        Err(e) => Err(Error::io(file, e)),
    }
}

fn write_owner_only(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file)?.write_all(bytes)
}

#[cfg(test)]
mod tests;
