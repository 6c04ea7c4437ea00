//! The file lane: a runtime of its own, with as many workers as the
//! machine has cores, where the calls of plugins that map directories run.
//!
//! wasmtime-wasi runs every file operation on tokio's blocking pool, and the
//! call resumes only when a worker picks its task up again. On a server's
//! runtime, busy with every other plugin's calls, each resumption waited
//! behind their ready tasks: a call that opens and writes a file waited
//! twice, and held its instance meanwhile, so the plugin's next calls
//! queued for one. On the lane the workers wait for files alone and resume
//! the call at once; its caller waits for the whole call once. The call
//! keeps its deadline, its limits and its instance pool (it is the same
//! call, on another thread), and is cancelled when its caller gives up on
//! it, at its next yield (an epoch tick of guest code, or the end of the
//! host call in progress). A plugin that loops between file calls holds up
//! the lane's workers, not the runtime other plugins' calls run on, and
//! only until its next epoch yield. Linked calls (they borrow their
//! caller's arguments and end by its deadline) and calls through the
//! blocking facade (whose caller's thread waits for nothing else) stay
//! where they are made.
//!
//! The lane is started when the first plugin that maps directories loads,
//! not by a call; its blocking pool is capped at [`BLOCKING_THREADS`], so
//! file operations that never return (a hung network file system) hold
//! threads of the lane's own and at most that many.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tracing::Instrument;
use tracing::instrument::WithSubscriber;

/// The most threads the lane's blocking pool runs at once; file operations
/// past them wait for one.
pub(crate) const BLOCKING_THREADS: usize = 128;

/// A runtime, shut down without waiting when dropped, so that its owner may
/// be dropped anywhere, even inside async code.
pub(crate) struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    /// A multi-thread runtime with `workers` workers, at most `blocking`
    /// blocking threads, timers and I/O.
    pub(crate) fn new(name: &str, workers: usize, blocking: usize) -> Result<Self, String> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .max_blocking_threads(blocking)
            .thread_name(name)
            .enable_all()
            .build()
            .map(|rt| OwnedRuntime(Some(rt)))
            .map_err(|e| e.to_string())
    }

    /// The runtime, until it is dropped.
    pub(crate) fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        self.0.as_ref()
    }

    /// Whether `handle` is this runtime's.
    pub(crate) fn owns(&self, handle: &Handle) -> bool {
        self.runtime()
            .is_some_and(|rt| rt.handle().id() == handle.id())
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The lane of one host, started by [`Lane::start`]; `None` when starting
/// it failed.
#[derive(Default)]
pub(crate) struct Lane(OnceLock<Option<OwnedRuntime>>);

impl Lane {
    /// Starts the lane, once; a failure is logged, once, and leaves file
    /// calls where they are made.
    pub(crate) fn start(&self) {
        self.0.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            OwnedRuntime::new("warden-files", cores, BLOCKING_THREADS)
                .inspect_err(|e| {
                    tracing::warn!("starting the file lane failed, file calls run in place: {e}")
                })
                .ok()
        });
    }

    /// Where a call made on the runtime `here` runs: the lane, once
    /// started, unless `here` is the lane itself.
    pub(crate) fn handle(&self, here: &Handle) -> Option<Handle> {
        match self.0.get() {
            Some(Some(lane)) if !lane.owns(here) => lane.runtime().map(|rt| rt.handle().clone()),
            _ => None,
        }
    }
}

/// Runs `call` on `lane` under the caller's span and tracing subscriber,
/// and waits for it; the call is cancelled if the caller stops waiting. A
/// panic in the call resumes in the caller, as it would have there; `None`
/// if the lane shut down under it.
pub(crate) async fn run<T: Send + 'static>(
    lane: &Handle,
    call: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let span = tracing::Span::current();
    let task = match span.is_disabled() {
        true => lane.spawn(call.with_current_subscriber()),
        false => lane.spawn(call.instrument(span).with_current_subscriber()),
    };
    match AbortOnDrop(task).wait().await {
        Ok(out) => Some(out),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

/// A task that is aborted when its waiter is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn wait(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lane_and_caller() -> (Lane, tokio::runtime::Runtime) {
        let caller = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("caller runtime");
        let lane = Lane::default();
        lane.start();
        (lane, caller)
    }

    #[test]
    fn no_lane_until_started() {
        let caller = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("caller runtime");
        let lane = Lane::default();
        let _context = caller.enter();
        assert!(lane.handle(&Handle::current()).is_none());
    }

    #[test]
    fn a_call_runs_on_the_lane_and_a_call_from_the_lane_stays_there() {
        let (lane, caller) = lane_and_caller();
        let lane = std::sync::Arc::new(lane);
        let (thread, nested) = caller.block_on(async {
            let handle = lane.handle(&Handle::current()).expect("a lane");
            let inner = lane.clone();
            run(&handle, async move {
                let here = Handle::current();
                let thread = std::thread::current().name().map(str::to_string);
                (thread, inner.handle(&here).is_none())
            })
            .await
            .expect("ran")
        });
        assert_eq!(thread.as_deref(), Some("warden-files"));
        assert!(nested, "a call already on the lane must not hop again");
    }

    #[test]
    fn a_call_whose_caller_gives_up_is_cancelled() {
        let (lane, caller) = lane_and_caller();
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
        struct Guard(std::sync::mpsc::Sender<()>);
        impl Drop for Guard {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        caller.block_on(async {
            let handle = lane.handle(&Handle::current()).expect("a lane");
            let guard = Guard(dropped_tx);
            let call = run(&handle, async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
            let gave_up = tokio::time::timeout(Duration::from_millis(20), call).await;
            assert!(gave_up.is_err(), "the call cannot have finished");
        });
        dropped_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the call's future is dropped once its caller gives up");
    }

    #[test]
    fn a_panic_in_the_call_resumes_in_the_caller() {
        let (lane, caller) = lane_and_caller();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            caller.block_on(async {
                let handle = lane.handle(&Handle::current()).expect("a lane");
                run(&handle, async { panic!("in the call") }).await
            })
        }));
        let payload = caught.expect_err("the panic reaches the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"in the call"));
    }
}
