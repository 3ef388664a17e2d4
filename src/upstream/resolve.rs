//! `[egress.resolve]`: a host name → address map for tests and air-gapped
//! labs. Connections to a mapped name go to its address while the name
//! stays what the client used: in the TLS server name, in the certificate
//! check and in `Host`. Applies to every upstream connection the gateway
//! makes (route upstreams, tunnels, plain forwards), not to key fetches.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::net::TcpStream;
use tower_service::Service;

#[derive(Debug, Clone, Default)]
pub struct Resolve(Arc<HashMap<String, SocketAddr>>);

impl Resolve {
    pub fn new(map: HashMap<String, SocketAddr>) -> Self {
        Self(Arc::new(map))
    }

    /// The address configured for `host` (any case, final dot ignored).
    pub fn lookup(&self, host: &str) -> Option<SocketAddr> {
        if self.0.is_empty() {
            return None;
        }
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        self.0.get(&host).copied()
    }

    /// A TCP connection to `host:port`, or to its mapped address.
    pub async fn connect(&self, host: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
        let connecting = async {
            match self.lookup(host) {
                Some(addr) => TcpStream::connect(addr).await,
                None => TcpStream::connect((host, port)).await,
            }
        };
        let tcp = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// `http` with the map in front: the connector of every upstream client.
    pub fn connector(&self, http: HttpConnector) -> Connector {
        Connector { http, resolve: self.clone() }
    }
}

/// An `HttpConnector` that connects mapped names to their address. The TLS
/// layer wrapped around it still sees the original URI.
#[derive(Debug, Clone)]
pub struct Connector {
    http: HttpConnector,
    resolve: Resolve,
}

impl Service<Uri> for Connector {
    type Response = <HttpConnector as Service<Uri>>::Response;
    type Error = <HttpConnector as Service<Uri>>::Error;
    type Future = <HttpConnector as Service<Uri>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mapped = dst.host().and_then(|h| self.resolve.lookup(h)).and_then(|addr| {
            let mut parts = http::uri::Parts::default();
            parts.scheme = dst.scheme().cloned();
            parts.authority = addr.to_string().parse().ok();
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
            Uri::from_parts(parts).ok()
        });
        self.http.call(mapped.unwrap_or(dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_the_final_dot() {
        let r = Resolve::new(HashMap::from([("graph.microsoft.com".to_string(), "127.0.0.1:9".parse().unwrap())]));
        assert_eq!(r.lookup("Graph.Microsoft.com."), Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(r.lookup("microsoft.com"), None);
    }
}
