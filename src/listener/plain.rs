//! A plain HTTP/1.1 listener without TLS: the admin endpoints, and the
//! stand-ins of `mfagate demo`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body as HttpBody, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::accept::accept;
use super::http::{Http, until_drained};
use crate::config::HttpSettings;

/// Serves plain HTTP/1.1 (the admin endpoints) until `stop`.
pub async fn serve_plain<H, Fut, B>(
    listener: TcpListener,
    handler: H,
    settings: HttpSettings,
    stop: CancellationToken,
    grace: Duration,
) where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let http = Arc::new(Http::new(&settings));
    accept(
        listener,
        stop,
        || grace,
        move |tcp, _peer, drain| {
            let (handler, http) = (handler.clone(), Arc::clone(&http));
            Some(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let conn = http.serve(TokioIo::new(tcp), false, service);
                let _ = until_drained(conn, &drain).await;
            })
        },
    )
    .await;
}
