//! The blocking facade: every `async` method of [`Warden`] that runs guest
//! code, for programs without an async runtime. Each runs the same future
//! on the host's small internal runtime and refuses to run inside another
//! runtime (`Error::BlockingInAsync`) instead of stalling it.

use std::path::Path;
use std::time::Duration;

use semver::Version;

use crate::error::Result;
use crate::events::Event;
use crate::manifest::Manifest;
use crate::plugin::Plugin;

use super::Warden;

impl Warden {
    /// Blocking form of [`Warden::load`].
    pub fn load_blocking(&self, path: impl AsRef<Path>) -> Result<Plugin> {
        self.core.block_on("load_blocking", self.load(path))
    }

    /// Blocking form of [`Warden::load_bytes`].
    pub fn load_bytes_blocking(
        &self,
        manifest: Manifest,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<Plugin> {
        self.core
            .block_on("load_bytes_blocking", self.load_bytes(manifest, bytes))
    }

    /// Blocking form of [`Warden::load_dir`].
    pub fn load_dir_blocking(&self, dir: impl AsRef<Path>) -> Result<Vec<Plugin>> {
        self.core.block_on("load_dir_blocking", self.load_dir(dir))
    }

    /// Blocking form of [`Warden::unload`].
    pub fn unload_blocking(&self, name: &str) -> Result<()> {
        self.core.block_on("unload_blocking", self.unload(name))
    }

    /// Blocking form of [`Warden::shutdown`].
    pub fn shutdown_blocking(&self) -> Result<()> {
        self.core.block_on("shutdown_blocking", async {
            self.shutdown().await;
            Ok(())
        })
    }

    /// Blocking form of [`Warden::settle_events`].
    pub fn settle_events_blocking(&self, timeout: Duration) -> Result<bool> {
        self.core.block_on("settle_events_blocking", async {
            Ok(self.settle_events(timeout).await)
        })
    }

    /// Blocking form of [`Warden::dispatch_event`].
    pub fn dispatch_event_blocking(&self, event: &Event) -> Result<Vec<(String, Result<()>)>> {
        self.core.block_on("dispatch_event_blocking", async {
            Ok(self.dispatch_event(event).await)
        })
    }

    /// Blocking form of [`Warden::deploy`].
    pub fn deploy_blocking(&self, path: impl AsRef<Path>) -> Result<Plugin> {
        self.core.block_on("deploy_blocking", self.deploy(path))
    }

    /// Blocking form of [`Warden::promote`].
    pub fn promote_blocking(&self, name: &str) -> Result<Version> {
        self.core.block_on("promote_blocking", self.promote(name))
    }

    /// Blocking form of [`Warden::rollback`].
    pub fn rollback_blocking(&self, name: &str) -> Result<Version> {
        self.core.block_on("rollback_blocking", self.rollback(name))
    }

    /// Blocking form of [`Warden::restore`].
    pub fn restore_blocking(&self) -> Result<Vec<(String, Result<()>)>> {
        self.core.block_on("restore_blocking", self.restore())
    }
}
