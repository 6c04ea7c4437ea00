//! Deployment state in the host's embedded database (`store.sqlite` in the
//! data directory, in memory without one): the versions of each deployed
//! plugin and where they were loaded from, the routing (stable version,
//! canary and its share), and the history of deploys, canaries,
//! promotions, rollbacks, restarts and quarantines.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use rusqlite::{Connection, params};
use semver::Version;

use crate::db::open_database;
use crate::error::{Error, Result};
use crate::locks::lock;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS deploy_versions (
        plugin TEXT NOT NULL, version TEXT NOT NULL, source TEXT NOT NULL,
        PRIMARY KEY (plugin, version)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS deploy_routing (
        plugin TEXT PRIMARY KEY, stable TEXT NOT NULL, candidate TEXT,
        basis_points INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS deploy_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, plugin TEXT NOT NULL, at TEXT NOT NULL,
        action TEXT NOT NULL, version TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS deploy_history_plugin ON deploy_history (plugin, id);";

/// What happened to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DeployAction {
    /// A version was loaded through the deploy API.
    Deploy,
    /// A canary was started or its share changed.
    Canary,
    /// The candidate became the stable version.
    Promote,
    /// The candidate was removed on request.
    Rollback,
    /// The candidate was removed because it did worse than stable.
    AutoRollback,
    /// A version was replaced by a new build of itself (hot reload).
    Reload,
    /// A failing version was restarted by the health monitor.
    Restart,
    /// A version was quarantined: crash-looping, or by an operator.
    Quarantine,
    /// An operator ended a version's quarantine.
    Release,
    /// A version or the whole plugin was unloaded.
    Unload,
}

impl DeployAction {
    /// The action's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployAction::Deploy => "deploy",
            DeployAction::Canary => "canary",
            DeployAction::Promote => "promote",
            DeployAction::Rollback => "rollback",
            DeployAction::AutoRollback => "auto-rollback",
            DeployAction::Reload => "reload",
            DeployAction::Restart => "restart",
            DeployAction::Quarantine => "quarantine",
            DeployAction::Release => "release",
            DeployAction::Unload => "unload",
        }
    }
}

/// One entry of a plugin's deployment history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// When it happened.
    #[serde(serialize_with = "crate::audit::rfc3339::serialize")]
    pub at: SystemTime,
    /// The plugin.
    pub plugin: String,
    /// What happened.
    pub action: DeployAction,
    /// The version it happened to.
    pub version: String,
    /// Details: the share of a canary, the reason of a rollback, ...
    pub detail: String,
}

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Saved {
    pub(crate) plugin: String,
    pub(crate) stable: Version,
    pub(crate) canary: Option<(Version, u32)>,
    pub(crate) versions: Vec<(Version, PathBuf)>,
}

pub(crate) struct DeployStore {
    conn: Mutex<Connection>,
}

impl DeployStore {
    pub(crate) fn open(data_dir: Option<&Path>) -> Result<Self> {
        let conn = open_database(data_dir, "the deployment store", SCHEMA).map_err(Error::Host)?;
        Ok(DeployStore {
            conn: Mutex::new(conn),
        })
    }

    /// Stores what `snapshot` returns for `plugin`, holding the store's
    /// lock while it is taken: `None` (the plugin is gone) forgets the
    /// plugin, `Some(None)` (not kept in the store) leaves it alone.
    pub(crate) fn save_latest(
        &self,
        plugin: &str,
        snapshot: impl FnOnce() -> Option<Option<Saved>>,
    ) -> Result<()> {
        let mut conn = lock(&self.conn);
        match snapshot() {
            Some(Some(saved)) => save(&mut conn, &saved),
            Some(None) => Ok(()),
            None => forget(&conn, plugin),
        }
    }

    /// Every stored deployment, by name, each read on its own: a row that
    /// does not parse (edited by hand, say) is an error for its plugin
    /// only, naming the value.
    pub(crate) fn saved(&self) -> Result<Vec<(String, Result<Saved>)>> {
        let conn = lock(&self.conn);
        let mut routing = conn
            .prepare("SELECT plugin, stable, candidate, basis_points FROM deploy_routing ORDER BY plugin")
            .map_err(failed)?;
        let rows = routing
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            })
            .map_err(failed)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(failed)?;
        let mut versions = conn
            .prepare("SELECT version, source FROM deploy_versions WHERE plugin = ?1")
            .map_err(failed)?;
        let mut out = Vec::new();
        for (plugin, stable, candidate, share) in rows {
            let stored = versions
                .query_map([&plugin], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(failed)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(failed)?;
            let read = || -> Result<Saved> {
                let mut parsed = Vec::new();
                for (version, source) in &stored {
                    parsed.push((stored_version(&plugin, version)?, PathBuf::from(source)));
                }
                parsed.sort();
                Ok(Saved {
                    plugin: plugin.clone(),
                    stable: stored_version(&plugin, &stable)?,
                    canary: match &candidate {
                        Some(v) => Some((stored_version(&plugin, v)?, share)),
                        None => None,
                    },
                    versions: parsed,
                })
            };
            let saved = read();
            out.push((plugin, saved));
        }
        Ok(out)
    }

    /// Appends to the history. A failure to write it is logged, not
    /// returned: the operation it records has happened.
    pub(crate) fn record(&self, plugin: &str, action: DeployAction, version: &str, detail: &str) {
        let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let written = lock(&self.conn).execute(
            "INSERT INTO deploy_history (plugin, at, action, version, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![plugin, at, action.as_str(), version, detail],
        );
        if let Err(e) = written {
            tracing::error!(plugin, action = action.as_str(), error = %e, "cannot record deployment history");
        }
        tracing::info!(
            plugin,
            action = action.as_str(),
            version,
            detail,
            "deployment"
        );
    }

    /// The last `limit` entries of `plugin`'s history, oldest first.
    pub(crate) fn history(&self, plugin: &str, limit: usize) -> Result<Vec<HistoryEntry>> {
        let conn = lock(&self.conn);
        let mut query = conn
            .prepare(
                "SELECT at, action, version, detail FROM deploy_history WHERE plugin = ?1 \
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(failed)?;
        let rows = query
            .query_map(params![plugin, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(failed)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(failed)?;
        let mut entries = Vec::new();
        for (at, action, version, detail) in rows.into_iter().rev() {
            entries.push(HistoryEntry {
                at: humantime::parse_rfc3339_weak(&at).map_err(|e| corrupt(plugin, &at, e))?,
                plugin: plugin.to_string(),
                action: serde_json::from_value(serde_json::Value::String(action.clone()))
                    .map_err(|e| corrupt(plugin, &action, e))?,
                version,
                detail,
            });
        }
        Ok(entries)
    }
}

/// Replaces what is stored of `saved.plugin` with `saved`.
fn save(conn: &mut Connection, saved: &Saved) -> Result<()> {
    let tx = conn.transaction().map_err(failed)?;
    tx.execute(
        "DELETE FROM deploy_versions WHERE plugin = ?1",
        [&saved.plugin],
    )
    .map_err(failed)?;
    for (version, source) in &saved.versions {
        tx.execute(
            "INSERT INTO deploy_versions (plugin, version, source) VALUES (?1, ?2, ?3)",
            params![saved.plugin, version.to_string(), source.to_string_lossy()],
        )
        .map_err(failed)?;
    }
    let (candidate, share) = match &saved.canary {
        Some((v, bp)) => (Some(v.to_string()), *bp),
        None => (None, 0),
    };
    tx.execute(
        "INSERT OR REPLACE INTO deploy_routing (plugin, stable, candidate, basis_points) \
         VALUES (?1, ?2, ?3, ?4)",
        params![saved.plugin, saved.stable.to_string(), candidate, share],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)
}

/// Forgets the deployment of `plugin` (its history stays).
fn forget(conn: &Connection, plugin: &str) -> Result<()> {
    for table in ["deploy_versions", "deploy_routing"] {
        conn.execute(&format!("DELETE FROM {table} WHERE plugin = ?1"), [plugin])
            .map_err(failed)?;
    }
    Ok(())
}

fn stored_version(plugin: &str, text: &str) -> Result<Version> {
    Version::parse(text).map_err(|e| corrupt(plugin, text, e))
}

fn corrupt(plugin: &str, value: &str, e: impl std::fmt::Display) -> Error {
    Error::Deploy {
        plugin: plugin.to_string(),
        message: format!(
            "the deployment store holds `{value}`, which cannot be read ({e}); \
             unload and deploy the plugin again"
        ),
    }
}

fn failed(e: rusqlite::Error) -> Error {
    Error::host("the deployment store", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_reads_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let saved = Saved {
            plugin: "p".into(),
            stable: Version::new(1, 0, 0),
            canary: Some((Version::new(1, 1, 0), 2500)),
            versions: vec![
                (Version::new(1, 0, 0), PathBuf::from("/a")),
                (Version::new(1, 1, 0), PathBuf::from("/b")),
            ],
        };
        {
            let store = DeployStore::open(Some(dir.path())).expect("open");
            store
                .save_latest("p", || Some(Some(saved.clone())))
                .expect("save");
            store.record("p", DeployAction::Deploy, "1.0.0", "");
            store.record("p", DeployAction::Canary, "1.1.0", "25%");
        }
        let store = DeployStore::open(Some(dir.path())).expect("reopen");
        let read = store.saved().expect("saved");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].1.as_ref().expect("parses"), &saved);
        let history = store.history("p", 10).expect("history");
        let actions: Vec<_> = history.iter().map(|h| h.action).collect();
        assert_eq!(actions, [DeployAction::Deploy, DeployAction::Canary]);
        assert_eq!(
            store.history("p", 1).expect("last")[0].action,
            DeployAction::Canary
        );
        store.save_latest("p", || None).expect("forget");
        assert!(store.saved().expect("saved").is_empty());
    }

    #[test]
    fn a_corrupt_row_fails_only_its_plugin() {
        let store = DeployStore::open(None).expect("open");
        for plugin in ["a", "b"] {
            let saved = Saved {
                plugin: plugin.into(),
                stable: Version::new(1, 0, 0),
                canary: None,
                versions: vec![(Version::new(1, 0, 0), PathBuf::from("/x"))],
            };
            store
                .save_latest(plugin, || Some(Some(saved)))
                .expect("save");
        }
        lock(&store.conn)
            .execute(
                "UPDATE deploy_routing SET stable = 'banana' WHERE plugin = 'a'",
                [],
            )
            .expect("corrupt");
        let read = store.saved().expect("saved");
        let err = read[0].1.as_ref().expect_err("a is corrupt").to_string();
        assert!(
            err.contains("banana") && err.contains("deploy the plugin again"),
            "{err}"
        );
        assert!(read[1].1.is_ok());
    }
}
