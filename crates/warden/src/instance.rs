//! One plugin instance: its store, its call scope, the typed handles to its
//! exports, and the calls made into it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use crate::call::OptionDoc;
use crate::capabilities::links::{LinkCall, Returned};
use crate::contract::bindings::{event_handler, plugin, types};
use crate::core::Reservation;
use crate::limits::Limits;
use crate::prepared::ExportIndices;
use crate::processing::{ProcessCall, Processing};
use crate::scope::{CallId, CallScope};
use crate::state::{Limiter, PluginState};

/// Extra time past a call's deadline before the host abandons the call even
/// if the guest is stuck in a host function, where epochs cannot interrupt it.
pub(crate) const HOST_CALL_GRACE: Duration = Duration::from_secs(1);

/// One live instance and the store that owns it.
pub(crate) struct Instance {
    pub(crate) store: Store<PluginState>,
    pub(crate) scope: Arc<CallScope>,
    /// The component instance itself, where linked calls find their export.
    component: wasmtime::component::Instance,
    plugin: plugin::Guest,
    processor: Option<Processing>,
    event_handler: Option<event_handler::Guest>,
    /// Its share of the pool reservation: the slot stays promised until the
    /// instance is gone, even if the plugin was unloaded meanwhile.
    _reservation: Arc<Reservation>,
    /// Calls begun on it.
    calls: u64,
}

/// One call into the guest; a linked call borrows its arguments from the
/// consumer's call.
pub(crate) enum Op<'a> {
    Process(ProcessCall),
    Validate(Vec<u8>),
    DescribeOptions,
    /// An event and its hop count (which the bindings' record lacks).
    OnEvent(types::Event, u32),
    Metadata,
    Status,
    SupportedEvents,
    Shutdown,
    /// A call another plugin made through a link.
    Link(LinkCall<'a>),
}

impl<'a> Op<'a> {
    /// This call with nothing borrowed, so that it can run on another task;
    /// a linked call borrows its caller's arguments and is handed back.
    pub(crate) fn into_owned(self) -> Result<Op<'static>, Op<'a>> {
        Ok(match self {
            Op::Process(call) => Op::Process(call),
            Op::Validate(input) => Op::Validate(input),
            Op::DescribeOptions => Op::DescribeOptions,
            Op::OnEvent(event, hops) => Op::OnEvent(event, hops),
            Op::Metadata => Op::Metadata,
            Op::Status => Op::Status,
            Op::SupportedEvents => Op::SupportedEvents,
            Op::Shutdown => Op::Shutdown,
            Op::Link(call) => return Err(Op::Link(call)),
        })
    }
}

/// What the guest returned for an [`Op`].
pub(crate) enum Out {
    Process(Result<types::ProcessResponse, types::PluginError>),
    Validate(bool),
    DescribeOptions(Option<Vec<OptionDoc>>),
    OnEvent(Result<(), types::PluginError>),
    Metadata(types::PluginMetadata),
    Status(types::PluginStatus),
    SupportedEvents(Vec<String>),
    Shutdown(Result<(), types::PluginError>),
    Link(Returned),
}

/// Store data with a memory limiter and a call deadline: a component
/// instance's [`PluginState`] or a core module's state.
pub(crate) trait Guarded: Send + 'static {
    fn limiter(&mut self) -> &mut Limiter;
    fn deadline(&self) -> Instant;
    fn set_deadline(&mut self, deadline: Instant);
}

impl Guarded for PluginState {
    fn limiter(&mut self) -> &mut Limiter {
        &mut self.limiter
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
    fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }
}

/// A store for a new instance, with its limiter and the deadline policy: at
/// every epoch tick the guest yields to the async runtime (so a busy plugin
/// never starves other tasks on its thread) until the deadline in the store
/// has passed; then it is interrupted.
pub(crate) fn new_store<S: Guarded>(engine: &wasmtime::Engine, state: S) -> Store<S> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| s.limiter());
    store.epoch_deadline_callback(|ctx| {
        Ok(if Instant::now() >= ctx.data().deadline() {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store
}

/// The budget of one call: its deadline and, on a fuel-metering engine,
/// its fuel (`None` there: unmetered).
#[derive(Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) timeout: Duration,
    pub(crate) fuel: Option<Option<u64>>,
}

impl Budget {
    /// This budget, ending no later than `deadline`.
    fn until(self, deadline: Instant) -> Budget {
        Budget {
            timeout: self
                .timeout
                .min(deadline.saturating_duration_since(Instant::now())),
            ..self
        }
    }
}

/// Sets the deadline (and fuel) of what runs next in `store`; returns the
/// deadline.
pub(crate) fn arm_deadline<S: Guarded>(store: &mut Store<S>, budget: Budget) -> Instant {
    let deadline = Instant::now() + budget.timeout;
    let state = store.data_mut();
    state.set_deadline(deadline);
    state.limiter().memory_denied = false;
    store.set_epoch_deadline(1);
    if let Some(fuel) = budget.fuel {
        // Only fails on an engine without metering, which `fuel` rules out.
        let _ = store.set_fuel(fuel.unwrap_or(u64::MAX));
    }
    deadline
}

/// When the host abandons a call that its deadline did not stop.
pub(crate) fn last_resort(deadline: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(deadline + HOST_CALL_GRACE)
}

impl Instance {
    /// Looks up the exports of a freshly instantiated component.
    pub(crate) fn load(
        mut store: Store<PluginState>,
        scope: Arc<CallScope>,
        instance: &wasmtime::component::Instance,
        exports: &ExportIndices,
        reservation: Arc<Reservation>,
    ) -> wasmtime::Result<Self> {
        let plugin = exports.plugin.load(&mut store, instance)?;
        let processor = exports
            .processor
            .as_ref()
            .map(|i| i.load(&mut store, instance))
            .transpose()?;
        let event_handler = exports
            .event_handler
            .as_ref()
            .map(|i| i.load(&mut store, instance))
            .transpose()?;
        Ok(Instance {
            store,
            scope,
            component: *instance,
            plugin,
            processor,
            event_handler,
            _reservation: reservation,
            calls: 0,
        })
    }

    /// Prepares the instance for a call and returns the call's deadline.
    /// A linked call keeps its caller's hop count and ends by its caller's
    /// deadline.
    pub(crate) fn begin(&mut self, call_id: &CallId, budget: Budget, op: &Op<'_>) -> Instant {
        let (emit_hops, budget) = match op {
            Op::OnEvent(_, hops) => (hops.saturating_add(1), budget),
            Op::Link(call) => (call.caller.hops, budget.until(call.caller.deadline)),
            _ => (0, budget),
        };
        self.scope.begin(call_id.clone(), emit_hops);
        self.calls += 1;
        arm_deadline(&mut self.store, budget)
    }

    /// Whether the instance should be retired now, between calls, rather
    /// than serve another: it has served `recycle-after-calls`, or its
    /// memory (which never shrinks) passed `recycle-at-memory-percent` of
    /// the limit.
    pub(crate) fn worn_out(&self, limits: &Limits) -> bool {
        let high_water =
            limits.memory_bytes as u128 * u128::from(limits.recycle_at_memory_percent) / 100;
        limits.recycle_after_calls.is_some_and(|n| self.calls >= n)
            || (limits.recycle_at_memory_percent < 100
                && u128::from(self.peak_memory()) >= high_water)
    }

    /// Runs `op`, bounded by the deadline set with [`Instance::begin`].
    pub(crate) async fn run(
        &mut self,
        op: Op<'_>,
        deadline: Instant,
    ) -> Option<wasmtime::Result<Out>> {
        let outcome = tokio::time::timeout_at(last_resort(deadline), self.dispatch(op)).await;
        self.scope.finish();
        outcome.ok()
    }

    async fn dispatch(&mut self, op: Op<'_>) -> wasmtime::Result<Out> {
        let store = &mut self.store;
        Ok(match op {
            Op::Process(call) => Out::Process(guest(&self.processor)?.process(store, call).await?),
            Op::Validate(input) => {
                Out::Validate(guest(&self.processor)?.validate(store, &input).await?)
            }
            Op::DescribeOptions => {
                Out::DescribeOptions(guest(&self.processor)?.describe_options(store).await?)
            }
            Op::OnEvent(event, _) => Out::OnEvent(
                guest(&self.event_handler)?
                    .call_on_event(store, &event)
                    .await?,
            ),
            Op::SupportedEvents => Out::SupportedEvents(
                guest(&self.event_handler)?
                    .call_supported_events(store)
                    .await?,
            ),
            Op::Metadata => Out::Metadata(self.plugin.call_get_metadata(store).await?),
            Op::Status => Out::Status(self.plugin.call_get_status(store).await?),
            Op::Shutdown => Out::Shutdown(self.plugin.call_shutdown(store).await?),
            Op::Link(call) => {
                let func = self
                    .component
                    .get_func(&mut *store, call.export)
                    .ok_or_else(|| wasmtime::format_err!("the linked export is missing"))?;
                Out::Link(call.args.call(store, func).await?)
            }
        })
    }

    /// Runs `initialize` with the plugin's configuration.
    pub(crate) async fn initialize(
        &mut self,
        config: &[types::KeyValue],
    ) -> wasmtime::Result<Result<(), types::PluginError>> {
        self.plugin.call_initialize(&mut self.store, config).await
    }

    /// Fuel left in the store (0 on an engine that does not meter fuel).
    pub(crate) fn fuel_left(&self) -> u64 {
        self.store.get_fuel().unwrap_or(0)
    }

    /// The largest linear memory this instance has had, in bytes.
    pub(crate) fn peak_memory(&self) -> u64 {
        self.store.data().limiter.peak_memory() as u64
    }
}

fn guest<T>(g: &Option<T>) -> wasmtime::Result<&T> {
    g.as_ref().ok_or_else(|| {
        wasmtime::format_err!("the plugin does not export the interface this call needs")
    })
}
