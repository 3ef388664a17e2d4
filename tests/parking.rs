//! Idle HTTP/1.1 connections are parked: after a second with nothing of a
//! next request sent, a connection gives up its HTTP buffers, and answers
//! its next request as before. Bytes a client sent before or while the
//! connection was parked are never lost, reordered or read as a request
//! when they are part of one.

mod support;

use std::time::Duration;

use support::raw;
use support::{TestEnv, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const PARKED: &str = r#"mfagate_connections_parked{listener="gateway"}"#;

async fn env() -> TestEnv {
    TestEnv::setup().server("header_read_timeout = \"10s\"\nkeep_alive_timeout = \"30s\"").start().await
}

fn get(token: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n")
}

/// Reads `n` whole responses (each with a Content-Length body): their
/// statuses and heads.
async fn responses(tls: &mut TlsStream<TcpStream>, n: usize) -> Vec<(u16, String)> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let head = &text[..head_end];
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if bytes.len() >= head_end + 4 + length {
                out.push((head[9..12].parse().unwrap(), head.to_string()));
                bytes.drain(..head_end + 4 + length);
                continue;
            }
        }
        match tokio::time::timeout_at(deadline, tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => panic!("closed after {} of {n} responses: {:?}", out.len(), text),
            Ok(Ok(k)) => bytes.extend_from_slice(&buf[..k]),
            Err(_) => panic!("timed out after {} of {n} responses: {:?}", out.len(), text),
        }
    }
    out
}

async fn parked(env: &TestEnv, n: f64) {
    eventually(&format!("{n} connection(s) parked"), || async { env.metric(PARKED).await == n }).await;
}

#[tokio::test]
async fn an_idle_connection_is_parked_and_answers_its_next_requests() {
    let env = env().await;
    let token = env.idp.delegated().mint();
    let mut tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    tls.write_all(get(&token, "/v1/customers?first").as_bytes()).await.unwrap();
    assert_eq!(responses(&mut tls, 1).await[0].0, 200);
    parked(&env, 1.0).await;

    // Two requests in one write wake it: both answered, in order.
    let two = get(&token, "/v1/customers?second") + &get(&token, "/v1/customers?third");
    tls.write_all(two.as_bytes()).await.unwrap();
    let answers = responses(&mut tls, 2).await;
    assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), [200, 200]);
    assert_eq!(env.upstream.hits(), 3);
    assert_eq!(env.upstream.last().path_and_query, "/v1/customers?third");

    // Parked again, and again woken, a byte at a time.
    parked(&env, 1.0).await;
    tls.get_ref().0.set_nodelay(true).unwrap();
    let next = get(&token, "/v1/customers?fourth");
    let (bytewise, rest) = next.split_at(40);
    for byte in bytewise.bytes() {
        tls.write_all(&[byte]).await.unwrap();
        tls.flush().await.unwrap();
    }
    tls.write_all(rest.as_bytes()).await.unwrap();
    assert_eq!(responses(&mut tls, 1).await[0].0, 200);
    assert_eq!(env.upstream.hits(), 4);
    assert_eq!(env.upstream.last().path_and_query, "/v1/customers?fourth");
}

#[tokio::test]
async fn a_connection_with_part_of_a_request_sent_is_not_parked() {
    let env = env().await;
    let token = env.idp.delegated().mint();
    let mut tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    tls.write_all(get(&token, "/v1/customers").as_bytes()).await.unwrap();
    assert_eq!(responses(&mut tls, 1).await[0].0, 200);
    parked(&env, 1.0).await;

    // Half a head wakes it; it stays awake while the head is unfinished.
    let next = get(&token, "/v1/customers?slow");
    let (first, rest) = next.split_at(20);
    tls.write_all(first.as_bytes()).await.unwrap();
    parked(&env, 0.0).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(env.metric(PARKED).await, 0.0, "parked with half a head sent");
    tls.write_all(rest.as_bytes()).await.unwrap();
    assert_eq!(responses(&mut tls, 1).await[0].0, 200);
    assert_eq!(env.upstream.last().path_and_query, "/v1/customers?slow");
}

#[tokio::test]
async fn the_unread_body_of_a_refused_request_is_never_read_as_a_request() {
    let env = env().await;
    let token = env.idp.delegated().mint();
    let mut tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    // A refused request (no token) whose body is a request of its own, sent
    // in two parts with more than the park delay between them.
    let inner = get(&token, "/v1/customers?smuggled");
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        inner.len() + 8
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(b"padding:").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    tls.write_all(inner.as_bytes()).await.unwrap();
    let answer = raw::read_until_closed(&mut tls, Duration::from_secs(3)).await;
    let statuses = answer.statuses();
    assert_eq!(statuses.first(), Some(&401), "{}", answer.text());
    assert!(!statuses.contains(&200), "a body byte was read as a request: {}", answer.text());
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn a_parked_connection_is_closed_when_idle_for_the_keep_alive_timeout() {
    let env = TestEnv::setup().server("keep_alive_timeout = \"2s\"").start().await;
    let token = env.idp.delegated().mint();
    let mut tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    tls.write_all(get(&token, "/v1/customers").as_bytes()).await.unwrap();
    assert_eq!(responses(&mut tls, 1).await[0].0, 200);
    parked(&env, 1.0).await;
    let started = tokio::time::Instant::now();
    let answer = raw::read_until_closed(&mut tls, Duration::from_secs(20)).await;
    assert!(answer.closed && answer.bytes.is_empty(), "{}", answer.text());
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    parked(&env, 0.0).await;
    eventually("the connection is closed", || async {
        env.metric(r#"mfagate_connections_open{listener="gateway"}"#).await == 0.0
    })
    .await;
}

#[tokio::test]
async fn a_parked_connection_waits_no_longer_than_the_header_timeout_for_a_request() {
    let env = TestEnv::setup().server("header_read_timeout = \"2s\"\nkeep_alive_timeout = \"30s\"").start().await;
    let token = env.idp.delegated().mint();
    // One that served a request, and one that never sent any.
    let mut used = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    used.write_all(get(&token, "/v1/customers").as_bytes()).await.unwrap();
    assert_eq!(responses(&mut used, 1).await[0].0, 200);
    let mut unused = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    let started = tokio::time::Instant::now();
    for (tls, what) in [(&mut used, "after a request"), (&mut unused, "without a request")] {
        let answer = raw::read_until_closed(tls, Duration::from_secs(20)).await;
        assert!(answer.closed, "{what}: still open after 20 s");
        assert!(started.elapsed() < Duration::from_secs(6), "{what}: closed after {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn an_empty_line_after_a_request_does_not_keep_the_connection_from_parking() {
    let env = env().await;
    let token = env.idp.delegated().mint();
    let mut tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    // Some clients send CRLF after a POST body (RFC 9112 §2.2).
    let post = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\na=1\r\n"
    );
    tls.write_all(post.as_bytes()).await.unwrap();
    assert_eq!(responses(&mut tls, 1).await[0].0, 200);
    parked(&env, 1.0).await;
    tls.write_all(b"\r\n").await.unwrap();
    parked(&env, 0.0).await;
    parked(&env, 1.0).await;
    for n in 0..2 {
        tls.write_all(get(&token, "/v1/customers?after").as_bytes()).await.unwrap();
        let (status, head) = responses(&mut tls, 1).await.remove(0);
        assert_eq!(status, 200, "request {n}: {head}");
        assert!(!head.to_ascii_lowercase().contains("connection: close"), "request {n}: {head}");
        parked(&env, 1.0).await;
    }
    assert_eq!(env.upstream.hits(), 3);
}
