//! What the gateway finds out about a request before deciding: its
//! credentials (through the one credential parser), every token it carries
//! after the token checks, the customer its path names, and what a token
//! request asks for. The gateway and `mfagate check-token` both gather facts
//! here, and both hand them to `policy::decide`.

use std::time::{Duration, Instant};

use http::request::Parts;

use crate::auth::credentials::{self, Credentials};
use crate::auth::{AuthFailure, Authenticator};
use crate::config::RouteConfig;
use crate::error::{Reject, RequestRule};
use crate::policy::legacy::{self, TokenRequest};
use crate::policy::{Check, Facts, Presented, Reason, RoutePolicy, gdap, grants};
use crate::proxy::token_request;

/// An API request's facts, and what gathering them cost.
pub struct Gathered<'h> {
    pub facts: Facts,
    pub credentials: Credentials<'h>,
    /// Time spent on the token checks (cache, keys, signatures, claims).
    pub verification: Option<Duration>,
    /// The path to forward instead, when the customer it names was written
    /// in another form than the canonical one that was checked.
    pub path: Option<String>,
}

/// The path the upstream will see: `base` (the route's upstream base path,
/// empty when the request goes to its CONNECT target) in front of the
/// request's. Rules that read a path read this one.
pub fn upstream_path(base: &str, path: &str) -> String {
    format!("{base}{path}")
}

/// The facts of a request to a Partner Center or AOBO route. `base`: the
/// route's upstream base path as it will be put in front of the request's
/// (empty in egress mode). `verify`: check token signatures (the route's
/// `verify_signature`, unless a tool asks otherwise). A request that cannot
/// be read unambiguously is refused here (`BadRequest`), before any decision.
pub async fn api<'h>(
    auth: &Authenticator,
    route: &RouteConfig,
    parts: &'h Parts,
    base: &str,
    verify: bool,
    now: i64,
) -> Result<Gathered<'h>, Reject> {
    let policy = &route.policy;
    let forwarded = upstream_path(base, parts.uri.path());
    let path = forwarded.as_str();
    let credentials = credentials::read(&parts.headers, auth.max_token_bytes());
    if let Some(rule) = credentials::stray(parts.uri.query(), &parts.headers) {
        return Err(Reject::BadRequest(rule));
    }
    let mut findings = Vec::new();
    if credentials.legacy.is_some() {
        findings.push(Reason::LegacyAuth);
    } else if let Check::Fail(reason) = legacy::exchange(path, credentials.scheme) {
        findings.push(reason);
    }
    let customer =
        if policy.needs_path_customer() { gdap::customer_in_path(path).map_err(Reject::BadRequest)? } else { None };
    let (customer, rewritten) = match customer {
        Some(c) => (Some(c.id), c.path.map(|p| request_path(base, p)).transpose()?),
        None => (None, None),
    };
    let verifying = Instant::now();
    let token = match credentials.bearer {
        Ok(token) => present(auth, token, &route.audiences, verify, now).await,
        Err(ref e) => Presented::failed(e.reason()),
    };
    let auxiliary = match credentials::auxiliary(&parts.headers, auth.max_token_bytes()) {
        Ok(tokens) => {
            let mut presented = Vec::with_capacity(tokens.len());
            for t in tokens {
                presented.push(present(auth, t, &route.audiences, verify, now).await);
            }
            presented
        }
        Err(e) => vec![Presented::failed(e.reason())],
    };
    let verification = Some(verifying.elapsed());
    let facts = Facts { findings, token: Some(token), auxiliary, customer };
    Ok(Gathered { facts, credentials, verification, path: rewritten })
}

/// The request path that makes `forwarded` once `base` is put in front.
fn request_path(base: &str, forwarded: String) -> Result<String, Reject> {
    match forwarded.strip_prefix(base) {
        Some(path) if path.starts_with('/') => Ok(path.to_string()),
        _ => Err(Reject::BadRequest(RequestRule::BasePathCustomer)),
    }
}

/// One token through the token checks.
pub async fn present(auth: &Authenticator, token: &str, audiences: &[String], verify: bool, now: i64) -> Presented {
    let checked: Result<_, AuthFailure> = if verify {
        auth.authenticate(token, audiences, now).await.map(|t| t.into_claims())
    } else {
        // Claims nobody verified are kept only while they pass the checks:
        // they may deny, never vouch for anything.
        auth.decode_unverified(token, audiences, now).map_err(|(e, _)| (e, None))
    };
    match checked {
        Ok(claims) => Presented::Checked { claims, verified: verify },
        Err((e, claims)) => Presented::Failed { reason: e.reason(), claims },
    }
}

/// The facts of a token request on a login route, and the request as read;
/// `base` as for `api`. HTTP Basic credentials on a login route are a
/// client's secret (RFC 6749 §2.3.1), not a user's password: they count as
/// `secret` client authentication.
pub fn login(parts: &Parts, base: &str, body: &[u8], policy: &RoutePolicy) -> Result<(Facts, TokenRequest), Reject> {
    let content_type = token_request::content_type(&parts.headers)?;
    let mut request = TokenRequest::parse(parts.uri.query(), content_type, body).map_err(Reject::BadRequest)?;
    request.basic_client = token_request::basic_client(&parts.headers)?;
    request.tenant = token_request::path_tenant(parts.uri.path());
    request.token_endpoint = token_request::is_token_endpoint(parts.uri.path());
    // A token request always names its grant: a body in which no reading
    // finds one is one the rules could not read, whatever reads it upstream.
    if request.token_endpoint && request.grant_types.is_empty() && !body.trim_ascii().is_empty() {
        return Err(Reject::BadRequest(RequestRule::TokenRequestNoGrant));
    }
    let mut findings = Vec::new();
    if legacy::ws_trust(&upstream_path(base, parts.uri.path())) {
        findings.push(Reason::LegacyAuth);
    }
    if let Check::Fail(reason) = request.check() {
        findings.push(reason);
    }
    findings.extend(grants::check(&policy.grants, &request).into_iter().map(|(_, reason)| reason));
    Ok((Facts { findings, ..Facts::default() }, request))
}
