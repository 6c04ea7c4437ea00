//! The public API under `/v1`: calling plugins, validating input,
//! publishing events, and describing what is loaded (batches are in
//! [`super::batch`]). What it says never shows where things are on the host.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::middleware::RequestId;
use super::problem::Problem;
use super::remote;
use warden::Event;

pub use super::output::{DURATION_HEADER, ITEMS_HEADER, ROUTING_KEY_HEADER, VERSION_HEADER};

/// The body as bytes, or the problem explaining why it could not be read
/// (too large: 413).
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| {
        let status = e.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
            _ => "bad-body",
        };
        Problem::new(
            status,
            code,
            format!("{} (`server.max-body-bytes`)", e.body_text()),
        )
    })
}

/// Call a plugin's `process`.
///
/// The request body is the input and its `Content-Type` the input's
/// content type; every query parameter is an option (`?op=upper`). The
/// response body is the output, with the plugin's content type. `{name}`
/// may name a version (`text-transform@1.2.0`, `text-transform@^1`).
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/process",
    tag = "plugins",
    params(
        ("name" = String, Path, description = "The plugin: `name`, `name@1.2.0` or `name@^1`"),
        ("options" = BTreeMap<String, String>, Query, style = Form, explode, description = "Options for the plugin, such as `op=upper`"),
        ("x-warden-routing-key" = Option<String>, Header, description = "Keeps calls with the same key on one side of a canary"),
        ("x-request-id" = Option<String>, Header, description = "The request id, also the plugin call id; made up when absent"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The input"),
    responses(
        (status = 200, description = "The output, with the plugin's content type", body = Vec<u8>,
         headers(
             ("x-warden-version" = String, description = "The plugin version that answered"),
             ("x-warden-duration-ms" = f64, description = "How long the call took"),
             ("x-warden-items" = u64, description = "Items the plugin processed"),
         )),
        (status = 404, description = "No plugin of that name is loaded", body = Problem),
        (status = 413, description = "The body is larger than the server's or the plugin's limit", body = Problem),
        (status = 422, description = "The plugin returned an error (`error` says which kind)", body = Problem),
        (status = 500, description = "The plugin trapped (`trap` says why)", body = Problem),
        (status = 503, description = "The plugin is busy or unavailable; see `Retry-After`", body = Problem),
        (status = 504, description = "The call ran past its deadline", body = Problem),
    )
)]
pub(crate) async fn process(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(options): Query<Vec<(String, String)>>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    input: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let input = body(input)?;
    check_options(options.len(), state.settings.max_options)?;
    let call = remote::call_of(
        name,
        input,
        options,
        &headers,
        id.0.to_string(),
        state.settings.request_timeout,
    );
    remote::serve(&state, call, &id.0).await
}

/// Refuses a call with more options than the server takes.
pub(super) fn check_options(count: usize, max: usize) -> Result<(), Problem> {
    if count <= max {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::BAD_REQUEST,
        "too-many-options",
        format!(
            "the call has {count} options, more than the server's limit of {max} \
             (`server.max-options`)"
        ),
    ))
}

/// Whether `process` could work on an input.
#[derive(Debug, Serialize, ToSchema)]
pub struct Validity {
    /// The plugin's answer.
    pub valid: bool,
    /// The version that answered.
    pub version: String,
}

/// Ask a plugin whether it could process the body, without processing it.
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/validate",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin: `name`, `name@1.2.0` or `name@^1`")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The input"),
    responses(
        (status = 200, description = "The plugin's answer", body = Validity),
        (status = 404, description = "No plugin of that name is loaded", body = Problem),
        (status = 413, description = "The body is too large", body = Problem),
    )
)]
pub(crate) async fn validate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(id): Extension<RequestId>,
    input: Result<Bytes, BytesRejection>,
) -> Result<Json<Validity>, Problem> {
    let input = body(input)?;
    let public = |e: warden::Error| Problem::public(&e, &id.0);
    let plugin = state.warden.get(&name).map_err(public)?;
    let valid = plugin.validate(Vec::from(input)).await.map_err(public)?;
    Ok(Json(Validity {
        valid,
        version: plugin.info().version.to_string(),
    }))
}

/// An event to publish.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EventRequest {
    /// A dotted event type such as `order.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload: a JSON string is delivered as its text, any other
    /// JSON value as its JSON text.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// Query of `POST /v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventQuery {
    /// `true`: deliver straight to each subscribed plugin and answer with
    /// every outcome. Default: queue the event on the bus and answer at once.
    #[serde(default)]
    pub wait: bool,
}

/// What became of a published event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOutcome {
    /// Subscribers the event was queued for (without `wait`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<usize>,
    /// Each subscribed plugin's outcome (with `wait=true`): `ok`, or the
    /// error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<BTreeMap<String, String>>,
}

/// Publish an event to the plugins (and application callbacks) subscribed
/// to its type.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    params(EventQuery),
    request_body = EventRequest,
    responses(
        (status = 202, description = "Queued for the subscribers", body = EventOutcome),
        (status = 200, description = "Delivered (`wait=true`), with each plugin's outcome", body = EventOutcome),
        (status = 400, description = "Not a valid event", body = Problem),
    )
)]
pub(crate) async fn publish_event(
    State(state): State<AppState>,
    Query(query): Query<EventQuery>,
    Extension(id): Extension<RequestId>,
    event: Result<Json<EventRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Problem> {
    let Json(event) = event.map_err(|e| Problem::new(e.status(), "bad-event", e.body_text()))?;
    if let Err(why) = Event::check_type(&event.event_type) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-event",
            format!("the event's `type`: {why}"),
        ));
    }
    let payload = match event.payload {
        serde_json::Value::String(text) => text.into_bytes(),
        serde_json::Value::Null => Vec::new(),
        other => other.to_string().into_bytes(),
    };
    let event = Event::new(event.event_type, payload, "http");
    if query.wait {
        let delivered = state
            .warden
            .dispatch_event(&event)
            .await
            .into_iter()
            .map(|(plugin, outcome)| {
                let outcome = outcome
                    .map_or_else(|e| Problem::public(&e, &id.0).detail, |()| "ok".to_string());
                (plugin, outcome)
            })
            .collect();
        let outcome = EventOutcome {
            queued: None,
            delivered: Some(delivered),
        };
        return Ok(Json(outcome).into_response());
    }
    let outcome = EventOutcome {
        queued: Some(state.warden.publish(event)),
        delivered: None,
    };
    Ok((StatusCode::ACCEPTED, Json(outcome)).into_response())
}

/// `described` (a plugin's info, or its deployment) as a client of the
/// public API sees it: without where the plugin and its directories are on
/// the host.
fn without_host_paths(described: &impl serde::Serialize) -> serde_json::Value {
    let mut value = serde_json::to_value(described).unwrap_or_default();
    let versions = value
        .get_mut("versions")
        .and_then(|v| v.as_array_mut())
        .into_iter()
        .flatten();
    for version in versions {
        remove_host_paths(version);
    }
    remove_host_paths(&mut value);
    value
}

fn remove_host_paths(value: &mut serde_json::Value) {
    if let Some(fields) = value.as_object_mut() {
        for key in ["path", "source", "data_dir"] {
            fields.remove(key);
        }
        for permissions in ["permissions", "requested"] {
            let mounts = fields
                .get_mut(permissions)
                .and_then(|p| p.get_mut("fs"))
                .and_then(|fs| fs.as_array_mut());
            for mount in mounts.into_iter().flatten() {
                if let Some(mount) = mount.as_object_mut() {
                    mount.remove("host");
                }
            }
        }
    }
}

/// One loaded plugin, in brief.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginSummary {
    /// Its name.
    pub name: String,
    /// The version unqualified calls go to.
    pub stable: String,
    /// Every loaded version.
    pub versions: Vec<String>,
    /// The canary's version and share in percent, if one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<(String, f64)>,
    /// The stable version's world.
    pub world: String,
    /// The stable version's contract version.
    pub contract: String,
    /// The stable version's description.
    pub description: String,
    /// The stable version's lifecycle state.
    pub state: String,
}

/// List the loaded plugins.
#[utoipa::path(
    get,
    path = "/v1/plugins",
    tag = "plugins",
    responses((status = 200, description = "Every loaded plugin", body = Vec<PluginSummary>))
)]
pub(crate) async fn list_plugins(State(state): State<AppState>) -> Json<Vec<PluginSummary>> {
    let summaries = state
        .warden
        .deployments()
        .into_iter()
        .filter_map(|d| {
            let stable = state
                .warden
                .get(&format!("{}@{}", d.plugin, d.stable))
                .ok()?;
            let info = stable.info();
            Some(PluginSummary {
                stable: d.stable.to_string(),
                versions: d.versions.iter().map(|v| v.version.to_string()).collect(),
                canary: d
                    .canary
                    .as_ref()
                    .map(|c| (c.version.to_string(), c.percent)),
                world: info.world.to_string(),
                contract: info.contract.to_string(),
                description: info.description.clone(),
                state: stable.state().to_string(),
                name: d.plugin,
            })
        })
        .collect();
    Json(summaries)
}

/// Describe one plugin: its deployment (versions, roles, states,
/// metrics), each version's permissions and limits, and the options its
/// stable version lists (contract 0.2.0).
#[utoipa::path(
    get,
    path = "/v1/plugins/{name}",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The plugin in detail: `deployment`, `versions` (info of each), `options`", body = Object),
        (status = 404, description = "No plugin of that name is loaded", body = Problem),
    )
)]
pub(crate) async fn get_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let deployment = state.warden.deployment(&name)?;
    let mut versions = Vec::new();
    for v in &deployment.versions {
        if let Ok(plugin) = state.warden.get(&format!("{name}@{}", v.version)) {
            versions.push(without_host_paths(plugin.info()));
        }
    }
    let stable = state.warden.get(&format!("{name}@{}", deployment.stable))?;
    let options = match stable.info().world {
        warden::World::Processor => stable.describe_options().await.ok().flatten(),
        _ => None,
    };
    Ok(Json(serde_json::json!({
        "deployment": without_host_paths(&deployment),
        "versions": versions,
        "options": options,
    })))
}
