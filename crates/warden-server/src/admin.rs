//! The admin API under `/v1/admin`, behind a bearer token: deploy (a path
//! on the server, or an uploaded plugin), reload, unload, canary, promote,
//! rollback, the audit log and deployment history. Without a configured
//! token these routes do not exist.

use std::path::PathBuf;

use axum::Json;
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::AppState;
use super::problem::Problem;
use warden::DeploymentStatus;
use warden::Reloaded;
use warden::{AuditKind, AuditQuery, parse_since};
use warden::{MANIFEST_FILE, Manifest, SIGNATURE_FILE};

/// Refuses a request without `Authorization: Bearer <admin token>`. The
/// comparison takes the same time whatever the token sent: both sides are
/// hashed, and the digests compared in constant time.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let sent = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(expected) = state.settings.admin_token.as_deref() else {
        return unauthorized("the admin API is off: the server has no admin token");
    };
    let Some(sent) = sent else {
        return unauthorized("send the admin token as `Authorization: Bearer <token>`");
    };
    let same: bool = Sha256::digest(sent.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into();
    match same {
        true => next.run(request).await,
        false => unauthorized("wrong admin token"),
    }
}

fn unauthorized(detail: &str) -> Response {
    let mut response =
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"warden-admin\""),
    );
    response
}

/// A plugin to deploy from the server's disk.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeployRequest {
    /// A built plugin's directory (holding `plugin.toml`) on the server.
    #[schema(value_type = String)]
    pub path: PathBuf,
}

/// Deploy a built plugin from a directory on the server.
///
/// The first version of a name serves; a later one is loaded beside it,
/// waiting for a canary. Kept in the data directory and restored when the
/// server restarts.
#[utoipa::path(
    post,
    path = "/v1/admin/deploy",
    tag = "admin",
    request_body = DeployRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Deployed; the plugin's deployment", body = Object),
        (status = 400, description = "Not a loadable plugin", body = Problem),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
        (status = 409, description = "That version is already deployed", body = Problem),
    )
)]
pub(crate) async fn deploy(
    State(state): State<AppState>,
    Json(request): Json<DeployRequest>,
) -> Result<Response, Problem> {
    detached(async move {
        let plugin = state.warden.deploy(&request.path).await?;
        deployed(&state, plugin.name())
    })
    .await
}

/// Tells the other nodes of a cluster, if any, that `plugin` changed here.
pub(crate) fn tell_cluster(state: &AppState, plugin: &str) {
    if let Some(remote) = &state.remote {
        remote.changed(plugin);
    }
}

/// Runs a deployment change in a task of its own, so that a client that
/// goes away mid-change cannot cancel it half done.
async fn detached<T: Send + 'static>(
    change: impl std::future::Future<Output = Result<T, Problem>> + Send + 'static,
) -> Result<T, Problem> {
    tokio::spawn(change).await.unwrap_or_else(|e| {
        Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "host-error",
            format!("the change failed: {e}"),
        ))
    })
}

fn deployed(state: &AppState, name: &str) -> Result<Response, Problem> {
    let status = state.warden.deployment(name)?;
    tell_cluster(state, name);
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

/// Upload and deploy a plugin: a `multipart/form-data` body with a
/// `manifest` part (the `plugin.toml` text), a `component` part (the
/// `.wasm`) and, for a server that requires signatures, a `signature` part
/// (its `plugin.sig`). The files are kept under the data directory's
/// `uploads/`.
#[utoipa::path(
    post,
    path = "/v1/admin/upload",
    tag = "admin",
    request_body(content_type = "multipart/form-data", description = "Parts `manifest` (plugin.toml), `component` (.wasm) and optionally `signature` (plugin.sig)"),
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Deployed; the plugin's deployment", body = Object),
        (status = 400, description = "Missing parts, or not a loadable plugin", body = Problem),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
        (status = 403, description = "Signatures are required and this one was not accepted", body = Problem),
        (status = 409, description = "That version is already deployed", body = Problem),
    )
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    mut multipart: Multipart,
) -> Result<Response, Problem> {
    let bad = |detail: String| Problem::new(StatusCode::BAD_REQUEST, "bad-upload", detail);
    let Some(root) = state.settings.upload_dir.clone() else {
        return Err(bad(
            "uploads are kept in the data directory, and this server has none".into(),
        ));
    };
    let (mut manifest, mut component, mut signature) = (None, None, None);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| Problem::new(e.status(), "bad-upload", e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| Problem::new(e.status(), "bad-upload", e.body_text()))?;
        match name.as_str() {
            "manifest" => manifest = Some(bytes),
            "component" => component = Some(bytes),
            "signature" => signature = Some(bytes),
            other => {
                return Err(bad(format!(
                    "unexpected part `{other}`; send `manifest`, `component` and, if signed, \
                     `signature`"
                )));
            }
        }
    }
    let (Some(manifest_text), Some(component)) = (manifest, component) else {
        return Err(bad(
            "send both parts: `manifest` (plugin.toml) and `component` (.wasm)".into(),
        ));
    };
    let text = std::str::from_utf8(&manifest_text)
        .map_err(|_| bad("the `manifest` part is not UTF-8 text".into()))?;
    let parsed = Manifest::parse(text, std::path::Path::new("uploaded plugin.toml"))?;
    let (name, version) = (parsed.name.clone(), parsed.version.to_string());
    // Never overwrite the files a loaded version was loaded from.
    if state.warden.get(&format!("{name}@{version}")).is_ok() {
        return Err(Problem::from(warden::Error::Deploy {
            plugin: name,
            message: format!("version {version} is already loaded; upload another version"),
        }));
    }
    let dir = root.join(&name).join(&version);
    let component_file = parsed.component_path(&dir);
    let write = |path: &std::path::Path, bytes: &[u8]| -> Result<(), Problem> {
        let failed = |e: std::io::Error| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "host-error",
                format!("keeping the upload in {}: {e}", path.display()),
            )
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        warden::write_atomically(path, bytes).map_err(failed)
    };
    write(&component_file, &component)?;
    write(&dir.join(MANIFEST_FILE), &manifest_text)?;
    let signature_file = dir.join(SIGNATURE_FILE);
    match signature {
        Some(signature) => write(&signature_file, &signature)?,
        // A signature left by an earlier upload of this version would not
        // be this upload's.
        None => match std::fs::remove_file(&signature_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "host-error",
                    format!("removing {}: {e}", signature_file.display()),
                ));
            }
        },
    }
    detached(async move {
        let plugin = state.warden.deploy(&dir).await?;
        deployed(&state, plugin.name())
    })
    .await
}

/// What a reload did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadOutcome {
    /// `unchanged` or `replaced`.
    pub outcome: String,
    /// The version that served before (when replaced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The version that serves now (when replaced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// From the start of the reload to the new build serving, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_after_ms: Option<f64>,
}

/// Read a loaded plugin's files again and swap in the new build if they
/// changed; on failure the loaded build keeps serving.
#[utoipa::path(
    post,
    path = "/v1/admin/plugins/{target}/reload",
    tag = "admin",
    params(("target" = String, Path, description = "`name` (its stable version) or `name@1.2.0`")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Reloaded (or unchanged)", body = ReloadOutcome),
        (status = 400, description = "The new build does not load; the old one keeps serving", body = Problem),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
        (status = 404, description = "No such plugin", body = Problem),
    )
)]
pub(crate) async fn reload(
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> Result<Json<ReloadOutcome>, Problem> {
    let reloaded = detached(async move { Ok(state.warden.reload(&target).await?) }).await?;
    Ok(Json(match reloaded {
        Reloaded::Unchanged => ReloadOutcome {
            outcome: "unchanged".into(),
            from: None,
            to: None,
            serving_after_ms: None,
        },
        Reloaded::Replaced {
            from,
            to,
            serving_after,
        } => ReloadOutcome {
            outcome: "replaced".into(),
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            serving_after_ms: Some(serving_after.as_secs_f64() * 1000.0),
        },
    }))
}

/// Unload a plugin: `name` unloads every version (and forgets its
/// deployment), `name@1.2.0` one version that is not the stable one.
#[utoipa::path(
    delete,
    path = "/v1/admin/plugins/{target}",
    tag = "admin",
    params(("target" = String, Path, description = "`name` or `name@1.2.0`")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Unloaded; running calls finished first"),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
        (status = 404, description = "No such plugin", body = Problem),
        (status = 409, description = "That version is the stable one", body = Problem),
    )
)]
pub(crate) async fn unload(
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> Result<StatusCode, Problem> {
    let warden = state.warden.clone();
    let name = target.split('@').next().unwrap_or_default().to_string();
    detached(async move { Ok(warden.unload(&target).await?) }).await?;
    tell_cluster(&state, &name);
    Ok(StatusCode::NO_CONTENT)
}

/// A canary to start or change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CanaryRequest {
    /// A deployed version of the plugin.
    pub version: String,
    /// Its share of the plugin's unqualified calls, 0 to 100.
    pub percent: f64,
}

/// Send a share of a plugin's calls to one of its deployed versions;
/// calls with the same routing key stay on one side.
#[utoipa::path(
    post,
    path = "/v1/admin/plugins/{name}/canary",
    tag = "admin",
    params(("name" = String, Path, description = "The plugin's name")),
    request_body = CanaryRequest,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The plugin's deployment", body = Object),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
        (status = 404, description = "No such plugin", body = Problem),
        (status = 409, description = "Not a deployed version, or a bad share", body = Problem),
    )
)]
pub(crate) async fn canary(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<CanaryRequest>,
) -> Result<Json<DeploymentStatus>, Problem> {
    state
        .warden
        .canary(&name, &request.version, request.percent)?;
    tell_cluster(&state, &name);
    Ok(Json(state.warden.deployment(&name)?))
}

/// The version serving a plugin's calls after a promotion or rollback.
#[derive(Debug, Serialize, ToSchema)]
pub struct StableVersion {
    /// The stable version now.
    pub stable: String,
    /// The candidate version a rollback removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<String>,
}

/// The canary's version becomes stable; the old stable version drains.
#[utoipa::path(
    post,
    path = "/v1/admin/plugins/{name}/promote",
    tag = "admin",
    params(("name" = String, Path, description = "The plugin's name")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Promoted", body = StableVersion),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
        (status = 409, description = "No canary to promote", body = Problem),
    )
)]
pub(crate) async fn promote(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<StableVersion>, Problem> {
    let target = name.clone();
    let warden = state.warden.clone();
    let stable = detached(async move { Ok(warden.promote(&target).await?) }).await?;
    tell_cluster(&state, &name);
    Ok(Json(StableVersion {
        stable: stable.to_string(),
        rolled_back: None,
    }))
}

/// End the canary: every call goes to the stable version; the candidate
/// is unloaded.
#[utoipa::path(
    post,
    path = "/v1/admin/plugins/{name}/rollback",
    tag = "admin",
    params(("name" = String, Path, description = "The plugin's name")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Rolled back", body = StableVersion),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
        (status = 409, description = "No canary to roll back", body = Problem),
    )
)]
pub(crate) async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<StableVersion>, Problem> {
    let warden = state.warden.clone();
    let target = name.clone();
    let removed = detached(async move { Ok(warden.rollback(&target).await?) }).await?;
    tell_cluster(&state, &name);
    Ok(Json(StableVersion {
        stable: state.warden.deployment(&name)?.stable.to_string(),
        rolled_back: Some(removed.to_string()),
    }))
}

/// Filters of the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// Only this plugin's entries.
    pub plugin: Option<String>,
    /// Only entries of this kind (`socket-denied`, `grant-refused`...).
    pub kind: Option<String>,
    /// Only entries since: an RFC 3339 time or a duration ago (`10m`).
    pub since: Option<String>,
    /// At most this many entries, the newest (default 100).
    pub limit: Option<usize>,
}

/// The audit log: every denial and limit hit of every plugin, oldest first.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "admin",
    params(AuditParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Matching entries, oldest first", body = Vec<Object>),
        (status = 400, description = "A bad filter", body = Problem),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
    )
)]
pub(crate) async fn audit(
    State(state): State<AppState>,
    Query(params): Query<AuditParams>,
) -> Result<Json<Vec<warden::AuditEntry>>, Problem> {
    let bad = |detail: String| Problem::new(StatusCode::BAD_REQUEST, "bad-query", detail);
    let kind = params
        .kind
        .as_deref()
        .map(str::parse::<AuditKind>)
        .transpose()
        .map_err(|e| bad(format!("`kind`: {e}")))?;
    let since = params
        .since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(|e| bad(format!("`since`: {e}")))?;
    let query = AuditQuery {
        plugin: params.plugin,
        since,
        kind,
        limit: Some(params.limit.unwrap_or(100)),
    };
    Ok(Json(state.warden.audit().query(&query)?))
}

/// How many history entries to return.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HistoryParams {
    /// At most this many, the newest (default 50).
    pub limit: Option<usize>,
}

/// A plugin's deployment history: deploys, canaries, promotions,
/// rollbacks (with the reason of automatic ones), reloads, restarts and
/// quarantines, oldest first.
#[utoipa::path(
    get,
    path = "/v1/admin/plugins/{name}/history",
    tag = "admin",
    params(("name" = String, Path, description = "The plugin's name"), HistoryParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "History entries, oldest first", body = Vec<Object>),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
    )
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<Vec<warden::HistoryEntry>>, Problem> {
    Ok(Json(
        state.warden.history(&name, params.limit.unwrap_or(50))?,
    ))
}
