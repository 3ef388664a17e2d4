//! Rate limits (GCRA token buckets), checked by the gateway:
//!
//! - per route, on a claim of the verified token (`oid`, `app` or `tenant`)
//!   or on the client address (`peer`), after the policy allowed the
//!   request. Claims key a limit only when their signature verified (the
//!   `Subject` of the authorisation): a forged token naming another
//!   principal can never spend that principal's budget, and configurations
//!   that would key on unverified claims are refused at load;
//! - per client address on *denied* requests: an address that spends its
//!   budget of rejections is answered 429 before any token check until the
//!   budget refills, so a flood of bad tokens cannot burn the CPU on
//!   signature checks.
//!
//! The buckets live in this process (`store = "local"`, governor) or in a
//! Redis every replica shares (`store = "redis"`, `limit/redis.rs`), with
//! the same algorithm, so that a limit means the same in both. The
//! `LimitStore` outlives configuration reloads: a limit whose settings did
//! not change keeps its counts, and the Redis connection is kept while its
//! settings stay the same.

mod keys;
mod local;
mod redis;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio_util::sync::CancellationToken;

use self::redis::{Store, StoreMetrics};
use crate::config::{Config, OnStoreError, Rate, RateKey, RedisStore, StoreConfig};
use crate::error::Reject;
use crate::policy::Subject;
use keys::{claim_key, limit_digest, peer_key, remote_claim, remote_peer};
use local::{Blocked, Limiter};
pub use redis::StoreError;

/// How often idle buckets and expired blocks are dropped.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Buckets shared by every configuration the process runs.
pub struct LimitStore {
    routes: Mutex<HashMap<(String, RateKey, Rate), Arc<Limiter>>>,
    denied: Mutex<Option<Arc<DeniedLimiter>>>,
    remote: Mutex<Option<Arc<Store>>>,
    rate_limited: IntCounterVec,
    blocked: IntGauge,
    store_metrics: StoreMetrics,
}

impl LimitStore {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "mfagate_rate_limited_total",
                "Requests answered 429, by route and limit key (oid, app, tenant, peer; denied_budget for the per-address budget of denied requests).",
            ),
            &["route", "key"],
        )?;
        let blocked = IntGauge::new(
            "mfagate_rate_limited_peers",
            "Client addresses currently answered 429 because they spent their budget of denied requests (with store = \"redis\": those this replica saw blocked).",
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(blocked.clone()))?;
        let store_metrics = StoreMetrics::register(registry)?;
        Ok(Self {
            routes: Mutex::default(),
            denied: Mutex::default(),
            remote: Mutex::default(),
            rate_limited,
            blocked,
            store_metrics,
        })
    }

    /// The limits of `config`, reusing the buckets of limits whose settings
    /// did not change and forgetting those no longer configured; with
    /// `store = "redis"`, connecting to it (in the background) unless the
    /// connection of the running configuration goes to the same place.
    pub fn limits(&self, config: &Config) -> Result<Limits, StoreError> {
        let shared = match &config.limits.store {
            StoreConfig::Local => {
                // Dropping the connection of a configuration that had one.
                *self.remote.lock().unwrap_or_else(PoisonError::into_inner) = None;
                self.store_metrics.set_local();
                None
            }
            StoreConfig::Redis(settings) => Some(self.connect(settings)?),
        };
        Ok(self.build(config, shared))
    }

    /// The limits of `config` without connecting anywhere (`check-config`).
    pub fn limits_unconnected(&self, config: &Config) -> Limits {
        self.build(config, None)
    }

    fn connect(&self, settings: &RedisStore) -> Result<Shared, StoreError> {
        let mut remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        let store = match remote.as_ref() {
            Some(store) if store.server == settings.server => Arc::clone(store),
            _ => Store::connect(&settings.server, settings.timeout, self.store_metrics.clone())?,
        };
        store.set_timeout(settings.timeout);
        *remote = Some(Arc::clone(&store));
        Ok(Shared {
            store,
            timeout: settings.timeout,
            on_error: settings.on_error,
            prefix: settings.key_prefix.clone(),
        })
    }

    fn build(&self, config: &Config, shared: Option<Shared>) -> Limits {
        let mut store = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut kept = HashMap::new();
        let mut routes = HashMap::new();
        for route in &config.routes {
            let mut checks = Vec::with_capacity(route.rate_limits.len());
            for limit in &route.rate_limits {
                let bucket = match &shared {
                    Some(s) => Bucket::Remote(Remote::new(s, "r", &[&route.name, limit.key.as_str()], limit.rate)),
                    None => {
                        let id = (route.name.clone(), limit.key, limit.rate);
                        let limiter = store.get(&id).cloned().unwrap_or_else(|| Arc::new(local::limiter(limit.rate)));
                        kept.insert(id, Arc::clone(&limiter));
                        Bucket::Local(limiter)
                    }
                };
                let counter = self.rate_limited.with_label_values(&[route.name.as_str(), limit.key.as_str()]);
                checks.push(RouteLimit { key: limit.key, bucket, counter });
            }
            let peer = self.rate_limited.with_label_values(&[route.name.as_str(), "denied_budget"]);
            routes.insert(route.name.clone(), RouteLimits { checks, peer });
        }
        *store = kept;
        drop(store);
        let mut denied = self.denied.lock().unwrap_or_else(PoisonError::into_inner);
        let remote = shared.is_some();
        *denied = match (config.limits.denied_per_ip, denied.take()) {
            (Some(rate), Some(current)) if current.rate == rate && current.remote == remote => Some(current),
            (Some(rate), _) => Some(Arc::new(DeniedLimiter::new(rate, remote, self.blocked.clone()))),
            (None, _) => None,
        };
        let denied = denied.clone().map(|limiter| {
            let remote = shared.as_ref().map(|s| Remote::new(s, "d", &["denied_per_ip"], limiter.rate));
            Denied { limiter, remote }
        });
        Limits { routes, denied, shared }
    }

    /// Drops idle buckets and expired blocks every minute until `stop`.
    pub async fn run_cleanup(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(CLEANUP_INTERVAL) => {}
            }
            let limiters: Vec<Arc<Limiter>> =
                self.routes.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
            for limiter in limiters {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            let denied = self.denied.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(denied) = denied {
                denied.limiter.retain_recent();
                denied.limiter.shrink_to_fit();
                denied.blocked.cleanup();
            }
        }
    }
}

/// The shared store as one configuration uses it.
#[derive(Clone)]
struct Shared {
    store: Arc<Store>,
    timeout: Duration,
    on_error: OnStoreError,
    prefix: String,
}

impl Shared {
    /// The answer for a request whose limit the store could not check.
    fn on_failure(&self) -> Result<(), Reject> {
        match self.on_error {
            OnStoreError::Allow => Ok(()),
            OnStoreError::Deny => Err(Reject::StoreUnavailable),
        }
    }
}

/// One limit's buckets in Redis: the keys `{prefix}{kind}:{limit}:{id}`.
struct Remote {
    key_base: String,
    interval_us: u64,
    tolerance_us: u64,
}

impl Remote {
    fn new(shared: &Shared, kind: &str, what: &[&str], rate: Rate) -> Self {
        // Redis's clock counts microseconds; a limit never counts faster.
        let interval_us = (rate.interval().as_nanos() as u64).div_ceil(1000).max(1);
        let tolerance_us = interval_us * u64::from(rate.burst.get() - 1);
        let (i, t) = (interval_us.to_string(), tolerance_us.to_string());
        let mut parts = what.to_vec();
        parts.extend([i.as_str(), t.as_str()]);
        Self { key_base: format!("{}{kind}:{}:", shared.prefix, limit_digest(&parts)), interval_us, tolerance_us }
    }

    fn key(&self, id: &str) -> String {
        format!("{}{id}", self.key_base)
    }
}

enum Bucket {
    Local(Arc<Limiter>),
    Remote(Remote),
}

struct RouteLimit {
    key: RateKey,
    bucket: Bucket,
    counter: IntCounter,
}

struct RouteLimits {
    checks: Vec<RouteLimit>,
    peer: IntCounter,
}

/// The budget of denied requests per client address: counted here or in
/// the shared store, and the addresses known to have spent it.
struct DeniedLimiter {
    rate: Rate,
    remote: bool,
    limiter: Limiter,
    blocked: Blocked,
}

impl DeniedLimiter {
    fn new(rate: Rate, remote: bool, gauge: IntGauge) -> Self {
        Self { rate, remote, limiter: local::limiter(rate), blocked: Blocked::new(gauge) }
    }
}

struct Denied {
    limiter: Arc<DeniedLimiter>,
    remote: Option<Remote>,
}

/// The limits of one configuration.
#[derive(Default)]
pub struct Limits {
    routes: HashMap<String, RouteLimits>,
    denied: Option<Denied>,
    shared: Option<Shared>,
}

impl Limits {
    /// Refuses a client address that spent its budget of denied requests.
    pub async fn admit_peer(&self, route: &str, peer: IpAddr) -> Result<(), Reject> {
        let Some(denied) = &self.denied else { return Ok(()) };
        let key = peer_key(peer);
        let mut wait = denied.limiter.blocked.blocked_for(key);
        if let (None, Some(remote), Some(shared)) = (wait, &denied.remote, &self.shared) {
            let block = remote.key(&format!("b:{}", remote_peer(peer)));
            match shared.store.blocked_for(&block, shared.timeout).await {
                Ok(None) => {}
                Ok(Some(left)) => {
                    denied.limiter.blocked.block(key, left);
                    wait = Some(left);
                }
                Err(_) => return shared.on_failure(),
            }
        }
        match wait {
            None => Ok(()),
            Some(wait) => {
                if let Some(r) = self.routes.get(route) {
                    r.peer.inc();
                }
                Err(Reject::RateLimited(wait))
            }
        }
    }

    /// Counts a denied request against its client address.
    pub async fn note_denied(&self, peer: IpAddr) {
        let Some(denied) = &self.denied else { return };
        let key = peer_key(peer);
        let refused = match (&denied.remote, &self.shared) {
            (Some(remote), Some(shared)) => {
                let id = remote_peer(peer);
                let (bucket, block) = (remote.key(&id), remote.key(&format!("b:{id}")));
                let checked =
                    shared.store.check(&bucket, Some(&block), remote.interval_us, remote.tolerance_us, shared.timeout);
                // Not counted when the store cannot say: nothing to decide.
                checked.await.ok().flatten()
            }
            _ => local::check(&denied.limiter.limiter, key).err(),
        };
        if let Some(wait) = refused {
            denied.limiter.blocked.block(key, wait);
        }
    }

    /// Checks the route's limits for the verified `subject` (none: the
    /// limits on claims do not apply) and the client address.
    pub async fn admit(&self, route: &str, subject: Option<&Subject>, peer: IpAddr) -> Result<(), Reject> {
        let Some(limits) = self.routes.get(route) else { return Ok(()) };
        for limit in &limits.checks {
            let claim = match (limit.key, subject) {
                (RateKey::Peer, _) => None,
                (RateKey::Oid, Some(s)) => Some(s.oid()),
                (RateKey::App, Some(s)) => Some(s.app()),
                (RateKey::Tenant, Some(s)) => Some(s.tenant()),
                (RateKey::Oid | RateKey::App | RateKey::Tenant, None) => continue,
            };
            let refused = match &limit.bucket {
                Bucket::Local(limiter) => {
                    let key = claim.map_or_else(|| peer_key(peer), claim_key);
                    local::check(limiter, key).err()
                }
                Bucket::Remote(remote) => {
                    let Some(shared) = &self.shared else { continue };
                    let key = remote.key(&claim.map_or_else(|| remote_peer(peer), remote_claim));
                    let checked =
                        shared.store.check(&key, None, remote.interval_us, remote.tolerance_us, shared.timeout);
                    match checked.await {
                        Ok(refused) => refused,
                        Err(_) => {
                            shared.on_failure()?;
                            continue;
                        }
                    }
                }
            };
            if let Some(wait) = refused {
                limit.counter.inc();
                return Err(Reject::RateLimited(wait));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
