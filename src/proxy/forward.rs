//! Forwarding an authorised request to the route's upstream over a pooled
//! connection (HTTP/2 when the upstream offers it by ALPN, else HTTP/1.1),
//! bodies streamed both ways.

use std::net::SocketAddr;
use std::time::Duration;

use http::uri::{Authority, Parts as UriParts, PathAndQuery, Scheme};
use http::{Extensions, Request, Response, Uri, Version};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::Body;
use super::headers::{self, Correlation};
use crate::config::{RouteConfig, ServerConfig, UpstreamTarget};
use crate::egress::resolve::{Connector, Resolve};
use crate::policy::Authorized;
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream unavailable: {0}")]
    Unavailable(#[source] hyper_util::client::legacy::Error),
    #[error("upstream did not answer in time")]
    Timeout,
    #[error("cannot build the upstream URI for this request")]
    Target,
}

/// What went wrong with the upstream, for the `kind` metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// No connection: refused, unreachable, DNS, TLS handshake or certificate.
    Connect,
    /// The connection failed after it was made (reset, protocol error).
    Connection,
    Timeout,
    /// The request could not be turned into an upstream URI.
    Target,
}

impl UpstreamErrorKind {
    pub const ALL: [Self; 4] = [Self::Connect, Self::Connection, Self::Timeout, Self::Target];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Target => "target",
        }
    }
}

impl UpstreamError {
    pub fn kind(&self) -> UpstreamErrorKind {
        match self {
            Self::Unavailable(e) if e.is_connect() => UpstreamErrorKind::Connect,
            Self::Unavailable(_) => UpstreamErrorKind::Connection,
            Self::Timeout => UpstreamErrorKind::Timeout,
            Self::Target => UpstreamErrorKind::Target,
        }
    }
}

/// A route's upstream: its address and a connection pool of its own (each
/// route may trust its own extra CA).
pub struct Upstream {
    client: Client<HttpsConnector<Connector>, Body>,
    target: UpstreamTarget,
    timeout: Duration,
}

impl Upstream {
    pub fn new(route: &RouteConfig, server: &ServerConfig, resolve: &Resolve) -> Result<Self, TlsError> {
        let tls = tls::client(route.upstream_ca.as_deref())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(server.upstream_connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(resolve.connector(http));
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(server.upstream_pool_idle_timeout)
            .pool_max_idle_per_host(server.upstream_pool_max_idle)
            .build(https);
        Ok(Self { client, target: route.upstream.clone(), timeout: server.upstream_timeout })
    }

    /// Sends the request upstream and returns its response, headers rewritten.
    /// Requires proof that the request was authorised. `to`: the `https://`
    /// authority to send it to instead of the route's upstream.
    pub async fn forward(
        &self,
        req: Request<Body>,
        peer: SocketAddr,
        ids: &Correlation,
        _authorized: &Authorized,
        to: Option<&Authority>,
    ) -> Result<Response<Body>, UpstreamError> {
        let (mut parts, body) = req.into_parts();
        let original_host = headers::original_host(&parts);
        parts.uri = match to {
            None => self.uri(&parts.uri),
            Some(authority) => direct_uri(authority, &parts.uri),
        }
        .ok_or(UpstreamError::Target)?;
        parts.version = Version::HTTP_11;
        // Nothing the downstream connection attached travels on.
        parts.extensions = Extensions::new();
        headers::to_upstream(&mut parts.headers, peer.ip(), original_host, ids);
        let pending = self.client.request(Request::from_parts(parts, body));
        let rsp = tokio::time::timeout(self.timeout, pending)
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(UpstreamError::Unavailable)?;
        let (mut parts, body) = rsp.into_parts();
        headers::to_downstream(&mut parts.headers);
        parts.extensions = Extensions::new();
        Ok(Response::from_parts(parts, Body::Left(body)))
    }

    /// The upstream's scheme and authority, its base path, then the request's path and query.
    fn uri(&self, downstream: &Uri) -> Option<Uri> {
        let path_and_query = downstream.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        let path_and_query = if self.target.base_path.is_empty() {
            path_and_query
        } else {
            format!("{}{}", self.target.base_path, path_and_query.as_str()).parse().ok()?
        };
        let mut parts = UriParts::default();
        parts.scheme = Some(self.target.scheme.clone());
        parts.authority = Some(self.target.authority.clone());
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).ok()
    }
}

/// `https://{authority}` and the request's path and query, unchanged.
fn direct_uri(authority: &Authority, downstream: &Uri) -> Option<Uri> {
    let mut parts = UriParts::default();
    parts.scheme = Some(Scheme::HTTPS);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(downstream.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/")));
    Uri::from_parts(parts).ok()
}
