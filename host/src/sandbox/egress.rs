//! The wasi-http send hook: the only way a guest reaches the network.
//!
//! A request is checked against the tenant's allowlist before anything is sent (not even
//! a DNS query for a host that is not listed). Its name is resolved once, every address
//! checked, and the connection is made here, to exactly those addresses: nothing resolves
//! the name a second time, so a DNS answer that changes between the check and the
//! connection (rebinding) cannot lead a request to the cloud metadata service or, in the
//! multi-tenant mode, into the private network. TLS is verified against the webpki
//! roots. Allowed requests wait for a slot under the concurrency cap, response bodies are
//! cut off at the size cap, and the whole exchange ends at the run's deadline.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::sandbox::policy::{SandboxPolicy, is_always_refused, is_private};
use crate::sandbox::text::Untrusted;

/// Denials logged per run; later ones are only counted (`egressDenied` in the summary),
/// so a plugin that knocks on closed doors in a loop cannot flood the log.
const LOGGED_DENIALS: u64 = 20;
/// Timeouts of a request whose options name none: the run's deadline bounds them too.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Counters of one run's outgoing traffic.
#[derive(Debug, Default)]
pub struct EgressMeter {
    /// Requests sent (allowed by the policy).
    pub requests: AtomicU64,
    /// Requests refused by the policy.
    pub denied: AtomicU64,
    /// Response body bytes received.
    pub bytes_received: AtomicU64,
}

/// Name resolution: the system's resolver, or a stand-in in tests.
pub trait Resolve: Send + Sync {
    /// The addresses of `host` (a name, never an IP literal).
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host, port))
                .await?
                .map(|addr| addr.ip())
                .collect())
        })
    }
}

/// The send hook of one tenant run.
pub struct EgressHooks {
    policy: Arc<SandboxPolicy>,
    meter: Arc<EgressMeter>,
    slots: Arc<Semaphore>,
    tenant: Arc<str>,
    resolver: Arc<dyn Resolve>,
    deadline: Instant,
}

impl EgressHooks {
    /// `slots` bounds the requests in flight and `deadline` ends them; every store of a
    /// run shares both.
    pub fn new(
        policy: Arc<SandboxPolicy>,
        meter: Arc<EgressMeter>,
        tenant: Arc<str>,
        slots: Arc<Semaphore>,
        deadline: Instant,
    ) -> Self {
        EgressHooks {
            policy,
            meter,
            slots,
            tenant,
            resolver: Arc::new(SystemResolver),
            deadline,
        }
    }

    /// Resolves names with `resolver` instead of the system's.
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }
}

/// Checks a destination against the policy, resolving its name once. Returns the
/// addresses to connect to (every one of them checked), or the reason for a refusal.
pub async fn check_destination(
    policy: &SandboxPolicy,
    resolver: &dyn Resolve,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, String> {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let literal: Option<IpAddr> = host.parse().ok();
    if let Some(ip) = literal
        && is_always_refused(ip)
    {
        return Err(format!("{ip} is a link-local or metadata address"));
    }
    let Some(pattern) = policy.allowing(&host, port) else {
        return Err("not on the tenant's allowlist".into());
    };
    // Private addresses pass when the policy allows them for listed hosts (local runs),
    // or when the operator listed the address itself.
    let private_ok = policy.allow_private_when_listed
        || (pattern.is_exact() && pattern.host().parse::<IpAddr>().is_ok());
    let addresses: Vec<IpAddr> = match literal {
        Some(ip) => vec![ip],
        None => resolver
            .resolve(&host, port)
            .await
            .map_err(|error| format!("cannot resolve: {error}"))?,
    };
    if addresses.is_empty() {
        return Err("resolves to no address".into());
    }
    for &ip in &addresses {
        if is_always_refused(ip) {
            return Err(format!(
                "resolves to {ip}, a link-local or metadata address"
            ));
        }
        if is_private(ip) && !private_ok {
            return Err(format!("resolves to {ip}, a loopback or private address"));
        }
    }
    Ok(addresses
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> ResponseFuture {
        let policy = self.policy.clone();
        let meter = self.meter.clone();
        let slots = self.slots.clone();
        let tenant = self.tenant.clone();
        let resolver = self.resolver.clone();
        let deadline = self.deadline;
        Box::new(async move {
            let uri = request.uri();
            let host = uri.host().unwrap_or_default().to_owned();
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let exchange = async {
                let addresses = match check_destination(&policy, &*resolver, &host, port).await {
                    Ok(addresses) => addresses,
                    Err(reason) => {
                        let denied = meter.denied.fetch_add(1, Ordering::Relaxed);
                        if denied < LOGGED_DENIALS {
                            tracing::warn!(tenant = %tenant, host = %Untrusted(&host), port, reason = %Untrusted(&reason), "egress denied");
                        } else if denied == LOGGED_DENIALS {
                            tracing::warn!(tenant = %tenant, "egress denied again; further denials of this run are counted, not logged");
                        }
                        return Err(HttpError::HttpRequestDenied);
                    }
                };
                // Wait for a slot; it is held until the response body is done with.
                let permit = slots
                    .acquire_owned()
                    .await
                    .map_err(|_| HttpError::InternalError(Some("egress slots closed".into())))?;
                meter.requests.fetch_add(1, Ordering::Relaxed);
                let tls = https.then_some(host.as_str());
                let (response, io) =
                    send_to(&addresses, tls, request, options.unwrap_or_default()).await?;
                let limit = policy.max_response_bytes;
                // A declared length over the cap fails the request itself, with the
                // precise error code; bodies without one are cut off while streaming.
                let declared = response
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if let Some(length) = declared
                    && length > limit
                {
                    tracing::warn!(tenant = %tenant, host = %Untrusted(&host), length, limit, "response over the size cap");
                    return Err(HttpError::HttpResponseBodySize(Some(length)));
                }
                let between_bytes = options
                    .and_then(|o| o.between_bytes_timeout)
                    .unwrap_or(DEFAULT_TIMEOUT)
                    .max(Duration::from_millis(1));
                let response = response.map(|incoming| {
                    http_body_util::BodyExt::boxed_unsync(ResponseBody {
                        incoming,
                        remaining: limit,
                        meter: meter.clone(),
                        idle: Box::pin(tokio::time::sleep_until(idle_until(
                            between_bytes,
                            deadline,
                        ))),
                        between_bytes,
                        deadline,
                        _permit: permit,
                    })
                });
                Ok((response, io))
            };
            // The run's deadline ends a request wherever it is: resolving, waiting for a
            // slot, connecting or waiting for the answer.
            match tokio::time::timeout_at(deadline.into(), exchange).await {
                Ok(result) => result,
                Err(_) => Err(HttpError::ConnectionTimeout),
            }
        })
    }
}

/// The later of now plus `between_bytes` and the deadline: when a silent body fails.
fn idle_until(between_bytes: Duration, deadline: Instant) -> tokio::time::Instant {
    (Instant::now() + between_bytes).min(deadline).into()
}

/// A byte stream to the server, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// The TLS client settings, built once: the webpki roots, ring, TLS 1.2 and 1.3.
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
            .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|error| error.to_string())
        })
        .clone()
        .map_err(|error| HttpError::InternalError(Some(format!("TLS setup: {error}"))))
}

/// Opens a connection to the first of `addresses` (the ones [`check_destination`]
/// returned) that answers, with TLS for `tls_name` when given (verified against the
/// webpki roots); each stage ends after `connect_timeout`. Nothing here resolves a name:
/// the plugin's requests and the rules' webhooks reach exactly the checked addresses.
pub async fn connect_checked(
    addresses: &[SocketAddr],
    tls_name: Option<&str>,
    connect_timeout: Duration,
) -> Result<Box<dyn Stream>, HttpError> {
    let connect = async {
        let mut last_error = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = Some(error),
            }
        }
        Err(
            last_error.map_or(HttpError::DestinationUnavailable, |error| {
                match error.kind() {
                    std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
                    _ => HttpError::Connect(error),
                }
            }),
        )
    };
    let tcp = tokio::time::timeout(connect_timeout, connect)
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    // Requests are small and written at once; waiting to coalesce them only adds latency.
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = match tls_name {
        None => Box::new(tcp),
        Some(name) => {
            let server_name = match name.parse::<IpAddr>() {
                Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
                Err(_) => rustls::pki_types::ServerName::try_from(name.to_owned())
                    .map_err(HttpError::InvalidDnsNameError)?,
            };
            let connector = tokio_rustls::TlsConnector::from(tls_config()?);
            let tls = tokio::time::timeout(connect_timeout, connector.connect(server_name, tcp))
                .await
                .map_err(|_| HttpError::ConnectionTimeout)?
                .map_err(HttpError::Tls)?;
            Box::new(tls)
        }
    };
    Ok(stream)
}

/// Sends `request` over a connection to the first of `addresses` that answers, with TLS
/// for `tls_name` when given. Returns the response and the connection's I/O future,
/// which the caller drives while the body is read.
async fn send_to(
    addresses: &[SocketAddr],
    tls_name: Option<&str>,
    mut request: http::Request<WasiBody>,
    options: RequestOptions,
) -> Result<(http::Response<hyper::body::Incoming>, IoFuture), HttpError> {
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let stream = connect_checked(addresses, tls_name, connect_timeout).await?;
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake::<_, WasiBody>(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;
    // The request line carries the path only: scheme and authority are for proxies (the
    // Host header, set by wasi-http, names the server).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    // The connection does the I/O: drive it until the response head arrives, then hand
    // it to wasi-http, which drives it while the guest reads the body.
    let mut connection = Some(Box::pin(connection));
    let mut response = Box::pin(tokio::time::timeout(
        first_byte_timeout,
        sender.send_request(request),
    ));
    let response = loop {
        let Some(driving) = connection.as_mut() else {
            break response.await;
        };
        tokio::select! {
            response = &mut response => break response,
            ended = driving => {
                connection = None;
                ended?;
            }
        }
    }
    .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let io: IoFuture = Box::new(async move {
        match connection {
            Some(connection) => connection.await.map_err(|error| {
                if error.is_timeout() {
                    HttpError::HttpResponseTimeout
                } else {
                    HttpError::Hyper(error)
                }
            }),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

/// A response body: fails once it passes the size cap, when the server stays silent
/// longer than the between-bytes timeout, or at the run's deadline; counts bytes; and
/// holds a concurrency slot until it is dropped.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    remaining: u64,
    meter: Arc<EgressMeter>,
    idle: Pin<Box<tokio::time::Sleep>>,
    between_bytes: Duration,
    deadline: Instant,
    _permit: OwnedSemaphorePermit,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    this.meter.bytes_received.fetch_add(len, Ordering::Relaxed);
                    if len > this.remaining {
                        this.remaining = 0;
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(None))));
                    }
                    this.remaining -= len;
                }
                let next = idle_until(this.between_bytes, this.deadline);
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(if error.is_timeout() {
                HttpError::HttpResponseTimeout
            } else {
                HttpError::Hyper(error)
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.idle.as_mut().poll(cx) {
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
mod tests;
