//! What could go wrong with a shared store: reloads that keep or change it,
//! passwords with every special character (in the URL, percent-encoded, and
//! from the environment) that must never be shown, a Redis whose scripts
//! were flushed or that turned into a read-only replica, and the egress
//! listener's requests counting against the same buckets.

use std::process::Stdio;

use crate::support::process::Gateway;
use crate::support::redis::Redis;
use crate::support::{self, PC_HOST, TestEnv, assert_rejected};
use crate::{LIMIT_3, binary_config, spend_three, store};

/// The ids of the connections to `redis` other than the one asking.
async fn gateway_connections(redis: &Redis) -> Vec<String> {
    let list: String = redis.cmd(&["CLIENT", "LIST"]).await;
    list.lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")).map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_reload_keeps_the_connection_unless_its_settings_change() {
    let redis = Redis::start().await;
    let env = TestEnv::setup().limits(&store(&redis.url(), "store_timeout = \"2s\"")).route(LIMIT_3).start().await;
    let token = env.idp.delegated().mint();
    for _ in 0..2 {
        assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    }
    let before = gateway_connections(&redis).await;
    assert_eq!(before.len(), 1, "one connection: {before:?}");

    // Other timeout and answer on errors, same server: same connection, same counts.
    let kept = env.config_toml.replace("store_timeout = \"2s\"", "store_timeout = \"3s\"\non_store_error = \"deny\"");
    std::fs::write(&env.config_path, &kept).unwrap();
    env.reloader.reload().await.expect("reloads");
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    assert_rejected(env.get("/v1/customers", Some(&token)).await, 429, "rate_limited").await;
    assert_eq!(gateway_connections(&redis).await, before, "the reload kept the connection");

    // A URL that does not parse is refused by name; the store keeps working.
    for bad in ["http://127.0.0.1:1/", "rediss://127.0.0.1:1/#insecure", "redis://127.0.0.1:1/zero"] {
        let text = kept.replace(&redis.url(), bad);
        std::fs::write(&env.config_path, &text).unwrap();
        let err = env.reloader.reload().await.expect_err(bad);
        assert_eq!(err.key(), Some("limits.redis_url"), "{bad}: {err}");
    }
    assert_rejected(env.get("/v1/customers", Some(&token)).await, 429, "rate_limited").await;
    assert_eq!(gateway_connections(&redis).await, before);

    // Another database: a new connection (the old one closed), new buckets.
    let other_db = kept.replace(&redis.url(), &redis.url().replace("/0", "/1"));
    std::fs::write(&env.config_path, &other_db).unwrap();
    env.reloader.reload().await.expect("reloads");
    spend_three(&env, &token).await;
    let after = gateway_connections(&redis).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "a new connection for new settings");

    // Back to the local store: no connection left.
    let local = other_db.replace("store = \"redis\"", "store = \"local\"");
    std::fs::write(&env.config_path, &local).unwrap();
    env.reloader.reload().await.expect("reloads");
    spend_three(&env, &token).await;
    support::eventually("the connection is closed", || async { gateway_connections(&redis).await.is_empty() }).await;
    assert_eq!(env.metric("mfagate_rate_limit_store_up").await, 1.0);
}

/// Every character a URL gives a meaning to, and a space.
const PASSWORD: &str = "p@ss:w/rd#?%&= +x";

fn encoded(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn passwords_with_special_characters_work_and_are_never_shown() {
    let redis = Redis::start().await;
    let _: String = redis.cmd(&["ACL", "SETUSER", "svc", "on", &format!(">{PASSWORD}"), "~*", "+@all"]).await;
    let _: String = redis.cmd(&["ACL", "SETUSER", "default", "off"]).await;
    let url = format!("redis://svc:{}@127.0.0.1:{}/0", encoded(PASSWORD), redis.port);
    let env = TestEnv::setup().limits(&store(&url, "store_timeout = \"2s\"")).route(LIMIT_3).start().await;
    let token = env.idp.delegated().mint();
    spend_three(&env, &token).await;
    let keys: Vec<String> = redis.cmd_as(Some(("svc", PASSWORD)), &["KEYS", "mfagate:r:*"]).await;
    assert_eq!(keys.len(), 1, "one bucket for one principal: {keys:?}");

    // check-config prints the configuration with the password replaced.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfagate"))
        .args(["check-config", "--config"])
        .arg(&env.config_path)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("redis://svc:(redacted)@127.0.0.1"), "{printed}");
    let secrets = [PASSWORD.to_string(), encoded(PASSWORD), "p@ss".to_string(), "p%40ss".to_string()];
    for secret in &secrets {
        assert!(!printed.contains(secret.as_str()), "check-config shows the password: {printed}");
        assert!(!env.metrics().await.contains(secret.as_str()), "the metrics show the password");
    }

    // The password from the environment, taken as it is; a wrong one is
    // refused by Redis, and neither appears in the logs.
    let config = binary_config(&env, "env-password.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("redis_url = \"{url}\""),
        &format!(
            "redis_url = \"redis://svc@127.0.0.1:{}/0\"\nredis_password_env = \"TEST_REDIS_PASSWORD\"",
            redis.port
        ),
    );
    std::fs::write(&config, &text).unwrap();
    let start = |password: &str| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mfagate"));
        cmd.args(["run", "--config"]).arg(&config).env_remove("RUST_LOG").env("TEST_REDIS_PASSWORD", password);
        cmd.stdin(Stdio::null());
        Gateway::spawn(cmd, "mfagate with the password in the environment")
    };
    let mut gw = start(PASSWORD).await;
    let other = env.idp.delegated().claim("oid", "5c1b8a0e-0000-4000-8000-00000000000b").mint();
    for expected in [200, 200, 200, 429] {
        let rsp = env.client.get(gw.url("/v1/customers")).bearer_auth(&other).send().await.unwrap();
        assert_eq!(rsp.status(), expected);
    }
    let mut wrong = start("not-the-password").await;
    let rsp = env.client.get(wrong.url("/v1/customers")).bearer_auth(&other).send().await.unwrap();
    assert_eq!(rsp.status(), 200, "allowed (on_store_error) when Redis refuses the password");
    assert!(wrong.metric("mfagate_rate_limit_store_errors_total{kind=\"response\"}").await >= 1.0);
    for gw in [&mut gw, &mut wrong] {
        gw.signal("TERM").await;
        gw.exit(std::time::Duration::from_secs(30)).await;
        let logs = serde_json::to_string(&gw.all_lines().await).unwrap();
        for secret in &secrets {
            assert!(!logs.contains(secret.as_str()), "the logs show the password: {logs}");
        }
        assert!(!logs.contains("not-the-password"), "{logs}");
    }
}

#[tokio::test]
async fn flushed_scripts_and_a_read_only_replica() {
    let redis = Redis::start().await;
    let limits = store(&redis.url(), "store_timeout = \"2s\"\non_store_error = \"deny\"");
    let env = TestEnv::setup().limits(&limits).route(LIMIT_3).start().await;
    let token = env.idp.delegated().mint();
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    // The script is loaded again on NOSCRIPT; the count goes on.
    let _: String = redis.cmd(&["SCRIPT", "FLUSH"]).await;
    for _ in 0..2 {
        assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    }
    assert_rejected(env.get("/v1/customers", Some(&token)).await, 429, "rate_limited").await;

    // A replica refuses writes: each request is decided per on_store_error.
    let _: String = redis.cmd(&["REPLICAOF", "127.0.0.1", "1"]).await;
    let other = env.idp.delegated().claim("oid", "5c1b8a0e-0000-4000-8000-00000000000b").mint();
    let rsp = env.get("/v1/customers", Some(&other)).await;
    assert_rejected(rsp, 503, "rate_limit_store_unavailable").await;
    assert!(env.metric(r#"mfagate_rate_limit_store_errors_total{kind="response"}"#).await >= 1.0);
    assert_eq!(env.upstream.hits(), 3);
    let _: String = redis.cmd(&["REPLICAOF", "NO", "ONE"]).await;
    support::eventually("writes are accepted again", || async {
        env.get("/v1/customers", Some(&other)).await.status() == 200
    })
    .await;
}

#[tokio::test]
async fn the_egress_listeners_count_against_the_same_buckets() {
    let redis = Redis::start().await;
    let setup = || {
        TestEnv::setup()
            .route(&format!("host = \"{PC_HOST}\""))
            .route(LIMIT_3)
            .limits(&store(&redis.url(), "store_timeout = \"2s\""))
            .egress("")
    };
    let a = setup().start().await;
    let b = setup().idp(a.idp.clone()).start().await;
    let token = a.idp.delegated().mint();
    let client = |env: &TestEnv| {
        let ca = std::fs::read(env.egress_ca.as_ref().unwrap()).unwrap();
        let proxy = reqwest::Proxy::all(format!("http://{}", env.egress.unwrap())).unwrap();
        let builder = reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()]);
        builder.proxy(proxy).build().unwrap()
    };
    let url = format!("https://{PC_HOST}/v1/customers");
    for (env, expected) in [(&a, 200), (&b, 200), (&a, 200), (&b, 429), (&a, 429)] {
        let rsp = client(env).get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(rsp.status(), expected);
    }
    assert_eq!(a.upstream.hits() + b.upstream.hits(), 3);
}

/// The decisions of one limit (burst 3, 2 per 400 ms, on the address) over
/// a fixed sequence of requests, with each refusal's wait.
async fn sequence(limits: &str) -> Vec<Option<std::time::Duration>> {
    let text = format!(
        "[limits]\n{limits}\n[[routes]]\nname = \"pc\"\nupstream = \"https://api.partnercenter.microsoft.com\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\nrate_limits = [{{ key = \"peer\", requests = 2, per = \"400ms\", burst = 3 }}]\n"
    );
    let config = mfagate::config::Config::from_toml(&text).unwrap();
    let store = mfagate::limit::LimitStore::register(&prometheus::Registry::new()).unwrap();
    let limits = store.limits(&config).unwrap();
    let peer: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let check = || async {
        match limits.admit("pc", None, peer).await {
            Ok(()) => None,
            Err(mfagate::error::Reject::RateLimited(wait)) => Some(wait),
            Err(e) => panic!("{e}"),
        }
    };
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(check().await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    for _ in 0..2 {
        out.push(check().await);
    }
    out
}

#[tokio::test]
async fn a_limit_means_the_same_in_both_stores() {
    let redis = Redis::start().await;
    let local = sequence("").await;
    let shared = sequence(&store(&redis.url(), "store_timeout = \"2s\"")).await;
    let refused = |s: &[Option<std::time::Duration>]| s.iter().map(Option::is_some).collect::<Vec<_>>();
    // A burst of three, then one every 200 ms.
    assert_eq!(refused(&local), [false, false, false, true, false, true], "{local:?}");
    assert_eq!(refused(&shared), refused(&local), "{shared:?} vs {local:?}");
    for (l, s) in local.iter().zip(&shared) {
        if let (Some(l), Some(s)) = (l, s) {
            assert!(l.abs_diff(*s) < std::time::Duration::from_millis(60), "waits {l:?} and {s:?}");
        }
    }
}
