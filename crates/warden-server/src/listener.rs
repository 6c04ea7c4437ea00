//! Accepting connections, each bounded in what it may cost the server.
//!
//! At most [`ConnectionLimits::max_connections`] are open at once. When a
//! new one comes at the limit, the open connection idle the longest (not
//! handling a request, no byte moved for the longest time) is closed to
//! make room; if every connection is handling a request, the new one is
//! closed instead.
//! So connections held open on purpose cannot lock out a client that has a
//! request to make (a connection slowly sending a body counts as idle
//! between its bytes). A connection must deliver each
//! request's headers within the header-read timeout of the server waiting
//! for them (a slowloris client, or a kept-alive connection left idle, is
//! closed), and a connection on which no byte moves for the idle timeout
//! while no request of it is being handled is closed too (a client that
//! stops reading its response). Headers larger than the server's limit end
//! the connection with 431. At shutdown, every connection finishes the
//! request it is serving and closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tower::ServiceExt;

/// What one connection may cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_header_bytes: usize,
}

/// Serves `app` on `listener` until `stop` turns true; then lets open
/// connections finish what they are serving and returns once they are
/// closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let open_now: Arc<Mutex<HashMap<u64, Open>>> = Arc::default();
    let mut next_id = 0u64;
    let refused = AtomicU64::new(0);
    let mut open = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        // Finished connections are reaped as new ones come.
        while open.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: wait instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !make_room(&open_now, limits.max_connections) {
            let n = refused.fetch_add(1, Ordering::Relaxed) + 1;
            if n % 1000 == 1 {
                tracing::warn!(%peer, refused = n, max = limits.max_connections, "connection refused: every connection is busy (`server.max-connections`)");
            }
            drop(stream);
            continue;
        }
        let activity = Arc::new(Activity::new());
        let (app, stop, id) = (app.clone(), stop.clone(), next_id);
        next_id += 1;
        let tracked = (open_now.clone(), activity.clone());
        // Held while spawning: the task cannot forget the connection
        // before it is tracked.
        let mut tracking = lock(&open_now);
        let handle = open.spawn(async move {
            let _gone = Gone(tracked.0, id);
            connection(stream, app, tracked.1, limits, stop).await;
        });
        tracking.insert(id, Open { activity, handle });
        drop(tracking);
    }
    drop(listener);
    while open.join_next().await.is_some() {}
}

/// An open connection, as the accept loop tracks it.
struct Open {
    activity: Arc<Activity>,
    handle: AbortHandle,
}

/// Forgets connection `.1` when its task ends.
struct Gone(Arc<Mutex<HashMap<u64, Open>>>, u64);

impl Drop for Gone {
    fn drop(&mut self) {
        lock(&self.0).remove(&self.1);
    }
}

/// Whether a new connection may open: below the limit, or after closing
/// the connection idle the longest to make room for it.
fn make_room(open: &Mutex<HashMap<u64, Open>>, max: usize) -> bool {
    let mut open = lock(open);
    if open.len() < max.max(1) {
        return true;
    }
    // The freshest connections are the last to go: a client that just
    // connected is about to send its request.
    let victim = open
        .iter()
        .map(|(id, o)| (o.activity.idle_for(), *id))
        .filter(|(idle, _)| !idle.is_zero())
        .max();
    match victim.and_then(|(_, id)| open.remove(&id)) {
        Some(victim) => {
            victim.handle.abort();
            true
        }
        None => false,
    }
}

/// Serves one connection within its limits.
async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let busy = Busy::enter(in_flight.clone());
        let app = app.clone();
        let mut request = request.map(axum::body::Body::new);
        request
            .extensions_mut()
            .insert(Connection(in_flight.clone()));
        async move {
            let response = app.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.saturating_add(8 << 10).max(8192));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = watchdog.tick() => {
                if activity.idle_for() >= limits.idle_timeout {
                    return;
                }
            }
        }
    }
}

/// The connection a request came on, in the request's extensions: reading
/// its body is not handling it ([`Connection::reading_body`]).
#[derive(Clone)]
pub(crate) struct Connection(Arc<Activity>);

impl Connection {
    /// While the returned guard lives, the request counts as not being
    /// handled: a connection trickling a body is as idle as its last byte,
    /// so it can be closed to make room.
    pub(crate) fn reading_body(&self) -> ReadingBody {
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
        ReadingBody(self.0.clone())
    }
}

/// See [`Connection::reading_body`].
pub(crate) struct ReadingBody(Arc<Activity>);

impl Drop for ReadingBody {
    fn drop(&mut self) {
        self.0.handling.fetch_add(1, Ordering::Relaxed);
    }
}

/// When bytes last moved on a connection, and how many of its requests
/// are being handled.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    handling: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// How long nothing has moved; zero while a request is being handled
    /// (a plugin call may take its time, bounded by the request timeout).
    fn idle_for(&self) -> Duration {
        if self.handling.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// A request of the connection being handled, until dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: Arc<Activity>) -> Self {
        activity.handling.fetch_add(1, Ordering::Relaxed);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that notes every byte moved.
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connections map, even after a panic elsewhere poisoned its lock:
/// its entries are plain data, valid at every step.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
