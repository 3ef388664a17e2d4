//! Graceful drain under load: on SIGTERM `/readyz` turns 503 at once, new
//! connections are still served for `server.drain_delay`, then the listener
//! closes, requests in flight finish, and the process exits 0 within
//! `server.drain_grace`. Every request the gateway accepted is answered 200.

mod support;

use std::time::Duration;

use support::TestEnv;
use support::load::Load;
use support::process::Gateway;

#[tokio::test]
async fn sigterm_drains_under_load_without_failing_an_accepted_request() {
    let env = TestEnv::setup()
        .server("drain_delay = \"3s\"\ndrain_grace = \"20s\"\nupstream_timeout = \"30s\"")
        .start()
        .await;
    let config = env.path("binary.toml");
    let text = &env.config_toml;
    std::fs::write(&config, format!("{text}\n[log]\nformat = \"json\"\nlevel = \"info,mfagate::decision=debug\"\n"))
        .unwrap();
    let mut gw = Gateway::start(&config).await;
    let token = env.idp.delegated().mint();

    // Fast requests until the listener is gone (each worker stops at its first error).
    let load = Load::start(&env.pki.ca_pem, gw.url("/v1/customers"), token.clone(), usize::MAX / 2, 16, true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while load.sent.load(std::sync::atomic::Ordering::SeqCst) < 3000 {
        assert!(tokio::time::Instant::now() < deadline, "the load stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Slow requests in flight when the signal comes, over both protocols.
    let slow: Vec<_> = (0..16)
        .map(|i| {
            let client = support::client(&env.pki.ca_pem, i % 2 == 0);
            let (url, token) = (gw.url("/delay/2500"), token.clone());
            tokio::spawn(async move {
                let rsp = client.get(url).bearer_auth(token).send().await.map_err(|e| format!("{e:?}"))?;
                let status = rsp.status().as_u16();
                let body = rsp.text().await.map_err(|e| format!("{e:?}"))?;
                Ok::<_, String>((status, body))
            })
        })
        .collect();
    support::eventually("the slow requests are in flight", || async {
        gw.metric(r#"mfagate_requests_in_flight{listener="gateway"}"#).await >= 16.0
    })
    .await;

    let signalled = tokio::time::Instant::now();
    gw.signal("TERM").await;
    // The signal is delivered and handled while this request may already be
    // on its way: "at once" is within a second of sending it.
    let ready = loop {
        let ready = reqwest::get(gw.admin_url("/readyz")).await.unwrap();
        if ready.status() == 503 || signalled.elapsed() > Duration::from_secs(1) {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ready.status(), 503, "not ready within a second of the signal");
    assert!(ready.text().await.unwrap().contains(r#""draining":true"#));
    // Within the delay a new client is still served.
    let late = support::client(&env.pki.ca_pem, true);
    let rsp = late.get(gw.url("/v1/customers")).bearer_auth(&token).send().await.expect("served during the delay");
    assert_eq!(rsp.status(), 200);

    for task in slow {
        assert_eq!(task.await.unwrap(), Ok((200, "delayed".to_string())), "a request in flight was cut off");
    }
    let status = gw.exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0));
    let after_exit = support::client(&env.pki.ca_pem, true).get(gw.url("/v1/customers")).send().await;
    assert!(after_exit.is_err(), "nothing listens after exit");

    let outcomes = load.finish().await;
    let served = outcomes.iter().filter(|o| o.result == Ok(200)).count();
    let other: Vec<_> = outcomes.iter().filter_map(|o| o.result.as_ref().ok()).filter(|s| **s != 200).collect();
    assert!(other.is_empty(), "answers other than 200: {other:?}");
    let early: Vec<_> = outcomes.iter().filter(|o| o.result.is_err() && o.done < signalled).collect();
    assert!(early.is_empty(), "errors before the signal: {early:?}");
    assert!(served >= 3000, "{served}");

    // Every request the gateway accepted was answered 200 and reached the client.
    let lines = gw.all_lines().await;
    let decisions: Vec<_> = lines.iter().filter(|l| l["message"] == "decision").collect();
    assert!(decisions.iter().all(|d| d["status"] == 200), "a decision other than 200 during the drain");
    assert_eq!(decisions.len(), served + 16 + 1, "accepted requests vs answers the clients received");
    assert_eq!(env.upstream.hits(), served + 16 + 1);
    let messages: Vec<_> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    let order = [
        "shutting down: not ready; closing the listener after the delay, then draining",
        "connections drained",
        "mfagate stopped",
    ];
    let positions: Vec<_> = order.iter().map(|m| messages.iter().position(|x| x == m).unwrap_or(usize::MAX)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1] && w[1] != usize::MAX), "{positions:?}");
    eprintln!(
        "drain: {served} fast requests served, 16 slow ones finished, {} clients cut off after the listener closed",
        outcomes.len() - served
    );
}

/// An HTTP/1.1 answer given after the signal says it is the last one of its
/// connection, and the connection closes after it.
#[tokio::test]
async fn an_answer_during_the_drain_says_the_connection_closes() {
    let env = TestEnv::setup()
        .server("drain_delay = \"0s\"\ndrain_grace = \"20s\"\nupstream_timeout = \"30s\"")
        .start()
        .await;
    let config = env.path("binary.toml");
    std::fs::write(&config, format!("{}\n[log]\nformat = \"json\"\n", env.config_toml)).unwrap();
    let gw = Gateway::start(&config).await;
    let token = env.idp.delegated().mint();
    let addr: std::net::SocketAddr = gw.listen.parse().unwrap();
    let mut tls = support::raw::connect(addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    let request = format!("GET /delay/1500 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut tls, request.as_bytes()).await.unwrap();
    support::eventually("the request is in flight", || async {
        gw.metric(r#"mfagate_requests_in_flight{listener="gateway"}"#).await == 1.0
    })
    .await;
    gw.signal("TERM").await;
    let answer = support::raw::read_until_closed(&mut tls, Duration::from_secs(10)).await;
    assert_eq!(answer.statuses(), [200], "{}", answer.text());
    assert!(answer.text().to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{}", answer.text());
    assert!(answer.closed, "the connection closes after the answer");
}

/// A connection the listener accepted before it closed, still in its TLS
/// handshake then, sends its first request once the drain has begun: with
/// `drain_grace` to spare, that request should be answered, as a request
/// read a moment earlier is.
#[tokio::test]
#[ignore = "cut off: the gateway calls hyper's graceful_shutdown on every open connection when the listener stops, \
            and on an HTTP/1 connection that has not read a request yet hyper closes at once (its state is idle), \
            so the first request of a connection accepted just before the stop is dropped unanswered within \
            milliseconds though drain_grace has seconds left; the fix is to defer the graceful close of a \
            connection that has served nothing until its first request is in (header_read_timeout bounds the wait), \
            in listener/conn.rs and listener::until_drained alike"]
async fn the_first_request_of_a_connection_accepted_before_the_stop_is_answered() {
    use tokio::io::AsyncWriteExt;
    let env = TestEnv::setup().server("drain_delay = \"0s\"\ndrain_grace = \"20s\"").start().await;
    let token = env.idp.delegated().mint();
    let (addr, ca_pem) = (env.addr, env.pki.ca_pem.clone());
    // Accepted by the listener (the handshake waits on the client).
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    support::eventually("the connection is accepted", || async {
        env.metric(r#"mfagate_connections_open{listener="gateway"}"#).await == 1.0
    })
    .await;
    let stopped = tokio::spawn(env.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tls = support::raw::handshake(tcp, &ca_pem, &[b"http/1.1"]).await;
    let request = format!("GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let answer = support::raw::read_until_closed(&mut tls, Duration::from_secs(10)).await;
    assert_eq!(answer.statuses(), [200], "{}", answer.text());
    stopped.await.unwrap();
}
