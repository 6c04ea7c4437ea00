//! The effective permissions of a plugin: what its manifest asks for,
//! intersected with what the operator grants (see `Grants`), and why a
//! permission was refused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::FsMode;
use super::net::NetRule;
use super::origin::Origin;
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
    pub(crate) fn not_granted(
        kind: &str,
        spec: &dyn std::fmt::Display,
        reason: &Option<String>,
    ) -> Self {
        Refusal {
            permission: format!("{kind} {spec}"),
            reason: reason.clone(),
            why: not_granted(&format!("{kind}:{spec}")),
        }
    }
}

/// Why a permission with no covering grant is refused, and the grant that
/// would allow it.
pub(crate) fn not_granted(grant: &str) -> String {
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
