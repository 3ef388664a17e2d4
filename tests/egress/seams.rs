//! More of the egress listener's seams: a reload that comes while a blind
//! tunnel awaits its hello, hellos that seal their server name, tokens in
//! every place and spelling the audience binding must see, and a client's
//! broken framing in a plain forward.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::raw_tunnel;

/// `env`'s configuration file rewritten by `change`, then reloaded.
async fn reload(env: &TestEnv, change: impl Fn(&str) -> String) -> Result<(), mfagate::reload::ReloadError> {
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(&env.config_path, change(&text)).unwrap();
    env.reloader.reload().await
}
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

/// A blind tunnel whose CONNECT was answered before a reload, but whose
/// client sends its ClientHello after it, is judged under the rules of the
/// reload: here Graph is denied, so the tunnel closes and Graph is never
/// reached.
#[tokio::test]
async fn a_reload_while_a_tunnel_awaits_its_hello_applies_to_it() {
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

/// Every `access_token` query parameter is examined by the audience
/// binding, not only the first.
#[tokio::test]
async fn every_access_token_parameter_is_bound() {
    let (env, plain) = plain_env().await;
    let pc = env.idp.delegated().mint();
    let url = format!("http://intranet.example.net/upload?access_token=x&access_token={pc}");
    let result = plain_refused(&env, &url, &[]).await;
    assert_eq!(plain.hits(), 0, "a Partner Center token reached another host in clear: {result:?}");
    result.unwrap();
}

/// A token in an `Authorization` value is bound whatever scheme (or none)
/// precedes it.
#[tokio::test]
async fn a_token_under_any_scheme_is_bound() {
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

/// Cookies are split on `,` as well as `;` (as ASP.NET splits them) before
/// their values are examined by the audience binding.
#[tokio::test]
async fn cookies_split_by_commas_are_bound() {
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

/// A ClientHello offering Encrypted Client Hello names the CONNECT target
/// only in its outer name; the name it is for is sealed where the proxy
/// cannot check it against the guarded hosts and the host lists, so the
/// tunnel is refused and nothing is passed on.
#[tokio::test]
async fn a_hello_that_seals_its_server_name_is_refused() {
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

/// A client's broken chunked framing in a plain forward is answered 400
/// and counted as the client's, not as the target failing.
#[tokio::test]
async fn a_clients_framing_error_in_a_plain_forward_is_its_own_400() {
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
