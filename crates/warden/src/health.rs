//! Health: a monitor that checks every loaded version on an interval (a
//! `get-status` call with its own timeout, and the version's circuit
//! breaker), restarts a version that keeps failing, and quarantines one
//! that crash-loops: its calls are refused at once and restart attempts
//! back off exponentially (as Envoy backs off reloads), instead of burning
//! CPU on a plugin that cannot start.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::audit::{AuditEntry, AuditKind};
use crate::call::PluginStatus;
use crate::deploy::DeployAction;
use crate::error::{Error, Result};
use crate::lifecycle::State;
use crate::plugin::Plugin;
use crate::reload::first_line;
use crate::warden::Warden;

/// How the health monitor checks, restarts and quarantines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    /// How often every loaded version is checked.
    pub interval: Duration,
    /// How long one check may take before it counts as failed.
    pub timeout: Duration,
    /// Failed checks in a row before the version is restarted.
    pub failures_to_restart: u32,
    /// Restarts within `restart_window` after which the version is
    /// quarantined instead of restarted again.
    pub max_restarts: u32,
    /// The window restarts are counted over.
    pub restart_window: Duration,
    /// The first quarantine's wait before a restart attempt; each
    /// quarantine in a row doubles it.
    pub backoff_base: Duration,
    /// The longest wait between restart attempts.
    pub backoff_max: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            failures_to_restart: 3,
            max_restarts: 3,
            restart_window: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// What the health monitor has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HealthStats {
    /// Checks run.
    pub checks: u64,
    /// Checks that failed.
    pub failed_checks: u64,
    /// Restarts that succeeded.
    pub restarts: u64,
    /// Times a version was quarantined (including after a failed attempt
    /// to leave quarantine).
    pub quarantines: u64,
}

/// A running health monitor; dropping it stops the monitoring.
pub struct HealthMonitor {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Counters {
    checks: AtomicU64,
    failed_checks: AtomicU64,
    restarts: AtomicU64,
    quarantines: AtomicU64,
}

impl HealthMonitor {
    /// What the monitor has done so far.
    pub fn stats(&self) -> HealthStats {
        let c = &self.counters;
        HealthStats {
            checks: c.checks.load(Ordering::SeqCst),
            failed_checks: c.failed_checks.load(Ordering::SeqCst),
            restarts: c.restarts.load(Ordering::SeqCst),
            quarantines: c.quarantines.load(Ordering::SeqCst),
        }
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// What the monitor remembers of one version.
struct Record {
    failures: u32,
    restarts: VecDeque<Instant>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl Warden {
    /// Starts checking every loaded version's health every
    /// `settings.interval` on a thread of its own (see [`HealthSettings`]).
    /// A version that fails `failures_to_restart` checks in a row (its
    /// `get-status` says `failed`, traps or times out, or its circuit
    /// breaker is open) is restarted: a fresh build from its source
    /// replaces it, as a reload does. One restarted `max_restarts` times
    /// within `restart_window` is quarantined; restart attempts then wait
    /// `backoff_base`, doubling up to `backoff_max`.
    pub fn monitor(self: &Arc<Self>, settings: HealthSettings) -> Result<HealthMonitor> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let host: Weak<Warden> = Arc::downgrade(self);
        let (stopped, counted) = (stop.clone(), counters.clone());
        let thread = std::thread::Builder::new()
            .name("warden-health".into())
            .spawn(move || {
                let mut records = HashMap::new();
                loop {
                    let until = Instant::now() + settings.interval;
                    while Instant::now() < until {
                        if stopped.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(10).min(settings.interval));
                    }
                    let Some(host) = host.upgrade() else { return };
                    let checked = host.core.block_on("health check", async {
                        host.check_all(&settings, &mut records, &counted).await;
                        Ok(())
                    });
                    if let Err(e) = checked {
                        tracing::error!(error = %e, "health check round failed");
                    }
                }
            })
            .map_err(|e| Error::host("starting the health monitor", e))?;
        Ok(HealthMonitor {
            stop,
            counters,
            thread: Some(thread),
        })
    }

    async fn check_all(
        &self,
        settings: &HealthSettings,
        records: &mut HashMap<(String, semver::Version), Record>,
        counters: &Counters,
    ) {
        let loaded = self.registry.list();
        records.retain(|(name, version), _| {
            loaded
                .iter()
                .any(|p| p.name() == name && p.info().version == *version)
        });
        for plugin in loaded {
            let key = (plugin.name().to_string(), plugin.info().version.clone());
            let record = records.entry(key).or_insert_with(|| Record {
                failures: 0,
                restarts: VecDeque::new(),
                backoff: settings.backoff_base,
                retry_at: None,
            });
            self.check_one(&plugin, settings, record, counters).await;
        }
    }

    async fn check_one(
        &self,
        plugin: &Plugin,
        settings: &HealthSettings,
        record: &mut Record,
        counters: &Counters,
    ) {
        let now = Instant::now();
        if plugin.held() {
            return;
        }
        if plugin.state() == State::Quarantined {
            // A build quarantined before this monitor started carries its
            // own next attempt.
            let retry_at = record.retry_at.or(plugin.quarantined_until());
            if retry_at.is_some_and(|at| now >= at) {
                self.restart(plugin, "leaving quarantine", settings, record, counters)
                    .await;
            }
            return;
        }
        counters.checks.fetch_add(1, Ordering::SeqCst);
        let problem = match tokio::time::timeout(settings.timeout, plugin.status()).await {
            _ if plugin.breaker_open() => Some("its circuit breaker is open".to_string()),
            Ok(Ok(PluginStatus::Ready | PluginStatus::Degraded)) => None,
            Ok(Ok(status)) => Some(format!("get-status says {status:?}")),
            Ok(Err(e)) => Some(format!("get-status failed: {e}")),
            Err(_) => Some(format!(
                "get-status took longer than {:?}",
                settings.timeout
            )),
        };
        let Some(problem) = problem else {
            record.failures = 0;
            let settled = record
                .restarts
                .back()
                .is_none_or(|at| now.duration_since(*at) >= settings.restart_window);
            if settled {
                record.backoff = settings.backoff_base;
            }
            return;
        };
        counters.failed_checks.fetch_add(1, Ordering::SeqCst);
        record.failures += 1;
        tracing::warn!(plugin = %plugin.name(), version = %plugin.info().version, failures = record.failures, %problem, "health check failed");
        if record.failures < settings.failures_to_restart {
            return;
        }
        record.failures = 0;
        while record
            .restarts
            .front()
            .is_some_and(|at| now.duration_since(*at) >= settings.restart_window)
        {
            record.restarts.pop_front();
        }
        if record.restarts.len() >= settings.max_restarts as usize {
            let why = format!(
                "crash-looping: {} restarts within {:?}, still failing ({problem})",
                record.restarts.len(),
                settings.restart_window
            );
            self.quarantine_failing(plugin, why, settings, record, counters);
        } else if plugin.info().source.is_none() {
            // Nothing to restart it from; its breaker keeps refusing calls
            // while it fails.
            plugin.set_state(
                State::Errored,
                &format!("{problem}; loaded from bytes, so it cannot be restarted"),
            );
        } else {
            plugin.set_state(State::Errored, &problem);
            self.restart(plugin, &problem, settings, record, counters)
                .await;
        }
    }

    /// Replaces `plugin` with a fresh build of its source; quarantines it
    /// if that fails.
    async fn restart(
        &self,
        plugin: &Plugin,
        why: &str,
        settings: &HealthSettings,
        record: &mut Record,
        counters: &Counters,
    ) {
        let turn = self.turn(plugin.name());
        let _turn = turn.lock().await;
        // Replaced or unloaded while this waited for its turn: the new
        // build gets its own checks.
        if !self.registry.list().iter().any(|p| p.same_build(plugin)) {
            return;
        }
        // Held by an operator while this waited: it stays as it is.
        if plugin.held() {
            return;
        }
        // The old build retires in the background.
        match self.rebuild(plugin, true).await {
            Ok(_) => {
                record.restarts.push_back(Instant::now());
                record.retry_at = None;
                counters.restarts.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(plugin = %plugin.name(), version = %plugin.info().version, reason = why, "restarted");
            }
            Err(e) => {
                let why = format!("restart failed ({why}): {}", first_line(&e.to_string()));
                self.quarantine_failing(plugin, why, settings, record, counters);
            }
        }
    }

    fn quarantine_failing(
        &self,
        plugin: &Plugin,
        why: String,
        settings: &HealthSettings,
        record: &mut Record,
        counters: &Counters,
    ) {
        let wait = record.backoff;
        let retry_at = later(wait);
        record.retry_at = Some(retry_at);
        record.backoff = wait.saturating_mul(2).min(settings.backoff_max);
        counters.quarantines.fetch_add(1, Ordering::SeqCst);
        let version = plugin.info().version.to_string();
        let detail = format!("{why}; next restart attempt in {wait:?}");
        plugin.quarantine(retry_at, &detail);
        self.core.audit.record(AuditEntry::now(
            plugin.name(),
            &version,
            None,
            AuditKind::Quarantined,
            "health".to_string(),
            &detail,
        ));
        self.deploys
            .record(plugin.name(), DeployAction::Quarantine, &version, &detail);
    }
}

/// `wait` from now; a wait too long to represent is a year.
fn later(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}
