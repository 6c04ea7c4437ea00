//! Batches in the library: several calls at once, with bounded
//! concurrency, answered in order, within a cap on the number of calls and
//! on the output of all of them together (what the host holds for the
//! batch until it answers).

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
    /// answered with [`Error::BatchLimit`]; once nothing is left, the calls
    /// not yet run are not run. (While running, each call holds at most its
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
        if calls.len() > limits.max_calls {
            return Err(Error::BatchLimit {
                what: "calls",
                size: calls.len() as u64,
                max: limits.max_calls as u64,
            });
        }
        let left = std::sync::atomic::AtomicU64::new(limits.max_output_bytes);
        let spent = || Error::BatchLimit {
            what: "output bytes",
            size: limits.max_output_bytes.saturating_add(1),
            max: limits.max_output_bytes,
        };
        Ok(futures::stream::iter(calls)
            .map(|(target, request)| {
                let left = &left;
                async move {
                    use std::sync::atomic::Ordering;
                    if left.load(Ordering::SeqCst) == 0 {
                        return Err(spent());
                    }
                    let response = self.process(&target, request).await?;
                    let size = response.output.len() as u64;
                    // An answer that does not fit takes nothing: a later,
                    // smaller one may still fit.
                    match left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(size))
                    {
                        Ok(_) => Ok(response),
                        Err(_) => Err(spent()),
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
