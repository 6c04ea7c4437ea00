//! What wraps every request: its id, the header size limit, the access
//! log and HTTP metrics; and, around the API's handlers, the concurrency
//! limit with its bounded queue and the request timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::AppState;
use super::problem::Problem;

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
        next.run(request).await
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
}

/// Runs the request through the [`Gate`] and within the request timeout.
pub(crate) async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let timeout = state.settings.request_timeout;
    let gate = &state.gate;
    let run = async {
        let _permit = match gate.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                if gate.waiting.fetch_add(1, Ordering::SeqCst) >= gate.max_queue {
                    gate.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "server-busy",
                        format!(
                            "the server is at its limit of {} running and {} queued requests; \
                             retry later",
                            state.settings.max_concurrency, gate.max_queue
                        ),
                    )
                    .retry_after(Duration::from_secs(1))
                    .into_response();
                }
                let permit = gate.permits.acquire().await;
                gate.waiting.fetch_sub(1, Ordering::SeqCst);
                match permit {
                    Ok(permit) => permit,
                    Err(_) => return shutting_down().into_response(),
                }
            }
        };
        next.run(request).await
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

pub(crate) fn shutting_down() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting-down",
        "the server is shutting down",
    )
    .retry_after(Duration::from_secs(1))
}
