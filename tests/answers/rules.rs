//! The request check that refused a request is named by a short, stable
//! rule in the decision log (`rule`) and in the `decision` log line, next to
//! `reason = "bad_request"`; never the request's own text.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::setup;
use crate::support::process::Gateway;
use crate::support::{raw, toml_str};

/// Reads the decision log until it holds `n` lines.
async fn lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        }
        assert!(Instant::now() < deadline, "the decision log has {} of {n} lines", text.lines().count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_decision_log_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let env = setup().more_routes(&format!("[audit]\nsink = \"file\"\npath = {}", toml_str(&log))).start().await;
    let token = env.idp.aobo().mint();
    let request = format!("GET /v1.0/%2e%2e/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    let answer = raw::send(env.addr, &env.pki.ca_pem, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(answer.status(), Some(400));
    let rsp = env.client.get(env.url("/v1.0/me?access_token=x")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(rsp.status(), 400);
    let no_mfa = env.idp.aobo().amr(&["pwd"]).mint();
    assert_eq!(env.client.get(env.url("/v1.0/me")).bearer_auth(&no_mfa).send().await.unwrap().status(), 401);
    let rsp = env
        .client
        .post(env.url("/organizations/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-16")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(rsp.status(), 400);

    let records = lines(&log, 4).await;
    let seen: Vec<_> = records
        .iter()
        .map(|r| (r["route"].as_str().unwrap(), r["reason"].as_str().unwrap(), r["rule"].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("unmatched", "bad_request", Some("dot_segment")),
            ("graph", "bad_request", Some("stray_access_token")),
            ("graph", "mfa_required", None),
            ("login", "bad_request", Some("token_request_charset")),
        ]
    );
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn the_decision_line_names_the_rule() {
    let env = setup().start().await;
    let config = env.path("binary.toml");
    std::fs::write(&config, format!("{}\n[log]\nformat = \"json\"\n", env.config_toml)).unwrap();
    let mut gw = Gateway::start(&config).await;
    let addr = gw.listen.parse().unwrap();
    let token = env.idp.aobo().mint();
    let request = format!(
        "GET /v1.0/me%2Fx HTTP/1.1\r\nHost: localhost\r\nX_Forwarded_For: 1.2.3.4\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let answer = raw::send(addr, &env.pki.ca_pem, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(answer.status(), Some(400), "{}", answer.text());
    let line = gw.wait_for("decision").await;
    assert_eq!(
        (line["reason"].as_str(), line["rule"].as_str()),
        (Some("bad_request"), Some("underscore_header")),
        "{line}"
    );
    let request = format!("GET /v1.0/me%2Fx HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    raw::send(addr, &env.pki.ca_pem, request.as_bytes(), Duration::from_secs(5)).await;
    let line = gw.wait_for("decision").await;
    assert_eq!(line["rule"], "encoded_slash", "{line}");
    let text = line.to_string();
    assert!(!text.contains("me%2Fx") && !text.contains("1.2.3.4"), "the request's own text is never logged: {text}");
    assert_eq!(env.upstream.hits(), 0);
}
