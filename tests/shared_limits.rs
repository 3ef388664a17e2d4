//! Rate limits shared through a real Redis (`[limits] store = "redis"`):
//! two gateway processes count against the same buckets; a Redis that is
//! killed, stopped (SIGSTOP) or answers with errors leaves each request
//! decided per `on_store_error` within `store_timeout`, the gateway serving
//! and ready, and the limits back once Redis is; reloads keep the
//! connection unless its settings change; the password is never shown.

mod support;

use std::time::{Duration, Instant};

use support::process::Gateway;
use support::redis::Redis;
use support::{TestEnv, assert_rejected, eventually};

const LIMIT_5: &str = r#"rate_limits = [{ key = "oid", requests = 5, per = "1m" }]"#;

/// `[limits]` for the Redis at `url`.
fn store(url: &str, extra: &str) -> String {
    format!("store = \"redis\"\nredis_url = \"{url}\"\n{extra}")
}

/// The test's configuration as a file for a gateway process (JSON logs).
fn binary_config(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let path = env.path(name);
    std::fs::write(&path, format!("{}\n[log]\nformat = \"json\"\n", env.config_toml)).unwrap();
    path
}

/// A gateway process named `instance`, writing its decision log to `log`.
async fn replica(config: &std::path::Path, instance: &str, log: &std::path::Path) -> Gateway {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mfagate"));
    cmd.args(["run", "--config"]).arg(config).env_remove("RUST_LOG");
    cmd.env("MFAGATE__SERVER__INSTANCE", instance).env("MFAGATE__AUDIT__SINK", "file").env("MFAGATE__AUDIT__PATH", log);
    Gateway::spawn(cmd, instance).await
}

/// `mfagate ARGS`: its exit code and standard output.
async fn mfagate(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mfagate")).args(args).output().await.unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn two_gateways_share_a_route_limit_and_their_logs_merge() {
    let redis = Redis::start().await;
    let env = TestEnv::setup().limits(&store(&redis.url(), "store_timeout = \"2s\"")).route(LIMIT_5).start().await;
    let config = binary_config(&env, "binary.toml");
    let (log_a, log_b) = (env.path("a.jsonl"), env.path("b.jsonl"));
    let (mut a, mut b) = (replica(&config, "replica-a", &log_a).await, replica(&config, "replica-b", &log_b).await);
    let token = env.idp.delegated().mint();
    let mut statuses = Vec::new();
    for i in 0..20 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let rsp = env.client.get(gw.url("/v1/customers")).bearer_auth(&token).send().await.unwrap();
        statuses.push(rsp.status().as_u16());
        if rsp.status() == 429 {
            assert_rejected(rsp, 429, "rate_limited").await;
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15, "{statuses:?}");
    assert_eq!(env.upstream.hits(), 5, "exactly five requests reached the upstream");
    let counted = a.metric(r#"mfagate_rate_limited_total{key="oid",route="partner-center"}"#).await
        + b.metric(r#"mfagate_rate_limited_total{key="oid",route="partner-center"}"#).await;
    assert_eq!(counted, 15.0);
    for gw in [&a, &b] {
        assert_eq!(gw.metric("mfagate_rate_limit_store_up").await, 1.0);
        assert!(gw.metric("mfagate_rate_limit_store_seconds_count").await >= 10.0);
    }

    // Each replica's records carry its name; report and replay read both
    // logs as one, in time order.
    for gw in [&mut a, &mut b] {
        gw.signal("TERM").await;
        gw.exit(Duration::from_secs(30)).await;
    }
    for (log, instance) in [(&log_a, "replica-a"), (&log_b, "replica-b")] {
        let text = std::fs::read_to_string(log).unwrap();
        assert_eq!(text.lines().count(), 10, "{text}");
        for line in text.lines() {
            assert_eq!(serde_json::from_str::<serde_json::Value>(line).unwrap()["instance"], instance, "{line}");
        }
    }
    let (code, out) =
        mfagate(&["report".as_ref(), "--format".as_ref(), "json".as_ref(), log_a.as_ref(), log_b.as_ref()]).await;
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["records"], 20, "{out}");
    let replay =
        ["replay".as_ref(), "--config".as_ref(), config.as_os_str(), "--json".as_ref(), log_a.as_ref(), log_b.as_ref()];
    let (code, out) = mfagate(&replay).await;
    assert_eq!(code, 0, "{out}");
    let replayed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(replayed["records"], 20, "{out}");
}

#[tokio::test]
async fn two_gateways_share_the_denied_request_budget() {
    let redis = Redis::start().await;
    let limits = store(&redis.url(), "store_timeout = \"2s\"\ndenied_per_ip = { requests = 3, per = \"1h\" }");
    let env = TestEnv::setup().limits(&limits).start().await;
    let config = binary_config(&env, "binary.toml");
    let (a, b) = (Gateway::start(&config).await, Gateway::start(&config).await);
    let bad = env.idp.delegated().claim("aud", "https://elsewhere.example").mint();
    let mut statuses = Vec::new();
    for i in 0..10 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let rsp = env.client.get(gw.url("/v1/customers")).bearer_auth(&bad).send().await.unwrap();
        statuses.push(rsp.status().as_u16());
    }
    // Three denied requests are the budget, the fourth spends it: from then
    // on both gateways refuse the address before looking at its token.
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429, 429, 429, 429]);
    let good = env.idp.delegated().mint();
    for gw in [&a, &b] {
        let rsp = env.client.get(gw.url("/v1/customers")).bearer_auth(&good).send().await.unwrap();
        assert_rejected(rsp, 429, "rate_limited").await;
    }
    assert_eq!(env.upstream.hits(), 0);
}

/// Sends one request with `token` and returns the answer and how long it took.
async fn timed(env: &TestEnv, token: &str) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let rsp = env.get("/v1/customers", Some(token)).await;
    (rsp, started.elapsed())
}

/// Uses up a limit of 3: three forwarded, the fourth refused.
async fn spend_three(env: &TestEnv, token: &str) {
    for _ in 0..3 {
        assert_eq!(env.get("/v1/customers", Some(token)).await.status(), 200);
    }
    assert_rejected(env.get("/v1/customers", Some(token)).await, 429, "rate_limited").await;
}

pub const LIMIT_3: &str = r#"rate_limits = [{ key = "oid", requests = 3, per = "1h" }]"#;

#[tokio::test]
async fn redis_killed_with_allow_forwards_then_limits_again_once_back() {
    let mut redis = Redis::start().await;
    let limits = store(&redis.url(), "store_timeout = \"500ms\"\non_store_error = \"allow\"");
    let env = TestEnv::setup().limits(&limits).route(LIMIT_3).start().await;
    let token = env.idp.delegated().mint();
    spend_three(&env, &token).await;
    assert_eq!(env.upstream.hits(), 3);

    redis.kill().await;
    for _ in 0..5 {
        let (rsp, took) = timed(&env, &token).await;
        assert_eq!(rsp.status(), 200, "allowed while the store is away");
        assert!(took < Duration::from_millis(1500), "waited {took:?}");
    }
    assert_eq!(env.upstream.hits(), 8);
    let scrape = env.metrics().await;
    assert_eq!(support::sample(&scrape, "mfagate_rate_limit_store_up"), 0.0);
    let errors: f64 = ["timeout", "connection", "response", "down"]
        .iter()
        .map(|k| support::sample(&scrape, &format!("mfagate_rate_limit_store_errors_total{{kind=\"{k}\"}}")))
        .sum();
    assert!(errors >= 5.0, "{scrape}");
    assert_eq!(reqwest::get(env.admin_url("/readyz")).await.unwrap().status(), 200, "still ready");

    redis.restart().await;
    eventually("the store is back", || async { env.metric("mfagate_rate_limit_store_up").await == 1.0 }).await;
    // The new Redis is empty: the limit counts from zero again, and holds.
    spend_three(&env, &token).await;
}

#[tokio::test]
async fn redis_killed_with_deny_answers_503_then_limits_again_once_back() {
    let mut redis = Redis::start().await;
    let limits = store(&redis.url(), "store_timeout = \"500ms\"\non_store_error = \"deny\"");
    let env = TestEnv::setup().limits(&limits).route(LIMIT_3).start().await;
    let token = env.idp.delegated().mint();
    spend_three(&env, &token).await;

    redis.kill().await;
    for _ in 0..5 {
        let (rsp, took) = timed(&env, &token).await;
        assert!(took < Duration::from_millis(1500), "waited {took:?}");
        assert_eq!(rsp.headers()["retry-after"], "1");
        assert!(assert_rejected(rsp, 503, "rate_limit_store_unavailable").await.is_none());
    }
    assert_eq!(env.upstream.hits(), 3, "nothing was forwarded while the store was away");
    let deny =
        r#"mfagate_requests_total{decision="deny",reason="rate_limit_store_unavailable",route="partner-center"}"#;
    assert_eq!(env.metric(deny).await, 5.0);
    assert_eq!(reqwest::get(env.admin_url("/readyz")).await.unwrap().status(), 200, "still ready");

    redis.restart().await;
    eventually("the store is back", || async { env.metric("mfagate_rate_limit_store_up").await == 1.0 }).await;
    spend_three(&env, &token).await;
    assert_eq!(env.upstream.hits(), 6);
}

#[tokio::test]
async fn a_stopped_redis_costs_at_most_store_timeout() {
    let redis = Redis::start().await;
    let limits = store(&redis.url(), "store_timeout = \"400ms\"\non_store_error = \"deny\"");
    let env = TestEnv::setup().limits(&limits).route(LIMIT_3).start().await;
    let token = env.idp.delegated().mint();
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);

    // Accepts connections (the kernel does), never answers.
    redis.signal("STOP").await;
    let (rsp, took) = timed(&env, &token).await;
    assert!(took >= Duration::from_millis(350), "the store was not asked? {took:?}");
    assert!(took < Duration::from_millis(1400), "waited past store_timeout: {took:?}");
    assert_rejected(rsp, 503, "rate_limit_store_unavailable").await;
    assert_eq!(env.metric(r#"mfagate_rate_limit_store_errors_total{kind="timeout"}"#).await, 1.0);
    // Known to be down: the next requests do not wait at all.
    for _ in 0..5 {
        let (rsp, took) = timed(&env, &token).await;
        assert!(took < Duration::from_millis(300), "waited {took:?}");
        assert_rejected(rsp, 503, "rate_limit_store_unavailable").await;
    }
    assert!(env.metric(r#"mfagate_rate_limit_store_errors_total{kind="down"}"#).await >= 5.0);
    assert_eq!(env.upstream.hits(), 1);

    redis.signal("CONT").await;
    eventually("the store is back", || async { env.metric("mfagate_rate_limit_store_up").await == 1.0 }).await;
    // The stopped Redis kept its count: one forwarded before, two more now.
    for _ in 0..2 {
        assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    }
    assert_rejected(env.get("/v1/customers", Some(&token)).await, 429, "rate_limited").await;
}

#[path = "shared_limits/redteam.rs"]
mod redteam;
