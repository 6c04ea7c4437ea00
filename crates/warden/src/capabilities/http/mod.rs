//! Host service `wasi:http/outgoing-handler`: outbound HTTP through the
//! standard WASI interface, limited to the origins the plugin was granted.
//!
//! A plugin without an `http` permission does not get `wasi:http` at all:
//! every function it imports from it traps (`not-granted`), see [`deny`].
//! For the others, every request passes [`HttpHooks::send_request`]: a
//! request to an origin outside the plugin's effective `http` permissions
//! gets the standard `HTTP-request-denied` error and an audit entry, and so
//! does a granted name that resolves only to internal addresses. Allowed
//! requests are sent by [`send`] with the guest's timeouts clamped to the
//! operator's [`HttpLimits`], and a response body larger than the cap fails
//! with `HTTP-response-body-size`. Redirects are never followed by the
//! host: a 3xx reaches the plugin, and the request it makes next passes the
//! same check.
//!
//! What the host buffers is bounded per handle (a header map holds at most
//! [`FIELD_BYTES`], a request body [`BODY_CHUNK`] twice over) and per
//! request in flight, which is charged to the instance's host budget when
//! `handle` is called and given back when its response ends. A response
//! read to its end leaves its connection to the build's next request to
//! the same origin and address ([`pool`]): at most [`pool::MAX_IDLE`] per
//! build, each for at most [`pool::IDLE_FOR`].

mod pool;
mod runtime;
mod send;

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;
use wasmtime::StoreContextMut;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, Resource};
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler;
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::{Capability, InstanceContext};
use crate::audit::AuditKind;
use crate::budget::{Charge, HostTrap};
use crate::permissions::Origin;
use crate::scope::CallScope;
use crate::state::PluginState;
use pool::ConnectionPool;
pub use pool::{IDLE_FOR as HTTP_IDLE_FOR, MAX_IDLE as HTTP_MAX_IDLE};
use send::{REQUEST_BYTES, Target};

type HttpError = wasmtime_wasi_http::Error;

/// The WASI HTTP version whose `handle` Warden interposes on.
const WASI_HTTP_VERSION: &str = "0.2.12";

/// The most one header map (`fields`) of a plugin may hold, roughly in
/// bytes of its in-memory form.
pub const FIELD_BYTES: usize = 16 << 10;

/// The largest write into an outbound request body; a body buffers at most
/// two of them before they are sent.
pub const BODY_CHUNK: usize = 16 << 10;

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

/// What one loaded build may reach over HTTP, and the connections it
/// keeps between requests.
pub(crate) struct Outbound {
    /// The origins it was granted.
    origins: Vec<Origin>,
    pool: Arc<ConnectionPool>,
}

impl Outbound {
    pub(crate) fn new(origins: Vec<Origin>) -> Self {
        Outbound {
            origins,
            pool: Arc::default(),
        }
    }

    /// Closes the build's idle connections, and those its last requests
    /// give back: it is unloaded.
    pub(crate) fn close(&self) {
        self.pool.close();
    }
}

/// Decides and sends each outgoing request of one plugin instance.
struct HttpHooks {
    scope: Arc<CallScope>,
    outbound: Arc<Outbound>,
    limits: HttpLimits,
    /// The charge of the request `handle` is sending right now.
    charge: Option<Charge>,
    trace: Option<Arc<dyn crate::TraceHooks>>,
}

/// The capability: outbound HTTP (`wasi:http/outgoing-handler`).
pub(crate) struct HttpCapability;

impl Capability for HttpCapability {
    type State = Http;

    fn name(&self) -> &'static str {
        "http"
    }

    fn instance_state(&self, cx: &InstanceContext<'_>) -> Http {
        let ctx = cx.inner;
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_BYTES);
        Http {
            ctx: http,
            hooks: HttpHooks {
                scope: ctx.scope.clone(),
                outbound: ctx.http.clone(),
                limits: ctx.settings.http,
                charge: None,
                trace: ctx.settings.trace.clone(),
            },
        }
    }

    /// `wasi:http` reaches its state through [`WasiHttpView`] (it needs the
    /// instance's resource table as well). `handle` is interposed on to
    /// charge the request to the host budget first.
    /// `wasi:http` reaches its state through [`WasiHttpView`], which
    /// wasmtime's bindings require, rather than through `get`.
    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        _get: fn(&mut PluginState) -> &mut Http,
    ) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
        linker.allow_shadowing(true);
        let mut handler =
            linker.instance(&format!("wasi:http/outgoing-handler@{WASI_HTTP_VERSION}"))?;
        handler.func_wrap(
            "handle",
            move |mut store: StoreContextMut<'_, PluginState>,
                  (request, options): (
                Resource<HostOutgoingRequest>,
                Option<Resource<RequestOptions>>,
            )| {
                let state = store.data_mut();
                let charge = state
                    .budget
                    .charge(REQUEST_BYTES, "an outbound HTTP request")?;
                own(state).hooks.charge = Some(charge);
                let sent = outgoing_handler::Host::handle(&mut state.http(), request, options);
                own(state).hooks.charge = None;
                let sent: Result<Resource<HostFutureIncomingResponse>, _> = match sent {
                    Ok(future) => Ok(future),
                    Err(e) => Err(e.downcast()?),
                };
                Ok((sent,))
            },
        )?;
        linker.allow_shadowing(false);
        Ok(())
    }
}

/// The operator's `http:ORIGIN` grants: the origins plugins may be given.
#[derive(Clone, Default)]
pub(crate) struct HttpGrants(Vec<Origin>);

impl super::Grant for HttpGrants {
    fn prefix(&self) -> &'static str {
        "http"
    }

    fn grant(&mut self, spec: &str) -> Result<(), String> {
        self.0.push(Origin::parse(spec)?);
        Ok(())
    }

    fn granted(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    fn apply(
        &self,
        requested: &crate::permissions::Permissions,
        out: &mut crate::permissions::EffectivePermissions,
        refused: &mut Vec<crate::permissions::Refusal>,
    ) {
        for req in &requested.http {
            match self.0.iter().any(|g| g.covers(&req.origin)) {
                true => out.http.push(req.origin.clone()),
                false => refused.push(crate::permissions::Refusal::not_granted(
                    "http",
                    &req.origin,
                    &req.reason,
                )),
            }
        }
    }

    fn boxed_clone(&self) -> Box<dyn super::Grant> {
        Box::new(self.clone())
    }
}

/// For a plugin without an `http` permission that imports `wasi:http`:
/// makes every function it imports from it trap (`not-granted`), naming
/// the missing permission, so that it has no way to make the host buffer a
/// body or open a connection for it.
pub(crate) fn link_plugin(linking: &mut super::Linking<'_>) -> crate::error::Result<()> {
    let ungranted = linking.permissions.http.is_empty()
        && linking.imports.iter().any(|i| i.starts_with("wasi:http/"));
    if !ungranted {
        return Ok(());
    }
    let (engine, component) = (linking.engine, linking.component);
    let plugin = linking.manifest.name.clone();
    deny(linking.linker(), engine, component, &plugin)
        .map_err(|e| crate::error::Error::host("linking the denied wasi:http", e))
}

fn deny(
    linker: &mut Linker<PluginState>,
    engine: &wasmtime::Engine,
    component: &Component,
    plugin: &str,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(interface) = item.ty else {
            continue;
        };
        if !name.starts_with("wasi:http/") {
            continue;
        }
        let mut instance = linker.instance(name)?;
        for (function, item) in interface.exports(engine) {
            if !matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                continue;
            }
            let message = format!(
                "plugin `{plugin}` called `{name}#{function}` but has no `http` permission; \
                 list the origins it may call under `[permissions] http` in its manifest \
                 (and have the operator grant them)"
            );
            instance.func_new(function, move |_store, _ty, _params, _results| {
                Err(HostTrap::not_granted(message.clone()).into())
            })?;
        }
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The instance's HTTP state, reached without counting a call: for the
/// interposed `handle`, which is counted once, through [`WasiHttpView`].
fn own(state: &mut PluginState) -> &mut Http {
    state.capabilities().at(super::Slot::http as usize)
}

/// Every `wasi:http` function reaches the instance's HTTP state here, which
/// counts the call.
impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let (states, table) = self.capabilities_and_table();
        let http: &mut Http = states.called(super::Slot::http as usize);
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
    /// Where the request goes, if the plugin may send to its origin;
    /// audits a refusal.
    fn permits(&self, uri: &http::Uri) -> Option<Target> {
        let target = Target::of(uri)?;
        if self
            .outbound
            .origins
            .iter()
            .any(|o| o.allows(&target.scheme, &target.host, target.port))
        {
            return Some(target);
        }
        deny_origin(
            &self.scope,
            &target,
            "origin not in the plugin's `http` permissions",
        );
        None
    }

    /// The guest's timeouts, each capped by the operator's.
    fn clamp(&self, asked: Option<RequestOptions>) -> send::Timeouts {
        let asked = asked.unwrap_or_default();
        let cap = |asked: Option<Duration>, max: Duration| asked.map_or(max, |a| a.min(max));
        send::Timeouts {
            connect: cap(asked.connect_timeout, self.limits.connect_timeout),
            first_byte: cap(asked.first_byte_timeout, self.limits.first_byte_timeout),
            between_bytes: cap(
                asked.between_bytes_timeout,
                self.limits.between_bytes_timeout,
            ),
        }
    }
}

impl WasiHttpHooks for HttpHooks {
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        BODY_CHUNK
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Sent {
        let Some(target) = self.permits(request.uri()) else {
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        };
        // `handle` charged it just before; a missing charge would mean a
        // request sent some other way, which is refused.
        let Some(charge) = self.charge.take() else {
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        };
        let span = tracing::debug_span!(
            target: crate::SPAN_TARGET,
            "warden.http",
            plugin = %self.scope.plugin,
            http.request.method = %request.method(),
            server.address = %target.host,
            server.port = target.port,
        );
        let mut request = request;
        if let Some(trace) = &self.trace {
            // The host's context replaces whatever the plugin wrote: the
            // trace is the host's to continue.
            span.in_scope(|| trace.inject(request.headers_mut()));
        }
        let timeouts = self.clamp(options);
        let scope = self.scope.clone();
        let outbound = self.outbound.clone();
        let cap = send::ResponseCap {
            max: self.limits.max_response_bytes,
            scope: scope.clone(),
        };
        let sending = async move {
            let found = crate::firewall::resolve(&scope.plugin, &target.host)
                .await
                .map_err(|_| HttpError::DnsError {
                    rcode: Some("name unresolvable".into()),
                    info_code: None,
                })?;
            let addresses = target.allowed(&outbound.origins, found);
            if addresses.is_empty() {
                deny_origin(
                    &scope,
                    &target,
                    "the name resolves only to internal addresses, which only an origin naming \
                     the address reaches",
                );
                return Err(HttpError::HttpRequestDenied);
            }
            let pool = outbound.pool.clone();
            send::send(request, &target, &addresses, timeouts, charge, cap, pool).await
        }
        .instrument(span);
        Box::new(async move { runtime::spawn(sending)?.join().await? })
    }
}

fn deny_origin(scope: &CallScope, target: &Target, why: &str) {
    let origin = format!("{}://{}:{}", target.scheme, target.host, target.port);
    tracing::warn!(plugin = %scope.plugin, %origin, why, "outbound HTTP request denied");
    scope.audit(
        AuditKind::HttpDenied,
        origin,
        &format!("request denied: {why}"),
    );
}
