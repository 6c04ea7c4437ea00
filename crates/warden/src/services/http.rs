//! Host service `wasi:http/outgoing-handler`: outbound HTTP through the
//! standard WASI interface, limited to the origins the plugin was granted.
//!
//! Every request passes [`HttpHooks::send_request`]: a request to an origin
//! outside the plugin's effective `http` permissions gets the standard
//! `HTTP-request-denied` error and an audit entry. Allowed requests run with
//! the guest's timeouts clamped to the operator's [`HttpLimits`], and a
//! response body larger than the cap fails with `HTTP-response-body-size`.
//! Redirects are never followed by the host: a 3xx reaches the plugin, and
//! the request it makes next passes the same check.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::{HostService, ServiceContext};
use crate::audit::AuditKind;
use crate::permissions::Origin;
use crate::sandbox::{CallScope, PluginState};

type HttpError = wasmtime_wasi_http::Error;

/// The operator's bounds on plugins' outbound HTTP. A plugin may ask for
/// shorter timeouts (through `request-options`), never longer ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest wait for a TCP connection (and, separately, for the HTTP
    /// handshake on it).
    pub connect_timeout: Duration,
    /// Longest wait for the response head once the request is sent.
    pub first_byte_timeout: Duration,
    /// Longest silence between two chunks of the response body.
    pub between_bytes_timeout: Duration,
    /// Largest response body, in bytes.
    pub max_response_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
            max_response_bytes: 16 << 20,
        }
    }
}

/// The per-instance state of `wasi:http`.
pub(crate) struct Http {
    ctx: WasiHttpCtx,
    hooks: HttpHooks,
}

/// Decides and sends each outgoing request of one plugin instance.
struct HttpHooks {
    scope: Arc<CallScope>,
    allowed: Arc<Vec<Origin>>,
    limits: HttpLimits,
}

impl HostService for Http {
    fn new(ctx: &ServiceContext) -> Self {
        Http {
            ctx: WasiHttpCtx::new(),
            hooks: HttpHooks {
                scope: ctx.scope.clone(),
                allowed: ctx.http_origins.clone(),
                limits: ctx.settings.http,
            },
        }
    }

    /// `wasi:http` reaches its state through [`WasiHttpView`] (it needs the
    /// instance's resource table as well), so `get` is not used.
    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        _get: fn(&mut PluginState) -> &mut Self,
    ) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let (http, table) = self.http_parts();
        WasiHttpCtxView {
            ctx: &mut http.ctx,
            table,
            hooks: &mut http.hooks,
        }
    }
}

/// The boxed futures `send_request` returns.
type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl HttpHooks {
    /// Whether the plugin may send to the request's origin; audits a refusal.
    fn permits(&self, uri: &http::Uri) -> bool {
        // wasi:http always sets the scheme (http or https) before this hook.
        let scheme = uri.scheme_str().unwrap_or_default();
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().or_else(|| Origin::default_port(scheme));
        let allowed =
            port.is_some_and(|port| self.allowed.iter().any(|o| o.allows(scheme, host, port)));
        let port = port.unwrap_or_default();
        if !allowed {
            let origin = format!("{scheme}://{host}:{port}");
            tracing::warn!(plugin = %self.scope.plugin, %origin, "outbound HTTP request denied");
            self.scope.audit(
                AuditKind::HttpDenied,
                origin,
                "request denied: origin not in the plugin's `http` permissions",
            );
        }
        allowed
    }

    /// The guest's timeouts, each capped by the operator's.
    fn clamp(&self, asked: Option<RequestOptions>) -> RequestOptions {
        let asked = asked.unwrap_or_default();
        let cap = |asked: Option<Duration>, max: Duration| Some(asked.map_or(max, |a| a.min(max)));
        RequestOptions {
            connect_timeout: cap(asked.connect_timeout, self.limits.connect_timeout),
            first_byte_timeout: cap(asked.first_byte_timeout, self.limits.first_byte_timeout),
            between_bytes_timeout: cap(
                asked.between_bytes_timeout,
                self.limits.between_bytes_timeout,
            ),
        }
    }
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Sent {
        if !self.permits(request.uri()) {
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let options = self.clamp(options);
        let max = self.limits.max_response_bytes;
        let scope = self.scope.clone();
        let head = request.method() == http::Method::HEAD;
        Box::new(async move {
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            // HEAD, 204 and 304 responses may declare a length but carry no body.
            let bodiless = head
                || matches!(
                    response.status(),
                    http::StatusCode::NO_CONTENT | http::StatusCode::NOT_MODIFIED
                );
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|_| !bodiless);
            if declared.is_some_and(|len| len > max) {
                audit_oversized(&scope, max);
                return Err(HttpError::HttpResponseBodySize(declared));
            }
            let response = response.map(|body| {
                Capped {
                    inner: body.boxed_unsync(),
                    left: max,
                    max,
                    scope,
                }
                .boxed_unsync()
            });
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

fn audit_oversized(scope: &CallScope, max: u64) {
    scope.audit(
        AuditKind::HttpResponseLimit,
        format!("{max} response bytes"),
        "response refused",
    );
}

/// A response body that fails once more than `max` bytes came through.
struct Capped {
    inner: WasiBody,
    left: u64,
    max: u64,
    scope: Arc<CallScope>,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if len > self.left {
                self.left = 0;
                audit_oversized(&self.scope, self.max);
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.max)))));
            }
            self.left -= len;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
