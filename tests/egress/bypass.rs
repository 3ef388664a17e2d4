//! Attempts to get around the policy through the proxy: another TLS server
//! name or `Host` inside an intercepted tunnel, an IP literal or an unlisted
//! port, a guarded or another name inside a blind tunnel (sent at once, or
//! after waiting past the handshake timeout), bytes that are not TLS in a
//! blind tunnel, and tokens sent to a host their audience does not name.
//! Each is refused and nothing is forwarded.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::{
    CountingRelay, PlainPeer, TlsPeer, bearer, client_hello, connect, curl, egress_ca, raw_tunnel, read_until_closed,
};
use crate::support::{GRAPH_HOST, PC_HOST, TestEnv, assert_rejected};
use crate::{PC_URL, graph_token, guarded, proxied_client};

#[tokio::test]
async fn a_tls_server_name_other_than_the_connect_target_gets_421() {
    let env = guarded().egress("").start().await;
    // CONNECT api.partnercenter.microsoft.com, then TLS and Host for Graph.
    let to = format!("{GRAPH_HOST}:443:{PC_HOST}:443");
    let token = graph_token(&env);
    let url = "https://graph.microsoft.com/v1.0/me";
    let out = curl(&env, &["-k", "--connect-to", &to, "-H", &bearer(&token), url]).await;
    assert_eq!((out.connect, out.code), (200, 421), "{out:?}");
    assert_eq!(out.json()["reason"], "misdirected_request");
    // Even with the right Host, a wrong server name is refused.
    let out = curl(&env, &["-k", "--connect-to", &to, "-H", &format!("Host: {PC_HOST}"), url]).await;
    assert_eq!(out.code, 421, "{out:?}");
    // A client that checks certificates stops first: the leaf names the CONNECT target.
    let out = curl(&env, &["--cacert", &egress_ca(&env), "--connect-to", &to, url]).await;
    assert_eq!(out.exit, 60, "{out:?}");
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn a_host_or_authority_other_than_the_connect_target_gets_421() {
    let env = guarded().egress("").start().await;
    let ca = egress_ca(&env);
    let token = graph_token(&env);
    for version in ["--http1.1", "--http2"] {
        let out =
            curl(&env, &[version, "--cacert", &ca, "-H", &bearer(&token), "-H", "Host: graph.microsoft.com", PC_URL])
                .await;
        assert_eq!(out.code, 421, "{version}: {out:?}");
        assert_eq!(out.json()["reason"], "misdirected_request");
    }
    let out = curl(&env, &["--cacert", &ca, "-H", &format!("Host: {PC_HOST}:8443"), PC_URL]).await;
    assert_eq!(out.code, 421, "another port: {out:?}");
    assert_eq!(env.upstream.hits(), 0);
    assert_eq!(
        env.metric(r#"mfagate_requests_total{decision="deny",reason="misdirected_request",route="partner-center"}"#)
            .await,
        3.0
    );
}

#[tokio::test]
async fn ip_literals_and_unlisted_ports_are_refused() {
    // Even with `default = "tunnel"`: an address skips every name check.
    let env = guarded().egress("default = \"tunnel\"").start().await;
    for target in ["127.0.0.1:443", "[::1]:443", "127.1:443", "2130706433:443", &env.upstream.addr.to_string()] {
        let (status, headers, body) = connect(&env, target, None).await;
        assert_eq!(status, 403, "{target}");
        assert!(headers.contains_key("ms-correlationid"));
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["reason"], "egress_denied", "{target}");
    }
    let out = curl(&env, &["-k", &format!("https://{}/v1/customers", env.upstream.addr)]).await;
    assert_eq!(out.connect, 403, "{out:?}");
    let (status, _, body) = connect(&env, "api.partnercenter.microsoft.com:8443", None).await;
    assert_eq!(status, 403, "a guarded host on a port not in connect_ports");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["reason"], "egress_denied");
    let (status, _, _) = connect(&env, "files.example.net:22", None).await;
    assert_eq!(status, 403, "any host on a port not in connect_ports");
    let (status, headers, _) = connect(&env, "api.partnercenter.microsoft.com", None).await;
    assert_eq!(status, 400, "no port");
    assert_eq!(headers["connection"], "close", "nothing more is read after a malformed request");
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn a_blind_tunnel_may_not_carry_a_guarded_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let peer = TlsPeer::start(dir.path(), "files.example.net").await;
    let env = guarded().egress("default = \"tunnel\"").resolve("files.example.net", peer.addr).start().await;
    // CONNECT to an allowed host, then a ClientHello for Partner Center.
    let to = format!("{PC_HOST}:443:files.example.net:443");
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    let out = curl(&env, &["-k", "--connect-to", &to, "-H", &bearer(&token), PC_URL]).await;
    assert_eq!(out.connect, 200, "{out:?}");
    assert_eq!(out.exit, 35, "the tunnel is closed before the hello is passed on: {out:?}");
    assert!(out.stderr.contains("SSL_connect"), "{out:?}");
    assert_eq!(peer.hits(), 0);
    assert_eq!(env.upstream.hits(), 0);
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="denied"}"#).await, 1.0);
    // The same tunnel with the target's own name works.
    let out = curl(&env, &["--cacert", &peer.ca_path.display().to_string(), "https://files.example.net/"]).await;
    assert_eq!(out.code, 200, "{out:?}");
}

/// A blind tunnel's target, `files.example.net`, behind a relay that counts
/// what reaches it; `tls_handshake_timeout` is 1 s.
async fn blind_target(dir: &std::path::Path) -> (TestEnv, TlsPeer, CountingRelay) {
    let peer = TlsPeer::start(dir, "files.example.net").await;
    let relay = CountingRelay::start(peer.addr).await;
    let env = guarded()
        .server("tls_handshake_timeout = \"1s\"")
        .egress("default = \"tunnel\"")
        .resolve("files.example.net", relay.addr)
        .start()
        .await;
    (env, peer, relay)
}

/// Asserts that the proxy closed `tunnel` without a byte from the target.
async fn assert_closed(tunnel: &mut tokio::net::TcpStream, what: &str) {
    let (closed, answer) = read_until_closed(tunnel).await;
    assert!(closed, "{what}: the tunnel is still open after 5 s ({} bytes came back)", answer.len());
    assert!(answer.is_empty(), "{what}: {} bytes came back from the target", answer.len());
}

/// Asserts that the target answered `tunnel`'s hello with a TLS record.
async fn assert_tunnelled(tunnel: &mut tokio::net::TcpStream, what: &str) {
    let mut buf = [0u8; 5];
    let read = tokio::time::timeout(Duration::from_secs(5), tunnel.read_exact(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(_))), "{what}: no answer from the target: {read:?}");
    assert_eq!(buf[0], 0x16, "{what}: the target's handshake record");
}

#[tokio::test]
async fn waiting_past_the_handshake_timeout_does_not_open_a_blind_tunnel() {
    let dir = tempfile::tempdir().unwrap();
    let (env, peer, relay) = blind_target(dir.path()).await;
    // A hello naming Partner Center, sent after the timeout.
    let mut tunnel = raw_tunnel(&env, "files.example.net:443").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = tunnel.write_all(&client_hello(PC_HOST)).await;
    assert_closed(&mut tunnel, "guarded name after the timeout").await;
    // Half of a hello, then nothing.
    let hello = client_hello("files.example.net");
    let mut tunnel = raw_tunnel(&env, "files.example.net:443").await;
    tunnel.write_all(&hello[..hello.len() / 2]).await.unwrap();
    assert_closed(&mut tunnel, "half a hello").await;
    // Nothing at all.
    let mut tunnel = raw_tunnel(&env, "files.example.net:443").await;
    assert_closed(&mut tunnel, "silence").await;
    assert_eq!(relay.received(), 0, "nothing reached the target");
    assert_eq!(env.upstream.hits(), 0);
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="denied"}"#).await, 3.0);
    // A client that sends its hello in time gets through.
    let out = curl(&env, &["--cacert", &peer.ca_path.display().to_string(), "https://files.example.net/"]).await;
    assert_eq!(out.code, 200, "{out:?}");
    assert_eq!(peer.hits(), 1);
}

#[tokio::test]
async fn a_blind_tunnel_carries_only_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (env, _peer, relay) = blind_target(dir.path()).await;
    let cases: [(&str, &[u8]); 4] = [
        ("plain HTTP", b"GET / HTTP/1.1\r\nHost: files.example.net\r\n\r\n"),
        ("SSH", b"SSH-2.0-OpenSSH_9.6\r\n"),
        ("a TLS record that is not a handshake", &[0x17, 0x03, 0x03, 0x00, 0x02, 0x00, 0x00]),
        ("a record longer than TLS allows", &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01]),
    ];
    for (what, bytes) in cases {
        let mut tunnel = raw_tunnel(&env, "files.example.net:443").await;
        tunnel.write_all(bytes).await.unwrap();
        assert_closed(&mut tunnel, what).await;
    }
    assert_eq!(relay.received(), 0, "nothing reached the target");
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="denied"}"#).await, 4.0);
}

#[tokio::test]
async fn a_blind_tunnel_carries_only_its_own_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let (env, peer, relay) = blind_target(dir.path()).await;
    // Allowed hosts (default = "tunnel") and guarded ones alike: naming
    // another host would front it through this tunnel.
    let others = [
        "other.example.net",
        "files.example.net.evil.example",
        "sub.files.example.net",
        "xfiles.example.net",
        GRAPH_HOST,
        "login.microsoftonline.com",
    ];
    for name in others {
        let mut tunnel = raw_tunnel(&env, "files.example.net:443").await;
        tunnel.write_all(&client_hello(name)).await.unwrap();
        assert_closed(&mut tunnel, name).await;
    }
    assert_eq!(relay.received(), 0, "nothing reached the target");
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="denied"}"#).await, others.len() as f64);
    // The target's own name in any case, and no name at all, get through.
    for name in ["files.example.net", "FILES.Example.NET", "127.0.0.1"] {
        let mut tunnel = raw_tunnel(&env, "FILES.example.net.:443").await;
        tunnel.write_all(&client_hello(name)).await.unwrap();
        assert_tunnelled(&mut tunnel, name).await;
    }
    let out = curl(&env, &["--cacert", &peer.ca_path.display().to_string(), "https://files.example.net/"]).await;
    assert_eq!((out.connect, out.code), (200, 200), "{out:?}");
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="denied"}"#).await, others.len() as f64);
}

#[tokio::test]
async fn a_token_may_only_travel_to_the_host_its_audience_names() {
    let plain = PlainPeer::start().await;
    let env = guarded().egress("default = \"tunnel\"").resolve("intranet.example.net", plain.addr).start().await;
    let ca = std::fs::read_to_string(env.egress_ca.as_ref().unwrap()).unwrap();
    let client = proxied_client(&env, &ca, false);
    let pc_token = env.idp.delegated().mint();
    let graph = graph_token(&env);

    // A Graph token to Partner Center, a Partner Center token to Graph.
    let rsp = client.get(PC_URL).bearer_auth(&graph).send().await.unwrap();
    let challenge = assert_rejected(rsp, 403, "audience_host_mismatch").await;
    assert!(challenge.unwrap().contains(r#"error="insufficient_scope""#));
    let rsp = client.get("https://graph.microsoft.com/v1.0/me").bearer_auth(&pc_token).send().await.unwrap();
    assert_rejected(rsp, 403, "audience_host_mismatch").await;
    // The app id form of the audience is bound too.
    let by_id = env.idp.delegated().claim("aud", "00000003-0000-0000-c000-000000000000").mint();
    let rsp = client.get(PC_URL).bearer_auth(&by_id).send().await.unwrap();
    assert_rejected(rsp, 403, "audience_host_mismatch").await;
    assert_eq!(env.upstream.hits(), 0);
    // Over plain HTTP to a host no route guards: the token would leave in clear.
    let out = curl(&env, &["-H", &bearer(&pc_token), "http://intranet.example.net/upload"]).await;
    assert_eq!((out.code, out.json()["reason"].as_str()), (403, Some("audience_host_mismatch")), "{out:?}");
    assert_eq!(plain.hits(), 0);

    // Each token where it belongs.
    assert_eq!(
        client.get("https://graph.microsoft.com/v1.0/me").bearer_auth(&graph).send().await.unwrap().status(),
        200
    );
    assert_eq!(client.get(PC_URL).bearer_auth(&pc_token).send().await.unwrap().status(), 200);
    assert_eq!(env.upstream.hits(), 2);
    assert_eq!(
        env.metric(r#"mfagate_requests_total{decision="deny",reason="audience_host_mismatch",route="partner-center"}"#)
            .await,
        2.0
    );
}

#[tokio::test]
async fn report_only_never_lets_a_token_go_to_the_wrong_host() {
    let env = guarded().route("mode = \"report-only\"").egress("").start().await;
    let ca = egress_ca(&env);
    let without_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let out = curl(&env, &["--cacert", &ca, "-H", &bearer(&without_mfa), PC_URL]).await;
    assert_eq!(out.code, 200, "report-only waives the policy: {out:?}");
    let out = curl(&env, &["--cacert", &ca, "-H", &bearer(&graph_token(&env)), PC_URL]).await;
    assert_eq!(out.code, 403, "{out:?}");
    assert_eq!(out.json()["reason"], "audience_host_mismatch");
    assert_eq!(env.upstream.hits(), 1);
}

/// Framing that hyper would accept but that an upstream could read
/// differently is refused inside an intercepted tunnel too.
#[tokio::test]
async fn ambiguous_http1_framing_inside_a_tunnel_is_refused() {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = guarded().egress("").start().await;
    let ca_pem = std::fs::read_to_string(egress_ca(&env)).unwrap();
    let token = env.idp.delegated().mint();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(mfagate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls));
    let cases = [
        ("CL.TE", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_string()),
        ("TE obfuscated", "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n".to_string()),
        ("bare LF", "Content-Length: 0\n\n".to_string()),
    ];
    for (what, tail) in cases {
        let tunnel = crate::clients::open_tunnel(&env, &format!("{PC_HOST}:443")).await;
        let name = rustls::pki_types::ServerName::try_from(PC_HOST.to_string()).unwrap();
        let mut stream = connector.connect(name, tunnel).await.unwrap();
        let head = format!("POST /v1/customers HTTP/1.1\r\nHost: {PC_HOST}\r\nAuthorization: Bearer {token}\r\n{tail}");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 400"), "{what}: {text}");
        assert!(text.contains(r#""reason":"bad_request""#), "{what}: {text}");
        assert!(text.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{what}: {text}");
    }
    assert_eq!(env.upstream.hits(), 0);
}

/// Inside an intercepted tunnel the path is normalised as on the reverse
/// listener, and the customer checked is the one the upstream is sent:
/// empty segments and other spellings cannot hide a Partner Center
/// customer, over HTTP/1.1 and HTTP/2.
#[tokio::test]
async fn an_empty_segment_in_a_tunnel_cannot_hide_a_customer() {
    use crate::support::idp::OTHER_TID;
    const STRANGER: &str = "5a5a5a5a-0000-4000-8000-000000000000";
    let customers = format!("customers = [{{ tenant_id = \"{OTHER_TID}\", ends = \"2099-01-01T00:00:00Z\" }}]");
    let env = guarded().route(&customers).egress("").start().await;
    let ca = std::fs::read_to_string(env.egress_ca.as_ref().unwrap()).unwrap();
    let token = env.idp.delegated().mint();
    let base = format!("https://{PC_HOST}");
    for http2 in [false, true] {
        let client = proxied_client(&env, &ca, http2);
        for path in [
            format!("//v1//customers//{STRANGER}/orders"),
            format!("/v1/customers//%7B{}%7D", STRANGER.to_uppercase()),
            format!("/v1/%63ustomers///{STRANGER}"),
        ] {
            let rsp = client.get(format!("{base}{path}")).bearer_auth(&token).send().await.unwrap();
            assert_rejected(rsp, 403, "customer_not_allowed").await;
        }
    }
    assert_eq!(env.upstream.hits(), 0, "a refused request reached the upstream");
    let client = proxied_client(&env, &ca, false);
    let rsp =
        client.get(format!("{base}//v1//customers//{OTHER_TID}//orders")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.upstream.last().path_and_query, format!("/v1/customers/{OTHER_TID}/orders"));
}

/// Nothing written after a request the proxy refuses is read as a request
/// of its own: a malformed request (400), an HTTP/1.0 keep-alive one, and a
/// refused one whose body was left unread (403, CONNECT included) each end
/// their connection, so the forward pipelined behind them never leaves.
#[tokio::test]
async fn nothing_pipelined_after_a_refused_proxy_request_is_forwarded() {
    let plain = PlainPeer::start().await;
    let env = guarded()
        .egress("default = \"deny\"\nallow_hosts = [\"intranet.example.net\"]")
        .resolve("intranet.example.net", plain.addr)
        .start()
        .await;
    let next = "GET http://intranet.example.net/ HTTP/1.1\r\nHost: intranet.example.net\r\n\r\n";
    let cases = [
        ("origin-form", "GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_string(), 400),
        ("https without CONNECT", "GET https://x/ HTTP/1.1\r\nHost: x\r\n\r\n".to_string(), 400),
        ("CONNECT without a port", format!("CONNECT {PC_HOST} HTTP/1.1\r\nHost: {PC_HOST}\r\n\r\n"), 400),
        ("HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_string(), 400),
        (
            "denied, body unread",
            "POST http://other.example.net/ HTTP/1.1\r\nHost: other.example.net\r\nContent-Length: 5\r\n\r\nhello"
                .to_string(),
            403,
        ),
        (
            "plain to a guarded host, body unread",
            format!("POST http://{PC_HOST}/v1 HTTP/1.1\r\nHost: {PC_HOST}\r\nContent-Length: 5\r\n\r\nhello"),
            403,
        ),
        (
            "denied CONNECT with a body",
            "CONNECT other.example.net:443 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_string(),
            403,
        ),
    ];
    for (what, first, status) in cases {
        let mut tcp = tokio::net::TcpStream::connect(env.egress.unwrap()).await.unwrap();
        tcp.write_all(format!("{first}{next}").as_bytes()).await.unwrap();
        let (closed, answer) = read_until_closed(&mut tcp).await;
        let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        assert!(closed, "{what}: the connection stays open: {text}");
        assert_eq!(text.matches("http/1.").count(), 1, "{what}: one answer only: {text}");
        assert!(
            text.starts_with(&format!("http/1.1 {status}")) || text.starts_with(&format!("http/1.0 {status}")),
            "{what}: {text}"
        );
        assert!(text.contains("\r\nconnection: close\r\n"), "{what}: {text}");
    }
    assert_eq!(plain.hits(), 0, "a pipelined forward was served");
    assert_eq!(env.upstream.hits(), 0);
}
