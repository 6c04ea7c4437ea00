//! The facade's operator quarantine: take a build out of service by hand
//! (it refuses calls until released, and no restart brings it back), and
//! release it or a build the health monitor quarantined.

use semver::Version;

use crate::audit::{AuditEntry, AuditKind};
use crate::deploy::deploy_error;
use crate::deploy::state::DeployAction;
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;

use super::Warden;

impl Warden {
    /// Quarantines `target` (`name` for the serving version, or
    /// `name@version`): its calls are refused with
    /// [`Unavailability::Held`](crate::Unavailability::Held) until
    /// [`Warden::release`]; running calls finish. Recorded in the audit log
    /// and the plugin's deployment history with `reason`. Returns the
    /// version held.
    pub fn quarantine(&self, target: &str, reason: &str) -> Result<Version> {
        let plugin = self.get(target)?;
        let version = plugin.info().version.clone();
        let detail = format!("quarantined by an operator: {reason}");
        plugin.hold(&detail);
        // A rebuild that swapped in a new build meanwhile (a reload, a
        // restart) carried the hold over only if it copied it after this.
        if let Ok(now) = self.get(target)
            && !now.same_build(&plugin)
        {
            now.hold(&detail);
        }
        self.core.audit.record(AuditEntry::now(
            plugin.name(),
            &version.to_string(),
            None,
            AuditKind::Quarantined,
            "operator".to_string(),
            &detail,
        ));
        self.deploys.record(
            plugin.name(),
            DeployAction::Quarantine,
            &version.to_string(),
            &detail,
        );
        Ok(version)
    }

    /// Ends the quarantine of `target` (`name` or `name@version`), an
    /// operator's or the health monitor's: it takes calls again. Fails
    /// with [`Error::Deploy`] when it is not quarantined.
    pub fn release(&self, target: &str) -> Result<Version> {
        let plugin = self.get(target)?;
        let version = plugin.info().version.clone();
        if !plugin.end_quarantine("released by an operator") {
            return Err(deploy_error(
                plugin.name(),
                format!("version {version} is not quarantined; nothing to release"),
            ));
        }
        self.core.audit.record(AuditEntry::now(
            plugin.name(),
            &version.to_string(),
            None,
            AuditKind::Released,
            "operator".to_string(),
            "released by an operator: it takes calls again",
        ));
        self.deploys.record(
            plugin.name(),
            DeployAction::Release,
            &version.to_string(),
            "released by an operator",
        );
        Ok(version)
    }
}
