//! Errors as HTTP responses: a status code and an RFC 9457 problem body
//! (`application/problem+json`) naming what failed and what to do.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use warden::{Error, TrapKind};

/// An error response.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:warden:problem:<code>`: what kind of failure, for programs.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened, and what to do about it.
    pub detail: String,
    /// The plugin concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Why the plugin trapped (`timeout`, `out-of-memory`, `guest-panic`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trap: Option<String>,
    /// The plugin's own error kind (`invalid-input`, `unsupported`,
    /// `internal`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds after which a retry may succeed (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `status`, code `code` (the `type`'s last part).
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:warden:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            plugin: None,
            trap: None,
            error: None,
            retry_after: None,
        }
    }

    /// Says that a retry may succeed after `wait` (rounded up to seconds).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait.as_millis().div_ceil(1000).max(1) as u64);
        self
    }

    fn plugin(mut self, plugin: &str) -> Self {
        self.plugin = Some(plugin.to_string());
        self
    }

    /// The problem a client of the public API is told about `e`: failures
    /// on the host's side (its files, configuration, engine) keep their
    /// details, which may name paths, in the server's log under `request_id`.
    pub(crate) fn public(e: &Error, request_id: &str) -> Self {
        let mut problem = Problem::from(e);
        if on_host_side(e) {
            tracing::error!(request_id, error = %e, "request failed on the host's side");
            problem.detail = format!(
                "the server could not handle this request; its log has the details under \
                 request id {request_id}"
            );
        }
        problem
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<&Error> for Problem {
    fn from(e: &Error) -> Self {
        let detail = e.to_string();
        match e {
            Error::NotFound { name, .. } => {
                Problem::new(StatusCode::NOT_FOUND, "plugin-not-found", detail).plugin(name)
            }
            Error::Plugin { plugin, error } => {
                let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "plugin-error", detail)
                    .plugin(plugin);
                p.error = Some(
                    match error {
                        warden::PluginError::InvalidInput(_) => "invalid-input",
                        warden::PluginError::Unsupported(_) => "unsupported",
                        warden::PluginError::Internal(_) => "internal",
                    }
                    .to_string(),
                );
                p
            }
            Error::Trap { plugin, kind, .. } => {
                let (status, code) = match kind {
                    TrapKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "plugin-timeout"),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "plugin-trap"),
                };
                // The first line only: guest backtraces stay in the log.
                let detail = first_line(&detail).to_string();
                let mut p = Problem::new(status, code, detail).plugin(plugin);
                p.trap = Some(kind.as_str().to_string());
                p
            }
            Error::Busy { plugin, .. } => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "plugin-busy", detail)
                    .plugin(plugin)
                    .retry_after(Duration::from_secs(1))
            }
            Error::Unavailable {
                plugin,
                retry_after,
                ..
            } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin-unavailable",
                detail,
            )
            .plugin(plugin)
            .retry_after(*retry_after),
            Error::LimitExceeded { plugin, what, .. } => match *what {
                "input" => Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "input-too-large", detail),
                _ => Problem::new(StatusCode::BAD_GATEWAY, "output-too-large", detail),
            }
            .plugin(plugin),
            Error::BatchLimit { .. } => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "batch-too-large", detail)
            }
            Error::Unsupported { plugin, .. } => {
                Problem::new(StatusCode::BAD_REQUEST, "unsupported-operation", detail)
                    .plugin(plugin)
            }
            Error::Linked { plugin, error, .. } => {
                // The provider's problem decides whether retrying helps.
                let inner = Problem::from(&**error);
                let status = match inner.status() {
                    StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => inner.status(),
                    _ => StatusCode::BAD_GATEWAY,
                };
                let detail = first_line(&detail).to_string();
                let mut p = Problem::new(status, "linked-plugin-failed", detail).plugin(plugin);
                p.retry_after = inner.retry_after;
                p.trap = inner.trap;
                p.error = inner.error;
                p
            }
            Error::Deploy { plugin, .. } => {
                Problem::new(StatusCode::CONFLICT, "deploy-conflict", detail).plugin(plugin)
            }
            Error::Signature { plugin, .. } => {
                Problem::new(StatusCode::FORBIDDEN, "signature-refused", detail).plugin(plugin)
            }
            Error::NameClaimed { name, .. } => {
                Problem::new(StatusCode::CONFLICT, "name-claimed", detail).plugin(name)
            }
            Error::InvalidComponent { .. }
            | Error::WrongWorld { .. }
            | Error::UnsupportedContract { .. }
            | Error::UnsatisfiedImport { .. }
            | Error::Manifest { .. }
            | Error::PermissionDenied { .. }
            | Error::Config { .. }
            | Error::Io { .. } => Problem::new(StatusCode::BAD_REQUEST, "invalid-plugin", detail),
            _ => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "host-error", detail),
        }
    }
}

/// Whether `e` is a failure of the host's own (its detail may show its
/// files or configuration), not of the call or the plugin.
fn on_host_side(e: &Error) -> bool {
    match e {
        Error::Linked { error, .. } => on_host_side(error),
        Error::Host(_)
        | Error::HostFailure { .. }
        | Error::Io { .. }
        | Error::Manifest { .. }
        | Error::InvalidComponent { .. }
        | Error::Deploy { .. }
        | Error::Config { .. }
        | Error::NameClaimed { .. }
        | Error::Signature { .. }
        | Error::BlockingInAsync { .. } => true,
        _ => false,
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        Problem::from(&e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The first line of `text`: the cause, without a backtrace after it.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_statuses() {
        let busy = Problem::from(Error::Busy {
            plugin: "p".into(),
            max_instances: 1,
            waited: Duration::from_secs(1),
        });
        assert_eq!(busy.status, 503);
        assert_eq!(busy.retry_after, Some(1));
        let timeout = Problem::from(Error::Trap {
            plugin: "p".into(),
            kind: TrapKind::Timeout,
            message: "deadline\nbacktrace".into(),
        });
        assert_eq!(timeout.status, 504);
        assert_eq!(timeout.trap.as_deref(), Some("timeout"));
        assert!(!timeout.detail.contains("backtrace"), "{}", timeout.detail);
        let input = Problem::from(Error::LimitExceeded {
            plugin: "p".into(),
            what: "input",
            size: 2,
            max: 1,
        });
        assert_eq!(input.status, 413);
        let unavailable = Problem::from(Error::Unavailable {
            plugin: "p".into(),
            version: "1.0.0".into(),
            reason: warden::Unavailability::CircuitOpen,
            retry_after: Duration::from_millis(2500),
        });
        assert_eq!(unavailable.retry_after, Some(3));
        let linked = |error| {
            Problem::from(Error::Linked {
                plugin: "consumer".into(),
                provider: "provider".into(),
                function: "a:b/c#f".into(),
                error: Box::new(error),
            })
        };
        let crashed = linked(Error::Trap {
            plugin: "provider".into(),
            kind: TrapKind::GuestPanic,
            message: "panicked\nbacktrace".into(),
        });
        assert_eq!(crashed.status, 502);
        assert_eq!(crashed.plugin.as_deref(), Some("consumer"));
        assert_eq!(crashed.trap.as_deref(), Some("guest-panic"));
        assert!(!crashed.detail.contains("backtrace"), "{}", crashed.detail);
        let busy = linked(Error::Busy {
            plugin: "provider".into(),
            max_instances: 1,
            waited: Duration::from_secs(1),
        });
        assert_eq!((busy.status, busy.retry_after), (503, Some(1)));
    }
}
