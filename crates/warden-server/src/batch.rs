//! `POST /v1/batch`: several calls in one request, run with bounded
//! concurrency, answered in order, within a cap on calls and on the total
//! output.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::api::check_options;
use super::middleware::RequestId;
use super::problem::Problem;
use warden::ProcessRequest;

/// Calls to run as one batch.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// The calls, answered in this order.
    pub calls: Vec<BatchCall>,
}

/// One call of a batch.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchCall {
    /// The plugin: `name`, `name@1.2.0` or `name@^1`.
    pub plugin: String,
    /// The input as text.
    #[serde(default)]
    pub input: Option<String>,
    /// The input as base64 (instead of `input`, for bytes).
    #[serde(default)]
    pub input_base64: Option<String>,
    /// The input's content type.
    #[serde(default)]
    pub content_type: String,
    /// Options for the plugin.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Keeps the call on one side of a canary.
    #[serde(default)]
    pub routing_key: Option<String>,
}

/// The answer to one call of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// The status the call would have had on its own (200 on success).
    pub status: u16,
    /// The version that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The output's content type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The output, when it is UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The output as base64, when it is not text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_base64: Option<String>,
    /// Items the plugin processed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_processed: Option<u64>,
    /// How long the call took.
    pub duration_ms: f64,
    /// Why the call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// The answers of a batch, in the order of its calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per call.
    pub results: Vec<BatchResult>,
}

/// Run several calls at once.
///
/// The calls run with bounded concurrency (`server.batch-concurrency`);
/// results come back in the order of the calls, and one call's failure
/// never fails the others. Each call's id is the request id with its
/// index (`<id>.0`, `<id>.1`...).
#[utoipa::path(
    post,
    path = "/v1/batch",
    tag = "plugins",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Every call's result, in order", body = BatchResponse),
        (status = 400, description = "Not a valid batch", body = Problem),
        (status = 413, description = "More calls than `server.max-batch`, or too large a body", body = Problem),
    )
)]
pub(crate) async fn batch(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    batch: Result<Json<BatchRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<BatchResponse>, Problem> {
    let Json(batch) = batch.map_err(|e| Problem::new(e.status(), "bad-batch", e.body_text()))?;
    let max = state.settings.max_batch;
    if batch.calls.len() > max {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch-too-large",
            format!(
                "the batch has {} calls, more than the server's limit of {max} \
                 (`server.max-batch`); split it",
                batch.calls.len()
            ),
        ));
    }
    let output = BatchOutput {
        left: std::sync::atomic::AtomicU64::new(state.settings.max_batch_output_bytes),
        max: state.settings.max_batch_output_bytes,
    };
    let results = futures::stream::iter(batch.calls.into_iter().enumerate())
        .map(|(i, call)| {
            let (state, output) = (state.clone(), &output);
            let call_id = format!("{}.{i}", id.0);
            async move {
                let started = Instant::now();
                let result = match output.exhausted() {
                    Some(problem) => failed(problem, started),
                    None => run_batch_call(&state, call, call_id).await,
                };
                output.charge(result)
            }
        })
        .buffered(state.settings.batch_concurrency.max(1))
        .collect()
        .await;
    Ok(Json(BatchResponse { results }))
}

/// What is left of a batch's output allowance (`server.max-batch-output-bytes`).
struct BatchOutput {
    left: std::sync::atomic::AtomicU64,
    max: u64,
}

impl BatchOutput {
    fn too_large(&self) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch-output-too-large",
            format!(
                "the batch's outputs passed the server's limit of {} bytes \
                 (`server.max-batch-output-bytes`); this call's output was dropped or the call \
                 not run: split the batch",
                self.max
            ),
        )
    }

    /// The problem for a call that may not run because the allowance is spent.
    fn exhausted(&self) -> Option<Problem> {
        (self.left.load(std::sync::atomic::Ordering::SeqCst) == 0).then(|| self.too_large())
    }

    /// Takes `result`'s output from the allowance, or drops it when it
    /// does not fit.
    fn charge(&self, result: BatchResult) -> BatchResult {
        use std::sync::atomic::Ordering;
        let size = result.output.as_ref().map_or(0, String::len)
            + result.output_base64.as_ref().map_or(0, String::len);
        let size = size as u64;
        let fits = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(size)
            })
            .is_ok();
        if fits {
            return result;
        }
        self.left.store(0, Ordering::SeqCst);
        BatchResult {
            status: StatusCode::PAYLOAD_TOO_LARGE.as_u16(),
            version: None,
            content_type: None,
            output: None,
            output_base64: None,
            items_processed: None,
            duration_ms: result.duration_ms,
            error: Some(self.too_large()),
        }
    }
}

fn failed(problem: Problem, started: Instant) -> BatchResult {
    BatchResult {
        status: problem.status,
        version: None,
        content_type: None,
        output: None,
        output_base64: None,
        items_processed: None,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        error: Some(problem),
    }
}

async fn run_batch_call(state: &AppState, call: BatchCall, call_id: String) -> BatchResult {
    let started = Instant::now();
    if let Err(problem) = check_options(call.options.len(), state.settings.max_options) {
        return failed(problem, started);
    }
    let input = match (call.input, call.input_base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => match BASE64.decode(b64.as_bytes()) {
            Ok(bytes) => bytes,
            Err(e) => {
                let detail = format!("`input_base64` is not valid base64: {e}");
                return failed(
                    Problem::new(StatusCode::BAD_REQUEST, "bad-input", detail),
                    started,
                );
            }
        },
        (None, None) => Vec::new(),
        (Some(_), Some(_)) => {
            let detail = "give `input` or `input_base64`, not both";
            return failed(
                Problem::new(StatusCode::BAD_REQUEST, "bad-input", detail),
                started,
            );
        }
    };
    let mut request = ProcessRequest::new(input)
        .content_type(call.content_type)
        .call_id(call_id.clone())
        .options(call.options);
    if let Some(key) = call.routing_key {
        request = request.routing_key(key);
    }
    match state.warden.process(&call.plugin, request).await {
        Ok(r) => {
            let (output, output_base64) = match String::from_utf8(r.output) {
                Ok(text) => (Some(text), None),
                Err(e) => (None, Some(BASE64.encode(e.into_bytes()))),
            };
            BatchResult {
                status: 200,
                version: Some(r.version),
                content_type: Some(r.content_type),
                output,
                output_base64,
                items_processed: Some(r.items_processed),
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                error: None,
            }
        }
        Err(e) => failed(Problem::public(&e, &call_id), started),
    }
}
