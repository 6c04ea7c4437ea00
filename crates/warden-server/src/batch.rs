//! `POST /v1/batch`: several calls in one request, run with bounded
//! concurrency, answered in order, within a cap on calls and on the total
//! output.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::api::check_options;
use super::middleware::RequestId;
use super::problem::Problem;
use warden::{BatchLimits, ProcessRequest};

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
    // A call that cannot run (bad input) is answered at once; the others
    // run as one batch of the library, which bounds their output as the
    // answers will be sent.
    let mut results = Vec::with_capacity(batch.calls.len());
    let (mut runnable, mut positions) = (Vec::new(), Vec::new());
    for (i, call) in batch.calls.into_iter().enumerate() {
        match prepare(call, format!("{}.{i}", id.0), state.settings.max_options) {
            Ok(call) => {
                runnable.push(call);
                positions.push(i);
                results.push(None);
            }
            Err(problem) => results.push(Some(failed(problem, Duration::ZERO))),
        }
    }
    let limits = BatchLimits {
        max_calls: max,
        concurrency: state.settings.batch_concurrency,
        max_output_bytes: state.settings.max_batch_output_bytes,
    };
    let answer = |n: usize, result, took| {
        let call_id = format!("{}.{}", id.0, positions[n]);
        answered(result, took, &call_id, limits.max_output_bytes)
    };
    let answers = state
        .warden
        .process_batch_with(runnable, limits, answer, encoded_size)
        .await
        .map_err(|e| Problem::public(&e, &id.0))?;
    for (&i, answer) in positions.iter().zip(answers) {
        results[i] = Some(answer);
    }
    Ok(Json(BatchResponse {
        results: results.into_iter().flatten().collect(),
    }))
}

/// What the answer of a batch call holds of the batch's output allowance:
/// its JSON as sent (escapes included), counted without writing it out.
fn encoded_size(result: &BatchResult) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len() as u64;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, result) {
        Ok(()) => count.0,
        Err(_) => u64::MAX,
    }
}

/// The problem of a call whose output did not fit what was left of the
/// batch's allowance, or that was not run because nothing was left.
fn too_large(max: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch-output-too-large",
        format!(
            "the batch's outputs passed the server's limit of {max} bytes \
             (`server.max-batch-output-bytes`); this call's output was dropped or the call \
             not run: split the batch"
        ),
    )
}

fn failed(problem: Problem, took: Duration) -> BatchResult {
    BatchResult {
        status: problem.status,
        version: None,
        content_type: None,
        output: None,
        output_base64: None,
        items_processed: None,
        duration_ms: took.as_secs_f64() * 1000.0,
        error: Some(problem),
    }
}

/// The library's request for one call of a batch, or the problem that
/// keeps it from running.
fn prepare(
    call: BatchCall,
    call_id: String,
    max_options: usize,
) -> Result<(String, ProcessRequest), Problem> {
    check_options(call.options.len(), max_options)?;
    let input = match (call.input, call.input_base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => BASE64.decode(b64.as_bytes()).map_err(|e| {
            let detail = format!("`input_base64` is not valid base64: {e}");
            Problem::new(StatusCode::BAD_REQUEST, "bad-input", detail)
        })?,
        (None, None) => Vec::new(),
        (Some(_), Some(_)) => {
            let detail = "give `input` or `input_base64`, not both";
            return Err(Problem::new(StatusCode::BAD_REQUEST, "bad-input", detail));
        }
    };
    let mut request = ProcessRequest::new(input)
        .content_type(call.content_type)
        .call_id(call_id)
        .options(call.options);
    if let Some(key) = call.routing_key {
        request = request.routing_key(key);
    }
    Ok((call.plugin, request))
}

/// A batch call's answer as sent: the output as text when it is UTF-8,
/// else as base64.
fn answered(
    result: warden::Result<warden::ProcessResponse>,
    took: Duration,
    call_id: &str,
    max_output: u64,
) -> BatchResult {
    match result {
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
                duration_ms: took.as_secs_f64() * 1000.0,
                error: None,
            }
        }
        Err(warden::Error::BatchLimit { .. }) => failed(too_large(max_output), took),
        Err(e) => failed(Problem::public(&e, call_id), took),
    }
}
