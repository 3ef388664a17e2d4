//! The one HTTP server builder: HTTP/1.1 and HTTP/2 configured from
//! `[server]`'s HTTP settings, the same on every listener. The protocol is
//! the one the client chose by ALPN (HTTP/1.1 without it); nothing sniffs
//! the first bytes.

use std::error::Error as StdError;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::rt::{Read, Write};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::{self, Connection, UpgradeableConnection};
use hyper_util::server::graceful::GracefulConnection;

use super::accept::Drain;
use crate::config::HttpSettings;

/// How long a client may take to answer an HTTP/2 keep-alive ping.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct Http {
    h1: auto::Builder<TokioExecutor>,
    h2: auto::Builder<TokioExecutor>,
    /// HTTP/1.1 alone, for connections that are handed back between requests.
    h1_only: http1::Builder,
    header_read_timeout: Duration,
}

impl Http {
    pub fn new(settings: &HttpSettings) -> Self {
        let mut h1 = auto::Builder::new(TokioExecutor::new()).http1_only();
        h1.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout)
            .max_buf_size(settings.max_header_bytes);
        let mut h1_only = http1::Builder::new();
        h1_only
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout)
            .max_buf_size(settings.max_header_bytes);
        if settings.max_headers != 100 {
            // hyper's default; any other value costs a heap allocation per request.
            h1.http1().max_headers(settings.max_headers);
            h1_only.max_headers(settings.max_headers);
        }
        let mut h2 = auto::Builder::new(TokioExecutor::new()).http2_only();
        h2.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(settings.http2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(settings.keep_alive_timeout))
            .keep_alive_timeout(PING_TIMEOUT);
        Self { h1, h2, h1_only, header_read_timeout: settings.header_read_timeout }
    }

    /// Serves `io` in HTTP/1.1 as a connection whose stream can be taken
    /// back once it is idle (`http1::Connection::without_shutdown`).
    /// `head_within`: how long the client may take to send the first head.
    pub fn serve_h1<I, S, B>(&self, io: I, service: S, head_within: Duration) -> http1::Connection<I, S>
    where
        S: Service<Request<Incoming>, Response = Response<B>>,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        I: Read + Write + Unpin,
    {
        if head_within >= self.header_read_timeout {
            return self.h1_only.serve_connection(io, service);
        }
        let mut builder = self.h1_only.clone();
        builder.header_read_timeout(head_within);
        builder.serve_connection(io, service)
    }

    /// Serves `io` in HTTP/2 when `h2` (the client chose it by ALPN), else HTTP/1.1.
    pub fn serve<I, S, B>(&self, io: I, h2: bool, service: S) -> Connection<'_, I, S, TokioExecutor>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        I: Read + Write + Unpin + Send + 'static,
    {
        if h2 { &self.h2 } else { &self.h1 }.serve_connection(io, service)
    }

    /// Serves `io` in HTTP/1.1, with upgrades (`CONNECT`).
    pub fn serve_with_upgrades<I, S, B>(&self, io: I, service: S) -> UpgradeableConnection<'_, I, S, TokioExecutor>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        I: Read + Write + Unpin + Send + 'static,
    {
        self.h1.serve_connection_with_upgrades(io, service)
    }
}

/// Runs `conn` to its end; once the listener stops it is closed gracefully
/// (HTTP/2 GOAWAY; HTTP/1 after the answer in progress, which hyper marks
/// `Connection: close`), and dropped when the grace period is over.
pub async fn until_drained<C: GracefulConnection>(conn: C, drain: &Drain) -> Result<(), C::Error> {
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return result,
        () = drain.stop.cancelled() => conn.as_mut().graceful_shutdown(),
        () = drain.abort.cancelled() => return Ok(()),
    }
    tokio::select! {
        result = conn.as_mut() => result,
        () = drain.abort.cancelled() => Ok(()),
    }
}
