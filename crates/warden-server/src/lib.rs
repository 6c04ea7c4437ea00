//! # warden-server
//!
//! Warden as an HTTP server (axum on tokio). The public API
//! calls plugins, validates input, publishes events and runs batches; the
//! admin API (bearer token) deploys, reloads, unloads, quarantines and
//! steers canaries;
//! `/metrics` speaks Prometheus; `/healthz` and `/readyz` answer probes;
//! `/v1/openapi.json` is generated from the handlers' annotations; `/ui`
//! is an operator's dashboard over those APIs.
//!
//! Every connection is bounded in number and in time (see [`listener`]).
//! Every request gets an id (also the plugin call id), is bounded in header
//! and body size, has its body read (within its own deadline) before it
//! waits in a bounded queue for one of a fixed number of slots, and has a
//! deadline. Shutdown stops accepting, lets in-flight requests finish, then
//! shuts the plugins down.

// A handler's error is a `Problem`, built once per failed request and
// turned into the response at once: its size on the stack does not matter.
#![allow(clippy::result_large_err)]
#![warn(missing_docs)]

pub mod admin;
pub mod api;
pub mod batch;
mod error;
pub mod hold;
mod listener;
mod metrics;
pub mod middleware;
mod output;
pub mod problem;
pub mod remote;
mod trace;
mod ui;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use middleware::Gate;
use problem::Problem;
use warden::Warden;

pub use error::{Error, Result};
pub use trace::OpenTelemetryHooks;

/// How the server listens and what it allows.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// The admin API's bearer token; `None` turns the admin API off.
    pub admin_token: Option<String>,
    /// Where uploaded plugins are kept (`None`: uploads are refused).
    pub upload_dir: Option<PathBuf>,
    /// Largest request body (413 past it).
    pub max_body_bytes: usize,
    /// Largest total size of a request's headers (431 past it).
    pub max_header_bytes: usize,
    /// How long a request body may take to arrive (408 past it); it is
    /// read before the request waits for a slot.
    pub body_read_timeout: Duration,
    /// How long a request may take, queueing included (504 past it).
    pub request_timeout: Duration,
    /// Connections open at once; one more is closed at once.
    pub max_connections: usize,
    /// How long a connection may take to deliver a request's headers once
    /// the server waits for them (a new connection, or the next request on
    /// a kept-alive one): the slowloris and the keep-alive idle bound.
    pub header_read_timeout: Duration,
    /// How long a connection may stay with no byte moving while none of
    /// its requests is being handled (a client that stops reading).
    pub idle_timeout: Duration,
    /// Most options one call may pass (query parameters, or a batch call's
    /// `options`); 400 past it.
    pub max_options: usize,
    /// Most output bytes one batch may return, all its calls together;
    /// calls past it are answered 413 without running.
    pub max_batch_output_bytes: u64,
    /// API requests handled at once.
    pub max_concurrency: usize,
    /// API requests waiting for a turn; past it, 503 with `Retry-After`.
    pub max_queue: usize,
    /// Calls of one batch run at once.
    pub batch_concurrency: usize,
    /// Most calls in one batch.
    pub max_batch: usize,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            upload_dir: None,
            max_body_bytes: 16 << 20,
            max_header_bytes: 64 << 10,
            body_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_options: 256,
            max_batch_output_bytes: 64 << 20,
            max_concurrency: 512,
            max_queue: 2048,
            batch_concurrency: 8,
            max_batch: 256,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub(crate) warden: Arc<Warden>,
    pub(crate) settings: ServeSettings,
    http: metrics::HttpMetrics,
    gate: Gate,
    /// False once shutdown began: `/readyz` fails so that load balancers
    /// stop sending requests.
    ready: AtomicBool,
    /// The other nodes, when this server is one of a cluster.
    pub(crate) remote: Option<Arc<dyn remote::Remote>>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The OpenAPI document's frame; the paths come from the handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Warden",
        description = "Sandboxed WebAssembly plugins over HTTP. Errors are RFC 9457 problem \
                       documents (`application/problem+json`)."
    ),
    modifiers(&AdminToken),
    tags(
        (name = "plugins", description = "Calling plugins and describing them"),
        (name = "events", description = "The event bus"),
        (name = "admin", description = "Deployments and the audit log (bearer token)"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
struct ApiDoc;

struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The liveness probe: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Object)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The readiness probe: plugins are loaded and the server is not
/// shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready: the loaded plugins", body = Object),
        (status = 503, description = "Not ready: no plugin loaded, or shutting down", body = Problem),
    ))]
async fn readyz(State(state): State<AppState>) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return middleware::shutting_down().into_response();
    }
    let plugins: Vec<String> = state
        .warden
        .deployments()
        .into_iter()
        .map(|d| d.plugin)
        .collect();
    if plugins.is_empty() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-plugins",
            "no plugin is loaded",
        )
        .into_response();
    }
    Json(serde_json::json!({ "status": "ready", "plugins": plugins })).into_response()
}

/// The API routes, each with its OpenAPI description.
fn documented_routes(state: &AppState) -> OpenApiRouter<AppState> {
    use axum::middleware::from_fn_with_state;
    // The public API waits its turn in the gate; the admin API does not,
    // so that an operator can still roll back a server at its limit.
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::process))
        .routes(routes!(api::validate))
        .routes(routes!(batch::batch))
        .routes(routes!(api::publish_event))
        .routes(routes!(api::list_plugins))
        .routes(routes!(api::get_plugin))
        .routes(routes!(remote::cluster))
        .route_layer(from_fn_with_state(state.clone(), middleware::admit))
        // Outside the gate: a slow or large body never holds a slot.
        .route_layer(from_fn_with_state(state.clone(), middleware::read_body));
    if state.settings.admin_token.is_some() {
        let admin = OpenApiRouter::new()
            .routes(routes!(admin::deploy))
            .routes(routes!(admin::upload))
            .routes(routes!(admin::reload))
            .routes(routes!(admin::unload))
            .routes(routes!(admin::canary))
            .routes(routes!(admin::promote))
            .routes(routes!(admin::rollback))
            .routes(routes!(hold::quarantine))
            .routes(routes!(hold::release))
            .routes(routes!(admin::audit))
            .routes(routes!(admin::history))
            .route_layer(from_fn_with_state(state.clone(), admin::require_token));
        api = api.merge(admin);
    }
    let operations = OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics::metrics));
    api.merge(operations)
}

/// The OpenAPI document of a server with `settings` (its admin routes
/// appear when it has an admin token).
pub fn openapi(warden: Arc<Warden>, settings: ServeSettings) -> utoipa::openapi::OpenApi {
    documented_routes(&state(warden, settings, None))
        .split_for_parts()
        .1
}

fn state(
    warden: Arc<Warden>,
    settings: ServeSettings,
    remote: Option<Arc<dyn remote::Remote>>,
) -> AppState {
    AppState(Arc::new(Shared {
        remote,
        http: metrics::HttpMetrics::new(warden.clone()),
        gate: Gate::new(settings.max_concurrency, settings.max_queue),
        ready: AtomicBool::new(true),
        warden,
        settings,
    }))
}

/// The server's routes, ready to mount in an application's own axum
/// server (or to run with [`Server`]).
pub fn router(warden: Arc<Warden>, settings: ServeSettings) -> Router {
    build(state(warden, settings, None))
}

fn build(state: AppState) -> Router {
    use axum::middleware::from_fn_with_state;
    let (routes, openapi) = documented_routes(&state).split_for_parts();
    let document = Arc::new(openapi.to_pretty_json().unwrap_or_default());
    routes
        .route(
            "/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        document.as_str().to_string(),
                    )
                }
            }),
        )
        .route_layer(from_fn_with_state(state.clone(), middleware::observe))
        .merge(ui::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-route",
        format!(
            "no route {}; the API is described at /v1/openapi.json",
            uri.path()
        ),
    )
}

/// A bound server: [`Server::bind`], then [`Server::run`].
pub struct Server {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Server {
    /// Binds `settings.listen` for `warden`'s plugins.
    pub async fn bind(warden: Arc<Warden>, settings: ServeSettings) -> Result<Server> {
        Server::bind_in_cluster(warden, settings, None).await
    }

    /// [`Server::bind`] for a node of a cluster: calls it cannot serve go
    /// to `remote`, and admin changes are told to it.
    pub async fn bind_in_cluster(
        warden: Arc<Warden>,
        settings: ServeSettings,
        remote: Option<Arc<dyn remote::Remote>>,
    ) -> Result<Server> {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: settings.listen,
                source,
            })?;
        Ok(Server {
            listener,
            state: state(warden, settings, remote),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|source| Error::Bind {
            addr: self.state.settings.listen,
            source,
        })
    }

    /// Serves until `shutdown` completes; then stops accepting, lets
    /// in-flight requests finish (up to `shutdown_grace`), and shuts the
    /// plugins down.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let state = self.state.clone();
        let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
        let signal = {
            let state = state.clone();
            async move {
                shutdown.await;
                state.ready.store(false, Ordering::SeqCst);
                state.gate.close();
                tracing::info!("shutting down: finishing in-flight requests");
                let _ = stopping_tx.send(true);
            }
        };
        let app = build(state.clone());
        let settings = &state.settings;
        let limits = listener::ConnectionLimits {
            max_connections: settings.max_connections,
            header_read_timeout: settings.header_read_timeout,
            idle_timeout: settings.idle_timeout,
            max_header_bytes: settings.max_header_bytes,
        };
        let serve = listener::serve(self.listener, app, limits, stopping_rx.clone());
        tokio::spawn(signal);
        let grace = settings.shutdown_grace;
        let mut stopping = stopping_rx;
        tokio::select! {
            () = serve => {}
            () = async {
                let _ = stopping.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace = ?grace, "in-flight requests did not finish in time; stopping anyway");
            }
        }
        if tokio::time::timeout(grace, state.warden.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?grace, "plugins did not shut down in time; stopping anyway");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this
/// is called, not when the future is first polled: a signal that arrives
/// while the server is still starting (after the caller announced it)
/// stops it cleanly instead of killing the process. Call it inside the
/// runtime, before anything is announced.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            // A handler that could not be installed never fires.
            let recv = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = recv(interrupt) => {}
                () = recv(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
