//! One module per `warden` subcommand.

pub mod audit;
pub mod build;
pub mod call;
pub mod cluster;
pub mod compose;
pub mod deploy;
pub mod event;
pub mod inspect;
pub mod list;
pub mod new;
pub mod oci;
pub mod serve;
pub mod sign;
pub mod status;
