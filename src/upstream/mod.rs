//! Forwarding an authorised request to the route's upstream over a pooled
//! connection (HTTP/2 when the upstream offers it by ALPN, else HTTP/1.1),
//! bodies streamed both ways.

pub mod headers;
pub mod resolve;
pub mod tenant_restrictions;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Parts as UriParts, PathAndQuery, Scheme};
use http::{Extensions, Request, Response, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus::IntCounter;
use tokio::time::{Instant, Sleep};

use crate::config::{RouteConfig, UpstreamSettings, UpstreamTarget};
use crate::correlation::Correlation;
use crate::policy::Authorized;
use crate::tls::{self, TlsError};
use resolve::{Connector, Resolve};
use tenant_restrictions::SignInHeaders;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream unavailable: {0}")]
    Unavailable(#[source] hyper_util::client::legacy::Error),
    #[error("upstream did not answer in time")]
    Timeout,
    #[error("cannot build the upstream URI for this request")]
    Target,
    /// The client's request body broke off or broke its framing while it
    /// was being sent: the client's fault, not the upstream's.
    #[error("the client's request body failed")]
    ClientBody,
}

/// Response bodies: the upstream's, streamed, or the gateway's own.
pub type Body = Either<UpstreamBody, Full<Bytes>>;

/// Request bodies on their way upstream: streamed from the client, or held
/// whole (an inspected token request).
pub type RequestBody = Either<ClientBody, Full<Bytes>>;

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
    /// The response body broke off or stalled after its headers were passed on.
    Body,
}

impl UpstreamErrorKind {
    pub const ALL: [Self; 5] = [Self::Connect, Self::Connection, Self::Timeout, Self::Target, Self::Body];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Target => "target",
            Self::Body => "body",
        }
    }
}

impl UpstreamError {
    pub fn kind(&self) -> UpstreamErrorKind {
        match self {
            Self::Unavailable(e) if e.is_connect() => UpstreamErrorKind::Connect,
            Self::Unavailable(_) => UpstreamErrorKind::Connection,
            Self::Timeout => UpstreamErrorKind::Timeout,
            Self::Target | Self::ClientBody => UpstreamErrorKind::Target,
        }
    }
}

/// A route's upstream: its address and a connection pool of its own (each
/// route may trust its own extra CA).
pub struct Upstream {
    client: Client<HttpsConnector<Connector>, RequestBody>,
    target: UpstreamTarget,
    timeout: Duration,
    idle_timeout: Duration,
    body_errors: Option<IntCounter>,
    /// The tenant restrictions headers, for a request whose destination is a sign-in host.
    sign_in: Arc<SignInHeaders>,
}

impl Upstream {
    pub fn new(
        route: &RouteConfig,
        server: &UpstreamSettings,
        resolve: &Resolve,
        sign_in: Arc<SignInHeaders>,
    ) -> Result<Self, TlsError> {
        let tls = tls::client(route.upstream_ca.as_deref())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(server.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(resolve.connector(http));
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(server.pool_idle_timeout)
            .pool_max_idle_per_host(server.pool_max_idle)
            .build(https);
        Ok(Self {
            client,
            target: route.upstream.clone(),
            timeout: server.timeout,
            idle_timeout: server.idle_timeout,
            body_errors: None,
            sign_in,
        })
    }

    /// Counts response bodies that break off or stall in `counter`.
    pub fn count_body_errors(mut self, counter: IntCounter) -> Self {
        self.body_errors = Some(counter);
        self
    }

    /// Sends the request upstream and returns its response, headers rewritten.
    /// Requires proof that the request was authorised. `to`: the `https://`
    /// authority to send it to instead of the route's upstream. A request
    /// whose destination is a sign-in host carries exactly the tenant
    /// restrictions headers, whichever listener it came in on.
    pub async fn forward(
        &self,
        req: Request<RequestBody>,
        peer: SocketAddr,
        ids: &Correlation,
        _authorized: &Authorized,
        to: Option<Direct<'_>>,
    ) -> Result<Response<Body>, UpstreamError> {
        let (mut parts, body) = req.into_parts();
        let original_host = headers::original_host(&parts);
        parts.uri = match &to {
            None => self.uri(&parts.uri),
            Some(direct) => direct_uri(direct.authority, &parts.uri),
        }
        .ok_or(UpstreamError::Target)?;
        parts.version = Version::HTTP_11;
        // Nothing the downstream connection attached travels on.
        parts.extensions = Extensions::new();
        let destination = to.map_or(&self.target.authority, |d| d.authority);
        let injection = self.sign_in.for_host(destination.host());
        let client_sent = injection.is_some_and(|i| i.client_sent(&parts.headers));
        headers::to_upstream(&mut parts.headers, peer.ip(), original_host, ids);
        if let Some(injection) = injection {
            headers::inject(&mut parts.headers, injection, client_sent);
        }
        let client_failed = match &body {
            RequestBody::Left(b) => Some(b.failure()),
            RequestBody::Right(_) => None,
        };
        let pending = self.client.request(Request::from_parts(parts, body));
        let rsp = match tokio::time::timeout(self.timeout, pending).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(_)) if client_failed.as_ref().is_some_and(|f| f.load(Ordering::Acquire)) => {
                return Err(UpstreamError::ClientBody);
            }
            Ok(Err(e)) => return Err(UpstreamError::Unavailable(e)),
            Ok(Ok(rsp)) => rsp,
        };
        let (mut parts, body) = rsp.into_parts();
        headers::to_downstream(&mut parts.headers);
        parts.extensions = Extensions::new();
        // Once the client's own body failed, the upstream's answer breaking off
        // is a consequence, not an upstream fault: not counted against it.
        let body = UpstreamBody::new(body, self.idle_timeout, self.body_errors.clone()).blame_client_on(client_failed);
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

/// Where an egress request goes instead of the route's upstream: its
/// CONNECT target.
#[derive(Clone, Copy)]
pub struct Direct<'a> {
    pub authority: &'a Authority,
}

/// `https://{authority}` and the request's path and query, unchanged.
fn direct_uri(authority: &Authority, downstream: &Uri) -> Option<Uri> {
    let mut parts = UriParts::default();
    parts.scheme = Some(Scheme::HTTPS);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(downstream.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/")));
    Uri::from_parts(parts).ok()
}

/// A client's request body on its way upstream; notes when it fails (a
/// connection that breaks, framing hyper refuses), so that the failure is
/// answered as the client's.
pub struct ClientBody {
    /// Bytes already read from the client, sent before the rest.
    prefix: Option<Bytes>,
    inner: Incoming,
    failed: Arc<AtomicBool>,
}

impl ClientBody {
    pub fn new(inner: Incoming) -> Self {
        Self { prefix: None, inner, failed: Arc::default() }
    }

    /// The body whose first bytes, `prefix`, were read already (an
    /// inspection that stopped at its limit): sent whole, byte for byte.
    pub fn with_prefix(prefix: Bytes, inner: Incoming) -> Self {
        Self { prefix: Some(prefix).filter(|p| !p.is_empty()), inner, failed: Arc::default() }
    }

    /// Set once the body has failed.
    pub fn failure(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.failed)
    }
}

impl HttpBody for ClientBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            self.failed.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let extra = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + extra);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

/// An upstream's response body on its way to the client. Waiting longer than
/// `server.upstream_idle_timeout` for the upstream's next frame ends it with
/// an error, so a stalled upstream cannot hold the client's connection
/// forever (time the client takes to read does not count); either failure
/// aborts the client's response (HTTP/1 connection closed, HTTP/2 stream
/// reset), so a cut-off body never looks complete.
pub struct UpstreamBody {
    inner: Incoming,
    /// Set when the client's request body failed: errors are then not counted.
    client_failed: Option<Arc<AtomicBool>>,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    /// The last poll found no frame: the idle timer runs.
    waiting: bool,
    errors: Option<IntCounter>,
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("upstream body: {0}")]
    Upstream(#[from] hyper::Error),
    #[error("upstream body stalled for {0:?}")]
    Stalled(Duration),
}

impl UpstreamBody {
    pub(crate) fn new(inner: Incoming, idle_timeout: Duration, errors: Option<IntCounter>) -> Self {
        Self {
            inner,
            client_failed: None,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            waiting: false,
            errors,
        }
    }

    fn blame_client_on(mut self, flag: Option<Arc<AtomicBool>>) -> Self {
        self.client_failed = flag;
        self
    }

    fn failed(&self) {
        if self.client_failed.as_ref().is_some_and(|f| f.load(Ordering::Acquire)) {
            return;
        }
        if let Some(c) = &self.errors {
            c.inc();
        }
    }

    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<bytes::Bytes>, BodyError>>> {
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.failed();
                Poll::Ready(Some(Err(BodyError::Stalled(self.idle_timeout))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl HttpBody for UpstreamBody {
    type Data = bytes::Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.waiting = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.failed();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if !self.waiting {
                    self.waiting = true;
                    let deadline = Instant::now() + self.idle_timeout;
                    self.idle.as_mut().reset(deadline);
                }
                self.poll_idle(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
