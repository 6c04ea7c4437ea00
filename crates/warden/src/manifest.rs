//! `plugin.toml`: the manifest that sits beside a plugin's `.wasm`.
//!
//! Parsing is strict: unknown keys and out-of-range values are rejected with
//! the file, the key and what is allowed, so a typo never silently changes
//! how a plugin runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::contract::World;
use crate::error::{Error, Result};
use crate::names::validate_name;
use crate::permissions::Permissions;

/// The file name Warden looks for in a plugin directory.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// A parsed and validated `plugin.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// The plugin's name: lowercase ASCII letters, digits and `-`.
    pub name: String,
    /// The plugin's version.
    pub version: semver::Version,
    /// One sentence saying what the plugin does.
    #[serde(default)]
    pub description: String,
    /// The contract world the component implements.
    pub world: World,
    /// The oldest Warden host this plugin runs on; an older host refuses
    /// to load it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_host_version: Option<semver::Version>,
    /// The component file, relative to the manifest (default `<name>.wasm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<PathBuf>,
    /// Values served to the plugin by `initialize` and `config.get-config`
    /// (defaults: the host may override them).
    #[serde(default, deserialize_with = "config_table")]
    pub config: BTreeMap<String, String>,
    /// Config keys the host must supply (or `[config]` default); the load
    /// fails when one is missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_config: Vec<String>,
    /// Event-handler plugins only: the events (`order.created`, `order.*`,
    /// `*`) the host's event bus delivers to the plugin. Unset: the types
    /// its `supported-events` returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<String>>,
    /// `true`: the plugin gets a private, persistent directory at `/data`
    /// (quota: `limits.data-mb`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_dir: bool,
    /// Resource limits requested by the plugin; unset ones take host defaults.
    #[serde(default)]
    pub limits: ManifestLimits,
    /// What the plugin asks to reach (files, network, HTTP, environment);
    /// it gets what the operator also grants.
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub permissions: Permissions,
    /// `[capabilities.<name>]`: what the plugin asks of each of the
    /// embedder's capabilities, read by that capability's check at load.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, toml::Value>,
}

/// The `[limits]` table of a manifest. Every field is optional; the host's
/// defaults fill the gaps (see [`crate::Limits`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManifestLimits {
    /// Wall-clock deadline of one call, in milliseconds (1..=600000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Linear memory per instance, in MiB (1..=4096).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Most instances alive at once, i.e. concurrent calls (1..=1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    /// `true` (default): keep instances and reuse them across calls.
    /// `false`: a fresh instance for every call, no state kept between calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_reuse: Option<bool>,
    /// Bytes a plugin may log (host logging plus stdout/stderr) per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_log_bytes: Option<u64>,
    /// Events a plugin may emit per call (0..=100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u32>,
    /// Largest input (or event payload) per call, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_bytes: Option<u64>,
    /// Largest output per call, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// Fuel per call: a deterministic CPU budget (needs a host with fuel
    /// metering on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// The quota of the plugin's data directory, in MiB (`data-dir = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_mb: Option<u64>,
    /// The wasm stack the plugin needs, in KiB. The stack is set host-wide;
    /// a plugin that needs more than the host gives is refused at load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_kb: Option<u64>,
    /// The quota of the plugin's own key-value namespace, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_mb: Option<u64>,
    /// Handles one instance may hold at once (16..=65536): streams,
    /// pollables, sockets, HTTP requests and header maps, open files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_resources: Option<u32>,
    /// Host memory one instance may make the host hold for it, in MiB
    /// (2..=16384): its handles' buffers and the transfers in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_memory_mb: Option<u64>,
    /// Retire a reused instance after this many calls (1..=1000000000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recycle_after_calls: Option<u64>,
    /// Retire a reused instance between calls once its memory passes this
    /// share of `memory-mb` (1..=100; default 75).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recycle_at_memory_percent: Option<u64>,
    /// How long an idle instance beyond the first is kept, in milliseconds
    /// (1..=86400000; default 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_instance_ms: Option<u64>,
}

impl Manifest {
    /// A manifest for a component that came without one: defaults
    /// everywhere; the loader sets the world from the component's exports.
    pub(crate) fn implicit(name: &str) -> Self {
        Manifest {
            name: name.to_string(),
            version: semver::Version::new(0, 0, 0),
            description: String::new(),
            world: World::Minimal,
            min_host_version: None,
            component: None,
            config: BTreeMap::new(),
            required_config: Vec::new(),
            subscribe: None,
            data_dir: false,
            limits: ManifestLimits::default(),
            permissions: Permissions::default(),
            capabilities: BTreeMap::new(),
        }
    }

    /// The manifest file of the plugin at `path`: `path/plugin.toml` for a
    /// directory, `path` itself for a `.toml`, and for a `.wasm` file the
    /// `plugin.toml` beside it (which may not exist, or name another file).
    pub fn file_for(path: &Path) -> PathBuf {
        if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else if path.extension().is_some_and(|e| e == "toml") {
            path.to_path_buf()
        } else {
            path.with_file_name(MANIFEST_FILE)
        }
    }

    /// The directory of the plugin at `path` (a directory, its
    /// `plugin.toml`, or its `.wasm`): where relative paths in its
    /// manifest start.
    pub fn dir_for(path: &Path) -> PathBuf {
        Self::file_for(path)
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }

    /// Reads and validates the manifest at `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::read(path).map(|(manifest, _)| manifest)
    }

    /// Reads and checks `path`; returns the manifest and the file's text,
    /// read once (what a signature covers is what was parsed).
    pub(crate) fn read(path: &Path) -> Result<(Self, String)> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Manifest {
                file: path.to_path_buf(),
                message: format!(
                    "not found; every plugin needs a {MANIFEST_FILE} beside its .wasm"
                ),
            },
            _ => Error::io(path, e),
        })?;
        Ok((Self::parse(&text, path)?, text))
    }

    /// Parses and validates manifest text; `file` is only used in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| Error::Manifest {
            file: file.to_path_buf(),
            message: describe_toml_error(text, &e),
        })?;
        manifest.validate().map_err(|message| Error::Manifest {
            file: file.to_path_buf(),
            message,
        })?;
        Ok(manifest)
    }

    /// The component file this manifest points at, resolved against `dir`.
    pub fn component_path(&self, dir: &Path) -> PathBuf {
        match &self.component {
            Some(p) => dir.join(p),
            None => dir.join(format!("{}.wasm", self.name)),
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        validate_name(&self.name).map_err(|m| format!("key `name`: {m}"))?;
        if let Some(needed) = &self.min_host_version {
            let host = host_version();
            if *needed > host {
                return Err(format!(
                    "key `min-host-version`: the plugin needs Warden {needed} or newer, and this \
                     host is {host}; upgrade the host or use a build of the plugin made for {host}"
                ));
            }
        }
        self.limits.validate()?;
        if let Some(patterns) = &self.subscribe {
            if self.world != World::EventHandler {
                return Err(format!(
                    "key `subscribe`: only event-handler plugins receive events, and this one's \
                     world is `{}`; remove the key or set `world = \"event-handler\"`",
                    self.world
                ));
            }
            for p in patterns {
                crate::events::validate_pattern(p).map_err(|m| format!("key `subscribe`: {m}"))?;
            }
        }
        if let Some(c) = &self.component {
            check_inside("component", c)?;
        }
        Ok(())
    }
}

impl ManifestLimits {
    /// Checks every value is within its range.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let l = self;
        check_range("limits.timeout-ms", l.timeout_ms, 1, 600_000)?;
        check_range("limits.memory-mb", l.memory_mb, 1, 4096)?;
        check_range(
            "limits.max-instances",
            l.max_instances.map(u64::from),
            1,
            1024,
        )?;
        check_range("limits.max-log-bytes", l.max_log_bytes, 0, 64 << 20)?;
        check_range("limits.max-events", l.max_events.map(u64::from), 0, 100_000)?;
        check_range("limits.fuel", l.fuel, 1, u64::MAX)?;
        check_range("limits.stack-kb", l.stack_kb, 16, 64 << 10)?;
        check_range("limits.data-mb", l.data_mb, 1, 1 << 20)?;
        check_range("limits.kv-mb", l.kv_mb, 1, 1 << 20)?;
        check_range(
            "limits.max-resources",
            l.max_resources.map(u64::from),
            16,
            65_536,
        )?;
        check_range("limits.host-memory-mb", l.host_memory_mb, 2, 16_384)?;
        check_range(
            "limits.recycle-after-calls",
            l.recycle_after_calls,
            1,
            1_000_000_000,
        )?;
        check_range(
            "limits.recycle-at-memory-percent",
            l.recycle_at_memory_percent,
            1,
            100,
        )?;
        check_range("limits.idle-instance-ms", l.idle_instance_ms, 1, 86_400_000)?;
        Ok(())
    }
}

/// Checks that `path`, the value of `key`, stays inside the plugin's
/// directory.
pub(crate) fn check_inside(key: &str, path: &Path) -> std::result::Result<(), String> {
    if path.is_absolute()
        || path
            .components()
            .any(|p| p == std::path::Component::ParentDir)
    {
        return Err(format!(
            "key `{key}`: `{}` must be a relative path inside the plugin directory",
            path.display()
        ));
    }
    Ok(())
}

/// This host's version, which manifests' `min-host-version` is checked against.
pub fn host_version() -> semver::Version {
    semver::Version::parse(env!("CARGO_PKG_VERSION"))
        .unwrap_or_else(|_| semver::Version::new(0, 0, 0))
}

fn check_range(
    key: &str,
    value: Option<u64>,
    min: u64,
    max: u64,
) -> std::result::Result<(), String> {
    match value {
        Some(v) if v < min || v > max => Err(format!(
            "key `{key}`: {v} is out of range; allowed {min} to {max}"
        )),
        _ => Ok(()),
    }
}

/// `[config]` values are strings; numbers and booleans are accepted and
/// turned into their text so that `port = 8080` works as expected.
fn config_table<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, toml::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "config `{k}` is a {}; config values must be strings, numbers or booleans",
                        other.type_str()
                    )));
                }
            };
            Ok((k, text))
        })
        .collect()
}

/// A TOML parse error in one line that quotes the offending line of
/// `text` and says what was expected.
pub fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            // The line itself names the key, which serde's message may not.
            match text.lines().nth(line - 1).map(str::trim) {
                Some(source) if !source.is_empty() && source.len() <= 120 => {
                    format!("line {line}, column {column} (`{source}`): {message}")
                }
                _ => format!("line {line}, column {column}: {message}"),
            }
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, Path::new("plugin.toml"))
    }

    const GOOD: &str = r#"
name = "text-transform"
version = "1.2.3"
description = "Transforms text"
world = "processor"
[config]
greeting = "hi"
port = 8080
[limits]
timeout-ms = 100
max-instances = 2
"#;

    #[test]
    fn min_host_version_is_checked() {
        let ok = parse(
            "name = \"p\"\nversion = \"1.0.0\"\nworld = \"processor\"\nmin-host-version = \"0.1.0\"\n",
        )
        .expect("this host is 0.1.0");
        assert_eq!(ok.min_host_version, Some(semver::Version::new(0, 1, 0)));
        let err = parse(
            "name = \"p\"\nversion = \"1.0.0\"\nworld = \"processor\"\nmin-host-version = \"99.0.0\"\n",
        )
        .expect_err("too new");
        let text = err.to_string();
        assert!(
            text.contains("min-host-version") && text.contains("99.0.0"),
            "{text}"
        );
    }

    #[test]
    fn parses_a_full_manifest() {
        let m = parse(GOOD).expect("valid manifest");
        assert_eq!(m.name, "text-transform");
        assert_eq!(m.version, semver::Version::new(1, 2, 3));
        assert_eq!(m.world, World::Processor);
        assert_eq!(m.config["port"], "8080");
        assert_eq!(m.limits.timeout_ms, Some(100));
        assert_eq!(
            m.component_path(Path::new("d")),
            Path::new("d/text-transform.wasm")
        );
    }

    #[test]
    fn unknown_key_names_the_key_and_the_line() {
        let err = parse(&GOOD.replace("max-instances", "max-instance"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("plugin.toml"), "{err}");
        assert!(err.contains("max-instance"), "{err}");
        assert!(err.contains("line 11"), "{err}");
        assert!(err.contains("max-instances"), "lists allowed keys: {err}");
    }

    #[test]
    fn bad_values_are_rejected_with_the_key() {
        let cases = [
            (GOOD.replace("\"1.2.3\"", "\"one\""), "version"),
            (
                GOOD.replace("\"processor\"", "\"transformer\""),
                "unknown world",
            ),
            (
                GOOD.replace("\"text-transform\"", "\"Text Transform\""),
                "`name`",
            ),
            (
                GOOD.replace("timeout-ms = 100", "timeout-ms = 0"),
                "limits.timeout-ms",
            ),
            (GOOD.replace("port = 8080", "port = [1]"), "config `port`"),
            (
                GOOD.replace("world = \"processor\"\n", ""),
                "missing field `world`",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(&text).expect_err(needle);
            assert!(matches!(err, Error::Manifest { .. }), "{err:?}");
            assert!(err.to_string().contains(needle), "`{needle}` not in: {err}");
        }
    }

    #[test]
    fn component_path_may_not_escape() {
        let err =
            parse(&format!("{GOOD}\n").replace("[config]", "component = \"../x.wasm\"\n[config]"))
                .unwrap_err();
        assert!(err.to_string().contains("key `component`"), "{err}");
    }
}
