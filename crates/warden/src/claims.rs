//! Who a plugin name belongs to. A name is what a plugin's configuration,
//! secrets, key-value namespace, data directory and audit share are filed
//! under, so a plugin that could load under another's name would get all of
//! them. The first plugin loaded from a directory under a name binds the
//! name to that directory (its *home*); a plugin from any other directory
//! asking for the name is refused, however it reached the host (a load, a
//! directory scan, the watcher), until the operator vouches for the new
//! directory by deploying from it ([`Claim::Vouch`]) or releases the name.
//! The bindings are kept in the host's data directory, so a restart does
//! not hand a name to whoever loads first.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, params};

use crate::db::open_database;
use crate::error::{Error, Result};
use crate::locks::lock;

/// How a load asks for its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The name must be free or already belong to this directory.
    Check,
    /// The operator vouches for the directory: it becomes one of the name's
    /// homes (a deployment of a new version from a directory of its own).
    Vouch,
}

/// The names claimed on this host and their homes.
pub(crate) struct NameClaims {
    conn: Mutex<Connection>,
}

impl NameClaims {
    /// The claims kept in `data_dir` (in memory without one).
    pub(crate) fn open(data_dir: Option<&Path>) -> Result<Self> {
        let conn = open_database(
            data_dir,
            "the plugin name claims",
            "CREATE TABLE IF NOT EXISTS name_homes (
                 name TEXT NOT NULL, home TEXT NOT NULL,
                 PRIMARY KEY (name, home)) WITHOUT ROWID;",
        )
        .map_err(Error::Host)?;
        Ok(NameClaims {
            conn: Mutex::new(conn),
        })
    }

    /// Lets the plugin from `home` (its canonical directory) have `name`,
    /// binding the name on its first claim; refuses a `Check` from a
    /// directory that is not one of the name's homes. Returns whether
    /// `home` is new to the name (for [`NameClaims::unbind`] if the load
    /// then fails).
    pub(crate) fn claim(&self, name: &str, home: &Path, how: Claim) -> Result<bool> {
        let conn = lock(&self.conn);
        let homes = homes_of(&conn, name)?;
        let home_text = home.to_string_lossy();
        if homes.iter().any(|h| h == home) {
            return Ok(false);
        }
        if !homes.is_empty() && how == Claim::Check {
            return Err(Error::NameClaimed {
                name: name.to_string(),
                claimant: home.to_path_buf(),
                homes,
            });
        }
        conn.execute(
            "INSERT OR IGNORE INTO name_homes (name, home) VALUES (?1, ?2)",
            params![name, home_text],
        )
        .map_err(|e| Error::host("recording a plugin name claim", e))?;
        Ok(true)
    }

    /// Takes back a home [`NameClaims::claim`] just added, for a load that
    /// failed.
    pub(crate) fn unbind(&self, name: &str, home: &Path) {
        let removed = lock(&self.conn).execute(
            "DELETE FROM name_homes WHERE name = ?1 AND home = ?2",
            params![name, home.to_string_lossy()],
        );
        if let Err(e) = removed {
            tracing::warn!(plugin = name, error = %e, "could not take back a name claim");
        }
    }

    /// Forgets every home of `name`: the next plugin to load under it binds
    /// it anew. Returns the homes it had.
    pub(crate) fn release(&self, name: &str) -> Result<Vec<PathBuf>> {
        let conn = lock(&self.conn);
        let homes = homes_of(&conn, name)?;
        conn.execute("DELETE FROM name_homes WHERE name = ?1", params![name])
            .map_err(|e| Error::host("releasing a plugin name", e))?;
        Ok(homes)
    }
}

fn homes_of(conn: &Connection, name: &str) -> Result<Vec<PathBuf>> {
    let read = || -> rusqlite::Result<Vec<PathBuf>> {
        let mut stmt =
            conn.prepare_cached("SELECT home FROM name_homes WHERE name = ?1 ORDER BY home")?;
        let rows = stmt.query_map(params![name], |r| r.get::<_, String>(0))?;
        rows.map(|r| r.map(PathBuf::from)).collect()
    };
    read().map_err(|e| Error::host("reading the plugin name claims", e))
}

/// The directory a plugin read from `manifest_file` lives in, canonical:
/// what its name is bound to.
pub(crate) fn home_of(manifest_file: &Path) -> Result<PathBuf> {
    let dir = manifest_file.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    dir.canonicalize().map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_stays_with_its_home_until_vouched_for_or_released() {
        let data = tempfile::tempdir().expect("tempdir");
        let (a, b) = (Path::new("/plugins/payments"), Path::new("/plugins/evil"));
        {
            let claims = NameClaims::open(Some(data.path())).expect("open");
            claims
                .claim("payments", a, Claim::Check)
                .expect("first claim binds");
            claims
                .claim("payments", a, Claim::Check)
                .expect("its home again");
            match claims.claim("payments", b, Claim::Check) {
                Err(Error::NameClaimed {
                    name,
                    claimant,
                    homes,
                }) => {
                    assert_eq!((name.as_str(), claimant.as_path()), ("payments", b));
                    assert_eq!(homes, [a]);
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        // Kept across a restart: whoever loads first after it is refused too.
        let claims = NameClaims::open(Some(data.path())).expect("reopen");
        assert!(claims.claim("payments", b, Claim::Check).is_err());
        claims
            .claim("payments", b, Claim::Vouch)
            .expect("the operator vouches");
        claims
            .claim("payments", b, Claim::Check)
            .expect("now a home");
        claims
            .claim("payments", a, Claim::Check)
            .expect("still a home");
        assert_eq!(claims.release("payments").expect("release").len(), 2);
        claims
            .claim("payments", b, Claim::Check)
            .expect("free again");
        assert!(claims.claim("payments", a, Claim::Check).is_err());
    }
}
