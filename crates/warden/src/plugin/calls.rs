//! The path of one call: admission (quarantine, breaker, unload), an
//! instance from the pool or a new one, the deadline, size checks, the
//! trap report, and the instance's return to the pool.

use super::*;
use tracing::Instrument;

/// The `Retry-After` hint while an operator holds a build: no restart is
/// scheduled, so this only spaces out clients' retries.
const HELD_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

impl Plugin {
    pub(super) async fn call(&self, op: Op<'_>, call_id: &CallId) -> Result<Out> {
        self.try_call(op, call_id)
            .await
            .unwrap_or_else(|_| Err(self.unloaded_error()))
    }

    /// Runs `op`; gives it back, not run, when the plugin is unloaded
    /// before the call could begin. A plugin that maps directories has its
    /// calls run on the host's file lane ([`crate::lane`]).
    pub(super) async fn try_call<'a>(
        &self,
        op: Op<'a>,
        call_id: &CallId,
    ) -> std::result::Result<Result<Out>, Op<'a>> {
        // The call's time starts here: on the lane, it includes the wait
        // for a lane worker.
        let started = Instant::now();
        let lane = match self.inner.maps_dirs {
            true => self.inner.core.file_lane(),
            false => None,
        };
        let Some(lane) = lane else {
            return self.try_call_here(op, call_id, started).await;
        };
        let op = match op.into_owned() {
            Ok(op) => op,
            Err(op) => return self.try_call_here(op, call_id, started).await,
        };
        let (plugin, id) = (self.clone(), call_id.clone());
        let call = async move { plugin.try_call_here(op, &id, started).await };
        crate::lane::run(&lane, call).await.unwrap_or_else(|| {
            Ok(Err(Error::Host(format!(
                "the call into plugin `{}` was stopped: the host is shutting down",
                self.inner.info.name
            ))))
        })
    }

    /// Runs `op` on this task. Refuses at once while quarantined or while
    /// the circuit breaker is open; counts the call, from `started`, in the
    /// metrics.
    async fn try_call_here<'a>(
        &self,
        op: Op<'a>,
        call_id: &CallId,
        started: Instant,
    ) -> std::result::Result<Result<Out>, Op<'a>> {
        let inner = &self.inner;
        if inner.unloaded.load(Ordering::SeqCst) {
            return Err(op);
        }
        let admit = match self.admit(started) {
            Ok(admit) => admit,
            Err(e) => {
                inner.stats.count_error(ErrorKind::Unavailable);
                return Ok(Err(e));
            }
        };
        // Dropped before it records (the caller gave up): a trial must not
        // leave the breaker half-open for good.
        let trial = TrialGuard {
            breaker: &inner.breaker,
            armed: admit == Admit::Trial,
        };
        let span = tracing::debug_span!(
            target: crate::SPAN_TARGET,
            "warden.call",
            plugin = %inner.info.name,
            version = %inner.info.version,
            call_id = %call_id,
        );
        // Without a subscriber for the span, the call's large future is not
        // moved into an `Instrumented` wrapper.
        let outcome = match span.is_disabled() {
            true => self.run_call(op, call_id).await,
            false => self.run_call(op, call_id).instrument(span).await,
        };
        let now = Instant::now();
        // Handed back unrun: it runs elsewhere and is counted there.
        let Ok(result) = &outcome else {
            return outcome;
        };
        trial.disarm();
        inner.stats.calls.fetch_add(1, Ordering::Relaxed);
        inner.stats.observe_latency(now - started);
        let failed = match result {
            Err(e) => {
                // Plugin errors were counted where they were made.
                if !matches!(e, Error::Plugin { .. }) {
                    inner.stats.count_error(ErrorKind::of(e));
                }
                // Busy is the host's pool, not a fault of the plugin; a
                // trial that could not run proves nothing either way.
                matches!(e, Error::Trap { .. })
                    || (admit == Admit::Trial && matches!(e, Error::Busy { .. }))
            }
            Ok(_) => false,
        };
        if let Some(state) = inner.breaker.record(admit, failed, now) {
            let info = &inner.info;
            tracing::warn!(plugin = %info.name, version = %info.version, ?state, "circuit breaker changed");
        }
        outcome
    }

    /// Whether a call may start now: not while quarantined or while the
    /// breaker is open.
    pub(super) fn admit(&self, now: Instant) -> Result<Admit> {
        let inner = &self.inner;
        let refuse = |reason, retry_after| Error::Unavailable {
            plugin: inner.info.name.clone(),
            version: inner.info.version.to_string(),
            reason,
            retry_after,
        };
        if self.held() {
            return Err(refuse(Unavailability::Held, HELD_RETRY_AFTER));
        }
        if self.state() == State::Quarantined {
            let until = lock(&inner.quarantined_until).unwrap_or(now);
            return Err(refuse(
                Unavailability::Quarantined,
                until.saturating_duration_since(now),
            ));
        }
        inner
            .breaker
            .admit(now)
            .map_err(|wait| refuse(Unavailability::CircuitOpen, wait))
    }

    pub(super) async fn run_call<'a>(
        &self,
        op: Op<'a>,
        call_id: &CallId,
    ) -> std::result::Result<Result<Out>, Op<'a>> {
        let inner = &self.inner;
        let limits = &inner.info.limits;
        // A free instance is the common case: take it without arming a timer.
        let _permit = match inner.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => match tokio::time::timeout(limits.max_wait, inner.permits.acquire()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_closed)) => return Err(op),
                Err(_) => {
                    self.audit(
                        Some(call_id),
                        AuditKind::InstanceCap,
                        format!("{} instances", limits.max_instances),
                        format!("call refused after waiting {:?}", limits.max_wait),
                    );
                    return Ok(Err(Error::Busy {
                        plugin: inner.info.name.clone(),
                        max_instances: limits.max_instances,
                        waited: limits.max_wait,
                    }));
                }
            },
        };
        // Queued before an unload began, served after it: refuse.
        if inner.unloaded.load(Ordering::SeqCst) {
            return Err(op);
        }
        let reused = match limits.instance_reuse {
            true => lock(&inner.pool).pop(),
            false => None,
        };
        let mut instance = match reused {
            Some(i) => i,
            // Boxed: the rare path would otherwise bloat every call's future,
            // which is moved on each call.
            None => match Box::pin(self.instantiate(call_id)).await {
                Ok(instance) => instance,
                Err(e) => return Ok(Err(e)),
            },
        };
        let deadline = instance.begin(call_id, inner.budget, &op);
        let outcome = instance.run(op, deadline).await;
        self.note_memory(&instance);
        if let Some(budget) = inner.budget.fuel {
            let burnt = budget
                .unwrap_or(u64::MAX)
                .saturating_sub(instance.fuel_left());
            inner.stats.fuel_used.fetch_add(burnt, Ordering::Relaxed);
        }
        Ok(match outcome {
            Some(Ok(out)) => {
                self.release(instance).await;
                Ok(out)
            }
            Some(Err(trap)) => Err(self.trap(&mut instance.store, &instance.scope, &trap)),
            None => Err(self.timeout_trap(&instance.scope)),
        })
    }

    /// Refuses an input or output over the plugin's limit (and audits it).
    pub(super) fn check_size(
        &self,
        what: &'static str,
        size: usize,
        call_id: &CallId,
    ) -> Result<()> {
        let limits = &self.inner.info.limits;
        let (max, kind) = match what {
            "input" => (limits.max_input_bytes, AuditKind::InputLimit),
            _ => (limits.max_output_bytes, AuditKind::OutputLimit),
        };
        let size = size as u64;
        if size <= max {
            return Ok(());
        }
        self.inner.stats.count_error(ErrorKind::Limit);
        self.audit(
            Some(call_id),
            kind,
            format!("{size} {what} bytes (limit {max})"),
            "call refused",
        );
        Err(Error::LimitExceeded {
            plugin: self.inner.info.name.clone(),
            what,
            size,
            max,
        })
    }

    pub(super) fn audit(
        &self,
        call_id: Option<&CallId>,
        kind: AuditKind,
        resource: String,
        action: impl Into<String>,
    ) {
        let info = &self.inner.info;
        self.inner.core.audit.record(AuditEntry::now(
            &info.name,
            &info.version.to_string(),
            call_id.map(CallId::to_string),
            kind,
            resource,
            action,
        ));
    }

    /// Puts an instance back after a good call, or shuts it down if the
    /// plugin is unloading. Per-call instances are simply dropped.
    pub(super) async fn release(&self, instance: Instance) {
        if !self.inner.info.limits.instance_reuse {
            return;
        }
        if instance.worn_out(&self.inner.info.limits) {
            self.recycle(instance);
            return;
        }
        self.return_to_pool(instance).await;
    }

    /// Puts `instance` back in the pool, or shuts it down when the plugin is
    /// unloading. Instances idle for longer than `limits.idle-instance-ms`
    /// (all but one) leave the pool then, shut down off the caller's path.
    async fn return_to_pool(&self, instance: Instance) {
        let (closing, expired) = {
            let mut pool = lock(&self.inner.pool);
            if pool.closed {
                (Some(instance), Vec::new())
            } else {
                pool.push(instance);
                (
                    None,
                    pool.expired(self.inner.info.limits.idle_instance_timeout),
                )
            }
        };
        if let Some(instance) = closing {
            Box::pin(self.shut_down(instance)).await;
        }
        if !expired.is_empty() {
            self.retire(expired, false);
        }
    }

    /// Shuts `instances` down on a task of their own; with `replenish`, then
    /// puts a new instance in an empty pool. Without an async runtime they
    /// are dropped at once.
    fn retire(&self, instances: Vec<Instance>, replenish: bool) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let plugin = self.clone();
        runtime.spawn(async move {
            for instance in instances {
                Box::pin(plugin.shut_down(instance)).await;
            }
            if replenish {
                plugin.replenish().await;
            }
        });
    }

    /// Retires a healthy instance that has served its calls or grown too
    /// large, and makes its successor off the caller's path: the instance's
    /// `shutdown` and the next instance's creation run on a task of their
    /// own, the successor under a pool permit like any instance.
    fn recycle(&self, instance: Instance) {
        self.inner
            .stats
            .instances_recycled
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            plugin = %self.inner.info.name,
            version = %self.inner.info.version,
            "recycling an instance"
        );
        self.retire(vec![instance], true);
    }

    /// Puts a new instance in an empty pool, when a permit is free (a busy
    /// plugin makes its own on its next call).
    async fn replenish(&self) {
        let inner = &self.inner;
        let Ok(_permit) = inner.permits.try_acquire() else {
            return;
        };
        if inner.unloaded.load(Ordering::SeqCst) || lock(&inner.pool).len() > 0 {
            return;
        }
        match Box::pin(self.instantiate(&CallId::next())).await {
            Ok(instance) => self.return_to_pool(instance).await,
            Err(e) => tracing::warn!(
                plugin = %inner.info.name,
                "making an instance to replace a recycled one: {e}"
            ),
        }
    }

    /// A new instance, `initialize`d with the plugin's config; creating and
    /// initializing it share one deadline.
    pub(super) async fn instantiate(&self, call_id: &CallId) -> Result<Instance> {
        let inner = &self.inner;
        let limits = &inner.info.limits;
        let reservation = lock(&inner.reservation)
            .clone()
            .ok_or_else(|| self.unloaded_error())?;
        let scope = CallScope::new(
            &inner.info.name,
            &inner.info.version.to_string(),
            inner.core.audit.clone(),
            limits.max_log_bytes,
            limits.max_events,
        );
        let budget = HostBudget::new(limits.transfer_bytes());
        let sandbox = new_sandbox(
            &ServiceContext {
                scope: scope.clone(),
                settings: &inner.core.services,
                config: inner.config.clone(),
                bus: inner.core.bus.clone(),
                shared_stores: inner.shared_stores.clone(),
                http: inner.http.clone(),
                data_dir: inner.data_dir.clone(),
                quotas: inner.quotas.clone(),
                kv_quota: limits.kv_bytes,
                budget,
                capability_calls: inner.capability_calls.clone(),
            },
            &inner.info.permissions,
        )?;
        let state = PluginState::new(sandbox, limits, inner.stats.memory_held.clone());
        let mut store = new_store(&inner.core.engine, state);
        // One host call may copy out of the guest what the budget has for
        // transfers, and no more: lifting values allocates host memory.
        store.set_hostcall_fuel(usize::try_from(limits.transfer_bytes()).unwrap_or(usize::MAX));
        // The guest's side of the same handles, with room for borrows.
        store.set_max_component_handles(2 * limits.max_resources as usize + 64);
        scope.begin(call_id.clone(), 0);
        let deadline = arm_deadline(&mut store, inner.budget);
        inner
            .stats
            .instances_created
            .fetch_add(1, Ordering::Relaxed);
        let created = tokio::time::timeout_at(
            last_resort(deadline),
            inner.pre.instantiate_async(&mut store),
        )
        .instrument(tracing::debug_span!(
            target: crate::SPAN_TARGET,
            "warden.instantiate",
            plugin = %inner.info.name,
        ))
        .await;
        scope.finish();
        let component = match created {
            Ok(Ok(component)) => component,
            // Not a trap, and not the plugin's memory: the host could not
            // provide an instance (the pool is exhausted, say). The plugin
            // is not at fault.
            Ok(Err(e))
                if e.downcast_ref::<wasmtime::Trap>().is_none()
                    && !store.data().limiter.memory_denied =>
            {
                return Err(Error::Host(format!(
                    "cannot create an instance of plugin `{}`: {e:#}",
                    inner.info.name
                )));
            }
            Ok(Err(trap)) => return Err(self.trap(&mut store, &scope, &trap)),
            Err(_) => return Err(self.timeout_trap(&scope)),
        };
        let mut instance = Instance::load(store, scope, &component, &inner.exports, reservation)
            .map_err(|e| Error::host("looking up the plugin's exports", e))?;
        let initialized = tokio::time::timeout_at(
            last_resort(deadline),
            instance.initialize(&inner.config_list),
        )
        .instrument(tracing::debug_span!(
            target: crate::SPAN_TARGET,
            "warden.init",
            plugin = %inner.info.name,
        ))
        .await;
        instance.scope.finish();
        self.note_memory(&instance);
        match initialized {
            Ok(Ok(Ok(()))) => Ok(instance),
            Ok(Ok(Err(e))) => Err(self.plugin_error(e)),
            Ok(Err(trap)) => Err(self.trap(&mut instance.store, &instance.scope, &trap)),
            Err(_) => Err(self.timeout_trap(&instance.scope)),
        }
    }

    pub(super) fn note_memory(&self, instance: &Instance) {
        self.inner
            .stats
            .peak_memory
            .fetch_max(instance.peak_memory(), Ordering::Relaxed);
    }

    /// The error for a call that ended in a trap; a call cut short by a
    /// failed linked call gets that failure instead (this plugin did not trap).
    pub(super) fn trap(
        &self,
        store: &mut Store<PluginState>,
        scope: &CallScope,
        err: &wasmtime::Error,
    ) -> Error {
        if let Some(linked) = store.data_mut().link_failure.take() {
            return linked;
        }
        let info = &self.inner.info;
        trap_error(
            &info.name,
            &info.limits,
            store.data().limiter.memory_denied,
            scope,
            err,
        )
    }

    pub(super) fn timeout_trap(&self, scope: &CallScope) -> Error {
        let info = &self.inner.info;
        timeout_trap(&info.name, &info.limits, scope)
    }
}

/// Abandons a half-open breaker's trial unless its outcome was recorded.
struct TrialGuard<'a> {
    breaker: &'a Breaker,
    armed: bool,
}

impl TrialGuard<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.breaker.abandon_trial(Instant::now());
        }
    }
}

pub(super) fn mismatch() -> Error {
    Error::Host("the guest answered a different call than the one made".into())
}
