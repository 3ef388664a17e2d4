//! The identity provider down, misbehaving, or unreachable at start: the
//! gateway keeps its last good keys for `max_stale`, then answers 503
//! `keys_unavailable`, and recovers by itself; a cold start serves from the
//! saved key set.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::idp::keys;
use crate::support::{JwksMode, TestEnv, assert_rejected, toml_str};
use crate::{outcome, readyz, source_metric, wait_for};

#[tokio::test]
async fn provider_down_serves_cached_keys_until_max_stale_then_503_then_recovers() {
    let env = TestEnv::setup()
        .identity("refresh_interval = \"1s\"\nmax_stale = \"4s\"\nunknown_kid_refetch_interval = \"1s\"")
        .start()
        .await;
    let token = env.idp.delegated().mint();
    assert_eq!(outcome(&env, &token).await, (200, "none".into()));

    env.idp.set_mode(JwksMode::Fail);
    let down = Instant::now();
    wait_for("a failed fetch", || async {
        let failed = source_metric(&env, "mfagate_jwks_fetch_total", "default", r#"result="http_status""#).await;
        (failed >= 1.0).then_some(())
    })
    .await;
    // Within max_stale: served on the cached keys, cached token or not.
    assert_eq!(outcome(&env, &token).await, (200, "none".into()));
    assert_eq!(outcome(&env, &env.idp.delegated().claim("uti", "fresh").mint()).await, (200, "none".into()));
    let (status, body) = readyz(&env).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["keys"], "stale");
    assert_eq!(body["sources"]["default"]["state"], "stale");
    assert_eq!(body["sources"]["default"]["keys"], 2);

    // Past max_stale: fail closed, as our fault.
    let rsp = wait_for("the keys to expire", || async {
        let rsp = env.get("/v1/customers", Some(&token)).await;
        (rsp.status() == 503).then_some(rsp)
    })
    .await;
    assert!(down.elapsed() >= Duration::from_secs(2), "expired after {:?}", down.elapsed());
    assert_eq!(rsp.headers()["retry-after"], "5");
    assert!(assert_rejected(rsp, 503, "keys_unavailable").await.is_none(), "no WWW-Authenticate on a 503");
    let forwarded = env.upstream.hits();
    let fresh = env.idp.delegated().claim("uti", "after").mint();
    assert_rejected(env.get("/v1/customers", Some(&fresh)).await, 503, "keys_unavailable").await;
    assert_rejected(env.get("/v1/customers", Some(&token)).await, 503, "keys_unavailable").await;
    assert_eq!(env.upstream.hits(), forwarded, "nothing reaches the upstream once the keys expired");
    let (status, body) = readyz(&env).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["keys"], "unavailable");
    assert_eq!(body["sources"]["default"]["state"], "expired");
    assert!(source_metric(&env, "mfagate_jwks_age_seconds", "default", "").await >= 2.0);

    // Back: recovers without a restart.
    env.idp.set_mode(JwksMode::Serve);
    wait_for("recovery", || async { (outcome(&env, &token).await.0 == 200).then_some(()) }).await;
    // The request that proved recovery and the readiness report read the
    // key store at different instants: readiness follows within the wait.
    let body = wait_for("ready again", || async {
        let (status, body) = readyz(&env).await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(body["sources"]["default"]["state"], "fresh");
}

/// Previous keys stay, the failure is counted, and no request waits longer
/// than the fetch timeout (1 s here; 10 s is the bound checked).
async fn previous_keys_stay(mode: JwksMode, result: &str) {
    let env = TestEnv::setup()
        .identity("refresh_interval = \"1s\"\nfetch_timeout = \"1s\"\nunknown_kid_refetch_interval = \"1s\"")
        .start()
        .await;
    assert_eq!(outcome(&env, &env.idp.delegated().mint()).await, (200, "none".into()));
    env.idp.set_mode(mode);
    wait_for(&format!("a fetch ending in {result}"), || async {
        let n = source_metric(&env, "mfagate_jwks_fetch_total", "default", &format!("result=\"{result}\"")).await;
        (n >= 1.0).then_some(())
    })
    .await;
    let bound = Duration::from_secs(10);
    for i in 0..3 {
        let token = env.idp.delegated().claim("uti", format!("during-{i}")).mint();
        let answer = tokio::time::timeout(bound, outcome(&env, &token)).await.expect("a known key never waits");
        assert_eq!(answer, (200, "none".into()), "{mode:?}");
        let unknown = env.idp.delegated().header("kid", format!("unknown-{i}")).mint();
        let answer = tokio::time::timeout(bound, outcome(&env, &unknown)).await.expect("bounded by the fetch timeout");
        assert_eq!(answer, (401, "unknown_key".into()), "{mode:?}");
    }
    assert_eq!(source_metric(&env, "mfagate_jwks_keys", "default", "").await, 2.0);
    let (status, body) = readyz(&env).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sources"]["default"]["state"], "stale");
    env.idp.set_mode(JwksMode::Serve);
    wait_for("a good fetch again", || async {
        let (_, body) = readyz(&env).await;
        (body["sources"]["default"]["state"] == "fresh").then_some(())
    })
    .await;
}

#[tokio::test]
async fn provider_answers_garbage() {
    previous_keys_stay(JwksMode::Garbage, "invalid").await;
}

#[tokio::test]
async fn provider_answers_500() {
    previous_keys_stay(JwksMode::Fail, "http_status").await;
}

#[tokio::test]
async fn provider_answers_an_enormous_body() {
    previous_keys_stay(JwksMode::Huge, "too_large").await;
}

#[tokio::test]
async fn provider_streams_an_enormous_body() {
    previous_keys_stay(JwksMode::HugeChunked, "too_large").await;
}

#[tokio::test]
async fn provider_hangs() {
    previous_keys_stay(JwksMode::Hang, "timeout").await;
}

#[tokio::test]
async fn cold_start_with_the_provider_down_serves_the_saved_key_set() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = format!("state_dir = {}", toml_str(state.path()));
    let first = TestEnv::setup().identity(&state_dir).start().await;
    let saved: Value = serde_json::from_slice(&std::fs::read(state.path().join("default.json")).unwrap()).unwrap();
    assert_eq!(saved["source"], "default");
    assert_eq!(saved["origin"], first.idp.url.as_str());
    let mut kids: Vec<&str> =
        saved["keys"].as_array().unwrap().iter().map(|k| k["jwk"]["kid"].as_str().unwrap()).collect();
    kids.sort();
    assert_eq!(kids, ["ec-kid", "primary-kid"]);
    for k in saved["keys"].as_array().unwrap() {
        let members: Vec<&String> = k["jwk"].as_object().unwrap().keys().collect();
        assert!(
            members.iter().all(|m| ["kty", "use", "kid", "n", "e", "crv", "x", "y"].contains(&m.as_str())),
            "{members:?}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.path().join("default.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only the gateway's user reads or writes the saved set: {mode:o}");
    }

    first.idp.set_mode(JwksMode::Fail);
    let second = TestEnv::setup().idp(first.idp.clone()).identity(&state_dir).start().await;
    assert!(source_metric(&second, "mfagate_jwks_fetch_total", "default", r#"result="http_status""#).await >= 1.0);
    let (status, body) = readyz(&second).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sources"]["default"]["state"], "stale");
    assert_eq!(body["sources"]["default"]["keys"], 2);
    assert_eq!(outcome(&second, &second.idp.delegated().mint()).await, (200, "none".into()));
    let ec = second.idp.delegated().header("alg", "ES256").header("kid", "ec-kid").signed_by(&keys().ec).mint();
    assert_eq!(outcome(&second, &ec).await, (200, "none".into()));
    // Back: the saved set is replaced by a fetched one.
    first.idp.set_mode(JwksMode::Serve);
    wait_for("a fetch after the cold start", || async {
        let (_, body) = readyz(&second).await;
        (body["sources"]["default"]["state"] == "fresh").then_some(())
    })
    .await;
}

#[tokio::test]
async fn cold_start_without_a_saved_key_set_is_not_ready() {
    let env = TestEnv::setup().jwks(JwksMode::Fail).start().await;
    let (status, body) = readyz(&env).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["keys"], "unavailable");
    assert_eq!(body["sources"]["default"]["state"], "missing");
    assert_eq!(body["sources"]["default"]["keys"], 0);
    let rsp = env.get("/v1/customers", Some(&env.idp.delegated().mint())).await;
    assert!(assert_rejected(rsp, 503, "keys_unavailable").await.is_none());
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn a_saved_key_set_older_than_max_stale_is_not_used() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = format!("state_dir = {}\nmax_stale = \"1h\"", toml_str(state.path()));
    let first = TestEnv::setup().identity(&state_dir).start().await;
    let path = state.path().join("default.json");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let two_hours_ago = saved["fetched_at"].as_u64().unwrap() - 7200;
    saved["fetched_at"] = two_hours_ago.into();
    std::fs::write(&path, saved.to_string()).unwrap();
    first.idp.set_mode(JwksMode::Fail);
    let second = TestEnv::setup().idp(first.idp.clone()).identity(&state_dir).start().await;
    let (status, body) = readyz(&second).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["sources"]["default"]["state"], "expired");
    assert!(body["sources"]["default"]["age_seconds"].as_u64().unwrap() >= 7200);
    let rsp = second.get("/v1/customers", Some(&second.idp.delegated().mint())).await;
    assert_rejected(rsp, 503, "keys_unavailable").await;
    assert_eq!(second.upstream.hits(), 0);
}
