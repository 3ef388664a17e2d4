//! What is forwarded is what was checked, and every forwarded request is
//! recorded once: headers that retarget a request at the upstream are
//! removed; a client's own framing error is a 400 counted as the client's,
//! never a 502 counted against the upstream; a request whose client goes
//! away before the answer leaves a decision-log line with status 499.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::get_with;
use crate::support::idp::OTHER_TID;
use crate::support::{TestEnv, assert_rejected, raw};

#[tokio::test]
async fn headers_that_retarget_a_request_never_reach_the_upstream() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    let retargeting =
        ["X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"];
    for http1 in [false, true] {
        let mut headers = vec![("authorization", format!("Bearer {token}"))];
        for name in retargeting {
            headers.push((name, "/v1/customers/00000000-0000-0000-0000-000000000000".to_string()));
            headers.push((name, "DELETE".to_string()));
        }
        assert_eq!(get_with(&env, http1, "/v1/customers", &headers).await.status(), 200);
        let seen = env.upstream.last();
        for name in retargeting {
            assert!(!seen.headers.contains_key(name), "{name} was forwarded: {:?}", seen.headers);
        }
        assert_eq!(seen.headers["authorization"], format!("Bearer {token}"));
    }
}

fn chunked(token: &str, body: &str) -> (String, String) {
    let head = format!(
        "POST /v1/collect HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    (head, body.to_string())
}

async fn upstream_errors(env: &TestEnv) -> f64 {
    let mut total = 0.0;
    for kind in ["connect", "connection", "timeout", "target", "body"] {
        total += env.metric(&format!(r#"mfagate_upstream_errors_total{{kind="{kind}",route="partner-center"}}"#)).await;
    }
    total
}

#[tokio::test]
async fn a_clients_framing_error_is_its_own_400() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    let bodies = [
        " 5\r\nhello\r\n0\r\n\r\n",
        "\t5\r\nhello\r\n0\r\n\r\n",
        "+5\r\nhello\r\n0\r\n\r\n",
        "5 x\r\nhello\r\n0\r\n\r\n",
    ];
    for body in bodies {
        // Head and body in one write: refused before anything is forwarded.
        let (head, body) = chunked(&token, body);
        let answer =
            raw::send(env.addr, &env.pki.ca_pem, format!("{head}{body}").as_bytes(), Duration::from_secs(2)).await;
        assert_eq!(answer.status(), Some(400), "{body:?}: {}", answer.text());
        assert_eq!(answer.json().unwrap()["reason"], "bad_request");
    }
    assert_eq!(env.upstream.hits(), 0);
    for body in bodies {
        // The body late, after the request went upstream (which reads it
        // whole before answering, as a JSON API does): still the client's fault.
        let (head, body) = chunked(&token, body);
        let mut tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        tls.write_all(body.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        let answer = raw::read_until_closed(&mut tls, Duration::from_secs(3)).await;
        assert_eq!(answer.status(), Some(400), "late {body:?}: {}", answer.text());
        assert_eq!(answer.json().unwrap()["reason"], "bad_request");
    }
    assert_eq!(upstream_errors(&env).await, 0.0, "not counted against the upstream");
    // Refused before routing (the framing is read first) and after.
    let denied =
        |route: &str| format!(r#"mfagate_requests_total{{decision="deny",reason="bad_request",route="{route}"}}"#);
    assert_eq!(env.metric(&denied("unmatched")).await, 4.0);
    assert_eq!(env.metric(&denied("partner-center")).await, 4.0);
}

#[tokio::test]
async fn a_request_the_client_abandons_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let env =
        TestEnv::setup().more_routes(&format!("[audit]\nsink = \"file\"\npath = \"{}\"", log.display())).start().await;
    let token = env.idp.delegated().mint();
    for http1 in [false, true] {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(env.pki.ca_pem.as_bytes()).unwrap()])
            .no_proxy()
            .timeout(Duration::from_millis(300));
        let client = if http1 { client.http1_only() } else { client }.build().unwrap();
        let sent = client.get(env.url("/delay/1500")).bearer_auth(&token).send().await;
        assert!(sent.is_err(), "the client gives up first");
    }
    let lines = crate::support::eventually("two decision lines", || async {
        std::fs::read_to_string(&log).unwrap_or_default().lines().count() >= 2
    });
    lines.await;
    // Nothing more arrives once the upstream answers the abandoned requests.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in &lines {
        assert_eq!(line["status"], 499, "{line}");
        assert_eq!(line["outcome"], "client_closed", "{line}");
        assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some("allow"), Some("none")));
        assert_eq!(line["oid"], crate::support::idp::OID);
    }
    assert_eq!(env.upstream.hits(), 2, "the upstream saw both");
    let allowed = r#"mfagate_requests_total{decision="allow",reason="none",route="partner-center"}"#;
    assert_eq!(env.metric(allowed).await, 2.0);
}

const STRANGER_TID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// The customer is read from the path as the upstream receives it, the
/// route's base path included: `upstream = ".../v1/customers"` and a request
/// for `/{stranger}/subscriptions` names the stranger.
#[tokio::test]
async fn the_customer_is_read_from_the_path_the_upstream_gets() {
    let env = TestEnv::setup()
        .route("path_prefix = \"/v1\"")
        .more_routes(&format!(
            r#"
[[routes]]
name = "pc-customers"
upstream = "@UPSTREAM@/v1/customers"
upstream_ca = "@CA@"
audiences = ["https://api.partnercenter.microsoft.com"]
customers = [{{ tenant_id = "{OTHER_TID}", ends = "2099-01-01T00:00:00Z" }}]
"#
        ))
        .start()
        .await;
    let token = env.idp.delegated().mint();
    // The related customer goes through, as it should.
    let rsp = env.get(&format!("/{OTHER_TID}/subscriptions"), Some(&token)).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.upstream.last().path_and_query, format!("/v1/customers/{OTHER_TID}/subscriptions"));
    // A customer with no relationship goes through too.
    let rsp = env.get(&format!("/{STRANGER_TID}/subscriptions"), Some(&token)).await;
    let status = rsp.status().as_u16();
    let seen = env.upstream.last().path_and_query;
    assert_eq!((status, env.upstream.hits()), (403, 1), "forwarded to {seen}");
    assert_rejected(rsp, 403, "customer_not_allowed").await;
}

/// IIS and CGI-style servers read `X_Original_URL` as `X-Original-URL`: the
/// retargeting headers are removed in either spelling, over HTTP/1.1 and
/// HTTP/2.
#[tokio::test]
async fn retargeting_headers_spelled_with_underscores_are_removed() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    let spelled = ["X_Original_URL", "X_Rewrite_URL", "X_HTTP_Method_Override", "X_HTTP_Method", "X_Method_Override"];
    let mut leaked = Vec::new();
    for http1 in [true, false] {
        let client = crate::support::client(&env.pki.ca_pem, http1);
        let mut req = client.get(env.url("/v1/customers")).bearer_auth(&token);
        for name in spelled {
            req = req.header(name, format!("/v1/customers/{STRANGER_TID}/subscriptions"));
        }
        let rsp = req.send().await.unwrap();
        if rsp.status() == 200 {
            let seen = env.upstream.last();
            leaked.extend(
                spelled.iter().filter(|n| seen.headers.contains_key(**n)).map(|n| format!("http1={http1} {n}")),
            );
        }
    }
    assert!(leaked.is_empty(), "forwarded: {leaked:?}");
}
