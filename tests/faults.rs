//! A faulty upstream: one that never answers or answers late gives 504, one
//! that answers garbage or resets gives 502, one that breaks off or stalls in
//! the middle of its body aborts the client's response (never a truncated body
//! that looks complete); every case is counted, and no connection is left
//! behind on either side.

mod support;

use support::faulty::Faulty;
use support::pki::{self, Pki};
use support::{TestEnv, assert_rejected, eventually};

async fn env() -> (TestEnv, Faulty, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let leaf = pki.leaf(dir.path(), "faulty", &["localhost", "127.0.0.1"]);
    let faulty = Faulty::start(pki::server_config(&leaf)).await;
    let env = TestEnv::setup()
        .server("upstream_timeout = \"1s\"\nupstream_idle_timeout = \"1s\"\nupstream_connect_timeout = \"1s\"")
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!(
            "[[routes]]\nname = \"faulty\"\npath_prefix = \"/\"\nupstream = \"https://127.0.0.1:{}\"\nupstream_ca = \"{}\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\n",
            faulty.addr.port(),
            pki.ca_path.display()
        ))
        .start()
        .await;
    (env, faulty, dir)
}

async fn upstream_errors(env: &TestEnv, kind: &str) -> f64 {
    env.metric(&format!(r#"mfagate_upstream_errors_total{{kind="{kind}",route="faulty"}}"#)).await
}

#[tokio::test]
async fn faulty_upstreams_give_502_or_504_and_are_counted() {
    let (env, faulty, _dir) = env().await;
    let token = env.idp.delegated().mint();
    let clients = [support::client(&env.pki.ca_pem, true), support::client(&env.pki.ca_pem, false)];
    for client in &clients {
        for (path, status, reason) in [
            ("/never", 504, "upstream_timeout"),
            ("/late", 504, "upstream_timeout"),
            ("/garbage", 502, "upstream_unavailable"),
            ("/reset", 502, "upstream_unavailable"),
        ] {
            let rsp = client.get(env.url(path)).bearer_auth(&token).send().await.unwrap();
            assert!(assert_rejected(rsp, status, reason).await.is_none(), "{path}");
        }
        for path in ["/reset-mid-body", "/stall-mid-body"] {
            let rsp = client.get(env.url(path)).bearer_auth(&token).send().await.unwrap();
            assert_eq!(rsp.status(), 200, "{path}: the headers were already passed on");
            assert_eq!(rsp.headers()["content-length"], "100000", "{path}");
            let body = rsp.bytes().await;
            assert!(
                body.is_err(),
                "{path}: a cut-off body was delivered as complete ({:?} bytes)",
                body.map(|b| b.len())
            );
        }
    }
    assert_eq!(upstream_errors(&env, "timeout").await, 4.0);
    assert_eq!(upstream_errors(&env, "connection").await, 4.0);
    assert_eq!(upstream_errors(&env, "body").await, 4.0);
    assert_eq!(faulty.requests(), 12);

    // Nothing leaks: the upstream's connections close, and so do the client's once it goes.
    eventually("the faulty upstream's connections are closed", || async { faulty.open() == 0 }).await;
    drop(clients);
    eventually("the clients' connections are closed", || async {
        env.metric(r#"mfagate_connections_open{listener="gateway"}"#).await == 0.0
            && env.metric(r#"mfagate_requests_in_flight{listener="gateway"}"#).await == 0.0
    })
    .await;

    // And the gateway still serves, through the same upstream.
    let rsp = env.get("/ok", Some(&token)).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.text().await.unwrap(), "fine!");
}

#[tokio::test]
async fn a_dead_upstream_is_counted_without_waiting() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let env = TestEnv::setup()
        .server("upstream_connect_timeout = \"1s\"")
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!(
            "[[routes]]\nname = \"faulty\"\npath_prefix = \"/\"\nupstream = \"https://127.0.0.1:{port}\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\n"
        ))
        .start()
        .await;
    let token = env.idp.delegated().mint();
    for _ in 0..20 {
        assert_rejected(env.get("/x", Some(&token)).await, 502, "upstream_unavailable").await;
    }
    assert_eq!(upstream_errors(&env, "connect").await, 20.0);
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200, "other routes are unaffected");
}

#[tokio::test]
async fn a_slow_reader_is_not_mistaken_for_a_stalled_upstream() {
    let env = TestEnv::setup().server("upstream_idle_timeout = \"1s\"").start().await;
    let token = env.idp.delegated().mint();
    const SIZE: usize = 16 * 1024 * 1024;
    for client in [support::client(&env.pki.ca_pem, true), support::client(&env.pki.ca_pem, false)] {
        let mut rsp = client.get(env.url(&format!("/download/{SIZE}"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(rsp.status(), 200);
        let mut got = rsp.chunk().await.unwrap().map_or(0, |c| c.len());
        // The client stops reading for longer than the upstream idle timeout;
        // the upstream is blocked by backpressure, not stalled.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        while let Some(chunk) = rsp.chunk().await.expect("the body continues") {
            got += chunk.len();
        }
        assert_eq!(got, SIZE);
    }
    assert_eq!(env.metric(r#"mfagate_upstream_errors_total{kind="body",route="partner-center"}"#).await, 0.0);
}
