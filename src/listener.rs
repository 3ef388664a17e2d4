//! Accepting connections: the connection limit, the TLS handshake (in the
//! connection's own task, under a timeout), then hyper: HTTP/2 when the
//! client chose it by ALPN, otherwise HTTP/1.1 with its raw bytes shown to
//! the inspector. Each connection is closed when idle, and gracefully (HTTP/2
//! GOAWAY, HTTP/1 close after the response) when the listener stops.
//!
//! What a connection is served with (certificate, limits, gateway) is read
//! from the serving state (`Live`) when it is accepted, and the gateway
//! again for every request, so a reload applies to new requests while
//! requests in flight finish on the configuration they started with.

mod discard;
mod inspect;
mod load;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, Version};
use hyper::body::{Body as HttpBody, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::config::ServerConfig;
use crate::metrics::InFlight;
use crate::upstream::Body;
pub use discard::{Discard, Head, say_close};
pub use inspect::{Fault, Inspected, Inspector};
use load::{ConnActivity, Lane};
pub use load::{Load, Tracked};

/// How long a closing connection may stay idle before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Why the listener asks the gateway to refuse a request; carried in the
/// request's extensions, turned into a response by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The raw bytes of the connection broke a framing rule.
    Malformed(crate::reason::RequestRule),
    /// Over `max_connections` or `max_in_flight`.
    Overloaded,
}

/// How the TLS listener serves connections under one configuration: its
/// certificate, HTTP settings and limits.
pub struct Endpoint {
    pub server: ServerConfig,
    acceptor: TlsAcceptor,
    h1: auto::Builder<TokioExecutor>,
    h2: auto::Builder<TokioExecutor>,
}

impl Endpoint {
    pub fn new(server: &ServerConfig, tls: Arc<rustls::ServerConfig>) -> Self {
        let (h1, h2) = builders(server);
        Self { server: server.clone(), acceptor: TlsAcceptor::from(tls), h1, h2 }
    }
}

/// What answers a connection's requests: the request pipeline, handed to
/// the listener by the serving state.
pub trait Pipeline: Send + Sync + 'static {
    /// Counts an open client connection until the guard is dropped.
    fn connection(&self) -> InFlight;
    /// Answers one request.
    fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> impl Future<Output = Response<Body>> + Send;
}

/// The serving state the listener reads: the endpoint and pipeline of the
/// configuration being served now (a reload swaps both).
pub trait Live: Send + Sync + 'static {
    type Pipeline: Pipeline;
    fn gateway(&self) -> (Arc<Endpoint>, Arc<Self::Pipeline>);
}

fn builders(server: &ServerConfig) -> (auto::Builder<TokioExecutor>, auto::Builder<TokioExecutor>) {
    let mut h1 = auto::Builder::new(TokioExecutor::new()).http1_only();
    h1.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(server.header_read_timeout)
        .max_buf_size(server.max_header_bytes);
    if server.max_headers != 100 {
        // hyper's default; any other value costs a heap allocation per request.
        h1.http1().max_headers(server.max_headers);
    }
    let mut h2 = auto::Builder::new(TokioExecutor::new()).http2_only();
    h2.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(server.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(server.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(server.keep_alive_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    (h1, h2)
}

/// Serves the TLS listener until `stop`, then lets open connections finish
/// for up to the configured `drain_grace` before closing them.
pub async fn serve_gateway<L: Live>(listener: TcpListener, current: Arc<L>, load: Arc<Load>, stop: CancellationToken) {
    let tracker = TaskTracker::new();
    let abort = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let serving = current.gateway();
                let Some((lane, guard)) = load.connect(serving.0.server.max_connections) else {
                    drop(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let conn = Conn {
                    peer,
                    lane,
                    current: Arc::clone(&current),
                    load: Arc::clone(&load),
                    stop: stop.clone(),
                    abort: abort.clone(),
                };
                tracker.spawn(async move {
                    let _guard = guard;
                    conn.serve(tcp, serving).await;
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, never exit.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    tracker.close();
    let grace = current.gateway().0.server.drain_grace;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!(?grace, open = tracker.len(), "grace period over; closing connections still open");
        abort.cancel();
        tracker.wait().await;
    }
}

struct Conn<L> {
    peer: SocketAddr,
    lane: Lane,
    current: Arc<L>,
    load: Arc<Load>,
    stop: CancellationToken,
    abort: CancellationToken,
}

impl<L: Live> Conn<L> {
    async fn serve(self, tcp: TcpStream, (endpoint, gateway): (Arc<Endpoint>, Arc<L::Pipeline>)) {
        let _open = gateway.connection();
        drop(gateway);
        let server = &endpoint.server;
        let handshake = tokio::time::timeout(server.tls_handshake_timeout, endpoint.acceptor.accept(tcp));
        let tls = tokio::select! {
            () = self.abort.cancelled() => return,
            done = handshake => match done {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    self.load.metrics.handshake_error.inc();
                    return debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    self.load.metrics.handshake_timeout.inc();
                    return debug!(peer = %self.peer, "TLS handshake timed out");
                }
            },
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let fault = Fault::default();
        let inspector = (!h2).then(|| Inspector::new(server.max_header_bytes, fault.clone()));
        let io = TokioIo::new(Inspected::new(tls, inspector));
        let activity = Arc::new(ConnActivity::default());
        let service = {
            let (current, load, activity, lane, peer, stop) = (
                Arc::clone(&self.current),
                Arc::clone(&self.load),
                Arc::clone(&activity),
                self.lane,
                self.peer,
                self.stop.clone(),
            );
            service_fn(move |req| {
                // Boxed: hyper keeps room for one request future for as long
                // as a connection lives, so an idle connection would otherwise
                // hold a whole request's state machine.
                let served = Box::pin(request(req, peer, lane, &current, &load, &activity, &fault, &stop));
                async move { Ok::<_, Infallible>(served.await) }
            })
        };
        let builder = if h2 { &endpoint.h2 } else { &endpoint.h1 };
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let keep_alive = server.keep_alive_timeout;
        // An overflow connection lives for one answer, and no longer than a request head may take.
        let overflow_deadline = tokio::time::sleep(server.header_read_timeout);
        tokio::pin!(overflow_deadline);
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = self.abort.cancelled() => return,
                // A client that does not take part in the graceful close
                // (HTTP/2 waits for a PING answer) is dropped once idle again.
                () = activity.idle(CLOSE_GRACE), if closing => return,
                () = self.stop.cancelled(), if !closing => closing = true,
                () = activity.idle(keep_alive), if !closing => closing = true,
                // HTTP/1 needs no nudge: its answer says `Connection: close`,
                // and hyper closes once the request body is discarded.
                () = activity.served_one(), if !closing && self.lane == Lane::Overflow && h2 => closing = true,
                () = &mut overflow_deadline, if self.lane == Lane::Overflow => return,
            }
            if closing {
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Hands one request to the gateway current now, marking it refused when the
/// connection is faulty or the process overloaded.
#[allow(clippy::too_many_arguments)]
fn request<L: Live>(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    lane: Lane,
    current: &Arc<L>,
    load: &Arc<Load>,
    activity: &Arc<ConnActivity>,
    fault: &Fault,
    stop: &CancellationToken,
) -> impl Future<Output = Response<Tracked<Body>>> + Send + use<L> {
    let (endpoint, gateway) = current.gateway();
    let active = activity.enter();
    let in_flight = match lane {
        Lane::Normal => load.enter(endpoint.server.max_in_flight),
        Lane::Overflow => None,
    };
    let malformed = fault.get();
    let refusal = match (malformed, lane, &in_flight) {
        (Some(reason), _, _) => Some(Refusal::Malformed(reason)),
        (None, Lane::Overflow, _) => {
            load.metrics.shed_connections.inc();
            Some(Refusal::Overloaded)
        }
        (None, Lane::Normal, None) => {
            load.metrics.shed_requests.inc();
            Some(Refusal::Overloaded)
        }
        (None, Lane::Normal, Some(_)) => None,
    };
    let version = req.version();
    let http1 = version != Version::HTTP_2;
    let close = refusal.is_some();
    if let Some(refusal) = refusal {
        req.extensions_mut().insert(refusal);
    }
    let stop = stop.clone();
    async move {
        let mut rsp = gateway.answer(req, peer).await;
        // After a refused request nothing more is read from an HTTP/1
        // connection: its framing cannot be trusted. A stopping listener
        // closes the connection after this answer too: the answer says so.
        if http1 && (close || stop.is_cancelled() || rsp.status() == StatusCode::BAD_REQUEST) {
            say_close(&mut rsp, version);
        }
        rsp.map(|body| Tracked::new(body, active, in_flight))
    }
}

/// Timeouts of a connection to a listener other than the gateway's (the
/// egress proxy's and the tunnels it intercepts).
#[derive(Debug, Clone)]
pub struct ConnSettings {
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub http2_max_concurrent_streams: u32,
}

impl ConnSettings {
    pub fn of(server: &ServerConfig) -> Self {
        Self {
            tls_handshake_timeout: server.tls_handshake_timeout,
            header_read_timeout: server.header_read_timeout,
            max_header_bytes: server.max_header_bytes,
            http2_max_concurrent_streams: server.http2_max_concurrent_streams,
        }
    }
}

/// The HTTP/1.1 + HTTP/2 server settings used inside intercepted egress
/// tunnels (the protocol is chosen by ALPN on the intercepted handshake).
pub(crate) fn connection_builder(settings: &ConnSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(settings.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Serves plain HTTP/1.1 (the admin endpoints) until `stop`.
pub async fn serve_plain<H, Fut, B>(listener: TcpListener, handler: H, stop: CancellationToken, grace: Duration)
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    accept_loop(listener, stop, grace, move |tcp, _peer, watcher| {
        let handler = handler.clone();
        async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let mut http1 = hyper::server::conn::http1::Builder::new();
            http1.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            let _ = watcher.watch(http1.serve_connection(TokioIo::new(tcp), service)).await;
        }
    })
    .await;
}

/// Accepts until `stop`, runs `on_connection` in a task per connection, then
/// waits up to `grace` for every `Watcher` handed out to be dropped.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    grace: Duration,
    on_connection: F,
) where
    F: Fn(TcpStream, SocketAddr, Watcher) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(on_connection(tcp, peer, graceful.watcher()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, never exit.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        warn!(?grace, "grace period over; closing connections still open");
    }
}
