//! The admin listener (plain HTTP): `/metrics` (Prometheus text format),
//! `/healthz` (the process runs), `/readyz` (keys loaded and not draining).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::auth::jwks::KeyStore;
use crate::metrics::Metrics;
use crate::shutdown::Readiness;

pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub keys: Arc<KeyStore>,
    pub readiness: Arc<Readiness>,
}

impl Admin {
    pub fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n");
        }
        match req.uri().path() {
            "/metrics" => respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", self.metrics.encode()),
            "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n"),
            "/readyz" => self.readyz(),
            _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        }
    }

    fn readyz(&self) -> Response<Full<Bytes>> {
        let keys = self.keys.is_ready();
        let draining = self.readiness.is_draining();
        let ready = keys && !draining;
        let body = serde_json::json!({
            "ready": ready,
            "keys": if keys { "loaded" } else { "unavailable" },
            "key_count": self.keys.len(),
            "draining": draining,
        });
        let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        respond(status, "application/json", body.to_string())
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(body.into()));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    rsp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    rsp
}
