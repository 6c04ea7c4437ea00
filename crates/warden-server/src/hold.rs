//! Operator quarantine on the admin API: take a plugin version out of
//! service until it is released, and release it (or one the health
//! monitor quarantined).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::problem::Problem;

/// The longest reason kept with a quarantine, in characters.
const MAX_REASON_CHARS: usize = 200;

/// Why a plugin is quarantined.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct QuarantineRequest {
    /// Shown in the audit log and the deployment history (at most 200
    /// characters are kept).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The version a quarantine or release applied to.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldVersion {
    /// The plugin's name.
    pub plugin: String,
    /// The version quarantined or released.
    pub version: String,
    /// Whether it refuses calls now.
    pub quarantined: bool,
}

/// Quarantine a plugin version: its calls are refused with 503 until it
/// is released; running calls finish; no restart brings it back.
#[utoipa::path(
    post,
    path = "/v1/admin/plugins/{target}/quarantine",
    tag = "admin",
    params(("target" = String, Path, description = "`name` (its stable version) or `name@1.2.0`")),
    request_body(content = Option<QuarantineRequest>, description = "Optional: why"),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Quarantined", body = HeldVersion),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
        (status = 404, description = "No such plugin", body = Problem),
    )
)]
pub(crate) async fn quarantine(
    State(state): State<AppState>,
    Path(target): Path<String>,
    request: Option<Json<QuarantineRequest>>,
) -> Result<Json<HeldVersion>, Problem> {
    let reason: String = request
        .and_then(|Json(r)| r.reason)
        .unwrap_or_else(|| "no reason given".to_string())
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    let version = state.warden.quarantine(&target, &reason)?;
    Ok(Json(held(&target, version, true)))
}

/// Release a quarantined plugin version (by an operator or the health
/// monitor): it takes calls again.
#[utoipa::path(
    post,
    path = "/v1/admin/plugins/{target}/release",
    tag = "admin",
    params(("target" = String, Path, description = "`name` (its stable version) or `name@1.2.0`")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Released", body = HeldVersion),
        (status = 401, description = "Missing or wrong admin token", body = Problem),
        (status = 404, description = "No such plugin", body = Problem),
        (status = 409, description = "It is not quarantined", body = Problem),
    )
)]
pub(crate) async fn release(
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> Result<Json<HeldVersion>, Problem> {
    let version = state.warden.release(&target)?;
    Ok(Json(held(&target, version, false)))
}

fn held(target: &str, version: semver::Version, quarantined: bool) -> HeldVersion {
    let name = target.split_once('@').map_or(target, |(name, _)| name);
    HeldVersion {
        plugin: name.to_string(),
        version: version.to_string(),
        quarantined,
    }
}
