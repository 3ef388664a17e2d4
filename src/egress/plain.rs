//! Plain HTTP through the proxy (`GET http://host/...`) to an allowed host
//! that no route guards. The target comes from the request URI; `Host` is
//! rewritten to it (RFC 9112 §3.2.2) and hop-by-hop fields are removed both
//! ways.

use std::time::Duration;

use http::header::{HOST, HeaderValue, VIA};
use http::uri::{Authority, Parts as UriParts, PathAndQuery, Scheme};
use http::{Extensions, Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::EgressError;
use crate::config::UpstreamSettings;
use crate::error::{Reject, RequestRule};
use crate::upstream::Body;
use crate::upstream::headers::strip_hop_by_hop;
use crate::upstream::resolve::{Connector, Resolve};
use crate::upstream::{ClientBody, UpstreamBody};

pub struct Forwarder {
    client: Client<Connector, ClientBody>,
    timeout: Duration,
    idle_timeout: Duration,
}

impl Forwarder {
    pub fn new(resolve: &Resolve, server: &UpstreamSettings) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(server.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(resolve.connector(http));
        Self { client, timeout: server.timeout, idle_timeout: server.idle_timeout }
    }

    /// Sends the request to `http://{authority}` and streams the answer back.
    pub async fn forward(&self, req: Request<Incoming>, authority: &Authority) -> Result<Response<Body>, Reject> {
        let (mut parts, body) = req.into_parts();
        let mut uri = UriParts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(authority.clone());
        uri.path_and_query = Some(parts.uri.path_and_query().cloned().unwrap_or(PathAndQuery::from_static("/")));
        parts.uri = Uri::from_parts(uri).map_err(|_| Reject::BadRequest(RequestRule::UnbuildableTarget))?;
        parts.version = Version::HTTP_11;
        parts.extensions = Extensions::new();
        strip_hop_by_hop(&mut parts.headers);
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(HOST, host);
        }
        parts.headers.append(VIA, HeaderValue::from_static("1.1 mfagate"));
        let body = ClientBody::new(body);
        let failed = body.failure();
        let pending = self.client.request(Request::from_parts(parts, body));
        let rsp = match tokio::time::timeout(self.timeout, pending).await {
            Err(_) => return Err(EgressError::Timeout.into()),
            // The client's own body broke off or broke its framing: its fault.
            Ok(Err(_)) if failed.load(std::sync::atomic::Ordering::Acquire) => {
                return Err(Reject::BadRequest(RequestRule::BrokenBody));
            }
            Ok(Err(e)) => return Err(EgressError::Unreachable(std::io::Error::other(e)).into()),
            Ok(Ok(rsp)) => rsp,
        };
        let (mut parts, body) = rsp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.extensions = Extensions::new();
        Ok(Response::from_parts(parts, Body::Left(UpstreamBody::new(body, self.idle_timeout, None))))
    }
}
