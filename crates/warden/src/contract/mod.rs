//! The plugin contract (package `warden:plugin`, in `wit/`) as the host
//! sees it: the generated bindings, the contract versions served side by
//! side, and the worlds a plugin can target.
//!
//! Adding a contract version is mechanical (the README's "Adding a contract
//! version" lists the steps): its WIT under `wit/<version>/`, its exports
//! in `bindings`, its interface table in [`ContractVersion`], and one
//! line per changed interface in `processing`.

pub(crate) mod bindings;
pub(crate) mod standard;
mod version;
mod world;

pub use version::{CONTRACT_PACKAGE, ContractVersion};
pub use world::World;

/// The WIT files of the stable contract (0.1.0), by file name: what
/// `warden build` gives non-Rust toolchains when a plugin has no `wit/`
/// directory of its own, and what `warden new` writes into a new plugin.
pub const CONTRACT_WIT: [(&str, &str); 3] = [
    ("types.wit", include_str!("../../../../wit/types.wit")),
    ("host.wit", include_str!("../../../../wit/host.wit")),
    ("worlds.wit", include_str!("../../../../wit/worlds.wit")),
];

/// Writes [`CONTRACT_WIT`] into `dir`, creating it.
pub fn write_contract_wit(dir: &std::path::Path) -> crate::error::Result<()> {
    use crate::error::Error;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for (name, text) in CONTRACT_WIT {
        let path = dir.join(name);
        crate::fsutil::write_atomically(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}
