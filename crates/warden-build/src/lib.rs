//! # warden-build
//!
//! Builds Warden plugin sources into components ready to load: finds the
//! source's language (Rust, Python, JavaScript, Go, C), runs its toolchain
//! (installing it from PyPI or npm first when missing), checks the result
//! against the declared world, and places the `.wasm` and its
//! `plugin.toml` in an output directory. Also composes components
//! statically ([`compose`]).
//!
//! ```no_run
//! # fn main() -> warden_build::Result<()> {
//! let built = warden_build::build_plugin("plugins/text-transform".as_ref(), "dist".as_ref())?;
//! let host = warden::Warden::new()?;
//! host.load_blocking(&built.dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! The runtime (`warden`) does not depend on this crate: an application
//! that only runs plugins never compiles a toolchain's bindings generator.

#![warn(missing_docs)]

mod build;
pub mod compose;
mod error;

pub use build::*;
pub use error::{Error, Result};
