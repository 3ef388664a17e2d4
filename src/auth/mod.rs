//! Authentication: from the request's `Authorization` header to a
//! `VerifiedToken`, whose claims are signed by a key from the configured key
//! set, issued by an accepted issuer for the token's own tenant, meant for
//! the route's audience, and within their lifetime.

pub mod claims;
pub mod credentials;
mod error;
pub mod issuer;
pub mod jwks;
pub mod keys;
pub mod token;
pub mod token_cache;

use std::sync::Arc;

pub use error::AuthError;

use claims::{ClaimChecks, Claims};
use jwks::KeyStore;
use token_cache::TokenCache;

/// A token whose signature, issuer, audience, lifetime and tenant were
/// checked. Only `Authenticator` builds one. The claims are shared with the
/// verified-token cache, so a cache hit copies nothing.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    claims: Arc<Claims>,
}

impl VerifiedToken {
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    pub fn into_claims(self) -> Arc<Claims> {
        self.claims
    }
}

/// A failed authentication, with the claims when the signature verified.
pub type AuthFailure = (AuthError, Option<Arc<Claims>>);

pub struct Authenticator {
    keys: Arc<KeyStore>,
    checks: ClaimChecks,
    max_token_bytes: usize,
    cache: Option<TokenCache>,
}

impl Authenticator {
    pub fn new(keys: Arc<KeyStore>, checks: ClaimChecks, max_token_bytes: usize) -> Self {
        Self { keys, checks, max_token_bytes, cache: None }
    }

    /// Adds the verified-token cache (`None`: every token is verified).
    pub fn with_token_cache(mut self, cache: Option<TokenCache>) -> Self {
        self.cache = cache;
        self
    }

    pub fn token_cache(&self) -> Option<&TokenCache> {
        self.cache.as_ref()
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// The longest bearer token accepted (`identity.max_token_bytes`).
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// Authenticates a bearer token (read by `credentials`) for a route
    /// accepting `audiences`, at unix time `now`.
    ///
    /// When the signature verified but a later check failed, the (authentic)
    /// claims come back with the error so that the decision can be logged
    /// with them. Claims of a token whose signature did not verify are never
    /// returned.
    pub async fn authenticate(
        &self,
        token: &str,
        audiences: &[String],
        now: i64,
    ) -> Result<VerifiedToken, AuthFailure> {
        if token.len() > self.max_token_bytes {
            return Err((AuthError::Malformed("bearer token exceeds identity.max_token_bytes"), None));
        }
        let Some(cache) = &self.cache else {
            let (claims, _) = self.verify(token).await?;
            return self.check(claims, audiences, now);
        };
        let digest = TokenCache::digest(token);
        if let Some(entry) = cache.get(&digest) {
            if self.keys.vouches(entry.source, &entry.key) {
                cache.hit();
                return self.check(Arc::clone(&entry.claims), audiences, now);
            }
            cache.invalidate(&digest);
        }
        cache.miss();
        let (claims, (source, key)) = self.verify(token).await?;
        cache.insert(digest, Arc::clone(&claims), source, key, now, self.checks.skew_secs);
        self.check(claims, audiences, now)
    }

    /// Decodes the token and checks its signature with the key its issuer,
    /// version and `kid` select.
    async fn verify(&self, token: &str) -> Result<(Arc<Claims>, (usize, Arc<keys::VerifyKey>)), AuthFailure> {
        let jws = token::parse(token).map_err(|e| (e, None))?;
        let claims = Claims::parse(&jws.payload).map_err(|e| (e, None))?;
        let kid = jws.kid.as_deref().ok_or((AuthError::UnknownKey, None))?;
        let (source, key) = self.keys.key(&claims, kid).await.map_err(|e| (e, None))?;
        if !key.accepts(jws.alg) {
            return Err((AuthError::DisallowedAlg, None));
        }
        if !key.verify(jws.alg, jws.signing_input, jws.signature) {
            return Err((AuthError::BadSignature, None));
        }
        Ok((Arc::new(claims), (source, key)))
    }

    /// The checks every request gets, cached or not.
    fn check(&self, claims: Arc<Claims>, audiences: &[String], now: i64) -> Result<VerifiedToken, AuthFailure> {
        if let Err(e) = self.checks.check(&claims, audiences, now) {
            return Err((e, Some(claims)));
        }
        Ok(VerifiedToken { claims })
    }

    /// Like `authenticate`, without the signature: for tokens only their
    /// audience can verify (Microsoft Graph's carry a `nonce` header). The
    /// token must still be a well-formed JWS with an asymmetric `alg`, and
    /// its issuer, audience, lifetime and tenant are checked. The claims are
    /// for deny decisions only: the upstream verifies the token itself.
    #[allow(clippy::result_large_err)] // the shape of `authenticate`'s answer
    pub fn decode_unverified(&self, token: &str, audiences: &[String], now: i64) -> Result<Arc<Claims>, AuthFailure> {
        if token.len() > self.max_token_bytes {
            return Err((AuthError::Malformed("bearer token exceeds identity.max_token_bytes"), None));
        }
        let jws = token::parse(token).map_err(|e| (e, None))?;
        let claims = Arc::new(Claims::parse(&jws.payload).map_err(|e| (e, None))?);
        match self.checks.check(&claims, audiences, now) {
            Ok(()) => Ok(claims),
            Err(e) => Err((e, Some(claims))),
        }
    }
}
