//! The key store: signing keys from the configured JWK Set, looked up by `kid`.
//!
//! A hit is one map lookup behind an `ArcSwap`. Keys are merged per `kid` on
//! every fetch and dropped only when a fetch has not seen them for `KEY_TTL`,
//! because Entra's front-ends serve different subsets of the set. An unknown
//! `kid` triggers at most one refetch per `unknown_kid_refetch_interval`, and
//! concurrent misses wait for that one fetch rather than starting their own.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus::IntCounter;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::AuthError;
use super::keys::{VerifyKey, parse_key_set};
use crate::config::{IdentityConfig, JwksLocation};
use crate::tls::{self, TlsError};

/// How long a key stays usable after the last fetch that listed it.
const KEY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Largest key-set document accepted; Entra's is about 10 KiB.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays while no key has ever been loaded.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("answered HTTP {0}")]
    Status(StatusCode),
    #[error("document larger than {MAX_DOCUMENT_BYTES} bytes or unreadable")]
    Body,
    #[error("reading file: {0}")]
    File(#[from] std::io::Error),
    #[error("{0}")]
    Parse(#[from] super::keys::KeySetError),
    #[error("no usable signing key in the document ({0} skipped)")]
    NoUsableKey(usize),
}

/// Counters for key-set fetches.
#[derive(Clone)]
pub struct JwksMetrics {
    pub success: IntCounter,
    pub failure: IntCounter,
}

struct Slot {
    key: Arc<VerifyKey>,
    seen: Instant,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub struct KeyStore {
    location: JwksLocation,
    client: HttpClient,
    keys: ArcSwap<HashMap<String, Slot>>,
    ready: AtomicBool,
    refetch: DefaultDirectRateLimiter,
    fetch_lock: tokio::sync::Mutex<()>,
    refresh_interval: Duration,
    metrics: JwksMetrics,
}

impl KeyStore {
    pub fn new(identity: &IdentityConfig, metrics: JwksMetrics) -> Result<Self, TlsError> {
        let tls = tls::client(identity.jwks_ca.as_deref())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        let period = identity.unknown_kid_refetch_interval;
        let quota =
            Quota::with_period(period).expect("refetch interval is validated non-zero").allow_burst(NonZeroU32::MIN);
        Ok(Self {
            location: identity.jwks.clone(),
            client,
            keys: ArcSwap::from_pointee(HashMap::new()),
            ready: AtomicBool::new(false),
            refetch: RateLimiter::direct(quota),
            fetch_lock: tokio::sync::Mutex::new(()),
            refresh_interval: identity.refresh_interval,
            metrics,
        })
    }

    /// True once a key set has been loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// How many keys are usable now.
    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        self.keys.load().get(kid).map(|slot| Arc::clone(&slot.key))
    }

    /// The key for `kid`, refetching the set (rate-limited, shared) on a miss.
    pub async fn key(&self, kid: &str) -> Result<Arc<VerifyKey>, AuthError> {
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        let _fetching = self.fetch_lock.lock().await;
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        let unavailable = if self.is_empty() { AuthError::KeysUnavailable } else { AuthError::UnknownKey };
        if self.refetch.check().is_err() {
            return Err(unavailable);
        }
        match self.fetch_and_merge().await {
            Ok(()) => self.lookup(kid).ok_or(AuthError::UnknownKey),
            Err(_) => Err(unavailable),
        }
    }

    /// Fetches the set now (used at start and by the refresher).
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let _fetching = self.fetch_lock.lock().await;
        self.fetch_and_merge().await
    }

    async fn fetch_and_merge(&self) -> Result<(), FetchError> {
        let result = self.fetch().await;
        match &result {
            Ok(set) => {
                self.metrics.success.inc();
                let now = Instant::now();
                let old = self.keys.load();
                let mut merged: HashMap<String, Slot> = old
                    .iter()
                    .filter(|(_, slot)| now.duration_since(slot.seen) < KEY_TTL)
                    .map(|(kid, slot)| (kid.clone(), Slot { key: Arc::clone(&slot.key), seen: slot.seen }))
                    .collect();
                let fetched = set.keys.len();
                for key in set.keys.iter() {
                    merged.insert(key.kid.clone(), Slot { key: Arc::clone(key), seen: now });
                }
                let total = merged.len();
                self.keys.store(Arc::new(merged));
                self.ready.store(true, Ordering::Release);
                info!(source = %self.describe(), fetched, skipped = set.skipped, total, "signing keys loaded");
            }
            Err(e) => {
                self.metrics.failure.inc();
                warn!(source = %self.describe(), error = %e, keys_kept = old_len(&self.keys), "cannot fetch signing keys");
            }
        }
        result.map(|_| ())
    }

    async fn fetch(&self) -> Result<FetchedSet, FetchError> {
        let bytes = match &self.location {
            JwksLocation::File(path) => {
                let bytes = tokio::fs::read(path).await?;
                if bytes.len() > MAX_DOCUMENT_BYTES {
                    return Err(FetchError::Body);
                }
                Bytes::from(bytes)
            }
            JwksLocation::Url(uri) => tokio::time::timeout(FETCH_TIMEOUT, self.get(uri))
                .await
                .map_err(|_| FetchError::Timeout(FETCH_TIMEOUT))??,
        };
        let set = parse_key_set(&bytes)?;
        if set.keys.is_empty() {
            return Err(FetchError::NoUsableKey(set.skipped));
        }
        Ok(FetchedSet { keys: set.keys.into_iter().map(Arc::new).collect(), skipped: set.skipped })
    }

    async fn get(&self, uri: &http::Uri) -> Result<Bytes, FetchError> {
        let req = Request::get(uri.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, concat!("mfagate/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| FetchError::Request(e.to_string()))?;
        let rsp = self.client.request(req).await.map_err(|e| FetchError::Request(error_chain(&e)))?;
        if rsp.status() != StatusCode::OK {
            return Err(FetchError::Status(rsp.status()));
        }
        let body = Limited::new(rsp.into_body(), MAX_DOCUMENT_BYTES);
        Ok(body.collect().await.map_err(|_| FetchError::Body)?.to_bytes())
    }

    fn describe(&self) -> String {
        match &self.location {
            JwksLocation::Url(uri) => uri.to_string(),
            JwksLocation::File(path) => path.display().to_string(),
        }
    }

    /// Refetches the set every `refresh_interval` (jittered); after a failed
    /// fetch, and while no key was ever loaded, retries with backoff from 1 s
    /// to 60 s. The first fetch is `App::build`'s. Ends when `stop` is cancelled.
    pub async fn run_refresher(self: Arc<Self>, stop: CancellationToken) {
        let mut retry = FIRST_RETRY;
        let mut last_ok = self.is_ready();
        loop {
            let delay = if last_ok {
                retry = FIRST_RETRY;
                jitter(self.refresh_interval)
            } else {
                let d = retry;
                retry = (retry * 2).min(MAX_RETRY);
                d
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            last_ok = self.refresh().await.is_ok();
        }
    }
}

struct FetchedSet {
    keys: Vec<Arc<VerifyKey>>,
    skipped: usize,
}

fn old_len(keys: &ArcSwap<HashMap<String, Slot>>) -> usize {
    keys.load().len()
}

/// Spreads refreshes of many gateways over ±10 % of the interval.
fn jitter(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    let frac = f64::from(nanos % 2001) / 10_000.0 - 0.1;
    d.mul_f64(1.0 + frac)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
