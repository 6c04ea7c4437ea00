//! The library's one error type, with variants a caller can match on.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout Warden.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when loading or calling a plugin.
///
/// Errors caused by a plugin, a manifest or a file name that plugin, file or
/// field; none of them is ever raised as a panic in the host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No plugin of that name is loaded.
    #[error("plugin `{name}` is not loaded (loaded: {})", list_or_none(loaded))]
    NotFound {
        /// The name that was asked for.
        name: String,
        /// The names that are loaded, to help spot a typo.
        loaded: Vec<String>,
    },

    /// The bytes are not a WebAssembly component Warden can run.
    #[error("{source_name}: not a valid plugin component: {reason}")]
    InvalidComponent {
        /// The file (or `<bytes>`) the component came from.
        source_name: String,
        /// What is wrong, and what to do about it.
        reason: String,
    },

    /// The component does not export what its declared world requires.
    #[error(
        "plugin `{plugin}` does not implement world `{world}`: missing export{} {}",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", ")
    )]
    WrongWorld {
        /// The plugin's name.
        plugin: String,
        /// The world the manifest declares.
        world: String,
        /// The interfaces or functions the component lacks.
        missing: Vec<String>,
    },

    /// The component targets a version of the contract this host does not
    /// serve (newer than the host, or a mix no one version has).
    #[error(
        "plugin `{plugin}` uses {}, which no contract version this host serves has; \
         this host serves warden:plugin {supported}: rebuild the plugin against one of \
         them, or upgrade the host",
        interfaces.join(", ")
    )]
    UnsupportedContract {
        /// The plugin's name.
        plugin: String,
        /// The `warden:plugin` interfaces (with versions) that do not fit.
        interfaces: Vec<String>,
        /// The contract versions this host serves, as `0.1.0, 0.2.0`.
        supported: String,
    },

    /// The component imports something the host does not provide.
    #[error(
        "plugin `{plugin}` imports `{import}`, which this host does not provide; \
         build it against the warden:plugin worlds or add that interface to the host"
    )]
    UnsatisfiedImport {
        /// The plugin's name.
        plugin: String,
        /// The import that cannot be satisfied.
        import: String,
    },

    /// The host requires signed plugins and this one's signature was not
    /// accepted; nothing of it was compiled or loaded.
    #[error(
        "plugin `{plugin}` ({}) is refused: {problem}; sign it with `warden sign` using a key \
         this host trusts (`[signatures] trusted-keys`)",
        file.display()
    )]
    Signature {
        /// The plugin's name.
        plugin: String,
        /// Its manifest (the signature file is beside it).
        file: PathBuf,
        /// What is wrong with the signature.
        problem: crate::signature::SignatureProblem,
    },

    /// A `plugin.toml` is missing, unreadable or invalid.
    #[error("{}: {message}", file.display())]
    Manifest {
        /// The manifest file.
        file: PathBuf,
        /// The key that is wrong (empty when the whole file is), what was
        /// found, and what is allowed.
        message: String,
    },

    /// The plugin asks for permissions the operator does not grant (and the
    /// grant policy is to refuse).
    #[error(
        "plugin `{plugin}` asks for permissions this host does not grant: {}; \
         grant them, or load with the trim policy to drop them",
        refused.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; ")
    )]
    PermissionDenied {
        /// The plugin's name.
        plugin: String,
        /// Every permission that was refused, with the manifest's reason.
        refused: Vec<Refusal>,
    },

    /// A call's input or output is larger than the plugin's limit.
    #[error(
        "plugin `{plugin}`: the {what} is {size} bytes, more than its limit of {max} bytes \
         (`limits.max-{what}-bytes`)"
    )]
    LimitExceeded {
        /// The plugin's name.
        plugin: String,
        /// `input` or `output`.
        what: &'static str,
        /// The size that was refused.
        size: u64,
        /// The limit.
        max: u64,
    },

    /// A capability refused the plugin at load, or the manifest asks for a
    /// capability the host does not have.
    #[error("plugin `{plugin}`: capability `{capability}` refuses it: {reason}")]
    CapabilityRefused {
        /// The plugin's name.
        plugin: String,
        /// The capability's name.
        capability: String,
        /// Why.
        reason: String,
    },

    /// A batch is larger than its [`crate::BatchLimits`] allow: too many
    /// calls (the batch is refused whole), or its output allowance is spent
    /// (the calls not yet run are answered with this).
    #[error("the batch's {what} would be {size}, more than its limit of {max}; split the batch")]
    BatchLimit {
        /// `calls` or `output bytes`.
        what: &'static str,
        /// The size that was refused (for output: past the limit).
        size: u64,
        /// The limit.
        max: u64,
    },

    /// The plugin's configuration cannot be completed: a required key is
    /// missing, or an operator value's reference cannot be resolved.
    #[error("plugin `{plugin}`: {message}")]
    Config {
        /// The plugin's name.
        plugin: String,
        /// The key and what is wrong.
        message: String,
    },

    /// Every instance of the plugin stayed busy for longer than the call may wait.
    #[error(
        "plugin `{plugin}` is busy: all {max_instances} instances stayed in use for {waited:?}; \
         retry later or raise `limits.max-instances`"
    )]
    Busy {
        /// The plugin's name.
        plugin: String,
        /// Its instance limit.
        max_instances: u32,
        /// How long the call waited for an instance.
        waited: Duration,
    },

    /// The plugin trapped: it crashed, ran out of time or memory. The host is
    /// unaffected and the instance has been discarded.
    #[error("plugin `{plugin}` trapped ({kind}): {message}")]
    Trap {
        /// The plugin's name.
        plugin: String,
        /// Why it trapped.
        kind: TrapKind,
        /// The trap message and guest backtrace, when there is one.
        message: String,
    },

    /// The plugin ran and returned its own error for this call.
    #[error("plugin `{plugin}` returned an error: {error}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// The error the plugin returned.
        error: PluginError,
    },

    /// A call the plugin made through a link (an import that another
    /// plugin serves, see `[permissions.links]`) failed on the provider's
    /// side: the provider is not loaded, busy, or trapped. The plugin's own
    /// call was cut short there and its instance discarded; the provider's
    /// failure is counted and audited on the provider.
    #[error("plugin `{plugin}` called `{function}` of plugin `{provider}`, which failed: {error}")]
    Linked {
        /// The plugin that made the call.
        plugin: String,
        /// The provider, as the link names it (`name` or `name@range`).
        provider: String,
        /// The function called, as `interface#function`.
        function: String,
        /// What went wrong on the provider's side.
        error: Box<Error>,
    },

    /// The plugin does not export the interface this call needs (for example
    /// `process` on an event-handler plugin).
    #[error("plugin `{plugin}` (world `{world}`) cannot {operation}")]
    Unsupported {
        /// The plugin's name.
        plugin: String,
        /// Its world.
        world: String,
        /// What was asked of it.
        operation: String,
    },

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },

    /// A blocking method was called from inside an async runtime, where it
    /// would stall the runtime's thread.
    #[error(
        "`{method}` blocks and cannot run inside an async runtime; use the async method instead"
    )]
    BlockingInAsync {
        /// The method that was called.
        method: &'static str,
    },

    /// The plugin version refuses calls for now, without running them.
    #[error(
        "plugin `{plugin}` {version} is unavailable: {reason}; retry in {}",
        humantime::format_duration(Duration::from_millis(retry_after.as_millis() as u64))
    )]
    Unavailable {
        /// The plugin's name.
        plugin: String,
        /// The version that refused.
        version: String,
        /// Why.
        reason: Unavailability,
        /// When a call may be tried again.
        retry_after: Duration,
    },

    /// A deployment operation cannot be done in the plugin's current state
    /// (no canary to promote, a version that is not loaded, ...).
    #[error("plugin `{plugin}`: {message}")]
    Deploy {
        /// The plugin's name.
        plugin: String,
        /// What is wrong, and what to do.
        message: String,
    },

    /// The plugin's name belongs to a plugin loaded from another directory:
    /// loading this one would hand it that plugin's configuration, secrets,
    /// store and data.
    #[error(
        "plugin name `{name}` belongs to the plugin loaded from {}; {} asks for it too and is \
         refused. If it is a new build of the same plugin, deploy it (`warden deploy`, the admin \
         API, `Warden::deploy`) to vouch for its directory, or release the name \
         (`warden release-name`, `Warden::release_name`)",
        list_paths(homes),
        claimant.display()
    )]
    NameClaimed {
        /// The name.
        name: String,
        /// The directory of the plugin that was refused.
        claimant: PathBuf,
        /// The directories the name belongs to.
        homes: Vec<PathBuf>,
    },

    /// A core-module plugin broke its ABI: a missing export, a pointer or
    /// length outside its memory, output that is not JSON.
    #[error("module `{plugin}` broke its ABI: {message}")]
    ModuleAbi {
        /// The module's name.
        plugin: String,
        /// What it did wrong.
        message: String,
    },

    /// A call to a core-module plugin was malformed: an unknown export,
    /// the wrong number or type of arguments, input that is not JSON.
    #[error("module `{plugin}`: {message}")]
    BadCall {
        /// The module's name.
        plugin: String,
        /// What is wrong with the call, and what the module expects.
        message: String,
    },

    /// The host's own configuration is wrong.
    #[error("host error: {0}")]
    Host(String),

    /// A facility of the host failed (the wasm engine, a linker, a thread,
    /// a database): what the host was doing, then the cause, which is also
    /// the error's source.
    #[error("host error: {context}: {source}")]
    HostFailure {
        /// What the host was doing.
        context: String,
        /// The failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// Why a plugin version refuses calls ([`Error::Unavailable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Unavailability {
    /// Its circuit breaker is open after too many failed calls.
    CircuitOpen,
    /// It kept crashing after restarts and waits for its next restart.
    Quarantined,
    /// An operator quarantined it; it stays so until released.
    Held,
}

impl std::fmt::Display for Unavailability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unavailability::CircuitOpen => "its circuit breaker is open after repeated failures",
            Unavailability::Quarantined => "it is quarantined after crashing repeatedly",
            Unavailability::Held => {
                "an operator quarantined it (release it with the admin API's `release`)"
            }
        })
    }
}

/// Why a plugin trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TrapKind {
    /// The call ran past its deadline and was interrupted.
    Timeout,
    /// The plugin tried to use more memory than its limit allows.
    OutOfMemory,
    /// The call used up its fuel budget (`limits.fuel`).
    OutOfFuel,
    /// The plugin overflowed its wasm stack.
    StackOverflow,
    /// The plugin panicked (a Rust panic, an `unreachable` instruction).
    GuestPanic,
    /// The instance went past a host budget: its handles
    /// (`limits.max-resources`) or the host memory held for it
    /// (`limits.host-memory-mb`).
    HostResourceLimit,
    /// The plugin called a capability it was not granted (such as
    /// `wasi:http` without an `http` permission).
    NotGranted,
    /// Any other trap (out-of-bounds access, division by zero, ...).
    Other,
}

impl TrapKind {
    /// The kind as a short kebab-case word, as used in logs and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            TrapKind::Timeout => "timeout",
            TrapKind::OutOfMemory => "out-of-memory",
            TrapKind::OutOfFuel => "out-of-fuel",
            TrapKind::StackOverflow => "stack-overflow",
            TrapKind::GuestPanic => "guest-panic",
            TrapKind::HostResourceLimit => "host-resource-limit",
            TrapKind::NotGranted => "not-granted",
            TrapKind::Other => "other",
        }
    }
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error a plugin returns for one call (the WIT `plugin-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum PluginError {
    /// The input or options are wrong.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The plugin does not do what was asked.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Something failed inside the plugin.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether this error came from the plugin itself (its own error or a
    /// trap, or one of the plugin it called through a link) rather than
    /// from the request, the host or the set-up.
    pub fn is_plugin_failure(&self) -> bool {
        match self {
            Error::Linked { error, .. } => error.is_plugin_failure(),
            _ => matches!(
                self,
                Error::Trap { .. } | Error::Plugin { .. } | Error::ModuleAbi { .. }
            ),
        }
    }

    /// Whether this error is the version's own fault, which its canary
    /// comparison and automatic rollback count: a trap, an output over its
    /// limit, a broken ABI (also through a link), and a refusal because
    /// such faults opened its breaker or quarantined it. Not its answers to
    /// bad input, an input over the limit, a busy pool or an unloaded
    /// plugin: a client could send those on purpose to roll back a good
    /// candidate.
    pub fn is_version_fault(&self) -> bool {
        match self {
            Error::Linked { error, .. } => error.is_version_fault(),
            Error::LimitExceeded { what, .. } => *what == "output",
            _ => matches!(
                self,
                Error::Trap { .. } | Error::ModuleAbi { .. } | Error::Unavailable { .. }
            ),
        }
    }

    /// An [`Error::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::HostFailure`]: `context` says what the host was doing.
    pub(crate) fn host(
        context: &str,
        err: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::HostFailure {
            context: context.to_string(),
            source: err.into(),
        }
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(" and ")
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// One requested permission the grants do not cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The permission as the manifest wrote it (`net 127.0.0.1:22`).
    pub permission: String,
    /// The manifest's reason for asking, if it gave one.
    pub reason: Option<String>,
    /// Why it is not granted.
    pub why: String,
}
