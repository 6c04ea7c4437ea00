//! The runtime plugins' outbound requests run on: threads of its own, as
//! many as the machine has cores.
//!
//! A busy host's runtime looks at the network only between the tasks it
//! runs (every few dozen of them), and a request has several steps that
//! each wait for the network (connect, TLS, write, read the head): behind
//! plugin calls that keep every core busy, each step waited its turn, and a
//! request that takes 0.3 ms on an idle host took 50–100 ms. Here the steps
//! run on threads that wait on the network alone, and the plugin's call
//! is woken once, when the response's head is in. (One thread would let a
//! plugin that makes many TLS handshakes hold up every plugin's requests;
//! as many as there are cores spreads them as the host's runtime did.)

use std::sync::OnceLock;

use super::HttpError;

/// A task of the outbound runtime, ended when dropped: a plugin that drops
/// its request (or its instance) stops the work done for it.
pub(super) struct Task<T>(tokio::task::JoinHandle<T>);

impl<T> Task<T> {
    /// What the task returned.
    pub(super) async fn join(mut self) -> Result<T, HttpError> {
        (&mut self.0)
            .await
            .map_err(|e| HttpError::InternalError(Some(e.to_string())))
    }

    /// Whether the task has ended.
    pub(super) fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` on the outbound runtime, started at the first request.
pub(super) fn spawn<F>(work: F) -> Result<Task<F::Output>, HttpError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(Task(runtime()?.spawn(work)))
}

/// Runs `work` on the outbound runtime to its end, waited for by no one.
pub(super) fn detach<F>(work: F) -> Result<(), HttpError>
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime()?.spawn(work);
    Ok(())
}

fn runtime() -> Result<&'static tokio::runtime::Runtime, HttpError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .thread_name("warden-http")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    runtime.as_ref().map_err(|e| {
        HttpError::InternalError(Some(format!("starting the outbound HTTP runtime: {e}")))
    })
}
