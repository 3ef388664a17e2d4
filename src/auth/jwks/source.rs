//! One key source: its keys by `kid`, how old they are, and how it refetches.
//!
//! A hit is one map lookup in an immutable snapshot behind an `ArcSwap`.
//! A fetch merges per `kid` into a new snapshot: a key stays until a
//! successful fetch finds it has not been listed for `key_ttl`, because
//! Entra's front-ends serve different subsets of the set. While the source
//! cannot be reached its keys stay usable for `max_stale` after the last
//! good fetch, then none are.
//!
//! An unknown `kid` refetches at most once per `unknown_kid_refetch_interval`
//! (governor); concurrent misses wait for the fetch in flight instead of
//! starting their own; a `kid` still unknown after a fetch is remembered
//! (negative cache) until the next interval, so a flood of random `kid`s
//! costs one fetch.

mod fetching;
mod persist;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::fetch::Fetcher;
use super::state::StateFile;
pub use super::status::Freshness;
use super::status::{SourceMetrics, UnknownKid};
use crate::auth::issuer::IssuerTemplate;
use crate::auth::keys::VerifyKey;
use crate::config::{JwksLocation, KeySourceConfig, SourceOrigin};

/// Bounds the memory a flood of random `kid`s can take.
const NEGATIVE_CACHE_ENTRIES: u64 = 10_000;

/// A moment as an age: `before` old at `at`. Ages loaded from the state file
/// start in the past, yet every age is measured on the monotonic clock.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    at: Instant,
    before: Duration,
}

impl Stamp {
    fn now() -> Self {
        Self { at: Instant::now(), before: Duration::ZERO }
    }

    fn aged(before: Duration) -> Self {
        Self { at: Instant::now(), before }
    }

    fn age(&self) -> Duration {
        self.before + self.at.elapsed()
    }
}

struct Slot {
    key: Arc<VerifyKey>,
    seen: Stamp,
}

#[derive(Default)]
struct Snapshot {
    keys: HashMap<String, Slot>,
    /// The last successful fetch (possibly by an earlier process).
    fetched: Option<Stamp>,
    /// Loaded from the state file and not fetched since.
    restored: bool,
}

/// Where the key set is and which issuer it serves, as discovered.
#[derive(Default)]
struct Discovered {
    jwks: Option<JwksLocation>,
    issuer: Option<(String, IssuerTemplate)>,
}

/// The answer for one `kid`.
pub enum Lookup {
    Found(Arc<VerifyKey>),
    /// Not in the set, even after a refetch (or none was allowed).
    Unknown,
    /// The source has no usable keys.
    Unusable,
}

/// Fetches finished so far, read before a lookup.
#[derive(Clone, Copy)]
struct Counts {
    attempts: u64,
    successes: u64,
}

/// What a request-triggered refetch came to.
enum Refetch {
    /// A fetch ran (this request's or one it waited for); `true` on success.
    Ran(bool),
    RateLimited,
}

pub struct KeySource {
    pub config: KeySourceConfig,
    fetcher: Arc<Fetcher>,
    state_file: Option<StateFile>,
    snapshot: ArcSwap<Snapshot>,
    discovered: ArcSwap<Discovered>,
    refetch: DefaultDirectRateLimiter,
    negative: moka::sync::Cache<[u8; 32], ()>,
    fetch_lock: Arc<tokio::sync::Mutex<()>>,
    /// Fetch attempts finished, successful or not.
    attempts: AtomicU64,
    /// Successful fetches.
    successes: AtomicU64,
    last_failed: AtomicBool,
    metadata_due: std::sync::Mutex<Option<Instant>>,
    metrics: SourceMetrics,
}

impl KeySource {
    pub fn new(
        config: KeySourceConfig,
        fetcher: Arc<Fetcher>,
        state_file: Option<StateFile>,
        metrics: SourceMetrics,
    ) -> Self {
        let interval = config.timing.unknown_kid_refetch_interval;
        // Validated non-zero by the configuration.
        let quota = Quota::with_period(interval).unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN));
        let discovered = match &config.origin {
            SourceOrigin::Jwks(location) => Discovered { jwks: Some(location.clone()), issuer: None },
            SourceOrigin::Discovery(_) => Discovered::default(),
        };
        Self {
            fetcher,
            state_file,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            discovered: ArcSwap::from_pointee(discovered),
            refetch: RateLimiter::direct(quota.allow_burst(NonZeroU32::MIN)),
            negative: moka::sync::Cache::builder().max_capacity(NEGATIVE_CACHE_ENTRIES).time_to_live(interval).build(),
            fetch_lock: Arc::new(tokio::sync::Mutex::new(())),
            attempts: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            last_failed: AtomicBool::new(false),
            metadata_due: std::sync::Mutex::new(None),
            metrics,
            config,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// True when a token with issuer `iss` (tenant `tid`) and version `ver`
    /// takes its keys from this source: the configured issuers, else the
    /// discovered one, else any.
    pub fn serves(&self, iss: &str, tid: Option<&str>, ver: Option<&str>) -> bool {
        if self.config.token_version.as_deref().is_some_and(|v| Some(v) != ver) {
            return false;
        }
        if !self.config.issuers.is_empty() {
            return self.config.issuers.iter().any(|t| t.matches(iss, tid));
        }
        match &self.discovered.load().issuer {
            Some((_, template)) => template.matches(iss, tid),
            None => true,
        }
    }

    pub fn freshness(&self) -> Freshness {
        Self::freshness_of(
            &self.snapshot.load(),
            self.config.timing.max_stale,
            self.last_failed.load(Ordering::Acquire),
        )
    }

    fn freshness_of(snap: &Snapshot, max_stale: Duration, last_failed: bool) -> Freshness {
        match snap.fetched {
            _ if snap.keys.is_empty() => Freshness::Missing,
            None => Freshness::Missing,
            Some(f) if f.age() > max_stale => Freshness::Expired,
            Some(_) if last_failed || snap.restored => Freshness::Stale,
            Some(_) => Freshness::Fresh,
        }
    }

    fn usable(&self, snap: &Snapshot) -> bool {
        snap.fetched.is_some_and(|f| f.age() <= self.config.timing.max_stale) && !snap.keys.is_empty()
    }

    /// Keys held now, and the age of the last good fetch.
    pub fn status(&self) -> (usize, Option<Duration>) {
        let snap = self.snapshot.load();
        (snap.keys.len(), snap.fetched.map(|f| f.age()))
    }

    /// The key for `kid` when it is held and usable: the hit path, no I/O.
    pub fn lookup(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        let snap = self.snapshot.load();
        if !self.usable(&snap) {
            return None;
        }
        snap.keys.get(kid).map(|slot| Arc::clone(&slot.key))
    }

    /// True while `key` is still this source's usable key for its `kid`
    /// (what keeps a cached verification valid).
    pub fn holds(&self, key: &Arc<VerifyKey>) -> bool {
        let snap = self.snapshot.load();
        self.usable(&snap) && snap.keys.get(key.kid.as_str()).is_some_and(|slot| Arc::ptr_eq(&slot.key, key))
    }

    /// The key for `kid`, refetching (rate-limited, shared) when it is
    /// unknown or the source has no usable keys.
    pub async fn key(self: &Arc<Self>, kid: &str) -> Lookup {
        let seen = self.counts();
        let snap = self.snapshot.load_full();
        if self.usable(&snap) {
            if let Some(slot) = snap.keys.get(kid) {
                return Lookup::Found(Arc::clone(&slot.key));
            }
        } else {
            // Nothing usable: try to recover now rather than at the next
            // background retry; the same rate limit applies.
            drop(snap);
            let _ = self.refetch(seen).await;
            let snap = self.snapshot.load();
            if !self.usable(&snap) {
                return Lookup::Unusable;
            }
            return match snap.keys.get(kid) {
                Some(slot) => Lookup::Found(Arc::clone(&slot.key)),
                None => Lookup::Unknown,
            };
        }
        drop(snap);
        let digest = kid_digest(kid);
        if self.negative.contains_key(&digest) {
            self.metrics.unknown_kid(UnknownKid::NegativeCached);
            return Lookup::Unknown;
        }
        let refetch = self.refetch(seen).await;
        let snap = self.snapshot.load();
        if !self.usable(&snap) {
            self.metrics.unknown_kid(UnknownKid::FetchFailed);
            return Lookup::Unusable;
        }
        if let Some(slot) = snap.keys.get(kid) {
            self.metrics.unknown_kid(UnknownKid::Found);
            return Lookup::Found(Arc::clone(&slot.key));
        }
        match refetch {
            Refetch::Ran(true) => {
                self.negative.insert(digest, ());
                self.metrics.unknown_kid(UnknownKid::NotFound);
            }
            Refetch::Ran(false) => self.metrics.unknown_kid(UnknownKid::FetchFailed),
            Refetch::RateLimited => self.metrics.unknown_kid(UnknownKid::RateLimited),
        }
        Lookup::Unknown
    }

    fn counts(&self) -> Counts {
        // `successes` first: see `fetch_locked`.
        let successes = self.successes.load(Ordering::Acquire);
        Counts { attempts: self.attempts.load(Ordering::Acquire), successes }
    }

    /// One fetch for a request: the outcome of a fetch that finished since
    /// `seen` (read before the caller's lookup) if there is one, waiting for
    /// the one in flight; else a new fetch if the rate limit allows. Never
    /// waits longer than the fetch timeout.
    async fn refetch(self: &Arc<Self>, seen: Counts) -> Refetch {
        let wait = self.fetcher.timeout();
        let lock = Arc::clone(&self.fetch_lock);
        let guard = match lock.clone().try_lock_owned() {
            Ok(guard) => guard,
            // Held: a fetch in flight (or a request looking at its outcome).
            Err(_) => match tokio::time::timeout(wait, lock.lock_owned()).await {
                Ok(guard) => guard,
                Err(_) => return Refetch::Ran(false),
            },
        };
        let now = self.counts();
        if now.attempts != seen.attempts {
            return Refetch::Ran(now.successes != seen.successes);
        }
        if self.refetch.check().is_err() {
            return Refetch::RateLimited;
        }
        // The fetch runs on its own task, so that it completes (and releases
        // the lock) even when the request that started it goes away.
        let source = Arc::clone(self);
        let fetch = tokio::spawn(async move {
            let _guard = guard;
            source.fetch_locked(false).await.is_ok()
        });
        match tokio::time::timeout(wait, fetch).await {
            Ok(Ok(ok)) => Refetch::Ran(ok),
            _ => Refetch::Ran(false),
        }
    }

    /// Sets the age and state gauges (at scrape time).
    pub fn observe(&self) {
        let age = self.snapshot.load().fetched.map_or(f64::INFINITY, |f| f.age().as_secs_f64());
        self.metrics.age.set(age);
        let now = self.freshness();
        for (gauge, state) in self.metrics.state.iter().zip(Freshness::ALL) {
            gauge.set(i64::from(state == now));
        }
    }

    /// True when the last fetch attempt succeeded.
    pub fn last_ok(&self) -> bool {
        !self.last_failed.load(Ordering::Acquire) && self.attempts.load(Ordering::Acquire) > 0
    }
}

/// Negative-cache key: fixed size whatever the `kid`'s length.
fn kid_digest(kid: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, kid.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}
