//! The gateway's request path, in the order a request travels:
//! correlation ids → request checks → route → load and denied-request limits
//! → authenticate → authorise → rate limits → forward → record. `handle` is
//! the one place a rejection becomes a response.

pub mod forward;
pub mod headers;
pub mod hygiene;
pub mod record;
pub mod route;

use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use crate::auth::Authenticator;
use crate::config::{Config, UNMATCHED_ROUTE};
use crate::error::{Reason, Reject};
use crate::limit::Limits;
use crate::listener::Refusal;
use crate::metrics::{Metrics, RouteMetrics};
use crate::policy::{self, Authorized};
use crate::tls::TlsError;
use forward::{Upstream, UpstreamBody};
use headers::Correlation;
use hygiene::Hygiene;
use record::{Record, Verdict};
use route::Route;

/// Response bodies: the upstream's, streamed, or the gateway's own.
pub type Body = Either<UpstreamBody, Full<Bytes>>;

pub struct Gateway {
    routes: Vec<Route>,
    auth: Authenticator,
    unmatched: RouteMetrics,
    hygiene: Hygiene,
    limits: Limits,
}

impl Gateway {
    pub fn build(config: &Config, auth: Authenticator, metrics: &Metrics) -> Result<Self, TlsError> {
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let metrics = metrics.route(&r.name);
                Ok(Route {
                    upstream: Upstream::new(r, &config.server)?.count_body_errors(metrics.upstream_body.clone()),
                    metrics,
                    config: r.clone(),
                })
            })
            .collect::<Result<_, TlsError>>()?;
        Ok(Self {
            routes,
            auth,
            unmatched: metrics.route(UNMATCHED_ROUTE),
            hygiene: Hygiene::new(&config.server),
            limits: Limits::default(),
        })
    }

    /// Adds the rate limits (without them, nothing is rate-limited).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// Answers one request: forwarded, or rejected with the reason's response.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let ids = Correlation::of(req.headers());
        let mut record = Record::new();
        let mut rsp = match self.process(req, peer, &ids, &mut record).await {
            Ok(rsp) => rsp,
            Err(reject) => {
                record.rejected(&reject);
                let reason = reject.reason();
                if reason.status().is_client_error() && reason != Reason::RateLimited {
                    self.limits.note_denied(peer.ip());
                }
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
        ids: &Correlation,
        record: &mut Record<'a>,
    ) -> Result<Response<Body>, Reject> {
        if req.method() == Method::CONNECT {
            return Err(Reject::BadRequest("CONNECT is not served on the reverse-proxy listener"));
        }
        headers::check_connection(req.headers()).map_err(Reject::BadRequest)?;
        let (mut parts, body) = req.into_parts();
        let refusal = parts.extensions.get::<Refusal>().copied();
        if let Some(Refusal::Malformed(why)) = refusal {
            return Err(Reject::BadRequest(why));
        }
        self.hygiene.check(&mut parts).map_err(Reject::BadRequest)?;
        let route = route::find(&self.routes, &parts).ok_or(Reject::NoRoute)?;
        record.route = Some(route);
        if refusal == Some(Refusal::Overloaded) {
            return Err(Reject::Overloaded);
        }
        self.limits.admit_peer(&route.config.name, peer.ip())?;
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
        if let Some(claims) = &record.claims {
            self.limits.admit(&route.config.name, claims)?;
        }
        let req = Request::from_parts(parts, body);
        Ok(route.upstream.forward(req, peer, ids, &authorized).await?)
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
