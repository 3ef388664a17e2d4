//! What happened to one request: the verdict, the identity it carried, the
//! upstream's answer. Turned into metrics, one structured log line, and one
//! decision log record per decision, never with the token itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use tracing::Level;

use super::route::Route;
use crate::audit::{AuditLog, AuditRecord, AuxiliaryRecord};
use crate::auth::claims::{Claims, is_guid};
use crate::config::UNMATCHED_ROUTE;
use crate::correlation::Correlation;
use crate::error::{ErrorFormat, Reason, Reject, RequestRule};
use crate::fingerprint::user_fingerprint;
use crate::metrics::{Observation, RouteMetrics};
use crate::policy::compute::guard::{Flag, Judgement};
use crate::policy::legacy::{Credential, TokenRequest};
use crate::policy::partner_center::counts_as_mfa;
use crate::policy::{ClientType, Decision, Facts, Mode, Outcome, Presented, Principal, TokenVersion, classify};
use crate::rfc3339;
use crate::upstream::UpstreamErrorKind;

pub use crate::metrics::Verdict;

pub struct Record<'a> {
    pub route: Option<&'a Route>,
    pub verdict: Verdict,
    /// The request check that refused a `bad_request`.
    pub rule: Option<RequestRule>,
    /// The answer's format when the request was refused before routing.
    pub format: Option<ErrorFormat>,
    /// The route's mode when the request came.
    pub mode: Option<Mode>,
    /// Claims of the token, when it could be read: signature verified, or
    /// decoded on a route with `verify_signature = false` (`verified` false).
    pub claims: Option<Arc<Claims>>,
    pub verified: bool,
    pub credential: Option<Credential>,
    /// `Facts::findings`, comma-separated.
    pub findings: String,
    /// Why the main token failed its checks.
    pub token_error: Option<Reason>,
    pub auxiliary: Vec<Presented>,
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
    /// A decision was taken (before it, a request the client abandons is
    /// not a decision to record).
    pub is_decided: bool,
    /// The client went away before the response headers.
    pub client_closed: bool,
    /// What `compute_guard` found in an ARM compute request.
    pub compute: Option<Judgement>,
    /// `compute`'s violations and recorded flags, comma-separated.
    compute_kinds: String,
    compute_noted: String,
}

impl<'a> Record<'a> {
    pub fn new() -> Self {
        Self {
            route: None,
            verdict: Verdict::Allow,
            rule: None,
            format: None,
            mode: None,
            claims: None,
            verified: false,
            credential: None,
            findings: String::new(),
            token_error: None,
            auxiliary: Vec::new(),
            customer: None,
            token_request: None,
            exemption: None,
            expired_exemption: None,
            upstream_status: None,
            upstream_error: None,
            upstream_error_kind: None,
            verification: None,
            upstream_latency: None,
            is_decided: false,
            client_closed: false,
            compute: None,
            compute_kinds: String::new(),
            compute_noted: String::new(),
        }
    }

    /// Writes down what was decided and on which facts.
    pub fn decided(&mut self, facts: &Facts, outcome: &Outcome<'_>) {
        self.is_decided = true;
        self.verdict = match &outcome.decision {
            Decision::Allow => Verdict::Allow,
            Decision::Deny(d) => Verdict::Deny(d.reason),
            Decision::WouldDeny(r) => Verdict::WouldDeny(*r),
            Decision::Exempt(r) => Verdict::Exempt(*r),
        };
        self.findings = facts.findings.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",");
        if let Some(token) = &facts.token {
            self.claims = token.claims().cloned();
            self.verified = token.verified();
            self.token_error = token.error();
        }
        self.auxiliary = facts.auxiliary.clone();
        if let Some(j) = &self.compute {
            let join = |flags: &[Flag]| flags.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(",");
            self.compute_kinds = join(&j.violations);
            self.compute_noted = join(&j.noted);
        }
        self.customer = facts.customer.clone();
        if let Some(e) = &outcome.evaluation {
            self.exemption = e.exemption.map(|e| e.reason.clone());
            self.expired_exemption = e.expired_exemption.map(|e| e.reason.clone());
        }
    }

    /// Notes a rejection: a deny, or an upstream failure after the decision.
    pub fn rejected(&mut self, reject: &Reject) {
        self.is_decided = true;
        match reject {
            Reject::Upstream(e) => {
                self.upstream_error = Some(reject.reason());
                self.upstream_error_kind = Some(e.kind());
            }
            _ => self.verdict = Verdict::Deny(reject.reason()),
        }
        self.rule = reject.rule();
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
        let claims = self.claims.as_deref();
        metrics.record(&Observation {
            verdict: self.verdict,
            app_user_mfa: claims
                .filter(|c| classify(c) == Principal::Delegated)
                .map(|c| counts_as_mfa(c.amr.as_deref())),
            elapsed,
            verification: self.verification,
            upstream: self.upstream_latency,
            upstream_status: self.upstream_status,
            upstream_error: self.upstream_error_kind,
        });
        if let Some(j) = &self.compute {
            let verdict = self.verdict.decision();
            for f in &j.violations {
                metrics.compute(*f, verdict);
            }
            for f in &j.noted {
                metrics.compute(*f, "recorded");
            }
        }
        let field = |f: fn(&Claims) -> Option<&str>| claims.and_then(f).unwrap_or("");
        macro_rules! decision {
            ($level:expr) => {
                tracing::event!(
                    target: "mfagate::decision",
                    $level,
                    route = self.route_name(),
                    decision = self.verdict.decision(),
                    reason = self.verdict.reason(),
                    rule = self.rule.map(RequestRule::as_str),
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
                    compute_kind = self.compute_kinds.as_str(),
                    latency_us = elapsed.as_micros() as u64,
                    "decision"
                )
            };
        }
        // Requests allowed and answered are the bulk, and the decision log has
        // them all: they are logged at debug; everything else at info.
        if self.verdict == Verdict::Allow && self.upstream_error.is_none() {
            decision!(Level::DEBUG);
        } else {
            decision!(Level::INFO);
        }
        if let Some(audit) = audit {
            let mut buf = rfc3339::MillisBuf::default();
            let timestamp = rfc3339::format_millis_into(SystemTime::now(), &mut buf);
            // A password grant's user, fingerprinted like a token's (login routes).
            let login_user = self.token_request.as_ref().and_then(|t| t.username.as_deref()).map(user_fingerprint);
            let mut record = self.audit_record(ids, status, elapsed, timestamp, login_user.as_deref());
            record.instance = audit.instance();
            audit.write(&record);
        }
    }

    fn route_name(&self) -> &str {
        self.route.map_or(UNMATCHED_ROUTE, |r| r.config.name.as_str())
    }

    /// The decision log record, borrowing everything it shows.
    fn audit_record<'r>(
        &'r self,
        ids: &'r Correlation,
        status: StatusCode,
        elapsed: Duration,
        timestamp: &'r str,
        login_user: Option<&'r str>,
    ) -> AuditRecord<&'r str, &'r [String]> {
        let mut record = AuditRecord {
            timestamp,
            route: self.route_name(),
            decision: self.verdict.decision(),
            reason: self.verdict.reason(),
            rule: self.rule.map(RequestRule::as_str),
            mode: self.mode.map_or("", Mode::as_str),
            customer: self.customer.as_deref(),
            credential: self.credential.map(|c| c.as_str()),
            exemption: self.exemption.as_deref(),
            expired_exemption: self.expired_exemption.as_deref(),
            correlation_id: ids.correlation_str(),
            request_id: ids.request_id.to_str().unwrap_or_default(),
            status: status.as_u16(),
            upstream_status: self.upstream_status.map(|s| s.as_u16()),
            upstream_error: self.upstream_error.map(|r| r.as_str()),
            upstream_latency_us: self.upstream_latency.map(|d| d.as_micros() as u64),
            latency_us: elapsed.as_micros() as u64,
            findings: Some(self.findings.as_str()).filter(|f| !f.is_empty()),
            token_error: self.token_error.map(Reason::as_str),
            auxiliary: (!self.auxiliary.is_empty()).then(|| self.auxiliary.iter().map(auxiliary_record).collect()),
            outcome: self.client_closed.then_some("client_closed"),
            compute_kind: Some(self.compute_kinds.as_str()).filter(|k| !k.is_empty()),
            compute_noted: Some(self.compute_noted.as_str()).filter(|k| !k.is_empty()),
            ..AuditRecord::default()
        };
        if let Some(s) = self.compute.as_ref().filter(|j| j.is_flagged()).and_then(|j| j.summary.as_ref()) {
            record.compute_resource_type = s.resource_type;
            record.compute_size = s.size.as_deref();
            record.compute_vcpus = s.vcpus;
            record.compute_instances = s.instances;
            record.compute_region = s.region.as_deref();
            record.compute_subscription = s.subscription.as_deref();
        }
        if let Some(c) = &self.claims {
            record.verified = Some(self.verified);
            record.tid = c.tid.as_deref();
            record.idp = c.idp.as_deref();
            record.idp_tenant = c.idp_tenant();
            record.oid = c.oid.as_deref();
            record.appid = c.app_id();
            record.client = Some(ClientType::of(c).as_str());
            record.principal = Some(classify(c).as_str());
            record.ver = Some(TokenVersion::of(c).as_str());
            record.amr = c.amr.as_deref();
            record.wids = c.wids.as_deref();
            record.xms_cc = c.xms_cc.as_deref();
            record.acrs = c.acrs.as_deref();
            record.uti_sha256 = c.uti_fingerprint();
            record.upn_sha256 = c.user_fingerprint();
        }
        if let Some(t) = self.token_request.as_ref().filter(|t| t.is_token_request()) {
            record.grant_type = t.grant_label();
            record.appid = t.client_id.as_deref().or(t.basic_client.as_deref()).filter(|id| is_guid(id));
            record.upn_sha256 = login_user;
            record.signin_tenant = t.tenant.as_deref();
            record.client_auth = Some(t.client_auth().as_str());
            record.scope = t.scope.as_deref().map(loggable);
            record.resource = t.resource.as_deref().map(loggable);
        }
        record
    }
}

/// An auxiliary token as the decision log shows it.
fn auxiliary_record(token: &Presented) -> AuxiliaryRecord<&str, &[String]> {
    let mut record = AuxiliaryRecord { token_error: token.error().map(Reason::as_str), ..AuxiliaryRecord::default() };
    if let Some(c) = token.claims() {
        record.verified = Some(token.verified());
        record.tid = c.tid.as_deref();
        record.idp = c.idp.as_deref();
        record.oid = c.oid.as_deref();
        record.appid = c.app_id();
        record.client = Some(ClientType::of(c).as_str());
        record.principal = Some(classify(c).as_str());
        record.ver = Some(TokenVersion::of(c).as_str());
        record.amr = c.amr.as_deref();
        record.wids = c.wids.as_deref();
        record.xms_cc = c.xms_cc.as_deref();
        record.acrs = c.acrs.as_deref();
    }
    record
}

impl Default for Record<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// A value the client chose, as the log may show it: printable ASCII up to
/// 512 characters, else `other` (no control character reaches the log).
fn loggable(s: &str) -> &str {
    if s.len() <= 512 && s.bytes().all(|b| (0x20..0x7f).contains(&b)) { s } else { "other" }
}
