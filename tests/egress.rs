//! The egress proxy end to end, with real clients: automation calls
//! `https://api.partnercenter.microsoft.com` by its real name through the
//! proxy (`[egress.resolve]` sends the name to the recording upstream, whose
//! certificate names it), and the gateway's policy applies inside the
//! intercepted tunnel. Blind tunnels and plain forwards are in
//! `egress/tunnel.rs`, bypass attempts in `egress/bypass.rs`, Python
//! `requests` in `egress/python.rs`, `ca init` and start-up checks in
//! `egress/ca.rs`, the systemd unit in `egress/deploy.rs`.

mod support;

#[path = "egress/binding_tokens.rs"]
mod binding_tokens;
#[path = "egress/bypass.rs"]
mod bypass;
#[path = "egress/ca.rs"]
mod ca;
#[path = "egress/clients.rs"]
mod clients;
#[path = "egress/credentials.rs"]
mod credentials;
#[path = "egress/deploy.rs"]
mod deploy;
#[path = "egress/python.rs"]
mod python;
#[path = "egress/reload.rs"]
mod reload;
#[path = "egress/seams.rs"]
mod seams;
#[path = "egress/tenant_restrictions.rs"]
mod tenant_restrictions;
#[path = "egress/tunnel.rs"]
mod tunnel;

use clients::{bearer, connect, curl, egress_ca};
use support::{PC_HOST, Setup, TestEnv, assert_rejected};

pub const PC_URL: &str = "https://api.partnercenter.microsoft.com/v1/customers";
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// Partner Center guarded by host (the main route), Graph by a second route.
pub fn guarded() -> Setup {
    TestEnv::setup().route(&format!("host = \"{PC_HOST}\"")).more_routes(
        r#"
[[routes]]
name = "graph"
host = "graph.microsoft.com"
upstream = "https://graph.microsoft.com"
upstream_ca = "@CA@"
audiences = ["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"]
"#,
    )
}

/// A token for Graph (same tenant and user as `delegated()`).
pub fn graph_token(env: &TestEnv) -> String {
    env.idp.delegated().claim("aud", GRAPH_AUDIENCE).mint()
}

#[tokio::test]
async fn curl_with_an_mfa_token_reaches_the_upstream_by_its_real_name() {
    let env = guarded().egress("").start().await;
    let token = env.idp.delegated().mint();
    let out = curl(&env, &["--cacert", &egress_ca(&env), "-H", &bearer(&token), "-H", "x-custom: kept", PC_URL]).await;
    assert_eq!((out.code, out.connect, out.exit), (200, 200, 0), "{out:?}");
    assert_eq!(env.upstream.hits(), 1);
    let seen = env.upstream.last();
    assert_eq!(seen.path_and_query, "/v1/customers");
    assert_eq!(seen.headers["authorization"], format!("Bearer {token}"), "the token travels on untouched");
    assert_eq!(seen.headers["x-custom"], "kept");
    assert_eq!(seen.headers["x-forwarded-host"], PC_HOST);
    assert!(!seen.headers.contains_key("proxy-authorization"));
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="intercepted"}"#).await, 1.0);
    assert_eq!(
        env.metric(r#"mfagate_requests_total{decision="allow",reason="none",route="partner-center"}"#).await,
        1.0,
        "intercepted requests count under their route"
    );
}

#[tokio::test]
async fn curl_with_a_token_without_mfa_gets_the_json_answer_inside_the_tunnel() {
    let env = guarded().egress("").start().await;
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    let out = curl(&env, &["--cacert", &egress_ca(&env), "-H", &bearer(&token), PC_URL]).await;
    assert_eq!((out.code, out.connect), (401, 200), "{out:?}");
    let body = out.json();
    assert_eq!(body["code"], "900421");
    assert_eq!(body["reason"], "mfa_required");
    assert_eq!(body["source"], "mfagate");
    assert_eq!(env.upstream.hits(), 0, "nothing reached the upstream");
    assert_eq!(
        env.metric(r#"mfagate_requests_total{decision="deny",reason="mfa_required",route="partner-center"}"#).await,
        1.0
    );
    // The same answer, headers included, through reqwest's proxy support.
    let client = proxied_client(&env, &std::fs::read_to_string(env.egress_ca.as_ref().unwrap()).unwrap(), false);
    let rsp = client.get(PC_URL).bearer_auth(&token).send().await.unwrap();
    let challenge = assert_rejected(rsp, 401, "mfa_required").await;
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer realm="mfagate", error="invalid_token", error_description="MFA required""#)
    );
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn http2_inside_an_intercepted_tunnel() {
    let env = guarded().egress("").start().await;
    let token = env.idp.delegated().mint();
    let ca = egress_ca(&env);
    let out = curl(&env, &["--http2", "--cacert", &ca, "-H", &bearer(&token), PC_URL]).await;
    assert_eq!((out.code, out.version.as_str()), (200, "2"), "{out:?}");
    let denied = env.idp.delegated().amr(&["pwd"]).mint();
    let out = curl(&env, &["--http2", "--cacert", &ca, "-H", &bearer(&denied), PC_URL]).await;
    assert_eq!((out.code, out.version.as_str()), (401, "2"), "{out:?}");
    assert_eq!(out.json()["reason"], "mfa_required");
    assert_eq!(env.upstream.hits(), 1);

    // Several streams on one connection: reqwest over h2 through the proxy.
    let client = proxied_client(&env, &std::fs::read_to_string(&ca).unwrap(), true);
    let sent = (0..4).map(|_| client.get(PC_URL).bearer_auth(&token).send());
    for rsp in futures_util::future::join_all(sent).await {
        let rsp = rsp.unwrap();
        assert_eq!(rsp.version(), http::Version::HTTP_2);
        assert_eq!(rsp.status(), 200);
    }
    assert_eq!(env.upstream.hits(), 5);
    assert_eq!(env.metric(r#"mfagate_egress_cert_cache_total{result="miss"}"#).await, 1.0, "one leaf for the host");
    assert!(env.metric(r#"mfagate_egress_cert_cache_total{result="hit"}"#).await >= 2.0);
}

#[tokio::test]
async fn the_upstream_is_verified_against_the_public_roots_without_upstream_ca() {
    // The recording upstream's certificate comes from the test CA: without
    // `upstream_ca` the gateway must refuse to talk to it.
    let env = TestEnv::setup()
        .more_routes(
            r#"
[[routes]]
name = "pc-public-roots"
host = "api.partnercenter.microsoft.com"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]
"#,
        )
        .egress("")
        .start()
        .await;
    let out = curl(&env, &["--cacert", &egress_ca(&env), "-H", &bearer(&env.idp.delegated().mint()), PC_URL]).await;
    assert_eq!(out.code, 502, "{out:?}");
    assert_eq!(out.json()["reason"], "upstream_unavailable");
    assert_eq!(env.upstream.hits(), 0, "no request over an unverified connection");
}

#[tokio::test]
async fn proxy_credentials_are_required_when_configured() {
    let env = guarded()
        .egress("[egress.proxy_auth]\nusername = \"svc-automation\"\npassword = \"correct horse\"")
        .start()
        .await;
    let token = env.idp.delegated().mint();
    let ca = egress_ca(&env);

    for (creds, what) in
        [(None, "missing"), (Some("svc-automation:wrong"), "wrong"), (Some("other:correct horse"), "user")]
    {
        let (status, headers, body) = connect(&env, "api.partnercenter.microsoft.com:443", creds).await;
        assert_eq!(status, 407, "{what}");
        assert_eq!(headers["proxy-authenticate"], r#"Basic realm="mfagate", charset="UTF-8""#);
        assert!(headers.contains_key("ms-correlationid"));
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["reason"], "proxy_auth_required", "{what}");
        assert_eq!(body["code"], "proxy_auth_required");
    }
    let out = curl(&env, &["--cacert", &ca, "-H", &bearer(&token), PC_URL]).await;
    assert_eq!(out.connect, 407, "{out:?}");
    let out =
        curl(&env, &["--proxy-user", "svc-automation:wrong", "--cacert", &ca, "-H", &bearer(&token), PC_URL]).await;
    assert_eq!(out.connect, 407, "{out:?}");
    // Plain requests need them too.
    let out = curl(&env, &["http://files.example.net/"]).await;
    assert_eq!(out.code, 407, "{out:?}");
    assert_eq!(env.upstream.hits(), 0);
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="denied"}"#).await, 6.0);

    let out =
        curl(&env, &["--proxy-user", "svc-automation:correct horse", "--cacert", &ca, "-H", &bearer(&token), PC_URL])
            .await;
    assert_eq!((out.code, out.connect), (200, 200), "{out:?}");
    assert_eq!(env.upstream.hits(), 1);
}

#[tokio::test]
async fn a_wildcard_route_guards_every_name_below_it() {
    let env = TestEnv::setup().route("host = \"*.partnercenter.microsoft.com\"").egress("").start().await;
    let ca = egress_ca(&env);
    let out = curl(&env, &["--cacert", &ca, "-H", &bearer(&env.idp.delegated().mint()), PC_URL]).await;
    assert_eq!(out.code, 200, "{out:?}");
    let out = curl(&env, &["--cacert", &ca, "-H", &bearer(&env.idp.delegated().amr(&["pwd"]).mint()), PC_URL]).await;
    assert_eq!((out.code, out.json()["reason"].as_str()), (401, Some("mfa_required")), "{out:?}");
    assert_eq!(env.upstream.hits(), 1);
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="intercepted"}"#).await, 2.0);
}

#[tokio::test]
async fn a_route_host_written_with_a_final_dot_or_in_capitals_is_guarded_by_its_name() {
    for host in ["api.partnercenter.microsoft.com.", "API.PartnerCenter.Microsoft.com"] {
        let env = TestEnv::setup().route(&format!("host = \"{host}\"")).egress("").start().await;
        let ca = egress_ca(&env);
        let out = curl(&env, &["--cacert", &ca, "-H", &bearer(&env.idp.delegated().mint()), PC_URL]).await;
        assert_eq!((out.connect, out.code), (200, 200), "{host}: {out:?}");
        let denied = env.idp.delegated().amr(&["pwd"]).mint();
        let out = curl(&env, &["--cacert", &ca, "-H", &bearer(&denied), PC_URL]).await;
        assert_eq!(out.code, 401, "{host}: intercepted, not tunnelled: {out:?}");
        assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="intercepted"}"#).await, 2.0, "{host}");
    }
}

/// reqwest with the egress proxy for https and only `ca_pem` trusted.
pub fn proxied_client(env: &TestEnv, ca_pem: &str, http2: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let proxy = reqwest::Proxy::all(format!("http://{}", env.egress.unwrap())).unwrap();
    let mut b = reqwest::Client::builder().tls_certs_only([ca]).proxy(proxy);
    b = if http2 { b.http2_adaptive_window(true) } else { b.http1_only() };
    b.build().unwrap()
}
