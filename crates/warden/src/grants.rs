//! The operator's grants: what plugins may be given, written as on the
//! command line (`fs:ro:/srv/data`, `http:https://api.example.com`, ...),
//! and the effective permissions of a plugin, which its manifest asks for
//! and these grants allow.
//!
//! The sandbox's kinds (`fs`, `net`, `env`) are checked here; each
//! capability with grants of its own (`http`, `kv`, `link`) parses and
//! checks them itself (`capabilities::Grant`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::capabilities::Grant;
use crate::error::{Error, Result};
use crate::fsutil::HeldDir;
use crate::permissions::{
    DenyRule, EffectivePermissions, EnvVar, FsMode, FsMount, GrantPolicy, NetRule, Permissions,
    Refusal, not_granted, validate_env_name,
};

/// What the operator allows plugins to have. Nothing by default.
///
/// Grants are written as on the command line: `fs:ro:/srv/data`,
/// `fs:rw:./out`, `net:127.0.0.1:8080`, `net:listen:127.0.0.1:9000`,
/// `net:*.example.com:443`, `http:https://api.example.com`, `env:LANG`,
/// `env:APP_*`, `kv:STORE`, `link:PLUGIN`. Deny rules (`fs:PATH`, `net:RULE`) win over every grant and
/// every manifest.
pub struct Grants {
    fs: Vec<(PathBuf, FsMode)>,
    net: Vec<NetRule>,
    env: Vec<String>,
    /// The grants of each capability that has its own.
    capabilities: Vec<Box<dyn Grant>>,
    deny: Vec<DenyRule>,
    policy: GrantPolicy,
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            fs: Vec::new(),
            net: Vec::new(),
            env: Vec::new(),
            capabilities: crate::capabilities::grants(),
            deny: Vec::new(),
            policy: GrantPolicy::default(),
        }
    }
}

impl Clone for Grants {
    fn clone(&self) -> Self {
        Grants {
            fs: self.fs.clone(),
            net: self.net.clone(),
            env: self.env.clone(),
            capabilities: self.capabilities.iter().map(|g| g.boxed_clone()).collect(),
            deny: self.deny.clone(),
            policy: self.policy,
        }
    }
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Grants");
        d.field("fs", &self.fs)
            .field("net", &self.net)
            .field("env", &self.env);
        for grant in &self.capabilities {
            d.field(grant.prefix(), &grant.granted());
        }
        d.field("deny", &self.deny)
            .field("policy", &self.policy)
            .finish()
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
            Some(("env", name)) => {
                validate_env_name(name, true).map_err(bad)?;
                self.env.push(name.to_string());
            }
            Some((prefix, rest)) if self.capabilities.iter().any(|g| g.prefix() == prefix) => {
                if let Some(grant) = self.capabilities.iter_mut().find(|g| g.prefix() == prefix) {
                    grant.grant(rest).map_err(bad)?;
                }
            }
            _ => {
                let prefixes: Vec<String> = ["fs", "net", "env"]
                    .into_iter()
                    .chain(self.capabilities.iter().map(|g| g.prefix()))
                    .map(|p| format!("`{p}:`"))
                    .collect();
                return Err(bad(format!(
                    "must start with one of {}",
                    prefixes.join(", ")
                )));
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

    /// What `requested` (a manifest's permissions, relative paths resolved
    /// against `base`) asks for beyond these grants, whatever the policy:
    /// empty when every permission is covered. Lets a caller hold a plugin
    /// to narrower grants than the host's, as a cluster's desired state
    /// does.
    pub fn refusals(&self, requested: &Permissions, base: &Path) -> Vec<Refusal> {
        self.apply(requested, base).1
    }

    /// Intersects `requested` (relative paths resolved against `base`) with
    /// these grants: the sandbox's kinds here, each capability's by the
    /// capability. Returns the effective set and what was refused; the
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
        for grant in &self.capabilities {
            grant.apply(requested, &mut out, &mut refused);
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
        let http = refused
            .iter()
            .find(|r| r.permission.starts_with("http "))
            .expect("the http refusal");
        assert!(http.to_string().contains("fetches rates"), "{http}");
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
        let unknown = Grants::new().grant("disk:/").expect_err("unknown kind");
        for prefix in ["`fs:`", "`net:`", "`env:`", "`http:`", "`kv:`", "`link:`"] {
            assert!(
                unknown.to_string().contains(prefix),
                "the capabilities' kinds are listed too: {unknown}"
            );
        }
        assert!(Grants::new().deny("net:*:*").is_ok());
        assert!(Grants::new().grant("link:*").is_ok());
    }
}
