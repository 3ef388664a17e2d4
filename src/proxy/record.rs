//! What happened to one request: the verdict, the identity it carried, the
//! upstream's answer. Turned into metrics and one structured log line per
//! decision, never with the token itself.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tracing::info;

use super::headers::Correlation;
use super::route::Route;
use crate::auth::claims::Claims;
use crate::config::UNMATCHED_ROUTE;
use crate::error::{Reason, Reject};
use crate::metrics::RouteMetrics;
use crate::policy::{ClientType, Principal, classify};

/// The gateway's decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(Reason),
    /// Report-only mode: enforce mode would have denied it for this reason.
    WouldDeny(Reason),
}

impl Verdict {
    pub fn decision(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny(_) => "deny",
            Self::WouldDeny(_) => "would_deny",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Self::Allow => "none",
            Self::Deny(r) | Self::WouldDeny(r) => r.as_str(),
        }
    }
}

pub struct Record<'a> {
    pub route: Option<&'a Route>,
    pub verdict: Verdict,
    /// Claims of a token whose signature verified, when there was one.
    pub claims: Option<Arc<Claims>>,
    pub upstream_error: Option<Reason>,
}

impl<'a> Record<'a> {
    pub fn new() -> Self {
        Self { route: None, verdict: Verdict::Allow, claims: None, upstream_error: None }
    }

    /// Notes a rejection: a deny, or an upstream failure after the decision.
    pub fn rejected(&mut self, reject: &Reject) {
        match reject {
            Reject::Upstream(_) => self.upstream_error = Some(reject.reason()),
            _ => self.verdict = Verdict::Deny(reject.reason()),
        }
    }

    pub fn finish(&self, unmatched: &RouteMetrics, ids: &Correlation, status: StatusCode, elapsed: Duration) {
        let metrics = self.route.map_or(unmatched, |r| &r.metrics);
        metrics.record(self.verdict, self.upstream_error, elapsed);
        let claims = self.claims.as_deref();
        let field = |f: fn(&Claims) -> Option<&str>| claims.and_then(f).unwrap_or("");
        info!(
            target: "mfagate::decision",
            route = self.route.map_or(UNMATCHED_ROUTE, |r| r.config.name.as_str()),
            decision = self.verdict.decision(),
            reason = self.verdict.reason(),
            mode = self.route.map_or("", |r| r.config.mode.as_str()),
            tid = field(|c| c.tid.as_deref()),
            oid = field(|c| c.oid.as_deref()),
            appid = field(Claims::app_id),
            principal = claims.map_or("", |c| match classify(c) {
                Principal::AppOnly => "app_only",
                Principal::Delegated => "app_user",
            }),
            client = claims.map_or("", |c| ClientType::of(c).as_str()),
            correlation_id = ids.correlation_str(),
            status = status.as_u16(),
            upstream_error = self.upstream_error.map_or("", Reason::as_str),
            latency_us = elapsed.as_micros() as u64,
            "decision"
        );
    }
}

impl Default for Record<'_> {
    fn default() -> Self {
        Self::new()
    }
}
