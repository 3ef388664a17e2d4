//! The key store: signing keys from every configured source, chosen by the
//! token's issuer, version and `kid`.
//!
//! Module order follows a key: `fetch` (HTTPS or file, bounded), `source`
//! (per-kid cache, staleness, unknown-kid refetch), `state` (last good set on
//! disk), `refresh` (background refresh).

pub mod fetch;
pub mod refresh;
pub mod source;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{Gauge, Histogram, IntCounter, IntGauge};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::AuthError;
use super::claims::{Claims, is_guid};
use super::keys::VerifyKey;
use crate::config::{IdentityConfig, JwksLocation, SourceOrigin};
use crate::tls::TlsError;
use fetch::{FetchResult, Fetcher};
use source::{Freshness, Lookup, Source};
use state::StateFile;

/// What became of a request whose `kid` was not in the set: the `outcome`
/// label of `mfagate_jwks_unknown_kid_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKid {
    /// A refetch found it.
    Found,
    /// Still unknown after a refetch; remembered until the next interval.
    NotFound,
    /// Remembered as unknown: no fetch.
    NegativeCached,
    /// No refetch allowed in this interval.
    RateLimited,
    /// The refetch failed.
    FetchFailed,
}

impl UnknownKid {
    pub const ALL: [UnknownKid; 5] =
        [Self::Found, Self::NotFound, Self::NegativeCached, Self::RateLimited, Self::FetchFailed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "found",
            Self::NotFound => "not_found",
            Self::NegativeCached => "negative_cached",
            Self::RateLimited => "rate_limited",
            Self::FetchFailed => "fetch_failed",
        }
    }
}

/// One source's series, every label set resolved at start.
#[derive(Clone)]
pub struct SourceMetrics {
    pub fetch: [IntCounter; FetchResult::ALL.len()],
    pub metadata: [IntCounter; FetchResult::ALL.len()],
    pub duration: Histogram,
    pub keys: IntGauge,
    pub skipped: IntGauge,
    pub age: Gauge,
    /// One gauge per `Freshness`, 1 for the current state.
    pub state: [IntGauge; Freshness::ALL.len()],
    pub unknown_kid: [IntCounter; UnknownKid::ALL.len()],
}

impl SourceMetrics {
    fn fetch(&self, result: FetchResult) {
        self.fetch[result as usize].inc();
    }

    fn metadata(&self, result: FetchResult) {
        self.metadata[result as usize].inc();
    }

    fn unknown_kid(&self, outcome: UnknownKid) {
        self.unknown_kid[outcome as usize].inc();
    }
}

/// One source as `/readyz` shows it.
#[derive(Debug, Clone)]
pub struct SourceStatus<'a> {
    pub name: &'a str,
    pub required: bool,
    pub freshness: Freshness,
    pub keys: usize,
    /// Since the last good fetch; `None` when there was none.
    pub age: Option<Duration>,
}

pub struct KeyStore {
    sources: Vec<Arc<Source>>,
}

impl KeyStore {
    /// `metrics` gives each source's series by name.
    pub fn new(identity: &IdentityConfig, metrics: impl Fn(&str) -> SourceMetrics) -> Result<Self, TlsError> {
        let fetcher = Arc::new(Fetcher::new(identity.jwks_ca.as_deref(), identity.fetch)?);
        let sources = identity
            .sources
            .iter()
            .map(|config| {
                // A key set read from a file needs no saved copy.
                let local = matches!(config.origin, SourceOrigin::Jwks(JwksLocation::File(_)));
                let state_file =
                    identity.state_dir.as_deref().filter(|_| !local).map(|dir| StateFile::new(dir, &config.name));
                Arc::new(Source::new(config.clone(), Arc::clone(&fetcher), state_file, metrics(&config.name)))
            })
            .collect();
        Ok(Self { sources })
    }

    pub fn sources(&self) -> &[Arc<Source>] {
        &self.sources
    }

    /// Fetches every source at once; a source that cannot be fetched loads
    /// its saved key set. Returns when all have tried (each within the fetch
    /// timeout, twice for a discovery source).
    pub async fn load(&self) {
        let mut tasks = JoinSet::new();
        for source in &self.sources {
            let source = Arc::clone(source);
            tasks.spawn(async move {
                if source.refresh().await.is_err() {
                    source.restore().await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        for source in &self.sources {
            if !source.freshness().usable() {
                warn!(source = %source.name(), required = source.config.required, "signing keys are not available yet: retrying in the background");
            }
        }
    }

    /// The key for a token with these claims and `kid`, and the index of the
    /// source that holds it.
    pub async fn key(&self, claims: &Claims, kid: &str) -> Result<(usize, Arc<VerifyKey>), AuthError> {
        let iss = claims.iss.as_deref().unwrap_or("");
        let tid = claims.tid.as_deref().filter(|t| is_guid(t));
        let ver = claims.ver.as_deref();
        let serves = |s: &Source| s.serves(iss, tid, ver);
        // The hit path: no I/O, no allocation.
        for (i, source) in self.sources.iter().enumerate() {
            if serves(source)
                && let Some(key) = source.lookup(kid)
            {
                return bind(i, key, iss, tid);
            }
        }
        let mut candidates = 0;
        let mut unusable = false;
        for (i, source) in self.sources.iter().enumerate() {
            if !serves(source) {
                continue;
            }
            candidates += 1;
            match source.key(kid).await {
                Lookup::Found(key) => return bind(i, key, iss, tid),
                Lookup::Unknown => {}
                Lookup::Unusable => unusable = true,
            }
        }
        match (candidates, unusable) {
            // No source holds keys for this issuer.
            (0, _) => Err(AuthError::BadIssuer),
            // The key may be in a source we cannot read now: our fault, retry.
            (_, true) => Err(AuthError::KeysUnavailable),
            (_, false) => Err(AuthError::UnknownKey),
        }
    }

    /// True while source `index` still holds `key` as a usable key: a cached
    /// verification with it stays valid.
    pub fn vouches(&self, index: usize, key: &Arc<VerifyKey>) -> bool {
        self.sources.get(index).is_some_and(|s| s.holds(key))
    }

    /// Ready while every required source has usable keys.
    pub fn is_ready(&self) -> bool {
        self.sources.iter().filter(|s| s.config.required).all(|s| s.freshness().usable())
    }

    pub fn status(&self) -> Vec<SourceStatus<'_>> {
        self.sources
            .iter()
            .map(|s| {
                let (keys, age) = s.status();
                SourceStatus { name: s.name(), required: s.config.required, freshness: s.freshness(), keys, age }
            })
            .collect()
    }

    /// Updates the gauges that depend on the time (before a scrape).
    pub fn observe(&self) {
        for s in &self.sources {
            s.observe();
        }
    }

    /// One refresher per source; they end when `stop` is cancelled.
    pub fn spawn_refreshers(&self, stop: &CancellationToken) -> JoinSet<()> {
        let mut set = JoinSet::new();
        for source in &self.sources {
            set.spawn(refresh::run(Arc::clone(source), stop.clone()));
        }
        set
    }
}

/// A v2 key may only sign for its own issuer (with the token's `tid`).
fn bind(index: usize, key: Arc<VerifyKey>, iss: &str, tid: Option<&str>) -> Result<(usize, Arc<VerifyKey>), AuthError> {
    if key.allows_issuer(iss, tid) { Ok((index, key)) } else { Err(AuthError::BadIssuer) }
}
