//! The gateway's request path, in the order a request travels:
//! correlation ids → request checks → route → load and denied-request limits
//! → credentials → authenticate → authorise → rate limits → forward → record.
//! `handle` is the one place a rejection becomes a response. `handle_routed`
//! is the same path for a request whose host was fixed before it was read
//! (an intercepted egress tunnel).

pub mod forward;
pub mod headers;
pub mod hygiene;
pub mod record;
pub mod route;
pub mod token_request;

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::uri::Authority;
use http::{Method, Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tracing::warn;

use crate::audit::{AuditError, AuditLog};
use crate::auth::{AuthError, Authenticator};
use crate::config::{Config, UNMATCHED_ROUTE};
use crate::egress::resolve::Resolve;
use crate::error::{Reason, Reject};
use crate::limit::Limits;
use crate::listener::Refusal;
use crate::metrics::{InFlight, ListenerMetrics, Metrics, RouteMetrics};
use crate::policy::legacy::{self, Credential, TokenRequest};
use crate::policy::{self, Authorized, Check, Decision, DenyReason, Input, RouteKind, Rule, gdap};
use crate::rfc3339::{self, unix_now};
use crate::tls::TlsError;
use forward::{Upstream, UpstreamBody};
use headers::Correlation;
use hygiene::Hygiene;
use record::{Record, Verdict};
use route::Route;

/// Response bodies: the upstream's, streamed, or the gateway's own.
pub type Body = Either<UpstreamBody, Full<Bytes>>;

/// Request bodies on their way upstream: streamed from the client, or held
/// whole (an inspected token request).
pub type RequestBody = Either<Incoming, Full<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

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
    audit: Option<AuditLog>,
    listener: ListenerMetrics,
    hygiene: Hygiene,
    limits: Limits,
}

impl Gateway {
    pub fn build(config: &Config, auth: Authenticator, metrics: &Metrics) -> Result<Self, BuildError> {
        let resolve = config.egress.as_ref().map(|e| Resolve::new(e.resolve.clone())).unwrap_or_default();
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let metrics = metrics.route_of(r);
                Ok(Route {
                    upstream: Upstream::new(r, &config.server, &resolve)?.count_body_errors(metrics.upstream_body()),
                    metrics,
                    config: r.clone(),
                })
            })
            .collect::<Result<_, TlsError>>()?;
        let now = unix_now();
        let expired = config.exemptions.iter().filter(|e| !e.is_active(now)).collect::<Vec<_>>();
        for e in &expired {
            warn!(reason = %e.reason, expired = %rfc3339::format(e.expires), "exemption has expired and no longer applies");
        }
        metrics.exemptions(config.exemptions.iter().map(|e| e.expires).collect());
        let audit = AuditLog::open(&config.audit, metrics.audit())?;
        Ok(Self {
            routes,
            auth,
            unmatched: metrics.route(UNMATCHED_ROUTE),
            audit,
            listener: metrics.listener("gateway"),
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

    /// Counts an open client connection until the guard is dropped.
    pub fn connection(&self) -> InFlight {
        self.listener.connection()
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
        let _in_flight = self.listener.request();
        let ids = Correlation::of(req.headers());
        let mut record = Record::new();
        let mut rsp = match self.process(req, peer, routed, &ids, &mut record).await {
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
        record.finish(&self.unmatched, self.audit.as_ref(), &ids, rsp.status(), started.elapsed());
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
        let (mut parts, body) = req.into_parts();
        let refusal = parts.extensions.get::<Refusal>().copied();
        if let Some(Refusal::Malformed(why)) = refusal {
            return Err(Reject::BadRequest(why));
        }
        self.hygiene.check(&mut parts).map_err(Reject::BadRequest)?;
        let route = match routed {
            None => route::find(&self.routes, &parts),
            Some(r) => route::find_for_host(&self.routes, r.host, parts.uri.path()),
        };
        let route = route.ok_or(Reject::NoRoute)?;
        record.route = Some(route);
        if refusal == Some(Refusal::Overloaded) {
            return Err(Reject::Overloaded);
        }
        if let Some(r) = routed {
            r.guard.check(&parts)?;
        }
        self.limits.admit_peer(&route.config.name, peer.ip())?;
        let now = unix_now();
        record.mode = Some(route.config.policy.schedule.mode_at(now));
        let (authorized, body) = match route.config.policy.kind {
            RouteKind::Login => {
                let bytes = token_request::read(body, &parts.headers).await?;
                let authorized = self.check_token_request(route, &parts, &bytes, now, record)?;
                (authorized, Either::Right(Full::new(bytes)))
            }
            RouteKind::PartnerCenter | RouteKind::Aobo => {
                (self.authorize(route, &parts, now, record).await?, Either::Left(body))
            }
        };
        if let Some(claims) = &record.claims {
            self.limits.admit(&route.config.name, claims)?;
        }
        let req = Request::from_parts(parts, body);
        let sent = Instant::now();
        let forwarded = route.upstream.forward(req, peer, ids, &authorized, routed.map(|r| r.authority)).await;
        record.upstream_latency = Some(sent.elapsed());
        let rsp = forwarded?;
        record.upstream_status = Some(rsp.status());
        Ok(rsp)
    }

    /// Credentials, token, then the route's rules.
    async fn authorize(
        &self,
        route: &Route,
        parts: &Parts,
        now: i64,
        record: &mut Record<'_>,
    ) -> Result<Authorized, Reject> {
        let policy = &route.config.policy;
        let credential = Credential::of(&parts.headers);
        record.credential = Some(credential);
        if let Check::Fail(reason) = legacy::exchange(parts.uri.path(), credential) {
            return settle(record, policy::judge(policy, reason, now));
        }
        let customer = if policy.needs_path_customer() {
            gdap::customer_in_path(parts.uri.path()).map_err(Reject::BadRequest)?.map(|c| c.id)
        } else {
            None
        };
        record.customer = customer.clone();
        record.verified = policy.verify_signature;
        let audiences = &route.config.audiences;
        let verifying = Instant::now();
        let authenticated = if policy.verify_signature {
            self.auth.authenticate(&parts.headers, audiences, now).await.map(|t| t.into_claims())
        } else {
            self.auth.decode_unverified(&parts.headers, audiences, now)
        };
        record.verification = Some(verifying.elapsed());
        let claims = match authenticated {
            Ok(claims) => claims,
            Err((e, claims)) => {
                record.claims = claims;
                let rule = (e == AuthError::LegacyAuth).then_some(Rule::LegacyAuth);
                return match policy::waive(policy, rule, now) {
                    Some(waived) => {
                        record.verdict = Verdict::WouldDeny(e.reason());
                        Ok(waived)
                    }
                    None => Err(e.into()),
                };
            }
        };
        let input = Input { claims: &claims, verified: policy.verify_signature, customer: customer.as_deref() };
        let evaluation = policy::evaluate(policy, &input, now);
        record.exemption = evaluation.exemption.map(|e| e.reason.clone());
        record.expired_exemption = evaluation.expired_exemption.map(|e| e.reason.clone());
        record.claims = Some(claims);
        settle(record, evaluation.decision)
    }

    /// A login route forwards token requests, except password-carrying
    /// sign-ins: the password grant, WS-Trust, the SAML bearer grants.
    fn check_token_request(
        &self,
        route: &Route,
        parts: &Parts,
        body: &[u8],
        now: i64,
        record: &mut Record<'_>,
    ) -> Result<Authorized, Reject> {
        let content_type = token_request::content_type(&parts.headers)?;
        let request = TokenRequest::parse(parts.uri.query(), content_type, body).map_err(Reject::BadRequest)?;
        let check =
            if legacy::ws_trust(parts.uri.path()) { Check::Fail(DenyReason::LegacyAuth) } else { request.check() };
        let decision = match check {
            Check::Fail(reason) => policy::judge(&route.config.policy, reason, now),
            Check::Off | Check::Skip | Check::Pass => Decision::Allow,
        };
        record.token_request = Some(request);
        settle(record, decision)
    }
}

/// Notes a forwarded decision's verdict and returns the proof, or the denial.
fn settle(record: &mut Record<'_>, decision: Decision) -> Result<Authorized, Reject> {
    match &decision {
        Decision::WouldDeny(r) => record.verdict = Verdict::WouldDeny((*r).into()),
        Decision::Exempt(r) => record.verdict = Verdict::Exempt((*r).into()),
        Decision::Allow | Decision::Deny(_) => {}
    }
    Ok(policy::authorize(&decision)?)
}
