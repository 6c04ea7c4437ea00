//! Sending one outbound request of a plugin. The host name is resolved
//! once and every address is checked against the plugin's origins: a name
//! never reaches an [internal](crate::permissions::is_internal) address,
//! only an origin naming the address itself does. The connection goes to an
//! address that passed, so DNS cannot answer differently between the check
//! and the connection, and TLS is verified against the name. The
//! connection holds its charge on the instance's host budget until it ends.

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
use super::runtime::{self, Task};
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

/// The future that reports how the connection ended.
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

/// Sends `request` to `target` at one of `addresses`, within
/// `timeouts`; the connection and `charge` live as long as the response,
/// whose body stops at `cap`.
pub(super) async fn send(
    mut request: http::Request<WasiBody>,
    target: &Target,
    addresses: &[IpAddr],
    timeouts: Timeouts,
    charge: Charge,
    cap: ResponseCap,
) -> Result<(http::Response<WasiBody>, Finished), HttpError> {
    let head = request.method() == http::Method::HEAD;
    let connect_timeout = timeouts.connect;
    let tcp = connect(addresses, target.port, connect_timeout).await?;
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
    let (mut sender, connection) = tokio::time::timeout(connect_timeout, handshake)
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    // The connection runs beside the request and ends with the response;
    // dropping what waits for it ends it at once, charge and all.
    let driver = Driver(runtime::spawn(async move {
        let _charge = charge;
        connection.await
    })?);
    // Only a proxy is sent the scheme and authority.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    *request.uri_mut() = path;
    let first_byte = timeouts.first_byte;
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    cap.check_declared(&response, head)?;
    let between_bytes = timeouts.between_bytes;
    let response = response.map(|incoming| {
        ResponseBody {
            incoming,
            between_bytes,
            timer: Box::pin(tokio::time::sleep(between_bytes)),
            left: cap.max,
            cap,
        }
        .boxed_unsync()
    });
    let finished: Finished = Box::new(async move { driver.finished().await });
    Ok((response, finished))
}

/// The task driving a connection, ended when dropped.
struct Driver(Task<hyper::Result<()>>);

impl Driver {
    async fn finished(self) -> Result<(), HttpError> {
        match self.0.join().await? {
            Ok(()) => Ok(()),
            Err(e) if e.is_timeout() => Err(HttpError::HttpResponseTimeout),
            Err(e) => Err(e.into()),
        }
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
                        return Poll::Ready(Some(Err(self.cap.refuse(Some(self.cap.max)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
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
