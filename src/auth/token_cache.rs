//! The verified-token cache: the claims of tokens whose signature verified,
//! keyed by the SHA-256 of the token, until the token's `exp` (plus clock
//! skew, at most `MAX_TTL`), at most `identity.token_cache_size` of them.
//!
//! A hit skips decoding and the signature check. It never skips the
//! issuer, audience, lifetime and tenant checks nor the route's policy,
//! which run on every request; and it holds only while the key that
//! verified the token is still a usable key of its source (so a retired
//! key, or a source past `max_stale`, ends the hits).

use std::sync::Arc;
use std::time::Duration;

use moka::Expiry;
use prometheus::IntCounter;

use super::claims::Claims;
use super::keys::VerifyKey;

/// Longest an entry lives, whatever the token's `exp` says.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

pub type Digest = [u8; 32];

#[derive(Clone)]
pub struct TokenCacheMetrics {
    pub hit: IntCounter,
    pub miss: IntCounter,
}

/// A verified token: its claims and what verified it.
pub struct CachedToken {
    pub claims: Arc<Claims>,
    /// The key store's index of the source that held `key`.
    pub source: usize,
    pub key: Arc<VerifyKey>,
    ttl: Duration,
}

struct UntilExpiry;

impl Expiry<Digest, Arc<CachedToken>> for UntilExpiry {
    fn expire_after_create(&self, _: &Digest, value: &Arc<CachedToken>, _: std::time::Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

#[derive(Clone)]
pub struct TokenCache {
    entries: moka::sync::Cache<Digest, Arc<CachedToken>>,
    metrics: TokenCacheMetrics,
}

impl TokenCache {
    /// `None` when `size` is 0: the cache is disabled.
    pub fn new(size: u64, metrics: TokenCacheMetrics) -> Option<Self> {
        (size > 0).then(|| Self {
            entries: moka::sync::Cache::builder().max_capacity(size).expire_after(UntilExpiry).build(),
            metrics,
        })
    }

    pub fn digest(token: &str) -> Digest {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }

    pub fn get(&self, digest: &Digest) -> Option<Arc<CachedToken>> {
        self.entries.get(digest)
    }

    pub fn invalidate(&self, digest: &Digest) {
        self.entries.invalidate(digest);
    }

    pub fn hit(&self) {
        self.metrics.hit.inc();
    }

    pub fn miss(&self) {
        self.metrics.miss.inc();
    }

    /// Keeps a verified token until `exp + skew` (unix seconds), at most
    /// `MAX_TTL`; a token already past that, or without `exp`, is not kept.
    pub fn insert(&self, digest: Digest, claims: Arc<Claims>, source: usize, key: Arc<VerifyKey>, now: i64, skew: i64) {
        let Some(exp) = claims.exp else { return };
        let left = exp.saturating_add(skew).saturating_sub(now);
        if left <= 0 {
            return;
        }
        let ttl = Duration::from_secs(left as u64).min(MAX_TTL);
        self.entries.insert(digest, Arc::new(CachedToken { claims, source, key, ttl }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::parse_jwk;

    const N: &str = "3I2c2shPwo4E7Y9Npyp7A5s4bkw9u3BV0sNsn4Ph2WAZFXduaTy8ZirXa8cQF2_Riwckxcqf2DYmdUKGDb1FCBESW34oV2V5PopqS2llIfwU6gwrbWycQuai7FUG-UZWfud64ZRqbk8oyyYD7gHfijUiZ-nOHd3ozzDS0NNnH6TKCHiwKu-ocqzT7pDUMr3ozu2Gv0Gb4txtQk4m2QbNn4uNmYrSjgKzNH3HYWQgBYAEEgCUkG-nH4Ui1IsBvPCEIig_UhHn-OtJ9ZHnGmQnRQo22VMRWa9WPXYBt4RCA3eljmDYXLfQNua8Z69e40cGoXrSza90KsuXqNLo-0xQ0w";

    fn cache(size: u64) -> Option<TokenCache> {
        let c = prometheus::IntCounter::new("c", "c").unwrap();
        TokenCache::new(size, TokenCacheMetrics { hit: c.clone(), miss: c })
    }

    fn key() -> Arc<VerifyKey> {
        Arc::new(parse_jwk(serde_json::json!({"kty":"RSA","kid":"k","n": N, "e":"AQAB"})).unwrap())
    }

    fn claims(exp: Option<i64>) -> Arc<Claims> {
        Arc::new(Claims { exp, ..Claims::default() })
    }

    #[test]
    fn size_zero_disables_the_cache() {
        assert!(cache(0).is_none());
        assert!(cache(1).is_some());
    }

    #[test]
    fn keeps_tokens_until_expiry_only() {
        let c = cache(10).unwrap();
        let (a, b, d) = (TokenCache::digest("a.b.c"), TokenCache::digest("a.b.d"), TokenCache::digest("x.y.z"));
        assert_ne!(a, b);
        c.insert(a, claims(Some(2_000)), 0, key(), 1_000, 60);
        c.insert(b, claims(Some(900)), 0, key(), 1_000, 60);
        c.insert(d, claims(None), 0, key(), 1_000, 60);
        assert!(c.get(&a).is_some_and(|e| e.ttl == Duration::from_secs(1_060)));
        assert!(c.get(&b).is_none());
        assert!(c.get(&d).is_none());
        let far = TokenCache::digest("far");
        c.insert(far, claims(Some(i64::MAX)), 0, key(), 1_000, 60);
        assert_eq!(c.get(&far).unwrap().ttl, MAX_TTL);
        c.invalidate(&a);
        assert!(c.get(&a).is_none());
    }
}
