//! A recording upstream over TLS (HTTP/1.1 and HTTP/2): it counts requests,
//! keeps what it received, and echoes the request body back, streamed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, Version};
use http_body_util::{BodyExt, Either, Full};

use super::serve;

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path_and_query: String,
    pub version: Version,
    pub headers: HeaderMap,
}

#[derive(Clone)]
pub struct Upstream {
    pub addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    /// Paths: `/slow` answers after 5 s; `/delay/MS` after MS milliseconds;
    /// `/download/N` sends N bytes; `/collect` reads the whole body first (as
    /// a JSON API does) and answers with its length;
    /// `GET` of an ARM resource group list
    /// (`/subscriptions/{id}/resourcegroups`) or of Graph's `/v1.0/me` and
    /// `/v1.0/users` answers a JSON document in the service's shape (for
    /// Microsoft's SDKs, which parse it);
    /// anything else echoes the request body with status 200.
    pub async fn start(tls: Arc<rustls::ServerConfig>) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (h, s) = (Arc::clone(&hits), Arc::clone(&seen));
        let addr = serve::http(Some(tls), move |req: hyper::Request<hyper::body::Incoming>| {
            let (h, s) = (Arc::clone(&h), Arc::clone(&s));
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let path = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
                s.lock().unwrap().push(Seen {
                    method: req.method().clone(),
                    path_and_query: path.clone(),
                    version: req.version(),
                    headers: req.headers().clone(),
                });
                let mut rsp = if path.starts_with("/v1/collect") || path == "/collect" {
                    match req.into_body().collect().await {
                        Ok(body) => {
                            Response::new(Either::Right(Full::new(Bytes::from(body.to_bytes().len().to_string()))))
                        }
                        Err(_) => Response::new(Either::Right(Full::new(Bytes::from_static(b"body failed")))),
                    }
                } else if path == "/slow" {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Response::new(Either::Right(Full::new(Bytes::from_static(b"late"))))
                } else if let Some(ms) = path.strip_prefix("/delay/") {
                    tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                    Response::new(Either::Right(Full::new(Bytes::from_static(b"delayed"))))
                } else if let Some(n) = path.strip_prefix("/download/") {
                    let n: usize = n.parse().unwrap();
                    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                    let stream = futures_util::stream::iter((0..n.div_ceil(chunk.len())).map(move |i| {
                        let len = chunk.len().min(n - i * chunk.len());
                        Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk.slice(0..len)))
                    }));
                    Response::new(Either::Left(Either::Right(http_body_util::StreamBody::new(stream))))
                } else if let Some(doc) = (req.method() == Method::GET).then(|| service_document(&path)).flatten() {
                    let mut rsp = Response::new(Either::Right(Full::new(Bytes::from(doc.to_string()))));
                    rsp.headers_mut().insert("content-type", "application/json; charset=utf-8".parse().unwrap());
                    rsp
                } else {
                    Response::new(Either::Left(Either::Left(req.into_body().map_err(std::io::Error::other))))
                };
                rsp.headers_mut().insert("x-upstream", "recording".parse().unwrap());
                rsp.headers_mut().insert("ms-correlationid", "upstream-own-id".parse().unwrap());
                rsp.headers_mut().insert("connection", "x-upstream-private".parse().unwrap());
                rsp.headers_mut().insert("x-upstream-private", "1".parse().unwrap());
                *rsp.status_mut() = StatusCode::OK;
                rsp
            }
        })
        .await;
        Self { addr, hits, seen }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("upstream saw no request")
    }
}

/// The JSON answer of an ARM or Graph read that the SDK tests make, by path.
fn service_document(path_and_query: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    let path = path_and_query.split('?').next().unwrap_or_default().trim_end_matches('/').to_ascii_lowercase();
    let user = json!({
        "id": super::idp::OID, "displayName": "Admin Agent",
        "userPrincipalName": "admin@contoso.onmicrosoft.com", "mail": "admin@contoso.onmicrosoft.com",
    });
    match path.as_str() {
        "/v1.0/me" => {
            let mut me = user;
            me["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#users/$entity".into();
            Some(me)
        }
        "/v1.0/users" => {
            Some(json!({ "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": [user] }))
        }
        p if p.starts_with("/subscriptions/") && p.ends_with("/resourcegroups") => {
            let subscription = p.split('/').nth(2).unwrap_or_default();
            Some(json!({ "value": [{
                "id": format!("/subscriptions/{subscription}/resourceGroups/rg-mfagate"),
                "name": "rg-mfagate", "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
                "properties": { "provisioningState": "Succeeded" },
            }] }))
        }
        _ => None,
    }
}
