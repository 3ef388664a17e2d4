//! Prometheus metrics in a registry of our own. Labels come from bounded sets
//! (route names from the configuration, decisions, reason codes); counters are
//! resolved per label set at start, never built per request.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::auth::jwks::JwksMetrics;
use crate::error::Reason;
use crate::proxy::record::Verdict;

/// Request latency buckets, from sub-millisecond (rejections, cache hits) to
/// slow upstream calls.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_errors: IntCounterVec,
    jwks_refresh: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("mfagate_requests_total", "Requests by route, decision (allow, deny, would_deny) and reason."),
            &["route", "decision", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("mfagate_request_duration_seconds", "Time from request to response headers, by route.")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "mfagate_upstream_errors_total",
                "Allowed requests the upstream did not answer (or whose response body broke off), by route and kind.",
            ),
            &["route", "kind"],
        )?;
        let jwks_refresh = IntCounterVec::new(
            Opts::new("mfagate_jwks_refresh_total", "Signing key set fetches by result."),
            &["result"],
        )?;
        let build_info =
            IntGaugeVec::new(Opts::new("mfagate_build_info", "Build information; always 1."), &["version"])?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(jwks_refresh.clone()))?;
        registry.register(Box::new(build_info))?;
        Ok(Self { registry, requests, duration, upstream_errors, jwks_refresh })
    }

    /// The counters of one route, every label set resolved now.
    pub fn route(&self, name: &str) -> RouteMetrics {
        let counter = |decision: &str, reason: &str| self.requests.with_label_values(&[name, decision, reason]);
        RouteMetrics {
            allow: counter("allow", "none"),
            deny: Reason::ALL.map(|r| r.is_decision().then(|| counter("deny", r.as_str()))),
            would_deny: Reason::ALL.map(|r| r.is_policy().then(|| counter("would_deny", r.as_str()))),
            duration: self.duration.with_label_values(&[name]),
            upstream_unavailable: self.upstream_errors.with_label_values(&[name, "unavailable"]),
            upstream_timeout: self.upstream_errors.with_label_values(&[name, "timeout"]),
            upstream_body: self.upstream_errors.with_label_values(&[name, "body"]),
        }
    }

    /// The registry, for parts that register their own families.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn jwks(&self) -> JwksMetrics {
        JwksMetrics {
            success: self.jwks_refresh.with_label_values(&["success"]),
            failure: self.jwks_refresh.with_label_values(&["failure"]),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a family error leaves a partial scrape.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[derive(Clone)]
pub struct RouteMetrics {
    allow: IntCounter,
    deny: [Option<IntCounter>; Reason::ALL.len()],
    would_deny: [Option<IntCounter>; Reason::ALL.len()],
    duration: Histogram,
    upstream_unavailable: IntCounter,
    upstream_timeout: IntCounter,
    /// The upstream's response body failed or stalled after its headers were passed on.
    pub upstream_body: IntCounter,
}

impl RouteMetrics {
    pub fn record(&self, verdict: Verdict, upstream_error: Option<Reason>, elapsed: Duration) {
        match verdict {
            Verdict::Allow => self.allow.inc(),
            Verdict::Deny(r) => Self::inc(&self.deny[r as usize]),
            Verdict::WouldDeny(r) => Self::inc(&self.would_deny[r as usize]),
        }
        match upstream_error {
            Some(Reason::UpstreamTimeout) => self.upstream_timeout.inc(),
            Some(_) => self.upstream_unavailable.inc(),
            None => {}
        }
        self.duration.observe(elapsed.as_secs_f64());
    }

    fn inc(counter: &Option<IntCounter>) {
        if let Some(c) = counter {
            c.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_own_slot() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{}", r.as_str());
        }
    }

    #[test]
    fn every_series_exists_from_the_start() {
        let m = Metrics::new().unwrap();
        let _route = m.route("partner-center");
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(
            text.contains(r#"mfagate_requests_total{decision="deny",reason="mfa_required",route="partner-center"} 0"#)
        );
        assert!(text.contains(
            r#"mfagate_requests_total{decision="would_deny",reason="public_client",route="partner-center"} 0"#
        ));
        assert!(!text.contains(r#"decision="deny",reason="upstream_timeout""#));
        assert!(!text.contains(r#"decision="would_deny",reason="no_route""#));
        assert!(text.contains(r#"mfagate_build_info{version=""#));
    }
}
