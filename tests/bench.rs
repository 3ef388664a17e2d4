//! The load benchmarks' gateway wrapper (`benches/harness-gateway.sh`) run as
//! a benchmark harness runs it: `GW_*` variables in, a gateway out that
//! enforces the configured issuer, audience and MFA, logs its decisions, and
//! verifies every token when `MFAGATE__IDENTITY__TOKEN_CACHE_SIZE=0` is given.

mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use support::idp::{self, Idp, JwksMode, OTHER_TID, PC_AUDIENCE, TID};
use support::{Pki, assert_rejected, client, sample, serve};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WRAPPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/harness-gateway.sh");

struct Harness {
    dir: tempfile::TempDir,
    pki: Pki,
    upstream: String,
    hits: Arc<AtomicUsize>,
}

struct Gateway {
    child: Child,
    url: String,
    admin: String,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let addr = serve::http(None, move |_req| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Response::new(Full::new(Bytes::from_static(b"{\"status\":\"ok\"}"))) }
        })
        .await;
        std::fs::write(dir.path().join("jwks.json"), idp::jwks_document().to_string()).unwrap();
        Self { dir, pki, upstream: format!("http://{addr}"), hits }
    }

    /// Starts the wrapper with the contract's variables (and `extra`), and
    /// waits for the gateway to say where it listens.
    async fn start(&self, extra: &[(&str, &str)]) -> Gateway {
        let leaf = self.pki.leaf(self.dir.path(), "server", &["localhost", "127.0.0.1"]);
        let mut cmd = Command::new("bash");
        cmd.arg(WRAPPER)
            .env("GW_LISTEN", "127.0.0.1:0")
            .env("GW_TLS_CERT", &leaf.cert_path)
            .env("GW_TLS_KEY", &leaf.key_path)
            .env("GW_UPSTREAM_URL", &self.upstream)
            .env("GW_JWKS_FILE", self.dir.path().join("jwks.json"))
            .env("GW_ISSUER", format!("https://sts.windows.net/{TID}/"))
            .env("GW_AUDIENCE", PC_AUDIENCE)
            .env("GW_REQUIRED_AMR", "mfa")
            .env("GW_WORKERS", "1")
            .env("MFAGATE_BIN", env!("CARGO_BIN_EXE_mfagate"))
            .env("MFAGATE_BENCH_AUDIT", self.dir.path().join("audit.jsonl"))
            .env("MFAGATE__LOG__FORMAT", "json")
            .env_remove("MFAGATE_CONFIG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let started = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let line = lines.next_line().await.unwrap().expect("the gateway exited before it started");
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if v["message"] == "mfagate started" {
                    return v;
                }
            }
        })
        .await
        .expect("the gateway did not start");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Gateway {
            child,
            url: format!("https://{}", started["listen"].as_str().unwrap()),
            admin: format!("http://{}", started["admin"].as_str().unwrap()),
        }
    }
}

impl Gateway {
    async fn get(&self, client: &reqwest::Client, token: Option<&str>) -> reqwest::Response {
        let mut req = client.get(format!("{}/v1/customers", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin)).await.unwrap().text().await.unwrap()
    }

    /// SIGTERM, so that the decision log is flushed, then wait for the exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("running").to_string();
        let status = Command::new(support::setup::program("kill")).args(["-TERM", &pid]).status().await.unwrap();
        assert!(status.success());
        let exited = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        assert!(exited.expect("the gateway did not stop on SIGTERM").unwrap().success());
    }
}

#[tokio::test]
async fn the_wrapper_maps_the_contract_onto_a_fully_enforcing_gateway() {
    let h = Harness::new().await;
    let gw = h.start(&[]).await;
    let client = client(&h.pki.ca_pem, true);
    let issuer = Idp::start(JwksMode::Serve).await;

    let valid = issuer.delegated().mint();
    for _ in 0..2 {
        assert_eq!(gw.get(&client, Some(&valid)).await.status(), 200);
    }
    assert_eq!(h.hits.load(Ordering::SeqCst), 2);

    // GW_REQUIRED_AMR, GW_ISSUER, GW_AUDIENCE and a token at all.
    let nomfa = issuer.delegated().amr(&["pwd"]).mint();
    assert_rejected(gw.get(&client, Some(&nomfa)).await, 401, "mfa_required").await;
    let foreign = issuer.delegated().tenant(OTHER_TID).mint();
    assert_rejected(gw.get(&client, Some(&foreign)).await, 401, "bad_issuer").await;
    let graph = issuer.delegated().claim("aud", idp::GRAPH_AUDIENCE).mint();
    assert_rejected(gw.get(&client, Some(&graph)).await, 401, "bad_audience").await;
    assert_rejected(gw.get(&client, None).await, 401, "missing_token").await;
    assert_eq!(h.hits.load(Ordering::SeqCst), 2, "no rejected request reached the upstream");

    let scrape = gw.metrics().await;
    assert_eq!(sample(&scrape, r#"mfagate_token_cache_total{result="hit"}"#), 1.0);
    assert_eq!(
        sample(&scrape, r#"mfagate_requests_total{decision="allow",reason="none",route="partner-center"}"#),
        2.0
    );
    gw.stop().await;

    // The decision log was on: one line per decision, written by the time the gateway is gone.
    let audit = std::fs::read_to_string(h.dir.path().join("audit.jsonl")).unwrap();
    let decisions: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let reasons: Vec<&str> = decisions.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["none", "none", "mfa_required", "bad_issuer", "bad_audience", "missing_token"]);
}

#[tokio::test]
async fn a_cache_size_of_zero_verifies_every_token() {
    let h = Harness::new().await;
    let gw = h.start(&[("MFAGATE__IDENTITY__TOKEN_CACHE_SIZE", "0")]).await;
    let client = client(&h.pki.ca_pem, true);
    let token = Idp::start(JwksMode::Serve).await.delegated().mint();
    for _ in 0..3 {
        assert_eq!(gw.get(&client, Some(&token)).await.status(), 200);
    }
    let scrape = gw.metrics().await;
    assert_eq!(sample(&scrape, r#"mfagate_token_cache_total{result="hit"}"#), 0.0);
    assert_eq!(sample(&scrape, r#"mfagate_token_cache_total{result="miss"}"#), 0.0);
    assert_eq!(
        sample(&scrape, r#"mfagate_requests_total{decision="allow",reason="none",route="partner-center"}"#),
        3.0
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_missing_variable_is_named() {
    let out = Command::new("bash")
        .arg(WRAPPER)
        .env_remove("GW_LISTEN")
        .env("MFAGATE_BIN", env!("CARGO_BIN_EXE_mfagate"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GW_LISTEN is not set"));
}

/// The load scripts are not run by `cargo test` (they take minutes), but
/// they must parse.
#[tokio::test]
async fn the_load_scripts_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches");
    let mut scripts: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 4, "{scripts:?}");
    for script in scripts {
        let out = Command::new("bash").arg("-n").arg(&script).output().await.unwrap();
        assert!(out.status.success(), "{}: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
}
