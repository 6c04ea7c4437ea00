//! What wraps every request: its id, the header size limit, the access
//! log and HTTP metrics; and, around the API's handlers, the body read in
//! full (within its size and its own deadline) before the request queues,
//! the concurrency limit with its bounded queue, and the request timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::Instrument;

use super::AppState;
use super::problem::Problem;
use super::trace;

/// The header carrying the request id, read from the client when it sends
/// a usable one and always sent back.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of a request: the client's `x-request-id`, or one made up. It
/// is also the call id of the plugin call the request makes, so the
/// server's and the plugin's log lines about it carry the same id.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    fn of(request: &Request) -> RequestId {
        let given = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|id| {
                !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
            });
        RequestId(match given {
            Some(id) => id.into(),
            None => uuid::Uuid::new_v4().simple().to_string().into(),
        })
    }
}

/// Gives the request its id, refuses oversized headers, and logs and
/// counts the request once answered.
pub(crate) async fn observe(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = RequestId::of(&request);
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_string(),
        |p| p.as_str().to_string(),
    );
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    request.extensions_mut().insert(id.clone());
    let mut response = if header_bytes > state.settings.max_header_bytes {
        Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            format!(
                "the request's headers are {header_bytes} bytes, more than the server's limit of {} \
                 (`server.max-header-bytes`)",
                state.settings.max_header_bytes
            ),
        )
        .into_response()
    } else {
        let span = trace::request_span(request.headers(), method.as_str(), &route, &id.0);
        next.run(request).instrument(span).await
    };
    let elapsed = started.elapsed();
    let status = response.status();
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    state
        .http
        .observe(method.as_str(), &route, status.as_u16(), elapsed);
    tracing::info!(
        target: "warden::http",
        request_id = %id.0,
        method = %method,
        route = %route,
        status = status.as_u16(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// At most `max_concurrency` requests run at once; up to `max_queue` more
/// wait their turn; past that a request is refused at once (503 with
/// `Retry-After`) instead of piling up.
pub(crate) struct Gate {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_queue: usize,
}

impl Gate {
    pub(crate) fn new(max_concurrency: usize, max_queue: usize) -> Self {
        Gate {
            permits: Semaphore::new(max_concurrency.max(1)),
            waiting: AtomicUsize::new(0),
            max_queue,
        }
    }

    /// A slot, after waiting in the queue if need be; `Err` when the queue
    /// is full or the server is shutting down.
    async fn enter(&self, max_concurrency: usize) -> Result<SemaphorePermit<'_>, Problem> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server-busy",
                format!(
                    "the server is at its limit of {max_concurrency} running and {} queued \
                     requests; retry later",
                    self.max_queue
                ),
            )
            .retry_after(Duration::from_secs(1)));
        }
        // Leaves the queue however the wait ends: with a permit, or
        // dropped when the request times out (or its client goes) while
        // queued.
        let _queued = Queued(&self.waiting);
        self.permits.acquire().await.map_err(|_| shutting_down())
    }

    /// Refuses every queued and later request: the server is stopping.
    pub(crate) fn close(&self) {
        self.permits.close();
    }
}

/// Reads the request's body before it waits for a slot: at most
/// `max_body_bytes` (413 past it, said at once when the declared length is
/// larger), within `body_read_timeout` (408 past it). A slow or oversized
/// upload thus costs no slot of the [`Gate`] and no plugin instance.
pub(crate) async fn read_body(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let settings = &state.settings;
    let max = settings.max_body_bytes;
    let too_large = |size: String| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!(
                "the request body is {size}, more than the server's limit of {max} bytes \
                 (`server.max-body-bytes`)"
            ),
        )
        .into_response()
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > max as u64) {
        return too_large(format!("{len} bytes"));
    }
    let (parts, body) = request.into_parts();
    let reading = parts
        .extensions
        .get::<super::listener::Connection>()
        .map(super::listener::Connection::reading_body);
    let read = tokio::time::timeout(settings.body_read_timeout, axum::body::to_bytes(body, max));
    let read = read.await;
    drop(reading);
    match read {
        Ok(Ok(bytes)) => {
            let request = Request::from_parts(parts, axum::body::Body::from(bytes));
            next.run(request).await
        }
        Ok(Err(e)) if is_length_limit(&e) => too_large("larger".into()),
        Ok(Err(e)) => Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-body",
            format!("the request body could not be read: {e}"),
        )
        .into_response(),
        Err(_) => Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            format!(
                "the request body did not arrive within the server's {} ms \
                 (`server.body-read-timeout-ms`)",
                settings.body_read_timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

/// Whether reading a body failed because it passed the size limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Runs the request through the [`Gate`] and within the request timeout.
pub(crate) async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let timeout = state.settings.request_timeout;
    let run = async {
        match state.gate.enter(state.settings.max_concurrency).await {
            Ok(_permit) => next.run(request).await,
            Err(problem) => problem.into_response(),
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "request-timeout",
            format!(
                "the request did not finish within the server's {} ms (`server.request-timeout-ms`)",
                timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

/// A place in the [`Gate`]'s queue, given up when dropped.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) fn shutting_down() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting-down",
        "the server is shutting down",
    )
    .retry_after(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_request_dropped_while_queued_gives_its_place_back() {
        let gate = Gate::new(1, 1);
        let held = gate
            .enter(1)
            .now_or_never()
            .expect("free slot")
            .expect("slot");
        // Queued (pending), then dropped: a timeout or a gone client.
        assert!(gate.enter(1).now_or_never().is_none());
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
        // The one queue place is free again: the next request waits...
        let mut next = Box::pin(gate.enter(1));
        assert!((&mut next).now_or_never().is_none());
        // ...while one more is refused at once.
        let refused = gate.enter(1).now_or_never().expect("answered at once");
        assert_eq!(refused.expect_err("queue full").status, 503);
        drop(held);
        assert!(next.now_or_never().expect("slot freed").is_ok());
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
        gate.close();
        let closed = gate.enter(1).now_or_never().expect("answered at once");
        assert_eq!(
            closed.expect_err("closed").kind,
            "urn:warden:problem:shutting-down"
        );
    }
}
