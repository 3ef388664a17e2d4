//! Per-route series: decisions, latency of the whole request, of token
//! verification and of the upstream, and the upstream's answers and
//! failures. `route` takes configured route names only.

use std::time::Duration;

use http::StatusCode;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::config::RouteConfig;
use crate::error::Reason;
use crate::policy::compute::guard::Flag;
use crate::upstream::UpstreamErrorKind;

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

/// Latency buckets, from sub-millisecond (rejections, cached tokens) to
/// slow upstream calls.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
];

/// Token verification: a cache hit takes microseconds, an RSA check tens of
/// them, a key fetch on an unknown `kid` up to `fetch_timeout`.
const VERIFY_BUCKETS: &[f64] =
    &[0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0, 10.0];

/// Status classes of upstream answers, indexed by the first digit minus one.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

pub struct RouteFamilies {
    requests: IntCounterVec,
    app_user: IntCounterVec,
    duration: HistogramVec,
    verification: HistogramVec,
    upstream_duration: HistogramVec,
    upstream_responses: IntCounterVec,
    upstream_errors: IntCounterVec,
    info: IntGaugeVec,
    enforce_after: IntGaugeVec,
    compute: IntCounterVec,
}

impl RouteFamilies {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "mfagate_requests_total",
                "Requests by route, decision (allow, deny, would_deny, exempt) and reason.",
            ),
            &["route", "decision", "reason"],
        )?;
        let app_user = IntCounterVec::new(
            Opts::new(
                "mfagate_app_user_requests_total",
                "App+user requests whose token was read, by route and whether its amr shows MFA (proven, missing), whatever the route decided.",
            ),
            &["route", "mfa"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("mfagate_request_duration_seconds", "Time from request to response headers, by route.")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        let verification = HistogramVec::new(
            HistogramOpts::new(
                "mfagate_token_verification_duration_seconds",
                "Time taken to authenticate a bearer token (cache, key lookup, signature, claims), by route.",
            )
            .buckets(VERIFY_BUCKETS.to_vec()),
            &["route"],
        )?;
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "mfagate_upstream_duration_seconds",
                "Time from forwarding a request to the upstream's response headers (or its failure), by route.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        let upstream_responses = IntCounterVec::new(
            Opts::new("mfagate_upstream_responses_total", "Upstream answers by route and status class."),
            &["route", "class"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "mfagate_upstream_errors_total",
                "Forwarded requests the upstream did not answer, by route and kind (connect, connection, timeout, target, body).",
            ),
            &["route", "kind"],
        )?;
        let info = IntGaugeVec::new(
            Opts::new("mfagate_route_info", "Configured routes with their kind and configured mode; always 1."),
            &["route", "kind", "mode"],
        )?;
        let enforce_after = IntGaugeVec::new(
            Opts::new(
                "mfagate_route_enforce_after_timestamp_seconds",
                "Unix time from which a route with enforce_after enforces (report-only before).",
            ),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(app_user.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(verification.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(upstream_responses.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(info.clone()))?;
        registry.register(Box::new(enforce_after.clone()))?;
        let compute = IntCounterVec::new(
            Opts::new(
                "mfagate_compute_guard_total",
                "ARM compute requests compute_guard flagged, by route, kind (gpu, hpc, vcpus, regions, quota, uninspectable) and verdict (deny, would_deny, exempt, allow once stepped up, recorded).",
            ),
            &["route", "kind", "verdict"],
        )?;
        registry.register(Box::new(compute.clone()))?;
        Ok(Self {
            requests,
            app_user,
            duration,
            verification,
            upstream_duration,
            upstream_responses,
            upstream_errors,
            info,
            enforce_after,
            compute,
        })
    }

    /// The series of route `name`, every label set resolved now.
    pub fn route(&self, name: &str) -> RouteMetrics {
        let counter = |decision: &str, reason: &str| self.requests.with_label_values(&[name, decision, reason]);
        RouteMetrics {
            allow: counter("allow", "none"),
            deny: Reason::ALL.map(|r| r.is_decision().then(|| counter("deny", r.as_str()))),
            would_deny: Reason::ALL.map(|r| r.waivable().then(|| counter("would_deny", r.as_str()))),
            exempt: Reason::ALL.map(|r| r.rule().is_some().then(|| counter("exempt", r.as_str()))),
            app_user: ["missing", "proven"].map(|mfa| self.app_user.with_label_values(&[name, mfa])),
            duration: self.duration.with_label_values(&[name]),
            verification: self.verification.with_label_values(&[name]),
            upstream_duration: self.upstream_duration.with_label_values(&[name]),
            upstream_responses: CLASSES.map(|c| self.upstream_responses.with_label_values(&[name, c])),
            upstream_errors: UpstreamErrorKind::ALL
                .map(|k| self.upstream_errors.with_label_values(&[name, k.as_str()])),
            compute: Flag::ALL
                .map(|f| COMPUTE_VERDICTS.map(|v| self.compute.with_label_values(&[name, f.as_str(), v]))),
        }
    }

    /// Publishes the configured routes' kind, mode and `enforce_after`; a
    /// route no longer configured loses its series.
    pub fn describe(&self, routes: &[RouteConfig]) {
        self.info.reset();
        self.enforce_after.reset();
        for route in routes {
            let schedule = route.policy.schedule;
            self.info.with_label_values(&[&route.name, route.policy.kind.as_str(), schedule.mode.as_str()]).set(1);
            if let Some(after) = schedule.enforce_after {
                self.enforce_after.with_label_values(&[&route.name]).set(after);
            }
        }
    }
}

/// What the request path records once per request.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub verdict: Verdict,
    /// For an app+user token that was read: whether its `amr` shows MFA
    /// (`policy::partner_center::counts_as_mfa`).
    pub app_user_mfa: Option<bool>,
    /// To the response headers.
    pub elapsed: Duration,
    /// Authenticating the bearer token, when one was checked.
    pub verification: Option<Duration>,
    /// Forwarding, when the request was forwarded.
    pub upstream: Option<Duration>,
    pub upstream_status: Option<StatusCode>,
    pub upstream_error: Option<UpstreamErrorKind>,
}

#[derive(Clone)]
pub struct RouteMetrics {
    allow: IntCounter,
    deny: [Option<IntCounter>; Reason::ALL.len()],
    would_deny: [Option<IntCounter>; Reason::ALL.len()],
    exempt: [Option<IntCounter>; Reason::ALL.len()],
    /// Indexed by whether MFA is shown.
    app_user: [IntCounter; 2],
    duration: Histogram,
    verification: Histogram,
    upstream_duration: Histogram,
    upstream_responses: [IntCounter; CLASSES.len()],
    upstream_errors: [IntCounter; UpstreamErrorKind::ALL.len()],
    /// `mfagate_compute_guard_total`, by `Flag` then `COMPUTE_VERDICTS`.
    compute: [[IntCounter; COMPUTE_VERDICTS.len()]; Flag::ALL.len()],
}

/// The verdicts of `mfagate_compute_guard_total`.
const COMPUTE_VERDICTS: [&str; 5] = ["allow", "deny", "would_deny", "exempt", "recorded"];

impl RouteMetrics {
    pub fn record(&self, o: &Observation) {
        match o.verdict {
            Verdict::Allow => self.allow.inc(),
            Verdict::Deny(r) => Self::inc(&self.deny[r as usize]),
            Verdict::WouldDeny(r) => Self::inc(&self.would_deny[r as usize]),
            Verdict::Exempt(r) => Self::inc(&self.exempt[r as usize]),
        }
        if let Some(mfa) = o.app_user_mfa {
            self.app_user[usize::from(mfa)].inc();
        }
        self.duration.observe(o.elapsed.as_secs_f64());
        if let Some(d) = o.verification {
            self.verification.observe(d.as_secs_f64());
        }
        if let Some(d) = o.upstream {
            self.upstream_duration.observe(d.as_secs_f64());
        }
        if let Some(status) = o.upstream_status {
            let class = usize::from(status.as_u16() / 100).clamp(1, CLASSES.len()) - 1;
            self.upstream_responses[class].inc();
        }
        if let Some(kind) = o.upstream_error {
            self.upstream_errors[kind as usize].inc();
        }
    }

    /// Counts a request `compute_guard` flagged for `flag`, with its verdict.
    pub fn compute(&self, flag: Flag, verdict: &str) {
        if let Some(i) = COMPUTE_VERDICTS.iter().position(|v| *v == verdict) {
            self.compute[flag as usize][i].inc();
        }
    }

    /// The counter of response bodies that broke off or stalled.
    pub fn upstream_body(&self) -> IntCounter {
        self.upstream_errors[UpstreamErrorKind::Body as usize].clone()
    }

    fn inc(counter: &Option<IntCounter>) {
        if let Some(c) = counter {
            c.inc();
        }
    }
}
