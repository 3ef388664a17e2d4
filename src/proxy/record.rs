//! What happened to one request: the verdict, the identity it carried, the
//! upstream's answer. Turned into metrics, one structured log line, and one
//! decision log record per decision, never with the token itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use tracing::info;

use super::forward::UpstreamErrorKind;
use super::headers::Correlation;
use super::route::Route;
use crate::audit::{AuditLog, AuditRecord, sha256_hex, user_fingerprint};
use crate::auth::claims::{Claims, is_guid};
use crate::config::UNMATCHED_ROUTE;
use crate::error::{Reason, Reject};
use crate::metrics::{Observation, RouteMetrics};
use crate::policy::gdap::tenant_of;
use crate::policy::legacy::{Credential, TokenRequest};
use crate::policy::{ClientType, Mode, TokenVersion, classify};
use crate::rfc3339;

/// The gateway's decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(Reason),
    /// Report-only: enforcing would have denied it for this reason.
    WouldDeny(Reason),
    /// An exemption let through what this reason would have denied.
    Exempt(Reason),
}

impl Verdict {
    pub fn decision(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny(_) => "deny",
            Self::WouldDeny(_) => "would_deny",
            Self::Exempt(_) => "exempt",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Self::Allow => "none",
            Self::Deny(r) | Self::WouldDeny(r) | Self::Exempt(r) => r.as_str(),
        }
    }
}

pub struct Record<'a> {
    pub route: Option<&'a Route>,
    pub verdict: Verdict,
    /// The route's mode when the request came.
    pub mode: Option<Mode>,
    /// Claims of the token, when it could be read: signature verified, or
    /// decoded on a route with `verify_signature = false` (`verified` false).
    pub claims: Option<Arc<Claims>>,
    pub verified: bool,
    pub credential: Option<Credential>,
    pub customer: Option<String>,
    pub token_request: Option<TokenRequest>,
    pub exemption: Option<String>,
    pub expired_exemption: Option<String>,
    pub upstream_status: Option<StatusCode>,
    pub upstream_error: Option<Reason>,
    pub upstream_error_kind: Option<UpstreamErrorKind>,
    /// Time taken to authenticate the bearer token.
    pub verification: Option<Duration>,
    /// Time from forwarding to the upstream's response headers or failure.
    pub upstream_latency: Option<Duration>,
}

impl<'a> Record<'a> {
    pub fn new() -> Self {
        Self {
            route: None,
            verdict: Verdict::Allow,
            mode: None,
            claims: None,
            verified: false,
            credential: None,
            customer: None,
            token_request: None,
            exemption: None,
            expired_exemption: None,
            upstream_status: None,
            upstream_error: None,
            upstream_error_kind: None,
            verification: None,
            upstream_latency: None,
        }
    }

    /// Notes a rejection: a deny, or an upstream failure after the decision.
    pub fn rejected(&mut self, reject: &Reject) {
        match reject {
            Reject::Upstream(e) => {
                self.upstream_error = Some(reject.reason());
                self.upstream_error_kind = Some(e.kind());
            }
            _ => self.verdict = Verdict::Deny(reject.reason()),
        }
    }

    pub fn finish(
        &self,
        unmatched: &RouteMetrics,
        audit: Option<&AuditLog>,
        ids: &Correlation,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let metrics = self.route.map_or(unmatched, |r| &r.metrics);
        metrics.record(&Observation {
            verdict: self.verdict,
            elapsed,
            verification: self.verification,
            upstream: self.upstream_latency,
            upstream_status: self.upstream_status,
            upstream_error: self.upstream_error_kind,
        });
        let claims = self.claims.as_deref();
        let field = |f: fn(&Claims) -> Option<&str>| claims.and_then(f).unwrap_or("");
        info!(
            target: "mfagate::decision",
            route = self.route_name(),
            decision = self.verdict.decision(),
            reason = self.verdict.reason(),
            mode = self.mode.map_or("", Mode::as_str),
            tid = field(|c| c.tid.as_deref()),
            oid = field(|c| c.oid.as_deref()),
            appid = field(Claims::app_id),
            principal = claims.map_or("", |c| classify(c).as_str()),
            client = claims.map_or("", |c| ClientType::of(c).as_str()),
            verified = claims.map(|_| self.verified),
            exemption = self.exemption.as_deref(),
            correlation_id = ids.correlation_str(),
            status = status.as_u16(),
            upstream_error = self.upstream_error.map_or("", Reason::as_str),
            latency_us = elapsed.as_micros() as u64,
            "decision"
        );
        if let Some(audit) = audit {
            audit.write(&self.audit_record(ids, status, elapsed));
        }
    }

    fn route_name(&self) -> &str {
        self.route.map_or(UNMATCHED_ROUTE, |r| r.config.name.as_str())
    }

    fn audit_record(&self, ids: &Correlation, status: StatusCode, elapsed: Duration) -> AuditRecord {
        let mut record = AuditRecord {
            timestamp: rfc3339::format_millis(SystemTime::now()),
            route: self.route_name().to_string(),
            decision: self.verdict.decision().into(),
            reason: self.verdict.reason().into(),
            mode: self.mode.map_or("", Mode::as_str).into(),
            customer: self.customer.clone(),
            credential: self.credential.map(|c| c.as_str().into()),
            exemption: self.exemption.clone(),
            expired_exemption: self.expired_exemption.clone(),
            correlation_id: ids.correlation_str().into(),
            request_id: ids.request_id.to_str().unwrap_or_default().into(),
            status: status.as_u16(),
            upstream_status: self.upstream_status.map(|s| s.as_u16()),
            upstream_error: self.upstream_error.map(|r| r.as_str().into()),
            upstream_latency_us: self.upstream_latency.map(|d| d.as_micros() as u64),
            latency_us: elapsed.as_micros() as u64,
            ..AuditRecord::default()
        };
        if let Some(c) = &self.claims {
            record.verified = Some(self.verified);
            record.tid = c.tid.clone();
            record.idp = c.idp.clone();
            record.idp_tenant = c.idp.as_deref().and_then(tenant_of).map(str::to_ascii_lowercase);
            record.oid = c.oid.clone();
            record.appid = c.app_id().map(str::to_string);
            record.client = Some(ClientType::of(c).as_str().into());
            record.principal = Some(classify(c).as_str().into());
            record.ver = Some(TokenVersion::of(c).as_str().into());
            record.amr = c.amr.clone();
            record.wids = c.wids.clone();
            record.xms_cc = c.xms_cc.clone();
            record.acrs = c.acrs.clone();
            record.uti_sha256 = c.uti.as_deref().map(|u| sha256_hex(u.as_bytes()));
            record.upn_sha256 = c.user_name().map(user_fingerprint);
        }
        if let Some(t) = &self.token_request {
            record.grant_type = t.grant_label().map(str::to_string);
            record.appid = t.client_id.clone().filter(|id| is_guid(id));
            record.upn_sha256 = t.username.as_deref().map(user_fingerprint);
        }
        record
    }
}

impl Default for Record<'_> {
    fn default() -> Self {
        Self::new()
    }
}
