//! The gateway's connections: the connection limit, the TLS handshake (in
//! the connection's own task, under a timeout), then HTTP/2 when the client
//! chose it by ALPN, otherwise HTTP/1.1 with its raw bytes shown to the
//! inspector. Each connection is closed when idle, and gracefully (HTTP/2
//! GOAWAY, HTTP/1 close after the response) when the listener stops.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::accept::{Drain, accept};
use super::http::Http;
use super::inspect::{Fault, Inspected, Inspector};
use super::lifecycle::Conn;
use super::load::{ConnActivity, Lane, Load, Tracked};
use super::refusal::Refusal;
use crate::config::{DrainSettings, HttpSettings, LoadLimits, ServerConfig};
use crate::upstream::Body;

/// How the TLS listener serves connections under one configuration: its
/// certificate, HTTP settings and limits.
pub struct Endpoint {
    http: HttpSettings,
    load: LoadLimits,
    drain: DrainSettings,
    acceptor: TlsAcceptor,
    pub(super) builder: Http,
}

impl Endpoint {
    pub fn new(server: &ServerConfig, tls: Arc<rustls::ServerConfig>) -> Self {
        Self {
            http: server.http,
            load: server.load,
            drain: server.drain,
            acceptor: TlsAcceptor::from(tls),
            builder: Http::new(&server.http),
        }
    }
}

/// What answers a connection's requests: the request pipeline, handed to
/// the listener by the serving state.
pub trait Pipeline: Send + Sync + 'static {
    /// Answers one request.
    fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> impl Future<Output = Response<Body>> + Send;
}

/// The serving state the listener reads: the endpoint and pipeline of the
/// configuration being served now (a reload swaps both).
pub trait LiveGateway: Send + Sync + 'static {
    type Pipeline: Pipeline;
    fn gateway(&self) -> (Arc<Endpoint>, Arc<Self::Pipeline>);
}

/// Serves the TLS listener until `stop`, then lets open connections finish
/// for up to the `drain_grace` being served then before closing them.
pub async fn serve_gateway<L: LiveGateway>(
    listener: TcpListener,
    current: Arc<L>,
    load: Arc<Load>,
    stop: CancellationToken,
) {
    let at_stop = Arc::clone(&current);
    let grace = move || at_stop.gateway().0.drain.grace;
    accept(listener, stop, grace, move |tcp, peer, drain| {
        let serving = current.gateway();
        let (lane, guard) = load.connect(serving.0.load.max_connections)?;
        let conn = GatewayConn { peer, lane, current: Arc::clone(&current), load: Arc::clone(&load), drain };
        Some(async move {
            let _guard = guard;
            conn.serve(tcp, serving.0).await;
        })
    })
    .await;
}

struct GatewayConn<L> {
    peer: SocketAddr,
    lane: Lane,
    current: Arc<L>,
    load: Arc<Load>,
    drain: Drain,
}

impl<L: LiveGateway> GatewayConn<L> {
    async fn serve(self, tcp: TcpStream, endpoint: Arc<Endpoint>) {
        let http = &endpoint.http;
        // Boxed: the handshake's state is large, and a connection's task
        // should not keep room for it once the handshake is done.
        let handshake = Box::pin(tokio::time::timeout(http.tls_handshake_timeout, endpoint.acceptor.accept(tcp)));
        let tls = tokio::select! {
            () = self.drain.abort.cancelled() => return,
            done = handshake => match done {
                // Boxed: the task keeps no room for it.
                Ok(Ok(tls)) => Box::new(tls),
                Ok(Err(e)) => {
                    self.load.handshake_failed(false);
                    return debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    self.load.handshake_failed(true);
                    return debug!(peer = %self.peer, "TLS handshake timed out");
                }
            },
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let fault = Fault::default();
        let inspector = (!h2).then(|| Inspector::new(http.max_header_bytes, fault.clone()));
        let activity = Arc::new(ConnActivity::default());
        let service = {
            let (current, load, activity, lane, peer) =
                (Arc::clone(&self.current), Arc::clone(&self.load), Arc::clone(&activity), self.lane, self.peer);
            service_fn(move |req| {
                // Boxed: hyper keeps room for one request future for as long
                // as a connection lives, so an idle connection would otherwise
                // hold a whole request's state machine.
                let served = request(req, peer, lane, &current, &load, &activity, &fault);
                Box::pin(async move { Ok::<_, Infallible>(served.await) })
            })
        };
        let conn = Conn {
            peer: self.peer,
            load: &self.load,
            drain: &self.drain,
            activity: &activity,
            keep_alive: http.keep_alive_timeout,
            header_read: http.header_read_timeout,
        };
        match inspector {
            Some(inspector) if self.lane == Lane::Normal => {
                conn.serve_parking(tls, inspector, &endpoint.builder, service).await
            }
            inspector => {
                let overflow = (self.lane == Lane::Overflow).then_some(http.header_read_timeout);
                let io = TokioIo::new(Inspected::new(tls, inspector));
                // Boxed, so that the task of an HTTP/1.1 connection, parked, is small.
                Box::pin(conn.serve_whole(endpoint.builder.serve(io, h2, service), h2, overflow)).await;
            }
        }
    }
}

/// Hands one request to the gateway current now, marking it refused when the
/// connection is faulty or the process overloaded. The pipeline's answer
/// decides whether the connection closes after it.
fn request<L: LiveGateway>(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    lane: Lane,
    current: &Arc<L>,
    load: &Arc<Load>,
    activity: &Arc<ConnActivity>,
    fault: &Fault,
) -> impl Future<Output = Response<Tracked<Body>>> + Send + use<L> {
    let (endpoint, gateway) = current.gateway();
    let active = activity.enter();
    let in_flight = match lane {
        Lane::Normal => load.enter(endpoint.load.max_in_flight),
        Lane::Overflow => None,
    };
    let refusal = match (fault.get(), lane, &in_flight) {
        (Some(rule), _, _) => Some(Refusal::Malformed(rule)),
        (None, Lane::Overflow, _) => {
            load.shed(Lane::Overflow);
            Some(Refusal::Overloaded)
        }
        (None, Lane::Normal, None) => {
            load.shed(Lane::Normal);
            Some(Refusal::Overloaded)
        }
        (None, Lane::Normal, Some(_)) => None,
    };
    if let Some(refusal) = refusal {
        req.extensions_mut().insert(refusal);
    }
    async move {
        let rsp = gateway.answer(req, peer).await;
        rsp.map(|body| Tracked::new(body, active, in_flight))
    }
}
