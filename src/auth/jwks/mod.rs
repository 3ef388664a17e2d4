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
mod status;

pub use status::{SourceMetrics, UnknownKid};

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::AuthError;
use super::claims::{Claims, is_guid};
use super::keys::VerifyKey;
use crate::config::{IdentityConfig, JwksLocation, SourceOrigin};
use crate::tls::TlsError;
use fetch::Fetcher;
use source::{KeySource, Lookup};
use state::StateFile;
use status::Freshness;

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
    sources: Vec<Arc<KeySource>>,
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
                Arc::new(KeySource::new(config.clone(), Arc::clone(&fetcher), state_file, metrics(&config.name)))
            })
            .collect();
        Ok(Self { sources })
    }

    pub fn sources(&self) -> &[Arc<KeySource>] {
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
    /// source that holds it: the first source that serves the token's issuer
    /// and holds `kid` bound to that issuer. A source whose key of that `kid`
    /// is bound to another issuer does not end the search (several sources
    /// may list one `kid`); the token is refused only when no source binds.
    pub async fn key(&self, claims: &Claims, kid: &str) -> Result<(usize, Arc<VerifyKey>), AuthError> {
        let iss = claims.iss.as_deref().unwrap_or("");
        let tid = claims.tid.as_deref().filter(|t| is_guid(t));
        let ver = claims.ver.as_deref();
        let serves = |s: &KeySource| s.serves(iss, tid, ver);
        // The hit path: no I/O, no allocation.
        for (i, source) in self.sources.iter().enumerate() {
            if serves(source)
                && let Some(key) = source.lookup(kid)
                && key.allows_issuer(iss, tid)
            {
                return Ok((i, key));
            }
        }
        let mut candidates = 0;
        let mut unusable = false;
        let mut bound_elsewhere = false;
        for (i, source) in self.sources.iter().enumerate() {
            if !serves(source) {
                continue;
            }
            candidates += 1;
            match source.key(kid).await {
                Lookup::Found(key) if key.allows_issuer(iss, tid) => return Ok((i, key)),
                Lookup::Found(_) => bound_elsewhere = true,
                Lookup::Unknown => {}
                Lookup::Unusable => unusable = true,
            }
        }
        match (candidates, unusable, bound_elsewhere) {
            // No source holds keys for this issuer.
            (0, _, _) => Err(AuthError::BadIssuer),
            // The key may be in a source we cannot read now: our fault, retry.
            (_, true, _) => Err(AuthError::KeysUnavailable),
            // A v2 key may only sign for its own issuer (with the token's `tid`).
            (_, false, true) => Err(AuthError::BadIssuer),
            (_, false, false) => Err(AuthError::UnknownKey),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, TEST_ROUTE};

    const TID: &str = "df845f1a-1111-2222-3333-444455556666";
    const N: &str = "3I2c2shPwo4E7Y9Npyp7A5s4bkw9u3BV0sNsn4Ph2WAZFXduaTy8ZirXa8cQF2_Riwckxcqf2DYmdUKGDb1FCBESW34oV2V5PopqS2llIfwU6gwrbWycQuai7FUG-UZWfud64ZRqbk8oyyYD7gHfijUiZ-nOHd3ozzDS0NNnH6TKCHiwKu-ocqzT7pDUMr3ozu2Gv0Gb4txtQk4m2QbNn4uNmYrSjgKzNH3HYWQgBYAEEgCUkG-nH4Ui1IsBvPCEIig_UhHn-OtJ9ZHnGmQnRQo22VMRWa9WPXYBt4RCA3eljmDYXLfQNua8Z69e40cGoXrSza90KsuXqNLo-0xQ0w";
    const MSA: &str = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
    const V2: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

    /// Key `k`, bound to `issuer` when given.
    fn key(issuer: Option<&str>) -> serde_json::Value {
        let mut jwk = serde_json::json!({"kty": "RSA", "kid": "k", "n": N, "e": "AQAB"});
        if let Some(i) = issuer {
            jwk["issuer"] = i.into();
        }
        jwk
    }

    /// A store of file sources, in order: (name, keys, extra TOML).
    async fn store(dir: &std::path::Path, sources: &[(&str, Vec<serde_json::Value>, &str)]) -> KeyStore {
        let mut toml = String::from("[identity]\nstate_dir = \"\"\n");
        for (name, keys, extra) in sources {
            let path = dir.join(format!("{name}.json"));
            std::fs::write(&path, serde_json::json!({ "keys": keys }).to_string()).unwrap();
            toml.push_str(&format!(
                "[[identity.sources]]\nname = \"{name}\"\njwks_uri = \"file:{}\"\n{extra}\n",
                path.display()
            ));
        }
        let config = Config::from_toml(&format!("{toml}{TEST_ROUTE}")).unwrap();
        let metrics = crate::metrics::Metrics::new().unwrap();
        let store = KeyStore::new(&config.identity, |name| metrics.jwks_source(name)).unwrap();
        store.load().await;
        store
    }

    fn claims(iss: &str) -> Claims {
        Claims { iss: Some(iss.into()), tid: Some(TID.into()), ver: Some("1.0".into()), ..Claims::default() }
    }

    fn v1() -> Claims {
        claims(&format!("https://sts.windows.net/{TID}/"))
    }

    /// The index of the source whose key was chosen, or the refusal.
    async fn chosen(store: &KeyStore, claims: &Claims, kid: &str) -> Result<usize, &'static str> {
        store.key(claims, kid).await.map(|(i, _)| i).map_err(|e| e.reason().as_str())
    }

    #[tokio::test]
    async fn a_kid_bound_to_another_issuer_does_not_hide_the_same_kid_in_a_later_source() {
        let dir = tempfile::tempdir().unwrap();
        for bound in [MSA, V2] {
            let s = store(dir.path(), &[("elsewhere", vec![key(Some(bound))], ""), ("entra-v1", vec![key(None)], "")])
                .await;
            assert_eq!(chosen(&s, &v1(), "k").await, Ok(1), "first source's key bound to {bound}");
        }
        // Three sources: the one that binds is last.
        let s = store(
            dir.path(),
            &[("msa", vec![key(Some(MSA))], ""), ("v2", vec![key(Some(V2))], ""), ("v1", vec![key(None)], "")],
        )
        .await;
        assert_eq!(chosen(&s, &v1(), "k").await, Ok(2));
        let v2 = claims(&format!("https://login.microsoftonline.com/{TID}/v2.0"));
        assert_eq!(chosen(&s, &v2, "k").await, Ok(1));
        assert_eq!(chosen(&s, &claims(MSA), "k").await, Ok(0));
    }

    #[tokio::test]
    async fn refused_only_when_no_source_that_serves_the_issuer_binds() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), &[("msa", vec![key(Some(MSA))], ""), ("v2", vec![key(Some(V2))], "")]).await;
        assert_eq!(chosen(&s, &v1(), "k").await, Err("bad_issuer"), "held, but bound elsewhere everywhere");
        assert_eq!(chosen(&s, &v1(), "other").await, Err("unknown_key"));
        // A source that does not serve the issuer is not asked, whatever it holds.
        let s = store(
            dir.path(),
            &[("msa", vec![key(Some(MSA))], ""), ("v2-only", vec![key(None)], &format!("issuers = [\"{V2}\"]"))],
        )
        .await;
        assert_eq!(chosen(&s, &v1(), "k").await, Err("bad_issuer"));
    }

    #[tokio::test]
    async fn a_later_source_is_refetched_for_a_kid_an_earlier_one_binds_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), &[("msa", vec![key(Some(MSA))], ""), ("v1", vec![], "")]).await;
        // The right key appears in the second source after the start.
        let path = dir.path().join("v1.json");
        std::fs::write(&path, serde_json::json!({ "keys": [key(None)] }).to_string()).unwrap();
        assert_eq!(chosen(&s, &v1(), "k").await, Ok(1));
    }
}
