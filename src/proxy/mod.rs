//! The gateway's request path, in the order a request travels:
//! correlation ids → request checks → route → authenticate → authorise →
//! forward → record. `handle` is the one place a rejection becomes a response.
//! `handle_routed` is the same path for a request whose host was fixed before
//! it was read (an intercepted egress tunnel).

pub mod forward;
pub mod headers;
pub mod record;
pub mod route;

use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::request::Parts;
use http::uri::Authority;
use http::{Method, Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use crate::auth::Authenticator;
use crate::config::{Config, UNMATCHED_ROUTE};
use crate::egress::resolve::Resolve;
use crate::error::Reject;
use crate::metrics::{Metrics, RouteMetrics};
use crate::policy::{self, Authorized};
use crate::tls::TlsError;
use forward::Upstream;
use headers::Correlation;
use record::{Record, Verdict};
use route::Route;

/// Response bodies: the upstream's, streamed, or the gateway's own.
pub type Body = Either<Incoming, Full<Bytes>>;

/// A request whose target is known before it is read: the route is chosen
/// by `host` (never by a header the client sends) and the request goes to
/// `authority` instead of the route's configured upstream.
pub struct Routed<'a> {
    pub host: &'a str,
    pub authority: &'a Authority,
    /// Checks run once the route is known, before authentication.
    pub guard: &'a dyn Guard,
}

pub trait Guard: Sync {
    fn check(&self, parts: &Parts) -> Result<(), Reject>;
}

pub struct Gateway {
    routes: Vec<Route>,
    auth: Authenticator,
    unmatched: RouteMetrics,
}

impl Gateway {
    pub fn build(config: &Config, auth: Authenticator, metrics: &Metrics) -> Result<Self, TlsError> {
        let resolve = config.egress.as_ref().map(|e| Resolve::new(e.resolve.clone())).unwrap_or_default();
        let routes = config
            .routes
            .iter()
            .map(|r| {
                Ok(Route {
                    upstream: Upstream::new(r, &config.server, &resolve)?,
                    metrics: metrics.route(&r.name),
                    config: r.clone(),
                })
            })
            .collect::<Result<_, TlsError>>()?;
        Ok(Self { routes, auth, unmatched: metrics.route(UNMATCHED_ROUTE) })
    }

    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// Answers one request: forwarded, or rejected with the reason's response.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        self.respond(req, peer, None).await
    }

    /// Answers one request of an intercepted tunnel, through the same phases.
    pub async fn handle_routed(&self, req: Request<Incoming>, peer: SocketAddr, routed: &Routed<'_>) -> Response<Body> {
        self.respond(req, peer, Some(routed)).await
    }

    async fn respond(&self, req: Request<Incoming>, peer: SocketAddr, routed: Option<&Routed<'_>>) -> Response<Body> {
        let started = Instant::now();
        let ids = Correlation::of(req.headers());
        let mut record = Record::new();
        let mut rsp = match self.process(req, peer, routed, &ids, &mut record).await {
            Ok(rsp) => rsp,
            Err(reject) => {
                record.rejected(&reject);
                reject.into_response(ids.correlation_str())
            }
        };
        ids.apply(rsp.headers_mut());
        record.finish(&self.unmatched, &ids, rsp.status(), started.elapsed());
        rsp
    }

    async fn process<'a>(
        &'a self,
        req: Request<Incoming>,
        peer: SocketAddr,
        routed: Option<&Routed<'_>>,
        ids: &Correlation,
        record: &mut Record<'a>,
    ) -> Result<Response<Body>, Reject> {
        if req.method() == Method::CONNECT {
            return Err(Reject::BadRequest("CONNECT is not served on the reverse-proxy listener"));
        }
        headers::check_connection(req.headers()).map_err(Reject::BadRequest)?;
        let (parts, body) = req.into_parts();
        let route = match routed {
            None => route::find(&self.routes, &parts),
            Some(r) => route::find_for_host(&self.routes, r.host, parts.uri.path()),
        };
        let route = route.ok_or(Reject::NoRoute)?;
        record.route = Some(route);
        if let Some(r) = routed {
            r.guard.check(&parts)?;
        }
        let authorized = match self.authorize(route, &parts.headers, record).await {
            Ok(authorized) => authorized,
            Err(reject) => match policy::waive(route.config.mode).filter(|_| reject.reason().is_policy()) {
                Some(waived) => {
                    record.verdict = Verdict::WouldDeny(reject.reason());
                    waived
                }
                None => return Err(reject),
            },
        };
        let req = Request::from_parts(parts, body);
        Ok(route.upstream.forward(req, peer, ids, &authorized, routed.map(|r| r.authority)).await?)
    }

    async fn authorize(
        &self,
        route: &Route,
        headers: &http::HeaderMap,
        record: &mut Record<'_>,
    ) -> Result<Authorized, Reject> {
        let token = match self.auth.authenticate(headers, &route.config.audiences, unix_now()).await {
            Ok(token) => token,
            Err((e, claims)) => {
                record.claims = claims;
                return Err(e.into());
            }
        };
        let decision = policy::authorize(&route.config.policy, &token);
        record.claims = Some(token.into_claims());
        Ok(decision?)
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
