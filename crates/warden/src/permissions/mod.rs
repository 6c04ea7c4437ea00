//! Permissions. A plugin reaches nothing of the host unless its manifest's
//! `[permissions]` asks for it **and** the operator's grants (`Grants`)
//! allow it; the effective set is the intersection
//! ([`EffectivePermissions`]).
//!
//! Every entry may be a short string or a table carrying a human `reason`,
//! which is quoted when the operator refuses the permission.

mod effective;
mod link;
mod net;
mod origin;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use effective::not_granted;
pub use effective::{EffectivePermissions, EnvVar, FsMount, GrantPolicy, Refusal};
pub use link::LinkPermission;
pub use net::{HostPattern, NetRule, PortRange, is_internal};
pub use origin::Origin;

/// The `[permissions]` table of a manifest: what the plugin asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Host directories mapped into the guest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fs: Vec<FsPermission>,
    /// Outbound socket destinations and `listen:` addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<NetPermission>,
    /// Outbound HTTP origins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpPermission>,
    /// Host environment variables passed through, and fixed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvPermission>,
    /// Named key-value stores shared with other plugins (the plugin's own
    /// store needs no permission).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kv: Vec<KvPermission>,
    /// Interfaces the plugin imports from other loaded plugins: the
    /// interface (`namespace:package/interface@version`) and the plugin
    /// that serves it.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "link::links_table"
    )]
    pub links: BTreeMap<String, LinkPermission>,
    /// Paths and destinations the plugin must never reach, whatever else
    /// allows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<DenyRule>,
}

impl Permissions {
    /// One line per entry, as `warden inspect` shows them.
    pub fn describe(&self) -> Vec<String> {
        let why = |reason: &Option<String>| {
            reason
                .as_ref()
                .map_or_else(String::new, |r| format!("  ({r})"))
        };
        let mut lines: Vec<String> = self
            .fs
            .iter()
            .map(|p| {
                format!(
                    "fs {} {} -> {}{}",
                    p.mode,
                    p.host.display(),
                    p.guest,
                    why(&p.reason)
                )
            })
            .collect();
        lines.extend(
            self.net
                .iter()
                .map(|p| format!("net {}{}", p.rule, why(&p.reason))),
        );
        lines.extend(
            self.http
                .iter()
                .map(|p| format!("http {}{}", p.origin, why(&p.reason))),
        );
        lines.extend(self.env.iter().map(|p| match &p.value {
            Some(_) => format!("env {} (fixed value){}", p.name, why(&p.reason)),
            None => format!("env {}{}", p.name, why(&p.reason)),
        }));
        lines.extend(
            self.kv
                .iter()
                .map(|p| format!("kv {}{}", p.name, why(&p.reason))),
        );
        lines.extend(
            self.links.iter().map(|(interface, p)| {
                format!("link {interface} -> {}{}", p.plugin, why(&p.reason))
            }),
        );
        lines.extend(
            self.deny
                .iter()
                .map(|d| format!("deny {}", String::from(d.clone()))),
        );
        lines
    }

    /// Whether the plugin asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.fs.is_empty()
            && self.net.is_empty()
            && self.http.is_empty()
            && self.env.is_empty()
            && self.kv.is_empty()
            && self.links.is_empty()
            && self.deny.is_empty()
    }
}

/// Read-only or read-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FsMode {
    /// `ro`: list and read.
    #[serde(rename = "ro")]
    ReadOnly,
    /// `rw`: also create, write, rename and delete.
    #[serde(rename = "rw")]
    ReadWrite,
}

impl FsMode {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "ro" => Ok(FsMode::ReadOnly),
            "rw" => Ok(FsMode::ReadWrite),
            other => Err(format!("mode `{other}` is neither `ro` nor `rw`")),
        }
    }
}

impl std::fmt::Display for FsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsMode::ReadOnly => "ro",
            FsMode::ReadWrite => "rw",
        })
    }
}

/// A host directory mapped into the guest: `"ro:./data/in"`,
/// `"rw:./out:/out"`, or `{ host = "./data/in", guest = "/in", mode = "ro",
/// reason = "..." }`. Relative host paths are relative to the plugin's
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct FsPermission {
    /// The host directory.
    pub host: PathBuf,
    /// Where the guest sees it (absolute).
    pub guest: String,
    /// Read-only or read-write.
    pub mode: FsMode,
    /// Why the plugin needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An outbound destination or listen address: `"127.0.0.1:8080"`,
/// `"*.example.com:443"`, `"listen:127.0.0.1:9000"`, or `{ addr = "...",
/// reason = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct NetPermission {
    /// The destination.
    pub rule: NetRule,
    /// Why the plugin needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An outbound HTTP origin: `"https://api.example.com"` or `{ origin =
/// "...", reason = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct HttpPermission {
    /// The origin.
    pub origin: Origin,
    /// Why the plugin needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An environment variable: `"LANG"` passes the host's value through (if
/// granted); `{ name = "MODE", value = "fast" }` sets a fixed value (no
/// grant needed: it is not the host's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct EnvPermission {
    /// The variable's name.
    pub name: String,
    /// A fixed value; `None` passes the host's value through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why the plugin needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A named key-value store shared with other plugins: `"sessions"` or
/// `{ name = "sessions", reason = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct KvPermission {
    /// The store's name: 1-64 of `a-z`, `0-9`, `-`, `_`.
    pub name: String,
    /// Why the plugin needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TryFrom<toml::Value> for KvPermission {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        let entry = Entry::new(value, &["name", "reason"])?;
        let name = entry.main("name")?;
        validate_store_name(&name)?;
        Ok(KvPermission {
            name,
            reason: entry.reason()?,
        })
    }
}

/// Checks a shared store's name.
pub(crate) fn validate_store_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a store name (1-64 of a-z, 0-9, `-`, `_`)"
        ))
    }
}

/// A deny rule: `"fs:./data/in/secret"` or `"net:10.0.0.0/8:*"`. Deny rules
/// win over every allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "toml::Value", into = "String")]
pub enum DenyRule {
    /// A host path (and everything below it).
    Fs(PathBuf),
    /// Network destinations.
    Net(NetRule),
}

impl DenyRule {
    /// Parses `fs:PATH` or `net:RULE`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("fs", path)) if !path.is_empty() => Ok(DenyRule::Fs(PathBuf::from(path))),
            Some(("net", rule)) => NetRule::parse(rule).map(DenyRule::Net),
            _ => Err(format!(
                "deny rule `{text}` must start with `fs:` (a path) or `net:` (a destination)"
            )),
        }
    }
}

impl From<DenyRule> for String {
    fn from(rule: DenyRule) -> String {
        match rule {
            DenyRule::Fs(path) => format!("fs:{}", path.display()),
            DenyRule::Net(rule) => format!("net:{rule}"),
        }
    }
}

/// A permission entry: a string, or a table of strings with the listed keys.
struct Entry {
    short: Option<String>,
    fields: toml::Table,
}

impl Entry {
    fn new(value: toml::Value, keys: &[&str]) -> Result<Self, String> {
        match value {
            toml::Value::String(s) => Ok(Entry {
                short: Some(s),
                fields: toml::Table::new(),
            }),
            toml::Value::Table(fields) => {
                if let Some(unknown) = fields.keys().find(|k| !keys.contains(&k.as_str())) {
                    return Err(format!(
                        "unknown key `{unknown}`; allowed: {}",
                        keys.join(", ")
                    ));
                }
                Ok(Entry {
                    short: None,
                    fields,
                })
            }
            other => Err(format!(
                "expected a string or a table, found a {}",
                other.type_str()
            )),
        }
    }

    fn get(&self, key: &str) -> Result<Option<String>, String> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!(
                "`{key}` must be a string, not a {}",
                other.type_str()
            )),
        }
    }

    /// The short form, or the table's `key`.
    fn main(&self, key: &str) -> Result<String, String> {
        match &self.short {
            Some(s) => Ok(s.clone()),
            None => self.get(key)?.ok_or_else(|| format!("missing key `{key}`")),
        }
    }

    fn reason(&self) -> Result<Option<String>, String> {
        self.get("reason")
    }
}

impl TryFrom<toml::Value> for FsPermission {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        let entry = Entry::new(value, &["host", "guest", "mode", "reason"])?;
        let (mode, host, guest) = match &entry.short {
            Some(short) => {
                let (mode, rest) = short.split_once(':').ok_or_else(|| {
                    format!("fs `{short}`: write `ro:HOST[:GUEST]` or `rw:HOST[:GUEST]`")
                })?;
                let (host, guest) = match rest.split_once(':') {
                    Some((host, guest)) => (host.to_string(), Some(guest.to_string())),
                    None => (rest.to_string(), None),
                };
                (FsMode::parse(mode)?, host, guest)
            }
            None => (
                entry
                    .get("mode")?
                    .map_or(Ok(FsMode::ReadOnly), |m| FsMode::parse(&m))?,
                entry.main("host")?,
                entry.get("guest")?,
            ),
        };
        if host.is_empty() {
            return Err("fs: the host path is empty".into());
        }
        let guest = match guest {
            Some(g) => g,
            None => default_guest_path(Path::new(&host)),
        };
        validate_guest_path(&guest)?;
        Ok(FsPermission {
            host: PathBuf::from(host),
            guest,
            mode,
            reason: entry.reason()?,
        })
    }
}

/// `./data/in` is seen as `/data/in`; `/srv/x` as `/srv/x`.
fn default_guest_path(host: &Path) -> String {
    let parts: Vec<String> = host
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    format!("/{}", parts.join("/"))
}

fn validate_guest_path(guest: &str) -> Result<(), String> {
    let path = Path::new(guest);
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "guest path `{guest}` must be absolute and may not contain `..`"
        ));
    }
    Ok(())
}

impl TryFrom<toml::Value> for NetPermission {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        let entry = Entry::new(value, &["addr", "reason"])?;
        Ok(NetPermission {
            rule: NetRule::parse(&entry.main("addr")?)?,
            reason: entry.reason()?,
        })
    }
}

impl TryFrom<toml::Value> for HttpPermission {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        let entry = Entry::new(value, &["origin", "reason"])?;
        Ok(HttpPermission {
            origin: Origin::parse(&entry.main("origin")?)?,
            reason: entry.reason()?,
        })
    }
}

impl TryFrom<toml::Value> for EnvPermission {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        let entry = Entry::new(value, &["name", "value", "reason"])?;
        let name = entry.main("name")?;
        validate_env_name(&name, false)?;
        Ok(EnvPermission {
            name,
            value: entry.get("value")?,
            reason: entry.reason()?,
        })
    }
}

impl TryFrom<toml::Value> for DenyRule {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(s) => DenyRule::parse(&s),
            other => Err(format!(
                "a deny rule is a string such as \"fs:PATH\" or \"net:HOST:PORT\", not a {}",
                other.type_str()
            )),
        }
    }
}

/// Checks an environment variable name; grants may end it with `*`.
pub(crate) fn validate_env_name(name: &str, allow_star: bool) -> Result<(), String> {
    let stem = match name.strip_suffix('*') {
        Some(stem) if allow_star => stem,
        _ => name,
    };
    let ok = (!stem.is_empty() || name == "*")
        && !stem.starts_with(|c: char| c.is_ascii_digit())
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an environment variable name (letters, digits and `_`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Permissions, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_short_and_long_forms() {
        let p = parse(
            r#"
fs = ["ro:./data/in", { host = "./out", guest = "/out", mode = "rw", reason = "writes reports" }]
net = ["127.0.0.1:8080", { addr = "listen:127.0.0.1:9000", reason = "serves peers" }]
http = ["https://api.example.com"]
env = ["LANG", { name = "MODE", value = "fast" }]
deny = ["fs:./data/in/secret", "net:10.0.0.0/8:*"]
"#,
        )
        .expect("valid");
        assert_eq!(p.fs[0].guest, "/data/in");
        assert_eq!(p.fs[0].mode, FsMode::ReadOnly);
        assert_eq!(p.fs[1].reason.as_deref(), Some("writes reports"));
        assert!(p.net[1].rule.listen);
        assert_eq!(p.http[0].origin.port, 443);
        assert_eq!(p.env[1].value.as_deref(), Some("fast"));
        assert_eq!(p.deny.len(), 2);
        let links = parse(
            r#"[links]
"warden-example:image/decoder@0.1.0" = "image-decoder@^0.1"
"a:b/c" = { plugin = "c-provider", reason = "needs c" }
"#,
        )
        .expect("links");
        let decoder = &links.links["warden-example:image/decoder@0.1.0"];
        assert_eq!(decoder.plugin, "image-decoder@^0.1");
        assert_eq!(decoder.provider_name(), "image-decoder");
        assert_eq!(links.links["a:b/c"].reason.as_deref(), Some("needs c"));
    }

    #[test]
    fn rejects_bad_entries_with_the_reason() {
        let cases = [
            (r#"fs = ["./data"]"#, "ro:HOST"),
            (r#"fs = ["xx:./data"]"#, "neither"),
            (r#"fs = [{ host = "./d", guest = "rel" }]"#, "absolute"),
            (
                r#"fs = [{ host = "./d", writable = true }]"#,
                "unknown key `writable`",
            ),
            (r#"net = ["example.com"]"#, "no port"),
            (r#"http = ["https://x/path"]"#, "no path"),
            (r#"env = ["1BAD"]"#, "not an environment variable"),
            (r#"deny = ["disk:/x"]"#, "must start with"),
            (r#"sockets = []"#, "unknown field"),
            (
                r#"links = { "decoder" = "image-decoder" }"#,
                "not an interface name",
            ),
            (r#"links = { "a:b/c" = "Image" }"#, "link to `Image`"),
            (r#"links = { "a:b/c" = "image@banana" }"#, "semver range"),
            (
                r#"links = { "a:b/c" = { plugin = "x", why = "y" } }"#,
                "unknown key `why`",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "`{needle}` not in: {err}");
        }
    }
}
