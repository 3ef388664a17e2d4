//! The gateway's request path, in the order a request travels:
//! correlation ids → request checks → route → load and denied-request limits
//! → facts (credentials, every token checked, the customer) → `decide` →
//! authorise → rate limits on the verified subject → forward → record.
//! The record writes down what was decided; it never drives what happens.
//! `handle` hands every rejection to `respond`, where it becomes a
//! response. `handle_routed` is the same path for a request whose host was
//! fixed before it was read (an intercepted egress tunnel).

pub mod compute;
pub mod facts;
pub mod hygiene;
pub mod record;
pub mod regions;
pub mod route;
pub mod token_request;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::config::tenant_restrictions::ALL_HEADERS;
use crate::config::{Config, UNMATCHED_ROUTE};
use crate::correlation::Correlation;
use crate::error::{ErrorFormat, Reason, Reject, RequestRule};
use crate::limit::Limits;
use crate::listener::Refusal;
use crate::metrics::{Metrics, RouteMetrics};
use crate::policy::{self, RouteKind};
use crate::respond::{Head, Responder};
use crate::rfc3339::unix_now;
use crate::tls::TlsError;
use crate::upstream::headers::Injection;
use crate::upstream::resolve::Resolve;
use crate::upstream::tenant_restrictions::SignInHeaders;
pub use crate::upstream::{Body, RequestBody};
use crate::upstream::{ClientBody, Direct, Upstream, UpstreamError};
use compute::Forward;
use hygiene::Hygiene;
use record::Record;
use regions::RegionLog;
use route::Route;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{key}: route {route:?}: upstream TLS (upstream_ca): {source}")]
    Upstream {
        /// `routes[i].upstream_ca`, the key at fault.
        key: String,
        route: String,
        #[source]
        source: TlsError,
    },
}

impl GatewayError {
    /// The configuration key the error is about.
    pub fn key(&self) -> &str {
        match self {
            Self::Upstream { key, .. } => key,
        }
    }
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

impl Routed<'_> {
    fn direct(&self) -> Direct<'_> {
        Direct { authority: self.authority }
    }
}

/// With `[egress.tenant_restrictions]`, per sign-in host, the headers every
/// request forwarded there carries, after the client's own copies are removed.
fn sign_in_headers(config: &Config, metrics: &Metrics) -> SignInHeaders {
    let Some(tr) = config.egress.as_ref().and_then(|e| e.tenant_restrictions.as_ref()) else {
        return SignInHeaders::default();
    };
    let hosts = metrics
        .egress()
        .tenant_restrictions
        .into_iter()
        .map(|c| {
            let injection = Injection {
                remove: &ALL_HEADERS,
                set: tr.headers.clone(),
                injected: c.injected,
                client_header_removed: c.client_header_removed,
            };
            (c.host, injection)
        })
        .collect();
    SignInHeaders::new(hosts)
}

pub trait Guard: Sync {
    fn check(&self, parts: &Parts) -> Result<(), Reject>;
}

pub struct Gateway {
    routes: Vec<Route>,
    auth: Authenticator,
    unmatched: RouteMetrics,
    audit: Option<AuditLog>,
    hygiene: Hygiene,
    limits: Limits,
    regions: RegionLog,
    responder: Responder,
}

impl crate::listener::Pipeline for Gateway {
    fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> impl Future<Output = Response<Body>> + Send {
        self.handle(req, peer)
    }
}

impl Gateway {
    /// The gateway of `config`, writing its decisions to `audit`.
    pub fn build(
        config: &Config,
        auth: Authenticator,
        metrics: &Metrics,
        audit: Option<AuditLog>,
    ) -> Result<Self, GatewayError> {
        let resolve = config.egress.as_ref().map(|e| Resolve::new(e.resolve.clone())).unwrap_or_default();
        let sign_in = Arc::new(sign_in_headers(config, metrics));
        let routes = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let metrics = metrics.route_of(r);
                let upstream =
                    Upstream::new(r, &config.server.upstream, &resolve, Arc::clone(&sign_in)).map_err(|source| {
                        GatewayError::Upstream {
                            key: format!("routes[{i}].upstream_ca"),
                            route: r.name.clone(),
                            source,
                        }
                    })?;
                Ok(Route { upstream: upstream.count_body_errors(metrics.upstream_body()), metrics, config: r.clone() })
            })
            .collect::<Result<_, GatewayError>>()?;
        Ok(Self {
            routes,
            auth,
            unmatched: metrics.route(UNMATCHED_ROUTE),
            audit,
            hygiene: Hygiene::new(&config.server.http),
            limits: Limits::default(),
            regions: RegionLog::default(),
            responder: Responder::new(&config.server.discard),
        })
    }

    /// Adds the rate limits (without them, nothing is rate-limited).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Shares the principals' recent compute regions (kept across reloads).
    pub fn with_regions(mut self, regions: RegionLog) -> Self {
        self.regions = regions;
        self
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
        let mut pending = PendingRecord::new(self, Correlation::of(req.headers()));
        let (parts, body) = req.into_parts();
        let head = Head::of(&parts);
        // The body until it is read here or handed on: what is left of it
        // when the request is refused is discarded after the answer.
        let mut body = Some(body);
        let result = self.process(parts, &mut body, peer, routed, &pending.ids, &mut pending.record).await;
        let rsp = match result {
            Ok(mut rsp) => {
                pending.ids.apply(rsp.headers_mut());
                rsp
            }
            Err(reject) => {
                pending.record.rejected(&reject);
                let reason = reject.reason();
                if reason.status().is_client_error() && reason != Reason::RateLimited {
                    self.limits.note_denied(peer.ip()).await;
                }
                let format = match pending.record.route {
                    Some(route) => route.config.error_format,
                    None => pending.record.format.unwrap_or_default(),
                };
                self.responder.refuse(reject, &pending.ids, format, &head, body)
            }
        };
        pending.finish(rsp.status());
        rsp
    }

    /// The answer format for a request refused before it was routed: that
    /// of the route its target names as sent (in a tunnel, of its host's
    /// route for the path); nothing is decided on this.
    fn format_before_routing(&self, parts: &Parts, routed: Option<&Routed<'_>>) -> ErrorFormat {
        let route = match routed {
            Some(r) => route::find_for_host(&self.routes, r.host, parts.uri.path()),
            None => route::find(&self.routes, parts),
        };
        route.map(|r| r.config.error_format).unwrap_or_default()
    }

    /// What is refused before routing: `CONNECT`, what the listener found
    /// malformed, and the request checks; the listener's refusal otherwise.
    fn screen(&self, parts: &mut Parts) -> Result<Option<Refusal>, Reject> {
        if parts.method == Method::CONNECT {
            return Err(Reject::BadRequest(RequestRule::ConnectMethod));
        }
        let refusal = parts.extensions.get::<Refusal>().copied();
        if let Some(Refusal::Malformed(why)) = refusal {
            return Err(Reject::BadRequest(why));
        }
        self.hygiene.check(parts).map_err(Reject::BadRequest)?;
        Ok(refusal)
    }

    async fn process<'a>(
        &'a self,
        mut parts: Parts,
        body: &mut Option<Incoming>,
        peer: SocketAddr,
        routed: Option<&Routed<'_>>,
        ids: &Correlation,
        record: &mut Record<'a>,
    ) -> Result<Response<Body>, Reject> {
        // A refused request is left as it came (the checks rewrite the
        // path only once it passes), so its target still names a route.
        let refusal = self.screen(&mut parts).inspect_err(|_| {
            record.format = Some(self.format_before_routing(&parts, routed));
        })?;
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
        self.limits.admit_peer(&route.config.name, peer.ip()).await?;
        let now = unix_now();
        let policy = &route.config.policy;
        record.mode = Some(policy.schedule.mode_at(now));
        // The upstream sees the route's base path in front of the request's,
        // except in egress mode, where a request goes to its CONNECT target.
        let base = if routed.is_some() { "" } else { route.config.upstream.base_path.as_str() };
        // A token request's body is read here; any other is streamed upstream.
        let (facts, read) = match policy.kind {
            RouteKind::Login => {
                let bytes = match body.as_mut() {
                    Some(body) => token_request::read(body, &parts.headers).await?,
                    None => Bytes::new(),
                };
                let (facts, request) = facts::login(&parts, base, &bytes, policy)?;
                record.token_request = Some(request);
                (facts, Some(Forward::Whole(bytes)))
            }
            RouteKind::PartnerCenter | RouteKind::Aobo => {
                let gathered =
                    facts::api(&self.auth, &route.config, &parts, base, policy.verify_signature, now).await?;
                record.credential = Some(gathered.credentials.scheme);
                record.verification = gathered.verification;
                let (mut facts, path) = (gathered.facts, gathered.path);
                // The upstream gets the customer id in the form that was checked.
                if let Some(path) = path {
                    parts.uri = hygiene::with_path(&parts.uri, &path)
                        .ok_or(Reject::BadRequest(RequestRule::UnbuildableTarget))?;
                }
                // An ARM compute request's body is read for compute_guard.
                let guard = policy.compute_guard.as_deref();
                let forwarded = facts::upstream_path(base, parts.uri.path());
                match (guard, compute::target(guard, &parts.method, &forwarded), body.as_mut()) {
                    (Some(guard), Some(target), Some(incoming)) => {
                        let subject = facts.subject();
                        let principal = match subject.as_ref().map(|s| s.oid()) {
                            Some(Some(oid)) => compute::Principal::Oid(oid),
                            Some(None) => compute::Principal::Uncountable,
                            None => compute::Principal::Unverified,
                        };
                        let inspection =
                            compute::inspect(guard, &target, incoming, &parts.headers, principal, &self.regions)
                                .await?;
                        if inspection.too_large {
                            facts.findings.push(Reason::ComputeBodyTooLarge);
                        } else if !inspection.judgement.violations.is_empty() {
                            facts.findings.push(Reason::ComputeAbuseSuspected);
                        }
                        record.compute = Some(inspection.judgement);
                        (facts, Some(inspection.forward))
                    }
                    _ => (facts, None),
                }
            }
        };
        let outcome = policy::decide(policy, &facts, now);
        record.decided(&facts, &outcome);
        let authorized = policy::authorize(&outcome, &facts)?;
        self.limits.admit(&route.config.name, authorized.subject(), peer.ip()).await?;
        // Compute about to be created counts towards its principal's regions.
        if let (Some(judgement), Some(oid)) = (&record.compute, authorized.subject().and_then(|s| s.oid())) {
            self.regions.note(oid, &judgement.regions, std::time::Instant::now());
        }
        let body = match (read, body.take()) {
            (Some(Forward::Whole(bytes)), _) => RequestBody::Right(Full::new(bytes)),
            (Some(Forward::Prefixed(prefix)), Some(body)) => RequestBody::Left(ClientBody::with_prefix(prefix, body)),
            (None, Some(body)) => RequestBody::Left(ClientBody::new(body)),
            (_, None) => return Err(Reject::BadRequest(RequestRule::BodyUnavailable)),
        };
        let req = Request::from_parts(parts, body);
        let sent = Instant::now();
        let forwarded = route.upstream.forward(req, peer, ids, &authorized, routed.map(Routed::direct)).await;
        record.upstream_latency = Some(sent.elapsed());
        let rsp = forwarded.map_err(|e| match e {
            // The client's own body broke off or broke the framing: its fault.
            UpstreamError::ClientBody => Reject::BadRequest(RequestRule::BrokenBody),
            e => Reject::Upstream(e),
        })?;
        record.upstream_status = Some(rsp.status());
        Ok(rsp)
    }
}

/// One request's record until it is written: by `finish` with the status
/// sent, or, when the client goes away first (a timeout, an HTTP/2 reset,
/// the end of the drain) and the future is dropped, with 499 and the
/// outcome `client_closed`, so that a request the upstream may have acted
/// on is recorded exactly once.
struct PendingRecord<'a> {
    gateway: &'a Gateway,
    record: Record<'a>,
    ids: Correlation,
    started: Instant,
    done: bool,
}

/// nginx's code for "the client closed the request"; never sent.
const CLIENT_CLOSED: u16 = 499;

impl<'a> PendingRecord<'a> {
    fn new(gateway: &'a Gateway, ids: Correlation) -> Self {
        Self { gateway, record: Record::new(), ids, started: Instant::now(), done: false }
    }

    fn finish(&mut self, status: StatusCode) {
        self.done = true;
        let g = self.gateway;
        self.record.finish(&g.unmatched, g.audit.as_ref(), &self.ids, status, self.started.elapsed());
    }
}

impl Drop for PendingRecord<'_> {
    fn drop(&mut self) {
        if self.done || !self.record.is_decided {
            return;
        }
        self.record.client_closed = true;
        let status = StatusCode::from_u16(CLIENT_CLOSED).unwrap_or(StatusCode::BAD_REQUEST);
        self.finish(status);
    }
}
