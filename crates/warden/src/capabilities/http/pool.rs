//! Keep-alive for a plugin's outbound connections: after a response has
//! been read to its end, its HTTP/1 connection waits here for the same
//! plugin build's next request to the same origin and address, instead of
//! a new TCP connection (and TLS handshake) per request.
//!
//! One pool per loaded build, so no plugin ever sends over a connection
//! another plugin (or another build of it) opened; unloading the build
//! closes its connections. A connection goes back to the pool when its
//! response came to its end, and serves a request only once hyper says it
//! can take one (the request before it fully written too, neither side
//! asked to close): at most [`MAX_IDLE`] per build, for at most
//! [`IDLE_FOR`] (a task of the outbound runtime closes them as they
//! expire). A connection whose response was cut short (dropped, over the
//! size cap, timed out, failed) is closed at once. While idle, a
//! connection holds its socket and hyper's buffers for its build, not for
//! an instance: that is a fixed allowance of [`MAX_IDLE`] connections per
//! build, outside the instances' `host-memory-mb`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;
use wasmtime_wasi_http::WasiBody;

use super::runtime::{self, Task};
use crate::locks::lock;

/// The most connections one plugin build keeps open between requests.
pub const MAX_IDLE: usize = 4;

/// How long a request waits for an idle connection to become ready (hyper
/// has just seen the previous response's end, or is still writing a
/// request body the server answered before it was all sent) before it
/// opens a new connection instead.
pub(super) const READY_WAIT: Duration = Duration::from_millis(250);

/// How long a connection waits for its next request. Shorter than the
/// keep-alive of common servers (Node.js closes after 5 s), so that the
/// host seldom sends on a connection the server is closing.
pub const IDLE_FOR: Duration = Duration::from_secs(4);

/// Where a connection goes: a request may use it only if its own URL and
/// one of the addresses its checks allowed match all of it. TLS was
/// verified against `host`.
#[derive(Debug)]
pub(super) struct Key {
    pub(super) scheme: String,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) ip: IpAddr,
}

/// An open HTTP/1 connection: what sends on it, and the task that drives
/// it (which closes it when dropped).
pub(super) struct Conn {
    pub(super) sender: SendRequest<WasiBody>,
    pub(super) driver: Task<hyper::Result<()>>,
}

impl Conn {
    /// Whether neither side has closed the connection.
    fn is_open(&self) -> bool {
        !self.sender.is_closed() && !self.driver.is_finished()
    }
}

struct Idle {
    key: Key,
    conn: Conn,
    since: Instant,
}

#[derive(Default)]
struct State {
    /// Oldest first.
    idle: Vec<Idle>,
    /// Whether a task is waiting to close the idle connections as they
    /// expire.
    reaping: bool,
    /// Whether the build was unloaded.
    closed: bool,
}

/// One plugin build's idle connections.
#[derive(Default)]
pub struct ConnectionPool {
    state: Mutex<State>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("idle", &self.idle())
            .finish()
    }
}

impl Key {
    /// The key of a connection to `ip` for a request to `scheme://host:port`
    /// (host in lower case, as every request's target has it).
    pub(super) fn new(scheme: &str, host: &str, port: u16, ip: IpAddr) -> Key {
        Key {
            scheme: scheme.to_string(),
            host: host.to_string(),
            port,
            ip: ip.to_canonical(),
        }
    }

    /// Whether a request to `scheme://host:port`, whose checks allowed
    /// `addresses`, may go over this connection.
    pub(super) fn fits(&self, scheme: &str, host: &str, port: u16, addresses: &[IpAddr]) -> bool {
        self.scheme == scheme
            && self.host == host
            && self.port == port
            && addresses.contains(&self.ip)
    }
}

impl ConnectionPool {
    /// Takes an idle connection whose key `fits`, if any: the most recent
    /// that can take a request now, else the most recent; closes those
    /// that expired or whose peer closed them.
    pub(super) fn take(&self, fits: impl Fn(&Key) -> bool) -> Option<(Key, Conn)> {
        let mut state = lock(&self.state);
        let closed = prune(&mut state.idle);
        let idle = &state.idle;
        let found = idle
            .iter()
            .rposition(|i| fits(&i.key) && i.conn.sender.is_ready())
            .or_else(|| idle.iter().rposition(|i| fits(&i.key)));
        let taken = found.map(|at| state.idle.remove(at));
        drop(state);
        drop(closed);
        taken.map(|i| (i.key, i.conn))
    }

    /// Keeps `conn` for the next request to `key`, unless it cannot be
    /// reused; the oldest idle connection makes room when the pool is full.
    pub(super) fn put(self: &Arc<Self>, key: Key, conn: Conn) {
        if !conn.is_open() {
            return;
        }
        let mut state = lock(&self.state);
        if state.closed {
            return;
        }
        let mut closed = prune(&mut state.idle);
        if state.idle.len() >= MAX_IDLE {
            closed.push(state.idle.remove(0));
        }
        state.idle.push(Idle {
            key,
            conn,
            since: Instant::now(),
        });
        if !state.reaping {
            state.reaping = runtime::detach(reap(Arc::downgrade(self))).is_ok();
        }
        drop(state);
        drop(closed);
    }

    /// Closes every idle connection, and each one given back from now on:
    /// the build is unloaded.
    pub(super) fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        let idle = std::mem::take(&mut state.idle);
        drop(state);
        drop(idle);
    }

    fn idle(&self) -> usize {
        lock(&self.state).idle.len()
    }
}

/// Closes `pool`'s idle connections as they expire, until none is left or
/// the pool is gone.
async fn reap(pool: Weak<ConnectionPool>) {
    loop {
        let next = {
            let Some(pool) = pool.upgrade() else { return };
            let mut state = lock(&pool.state);
            let closed = prune(&mut state.idle);
            let next = state.idle.first().map(|i| i.since + IDLE_FOR);
            if next.is_none() {
                state.reaping = false;
            }
            drop(state);
            drop(closed);
            next
        };
        let Some(next) = next else { return };
        tokio::time::sleep_until(next.into()).await;
    }
}

/// Removes the connections that expired or were closed, for the caller to
/// drop once the lock is released.
fn prune(idle: &mut Vec<Idle>) -> Vec<Idle> {
    let now = Instant::now();
    let (kept, gone): (Vec<Idle>, Vec<Idle>) = std::mem::take(idle)
        .into_iter()
        .partition(|i| now.duration_since(i.since) < IDLE_FOR && i.conn.is_open());
    *idle = kept;
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_fits_only_its_own_origin_and_an_allowed_address() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let key = Key::new("https", "api.example.com", 443, ip("::ffff:93.184.216.34"));
        let allowed = [ip("93.184.216.34")];
        assert!(key.fits("https", "api.example.com", 443, &allowed));
        assert!(
            !key.fits("http", "api.example.com", 443, &allowed),
            "scheme"
        );
        assert!(
            !key.fits("https", "other.example.com", 443, &allowed),
            "host"
        );
        assert!(
            !key.fits("https", "api.example.com", 8443, &allowed),
            "port"
        );
        assert!(
            !key.fits("https", "api.example.com", 443, &[ip("93.184.216.35")]),
            "address not allowed this time"
        );
        assert!(!key.fits("https", "api.example.com", 443, &[]));
    }
}
