//! Nothing that affects another caller is keyed on a claim whose signature
//! was not verified: forged tokens naming a victim's `oid` never spend the
//! victim's budget, a limit keyed on claims of a `verify_signature = false`
//! route is refused at load (with the key named), and `key = "peer"` counts
//! by client address on any route.

use std::process::Command;

use crate::support::idp::{OID, keys};
use crate::support::{TestEnv, assert_rejected};

const ONE_PER_HOUR: &str = "rate_limits = [{ key = \"oid\", requests = 2, per = \"1h\" }]";

#[tokio::test]
async fn forged_tokens_do_not_spend_the_victims_budget() {
    // The denied-request budget is off here: it would cut the forger off first.
    let env =
        TestEnv::setup().route(ONE_PER_HOUR).limits("denied_per_ip = { requests = 0, per = \"1s\" }").start().await;
    for i in 0..10 {
        let forged = env.idp.delegated().claim("oid", OID).claim("n", i).signed_by(&keys().rogue).mint();
        assert_rejected(env.get("/v1/customers", Some(&forged)).await, 401, "bad_signature").await;
    }
    let victim = env.idp.delegated().mint();
    for _ in 0..2 {
        assert_eq!(env.get("/v1/customers", Some(&victim)).await.status(), 200, "the victim keeps its budget");
    }
    let rsp = env.get("/v1/customers", Some(&victim)).await;
    assert_rejected(rsp, 429, "rate_limited").await;
    assert_eq!(env.upstream.hits(), 2);
    let counter = r#"mfagate_rate_limited_total{key="oid",route="partner-center"}"#;
    assert_eq!(env.metric(counter).await, 1.0);
}

#[tokio::test]
async fn report_only_forwards_forged_tokens_without_charging_their_oid() {
    let env = TestEnv::setup()
        .route(&format!("mode = \"report-only\"\n{ONE_PER_HOUR}"))
        .limits("denied_per_ip = { requests = 0, per = \"1s\" }")
        .start()
        .await;
    for _ in 0..5 {
        let forged = env.idp.delegated().claim("oid", OID).signed_by(&keys().rogue).mint();
        assert_eq!(env.get("/v1/customers", Some(&forged)).await.status(), 200, "report-only forwards it");
    }
    let victim = env.idp.delegated().mint();
    assert_eq!(env.get("/v1/customers", Some(&victim)).await.status(), 200);
    assert_eq!(env.get("/v1/customers", Some(&victim)).await.status(), 200);
}

#[tokio::test]
async fn limits_by_peer_count_client_addresses() {
    let env = TestEnv::setup()
        .route("path_prefix = \"/v1/\"\nrate_limits = [{ key = \"peer\", requests = 2, per = \"1h\" }]")
        .more_routes(
            r#"
[[routes]]
name = "graph"
path_prefix = "/v1.0"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://graph.microsoft.com"]
verify_signature = false
rate_limits = [{ key = "peer", requests = 1, per = "1h" }]
"#,
        )
        .start()
        .await;
    let token = env.idp.delegated().mint();
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    assert_rejected(env.get("/v1/customers", Some(&token)).await, 429, "rate_limited").await;
    let graph = env.idp.graph_with_nonce().mint();
    assert_eq!(env.get("/v1.0/me", Some(&graph)).await.status(), 200);
    assert_rejected(env.get("/v1.0/me", Some(&graph)).await, 429, "rate_limited").await;
    assert_eq!(env.metric(r#"mfagate_rate_limited_total{key="peer",route="graph"}"#).await, 1.0);
}

#[test]
fn claim_keyed_limits_on_routes_that_do_not_verify_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    for (route, key) in [
        (
            "verify_signature = false\nrate_limits = [{ key = \"oid\", requests = 5, per = \"1m\" }]",
            "routes[0].rate_limits[0].key",
        ),
        (
            "verify_signature = false\nrate_limits = [{ key = \"peer\", requests = 5, per = \"1m\" }, { key = \"tenant\", requests = 5, per = \"1m\" }]",
            "routes[0].rate_limits[1].key",
        ),
        (
            "kind = \"login\"\nrate_limits = [{ key = \"app\", requests = 5, per = \"1m\" }]",
            "routes[0].rate_limits[0].key",
        ),
    ] {
        let config = dir.path().join("mfagate.toml");
        std::fs::write(
            &config,
            format!(
                "[[routes]]\nname = \"graph\"\nupstream = \"https://graph.microsoft.com\"\naudiences = [\"https://graph.microsoft.com\"]\n{route}\n"
            ),
        )
        .unwrap();
        for command in ["check-config", "run"] {
            let out = Command::new(env!("CARGO_BIN_EXE_mfagate"))
                .args([command, "--config", config.to_str().unwrap()])
                .env_remove("MFAGATE_CONFIG")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_ne!(out.status.code(), Some(0), "{command}: {stderr}");
            assert!(stderr.contains(key) && stderr.contains("peer"), "{command}: {stderr}");
        }
    }
}
