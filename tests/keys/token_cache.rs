//! The verified-token cache: a repeated token is verified once, yet the
//! expiry, audience and policy checks run on every request.

use std::sync::Arc;

use mfagate::auth::AuthError;
use mfagate::auth::Authenticator;
use mfagate::auth::claims::ClaimChecks;
use mfagate::auth::jwks::KeyStore;
use mfagate::auth::token_cache::TokenCache;
use mfagate::config::Config;
use mfagate::metrics::Metrics;

use crate::support::idp::{Idp, PC_AUDIENCE, now};
use crate::support::{JwksMode, TestEnv, assert_rejected, sample};
use crate::{outcome, wait_for};

const HIT: &str = r#"mfagate_token_cache_total{result="hit"}"#;
const MISS: &str = r#"mfagate_token_cache_total{result="miss"}"#;

#[tokio::test]
async fn a_repeated_token_is_verified_once_and_checked_every_time() {
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(
            r#"[[routes]]
name = "graph"
path_prefix = "/graph"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://graph.microsoft.com"]
"#,
        )
        .start()
        .await;
    let token = env.idp.delegated().mint();
    for _ in 0..5 {
        assert_eq!(outcome(&env, &token).await, (200, "none".into()));
    }
    assert_eq!((env.metric(MISS).await, env.metric(HIT).await), (1.0, 4.0));
    // The same cached token on a route for another audience.
    let rsp = env.get("/graph/me", Some(&token)).await;
    assert_rejected(rsp, 401, "bad_audience").await;
    assert_eq!(env.metric(HIT).await, 5.0, "a hit, and still the audience check");
    // The policy runs on hits too.
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    for _ in 0..2 {
        assert_rejected(env.get("/v1/customers", Some(&no_mfa)).await, 401, "mfa_required").await;
    }
    assert_eq!((env.metric(MISS).await, env.metric(HIT).await), (2.0, 6.0));
    assert_eq!(env.upstream.hits(), 5);
}

#[tokio::test]
async fn an_expired_cached_token_is_rejected() {
    let env = TestEnv::setup().identity("clock_skew_secs = 0").start().await;
    let exp = now() + 2;
    let token = env.idp.delegated().claim("exp", exp).mint();
    assert_eq!(outcome(&env, &token).await, (200, "none".into()));
    wait_for("the token's exp", || async { (now() > exp).then_some(()) }).await;
    let rsp = env.get("/v1/customers", Some(&token)).await;
    let challenge = assert_rejected(rsp, 401, "expired").await.unwrap();
    assert!(challenge.contains(r#"error_description="token expired""#), "{challenge}");
    assert_eq!(env.upstream.hits(), 1);
}

#[tokio::test]
async fn size_zero_disables_the_cache() {
    let env = TestEnv::setup().identity("token_cache_size = 0").start().await;
    let token = env.idp.delegated().mint();
    for _ in 0..3 {
        assert_eq!(outcome(&env, &token).await, (200, "none".into()));
    }
    assert_eq!((env.metric(MISS).await, env.metric(HIT).await), (0.0, 0.0));
}

/// The authenticator with a real key store, driven with chosen clock values:
/// a hit past `exp`, before `nbf` or for another audience is still refused.
#[tokio::test]
async fn a_hit_never_skips_lifetime_or_audience() {
    let idp = Idp::start(JwksMode::Serve).await;
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml(&format!(
        "[identity]\njwks_uri = \"{}\"\nstate_dir = {}\nclock_skew_secs = 0\n\
         [[routes]]\nname = \"pc\"\nupstream = \"https://127.0.0.1:1\"\naudiences = [\"{PC_AUDIENCE}\"]\n",
        idp.url,
        crate::support::toml_str(dir.path()),
    ))
    .unwrap();
    let metrics = Metrics::new().unwrap();
    let keys = Arc::new(KeyStore::new(&config.identity, |name| metrics.jwks_source(name)).unwrap());
    keys.load().await;
    let checks = ClaimChecks {
        issuers: config.identity.issuers.clone(),
        tenants: config.identity.tenants.clone(),
        skew_secs: 0,
    };
    let auth =
        Authenticator::new(keys, checks, 16 * 1024).with_token_cache(TokenCache::new(100, metrics.token_cache()));
    let t = now();
    let token = idp.delegated().claim("nbf", t - 10).claim("exp", t + 600).mint();
    let aud = [PC_AUDIENCE.to_string()];
    let reason = |r: Result<_, (AuthError, Option<_>)>| r.map(|_| ()).map_err(|(e, claims)| (e, claims.is_some()));

    assert_eq!(reason(auth.authenticate(&token, &aud, t).await), Ok(()));
    assert_eq!(reason(auth.authenticate(&token, &aud, t).await), Ok(()));
    assert_eq!(reason(auth.authenticate(&token, &aud, t + 600).await), Err((AuthError::Expired, true)));
    assert_eq!(reason(auth.authenticate(&token, &aud, t - 11).await), Err((AuthError::NotYetValid, true)));
    let graph = ["https://graph.microsoft.com".to_string()];
    assert_eq!(reason(auth.authenticate(&token, &graph, t).await), Err((AuthError::BadAudience, true)));
    let scrape = String::from_utf8(metrics.encode()).unwrap();
    assert_eq!((sample(&scrape, MISS), sample(&scrape, HIT)), (1.0, 4.0), "every call after the first was a hit");
    assert_eq!(idp.hits(), 1, "one key-set fetch, at load");
}
