//! The egress (forward) proxy: a plain HTTP listener that automation reaches
//! through `HTTPS_PROXY`. In the order a request travels:
//! proxy credentials → target (`CONNECT host:port` or an absolute `http://`
//! URL) → host rules → one of
//! - *intercept* (a host a route guards): answer 200, terminate TLS with a
//!   leaf issued by the interception CA, and hand every request inside to
//!   the gateway's own pipeline with the route chosen from the CONNECT
//!   target (`intercept`);
//! - *tunnel* (another allowed host): answer 200 and copy bytes blind
//!   (`tunnel`);
//! - *forward* (plain HTTP to an allowed host, `plain`);
//! - *deny*: the gateway's JSON error, as in reverse mode.
//!
//! Audience binding (`binding`) applies to every request whose headers the
//! proxy can read. With `[egress.tenant_restrictions]` the sign-in hosts are
//! guarded too, and every request to them is forwarded with the tenant
//! restrictions headers (`upstream::tenant_restrictions`, decided from the
//! destination where the upstream request is built).
//!
//! What decides how traffic is routed, intercepted or bound (`EgressState`:
//! host rules, interception certificates, audience binding, proxy
//! credentials, connection settings) is part of the serving state that a
//! reload swaps whole; every request and CONNECT reads the state current
//! when it arrives, and open blind tunnels are checked again after each
//! reload.

pub mod auth;
pub mod binding;
pub mod ca;
mod error;
pub mod hosts;
pub mod intercept;
pub mod plain;
pub mod tunnel;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::config::HttpSettings;
use crate::config::{Config, EgressConfig};
use crate::correlation::Correlation;
use crate::error::{Reject, RequestRule};
use crate::listener::{self, Drain, Http};
use crate::metrics::EgressMetrics;
use crate::proxy::{Body, Gateway};
use crate::respond::{Head, Responder};
use crate::upstream::resolve::Resolve;
use auth::ProxyAuth;
use binding::AudienceBinding;
use ca::{CaError, InterceptCa};
pub use error::EgressError;
use hosts::{BadHost, HostRules, TargetAction, TargetRefusal};

/// A checked proxy target: a lower-case DNS name and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `host` alone on the scheme's default port, else `host:port`.
    pub fn authority(&self, default_port: u16) -> Option<Authority> {
        if self.port == default_port {
            self.host.parse().ok()
        } else {
            format!("{}:{}", self.host, self.port).parse().ok()
        }
    }

    /// The unchecked target, for the log line of a refused request.
    fn raw(authority: &Authority) -> Self {
        Self { host: authority.host().to_ascii_lowercase(), port: authority.port_u16().unwrap_or(0) }
    }

    fn parse(authority: &Authority, default_port: Option<u16>) -> Result<Self, Reject> {
        if authority.as_str().contains('@') {
            return Err(Reject::BadRequest(RequestRule::Userinfo));
        }
        let port = authority.port_u16().or(default_port).ok_or(Reject::BadRequest(RequestRule::BadProxyTarget))?;
        match hosts::normalize(authority.host()) {
            Ok(host) => Ok(Self { host, port }),
            Err(BadHost::IpLiteral) => Err(EgressError::Denied(TargetRefusal::IpLiteral).into()),
            Err(BadHost::Invalid) => Err(Reject::BadRequest(RequestRule::BadProxyTarget)),
        }
    }
}

/// The serving state the egress listener reads: the gateway and the egress
/// state of the configuration being served now.
pub trait LiveEgress: Send + Sync + 'static {
    /// `None` when the configuration being served has no `[egress]` (it
    /// cannot lose it while the listener runs: `egress.listen` is start-only).
    fn egress(&self) -> Option<(Arc<Gateway>, Arc<EgressState>)>;
    /// Changes with every reload that takes effect.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// What decides how the proxy routes, intercepts and binds traffic, built
/// from one configuration with the rest of the serving state.
pub struct EgressState {
    rules: HostRules,
    certs: intercept::Certs,
    auth: Option<ProxyAuth>,
    binding: AudienceBinding,
    resolve: Resolve,
    plain: plain::Forwarder,
    http: HttpSettings,
    builder: Http,
    responder: Responder,
    connect_timeout: Duration,
    tunnel_idle_timeout: Duration,
    drain_grace: Duration,
}

impl EgressState {
    /// Loads the interception CA and checks that it can vouch for every
    /// guarded host.
    pub fn build(egress: &EgressConfig, config: &Config, metrics: EgressMetrics) -> Result<Self, CaError> {
        let ca = InterceptCa::load(&egress.ca_cert, &egress.ca_key)?;
        let rules = HostRules::new(egress, &config.routes);
        for pattern in rules.guarded() {
            let host = pattern.strip_prefix("*.").map_or_else(|| pattern.clone(), |s| format!("mfagate-check.{s}"));
            if hosts::normalize(&host).is_ok() {
                ca.self_check(&host)?;
            }
        }
        let resolve = Resolve::new(egress.resolve.clone());
        Ok(Self {
            rules,
            certs: intercept::Certs::new(ca, metrics),
            auth: egress.proxy_auth.as_ref().map(ProxyAuth::new),
            binding: AudienceBinding::new(&config.routes),
            plain: plain::Forwarder::new(&resolve, &config.server.upstream),
            resolve,
            http: config.server.http,
            builder: Http::new(&config.server.http),
            responder: Responder::new(&config.server.discard),
            connect_timeout: config.server.upstream.connect_timeout,
            tunnel_idle_timeout: egress.tunnel_idle_timeout,
            drain_grace: config.server.drain.grace,
        })
    }
}

/// The egress listener.
pub struct Egress {
    live: Arc<dyn LiveEgress>,
    metrics: EgressMetrics,
}

/// One client connection to the proxy. Every task the connection starts
/// (tunnels included) holds a clone of its `Drain`, so draining waits for them.
#[derive(Clone)]
struct ProxyConn {
    peer: SocketAddr,
    drain: Drain,
}

impl Egress {
    pub fn new(live: Arc<dyn LiveEgress>, metrics: EgressMetrics) -> Self {
        Self { live, metrics }
    }

    /// Serves until `stop`, then lets requests, intercepted tunnels and blind
    /// tunnels finish for up to the `drain_grace` being served then before
    /// closing what is left.
    pub async fn serve(self: Arc<Self>, tcp: TcpListener, stop: CancellationToken) {
        let live = Arc::clone(&self.live);
        let grace = move || live.egress().map(|(_, state)| state.drain_grace).unwrap_or_default();
        listener::accept(tcp, stop, grace, move |tcp, peer, drain| {
            Some(Arc::clone(&self).connection(tcp, ProxyConn { peer, drain }))
        })
        .await;
    }

    async fn connection(self: Arc<Self>, tcp: TcpStream, conn: ProxyConn) {
        let (drain, peer) = (conn.drain.clone(), conn.peer);
        let Some(builder) = self.live.egress().map(|(_, state)| state.builder.clone()) else { return };
        let service = service_fn(move |req| {
            let (egress, conn) = (Arc::clone(&self), conn.clone());
            // Boxed: an idle proxy connection keeps no room for a request's state.
            Box::pin(async move { Ok::<_, Infallible>(egress.handle(req, &conn).await) })
        });
        let served = builder.serve_with_upgrades(TokioIo::new(tcp), service);
        if let Err(e) = listener::until_drained(served, &drain).await {
            debug!(%peer, error = %e, "proxy connection ended with an error");
        }
    }

    /// Answers one proxy request; a refusal becomes the gateway's JSON error.
    async fn handle(self: &Arc<Self>, req: Request<Incoming>, conn: &ProxyConn) -> Response<Body> {
        let ids = Correlation::of(req.headers());
        let connect = req.method() == Method::CONNECT;
        let mut target = None;
        let (parts, body) = req.into_parts();
        let head = Head::of(&parts);
        // The body until it is forwarded: what is left of it when the request
        // is refused is discarded after the answer.
        let mut body = Some(body);
        let state = self.live.egress().map(|(_, state)| state);
        let result = match &state {
            Some(state) => self.process(parts, &mut body, state, conn, &mut target).await,
            None => Err(EgressError::Denied(TargetRefusal::NotAllowed).into()),
        };
        let (kind, outcome) = match result {
            Ok((kind, rsp)) => (kind, rsp),
            Err(reject) => {
                let reason = reject.reason();
                // The target failing is not a refusal: counted apart.
                let outcome = if reason.is_decision() {
                    self.metrics.denied.inc();
                    "denied"
                } else {
                    self.metrics.failed.inc();
                    "failed"
                };
                let rule = reject.rule();
                let responder = state.as_ref().map(|s| s.responder).unwrap_or_default();
                let rsp = responder.refuse(reject, &ids, crate::error::ErrorFormat::PartnerCenter, &head, body);
                log(conn.peer, connect, target.as_ref(), outcome, reason.as_str(), rule, &ids);
                return rsp;
            }
        };
        log(conn.peer, connect, target.as_ref(), kind, "none", None, &ids);
        outcome
    }

    async fn process(
        self: &Arc<Self>,
        parts: Parts,
        body: &mut Option<Incoming>,
        state: &Arc<EgressState>,
        conn: &ProxyConn,
        target: &mut Option<Target>,
    ) -> Result<(&'static str, Response<Body>), Reject> {
        if state.auth.as_ref().is_some_and(|auth| !auth.admits(&parts.headers)) {
            return Err(EgressError::ProxyAuth.into());
        }
        if parts.method == Method::CONNECT {
            let authority = connect_target(&parts.uri)?;
            let t = Target::parse(authority, None).inspect_err(|_| *target = Some(Target::raw(authority)))?;
            *target = Some(t.clone());
            return self.connect(Request::from_parts(parts, ()), state, t, conn).await;
        }
        let authority = plain_target(&parts.uri)?;
        let t = Target::parse(authority, Some(80)).inspect_err(|_| *target = Some(Target::raw(authority)))?;
        *target = Some(t.clone());
        match state.rules.plain(&t.host, t.port) {
            TargetAction::Deny(refusal) => Err(EgressError::Denied(refusal).into()),
            TargetAction::Intercept | TargetAction::Pass => {
                let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                state.binding.check(path_and_query, &parts.headers, &t.host)?;
                let authority = t.authority(80).ok_or(Reject::BadRequest(RequestRule::BadProxyTarget))?;
                let body = body.take().ok_or(Reject::BadRequest(RequestRule::BodyUnavailable))?;
                let rsp = state.plain.forward(Request::from_parts(parts, body), &authority).await?;
                self.metrics.forwarded.inc();
                Ok(("forwarded", rsp))
            }
        }
    }

    async fn connect(
        self: &Arc<Self>,
        mut req: Request<()>,
        state: &Arc<EgressState>,
        target: Target,
        conn: &ProxyConn,
    ) -> Result<(&'static str, Response<Body>), Reject> {
        match state.rules.connect(&target.host, target.port) {
            TargetAction::Deny(refusal) => Err(EgressError::Denied(refusal).into()),
            TargetAction::Intercept => {
                let authority = target.authority(443).ok_or(Reject::BadRequest(RequestRule::BadProxyTarget))?;
                let upgrade = hyper::upgrade::on(&mut req);
                let (egress, state, conn) = (Arc::clone(self), Arc::clone(state), conn.clone());
                tokio::spawn(async move {
                    match upgrade.await {
                        Ok(io) => intercept::serve(egress, state, TokioIo::new(io), target, authority, &conn).await,
                        Err(e) => debug!(peer = %conn.peer, error = %e, "CONNECT upgrade failed"),
                    }
                });
                self.metrics.intercepted.inc();
                Ok(("intercepted", established()))
            }
            TargetAction::Pass => {
                // Before anything can wait: a reload from now on reaches the tunnel.
                let changes = self.live.changes();
                let upstream = state
                    .resolve
                    .connect(&target.host, target.port, state.connect_timeout)
                    .await
                    .map_err(EgressError::Unreachable)?;
                let upgrade = hyper::upgrade::on(&mut req);
                let (egress, state, conn) = (Arc::clone(self), Arc::clone(state), conn.clone());
                tokio::spawn(async move {
                    match upgrade.await {
                        Ok(io) => {
                            tunnel::serve(&egress, &state, changes, TokioIo::new(io), upstream, &target, &conn).await
                        }
                        Err(e) => debug!(peer = %conn.peer, error = %e, "CONNECT upgrade failed"),
                    }
                });
                self.metrics.tunnelled.inc();
                Ok(("tunnelled", established()))
            }
        }
    }
}

/// RFC 9110 §9.3.6: a 2xx answer to CONNECT has no content.
fn established() -> Response<Body> {
    let mut rsp = Response::new(Body::Right(Full::new(Bytes::new())));
    *rsp.status_mut() = StatusCode::OK;
    rsp
}

/// The authority-form target of a CONNECT (RFC 9112 §3.2.3).
fn connect_target(uri: &Uri) -> Result<&Authority, Reject> {
    match (uri.scheme(), uri.authority(), uri.path_and_query()) {
        (None, Some(authority), None) => Ok(authority),
        _ => Err(Reject::BadRequest(RequestRule::BadProxyTarget)),
    }
}

/// The absolute-form target of a plain proxy request (RFC 9112 §3.2.2).
fn plain_target(uri: &Uri) -> Result<&Authority, Reject> {
    match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(authority)) => Ok(authority),
        (Some(_), _) => Err(Reject::BadRequest(RequestRule::HttpsWithoutConnect)),
        (None, _) => Err(Reject::BadRequest(RequestRule::NotAProxyRequest)),
    }
}

/// One line per proxy request (target `mfagate::egress`); the credentials
/// and headers are never logged. `rule`: the request check that refused a
/// `bad_request`.
fn log(
    peer: SocketAddr,
    connect: bool,
    target: Option<&Target>,
    outcome: &str,
    reason: &str,
    rule: Option<RequestRule>,
    ids: &Correlation,
) {
    let (host, port) = target.map_or(("", 0), |t| (t.host.as_str(), t.port));
    info!(
        target: "mfagate::egress",
        peer = %peer.ip(),
        connect,
        host,
        port,
        outcome,
        reason,
        rule = rule.map(RequestRule::as_str),
        correlation_id = ids.correlation_str(),
        "egress"
    );
}
