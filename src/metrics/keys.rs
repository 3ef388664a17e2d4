//! The key store's and the verified-token cache's series. `source` takes
//! the configured source names only.

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::auth::jwks::fetch::FetchResult;
use crate::auth::jwks::source::Freshness;
use crate::auth::jwks::{SourceMetrics, UnknownKid};
use crate::auth::token_cache::TokenCacheMetrics;

const FETCH_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

pub struct KeyFamilies {
    fetch: IntCounterVec,
    metadata: IntCounterVec,
    duration: HistogramVec,
    keys: IntGaugeVec,
    skipped: IntGaugeVec,
    age: GaugeVec,
    state: IntGaugeVec,
    unknown_kid: IntCounterVec,
    token_cache: IntCounterVec,
}

impl KeyFamilies {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let fetch = IntCounterVec::new(
            Opts::new("mfagate_jwks_fetch_total", "Key set fetches by source and result."),
            &["source", "result"],
        )?;
        let metadata = IntCounterVec::new(
            Opts::new("mfagate_oidc_metadata_fetch_total", "Discovery document fetches by source and result."),
            &["source", "result"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("mfagate_jwks_fetch_duration_seconds", "Time taken by key set fetches, by source.")
                .buckets(FETCH_BUCKETS.to_vec()),
            &["source"],
        )?;
        let keys = IntGaugeVec::new(Opts::new("mfagate_jwks_keys", "Signing keys held, by source."), &["source"])?;
        let skipped = IntGaugeVec::new(
            Opts::new(
                "mfagate_jwks_skipped_keys",
                "Keys skipped in the last fetched document (use other than sig, unsupported kty), by source.",
            ),
            &["source"],
        )?;
        let age = GaugeVec::new(
            Opts::new("mfagate_jwks_age_seconds", "Seconds since the last good key set fetch (+Inf: none yet)."),
            &["source"],
        )?;
        let state = IntGaugeVec::new(
            Opts::new(
                "mfagate_jwks_state",
                "Key source state (fresh, stale, expired, missing), 1 for the current one, as of the scrape.",
            ),
            &["source", "state"],
        )?;
        let unknown_kid = IntCounterVec::new(
            Opts::new("mfagate_jwks_unknown_kid_total", "Requests whose kid was not in the key set, by outcome."),
            &["source", "outcome"],
        )?;
        let token_cache = IntCounterVec::new(
            Opts::new("mfagate_token_cache_total", "Verified-token cache lookups by result (hit, miss)."),
            &["result"],
        )?;
        registry.register(Box::new(fetch.clone()))?;
        registry.register(Box::new(metadata.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(keys.clone()))?;
        registry.register(Box::new(skipped.clone()))?;
        registry.register(Box::new(age.clone()))?;
        registry.register(Box::new(state.clone()))?;
        registry.register(Box::new(unknown_kid.clone()))?;
        registry.register(Box::new(token_cache.clone()))?;
        Ok(Self { fetch, metadata, duration, keys, skipped, age, state, unknown_kid, token_cache })
    }

    pub fn source(&self, name: &str) -> SourceMetrics {
        let age = self.age.with_label_values(&[name]);
        age.set(f64::INFINITY);
        SourceMetrics {
            fetch: FetchResult::ALL.map(|r| self.fetch.with_label_values(&[name, r.as_str()])),
            metadata: FetchResult::ALL.map(|r| self.metadata.with_label_values(&[name, r.as_str()])),
            duration: self.duration.with_label_values(&[name]),
            keys: self.keys.with_label_values(&[name]),
            skipped: self.skipped.with_label_values(&[name]),
            age,
            state: Freshness::ALL.map(|f| {
                let gauge = self.state.with_label_values(&[name, f.as_str()]);
                gauge.set(i64::from(f == Freshness::Missing));
                gauge
            }),
            unknown_kid: UnknownKid::ALL.map(|o| self.unknown_kid.with_label_values(&[name, o.as_str()])),
        }
    }

    pub fn token_cache(&self) -> TokenCacheMetrics {
        let counter = |result: &str| -> IntCounter { self.token_cache.with_label_values(&[result]) };
        TokenCacheMetrics { hit: counter("hit"), miss: counter("miss") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_arrays_are_indexed_by_the_enums() {
        for (i, r) in FetchResult::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{}", r.as_str());
        }
        for (i, o) in UnknownKid::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i, "{}", o.as_str());
        }
    }
}
