//! The runtime's integration tests, one module per area, in one binary so
//! that the suite links wasmtime once for them all.

mod batch;
mod cache;
mod capabilities;
mod compose;
mod config;
mod contract;
mod core_modules;
mod data;
mod dependencies;
mod deploy;
mod errors;
mod events;
mod health;
mod host_call_loops;
mod hostile;
mod http;
mod isolation;
mod languages;
mod links;
mod logging;
mod parsers;
mod plugins;
mod recycling;
mod reload;
mod signatures;
mod standard;
mod store;
