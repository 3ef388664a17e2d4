//! A reload reaches the egress proxy: what decides how traffic is routed,
//! intercepted or bound (the host rules derived from routes, the allow and
//! deny lists, the audience binding, the interception CA and its checks) is
//! rebuilt from the new configuration with the rest of the serving state.
//! Open blind tunnels are checked again; what only a restart changes
//! (`egress.listen`) is refused with the key named.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::{PlainPeer, bearer, connect, curl, egress_ca, open_tunnel};
use crate::support::{GRAPH_HOST, PC_HOST, TestEnv, assert_rejected, eventually};
use crate::{GRAPH_AUDIENCE, proxied_client};

const GRAPH_ROUTE: &str = r#"
[[routes]]
name = "graph"
host = "graph.microsoft.com"
upstream = "https://graph.microsoft.com"
upstream_ca = "UPSTREAM_CA"
audiences = ["https://graph.microsoft.com"]
"#;

/// `env`'s configuration file rewritten by `change`, then reloaded.
async fn reload(env: &TestEnv, change: impl Fn(&str) -> String) -> Result<(), mfagate::reload::ReloadError> {
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(&env.config_path, change(&text)).unwrap();
    env.reloader.reload().await
}

fn graph_route(env: &TestEnv) -> String {
    GRAPH_ROUTE.replace("UPSTREAM_CA", &env.pki.ca_path.display().to_string())
}

/// Puts `route` before the `[egress]` section.
fn with_route(text: &str, route: &str) -> String {
    text.replacen("[egress]", &format!("{route}\n[egress]"), 1)
}

#[tokio::test]
async fn a_route_added_by_a_reload_is_intercepted_and_one_removed_is_not() {
    let env = TestEnv::setup().route(&format!("host = \"{PC_HOST}\"")).egress("default = \"tunnel\"").start().await;
    let graph_url = "https://graph.microsoft.com/v1.0/me";
    let no_mfa_public = env.idp.delegated().claim("aud", GRAPH_AUDIENCE).amr(&["pwd"]).claim("appidacr", "0").mint();
    let upstream_ca = env.pki.ca_path.display().to_string();
    // Not guarded yet: a blind tunnel, the upstream's own certificate.
    let out = curl(&env, &["--cacert", &upstream_ca, "-H", &bearer(&no_mfa_public), graph_url]).await;
    assert_eq!((out.connect, out.code), (200, 200), "{out:?}");
    assert_eq!(env.upstream.hits(), 1);

    reload(&env, |t| with_route(t, &graph_route(&env))).await.expect("reload adds the Graph route");
    // Guarded now: intercepted (the interception CA's leaf) and refused inside.
    let out = curl(&env, &["--cacert", &upstream_ca, "-H", &bearer(&no_mfa_public), graph_url]).await;
    assert_eq!(out.exit, 60, "the leaf is the interception CA's, not the upstream's: {out:?}");
    let out = curl(&env, &["--cacert", &egress_ca(&env), "-H", &bearer(&no_mfa_public), graph_url]).await;
    assert_eq!((out.connect, out.code), (200, 401), "{out:?}");
    assert_eq!(crate::support::reason_of(&out.json()), "mfa_required");
    assert_eq!(env.upstream.hits(), 1, "nothing more reached the upstream");
    // Plain HTTP to it is refused as to any guarded host.
    let out = curl(&env, &["http://graph.microsoft.com/v1.0/me"]).await;
    assert_eq!((out.code, out.json()["reason"].as_str()), (403, Some("tls_required")), "{out:?}");

    // Removed again: tunnelled blind, as before, without a restart.
    reload(&env, |t| t.replace(&graph_route(&env), "")).await.expect("reload removes the Graph route");
    let out = curl(&env, &["--cacert", &upstream_ca, "-H", &bearer(&no_mfa_public), graph_url]).await;
    assert_eq!((out.connect, out.code), (200, 200), "{out:?}");
    // And the Partner Center route stays guarded throughout.
    let pc_no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let out = curl(&env, &["--cacert", &egress_ca(&env), "-H", &bearer(&pc_no_mfa), crate::PC_URL]).await;
    assert_eq!(out.code, 401, "{out:?}");
}

#[tokio::test]
async fn the_host_lists_and_audience_binding_follow_a_reload() {
    let plain = PlainPeer::start().await;
    let env = TestEnv::setup()
        .route(&format!("host = \"{PC_HOST}\""))
        .egress("default = \"tunnel\"")
        .resolve("intranet.example.net", plain.addr)
        .start()
        .await;
    let (status, _, _) = connect(&env, "files.example.net:443", None).await;
    assert_ne!(status, 403, "allowed before the reload");
    reload(&env, |t| t.replacen("default = \"tunnel\"", "default = \"tunnel\"\ndeny_hosts = [\"*.example.net\"]", 1))
        .await
        .expect("reload adds a deny list");
    let (status, _, body) = connect(&env, "files.example.net:443", None).await;
    assert_eq!(status, 403);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["reason"], "egress_denied");
    let out = curl(&env, &["http://intranet.example.net/"]).await;
    assert_eq!(out.code, 403, "{out:?}");

    // A route added by a reload binds its audience to its host.
    reload(&env, |t| t.replacen("\ndeny_hosts = [\"*.example.net\"]", "", 1)).await.unwrap();
    let custom = env.idp.delegated().claim("aud", "api://contoso-automation").mint();
    let out = curl(&env, &["-H", &bearer(&custom), "http://intranet.example.net/upload"]).await;
    assert_eq!(out.code, 200, "binds nothing yet: {out:?}");
    let route = "[[routes]]\nname = \"contoso\"\nhost = \"api.contoso.example\"\nupstream = \"https://api.contoso.example\"\naudiences = [\"api://contoso-automation\"]\n";
    reload(&env, |t| with_route(t, route)).await.expect("reload adds a route with its own audience");
    let out = curl(&env, &["-H", &bearer(&custom), "http://intranet.example.net/upload"]).await;
    assert_eq!((out.code, out.json()["reason"].as_str()), (403, Some("audience_host_mismatch")), "{out:?}");
    assert_eq!(plain.hits(), 1);
}

#[tokio::test]
async fn an_open_blind_tunnel_closes_when_a_reload_guards_its_host() {
    let env = TestEnv::setup().route(&format!("host = \"{PC_HOST}\"")).egress("default = \"tunnel\"").start().await;
    let token = env.idp.delegated().claim("aud", GRAPH_AUDIENCE).amr(&["pwd"]).mint();
    // A keep-alive HTTP/1.1 connection through a blind tunnel to Graph.
    let io = open_tunnel(&env, &format!("{GRAPH_HOST}:443")).await;
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(env.pki.ca_pem.as_bytes()).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(mfagate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(GRAPH_HOST).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, io).await.unwrap();
    let request = format!("GET /v1.0/me HTTP/1.1\r\nHost: {GRAPH_HOST}\r\nAuthorization: Bearer {token}\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = tls.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "the tunnel works");
    assert_eq!(env.upstream.hits(), 1);

    reload(&env, |t| with_route(t, &graph_route(&env))).await.expect("reload guards Graph");
    // The tunnel is closed (and counted): a second request on it gets nothing.
    eventually("the tunnel is closed", || async {
        env.metric(r#"mfagate_egress_connections_total{kind="denied"}"#).await == 1.0
    })
    .await;
    let _ = tls.write_all(request.as_bytes()).await;
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "the tunnel is still open: {read:?}");
    assert_eq!(env.upstream.hits(), 1, "no request went through the old tunnel");
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="denied"}"#).await, 1.0);
}

#[tokio::test]
async fn the_interception_ca_is_checked_again_and_start_only_keys_are_named() {
    let env = TestEnv::setup().route(&format!("host = \"{PC_HOST}\"")).egress("").start().await;
    let narrow = env.dir.path().join("narrow-ca");
    let options =
        mfagate::egress::ca::CaOptions { permit: vec!["partnercenter.microsoft.com".into()], ..Default::default() };
    mfagate::egress::ca::init(&narrow, &options).unwrap();
    let ca_dir = env.egress_ca.as_ref().unwrap().parent().unwrap().display().to_string();
    // A CA that cannot vouch for a host a new route guards: the reload is refused.
    let err = reload(&env, |t| with_route(&t.replace(&ca_dir, &narrow.display().to_string()), &graph_route(&env)))
        .await
        .unwrap_err();
    assert_eq!(err.key(), Some("egress.ca_cert"), "{err}");
    // The running configuration stays: Graph is still not guarded, Partner Center is.
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(
        &env.config_path,
        text.replace(&narrow.display().to_string(), &ca_dir).replace(&graph_route(&env), ""),
    )
    .unwrap();
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    let client = proxied_client(&env, &std::fs::read_to_string(env.egress_ca.as_ref().unwrap()).unwrap(), false);
    assert_rejected(client.get(crate::PC_URL).bearer_auth(&token).send().await.unwrap(), 401, "mfa_required").await;
    // The listener is bound at start.
    let err = reload(&env, |t| {
        let at = t.find("[egress]").unwrap();
        format!("{}{}", &t[..at], t[at..].replacen("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"", 1))
    })
    .await
    .unwrap_err();
    assert_eq!(err.key(), Some("egress.listen"), "{err}");
    assert_eq!(env.metric(r#"mfagate_config_reload_total{result="failure"}"#).await, 2.0);
}
