//! The egress listener: blind tunnels across reloads, audience binding.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::raw_tunnel;
use crate::reload;
use crate::support::{GRAPH_HOST, PC_HOST, TestEnv};

/// A rustls client trusting the test CA (the recording upstream's).
fn upstream_tls(env: &TestEnv) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(env.pki.ca_pem.as_bytes()).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(mfagate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// Rule 1 (reload): "open blind tunnels are closed when a reload guards or
/// denies their host". A blind tunnel whose CONNECT was answered before a
/// reload, but whose client sends its ClientHello only after it, is
/// admitted under the OLD host rules (the state captured at CONNECT) and
/// then never re-checked: `tunnel::serve` subscribes to reload
/// notifications only after the first flight, so the reload that happened
/// while it waited is already marked seen. Here the reload puts Graph on
/// `deny_hosts`; a request then travels through the tunnel to Graph.
/// Correct: the tunnel is closed (egress_denied), Graph never reached.
#[tokio::test]
async fn a_blind_tunnel_waiting_for_its_hello_survives_a_reload_that_denies_its_host() {
    let env = TestEnv::setup().route(&format!("host = \"{PC_HOST}\"")).egress("default = \"tunnel\"").start().await;
    let token = env.idp.delegated().claim("aud", "https://graph.microsoft.com").mint();
    // CONNECT answered 200 under the old rules; the client has not spoken yet.
    let tunnel = raw_tunnel(&env, &format!("{GRAPH_HOST}:443")).await;
    reload(&env, |t| {
        t.replacen("default = \"tunnel\"", "default = \"tunnel\"\ndeny_hosts = [\"graph.microsoft.com\"]", 1)
    })
    .await
    .expect("reload denies Graph");
    // New CONNECTs are refused now...
    let (status, _, _) = crate::clients::connect(&env, &format!("{GRAPH_HOST}:443"), None).await;
    assert_eq!(status, 403, "the reload took effect");
    // ...but the tunnel opened before it carries a whole request.
    let name = rustls_pki_types::ServerName::try_from(GRAPH_HOST).unwrap();
    let handshake = tokio::time::timeout(Duration::from_secs(5), upstream_tls(&env).connect(name, tunnel)).await;
    if let Ok(Ok(mut tls)) = handshake {
        let request = format!("GET /v1.0/me HTTP/1.1\r\nHost: {GRAPH_HOST}\r\nAuthorization: Bearer {token}\r\n\r\n");
        let _ = tls.write_all(request.as_bytes()).await;
        let mut buf = vec![0u8; 16 * 1024];
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await;
    }
    assert_eq!(env.upstream.hits(), 0, "a request reached a host the running configuration denies");
}

/// `curl --proxy` to the plain peer `url` with `headers`; asserts that the
/// proxy refused with 403 `audience_host_mismatch`, and returns the
/// (status, reason) it got for the message.
async fn plain_refused(env: &TestEnv, url: &str, headers: &[String]) -> Result<(), String> {
    let mut args = Vec::new();
    for h in headers {
        args.extend(["-H", h.as_str()]);
    }
    args.push(url);
    let out = crate::clients::curl(env, &args).await;
    let reason = serde_json::from_str::<serde_json::Value>(&out.body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_string));
    if (out.code, reason.as_deref()) == (403, Some("audience_host_mismatch")) {
        Ok(())
    } else {
        Err(format!("{url} {headers:?}: got {} {reason:?}", out.code))
    }
}

async fn plain_env() -> (TestEnv, crate::clients::PlainPeer) {
    let plain = crate::clients::PlainPeer::start().await;
    let env = crate::guarded().egress("default = \"tunnel\"").resolve("intranet.example.net", plain.addr).start().await;
    (env, plain)
}

/// Rule 8 (egress audience binding): "every token anywhere in the request
/// (all Authorization values, auxiliary, query, cookies) is examined".
/// Only the FIRST `access_token` query parameter is examined
/// (`credentials::query_token` uses `find`), so a Partner Center token in a
/// second `access_token` leaves the network in clear to any allowed host.
/// Correct: 403 audience_host_mismatch, the plain peer never reached.
#[tokio::test]
async fn a_bound_token_in_a_second_access_token_parameter_is_not_examined() {
    let (env, plain) = plain_env().await;
    let pc = env.idp.delegated().mint();
    let url = format!("http://intranet.example.net/upload?access_token=x&access_token={pc}");
    let result = plain_refused(&env, &url, &[]).await;
    assert_eq!(plain.hits(), 0, "a Partner Center token reached another host in clear: {result:?}");
    result.unwrap();
}

/// Rule 8 (egress audience binding), and the claim that "all Authorization
/// values" are examined: only credentials whose scheme is `Bearer` are read
/// (`credentials::every_token`). A Partner Center token sent under another
/// scheme, with no scheme at all, or glued to `Bearer` by a comma, goes to
/// any allowed host. The receiving host is the one that reads it, so the
/// scheme it is sent under does not matter.
/// Correct: 403 audience_host_mismatch for each, the plain peer never reached.
#[tokio::test]
async fn a_bound_token_under_another_authorization_scheme_is_not_examined() {
    let (env, plain) = plain_env().await;
    let pc = env.idp.delegated().mint();
    let url = "http://intranet.example.net/upload";
    let mut failures = Vec::new();
    for header in [
        format!("Authorization: JWT {pc}"),
        format!("Authorization: {pc}"),
        format!("Authorization: Bearer,{pc}"),
        format!("Authorization: PoP {pc}"),
    ] {
        if let Err(e) = plain_refused(&env, url, &[header]).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty() && plain.hits() == 0,
        "{} of 4 left in clear ({} hits): {failures:#?}",
        failures.len(),
        plain.hits()
    );
}

/// Rules 6 and 8: "JWS cookies refused 400 on token-checking routes" and
/// bound "cookies" examined. The gateway splits a Cookie header on `;`
/// only, while ASP.NET Core's cookie parser (CookieHeaderParserShared)
/// also splits on `,`: `Cookie: theme=dark, session=<JWS>` is a `session`
/// cookie holding the token to such a server, and nothing to the gateway.
/// Over plain HTTP a Partner Center token leaves this way to any allowed
/// host. Correct: 403 audience_host_mismatch, the plain peer never reached.
#[tokio::test]
async fn a_bound_token_in_a_comma_separated_cookie_is_not_examined() {
    let (env, plain) = plain_env().await;
    let pc = env.idp.delegated().mint();
    let result =
        plain_refused(&env, "http://intranet.example.net/upload", &[format!("Cookie: theme=dark, session={pc}")]).await;
    assert_eq!(plain.hits(), 0, "a Partner Center token reached another host in clear: {result:?}");
    result.unwrap();
}

/// The first flight of a rustls client for `server_name` with an
/// `encrypted_client_hello` extension (0xfe0d, RFC 9849) of type "outer"
/// added: what an ECH client sends, its real server name sealed inside.
fn client_hello_with_ech(server_name: &str) -> Vec<u8> {
    let flight = crate::clients::client_hello(server_name);
    // One handshake record: the ClientHello message after the 5-byte header.
    let mut message = flight[5..].to_vec();
    let mut at = 4 + 2 + 32;
    at += 1 + usize::from(message[at]);
    at += 2 + usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    at += 1 + usize::from(message[at]);
    let extensions = usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    // ECHClientHello: outer(0), HPKE suite (HKDF-SHA256, AES-128-GCM), config id,
    // a 32-byte enc and a 64-byte sealed inner hello.
    let mut ech = vec![0x00, 0x00, 0x01, 0x00, 0x01, 0x2a, 0x00, 0x20];
    ech.extend_from_slice(&[0x11; 32]);
    ech.extend_from_slice(&[0x00, 0x40]);
    ech.extend_from_slice(&[0x22; 64]);
    let mut ext = 0xfe0du16.to_be_bytes().to_vec();
    ext.extend_from_slice(&u16::try_from(ech.len()).unwrap().to_be_bytes());
    ext.extend_from_slice(&ech);
    let new_len = u16::try_from(extensions + ext.len()).unwrap();
    message[at..at + 2].copy_from_slice(&new_len.to_be_bytes());
    message.extend_from_slice(&ext);
    let body = u32::try_from(message.len() - 4).unwrap().to_be_bytes();
    message[1..4].copy_from_slice(&body[1..]);
    let mut out = vec![0x16, 0x03, 0x01];
    out.extend_from_slice(&u16::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&message);
    out
}

/// Rule 4 (blind tunnels): "only after a complete ClientHello naming no
/// server or the CONNECT target". A hello offering Encrypted Client Hello
/// names the CONNECT target only in its outer, public name; the server
/// name the client really asks for is sealed in the extension, where the
/// proxy cannot check it against the guarded hosts, `deny_hosts` or
/// `allow_hosts`. An ECH-capable front (a CDN's client-facing server) then
/// serves a host the proxy would refuse: the fronting that checking the
/// server name is meant to stop. Correct: a hello the proxy cannot read the
/// real server name of is refused like one naming another host (the tunnel
/// closed, nothing passed on to the target).
#[tokio::test]
async fn a_hello_with_an_encrypted_server_name_opens_a_blind_tunnel() {
    let dir = tempfile::tempdir().unwrap();
    let peer = crate::clients::TlsPeer::start(dir.path(), "files.example.net").await;
    let relay = crate::clients::CountingRelay::start(peer.addr).await;
    let env = crate::guarded()
        .server("tls_handshake_timeout = \"1s\"")
        .egress("default = \"tunnel\"")
        .resolve("files.example.net", relay.addr)
        .start()
        .await;
    let mut tunnel = raw_tunnel(&env, "files.example.net:443").await;
    tunnel.write_all(&client_hello_with_ech("files.example.net")).await.unwrap();
    let (_closed, answer) = crate::clients::read_until_closed(&mut tunnel).await;
    assert_eq!(
        (relay.received(), answer.len()),
        (0, 0),
        "an ECH hello was passed on to the target ({} bytes) and answered ({} bytes)",
        relay.received(),
        answer.len()
    );
}

/// "A client's chunked-framing error is a 400 counted as the client's" —
/// on the egress listener's plain `http://` forwards too. A chunked body
/// whose chunk size is not hexadecimal breaks off the forward, and the
/// proxy answers 502 `upstream_unavailable`, counted as the target failing
/// (`mfagate_egress_connections_total{kind="failed"}`), blaming an allowed
/// host for the client's own bytes. Correct: 400 bad_request, counted as
/// denied, the connection closed.
#[tokio::test]
async fn a_clients_framing_error_in_a_plain_forward_is_blamed_on_the_target() {
    let (env, _plain) = plain_env().await;
    let mut tcp = tokio::net::TcpStream::connect(env.egress.unwrap()).await.unwrap();
    let request = "POST http://intranet.example.net/upload HTTP/1.1\r\nHost: intranet.example.net\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nxx\r\n0\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    let failed = env.metric(r#"mfagate_egress_connections_total{kind="failed"}"#).await;
    assert!(
        answer.starts_with("HTTP/1.1 400") && failed == 0.0,
        "failed={failed}, answer: {}",
        answer.lines().next().unwrap_or("")
    );
}
