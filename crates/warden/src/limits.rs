//! Resource limits: the host's defaults, merged with what a plugin's
//! manifest asks for.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::manifest::ManifestLimits;

/// The effective limits of a plugin (or, on the builder, the host's defaults
/// for limits a manifest leaves unset).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Deadline of one call; the call is interrupted when it passes.
    pub timeout: Duration,
    /// Linear memory one instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Instances alive at once, i.e. the plugin's concurrent calls.
    pub max_instances: u32,
    /// Reuse instances across calls (`true`) or create one per call.
    pub instance_reuse: bool,
    /// Bytes the plugin may log per call (logging service + stdout/stderr).
    pub max_log_bytes: u64,
    /// Events the plugin may emit per call; more are dropped (and logged).
    pub max_events: u32,
    /// How long a call waits for a free instance before failing as busy.
    pub max_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(5),
            memory_bytes: 128 << 20,
            max_instances: 4,
            instance_reuse: true,
            max_log_bytes: 64 << 10,
            max_events: 1000,
            max_wait: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// Checks host-side limits (the builder's defaults), which no manifest
    /// parser has seen.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Host(format!("invalid default limits: {what}")));
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(3600) {
            return bad("`timeout` must be between 1 ms and 1 hour");
        }
        if self.max_wait > Duration::from_secs(3600) {
            return bad("`max_wait` must be at most 1 hour");
        }
        if self.max_instances == 0 || self.max_instances > 1024 {
            return bad("`max_instances` must be between 1 and 1024");
        }
        if self.memory_bytes < (1 << 20) {
            return bad("`memory_bytes` must be at least 1 MiB");
        }
        Ok(())
    }

    /// `self` (the host defaults) overridden by the manifest's `[limits]`,
    /// checked against the engine's memory ceiling.
    pub(crate) fn resolve(
        &self,
        requested: &ManifestLimits,
        memory_ceiling: usize,
        manifest_file: &Path,
    ) -> Result<Limits> {
        let memory_bytes = match requested.memory_mb {
            Some(mb) => usize::try_from(mb)
                .unwrap_or(usize::MAX)
                .saturating_mul(1 << 20),
            None => self.memory_bytes.min(memory_ceiling),
        };
        if memory_bytes > memory_ceiling {
            return Err(Error::Manifest {
                file: manifest_file.to_path_buf(),
                message: format!(
                    "key `limits.memory-mb`: {} MiB is more than this host allows per instance ({} MiB)",
                    memory_bytes >> 20,
                    memory_ceiling >> 20
                ),
            });
        }
        Ok(Limits {
            timeout: requested
                .timeout_ms
                .map_or(self.timeout, Duration::from_millis),
            memory_bytes,
            max_instances: requested.max_instances.unwrap_or(self.max_instances),
            instance_reuse: requested.instance_reuse.unwrap_or(self.instance_reuse),
            max_log_bytes: requested.max_log_bytes.unwrap_or(self.max_log_bytes),
            max_events: requested.max_events.unwrap_or(self.max_events),
            max_wait: self.max_wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_overrides_defaults_within_the_ceiling() {
        let requested = ManifestLimits {
            timeout_ms: Some(250),
            memory_mb: Some(32),
            ..Default::default()
        };
        let l = Limits::default()
            .resolve(&requested, 64 << 20, Path::new("p.toml"))
            .expect("fits");
        assert_eq!(l.timeout, Duration::from_millis(250));
        assert_eq!(l.memory_bytes, 32 << 20);
        assert_eq!(l.max_instances, Limits::default().max_instances);

        let too_big = ManifestLimits {
            memory_mb: Some(128),
            ..Default::default()
        };
        let err = Limits::default()
            .resolve(&too_big, 64 << 20, Path::new("p.toml"))
            .unwrap_err();
        assert!(err.to_string().contains("limits.memory-mb"), "{err}");
    }
}
