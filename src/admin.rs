//! The admin listener (plain HTTP): `/metrics` (Prometheus text format),
//! `/healthz` (the process runs), `/readyz` (every required key source has
//! usable keys, and not draining; the JSON body says which source is not).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::auth::jwks::KeyStore;
use crate::auth::jwks::source::Freshness;
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
            "/metrics" => {
                self.keys.observe();
                self.metrics.set_ready(self.keys.is_ready() && !self.readiness.is_draining());
                respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", self.metrics.encode())
            }
            "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n"),
            "/readyz" => self.readyz(),
            _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        }
    }

    fn readyz(&self) -> Response<Full<Bytes>> {
        let keys_ready = self.keys.is_ready();
        let draining = self.readiness.is_draining();
        let ready = keys_ready && !draining;
        let mut any_stale = false;
        let mut sources = serde_json::Map::new();
        for s in self.keys.status() {
            any_stale |= s.required && s.freshness == Freshness::Stale;
            let source = serde_json::json!({
                "state": s.freshness.as_str(),
                "usable": s.freshness.usable(),
                "required": s.required,
                "keys": s.keys,
                "age_seconds": s.age.map(|a| a.as_secs()),
            });
            sources.insert(s.name.to_string(), source);
        }
        let keys = match (keys_ready, any_stale) {
            (false, _) => "unavailable",
            (true, true) => "stale",
            (true, false) => "loaded",
        };
        let body = serde_json::json!({ "ready": ready, "draining": draining, "keys": keys, "sources": sources });
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
