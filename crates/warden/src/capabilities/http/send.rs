//! Sending one outbound request of a plugin. The host name is resolved
//! once and every address is checked against the plugin's origins: a name
//! never reaches an [internal](crate::permissions::is_internal) address,
//! only an origin naming the address itself does. The connection goes to an
//! address that passed, so DNS cannot answer differently between the check
//! and the connection, and TLS is verified against the name. A connection
//! the build's [pool](super::pool) kept from an earlier request goes to
//! such an address too: it is reused only when the request's own checks
//! allowed its address. A request holds its charge on the instance's host
//! budget until its response ends.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use wasmtime_wasi_http::WasiBody;

use super::HttpError;
use super::pool::{Conn, ConnectionPool, Key, READY_WAIT};
use super::runtime;
use crate::audit::AuditKind;
use crate::budget::Charge;
use crate::permissions::Origin;
use crate::scope::CallScope;

/// What one request in flight is charged on the host budget: the
/// connection's read buffer ([`READ_BUFFER`]), its write and TLS buffers.
pub(super) const REQUEST_BYTES: u64 = 192 << 10;

/// The most a response's connection buffers before the plugin reads it.
const READ_BUFFER: usize = 64 << 10;

/// Where a request goes, as its URL says.
pub(super) struct Target {
    pub(super) scheme: String,
    pub(super) host: String,
    pub(super) port: u16,
}

impl Target {
    pub(super) fn of(uri: &http::Uri) -> Option<Target> {
        // wasi:http always sets the scheme (http or https) before the hook.
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let port = uri.port_u16().or_else(|| Origin::default_port(&scheme))?;
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        Some(Target {
            host: host.to_ascii_lowercase(),
            scheme,
            port,
        })
    }

    /// Of the addresses the host resolved to, those an origin allows: any
    /// address an origin names by address; a public address of a host an
    /// origin names.
    pub(super) fn allowed(&self, origins: &[Origin], found: Vec<IpAddr>) -> Vec<IpAddr> {
        found
            .into_iter()
            .map(|ip| ip.to_canonical())
            .filter(|ip| {
                origins.iter().any(|o| {
                    o.scheme == self.scheme
                        && o.port == self.port
                        && o.host.reaches(&self.host, *ip)
                })
            })
            .collect()
    }
}

/// Connects to the first of `addresses` that answers, within `timeout`.
async fn connect(
    addresses: &[IpAddr],
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, HttpError> {
    let attempt = async {
        let mut last = None;
        for ip in addresses {
            match TcpStream::connect(SocketAddr::new(*ip, port)).await {
                // A request is written in pieces (head, body chunks): no
                // piece may wait for the peer's delayed acknowledgement.
                Ok(stream) => {
                    return stream
                        .set_nodelay(true)
                        .map(|()| stream)
                        .map_err(HttpError::Connect);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(HttpError::Connect(last.unwrap_or_else(|| {
            std::io::Error::from(std::io::ErrorKind::AddrNotAvailable)
        })))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(HttpError::ConnectionTimeout))
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, HttpError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| HttpError::InternalError(Some(format!("TLS set-up: {e}"))))
}

/// A stream the connection runs over: plain TCP or TLS on it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

/// How long each step of a request may take.
pub(super) struct Timeouts {
    pub(super) connect: Duration,
    pub(super) first_byte: Duration,
    pub(super) between_bytes: Duration,
}

/// The future `wasi:http` waits on beside a response (for the end of the
/// work behind it).
pub(super) type Finished = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// The most a response body may bring, and whose audit log hears of one
/// that brings more.
pub(super) struct ResponseCap {
    pub(super) max: u64,
    pub(super) scope: Arc<CallScope>,
}

impl ResponseCap {
    /// Refuses a response that declares more than the cap. HEAD, 204 and
    /// 304 responses may declare a length but carry no body.
    fn check_declared(
        &self,
        response: &http::Response<impl Body>,
        head: bool,
    ) -> Result<(), HttpError> {
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
        match declared {
            Some(len) if len > self.max => Err(self.refuse(Some(len))),
            _ => Ok(()),
        }
    }

    fn refuse(&self, size: Option<u64>) -> HttpError {
        self.scope.audit(
            AuditKind::HttpResponseLimit,
            format!("{} response bytes", self.max),
            "response refused",
        );
        HttpError::HttpResponseBodySize(size)
    }
}

/// Sends `request` to `target` at one of `addresses`, within `timeouts`,
/// over an idle connection of `pool` that fits or a new one; `charge` lives
/// as long as the response, whose body stops at `cap` and gives the
/// connection back to `pool` when it comes to its end.
pub(super) async fn send(
    mut request: http::Request<WasiBody>,
    target: &Target,
    addresses: &[IpAddr],
    timeouts: Timeouts,
    charge: Charge,
    cap: ResponseCap,
    pool: Arc<ConnectionPool>,
) -> Result<(http::Response<WasiBody>, Finished), HttpError> {
    let head = request.method() == http::Method::HEAD;
    // Only a proxy is sent the scheme and authority.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    *request.uri_mut() = path;
    let first_byte = timeouts.first_byte;
    let fits = |key: &Key| key.fits(&target.scheme, &target.host, target.port, addresses);
    let sent = match pool.take(fits) {
        Some((key, conn)) => send_reused(key, conn, request, &timeouts).await?,
        None => Err(request),
    };
    let (key, conn, response) = match sent {
        Ok(sent) => sent,
        Err(request) => {
            let (key, mut conn) = open(target, addresses, timeouts.connect).await?;
            let response = tokio::time::timeout(first_byte, conn.sender.send_request(request))
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout)??;
            (key, conn, response)
        }
    };
    cap.check_declared(&response, head)?;
    let mut lease = Some(Lease { pool, key, conn });
    if response.body().is_end_stream()
        && let Some(lease) = lease.take()
    {
        lease.give_back();
    }
    let between_bytes = timeouts.between_bytes;
    let response = response.map(|incoming| {
        ResponseBody {
            incoming,
            between_bytes,
            timer: Box::pin(tokio::time::sleep(between_bytes)),
            left: cap.max,
            cap,
            lease,
            charge: Some(charge),
        }
        .boxed_unsync()
    });
    // The connection outlives the response when it is kept, so there is
    // no end of it to report (wasmtime's `wasi:http` 0.2 only logged it).
    let finished: Finished = Box::new(async { Ok(()) });
    Ok((response, finished))
}

/// A request sent, the connection it went over and the response's head.
type Answered = (Key, Conn, http::Response<hyper::body::Incoming>);

/// Sends `request` over the idle connection `conn` once it is ready, or
/// gives it back unsent when the connection is not ready within
/// [`READY_WAIT`] or turns out closed before a byte of it was written (it
/// is dropped then). One closed after that fails the request: it may have
/// reached the server, and is not sent twice.
async fn send_reused(
    key: Key,
    mut conn: Conn,
    request: http::Request<WasiBody>,
    timeouts: &Timeouts,
) -> Result<Result<Answered, http::Request<WasiBody>>, HttpError> {
    let wait = READY_WAIT.min(timeouts.connect);
    if !matches!(
        tokio::time::timeout(wait, conn.sender.ready()).await,
        Ok(Ok(()))
    ) {
        return Ok(Err(request));
    }
    let sent = tokio::time::timeout(timeouts.first_byte, conn.sender.try_send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?;
    match sent {
        Ok(response) => Ok(Ok((key, conn, response))),
        // Not written: the server closed the connection while it was idle.
        Err(mut e) => match e.take_message() {
            Some(unsent) => Ok(Err(unsent)),
            None => Err(e.into_error().into()),
        },
    }
}

/// A new connection to `target` at the first of `addresses` that answers,
/// over TLS for `https`, ready for HTTP/1 requests.
async fn open(
    target: &Target,
    addresses: &[IpAddr],
    connect_timeout: Duration,
) -> Result<(Key, Conn), HttpError> {
    let tcp = connect(addresses, target.port, connect_timeout).await?;
    let ip = tcp.peer_addr().map_err(HttpError::Connect)?.ip();
    let stream: Box<dyn Io> = if target.scheme == "https" {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = tokio_rustls::TlsConnector::from(tls_config()?);
        let handshake = tokio::time::timeout(connect_timeout, tls.connect(name, tcp));
        Box::new(
            handshake
                .await
                .map_err(|_| HttpError::ConnectionTimeout)?
                .map_err(HttpError::Tls)?,
        )
    } else {
        Box::new(tcp)
    };
    let handshake = hyper::client::conn::http1::Builder::new()
        .max_buf_size(READ_BUFFER)
        .handshake(TokioIo::new(stream));
    let (sender, connection) = tokio::time::timeout(connect_timeout, handshake)
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    // The connection runs beside its requests; dropping its task closes it.
    let driver = runtime::spawn(connection)?;
    let key = Key::new(&target.scheme, &target.host, target.port, ip);
    Ok((key, Conn { sender, driver }))
}

/// A connection in use by one response, and the pool it goes back to.
struct Lease {
    pool: Arc<ConnectionPool>,
    key: Key,
    conn: Conn,
}

impl Lease {
    fn give_back(self) {
        self.pool.put(self.key, self.conn);
    }
}

/// A response body as the plugin reads it: it fails after `between_bytes`
/// without a frame, and once more than the cap came through.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    between_bytes: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    left: u64,
    cap: ResponseCap,
    /// The connection, given back to its pool when the body comes to its
    /// end and closed if it does not.
    lease: Option<Lease>,
    /// The response's share of the instance's host budget, until it ends.
    charge: Option<Charge>,
}

impl ResponseBody {
    /// The body ended: the connection may serve another request.
    fn ended(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.give_back();
        }
        self.charge = None;
    }

    /// The body failed: its connection cannot be trusted with another
    /// request, and closes now.
    fn failed(&mut self, e: HttpError) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        self.lease = None;
        self.charge = None;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.between_bytes;
                self.timer.as_mut().reset(next);
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                match self.left.checked_sub(len) {
                    Some(left) => self.left = left,
                    None => {
                        self.left = 0;
                        let refused = self.cap.refuse(Some(self.cap.max));
                        return self.failed(refused);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                self.failed(HttpError::HttpResponseTimeout)
            }
            Poll::Ready(Some(Err(e))) => self.failed(e.into()),
            Poll::Ready(None) => {
                self.ended();
                Poll::Ready(None)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => self.failed(HttpError::ConnectionReadTimeout),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_reach_internal_addresses() {
        let origins = [
            Origin::parse("https://api.example.com").expect("origin"),
            Origin::parse("http://127.0.0.1:8080").expect("origin"),
            Origin::parse("https://*").expect("origin"),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let target = |url: &str| Target::of(&url.parse().expect("uri")).expect("target");
        let named = target("https://api.example.com/x");
        let found = vec![
            ip("93.184.216.34"),
            ip("127.0.0.1"),
            ip("10.1.2.3"),
            ip("::ffff:169.254.169.254"),
        ];
        assert_eq!(
            named.allowed(&origins, found.clone()),
            [ip("93.184.216.34")]
        );
        let by_address = target("http://127.0.0.1:8080/");
        assert_eq!(
            by_address.allowed(&origins, vec![ip("127.0.0.1")]),
            [ip("127.0.0.1")]
        );
        let other_port = target("http://127.0.0.1:9090/");
        assert!(
            other_port
                .allowed(&origins, vec![ip("127.0.0.1")])
                .is_empty()
        );
        let literal = target("https://10.1.2.3/");
        assert!(
            literal.allowed(&origins, vec![ip("10.1.2.3")]).is_empty(),
            "`*` is no address grant"
        );
    }
}
