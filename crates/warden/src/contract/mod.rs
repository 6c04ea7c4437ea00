//! The plugin contract (package `warden:plugin`, in `wit/`) as the host
//! sees it: the generated bindings, the contract versions served side by
//! side, and the worlds a plugin can target.
//!
//! Adding a contract version is mechanical (the README's "Adding a contract
//! version" lists the steps): its WIT under `wit/<version>/`, its exports
//! in `bindings`, its interface table in [`ContractVersion`], and one
//! line per changed interface in `processing`.

pub(crate) mod bindings;
pub(crate) mod processing;
mod version;
mod world;

pub use version::{CONTRACT_PACKAGE, ContractVersion};
pub use world::World;
