//! Operator grants, and the effective permissions of a plugin: what its
//! manifest asks for, intersected with what the operator allows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::net::NetRule;
use super::origin::Origin;
use super::{DenyRule, FsMode, Permissions, validate_env_name, validate_store_name};
use crate::error::{Error, Result};
use crate::fsutil::HeldDir;

/// What to do with a plugin that asks for something the operator did not
/// grant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantPolicy {
    /// Refuse to load it, naming every permission that was not granted.
    #[default]
    Refuse,
    /// Load it without those permissions (a read-write directory granted
    /// read-only is mapped read-only), and log and audit what was trimmed.
    Trim,
}

/// What the operator allows plugins to have. Nothing by default.
///
/// Grants are written as on the command line: `fs:ro:/srv/data`,
/// `fs:rw:./out`, `net:127.0.0.1:8080`, `net:listen:127.0.0.1:9000`,
/// `net:*.example.com:443`, `http:https://api.example.com`, `env:LANG`,
/// `env:APP_*`, `kv:STORE`, `link:PLUGIN`. Deny rules (`fs:PATH`, `net:RULE`) win over every grant and
/// every manifest.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    fs: Vec<(PathBuf, FsMode)>,
    net: Vec<NetRule>,
    http: Vec<Origin>,
    env: Vec<String>,
    kv: Vec<String>,
    links: Vec<String>,
    deny: Vec<DenyRule>,
    policy: GrantPolicy,
}

/// A directory mapped into a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsMount {
    /// The host directory, canonical.
    pub host: PathBuf,
    /// The directory itself, opened when it was checked: every instance
    /// maps this open directory, so replacing the path afterwards (with a
    /// symlink, say) changes nothing.
    #[serde(skip)]
    pub(crate) dir: Arc<HeldDir>,
    /// Where the guest sees it.
    pub guest: String,
    /// Read-only or read-write.
    pub mode: FsMode,
}

/// An environment variable a plugin sees. The value is never serialized:
/// it may be a secret.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    /// The name.
    pub name: String,
    /// The value.
    #[serde(skip)]
    pub value: String,
}

impl std::fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=<hidden>", self.name)
    }
}

/// What a plugin may actually reach: its request intersected with the grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EffectivePermissions {
    /// Directories mapped into the guest.
    pub fs: Vec<FsMount>,
    /// Outbound destinations and listen addresses.
    pub net: Vec<NetRule>,
    /// Destinations refused whatever `net` says (the manifest's and the
    /// operator's deny rules).
    pub deny_net: Vec<NetRule>,
    /// Outbound HTTP origins.
    pub http: Vec<Origin>,
    /// Environment variables.
    pub env: Vec<EnvVar>,
    /// Named key-value stores shared with other plugins.
    pub kv: Vec<String>,
    /// Imported interfaces served by other plugins: interface → provider
    /// (`name` or `name@range`).
    pub links: BTreeMap<String, String>,
    /// Requested permissions the plugin was loaded without (trim policy),
    /// each with why.
    pub trimmed: Vec<String>,
}

impl EffectivePermissions {
    /// One line per entry, as `warden inspect` shows them (environment
    /// values are not shown).
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .fs
            .iter()
            .map(|m| format!("fs {} {} -> {}", m.mode, m.host.display(), m.guest))
            .collect();
        lines.extend(self.net.iter().map(|r| format!("net {r}")));
        lines.extend(self.deny_net.iter().map(|r| format!("deny net:{r}")));
        lines.extend(self.http.iter().map(|o| format!("http {o}")));
        lines.extend(self.env.iter().map(|v| format!("env {}", v.name)));
        lines.extend(self.kv.iter().map(|k| format!("kv {k}")));
        lines.extend(
            self.links
                .iter()
                .map(|(interface, provider)| format!("link {interface} -> {provider}")),
        );
        lines.extend(self.trimmed.iter().map(|t| format!("trimmed: {t}")));
        lines
    }
}

pub use crate::error::Refusal;

impl Refusal {
    /// The link of `interface` to `link`'s provider, which no grant covers.
    pub(crate) fn link(interface: &str, link: &super::LinkPermission) -> Self {
        Refusal {
            permission: format!("link {interface} -> {}", link.plugin),
            reason: link.reason.clone(),
            why: not_granted(&format!("link:{}", link.provider_name())),
        }
    }

    /// `kind spec`, refused because no grant covers it.
    fn not_granted(kind: &str, spec: &dyn std::fmt::Display, reason: &Option<String>) -> Self {
        Refusal {
            permission: format!("{kind} {spec}"),
            reason: reason.clone(),
            why: not_granted(&format!("{kind}:{spec}")),
        }
    }
}

/// Why a permission with no covering grant is refused, and the grant that
/// would allow it.
fn not_granted(grant: &str) -> String {
    format!("not granted; the operator can allow it with `--grant {grant}`")
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.permission)?;
        if let Some(reason) = &self.reason {
            write!(f, " (asked for: {reason:?})")?;
        }
        write!(f, ": {}", self.why)
    }
}

impl Grants {
    /// No grants: plugins get no files, sockets, HTTP or environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a grant written as `fs:ro:PATH`, `fs:rw:PATH`, `net:RULE`,
    /// `http:ORIGIN`, `env:NAME` (a trailing `*` matches a prefix) or
    /// `kv:STORE` (`kv:*`: every shared store) or `link:PLUGIN` (plugins
    /// may import interfaces that `PLUGIN` exports; `link:*`: any plugin's).
    /// Relative paths are relative to the current directory.
    pub fn grant(mut self, spec: &str) -> Result<Self> {
        let bad = |m: String| Error::Host(format!("grant `{spec}`: {m}"));
        match spec.split_once(':') {
            Some(("fs", rest)) => {
                let (mode, path) = rest
                    .split_once(':')
                    .ok_or_else(|| bad("write `fs:ro:PATH` or `fs:rw:PATH`".into()))?;
                let mode = FsMode::parse(mode).map_err(bad)?;
                self.fs
                    .push((absolute(Path::new(path)).map_err(bad)?, mode));
            }
            Some(("net", rule)) => self.net.push(NetRule::parse(rule).map_err(bad)?),
            Some(("http", origin)) => self.http.push(Origin::parse(origin).map_err(bad)?),
            Some(("env", name)) => {
                validate_env_name(name, true).map_err(bad)?;
                self.env.push(name.to_string());
            }
            Some(("kv", name)) => {
                if name != "*" {
                    validate_store_name(name).map_err(bad)?;
                }
                self.kv.push(name.to_string());
            }
            Some(("link", name)) => {
                if name != "*" {
                    crate::names::validate_name(name).map_err(bad)?;
                }
                self.links.push(name.to_string());
            }
            _ => {
                return Err(bad(
                    "must start with `fs:`, `net:`, `http:`, `env:`, `kv:` or `link:`".into(),
                ));
            }
        }
        Ok(self)
    }

    /// Adds a deny rule written as `fs:PATH` or `net:RULE`; it wins over
    /// every grant and manifest.
    pub fn deny(mut self, spec: &str) -> Result<Self> {
        let rule = DenyRule::parse(spec).map_err(|m| Error::Host(format!("deny `{spec}`: {m}")))?;
        self.deny.push(match rule {
            DenyRule::Fs(path) => DenyRule::Fs(
                absolute(&path).map_err(|m| Error::Host(format!("deny `{spec}`: {m}")))?,
            ),
            net => net,
        });
        Ok(self)
    }

    /// Sets what happens to a plugin that asks for more than is granted.
    pub fn policy(mut self, policy: GrantPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The policy for ungranted requests.
    pub fn current_policy(&self) -> GrantPolicy {
        self.policy
    }

    /// Intersects `requested` (relative paths resolved against `base`) with
    /// these grants. Returns the effective set and what was refused; the
    /// caller applies the policy.
    pub(crate) fn apply(
        &self,
        requested: &Permissions,
        base: &Path,
    ) -> (EffectivePermissions, Vec<Refusal>) {
        let mut out = EffectivePermissions::default();
        let mut refused = Vec::new();
        let own_deny: Vec<DenyRule> = requested
            .deny
            .iter()
            .map(|d| match d {
                DenyRule::Fs(p) => DenyRule::Fs(canonical_or_absolute(&base.join(p))),
                net => net.clone(),
            })
            .collect();
        for req in &requested.fs {
            let permission = format!("fs {}:{} -> {}", req.mode, req.host.display(), req.guest);
            let refuse = |why: String| Refusal {
                permission: permission.clone(),
                reason: req.reason.clone(),
                why,
            };
            match self.mount(&base.join(&req.host), req.mode, &own_deny) {
                Ok(dir) => out.fs.push(FsMount {
                    host: dir.host().to_path_buf(),
                    dir,
                    guest: req.guest.clone(),
                    mode: req.mode,
                }),
                Err(MountRefused::Narrower(dir, why)) => {
                    refused.push(refuse(why));
                    if self.policy == GrantPolicy::Trim {
                        out.fs.push(FsMount {
                            host: dir.host().to_path_buf(),
                            dir,
                            guest: req.guest.clone(),
                            mode: FsMode::ReadOnly,
                        });
                    }
                }
                Err(MountRefused::No(why)) => refused.push(refuse(why)),
            }
        }
        let deny_net = |deny: &[DenyRule]| {
            deny.iter()
                .filter_map(|d| match d {
                    DenyRule::Net(rule) => Some(rule.clone()),
                    DenyRule::Fs(_) => None,
                })
                .collect::<Vec<_>>()
        };
        let operator_deny_net = deny_net(&self.deny);
        for req in &requested.net {
            let refusal = |why: String| Refusal {
                permission: format!("net {}", req.rule),
                reason: req.reason.clone(),
                why,
            };
            if let Some(deny) = operator_deny_net.iter().find(|d| d.covers(&req.rule)) {
                refused.push(refusal(format!(
                    "denied by the operator's rule `net:{deny}`"
                )));
            } else if self.net.iter().any(|g| g.covers(&req.rule)) {
                out.net.push(req.rule.clone());
            } else {
                refused.push(Refusal::not_granted("net", &req.rule, &req.reason));
            }
        }
        out.deny_net = deny_net(&own_deny);
        out.deny_net.extend(operator_deny_net);
        for req in &requested.http {
            if self.http.iter().any(|g| g.covers(&req.origin)) {
                out.http.push(req.origin.clone());
            } else {
                refused.push(Refusal::not_granted("http", &req.origin, &req.reason));
            }
        }
        for req in &requested.env {
            if let Some(value) = &req.value {
                out.env.push(EnvVar {
                    name: req.name.clone(),
                    value: value.clone(),
                });
            } else if self.env.iter().any(|g| env_covers(g, &req.name)) {
                // An unset variable is simply absent, as it is on the host.
                if let Ok(value) = std::env::var(&req.name) {
                    out.env.push(EnvVar {
                        name: req.name.clone(),
                        value,
                    });
                }
            } else {
                refused.push(Refusal::not_granted("env", &req.name, &req.reason));
            }
        }
        for req in &requested.kv {
            if self.kv.iter().any(|g| g == "*" || *g == req.name) {
                out.kv.push(req.name.clone());
            } else {
                refused.push(Refusal::not_granted("kv", &req.name, &req.reason));
            }
        }
        for (interface, req) in &requested.links {
            let provider = req.provider_name();
            if self.links.iter().any(|g| g == "*" || g == provider) {
                out.links.insert(interface.clone(), req.plugin.clone());
            } else {
                refused.push(Refusal::link(interface, req));
            }
        }
        if self.policy == GrantPolicy::Trim {
            out.trimmed = refused.iter().map(Refusal::to_string).collect();
        }
        (out, refused)
    }

    /// Opens one requested directory and checks where it really is against
    /// the deny rules and the fs grants. The path checked is read from the
    /// open directory, so what is checked is what gets mapped.
    fn mount(
        &self,
        host: &Path,
        mode: FsMode,
        own_deny: &[DenyRule],
    ) -> std::result::Result<Arc<HeldDir>, MountRefused> {
        let held = HeldDir::open(host).map_err(|e| {
            MountRefused::No(format!(
                "{}: {e}; create the directory first",
                host.display()
            ))
        })?;
        let held = Arc::new(held);
        let dir = held.host();
        for (rule, whose) in own_deny
            .iter()
            .map(|r| (r, "the plugin's own"))
            .chain(self.deny.iter().map(|r| (r, "the operator's")))
        {
            let DenyRule::Fs(denied) = rule else { continue };
            let denied = canonical_or_absolute(denied);
            if dir.starts_with(&denied) {
                return Err(MountRefused::No(format!(
                    "denied by {whose} rule `fs:{}`",
                    denied.display()
                )));
            }
            if denied.starts_with(dir) {
                return Err(MountRefused::No(format!(
                    "{whose} deny rule `fs:{}` lies inside this directory, and part of a mapped \
                     directory cannot be hidden; map a narrower directory",
                    denied.display()
                )));
            }
        }
        let granted = self
            .fs
            .iter()
            .filter(|(g, _)| dir.starts_with(canonical_or_absolute(g)))
            .map(|(_, m)| *m)
            .max();
        match granted {
            Some(m) if m >= mode => Ok(held),
            Some(_) => Err(MountRefused::Narrower(
                held.clone(),
                format!(
                    "granted read-only only; the operator can allow writing with `--grant fs:rw:{}`",
                    dir.display()
                ),
            )),
            None => Err(MountRefused::No(not_granted(&format!(
                "fs:{mode}:{}",
                dir.display()
            )))),
        }
    }
}

enum MountRefused {
    /// Not allowed at all.
    No(String),
    /// Allowed read-only where read-write was asked.
    Narrower(Arc<HeldDir>, String),
}

fn env_covers(grant: &str, name: &str) -> bool {
    match grant.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => grant == name,
    }
}

fn absolute(path: &Path) -> std::result::Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The canonical path if it exists (symlinks resolved), else the absolute one.
fn canonical_or_absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Permissions {
        toml::from_str(text).expect("permissions")
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let (eff, refused) = Grants::new().apply(
            &request(
                r#"net = ["127.0.0.1:22"]
env = ["HOME", { name = "MODE", value = "x" }]
http = [{ origin = "https://api.example.com", reason = "fetches rates" }]"#,
            ),
            Path::new("."),
        );
        assert!(eff.net.is_empty() && eff.http.is_empty());
        assert_eq!(eff.env.len(), 1, "fixed values need no grant");
        assert_eq!(refused.len(), 3);
        assert!(
            refused[1].to_string().contains("fetches rates"),
            "{}",
            refused[1]
        );
        assert!(refused[0].why.contains("--grant net:127.0.0.1:22"));
    }

    #[test]
    fn effective_set_is_the_intersection() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("in/secret")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("out")).expect("mkdir");
        let grants = Grants::new()
            .grant(&format!("fs:ro:{}", dir.path().display()))
            .and_then(|g| g.grant("net:127.0.0.0/8:*"))
            .and_then(|g| g.grant("env:WARDEN_GRANT_TEST_*"))
            .and_then(|g| g.deny("net:127.0.0.1:22"))
            .expect("grants");
        let req = request(
            r#"fs = ["ro:in", "rw:out"]
net = ["127.0.0.1:8080", "127.0.0.1:22", "10.0.0.1:80"]
env = ["WARDEN_GRANT_TEST_A"]"#,
        );
        let (eff, refused) = grants.apply(&req, dir.path());
        assert_eq!(eff.fs.len(), 1);
        assert_eq!(eff.fs[0].guest, "/in");
        assert_eq!(eff.net.len(), 1);
        let whys: Vec<String> = refused.iter().map(|r| r.to_string()).collect();
        assert_eq!(whys.len(), 3, "{whys:?}");
        assert!(whys[0].contains("read-only only"), "{whys:?}");
        assert!(whys[1].contains("denied by the operator"), "{whys:?}");

        let (trimmed, _) = grants
            .clone()
            .policy(GrantPolicy::Trim)
            .apply(&req, dir.path());
        assert_eq!(trimmed.fs.len(), 2);
        assert_eq!(
            trimmed.fs[1].mode,
            FsMode::ReadOnly,
            "downgraded, not dropped"
        );
        assert_eq!(trimmed.trimmed.len(), 3);

        let hide_part = request(
            r#"fs = ["ro:in"]
deny = ["fs:in/secret"]"#,
        );
        let (eff, refused) = grants.apply(&hide_part, dir.path());
        assert!(eff.fs.is_empty());
        assert!(
            refused[0].why.contains("cannot be hidden"),
            "{:?}",
            refused[0]
        );
    }

    #[test]
    fn links_need_a_grant_naming_the_provider() {
        let req = request(
            r#"[links]
"a:b/decoder@0.1.0" = { plugin = "decoder@^0.1", reason = "decodes" }
"a:b/other" = "other""#,
        );
        let (eff, refused) = Grants::new()
            .grant("link:decoder")
            .expect("grant")
            .apply(&req, Path::new("."));
        assert_eq!(
            eff.links.get("a:b/decoder@0.1.0").map(String::as_str),
            Some("decoder@^0.1")
        );
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].permission, "link a:b/other -> other");
        assert!(
            refused[0].why.contains("--grant link:other"),
            "{:?}",
            refused[0]
        );
        let (eff, refused) = Grants::new()
            .grant("link:*")
            .expect("grant")
            .apply(&req, Path::new("."));
        assert_eq!((eff.links.len(), refused.len()), (2, 0));
    }

    #[test]
    fn bad_grants_are_errors() {
        for bad in [
            "fs:/x",
            "fs:rx:/x",
            "net:nope",
            "http:ftp://x",
            "env:1X",
            "link:Bad_Name",
            "disk:/",
        ] {
            assert!(Grants::new().grant(bad).is_err(), "{bad}");
        }
        assert!(Grants::new().deny("net:*:*").is_ok());
        assert!(Grants::new().grant("link:*").is_ok());
    }
}
