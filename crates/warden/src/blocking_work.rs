//! Blocking work from async code: on tokio's blocking pool, or in place
//! where the runtime can spare the calling thread.
//!
//! A task that hands work to the blocking pool is woken from another
//! thread when it is done and then waits its turn behind every task the
//! runtime has queued: under load that wait, not the work, is most of what
//! a store call costs. Work that is local and ends by itself can instead
//! run where the task is; on a multi-threaded runtime tokio first moves the
//! worker's other tasks to another thread (`block_in_place`), so nothing
//! else waits for it.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` on tokio's blocking pool. `Err`: it panicked, or the
/// runtime is shutting down.
pub(crate) async fn on_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())
}

/// Runs `work` on the calling thread when that blocks no other task: on a
/// multi-threaded runtime (whose other tasks move to another thread) or
/// outside any runtime; on a current-thread runtime, which has no other
/// thread, on the blocking pool. `Err`: it panicked.
pub(crate) async fn in_place<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| caught(work)),
        Ok(_) => on_pool(work).await,
        Err(_) => caught(work),
    }
}

/// `work`'s result, or an error if it panicked (as the pool reports one).
fn caught<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|_| "the blocking work panicked".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread() -> std::thread::ThreadId {
        std::thread::current().id()
    }

    #[test]
    fn outside_a_runtime_work_runs_on_the_calling_thread() {
        let caller = thread();
        let ran = futures::executor::block_on(in_place(thread));
        assert_eq!(ran, Ok(caller));
    }

    #[test]
    fn on_a_multi_threaded_runtime_work_runs_where_the_task_is() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let (task, ran) = rt
            .block_on(rt.spawn(async { (thread(), in_place(thread).await) }))
            .expect("task");
        assert_eq!(ran, Ok(task));
    }

    #[test]
    fn while_work_runs_in_place_the_workers_other_tasks_go_on() {
        // One worker: the work waits for a task that only that worker's
        // queue holds, which runs only if tokio moved the queue away.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let (tx, rx) = std::sync::mpsc::channel();
        let waited = rt.block_on(rt.spawn(async move {
            tokio::spawn(async move { tx.send(()) });
            in_place(move || rx.recv_timeout(std::time::Duration::from_secs(10))).await
        }));
        assert_eq!(waited.expect("task"), Ok(Ok(())));
    }

    #[test]
    fn on_a_current_thread_runtime_work_goes_to_the_pool() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let caller = thread();
        let ran = rt.block_on(in_place(thread)).expect("ran");
        assert_ne!(ran, caller);
    }

    #[test]
    fn a_panic_is_an_error_not_a_crash() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let outcome = rt
            .block_on(rt.spawn(in_place(|| -> u32 { panic!("backend bug") })))
            .expect("the task survives");
        assert!(outcome.is_err());
    }
}
