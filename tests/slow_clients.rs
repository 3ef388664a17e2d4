//! Slow clients: slowloris (`slowhttptest`) cannot hold connections past the
//! header timeout or starve other clients; silent TCP connections, unfinished
//! heads and idle HTTP/1.1 and HTTP/2 connections are closed by the gateway.

mod support;

use std::time::Duration;

use support::raw;
use support::{TestEnv, eventually};
use tokio::io::AsyncWriteExt;

async fn env() -> TestEnv {
    TestEnv::setup()
        .server("tls_handshake_timeout = \"1s\"\nheader_read_timeout = \"2s\"\nkeep_alive_timeout = \"3s\"")
        .start()
        .await
}

/// The gateway closes the connection (rather than the test giving up first).
async fn closed_by_gateway<S: tokio::io::AsyncReadExt + Unpin>(stream: &mut S, what: &str) -> raw::Answer {
    let answer = raw::read_until_closed(stream, Duration::from_secs(20)).await;
    assert!(answer.closed, "{what}: still open after 20 s");
    answer
}

#[tokio::test]
async fn silent_and_unfinished_connections_are_closed() {
    let env = env().await;
    let token = env.idp.delegated().mint();

    // TCP only: the TLS handshake never starts.
    let mut tcp = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    closed_by_gateway(&mut tcp, "no TLS handshake").await;

    // Half a request head, then nothing.
    let mut tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    tls.write_all(b"GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
    let answer = closed_by_gateway(&mut tls, "unfinished head").await;
    assert!(answer.statuses().iter().all(|s| *s == 408), "{}", answer.text());

    // A complete exchange, then an idle keep-alive connection.
    let mut tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    let request = format!("GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let answer = closed_by_gateway(&mut tls, "idle HTTP/1.1").await;
    assert_eq!(answer.status(), Some(200));

    // HTTP/2: the preface and nothing more.
    let mut h2 = raw::connect(env.addr, &env.pki.ca_pem, &[b"h2"]).await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    closed_by_gateway(&mut h2, "idle HTTP/2").await;

    assert!(env.metric(r#"mfagate_tls_handshake_failures_total{kind="timeout"}"#).await >= 1.0);
    eventually("every connection is closed", || async {
        env.metric(r#"mfagate_connections_open{listener="gateway"}"#).await == 0.0
    })
    .await;
    assert_eq!(env.upstream.hits(), 1);
}

#[tokio::test]
async fn slowloris_cannot_hold_connections_or_starve_others() {
    let env = env().await;
    let token = env.idp.delegated().mint();
    let out = env.dir.path().join("slowloris");
    // 300 connections that each send one more header line every second, for 15 s.
    let attack = tokio::process::Command::new(support::setup::program("slowhttptest"))
        .args(["-H", "-c", "300", "-r", "150", "-i", "1", "-l", "15", "-p", "3", "-g", "-o"])
        .arg(&out)
        .args(["-u", &format!("https://127.0.0.1:{}/v1/customers", env.addr.port())])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("slowhttptest starts");

    // Meanwhile a normal client, on a new connection each time, is served.
    let fresh = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(env.pki.ca_pem.as_bytes()).unwrap()])
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .unwrap();
    let mut served = 0;
    let mut most_open = 0.0f64;
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        let rsp =
            fresh.get(env.url("/v1/customers")).bearer_auth(&token).send().await.expect("served during the attack");
        assert_eq!(rsp.status(), 200);
        served += 1;
        most_open = most_open.max(env.metric(r#"mfagate_connections_open{listener="gateway"}"#).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let done = tokio::time::timeout(Duration::from_secs(60), attack.wait_with_output())
        .await
        .expect("slowhttptest ends")
        .unwrap();
    assert!(done.status.success(), "slowhttptest: {}", done.status);
    let report = String::from_utf8_lossy(&done.stdout);
    let exit = report.lines().skip_while(|l| !l.contains("Exit status:")).collect::<Vec<_>>().join(" ");

    // Seconds,Closed,Pending,Connected,Service Available
    let csv = std::fs::read_to_string(out.with_extension("csv")).expect("slowhttptest wrote its CSV report");
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|c| c.trim().to_string()).collect())
        .filter(|r: &Vec<String>| r.len() >= 5)
        .collect();
    let last = rows.last().expect("report rows");
    let closed: u32 = last[1].parse().unwrap();
    let peak: u32 = rows.iter().map(|r| r[3].parse::<u32>().unwrap()).max().unwrap();
    eprintln!(
        "slowloris: peak {peak} held, {closed} closed by the gateway by second {}; slowhttptest: {exit}; gateway peak open {most_open}; {served} normal requests served",
        last[0]
    );
    // slowhttptest ends early only when the server closed every connection.
    assert!(exit.contains("No open connections left"), "slowhttptest ran to its time limit:\n{exit}\n{csv}");
    assert!(closed >= 200, "the gateway closed only {closed} of 300 slow connections:\n{csv}");
    assert!(served >= 10);
    eventually("every connection is closed", || async {
        env.metric(r#"mfagate_connections_open{listener="gateway"}"#).await == 0.0
    })
    .await;
}
