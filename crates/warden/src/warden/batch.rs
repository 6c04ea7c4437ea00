//! Batches in the library: several calls at once, with bounded
//! concurrency, answered in order, within a cap on the number of calls and
//! on the output of all of them together (what the host holds for the
//! batch until it answers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::Warden;
use crate::call::{ProcessRequest, ProcessResponse};
use crate::error::{Error, Result};

/// The bounds of one [`Warden::process_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most calls one batch may hold; a larger batch is refused whole.
    pub max_calls: usize,
    /// Calls running at once (at least one).
    pub concurrency: usize,
    /// Most output bytes of all the answers together, charged as calls
    /// complete: an answer that does not fit what is left is dropped and
    /// answered with [`Error::BatchLimit`], and so are the calls not yet
    /// run, which then do not run. (While running, each call holds at most its
    /// plugin's own `limits.max-output-bytes`.)
    pub max_output_bytes: u64,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_calls: 100,
            concurrency: 4,
            max_output_bytes: 16 << 20,
        }
    }
}

impl Warden {
    /// Runs each `(target, request)` as [`Warden::process`] would, at most
    /// `limits.concurrency` at a time, and answers every call in order.
    /// Refuses the batch (nothing runs) when it has more than
    /// `limits.max_calls` calls.
    pub async fn process_batch(
        &self,
        calls: Vec<(String, ProcessRequest)>,
        limits: BatchLimits,
    ) -> Result<Vec<Result<ProcessResponse>>> {
        self.process_batch_with(
            calls,
            limits,
            |_, result, _| result,
            |answer| answer.as_ref().map_or(0, |r| r.output.len() as u64),
        )
        .await
    }

    /// [`Warden::process_batch`] for a caller that hands the answers on in
    /// a form of its own (say, encoded for the wire), where what the batch
    /// holds is the size of that form: `answer` makes each call's answer
    /// from its position among `calls`, its result and how long it took,
    /// and `size` measures an answer against `limits.max_output_bytes`. A
    /// call whose answer does not fit, or that is not run because the
    /// allowance is spent, is answered with [`Error::BatchLimit`] (`what` is
    /// `"output bytes"`).
    pub async fn process_batch_with<T>(
        &self,
        calls: Vec<(String, ProcessRequest)>,
        limits: BatchLimits,
        answer: impl Fn(usize, Result<ProcessResponse>, Duration) -> T,
        size: impl Fn(&T) -> u64,
    ) -> Result<Vec<T>> {
        if calls.len() > limits.max_calls {
            return Err(Error::BatchLimit {
                what: "calls",
                size: calls.len() as u64,
                max: limits.max_calls as u64,
            });
        }
        let left = AtomicU64::new(limits.max_output_bytes);
        let spent = || Error::BatchLimit {
            what: "output bytes",
            size: limits.max_output_bytes.saturating_add(1),
            max: limits.max_output_bytes,
        };
        let (answer, size) = (&answer, &size);
        Ok(futures::stream::iter(calls.into_iter().enumerate())
            .map(|(i, (target, request))| {
                let left = &left;
                async move {
                    let started = Instant::now();
                    if left.load(Ordering::SeqCst) == 0 {
                        return answer(i, Err(spent()), started.elapsed());
                    }
                    let done = answer(i, self.process(&target, request).await, started.elapsed());
                    // Past the allowance the batch stops: what is still to
                    // run would only be thrown away.
                    let bytes = size(&done);
                    match left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(bytes))
                    {
                        Ok(_) => done,
                        Err(_) => {
                            left.store(0, Ordering::SeqCst);
                            answer(i, Err(spent()), started.elapsed())
                        }
                    }
                }
            })
            .buffered(limits.concurrency.max(1))
            .collect()
            .await)
    }

    /// Blocking form of [`Warden::process_batch`].
    pub fn process_batch_blocking(
        &self,
        calls: Vec<(String, ProcessRequest)>,
        limits: BatchLimits,
    ) -> Result<Vec<Result<ProcessResponse>>> {
        self.core
            .block_on("process_batch_blocking", self.process_batch(calls, limits))
    }
}
