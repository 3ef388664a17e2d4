//! The shared store: buckets in Redis, so that every replica pointed at it
//! counts against the same limits.
//!
//! Each checked limit is one round trip: a Lua script (`gcra.lua`) that
//! decides and counts in one atomic step, on Redis's clock. An operation
//! that does not answer within `store_timeout` is given up and the request
//! decided per `on_store_error`; the store is then taken as down, and until
//! a background probe (with backoff) gets an answer again, requests are
//! decided at once without asking it. The client's connection manager
//! reconnects underneath.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{info, warn};

use crate::config::RedisServer;

const GCRA: &str = include_str!("gcra.lua");
/// The probe's first wait after the store went down, and its longest.
const PROBE_MIN: Duration = Duration::from_millis(50);
const PROBE_MAX: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("limits.redis_ca: {0}")]
    Ca(std::io::Error),
    #[error("limits.redis_url: {0}")]
    Client(RedisError),
}

impl StoreError {
    pub fn key(&self) -> &'static str {
        match self {
            Self::Ca(_) => "limits.redis_ca",
            Self::Client(_) => "limits.redis_url",
        }
    }
}

/// Why an operation gave no answer: the label of `mfagate_rate_limit_store_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer within `store_timeout`.
    Timeout,
    /// No connection: refused, reset, closed.
    Connection,
    /// Redis answered with an error (read-only replica, out of memory, ...).
    Response,
    /// Not asked: the store is down until the probe reaches it again.
    Down,
}

impl Failure {
    const ALL: [Failure; 4] = [Self::Timeout, Self::Connection, Self::Response, Self::Down];

    fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Response => "response",
            Self::Down => "down",
        }
    }
}

#[derive(Clone)]
pub struct StoreMetrics {
    errors: [IntCounter; 4],
    seconds: Histogram,
    up: IntGauge,
}

impl StoreMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let errors = IntCounterVec::new(
            Opts::new(
                "mfagate_rate_limit_store_errors_total",
                "Rate-limit store operations without an answer, by kind (timeout, connection, response; down: not tried while the store is down); each such request was decided per limits.on_store_error.",
            ),
            &["kind"],
        )?;
        let seconds = Histogram::with_opts(
            HistogramOpts::new(
                "mfagate_rate_limit_store_seconds",
                "Time of each rate-limit store operation (one round trip to Redis), answered or timed out.",
            )
            .buckets(vec![0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
        )?;
        let up = IntGauge::new(
            "mfagate_rate_limit_store_up",
            "1 while the rate-limit store answers (always 1 for store = \"local\"), 0 while requests are decided per limits.on_store_error.",
        )?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        registry.register(Box::new(up.clone()))?;
        up.set(1);
        Ok(Self { errors: Failure::ALL.map(|f| errors.with_label_values(&[f.as_str()])), seconds, up })
    }

    fn error(&self, failure: Failure) {
        self.errors[failure as usize].inc();
    }

    pub fn set_local(&self) {
        self.up.set(1);
    }
}

/// One Redis server and the connection to it; kept across reloads that
/// leave `redis_url`, `redis_password_env` and `redis_ca` as they were.
pub struct Store {
    pub server: RedisServer,
    inner: Arc<Inner>,
    /// Stops the probe when the last configuration using this store is gone.
    _stop: DropGuard,
}

struct Inner {
    conn: ConnectionManager,
    gcra: Script,
    up: AtomicBool,
    /// `store_timeout` of the configuration served last, for the probe.
    timeout_nanos: AtomicU64,
    down: Notify,
    metrics: StoreMetrics,
}

impl Store {
    /// A store for `server`; the connection is made in the background (a
    /// Redis that is not there yet does not hold up the start).
    pub fn connect(server: &RedisServer, timeout: Duration, metrics: StoreMetrics) -> Result<Arc<Self>, StoreError> {
        let info = redis::IntoConnectionInfo::into_connection_info(server.url.as_str()).map_err(StoreError::Client)?;
        let info = match &server.password {
            Some(password) => {
                let settings = info.redis_settings().clone().set_password(password);
                info.set_redis_settings(settings)
            }
            None => info,
        };
        let client = match &server.ca {
            None => redis::Client::open(info),
            Some(path) => {
                let pem = std::fs::read(path).map_err(StoreError::Ca)?;
                let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
                redis::Client::build_with_tls(info, certs)
            }
        }
        .map_err(StoreError::Client)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_secs(1))))
            .set_response_timeout(None)
            .set_number_of_retries(1)
            .set_min_delay(PROBE_MIN)
            .set_max_delay(PROBE_MAX);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(StoreError::Client)?;
        let stop = CancellationToken::new();
        metrics.up.set(1);
        let inner = Arc::new(Inner {
            conn,
            gcra: Script::new(GCRA),
            up: AtomicBool::new(true),
            timeout_nanos: AtomicU64::new(timeout.as_nanos() as u64),
            down: Notify::new(),
            metrics,
        });
        tokio::spawn(Arc::clone(&inner).probe(stop.clone()));
        Ok(Arc::new(Self { server: server.clone(), inner, _stop: stop.drop_guard() }))
    }

    pub fn set_timeout(&self, timeout: Duration) {
        self.inner.timeout_nanos.store(timeout.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Takes one request from `bucket` (its GCRA state); on refusal, sets
    /// `block` (when given) for as long as the bucket refuses. `Ok(None)`:
    /// the request conforms; `Ok(Some(wait))`: it does not.
    pub async fn check(
        &self,
        bucket: &str,
        block: Option<&str>,
        interval_us: u64,
        tolerance_us: u64,
        timeout: Duration,
    ) -> Result<Option<Duration>, Failure> {
        let mut invocation = self.inner.gcra.key(bucket);
        if let Some(block) = block {
            invocation.key(block);
        }
        invocation.arg(interval_us).arg(tolerance_us);
        let mut conn = self.inner.conn.clone();
        let wait: u64 = self.inner.run(timeout, async move { invocation.invoke_async(&mut conn).await }).await?;
        Ok((wait > 0).then(|| Duration::from_micros(wait)))
    }

    /// How much longer `block` is set, if it is.
    pub async fn blocked_for(&self, block: &str, timeout: Duration) -> Result<Option<Duration>, Failure> {
        let mut conn = self.inner.conn.clone();
        let cmd = redis::cmd("PTTL").arg(block).to_owned();
        let ms: i64 = self.inner.run(timeout, async move { cmd.query_async(&mut conn).await }).await?;
        Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
    }
}

impl Inner {
    fn timeout(&self) -> Duration {
        Duration::from_nanos(self.timeout_nanos.load(Ordering::Relaxed))
    }

    async fn run<T>(&self, timeout: Duration, op: impl Future<Output = Result<T, RedisError>>) -> Result<T, Failure> {
        if !self.up.load(Ordering::Relaxed) {
            self.metrics.error(Failure::Down);
            return Err(Failure::Down);
        }
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, op).await;
        self.metrics.seconds.observe(started.elapsed().as_secs_f64());
        let (failure, error) = match result {
            Ok(Ok(value)) => return Ok(value),
            Err(_) => (Failure::Timeout, None),
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
                (Failure::Connection, Some(e))
            }
            Ok(Err(e)) => (Failure::Response, Some(e)),
        };
        self.metrics.error(failure);
        if failure == Failure::Response {
            // Redis is there and answers: each request keeps asking it.
            if let Some(e) = error {
                warn!(kind = failure.as_str(), error = %e, "rate-limit store answered with an error; the request is decided per limits.on_store_error");
            }
        } else if self.up.swap(false, Ordering::Relaxed) {
            self.metrics.up.set(0);
            let error = error.map(|e| e.to_string()).unwrap_or_else(|| format!("no answer within {timeout:?}"));
            warn!(kind = failure.as_str(), %error, "rate-limit store unavailable: requests are decided per limits.on_store_error until it answers again");
            self.down.notify_one();
        }
        Err(failure)
    }

    /// Waits for the store to go down, then pings it with a growing pause
    /// until it answers, and so on until `stop`.
    async fn probe(self: Arc<Self>, stop: CancellationToken) {
        // The first connection, made before any request needs it.
        let first = tokio::select! {
            () = stop.cancelled() => return,
            r = self.ping() => r,
        };
        let mut down = first.is_err();
        if down && self.up.swap(false, Ordering::Relaxed) {
            self.metrics.up.set(0);
            warn!(
                "rate-limit store unavailable at start: requests are decided per limits.on_store_error until it answers"
            );
        }
        loop {
            if !down {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = self.down.notified() => {}
                }
            }
            let mut pause = PROBE_MIN;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                if self.ping().await.is_ok() {
                    break;
                }
                pause = (pause * 2).min(PROBE_MAX);
            }
            down = false;
            self.up.store(true, Ordering::Relaxed);
            self.metrics.up.set(1);
            info!("rate-limit store answers again: limits are shared again");
        }
    }

    async fn ping(&self) -> Result<(), ()> {
        let mut conn = self.conn.clone();
        let ping = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
        match tokio::time::timeout(self.timeout().max(PROBE_MIN), ping).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(()),
        }
    }
}
