//! A record's grants: the most any version of its plugin may be granted on
//! any node. They only narrow: a node loads a version when its manifest
//! asks for nothing beyond them and the node's own grants allow what it
//! asks, so whoever writes a record can stop a plugin but never give it
//! more than a node's operator granted.

use std::path::{Path, PathBuf};

use warden::{AuditEntry, AuditKind, Grants, MANIFEST_FILE, Manifest, Permissions};

use crate::Inner;
use crate::desired::DesiredVersion;
use crate::error::{Error, Result};

/// The grants `specs` of `plugin`'s record, parsed.
pub(crate) fn parse_grants(plugin: &str, specs: &[String]) -> Result<Grants> {
    specs
        .iter()
        .try_fold(Grants::new(), |grants, spec| grants.grant(spec))
        .map_err(|e| Error::Record {
            plugin: plugin.to_string(),
            message: format!("its grants: {e}"),
        })
}

/// Checks a version of `plugin` that runs on this node: what it was loaded
/// asking for, not what a record or a file says now.
pub(crate) fn running_within(
    inner: &Inner,
    limit: &Grants,
    plugin: &str,
    version: &str,
) -> Result<()> {
    let running = inner.warden.get(&format!("{plugin}@{version}"))?;
    let info = running.info();
    let base = info
        .source
        .as_deref()
        .map_or_else(|| PathBuf::from("."), Manifest::dir_for);
    check(inner, limit, plugin, version, &info.requested, &base)
}

/// Checks a version fetched into `dir`, before it is loaded.
pub(crate) fn fetched_within(
    inner: &Inner,
    limit: Option<&Grants>,
    plugin: &str,
    version: &DesiredVersion,
    dir: &Path,
) -> Result<()> {
    let Some(limit) = limit else { return Ok(()) };
    let manifest = Manifest::parse(&version.manifest, &dir.join(MANIFEST_FILE))?;
    check(
        inner,
        limit,
        plugin,
        &version.version,
        &manifest.permissions,
        dir,
    )
}

/// What `requested` (relative paths against `base`) asks for beyond
/// `limit` is audited here as refused, and refuses the version.
fn check(
    inner: &Inner,
    limit: &Grants,
    plugin: &str,
    version: &str,
    requested: &Permissions,
    base: &Path,
) -> Result<()> {
    let refused = limit.refusals(requested, base);
    if refused.is_empty() {
        return Ok(());
    }
    for refusal in &refused {
        inner.warden.audit().record(AuditEntry::now(
            plugin,
            version,
            None,
            AuditKind::GrantRefused,
            refusal.to_string(),
            "not loaded: outside the cluster's grants",
        ));
    }
    Err(Error::OutsideGrants {
        plugin: plugin.to_string(),
        version: version.to_string(),
        refused: refused.iter().map(|r| r.to_string()).collect(),
    })
}
