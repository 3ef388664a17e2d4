//! Prometheus metrics in a registry of our own. Labels come from bounded sets
//! (route names from the configuration, decisions, reason codes); counters are
//! resolved per label set at start, never built per request.

mod egress;
mod keys;
mod route;

use prometheus::{Encoder, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::audit::AuditMetrics;
use crate::auth::jwks::SourceMetrics;
use crate::auth::token_cache::TokenCacheMetrics;
use crate::config::RouteConfig;
use crate::error::Reason;
pub use egress::EgressMetrics;

pub use route::{LATENCY_BUCKETS, Observation, RouteMetrics, Verdict};

pub struct Metrics {
    registry: Registry,
    routes: route::RouteFamilies,
    keys: keys::KeyFamilies,
    audit_records: prometheus::IntCounterVec,
    exemptions: IntGaugeVec,
    /// When each exemption of the configuration being served expires (Unix
    /// seconds); the gauge is computed from it at every scrape.
    exemption_expiry: std::sync::Mutex<Vec<i64>>,
    egress: egress::EgressFamilies,
    tls_not_after: IntGaugeVec,
    ready: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let routes = route::RouteFamilies::register(&registry)?;
        let build_info =
            IntGaugeVec::new(Opts::new("mfagate_build_info", "Build information; always 1."), &["version"])?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(build_info))?;
        // Dashboards and alerts select reasons by class ("a credential or
        // rule failure") by joining on this, so a reason added later is
        // counted where its class says without editing a query.
        let reason_info = IntGaugeVec::new(
            Opts::new(
                "mfagate_reason_info",
                "Every reason code with its class (credential, rule, request, egress, capacity, upstream); always 1.",
            ),
            &["reason", "class"],
        )?;
        for r in Reason::ALL {
            reason_info.with_label_values(&[r.as_str(), r.class().as_str()]).set(1);
        }
        registry.register(Box::new(reason_info))?;
        let audit_records = prometheus::IntCounterVec::new(
            Opts::new("mfagate_audit_records_total", "Decision log lines by result (written, dropped, failed)."),
            &["result"],
        )?;
        let exemptions = IntGaugeVec::new(
            Opts::new("mfagate_exemptions", "Configured exemptions by state (active, expired) now."),
            &["state"],
        )?;
        for result in ["written", "dropped", "failed"] {
            audit_records.with_label_values(&[result]);
        }
        for state in ["active", "expired"] {
            exemptions.with_label_values(&[state]);
        }
        registry.register(Box::new(audit_records.clone()))?;
        registry.register(Box::new(exemptions.clone()))?;
        let tls_not_after = IntGaugeVec::new(
            Opts::new(
                "mfagate_tls_cert_not_after_seconds",
                "Unix time at which the listener's certificate expires (notAfter of the leaf).",
            ),
            &["listener"],
        )?;
        let ready = IntGauge::new(
            "mfagate_ready",
            "1 while /readyz answers 200 (required key sources usable, not draining), else 0.",
        )?;
        registry.register(Box::new(tls_not_after.clone()))?;
        registry.register(Box::new(ready.clone()))?;
        let keys = keys::KeyFamilies::register(&registry)?;
        let egress = egress::EgressFamilies::register(&registry)?;
        // Every series exists from the start, at 0, egress mode or not.
        let _ = egress.metrics();
        Ok(Self {
            registry,
            routes,
            keys,
            audit_records,
            exemptions,
            exemption_expiry: std::sync::Mutex::default(),
            tls_not_after,
            ready,
            egress,
        })
    }

    /// The counters of one route, every label set resolved now.
    pub fn route(&self, name: &str) -> RouteMetrics {
        self.routes.route(name)
    }

    /// A configured route's series.
    pub fn route_of(&self, config: &RouteConfig) -> RouteMetrics {
        self.routes.route(&config.name)
    }

    /// Publishes the kind, mode and `enforce_after` of the routes being
    /// served, replacing those of the previous configuration.
    pub fn describe_routes(&self, routes: &[RouteConfig]) {
        self.routes.describe(routes);
    }

    /// The registry, for parts that register their own families.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Publishes when `listener`'s certificate expires.
    pub fn tls_cert_not_after(&self, listener: &str, not_after: Option<i64>) {
        if let Some(t) = not_after {
            self.tls_not_after.with_label_values(&[listener]).set(t);
        }
    }

    /// What `/readyz` answers, as of the scrape.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// The series of key source `name`, every label set resolved now.
    pub fn jwks_source(&self, name: &str) -> SourceMetrics {
        self.keys.source(name)
    }

    pub fn token_cache(&self) -> TokenCacheMetrics {
        self.keys.token_cache()
    }

    pub fn audit(&self) -> AuditMetrics {
        AuditMetrics {
            written: self.audit_records.with_label_values(&["written"]),
            dropped: self.audit_records.with_label_values(&["dropped"]),
            failed: self.audit_records.with_label_values(&["failed"]),
        }
    }

    /// The expiry instants of the configured exemptions (Unix seconds),
    /// replacing those of the previous configuration.
    pub fn exemptions(&self, expires: Vec<i64>) {
        *self.exemption_expiry.lock().unwrap_or_else(|e| e.into_inner()) = expires;
    }

    /// Sets the exemption gauge for `now`: an exemption is active before its
    /// expiry instant.
    fn observe_exemptions(&self, now: i64) {
        let expires = self.exemption_expiry.lock().unwrap_or_else(|e| e.into_inner());
        let active = expires.iter().filter(|&&e| now < e).count();
        self.exemptions.with_label_values(&["active"]).set(active as i64);
        self.exemptions.with_label_values(&["expired"]).set((expires.len() - active) as i64);
    }

    /// The egress proxy's series, every label set resolved now.
    pub fn egress(&self) -> EgressMetrics {
        self.egress.metrics()
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Vec<u8> {
        self.observe_exemptions(crate::rfc3339::unix_now());
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a family error leaves a partial scrape.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::UpstreamErrorKind;

    #[test]
    fn label_arrays_are_indexed_by_the_enums() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{}", r.as_str());
        }
        for (i, k) in UpstreamErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{}", k.as_str());
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
        assert!(text.contains(
            r#"mfagate_requests_total{decision="exempt",reason="privileged_role",route="partner-center"} 0"#
        ));
        assert!(!text.contains(r#"decision="exempt",reason="expired""#), "only rule reasons can be exempted");
        assert!(text.contains(r#"mfagate_audit_records_total{result="dropped"} 0"#));
        assert!(text.contains(r#"mfagate_app_user_requests_total{mfa="missing",route="partner-center"} 0"#));
        assert!(text.contains(r#"mfagate_reason_info{class="capacity",reason="overloaded"} 1"#));
        assert!(text.contains(r#"mfagate_upstream_errors_total{kind="connect",route="partner-center"} 0"#));
        assert!(text.contains(r#"mfagate_upstream_responses_total{class="5xx",route="partner-center"} 0"#));
        assert!(
            text.contains(
                r#"mfagate_token_verification_duration_seconds_bucket{route="partner-center",le="0.00001"} 0"#
            )
        );
    }
}
