//! Resource limits: the host's defaults and caps, merged with what a
//! plugin's manifest asks for.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::manifest::ManifestLimits;

/// The most random bytes a guest gets from one call of `wasi:random`.
pub(crate) const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// The effective limits of a plugin. On the builder, the same type gives the
/// host's defaults (for limits a manifest leaves unset) and the host's caps
/// (the most any manifest may ask for).
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
    /// Largest input (or event payload) a call may pass in, in bytes.
    pub max_input_bytes: u64,
    /// Largest output a call may return, in bytes.
    pub max_output_bytes: u64,
    /// Fuel (roughly, wasm instructions) one call may burn: a deterministic
    /// CPU limit. `None`: unmetered. Needs a host built with fuel metering.
    pub fuel: Option<u64>,
    /// How long a call waits for a free instance before failing as busy.
    pub max_wait: Duration,
    /// Bytes the plugin's data directory may hold (`data-dir = true`).
    pub data_bytes: u64,
    /// Bytes (keys and values) the plugin's own key-value namespace may hold.
    pub kv_bytes: u64,
    /// Handles (streams, pollables, sockets, HTTP requests and header maps,
    /// open files, lookups) one instance may hold at once in its resource
    /// table. Each may buffer up to [`HANDLE_BYTES`] on the host, set aside
    /// from [`Limits::host_memory_bytes`].
    pub max_resources: u32,
    /// Host memory one instance may make the host hold on its behalf: its
    /// handles' buffers, plus what is charged as it happens (outbound HTTP
    /// requests in flight); the same remainder bounds what one host call
    /// may copy out of the guest. Going past it traps the call
    /// (`host-resource-limit`).
    pub host_memory_bytes: u64,
    /// Retire a reused instance after it has served this many calls
    /// (`None`: never for that reason).
    pub recycle_after_calls: Option<u64>,
    /// Retire a reused instance, between calls, once its linear memory has
    /// grown past this share of [`Limits::memory_bytes`] (1..=100; 100:
    /// only the limit itself stops it): a runtime that grows call after
    /// call is replaced before a call runs out of memory.
    pub recycle_at_memory_percent: u8,
    /// How long an idle instance beyond the first stays in the pool before
    /// it is shut down and its memory given back.
    pub idle_instance_timeout: Duration,
}

/// What one handle may buffer on the host at most: a file or socket read
/// (64 KiB), an outbound request body (2 chunks of 16 KiB), a header map
/// (16 KiB).
pub const HANDLE_BYTES: u64 = 64 << 10;

/// The least host memory left for transfers once the handles' share is set
/// aside.
const MIN_TRANSFER_BYTES: u64 = 1 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(5),
            memory_bytes: 128 << 20,
            max_instances: 4,
            instance_reuse: true,
            max_log_bytes: 64 << 10,
            max_events: 1000,
            max_input_bytes: 16 << 20,
            max_output_bytes: 16 << 20,
            fuel: None,
            max_wait: Duration::from_secs(5),
            data_bytes: 64 << 20,
            kv_bytes: 64 << 20,
            max_resources: 256,
            host_memory_bytes: 64 << 20,
            recycle_after_calls: None,
            recycle_at_memory_percent: 75,
            idle_instance_timeout: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// The default caps: the most a manifest may ask for unless the host
    /// says otherwise (memory is further capped by the engine's pool).
    pub fn default_caps() -> Self {
        Limits {
            timeout: Duration::from_secs(600),
            memory_bytes: 4 << 30,
            max_instances: 1024,
            instance_reuse: true,
            max_log_bytes: 64 << 20,
            max_events: 100_000,
            max_input_bytes: 1 << 30,
            max_output_bytes: 1 << 30,
            fuel: None,
            max_wait: Duration::from_secs(3600),
            data_bytes: 16 << 30,
            kv_bytes: 16 << 30,
            max_resources: 16_384,
            host_memory_bytes: 4 << 30,
            recycle_after_calls: None,
            recycle_at_memory_percent: 100,
            idle_instance_timeout: Duration::from_secs(86_400),
        }
    }

    /// The host memory left for transfers (charged as they happen) once
    /// every handle's share is set aside; also the most one host call may
    /// copy out of the guest (wasmtime's hostcall fuel).
    pub fn transfer_bytes(&self) -> u64 {
        self.host_memory_bytes
            .saturating_sub(u64::from(self.max_resources) * HANDLE_BYTES)
    }

    /// Checks host-side limits (the builder's defaults or caps), which no
    /// manifest parser has seen.
    pub(crate) fn validate(&self, which: &str) -> Result<()> {
        let bad = |what: &str| Err(Error::Host(format!("invalid {which} limits: {what}")));
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
        if self.fuel == Some(0) {
            return bad("`fuel` must be more than 0 (or None)");
        }
        if self.max_resources < 16 {
            return bad("`max_resources` must be at least 16");
        }
        if self.transfer_bytes() < MIN_TRANSFER_BYTES {
            return bad(&format!(
                "`host_memory_bytes` must leave at least 1 MiB beside the {} KiB \
                 each of the `max_resources` handles may hold",
                HANDLE_BYTES >> 10
            ));
        }
        Ok(())
    }

    /// `self` (the host defaults) overridden by the manifest's `[limits]`;
    /// any value above `caps` is refused with the key and the cap.
    pub(crate) fn resolve(
        &self,
        requested: &ManifestLimits,
        caps: &Limits,
        host: &HostLimits,
        manifest_file: &Path,
    ) -> Result<Limits> {
        let refuse = |key: &str, message: String| Error::Manifest {
            file: manifest_file.to_path_buf(),
            message: format!("key `limits.{key}`: {message}"),
        };
        let capped = |key: &str, asked: Option<u64>, default: u64, cap: u64, unit: &str| match asked
        {
            Some(v) if v > cap => Err(refuse(
                key,
                format!("{v}{unit} is more than this host allows ({cap}{unit})"),
            )),
            Some(v) => Ok(v),
            None => Ok(default.min(cap)),
        };
        let memory_cap = caps.memory_bytes.min(host.memory_ceiling) as u64 >> 20;
        let memory_mb = capped(
            "memory-mb",
            requested.memory_mb,
            self.memory_bytes as u64 >> 20,
            memory_cap,
            " MiB",
        )?;
        let timeout_ms = capped(
            "timeout-ms",
            requested.timeout_ms,
            self.timeout.as_millis() as u64,
            caps.timeout.as_millis() as u64,
            " ms",
        )?;
        let fuel = match (requested.fuel.or(self.fuel), host.fuel_metering) {
            (Some(_), false) if requested.fuel.is_some() => {
                return Err(refuse(
                    "fuel",
                    "this host runs without fuel metering; enable it (`EngineConfig::fuel`, \
                     CLI `--fuel`) or remove the key"
                        .into(),
                ));
            }
            (Some(f), true) => Some(capped(
                "fuel",
                Some(f),
                f,
                caps.fuel.unwrap_or(u64::MAX),
                "",
            )?),
            _ => None,
        };
        if let Some(kb) = requested.stack_kb
            && kb.saturating_mul(1024) > host.max_wasm_stack as u64
        {
            return Err(refuse(
                "stack-kb",
                format!(
                    "{kb} KiB is more than this host's wasm stack ({} KiB, set host-wide)",
                    host.max_wasm_stack >> 10
                ),
            ));
        }
        let max_resources = capped(
            "max-resources",
            requested.max_resources.map(u64::from),
            self.max_resources.into(),
            caps.max_resources.into(),
            "",
        )? as u32;
        let host_memory_mb = capped(
            "host-memory-mb",
            requested.host_memory_mb,
            self.host_memory_bytes >> 20,
            caps.host_memory_bytes >> 20,
            " MiB",
        )?;
        let handles_mb = (u64::from(max_resources) * HANDLE_BYTES).div_ceil(1 << 20);
        if host_memory_mb < handles_mb + (MIN_TRANSFER_BYTES >> 20) {
            return Err(refuse(
                "host-memory-mb",
                format!(
                    "{host_memory_mb} MiB does not cover the {max_resources} handles of \
                     `limits.max-resources` ({} KiB each, {handles_mb} MiB) plus 1 MiB for \
                     transfers; raise it to at least {} or lower `limits.max-resources`",
                    HANDLE_BYTES >> 10,
                    handles_mb + (MIN_TRANSFER_BYTES >> 20)
                ),
            ));
        }
        Ok(Limits {
            max_resources,
            host_memory_bytes: host_memory_mb << 20,
            timeout: Duration::from_millis(timeout_ms),
            memory_bytes: usize::try_from(memory_mb << 20).unwrap_or(usize::MAX),
            max_instances: capped(
                "max-instances",
                requested.max_instances.map(u64::from),
                self.max_instances.into(),
                caps.max_instances.into(),
                "",
            )? as u32,
            instance_reuse: requested.instance_reuse.unwrap_or(self.instance_reuse),
            max_log_bytes: capped(
                "max-log-bytes",
                requested.max_log_bytes,
                self.max_log_bytes,
                caps.max_log_bytes,
                " bytes",
            )?,
            max_events: capped(
                "max-events",
                requested.max_events.map(u64::from),
                self.max_events.into(),
                caps.max_events.into(),
                "",
            )? as u32,
            max_input_bytes: capped(
                "max-input-bytes",
                requested.max_input_bytes,
                self.max_input_bytes,
                caps.max_input_bytes,
                " bytes",
            )?,
            max_output_bytes: capped(
                "max-output-bytes",
                requested.max_output_bytes,
                self.max_output_bytes,
                caps.max_output_bytes,
                " bytes",
            )?,
            fuel,
            max_wait: self.max_wait,
            data_bytes: capped(
                "data-mb",
                requested.data_mb,
                self.data_bytes >> 20,
                caps.data_bytes >> 20,
                " MiB",
            )? << 20,
            kv_bytes: match requested.kv_mb {
                Some(mb) => capped("kv-mb", Some(mb), 0, caps.kv_bytes >> 20, " MiB")? << 20,
                None => self.kv_bytes.min(caps.kv_bytes),
            },
            recycle_after_calls: requested.recycle_after_calls.or(self.recycle_after_calls),
            recycle_at_memory_percent: requested
                .recycle_at_memory_percent
                .map_or(self.recycle_at_memory_percent, |p| p.clamp(1, 100) as u8),
            idle_instance_timeout: requested
                .idle_instance_ms
                .map_or(self.idle_instance_timeout, Duration::from_millis),
        })
    }
}

impl Limits {
    /// Caps from an operator's `[limits]` table (in `warden.toml`): each
    /// key given replaces the default cap; the keys and units are those of
    /// a manifest's `[limits]`. `file` names the table's file in errors.
    pub fn caps_from(table: &ManifestLimits, file: &Path) -> Result<Limits> {
        let caps = Limits::default_caps();
        let unbounded = HostLimits {
            memory_ceiling: usize::MAX,
            max_wasm_stack: usize::MAX,
            fuel_metering: true,
        };
        caps.resolve(table, &caps, &unbounded, file)
    }
}

/// Limits that are fixed by the engine, not per plugin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostLimits {
    /// The largest memory the instance allocator can give.
    pub(crate) memory_ceiling: usize,
    /// The wasm stack every plugin gets.
    pub(crate) max_wasm_stack: usize,
    /// Whether the engine meters fuel.
    pub(crate) fuel_metering: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: HostLimits = HostLimits {
        memory_ceiling: 64 << 20,
        max_wasm_stack: 1 << 20,
        fuel_metering: false,
    };

    fn resolve(requested: ManifestLimits, host: &HostLimits) -> Result<Limits> {
        Limits::default().resolve(
            &requested,
            &Limits::default_caps(),
            host,
            Path::new("p.toml"),
        )
    }

    #[test]
    fn manifest_overrides_defaults_within_the_caps() {
        let l = resolve(
            ManifestLimits {
                timeout_ms: Some(250),
                memory_mb: Some(32),
                max_input_bytes: Some(10),
                ..Default::default()
            },
            &HOST,
        )
        .expect("fits");
        assert_eq!(l.timeout, Duration::from_millis(250));
        assert_eq!(l.memory_bytes, 32 << 20);
        assert_eq!(l.max_input_bytes, 10);
        assert_eq!(l.max_instances, Limits::default().max_instances);
        assert_eq!(l.fuel, None);
        let defaults = resolve(ManifestLimits::default(), &HOST).expect("defaults");
        assert_eq!(
            defaults.memory_bytes,
            64 << 20,
            "default clamped to the ceiling"
        );
    }

    #[test]
    fn requests_over_a_cap_name_the_key() {
        let cases = [
            (
                ManifestLimits {
                    memory_mb: Some(128),
                    ..Default::default()
                },
                "limits.memory-mb",
            ),
            (
                ManifestLimits {
                    fuel: Some(1000),
                    ..Default::default()
                },
                "without fuel metering",
            ),
            (
                ManifestLimits {
                    stack_kb: Some(2048),
                    ..Default::default()
                },
                "limits.stack-kb",
            ),
            (
                ManifestLimits {
                    timeout_ms: Some(700_000),
                    ..Default::default()
                },
                "limits.timeout-ms",
            ),
        ];
        for (requested, needle) in cases {
            let err = resolve(requested, &HOST).expect_err(needle).to_string();
            assert!(err.contains(needle), "`{needle}` not in {err}");
        }
        let metered = HostLimits {
            fuel_metering: true,
            ..HOST
        };
        let l = resolve(
            ManifestLimits {
                fuel: Some(1000),
                ..Default::default()
            },
            &metered,
        )
        .expect("fuel");
        assert_eq!(l.fuel, Some(1000));
    }
}
