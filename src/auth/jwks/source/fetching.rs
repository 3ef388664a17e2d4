//! Fetching for one source: the discovery document when needed, then the
//! key set, merged per `kid` into a new snapshot and saved.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::{info, warn};

use super::{Discovered, KeySource, Slot, Snapshot, Stamp};
use crate::auth::jwks::fetch::{FetchError, FetchResult, Metadata, parse_metadata};
use crate::auth::keys::parse_key_set;
use crate::config::{JwksLocation, SourceOrigin};

impl KeySource {
    /// Fetches now, after any fetch in flight: at start and from the refresher,
    /// which also refresh the discovery document when it is due.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch_locked(true).await
    }

    /// Fetches (the discovery document first when needed), merges, saves.
    /// The caller holds `fetch_lock`.
    pub(super) async fn fetch_locked(&self, metadata_allowed: bool) -> Result<(), FetchError> {
        let result = self.fetch_and_merge(metadata_allowed).await;
        self.last_failed.store(result.is_err(), Ordering::Release);
        // `attempts` first: whoever sees the new `successes` sees the new `attempts` too.
        self.attempts.fetch_add(1, Ordering::AcqRel);
        if result.is_ok() {
            self.successes.fetch_add(1, Ordering::AcqRel);
        }
        if let Err(e) = &result {
            let snap = self.snapshot.load();
            let state = Self::freshness_of(&snap, self.config.timing.max_stale, true);
            warn!(source = %self.config.name, error = %e, keys_kept = snap.keys.len(), state = state.as_str(), "cannot fetch signing keys");
        }
        result
    }

    async fn fetch_and_merge(&self, metadata_allowed: bool) -> Result<(), FetchError> {
        let jwks = self.discovered.load().jwks.clone();
        let jwks = match (&self.config.origin, jwks) {
            (SourceOrigin::Discovery(location), None) => self.fetch_metadata(location).await?,
            (SourceOrigin::Discovery(location), Some(current)) if metadata_allowed && self.metadata_is_due() => {
                match self.fetch_metadata(location).await {
                    Ok(jwks) => jwks,
                    Err(e) => {
                        warn!(source = %self.config.name, error = %e, "cannot refresh the discovery document: keeping its last answer");
                        current
                    }
                }
            }
            (_, Some(current)) => current,
            (SourceOrigin::Jwks(location), None) => location.clone(),
        };
        let started = Instant::now();
        let fetched = self.fetcher.get(&jwks).await.and_then(|bytes| {
            let set = parse_key_set(&bytes)?;
            if set.keys.is_empty() {
                return Err(FetchError::NoUsableKey(set.skipped));
            }
            Ok(set)
        });
        self.metrics.duration.observe(started.elapsed().as_secs_f64());
        let set = match fetched {
            Ok(set) => set,
            Err(e) => {
                self.metrics.fetch(e.result());
                return Err(e);
            }
        };
        self.metrics.fetch(FetchResult::Success);
        let now = Stamp::now();
        let old = self.snapshot.load();
        let ttl = self.config.timing.key_ttl;
        let mut keys: HashMap<String, Slot> = old
            .keys
            .iter()
            .filter(|(_, slot)| slot.seen.age() < ttl)
            .map(|(kid, slot)| (kid.clone(), Slot { key: Arc::clone(&slot.key), seen: slot.seen }))
            .collect();
        let (fetched, skipped) = (set.keys.len(), set.skipped);
        for key in set.keys {
            match keys.get_mut(key.kid.as_str()) {
                // The same key: keep the loaded one, so that what was verified with it stays valid.
                Some(slot) if slot.key.same_as(&key) => slot.seen = now,
                _ => {
                    keys.insert(key.kid.clone(), Slot { key: Arc::new(key), seen: now });
                }
            }
        }
        let total = keys.len();
        let snapshot = Arc::new(Snapshot { keys, fetched: Some(now), restored: false });
        self.snapshot.store(Arc::clone(&snapshot));
        self.metrics.keys.set(total as i64);
        self.metrics.skipped.set(skipped as i64);
        info!(source = %self.config.name, jwks_uri = %jwks, fetched, skipped, total, "signing keys loaded");
        self.save(&snapshot, &jwks).await;
        Ok(())
    }

    fn metadata_is_due(&self) -> bool {
        let due = self.metadata_due.lock().map(|d| *d).unwrap_or(None);
        due.is_none_or(|at| Instant::now() >= at)
    }

    async fn fetch_metadata(&self, location: &JwksLocation) -> Result<JwksLocation, FetchError> {
        let fetched = self
            .fetcher
            .get(location)
            .await
            .and_then(|bytes| parse_metadata(&bytes, matches!(location, JwksLocation::File(_))));
        let result = fetched.as_ref().map_or_else(FetchError::result, |_| FetchResult::Success);
        self.metrics.metadata(result);
        let Metadata { jwks, issuer, issuer_template } = fetched?;
        info!(source = %self.config.name, %issuer, jwks_uri = %jwks, "discovery document loaded");
        self.discovered
            .store(Arc::new(Discovered { jwks: Some(jwks.clone()), issuer: Some((issuer, issuer_template)) }));
        if let Ok(mut due) = self.metadata_due.lock() {
            *due =
                Some(Instant::now() + crate::auth::jwks::refresh::jitter(self.config.timing.metadata_refresh_interval));
        }
        Ok(jwks)
    }
}
