//! One module per `warden` subcommand.

pub mod audit;
pub mod build;
pub mod call;
pub mod event;
pub mod inspect;
pub mod list;
