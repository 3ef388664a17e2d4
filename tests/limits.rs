//! Overload and rate limits: past `max_in_flight` or `max_connections` new
//! work gets 503 `overloaded` with `Retry-After` at once, and past the
//! overload allowance connections are closed unanswered; route rate limits
//! answer 429 `rate_limited` per principal, app or tenant; a client address
//! that spends its budget of denied requests is answered 429 without any
//! token work.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use support::idp::OID;
use support::raw;
use support::{TestEnv, assert_rejected, eventually};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn requests_over_max_in_flight_get_503_at_once() {
    let env = TestEnv::setup().server("max_in_flight = 2\nupstream_timeout = \"30s\"").start().await;
    let token = env.idp.delegated().mint();
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (client, url, token) = (env.client.clone(), env.url("/delay/3000"), token.clone());
            tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap().status() })
        })
        .collect();
    eventually("two requests are in flight", || async {
        env.metric(r#"mfagate_requests_in_flight{listener="gateway"}"#).await == 2.0
    })
    .await;

    let rsp = env.get("/v1/customers", Some(&token)).await;
    assert_eq!(rsp.headers()["retry-after"], "1");
    assert!(assert_rejected(rsp, 503, "overloaded").await.is_none(), "no challenge on 503");
    assert_eq!(env.upstream.hits(), 2, "the refused request was not forwarded");
    assert_eq!(env.metric(r#"mfagate_overload_total{limit="max_in_flight"}"#).await, 1.0);
    let denied = r#"mfagate_requests_total{decision="deny",reason="overloaded",route="partner-center"}"#;
    assert_eq!(env.metric(denied).await, 1.0);

    for task in slow {
        assert_eq!(task.await.unwrap(), 200, "requests in flight finish");
    }
    eventually("nothing is in flight", || async {
        env.metric(r#"mfagate_requests_in_flight{listener="gateway"}"#).await == 0.0
    })
    .await;
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
}

/// A TLS connection that is expected to be refused: closed before or right
/// after the handshake.
async fn refused_connection(env: &TestEnv) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(env.pki.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(mfagate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await {
        Err(_) => true,
        Ok(mut tls) => {
            let _ = tls.write_all(b"GET /v1/customers HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
            let answer = raw::read_until_closed(&mut tls, Duration::from_secs(10)).await;
            answer.closed && answer.bytes.is_empty()
        }
    }
}

#[tokio::test]
async fn connections_over_max_connections_get_503_then_are_closed() {
    let env = TestEnv::setup().server("max_connections = 2\nheader_read_timeout = \"20s\"").start().await;
    let token = env.idp.delegated().mint();
    let request = format!("GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    // Two kept-alive connections use the limit up.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
        tls.write_all(request.as_bytes()).await.unwrap();
        let answer = raw::read_head(&mut tls).await;
        assert_eq!(answer.status(), Some(200));
        assert!(!answer.closed);
        held.push(tls);
    }
    assert_eq!(env.metric(r#"mfagate_connections_open{listener="gateway"}"#).await, 2.0);

    // The next one is answered 503 and closed.
    let answer = raw::send(env.addr, &env.pki.ca_pem, request.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(answer.statuses(), [503], "{}", answer.text());
    assert!(answer.closed);
    assert!(answer.text().to_ascii_lowercase().contains("retry-after: 1\r\n"), "{}", answer.text());
    assert_eq!(answer.json().unwrap()["reason"], "overloaded");
    assert_eq!(env.metric(r#"mfagate_overload_total{limit="max_connections"}"#).await, 1.0);

    // The overload allowance (max_connections / 8 + 16 = 16) held open; past it, connections are dropped unanswered.
    let mut overflow = Vec::new();
    for _ in 0..16 {
        overflow.push(raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await);
    }
    assert!(refused_connection(&env).await, "a connection past the allowance was served");
    assert_eq!(env.metric("mfagate_connections_dropped_total").await, 1.0);
    assert_eq!(env.upstream.hits(), 2);

    // Capacity comes back when connections close.
    drop(held);
    drop(overflow);
    eventually("the held connections are gone", || async {
        env.metric(r#"mfagate_connections_open{listener="gateway"}"#).await == 0.0
    })
    .await;
    let answer = raw::send(
        env.addr,
        &env.pki.ca_pem,
        format!("GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n")
            .as_bytes(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(answer.status(), Some(200), "{}", answer.text());
}

#[tokio::test]
async fn route_rate_limits_answer_429_per_key() {
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .route(r#"rate_limits = [{ key = "oid", requests = 2, per = "1h" }]"#)
        .more_routes(
            "[[routes]]\nname = \"tenant-limited\"\npath_prefix = \"/t\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\nrate_limits = [{ key = \"tenant\", requests = 1, per = \"1h\" }]\n",
        )
        .start()
        .await;
    let alice = env.idp.delegated().mint();
    let bob = env.idp.delegated().claim("oid", "5c1b8a0e-0000-4000-8000-00000000000b").mint();
    for _ in 0..2 {
        assert_eq!(env.get("/v1/customers", Some(&alice)).await.status(), 200);
    }
    let rsp = env.get("/v1/customers", Some(&alice)).await;
    let retry: u64 = rsp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=1800).contains(&retry), "Retry-After {retry}");
    assert!(assert_rejected(rsp, 429, "rate_limited").await.is_none());
    assert_eq!(env.upstream.hits(), 2);
    assert_eq!(env.get("/v1/customers", Some(&bob)).await.status(), 200, "another principal has its own budget");

    assert_eq!(env.get("/t/x", Some(&alice)).await.status(), 200);
    assert_rejected(env.get("/t/x", Some(&bob)).await, 429, "rate_limited").await;
    assert_eq!(env.upstream.hits(), 4);

    let scrape = env.metrics().await;
    assert_eq!(support::sample(&scrape, r#"mfagate_rate_limited_total{key="oid",route="partner-center"}"#), 1.0);
    assert_eq!(support::sample(&scrape, r#"mfagate_rate_limited_total{key="tenant",route="tenant-limited"}"#), 1.0);
    let deny = r#"mfagate_requests_total{decision="deny",reason="rate_limited",route="partner-center"}"#;
    assert_eq!(support::sample(&scrape, deny), 1.0);
    assert!(!scrape.contains(OID), "no principal in the metrics");
}

#[tokio::test]
async fn a_flood_of_bad_tokens_is_cut_off_before_token_checks() {
    let env = TestEnv::setup()
        .identity(r#"unknown_kid_refetch_interval = "1ms""#)
        .limits(r#"denied_per_ip = { requests = 3, per = "1h" }"#)
        .start()
        .await;
    // Each unknown kid makes the gateway fetch the key set again: a visible
    // trace of the work a token costs.
    let fetches_before = env.idp.hits();
    for i in 0..4 {
        let token = env.idp.delegated().header("kid", format!("flood-{i}")).mint();
        assert_rejected(env.get("/v1/customers", Some(&token)).await, 401, "unknown_key").await;
    }
    assert_eq!(env.idp.hits(), fetches_before + 4);

    // The budget is spent: no token is looked at, not even a good one.
    for token in [env.idp.delegated().header("kid", "flood-5").mint(), env.idp.delegated().mint()] {
        let rsp = env.get("/v1/customers", Some(&token)).await;
        let retry: u64 = rsp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1);
        assert!(assert_rejected(rsp, 429, "rate_limited").await.is_none());
    }
    assert_eq!(env.idp.hits(), fetches_before + 4, "a blocked address still caused token work");
    assert_eq!(env.upstream.hits(), 0);
    let scrape = env.metrics().await;
    assert_eq!(
        support::sample(&scrape, r#"mfagate_rate_limited_total{key="denied_budget",route="partner-center"}"#),
        2.0
    );
    assert_eq!(support::sample(&scrape, "mfagate_rate_limited_peers"), 1.0);
}

#[tokio::test]
async fn the_in_flight_gauge_counts_what_max_in_flight_counts() {
    let env = TestEnv::setup().server("max_in_flight = 1").start().await;
    let token = env.idp.delegated().mint();
    let in_flight = r#"mfagate_requests_in_flight{listener="gateway"}"#;
    // A download whose body the client does not read: its headers are long
    // sent, its body is still streaming.
    let mut download = env.client.get(env.url("/download/67108864")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let rsp = env.get("/v1/customers", Some(&token)).await;
    assert_rejected(rsp, 503, "overloaded").await;
    assert_eq!(env.metric(in_flight).await, 1.0, "the gauge shows the request that max_in_flight counts");

    while download.chunk().await.unwrap().is_some() {}
    eventually("the download is no longer in flight", || async { env.metric(in_flight).await == 0.0 }).await;
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
}
