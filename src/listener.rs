//! Accepting connections: TLS handshake inside the connection's own task and
//! under a timeout, then hyper-util's HTTP/1.1 + HTTP/2 server (chosen by
//! ALPN). Every connection is watched for graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body as HttpBody, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::proxy::Gateway;

/// Per-connection settings of the gateway listener.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
}

/// Serves the TLS listener until `stop`, then waits up to `grace` for open
/// connections to finish their requests.
pub async fn serve_gateway(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    gateway: Arc<Gateway>,
    settings: ConnSettings,
    stop: CancellationToken,
    grace: Duration,
) {
    let builder = connection_builder(&settings);
    accept_loop(listener, stop, grace, move |tcp, peer, watcher| {
        let acceptor = acceptor.clone();
        let gateway = Arc::clone(&gateway);
        let builder = builder.clone();
        let handshake_timeout = settings.tls_handshake_timeout;
        async move {
            let _open = gateway.connection();
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return debug!(%peer, "TLS handshake timed out"),
            };
            let service = service_fn(move |req: Request<Incoming>| {
                let gateway = Arc::clone(&gateway);
                async move { Ok::<_, Infallible>(gateway.handle(req, peer).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(tls), service).into_owned();
            if let Err(e) = watcher.watch(conn).await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    })
    .await;
}

/// The HTTP/1.1 + HTTP/2 server settings of a gateway connection, also used
/// inside intercepted egress tunnels.
pub(crate) fn connection_builder(settings: &ConnSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(100);
    builder
}

/// Serves plain HTTP/1.1 (the admin endpoints) until `stop`.
pub async fn serve_plain<H, Fut, B>(listener: TcpListener, handler: H, stop: CancellationToken, grace: Duration)
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    accept_loop(listener, stop, grace, move |tcp, _peer, watcher| {
        let handler = handler.clone();
        async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let mut http1 = hyper::server::conn::http1::Builder::new();
            http1.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            let _ = watcher.watch(http1.serve_connection(TokioIo::new(tcp), service)).await;
        }
    })
    .await;
}

/// Accepts until `stop`, runs `on_connection` in a task per connection, then
/// waits up to `grace` for every `Watcher` handed out to be dropped.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    grace: Duration,
    on_connection: F,
) where
    F: Fn(TcpStream, SocketAddr, Watcher) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(on_connection(tcp, peer, graceful.watcher()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, never exit.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        warn!(?grace, "grace period over; closing connections still open");
    }
}
