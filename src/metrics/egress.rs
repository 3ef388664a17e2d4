//! The egress proxy's series: what happened to each proxy request, bytes
//! through blind tunnels, and the leaf certificate cache. Every label value
//! is fixed here; host names never become labels.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

pub struct EgressFamilies {
    connections: IntCounterVec,
    tunnel_bytes: IntCounterVec,
    cert_cache: IntCounterVec,
    tenant_restrictions: IntCounterVec,
}

/// Tenant restrictions on one sign-in host: requests that got the headers,
/// and requests whose own copy of one was removed first.
#[derive(Clone)]
pub struct TenantRestrictionCounters {
    pub host: &'static str,
    pub injected: IntCounter,
    pub client_header_removed: IntCounter,
}

/// The resolved counters, cloned into the egress listener.
#[derive(Clone)]
pub struct EgressMetrics {
    pub intercepted: IntCounter,
    pub tunnelled: IntCounter,
    pub forwarded: IntCounter,
    pub denied: IntCounter,
    /// The target could not be reached or did not answer.
    pub failed: IntCounter,
    /// Client → target bytes through blind tunnels.
    pub bytes_upstream: IntCounter,
    /// Target → client bytes through blind tunnels.
    pub bytes_downstream: IntCounter,
    pub cert_hit: IntCounter,
    pub cert_miss: IntCounter,
    /// One per sign-in host, in `entra::SIGN_IN_HOSTS` order.
    pub tenant_restrictions: Vec<TenantRestrictionCounters>,
}

impl EgressFamilies {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let connections = IntCounterVec::new(
            Opts::new(
                "mfagate_egress_connections_total",
                "Egress proxy requests by outcome: CONNECTs intercepted or tunnelled, plain HTTP forwarded, denied, or failed (target unreachable).",
            ),
            &["kind"],
        )?;
        let tunnel_bytes = IntCounterVec::new(
            Opts::new(
                "mfagate_egress_tunnel_bytes_total",
                "Bytes through blind tunnels, by direction (upstream: client to target, downstream: target to client).",
            ),
            &["direction"],
        )?;
        let cert_cache = IntCounterVec::new(
            Opts::new(
                "mfagate_egress_cert_cache_total",
                "Interception leaf certificate lookups by result (hit, miss: issued).",
            ),
            &["result"],
        )?;
        let tenant_restrictions = IntCounterVec::new(
            Opts::new(
                "mfagate_tenant_restrictions_total",
                "Requests forwarded to Entra's sign-in hosts (through the egress proxy or the reverse-proxy listener) by tenant restrictions action (injected: the headers were added; client_header_removed: the client's own copy was removed first).",
            ),
            &["host", "action"],
        )?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(tunnel_bytes.clone()))?;
        registry.register(Box::new(cert_cache.clone()))?;
        registry.register(Box::new(tenant_restrictions.clone()))?;
        Ok(Self { connections, tunnel_bytes, cert_cache, tenant_restrictions })
    }

    pub fn metrics(&self) -> EgressMetrics {
        let kind = |k: &str| self.connections.with_label_values(&[k]);
        EgressMetrics {
            intercepted: kind("intercepted"),
            tunnelled: kind("tunnelled"),
            forwarded: kind("forwarded"),
            denied: kind("denied"),
            failed: kind("failed"),
            bytes_upstream: self.tunnel_bytes.with_label_values(&["upstream"]),
            bytes_downstream: self.tunnel_bytes.with_label_values(&["downstream"]),
            cert_hit: self.cert_cache.with_label_values(&["hit"]),
            cert_miss: self.cert_cache.with_label_values(&["miss"]),
            tenant_restrictions: crate::entra::SIGN_IN_HOSTS
                .iter()
                .map(|&host| TenantRestrictionCounters {
                    host,
                    injected: self.tenant_restrictions.with_label_values(&[host, "injected"]),
                    client_header_removed: self.tenant_restrictions.with_label_values(&[host, "client_header_removed"]),
                })
                .collect(),
        }
    }
}
