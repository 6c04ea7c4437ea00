//! A loaded plugin: its pool of instances and every call into it.
//!
//! Instances are created on demand up to `max-instances`, `initialize`d once
//! and reused (or, with `instance-reuse = false`, made fresh for each call).
//! Any trap discards the instance and its store: one bad call never poisons
//! the next.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio::sync::Semaphore;
use wasmtime::Store;

use crate::audit::{AuditEntry, AuditKind};
use crate::breaker::{Admit, Breaker};
use crate::budget::HostBudget;
use crate::call::{
    OptionDoc, PluginMetadata, PluginStatus, ProcessRequest, ProcessResponse, event_to_wit,
};
use crate::capabilities::ServiceContext;
use crate::capabilities::data::DataDir;
use crate::capabilities::links::{LinkCall, Returned};
use crate::contract::World;
use crate::contract::bindings::types;
use crate::core::{Core, Reservation};
use crate::error::{Error, Result, Unavailability};
use crate::events::Event;
use crate::instance::{
    Budget, HOST_CALL_GRACE, Instance, Op, Out, arm_deadline, last_resort, new_store,
};
use crate::lifecycle::{Lifecycle, State, Transition};
use crate::locks::lock;
use crate::metrics::{Counters, ErrorKind, VersionMetrics};
use crate::prepared::{ExportIndices, Prepared, code_bytes};
use crate::processing::ProcessCall;
use crate::sandbox::new_sandbox;
use crate::scope::{CallId, CallScope};
use crate::state::PluginState;
use crate::trap::{classify, timeout_trap, trap_error};

mod calls;
mod hold;
mod info;
mod pool;

use calls::mismatch;
pub use info::{PluginInfo, PluginStats};
use pool::Pool;

/// A loaded plugin. Cheap to clone; every clone is the same plugin. Calls
/// from many threads or tasks run in parallel, one instance each.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
}

struct Inner {
    /// Unique among the builds this process loads.
    id: u64,
    core: Arc<Core>,
    info: PluginInfo,
    /// `info.version` as every response carries it, formatted once.
    version_text: String,
    pre: wasmtime::component::InstancePre<PluginState>,
    exports: ExportIndices,
    budget: Budget,
    shared_stores: Arc<Vec<String>>,
    http: Arc<crate::capabilities::http::Outbound>,
    data_dir: Option<Arc<DataDir>>,
    /// Whether its instances map directories (its data directory or
    /// `permissions.fs`): its calls then run on the file lane.
    maps_dirs: bool,
    quotas: Arc<Vec<Arc<DataDir>>>,
    fingerprint: String,
    config: Arc<BTreeMap<String, String>>,
    config_list: Vec<types::KeyValue>,
    pool: Mutex<Pool>,
    permits: Arc<Semaphore>,
    supported_events: OnceLock<Vec<String>>,
    options: OnceLock<Option<Vec<OptionDoc>>>,
    unloaded: AtomicBool,
    /// Taken at unload; each instance holds a clone until it is dropped.
    reservation: Mutex<Option<Arc<Reservation>>>,
    stats: Counters,
    /// Calls into each capability, by slot.
    capability_calls: Arc<[AtomicU64]>,
    lifecycle: Lifecycle,
    breaker: Breaker,
    /// When a quarantined build may be tried again.
    quarantined_until: Mutex<Option<Instant>>,
    /// Quarantined by an operator: stays so until released.
    held: AtomicBool,
}

/// An id no other build this process loads has.
fn next_build_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = &self.inner.info;
        f.debug_struct("Plugin")
            .field("name", &info.name)
            .field("version", &info.version.to_string())
            .field("world", &info.world)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn new(core: Arc<Core>, p: Prepared, reservation: Reservation) -> Self {
        let config = Arc::new(p.config);
        let config_list = config
            .iter()
            .map(|(key, value)| types::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        let info = PluginInfo {
            name: p.manifest.name,
            version: p.manifest.version,
            description: p.manifest.description,
            world: p.manifest.world,
            contract: p.contract,
            subscribe: p.manifest.subscribe,
            sha256: p.sha256,
            size: p.size,
            code_bytes: code_bytes(&p.pre),
            path: p.path,
            source: p.origin,
            cache: p.cache,
            limits: p.limits,
            requested: p.manifest.permissions,
            permissions: p.permissions,
            data_dir: p.data_dir.as_ref().map(|d| d.host_path().to_path_buf()),
        };
        let budget = Budget {
            timeout: info.limits.timeout,
            fuel: core.host_limits.fuel_metering.then_some(info.limits.fuel),
        };
        let maps_dirs = p.data_dir.is_some() || !info.permissions.fs.is_empty();
        if maps_dirs {
            core.files.start();
        }
        let permits = Arc::new(Semaphore::new(info.limits.max_instances as usize));
        let shared_stores = Arc::new(info.permissions.kv.clone());
        let http = Arc::new(crate::capabilities::http::Outbound::new(
            info.permissions.http.clone(),
        ));
        let core_breaker = core.breaker;
        let capability_calls = crate::capabilities::call_counters(&core.services);
        Plugin {
            inner: Arc::new(Inner {
                id: next_build_id(),
                core,
                version_text: info.version.to_string(),
                info,
                pre: p.pre,
                exports: p.exports,
                budget,
                shared_stores,
                http,
                maps_dirs,
                data_dir: p.data_dir,
                quotas: Arc::new(p.quotas),
                fingerprint: p.fingerprint,
                config,
                config_list,
                pool: Mutex::new(Pool::default()),
                permits,
                supported_events: OnceLock::new(),
                options: OnceLock::new(),
                unloaded: AtomicBool::new(false),
                reservation: Mutex::new(Some(Arc::new(reservation))),
                stats: Counters::default(),
                capability_calls,
                lifecycle: Lifecycle::new(),
                breaker: Breaker::new(core_breaker),
                quarantined_until: Mutex::new(None),
                held: AtomicBool::new(false),
            }),
        }
    }

    /// What identifies the loaded component and manifest.
    pub(crate) fn fingerprint(&self) -> &str {
        &self.inner.fingerprint
    }

    /// Whether the plugin is unloaded or being unloaded (also once a reload
    /// has replaced it and its grace period is over): it takes no new calls.
    pub fn is_unloaded(&self) -> bool {
        self.inner.unloaded.load(Ordering::SeqCst)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.inner.info.name
    }

    /// What is known about the plugin without calling it.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// The plugin's call counters.
    pub fn stats(&self) -> PluginStats {
        let s = &self.inner.stats;
        PluginStats {
            calls: s.calls.load(Ordering::Relaxed),
            plugin_errors: s.errors_of(ErrorKind::Plugin),
            traps: s.errors_where(|k| matches!(k, ErrorKind::Trap(_))),
            busy: s.errors_of(ErrorKind::Busy),
            link_failures: s.errors_of(ErrorKind::Link),
            instances_created: s.instances_created.load(Ordering::Relaxed),
            instances_idle: lock(&self.inner.pool).len() as u64,
            instances_recycled: s.instances_recycled.load(Ordering::Relaxed),
            peak_memory: s.peak_memory.load(Ordering::Relaxed),
            memory_bytes: s.memory_held.load(Ordering::Relaxed),
        }
    }

    /// A snapshot of this version's metrics.
    pub fn metrics(&self) -> VersionMetrics {
        let inner = &self.inner;
        let s = &inner.stats;
        let max = u64::from(inner.info.limits.max_instances);
        let busy = match inner.permits.is_closed() {
            true => 0,
            false => max.saturating_sub(inner.permits.available_permits() as u64),
        };
        VersionMetrics {
            plugin: inner.info.name.clone(),
            version: inner.info.version.clone(),
            state: self.state(),
            breaker: inner.breaker.state(),
            calls: s.calls.load(Ordering::Relaxed),
            errors: s.errors(),
            latency: s.latency(),
            instances_created: s.instances_created.load(Ordering::Relaxed),
            instances_recycled: s.instances_recycled.load(Ordering::Relaxed),
            instances_busy: busy,
            instances_idle: lock(&inner.pool).len() as u64,
            peak_memory: s.peak_memory.load(Ordering::Relaxed),
            memory_bytes: s.memory_held.load(Ordering::Relaxed),
            code_bytes: inner.info.code_bytes,
            capability_calls: crate::capabilities::calls_by_name(
                &inner.core.services,
                &inner.capability_calls,
            ),
            fuel_used: inner
                .core
                .host_limits
                .fuel_metering
                .then(|| s.fuel_used.load(Ordering::Relaxed)),
        }
    }

    /// Where this build is in its life.
    pub fn state(&self) -> State {
        self.inner.lifecycle.get()
    }

    /// This build's recent state changes, oldest first.
    pub fn transitions(&self) -> Vec<Transition> {
        self.inner.lifecycle.transitions()
    }

    pub(crate) fn set_state(&self, to: State, reason: &str) {
        let info = &self.inner.info;
        self.inner
            .lifecycle
            .set(&info.name, &info.version.to_string(), to, reason);
    }

    /// When a quarantined build may be tried again.
    pub(crate) fn quarantined_until(&self) -> Option<Instant> {
        *lock(&self.inner.quarantined_until)
    }

    /// Refuses calls until `until` (the health monitor's next restart
    /// attempt), with `reason` in the transition log.
    pub(crate) fn quarantine(&self, until: Instant, reason: &str) {
        *lock(&self.inner.quarantined_until) = Some(until);
        self.set_state(State::Quarantined, reason);
    }

    /// Whether this build failed enough calls to open its breaker.
    pub(crate) fn breaker_open(&self) -> bool {
        self.inner.breaker.state() != crate::breaker::BreakerState::Closed
    }

    /// Runs `processor.process`.
    pub async fn process(&self, request: ProcessRequest) -> Result<ProcessResponse> {
        let (call, _) = request.into_call();
        self.process_call(call)
            .await
            .unwrap_or_else(|_| Err(self.unloaded_error()))
    }

    /// Runs `processor.process`, or gives the call back when the plugin
    /// was unloaded before the call began (so that it can go to the build
    /// that replaced this one).
    pub(crate) async fn process_call(
        &self,
        call: ProcessCall,
    ) -> std::result::Result<Result<ProcessResponse>, ProcessCall> {
        let call_id = call.call_id.clone();
        let checked = self
            .require(World::Processor, "process input")
            .and_then(|()| self.check_size("input", call.input.len(), &call_id));
        if let Err(e) = checked {
            return Ok(Err(e));
        }
        let out = match self.try_call(Op::Process(call), &call_id).await {
            Ok(out) => out,
            Err(Op::Process(call)) => return Err(call),
            Err(_) => return Ok(Err(mismatch())),
        };
        Ok(match out {
            Ok(Out::Process(Ok(r))) => {
                self.check_size("output", r.output.len(), &call_id)
                    .map(|()| {
                        let mut response = ProcessResponse::from(r);
                        response.version = self.inner.version_text.clone();
                        response
                    })
            }
            Ok(Out::Process(Err(e))) => Err(self.plugin_error(e)),
            Ok(_) => Err(mismatch()),
            Err(e) => Err(e),
        })
    }

    /// The options `process` understands, from `processor.describe-options`
    /// (asked once, then remembered). `None` for a plugin of contract
    /// 0.1.0, which has no such function.
    pub async fn describe_options(&self) -> Result<Option<Vec<OptionDoc>>> {
        self.require(World::Processor, "describe its options")?;
        if let Some(options) = self.inner.options.get() {
            return Ok(options.clone());
        }
        match self.call(Op::DescribeOptions, &CallId::next()).await? {
            Out::DescribeOptions(options) => Ok(self.inner.options.get_or_init(|| options).clone()),
            _ => Err(mismatch()),
        }
    }

    /// Serves a call another plugin made through a link: runs export
    /// `call.export` of this build. Gives the call back, not run, when this
    /// build was unloaded before it began (so that it can go to the build
    /// that replaced this one).
    pub(crate) async fn serve_link<'a>(
        &self,
        call: LinkCall<'a>,
    ) -> std::result::Result<Result<Returned>, LinkCall<'a>> {
        let call_id = call.caller.call_id.clone();
        let size = call.args.data_size();
        if let Err(e) = self.check_size("input", size, &call_id) {
            return Ok(Err(e));
        }
        match self.try_call(Op::Link(call), &call_id).await {
            Ok(Ok(Out::Link(returned))) => {
                let size = returned.data_size();
                Ok(self.check_size("output", size, &call_id).map(|()| returned))
            }
            Ok(Ok(_)) => Ok(Err(mismatch())),
            Ok(Err(e)) => Ok(Err(e)),
            Err(Op::Link(call)) => Err(call),
            Err(_) => Ok(Err(mismatch())),
        }
    }

    /// This build's id, unique among the builds this process loads.
    pub(crate) fn build_id(&self) -> u64 {
        self.inner.id
    }

    /// The compiled component of this build.
    pub(crate) fn component(&self) -> &wasmtime::component::Component {
        self.inner.pre.component()
    }

    /// Runs `processor.validate`.
    pub async fn validate(&self, input: impl Into<Vec<u8>>) -> Result<bool> {
        self.require(World::Processor, "validate input")?;
        let input = input.into();
        let call_id = CallId::next();
        self.check_size("input", input.len(), &call_id)?;
        match self.call(Op::Validate(input), &call_id).await? {
            Out::Validate(ok) => Ok(ok),
            _ => Err(mismatch()),
        }
    }

    /// Delivers `event` like [`Plugin::on_event`]; `None` when the plugin
    /// was unloaded before the delivery began (the event did not reach it).
    pub(crate) async fn deliver(&self, event: &Event) -> Option<Result<()>> {
        if let Err(e) = self.require(World::EventHandler, "handle events") {
            return Some(Err(e));
        }
        let call_id = CallId::next();
        if let Err(e) = self.check_size("input", event.payload.len(), &call_id) {
            return Some(Err(e));
        }
        let op = Op::OnEvent(event_to_wit(event), event.hops);
        Some(match self.try_call(op, &call_id).await.ok()? {
            Ok(Out::OnEvent(Ok(()))) => Ok(()),
            Ok(Out::OnEvent(Err(e))) => Err(self.plugin_error(e)),
            Ok(_) => Err(mismatch()),
            Err(e) => Err(e),
        })
    }

    /// Delivers `event` through `event-handler.on-event`.
    pub async fn on_event(&self, event: &Event) -> Result<()> {
        self.deliver(event)
            .await
            .unwrap_or_else(|| Err(self.unloaded_error()))
    }

    /// The event types the plugin subscribes to (asked once, then remembered).
    pub async fn supported_events(&self) -> Result<Vec<String>> {
        self.require(World::EventHandler, "handle events")?;
        if let Some(events) = self.inner.supported_events.get() {
            return Ok(events.clone());
        }
        match self.call(Op::SupportedEvents, &CallId::next()).await? {
            Out::SupportedEvents(events) => {
                Ok(self.inner.supported_events.get_or_init(|| events).clone())
            }
            _ => Err(mismatch()),
        }
    }

    /// The events the host's bus delivers to this plugin: its manifest's
    /// `subscribe`, or else what `supported-events` returns.
    pub async fn subscriptions(&self) -> Result<Vec<String>> {
        match &self.inner.info.subscribe {
            Some(patterns) => Ok(patterns.clone()),
            None => self.supported_events().await,
        }
    }

    /// Runs `plugin.get-metadata`.
    pub async fn metadata(&self) -> Result<PluginMetadata> {
        match self.call(Op::Metadata, &CallId::next()).await? {
            Out::Metadata(m) => Ok(m.into()),
            _ => Err(mismatch()),
        }
    }

    /// Runs `plugin.get-status`.
    pub async fn status(&self) -> Result<PluginStatus> {
        match self.call(Op::Status, &CallId::next()).await? {
            Out::Status(s) => Ok(s.into()),
            _ => Err(mismatch()),
        }
    }

    /// Blocking form of [`Plugin::process`].
    pub fn process_blocking(&self, request: ProcessRequest) -> Result<ProcessResponse> {
        self.inner
            .core
            .block_on("process_blocking", self.process(request))
    }

    /// Blocking form of [`Plugin::validate`].
    pub fn validate_blocking(&self, input: impl Into<Vec<u8>>) -> Result<bool> {
        self.inner
            .core
            .block_on("validate_blocking", self.validate(input))
    }

    /// Blocking form of [`Plugin::on_event`].
    pub fn on_event_blocking(&self, event: &Event) -> Result<()> {
        self.inner
            .core
            .block_on("on_event_blocking", self.on_event(event))
    }

    /// Blocking form of [`Plugin::metadata`].
    pub fn metadata_blocking(&self) -> Result<PluginMetadata> {
        self.inner
            .core
            .block_on("metadata_blocking", self.metadata())
    }

    /// Blocking form of [`Plugin::describe_options`].
    pub fn describe_options_blocking(&self) -> Result<Option<Vec<OptionDoc>>> {
        self.inner
            .core
            .block_on("describe_options_blocking", self.describe_options())
    }

    /// Blocking form of [`Plugin::status`].
    pub fn status_blocking(&self) -> Result<PluginStatus> {
        self.inner.core.block_on("status_blocking", self.status())
    }

    /// Creates the first instance (running `initialize`) so that a plugin
    /// that cannot start fails at load rather than on its first call.
    pub(crate) async fn warm_up(&self) -> Result<()> {
        self.set_state(State::Initializing, "creating the first instance");
        let instance = match self.instantiate(&CallId::next()).await {
            Ok(instance) => instance,
            Err(e) => {
                self.set_state(State::Errored, &e.to_string());
                return Err(e);
            }
        };
        if self.inner.info.limits.instance_reuse {
            lock(&self.inner.pool).push(instance);
        }
        if self.inner.info.world == World::EventHandler
            && let Err(e) = self.supported_events().await
        {
            self.set_state(State::Errored, &e.to_string());
            return Err(e);
        }
        self.set_state(State::Ready, "initialized");
        Ok(())
    }

    /// Stops new calls, waits for running ones (as long as a call may take),
    /// runs `shutdown` on every instance, and gives up the pool reservation
    /// (each instance still running keeps its share until it ends).
    pub(crate) async fn unload(&self) {
        let inner = &self.inner;
        if inner.unloaded.swap(true, Ordering::SeqCst) {
            return;
        }
        self.set_state(State::Draining, "unloading: running calls finish");
        let limits = &inner.info.limits;
        // A call may spend one deadline creating its instance and another running.
        let longest_call = limits
            .timeout
            .saturating_add(HOST_CALL_GRACE)
            .saturating_mul(2);
        let drained = tokio::time::timeout(
            longest_call,
            inner.permits.acquire_many(limits.max_instances),
        )
        .await;
        if drained.is_err() {
            tracing::warn!(plugin = %inner.info.name, "calls still running at unload; their instances shut down when they end");
        }
        let idle = {
            let mut pool = lock(&inner.pool);
            pool.closed = true;
            pool.drain()
        };
        for instance in idle {
            self.shut_down(instance).await;
        }
        inner.permits.close();
        inner.http.close();
        lock(&inner.reservation).take();
        self.set_state(State::Unloaded, "every instance shut down");
    }

    async fn shut_down(&self, mut instance: Instance) {
        let name = &self.inner.info.name;
        let deadline = instance.begin(&CallId::next(), self.inner.budget, &Op::Shutdown);
        match instance.run(Op::Shutdown, deadline).await {
            Some(Ok(Out::Shutdown(Err(e)))) => {
                let error = crate::error::PluginError::from(e);
                tracing::warn!(plugin = %name, %error, "shutdown returned an error");
            }
            Some(Ok(_)) => {}
            Some(Err(trap)) => {
                let memory_denied = instance.store.data().limiter.memory_denied;
                let cause = classify(&trap, memory_denied, &self.inner.info.limits);
                instance.scope.audit(
                    AuditKind::of_trap(cause.kind),
                    format!("shutdown: {}: {}", cause.kind, cause.line),
                    "instance discarded",
                );
            }
            None => instance.scope.audit(
                AuditKind::Timeout,
                format!("shutdown: deadline {:?}", self.inner.info.limits.timeout),
                "instance discarded",
            ),
        }
    }

    fn require(&self, world: World, operation: &str) -> Result<()> {
        let info = &self.inner.info;
        if info.world == world {
            Ok(())
        } else {
            Err(Error::Unsupported {
                plugin: info.name.clone(),
                world: info.world.to_string(),
                operation: operation.to_string(),
            })
        }
    }

    fn plugin_error(&self, e: types::PluginError) -> Error {
        self.inner.stats.count_error(ErrorKind::Plugin);
        Error::Plugin {
            plugin: self.inner.info.name.clone(),
            error: e.into(),
        }
    }

    /// Whether `other` is a handle to this very build.
    pub(crate) fn same_build(&self, other: &Plugin) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn unloaded_error(&self) -> Error {
        Error::NotFound {
            name: self.inner.info.name.clone(),
            loaded: Vec::new(),
        }
    }
}
