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
    reload(&env, |t| t.replacen("default = \"tunnel\"", "default = \"tunnel\"\ndeny_hosts = [\"graph.microsoft.com\"]", 1))
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
    let reason = serde_json::from_str::<serde_json::Value>(&out.body).ok().and_then(|v| v["reason"].as_str().map(str::to_string));
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
    assert!(failures.is_empty() && plain.hits() == 0, "{} of 4 left in clear ({} hits): {failures:#?}", failures.len(), plain.hits());
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
    let result = plain_refused(&env, "http://intranet.example.net/upload", &[format!("Cookie: theme=dark, session={pc}")]).await;
    assert_eq!(plain.hits(), 0, "a Partner Center token reached another host in clear: {result:?}");
    result.unwrap();
}
