//! Other nodes, for a server that is one of several (a cluster): a call to
//! a plugin this node does not have, or whose instances are all busy, goes
//! to a node that has it and is answered as if it were local — the same
//! handler makes the same response there, with the serving node named in
//! [`NODE_HEADER`]. The transport is the [`Remote`] an application or the
//! `warden` CLI plugs in; this module only defines the call and the
//! answer.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::output::{ROUTING_KEY_HEADER, output_response};
use super::problem::Problem;
use super::trace;
use tracing::Instrument as _;
use warden::{Error, ProcessRequest, Unavailability, Warden};

/// The response header naming the node that served a call.
pub const NODE_HEADER: &str = "x-warden-node";

/// A boxed future, as [`Remote`]'s methods return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A call to a plugin, as it goes from one node to another.
#[derive(Debug, Clone)]
pub struct RemoteCall {
    /// The plugin: `name`, `name@1.2.0`, `name@^1`.
    pub target: String,
    /// The input.
    pub input: Bytes,
    /// The options (query parameters).
    pub options: Vec<(String, String)>,
    /// The input's content type.
    pub content_type: Option<String>,
    /// The canary routing key.
    pub routing_key: Option<String>,
    /// The request id, also the plugin call id.
    pub call_id: String,
    /// How long the caller waits for the answer.
    pub timeout: Duration,
    /// The W3C `traceparent` of the span the call left its node in, so
    /// that the serving node's spans join the caller's trace; `None`
    /// while nothing is traced.
    pub trace: Option<String>,
}

/// The HTTP response a node made for a call.
#[derive(Debug, Clone)]
pub struct RemoteAnswer {
    /// Its status code.
    pub status: u16,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Bytes,
    /// The node that made it.
    pub node: String,
}

impl RemoteAnswer {
    /// A problem `node` answers itself, without a plugin (busy, too large,
    /// a transport failure), in the API's own problem shape.
    pub fn problem(status: u16, code: &str, detail: impl Into<String>, node: &str) -> RemoteAnswer {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let problem = Problem::new(status, code, detail);
        RemoteAnswer {
            status: status.as_u16(),
            headers: vec![(
                "content-type".to_string(),
                "application/problem+json".to_string(),
            )],
            body: Bytes::from(serde_json::to_vec(&problem).unwrap_or_default()),
            node: node.to_string(),
        }
    }
}

impl IntoResponse for RemoteAnswer {
    fn into_response(self) -> Response {
        let mut response = (
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY),
            self.body,
        )
            .into_response();
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                axum::http::HeaderName::try_from(name.as_str()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        if let Ok(node) = HeaderValue::from_str(&self.node) {
            headers.insert(NODE_HEADER, node);
        }
        response
    }
}

/// The other nodes of a cluster, as a server sees them.
pub trait Remote: Send + Sync + 'static {
    /// Sends `call` to a node that serves its plugin; `None` when no other
    /// node could take it (the caller answers with its own error).
    fn forward(&self, call: RemoteCall) -> BoxFuture<'_, Option<RemoteAnswer>>;
    /// The nodes, their plugins and load, for `/v1/cluster`.
    fn members(&self) -> BoxFuture<'_, serde_json::Value>;
    /// Told after the admin API changed `plugin`'s deployment here, so
    /// that the other nodes follow; returns at once.
    fn changed(&self, plugin: &str);
}

/// Whether another node may serve a call that failed here with `e`: this
/// node has no such plugin, all its instances stayed busy, or its version
/// is out of service here on its own (breaker open, quarantined after
/// failures). A version an operator holds is refused, not sent elsewhere.
pub(crate) fn forwardable(e: &Error) -> bool {
    match e {
        Error::NotFound { .. } | Error::Busy { .. } => true,
        Error::Unavailable { reason, .. } => !matches!(reason, Unavailability::Held),
        _ => false,
    }
}

/// Serves `call` here, or, when this node cannot and is in a cluster, on a
/// node that can.
pub(crate) async fn serve(
    state: &AppState,
    call: RemoteCall,
    request_id: &str,
) -> Result<Response, Problem> {
    match run_here(&state.warden, &call).await {
        Ok(response) => Ok(response),
        Err(e) => {
            if forwardable(&e)
                && let Some(remote) = &state.remote
                && let Some(answer) = remote
                    .forward(RemoteCall {
                        trace: trace::current_traceparent(),
                        ..call
                    })
                    .await
            {
                return Ok(answer.into_response());
            }
            Err(Problem::public(&e, request_id))
        }
    }
}

/// Runs `call` on this node's plugins: the response, or the error.
pub(crate) async fn run_here(warden: &Warden, call: &RemoteCall) -> Result<Response, Error> {
    let mut request = ProcessRequest::new(call.input.to_vec())
        .call_id(call.call_id.clone())
        .options(call.options.clone());
    if let Some(ct) = &call.content_type {
        request = request.content_type(ct);
    }
    if let Some(key) = &call.routing_key {
        request = request.routing_key(key);
    }
    let started = Instant::now();
    let response = warden.process(&call.target, request).await?;
    Ok(output_response(
        response,
        started.elapsed().as_secs_f64() * 1000.0,
    ))
}

/// Serves a call another node forwarded, on this node only (a forwarded
/// call is never forwarded again): the response this node's API gives,
/// body included, up to `max_body` bytes. Its span is a child of the
/// forwarding node's, as a request's is of its caller's.
pub async fn answer(
    warden: &Warden,
    call: RemoteCall,
    node: &str,
    max_body: usize,
) -> RemoteAnswer {
    let mut headers = axum::http::HeaderMap::new();
    if let Some(value) = call
        .trace
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        headers.insert(trace::TRACEPARENT, value);
    }
    let span = trace::request_span(
        &headers,
        "POST",
        "/v1/plugins/{name}/process (forwarded)",
        &call.call_id,
    );
    let run = tokio::time::timeout(call.timeout, run_here(warden, &call)).instrument(span);
    let response = match run.await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => Problem::public(&e, &call.call_id).into_response(),
        Err(_) => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("the call took longer than its {:?} deadline", call.timeout),
        )
        .into_response(),
    };
    let (parts, body) = response.into_parts();
    let (status, body) = match axum::body::to_bytes(body, max_body).await {
        Ok(body) => (parts.status.as_u16(), body),
        Err(_) => {
            return RemoteAnswer::problem(
                502,
                "answer-too-large",
                format!(
                    "the output of `{}` is larger than the {max_body} bytes a forwarded \
                     answer may carry (the cluster transport's maximum message size)",
                    call.target
                ),
                node,
            );
        }
    };
    RemoteAnswer {
        status,
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body,
        node: node.to_string(),
    }
}

/// The call an HTTP request makes.
pub(crate) fn call_of(
    target: String,
    input: Bytes,
    options: Vec<(String, String)>,
    headers: &axum::http::HeaderMap,
    call_id: String,
    timeout: Duration,
) -> RemoteCall {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    RemoteCall {
        target,
        input,
        options,
        content_type: header(axum::http::header::CONTENT_TYPE.as_str()),
        routing_key: header(ROUTING_KEY_HEADER),
        call_id,
        timeout,
        trace: None,
    }
}

/// The nodes of the cluster this server is in.
#[utoipa::path(get, path = "/v1/cluster", tag = "operations",
    responses(
        (status = 200, description = "The nodes, their plugins and load", body = Object),
        (status = 404, description = "This server is not in a cluster", body = Problem),
    ))]
pub(crate) async fn cluster(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, Problem> {
    match &state.remote {
        Some(remote) => Ok(Json(remote.members().await)),
        None => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-clustered",
            "this server is not in a cluster (`[cluster]` in warden.toml, or `warden serve --cluster`)",
        )),
    }
}
