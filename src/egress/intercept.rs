//! An intercepted tunnel: TLS terminated with a leaf certificate for the
//! CONNECT target (issued by the interception CA, cached per host), then
//! every HTTP/1.1 or HTTP/2 request inside goes through the gateway's own
//! pipeline with the route chosen from the CONNECT target. Before a request
//! is authenticated its TLS server name and `Host`/`:authority` must name
//! the CONNECT target (else 421), and its token's audience must name it too
//! (else 403 `audience_host_mismatch`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::HOST;
use http::request::Parts;
use http::uri::Authority;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use moka::sync::Cache;
use rustls::ServerConfig;
use rustls::server::Acceptor;
use tokio_rustls::LazyConfigAcceptor;
use tracing::{debug, warn};

use super::ca::{CaError, InterceptCa};
use super::hosts::{TargetAction, TargetRefusal};
use super::{Egress, EgressError, EgressState, ProxyConn, Target, hosts};
use crate::correlation::Correlation;
use crate::error::{ErrorFormat, Reject};
use crate::listener::{self, Fault, Inspected, Inspector, Refusal};
use crate::metrics::EgressMetrics;
use crate::proxy::{Guard, Routed};
use crate::respond::{Head, Responder};

/// How long an issued leaf is served before a new one is made (it is valid
/// for a week).
const LEAF_TTL: Duration = Duration::from_secs(24 * 3600);
/// Distinct hosts kept; only wildcard routes can make this grow.
const LEAF_CACHE_SIZE: u64 = 1024;

/// TLS configurations with a leaf per guarded host.
pub struct Certs {
    ca: InterceptCa,
    cache: Cache<String, Arc<ServerConfig>>,
    metrics: EgressMetrics,
}

impl Certs {
    pub fn new(ca: InterceptCa, metrics: EgressMetrics) -> Self {
        let cache = Cache::builder().max_capacity(LEAF_CACHE_SIZE).time_to_live(LEAF_TTL).build();
        Self { ca, cache, metrics }
    }

    /// The configuration for `host`; concurrent misses issue one leaf.
    pub fn config_for(&self, host: &str) -> Result<Arc<ServerConfig>, Arc<CaError>> {
        let entry = self.cache.entry_by_ref(host).or_try_insert_with(|| self.ca.server_config(host))?;
        if entry.is_fresh() { &self.metrics.cert_miss } else { &self.metrics.cert_hit }.inc();
        Ok(entry.into_value())
    }
}

/// One intercepted tunnel: what every request inside it is held to.
struct Tunnel {
    egress: Arc<Egress>,
    target: Target,
    authority: Authority,
    /// The ClientHello named the CONNECT target.
    sni_matches: bool,
}

/// A request of a tunnel, held to the egress state current when it came.
struct TunnelRequest<'a> {
    tunnel: &'a Tunnel,
    state: &'a EgressState,
}

impl Guard for TunnelRequest<'_> {
    fn check(&self, parts: &Parts) -> Result<(), Reject> {
        let target = &self.tunnel.target;
        if !self.tunnel.sni_matches {
            return Err(EgressError::Misdirected("TLS server name differs from the CONNECT target").into());
        }
        // A reload may have put the host on the deny list since the tunnel opened.
        if let TargetAction::Deny(refusal) = self.state.rules.connect(&target.host, target.port) {
            return Err(EgressError::Denied(refusal).into());
        }
        names_target(parts, target)?;
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        self.state.binding.check(path_and_query, &parts.headers, &target.host)?;
        Ok(())
    }
}

/// `:authority` (or an absolute URI) and every `Host` must name the
/// target's host and port; at least one must be present.
fn names_target(parts: &Parts, target: &Target) -> Result<(), EgressError> {
    let same = |a: &Authority| {
        hosts::normalize(a.host()).is_ok_and(|h| h == target.host) && a.port_u16().unwrap_or(443) == target.port
    };
    let mut named = false;
    if let Some(a) = parts.uri.authority() {
        named = true;
        if !same(a) {
            return Err(EgressError::Misdirected("request authority differs from the CONNECT target"));
        }
    }
    for value in parts.headers.get_all(HOST) {
        named = true;
        let ok = value.to_str().ok().and_then(|v| v.parse::<Authority>().ok()).is_some_and(|a| same(&a));
        if !ok {
            return Err(EgressError::Misdirected("Host differs from the CONNECT target"));
        }
    }
    if !named {
        return Err(EgressError::Misdirected("request names no host"));
    }
    Ok(())
}

/// Terminates TLS on the upgraded connection and serves the requests in it.
pub(super) async fn serve(
    egress: Arc<Egress>,
    state: Arc<EgressState>,
    io: TokioIo<Upgraded>,
    target: Target,
    authority: Authority,
    conn: &ProxyConn,
) {
    let _drain = conn.drain.clone();
    let peer = conn.peer;
    let handshake = async {
        let start = LazyConfigAcceptor::new(Acceptor::default(), io).await.map_err(|e| e.to_string())?;
        let sni = start.client_hello().server_name().map(|s| s.trim_end_matches('.').to_ascii_lowercase());
        let config = state.certs.config_for(&target.host).map_err(|e| {
            warn!(host = %target.host, error = %e, "cannot issue an interception certificate");
            e.to_string()
        })?;
        let tls = start.into_stream(config).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((tls, sni))
    };
    let handshake = tokio::time::timeout(state.http.tls_handshake_timeout, handshake);
    let (tls, sni) = tokio::select! {
        done = handshake => match done {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return debug!(%peer, host = %target.host, error = %e, "intercepted TLS handshake failed"),
            Err(_) => return debug!(%peer, host = %target.host, "intercepted TLS handshake timed out"),
        },
        () = conn.drain.abort.cancelled() => return,
    };
    let sni_matches = sni.as_deref() == Some(target.host.as_str());
    if !sni_matches {
        debug!(%peer, host = %target.host, "TLS server name differs from the CONNECT target; requests get 421");
    }
    // HTTP/1 inside the tunnel gets the same byte-level framing checks as the
    // reverse-proxy listener; a fault refuses the request that carries it.
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let fault = Fault::default();
    let inspector = (!h2).then(|| Inspector::new(state.http.max_header_bytes, fault.clone()));
    // The tunnel holds no configuration past its start but its HTTP settings.
    let builder = state.builder.clone();
    drop(state);
    let io = TokioIo::new(Inspected::new(tls, inspector));
    let tunnel = Arc::new(Tunnel { egress, target, authority, sni_matches });
    let service = service_fn(move |mut req: http::Request<Incoming>| {
        let tunnel = Arc::clone(&tunnel);
        if let Some(why) = fault.get() {
            req.extensions_mut().insert(Refusal::Malformed(why));
        }
        // Boxed, as on the reverse-proxy listener: an idle connection keeps
        // no room for a request's state.
        Box::pin(async move {
            // The gateway and egress state current now: a reload applies to
            // the next request of an open tunnel.
            let Some((gateway, state)) = tunnel.egress.live.egress() else {
                let (parts, _) = req.into_parts();
                let refusal = Reject::from(EgressError::Denied(TargetRefusal::NotAllowed));
                let (ids, head) = (Correlation::of(&parts.headers), Head::of(&parts));
                return Ok::<_, Infallible>(Responder::default().refuse(
                    refusal,
                    &ids,
                    ErrorFormat::PartnerCenter,
                    &head,
                    None,
                ));
            };
            let guard = TunnelRequest { tunnel: &tunnel, state: &state };
            let routed = Routed { host: &tunnel.target.host, authority: &tunnel.authority, guard: &guard };
            Ok::<_, Infallible>(gateway.handle_routed(req, peer, &routed).await)
        })
    });
    let served = builder.serve(io, h2, service);
    if let Err(e) = listener::until_drained(served, &conn.drain).await {
        debug!(%peer, error = %e, "intercepted connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, hosts: &[&str]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for h in hosts {
            b = b.header(HOST, *h);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn target() -> Target {
        Target { host: "api.partnercenter.microsoft.com".into(), port: 443 }
    }

    #[test]
    fn requests_must_name_the_connect_target() {
        let t = target();
        assert!(names_target(&parts("/v1/customers", &["api.partnercenter.microsoft.com"]), &t).is_ok());
        assert!(names_target(&parts("/v1/customers", &["API.PartnerCenter.microsoft.com.:443"]), &t).is_ok());
        assert!(names_target(&parts("https://api.partnercenter.microsoft.com/v1", &[]), &t).is_ok());
        assert!(names_target(&parts("/v1", &["graph.microsoft.com"]), &t).is_err());
        assert!(names_target(&parts("/v1", &["api.partnercenter.microsoft.com:8443"]), &t).is_err());
        assert!(names_target(&parts("/v1", &[]), &t).is_err());
        assert!(
            names_target(&parts("https://api.partnercenter.microsoft.com/v1", &["graph.microsoft.com"]), &t).is_err()
        );
        assert!(names_target(&parts("/v1", &["api.partnercenter.microsoft.com", "graph.microsoft.com"]), &t).is_err());
    }
}
