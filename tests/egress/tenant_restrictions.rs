//! Tenant restrictions: with `[egress.tenant_restrictions]` the sign-in
//! hosts are intercepted and every request to them reaches the sign-in host
//! (the recording upstream, by `[egress.resolve]`) with exactly one copy of
//! each restriction header, the configured value, whatever copies the
//! client sent; the device authentication hosts are only ever tunnelled.

use http::HeaderMap;

use crate::clients::{TlsPeer, curl, egress_ca};
use crate::support::TestEnv;

const TENANT: &str = "6f1c0a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
const POLICY: &str = "0b7e4c1d-2a3f-4b5c-9d6e-7f8a9b0c1d2e";
const CONTEXT: &str = "6f1c0a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
const V2: &str = "sec-restrict-tenant-access-policy";
const V1_TENANTS: &str = "restrict-access-to-tenants";
const V1_CONTEXT: &str = "restrict-access-context";
const LOGIN: &str = "login.microsoftonline.com";
const TOKEN_URL: &str = "https://login.microsoftonline.com/6f1c0a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b/oauth2/v2.0/token";

fn section(v1: bool) -> String {
    let mut s = format!("[egress.tenant_restrictions]\ntenant_id = \"{TENANT}\"\npolicy_id = \"{POLICY}\"\n");
    if v1 {
        s.push_str(&format!(
            "restrict_access_to_tenants = [\"contoso.onmicrosoft.com\", \"{TENANT}\"]\nrestrict_access_context = \"{CONTEXT}\"\n"
        ));
    }
    s
}

/// The sign-in host as a declared login route to the recording upstream.
const LOGIN_ROUTE: &str = r#"
[[routes]]
name = "sign-in"
host = "login.microsoftonline.com"
upstream = "https://login.microsoftonline.com"
upstream_ca = "@CA@"
"#;

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

fn assert_restricted(headers: &HeaderMap, v1: bool) {
    assert_eq!(values(headers, V2), [format!("{TENANT}:{POLICY}")], "{headers:?}");
    if v1 {
        assert_eq!(values(headers, V1_TENANTS), [format!("contoso.onmicrosoft.com,{TENANT}")], "{headers:?}");
        assert_eq!(values(headers, V1_CONTEXT), [CONTEXT], "{headers:?}");
    } else {
        assert!(values(headers, V1_TENANTS).is_empty() && values(headers, V1_CONTEXT).is_empty(), "{headers:?}");
    }
}

const FORM: &str = "grant_type=client_credentials&client_id=23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21&client_secret=s3cr3t&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";

/// The client's own copies, in every case and count a client can send.
const SMUGGLED: [&str; 6] = [
    "SEC-Restrict-Tenant-Access-Policy: 11111111-1111-1111-1111-111111111111:22222222-2222-2222-2222-222222222222",
    "sec-restrict-tenant-access-policy: attacker",
    "Restrict-Access-To-Tenants: attacker.onmicrosoft.com",
    "restrict-access-context: 11111111-1111-1111-1111-111111111111",
    "X-Smuggle: sec-restrict-tenant-access-policy",
    "Restrict-ACCESS-context: 33333333-3333-3333-3333-333333333333",
];

#[tokio::test]
async fn every_request_to_the_sign_in_host_carries_exactly_the_configured_headers_over_http1_and_http2() {
    let env = TestEnv::setup().more_routes(LOGIN_ROUTE).egress(&section(true)).start().await;
    let ca = egress_ca(&env);
    let mut expected_removed = 0.0;
    for (version, smuggle) in [("--http1.1", false), ("--http1.1", true), ("--http2", false), ("--http2", true)] {
        let mut args = vec![version, "--cacert", &ca, "-H", "content-type: application/x-www-form-urlencoded"];
        if smuggle {
            expected_removed += 1.0;
            for h in SMUGGLED {
                args.extend(["-H", h]);
            }
        }
        args.extend(["--data", FORM, TOKEN_URL]);
        let out = curl(&env, &args).await;
        assert_eq!((out.code, out.connect), (200, 200), "{version} {smuggle}: {out:?}");
        assert_eq!(out.version, if version == "--http2" { "2" } else { "1.1" }, "{out:?}");
        assert_eq!(out.body, FORM, "the token request reached the sign-in host intact");
        let seen = env.upstream.last();
        assert_restricted(&seen.headers, true);
        assert_eq!(seen.path_and_query, TOKEN_URL.trim_start_matches("https://login.microsoftonline.com"));
    }
    // A v1 header named in Connection is hop-by-hop: dropped, then set anew,
    // and counted as the client's own copy.
    expected_removed += 1.0;
    let out = curl(
        &env,
        &["--http1.1", "--cacert", &ca, "-H", "Connection: keep-alive, Restrict-Access-To-Tenants"]
            .into_iter()
            .chain(["-H", "Restrict-Access-To-Tenants: attacker.onmicrosoft.com", "--data", FORM, TOKEN_URL])
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(out.code, 200, "{out:?}");
    assert_restricted(&env.upstream.last().headers, true);
    assert_eq!(env.upstream.hits(), 5);
    let series = |action: &str| format!(r#"mfagate_tenant_restrictions_total{{action="{action}",host="{LOGIN}"}}"#);
    assert_eq!(env.metric(&series("injected")).await, 5.0);
    assert_eq!(env.metric(&series("client_header_removed")).await, expected_removed);
    assert_eq!(
        env.metric(r#"mfagate_tenant_restrictions_total{action="injected",host="login.live.com"}"#).await,
        0.0,
        "every host's series exists from the start"
    );
}

#[tokio::test]
async fn a_sign_in_host_no_route_names_gets_a_built_in_login_route() {
    // No route for login.microsoft.com: the built-in one (public roots)
    // intercepts it; the recording upstream's test certificate is refused.
    let env = TestEnv::setup().egress(&section(false)).start().await;
    let out = curl(
        &env,
        &["--cacert", &egress_ca(&env), "--data", FORM, "https://login.microsoft.com/organizations/oauth2/v2.0/token"],
    )
    .await;
    assert_eq!((out.connect, out.code), (200, 502), "intercepted by the built-in route: {out:?}");
    assert_eq!(out.json()["error"], "temporarily_unavailable", "{out:?}");
    assert_eq!(env.upstream.hits(), 0);
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="intercepted"}"#).await, 1.0);
    assert_eq!(
        env.metric(r#"mfagate_tenant_restrictions_total{action="injected",host="login.microsoft.com"}"#).await,
        1.0
    );
    // The built-in route is a login route: the password grant is refused.
    let out =
        curl(&env, &["--cacert", &egress_ca(&env), "--data", "grant_type=password&username=a&password=b", TOKEN_URL])
            .await;
    assert_eq!(out.code, 403, "{out:?}");
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn device_hosts_are_tunnelled_blind_even_under_a_wildcard_route() {
    let dir = tempfile::tempdir().unwrap();
    let device = TlsPeer::start(dir.path(), "device.login.microsoftonline.com").await;
    let wildcard = r#"
[[routes]]
name = "sign-in-any"
kind = "login"
host = "*.microsoftonline.com"
upstream = "https://login.microsoftonline.com"
upstream_ca = "@CA@"
"#;
    let env = TestEnv::setup()
        .more_routes(wildcard)
        .egress(&format!("allow_hosts = [\"device.login.microsoftonline.com\"]\n{}", section(false)))
        .resolve("device.login.microsoftonline.com", device.addr)
        .start()
        .await;
    let own_ca = device.ca_path.display().to_string();
    let out =
        curl(&env, &["--cacert", &own_ca, "https://device.login.microsoftonline.com/common/oauth2/deviceauth"]).await;
    assert_eq!((out.connect, out.code), (200, 200), "{out:?}");
    assert_eq!(out.body, "served by the tunnel's own target");
    assert_eq!(device.hits(), 1);
    assert_eq!(env.metric(r#"mfagate_egress_connections_total{kind="tunnelled"}"#).await, 1.0);
    assert_eq!(env.metric(r#"mfagate_egress_cert_cache_total{result="miss"}"#).await, 0.0, "no leaf issued");
    // The wildcard still guards the sign-in host itself.
    let out = curl(&env, &["--cacert", &egress_ca(&env), "--data", FORM, TOKEN_URL]).await;
    assert_eq!(out.code, 200, "{out:?}");
    assert_restricted(&env.upstream.last().headers, false);
    // enterpriseregistration.windows.net is not allowed here: refused, not intercepted.
    let out = curl(&env, &["--cacert", &egress_ca(&env), "https://enterpriseregistration.windows.net/"]).await;
    assert_eq!(out.connect, 403, "{out:?}");
}

/// `env`'s configuration file rewritten by `change`, then reloaded.
async fn reload(env: &TestEnv, change: impl Fn(&str) -> String) -> Result<(), mfagate::reload::ReloadError> {
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(&env.config_path, change(&text)).unwrap();
    env.reloader.reload().await
}

#[tokio::test]
async fn a_reload_adds_changes_and_removes_the_section_for_the_next_request() {
    let env = TestEnv::setup().more_routes(LOGIN_ROUTE).egress("").start().await;
    let ca = egress_ca(&env);
    let send = || async {
        let out = curl(&env, &["--cacert", &ca, "--data", FORM, TOKEN_URL]).await;
        assert_eq!(out.code, 200, "{out:?}");
        env.upstream.last().headers
    };
    assert!(values(&send().await, V2).is_empty(), "no section, no header");
    reload(&env, |t| format!("{t}\n{}", section(false))).await.expect("reload adds the section");
    assert_restricted(&send().await, false);
    reload(&env, |t| t.replace(POLICY, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")).await.expect("reload changes it");
    assert_eq!(values(&send().await, V2), [format!("{TENANT}:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")]);
    // A bad one names the key and keeps the configuration being served.
    let err = reload(&env, |t| t.replace(TENANT, "not-a-guid")).await.unwrap_err();
    assert!(err.to_string().contains("egress.tenant_restrictions.tenant_id"), "{err}");
    assert_eq!(values(&send().await, V2), [format!("{TENANT}:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")]);
    reload(&env, |t| {
        let t = t.replace("not-a-guid", TENANT);
        let at = t.find("[egress.tenant_restrictions]").unwrap();
        t[..at].to_string()
    })
    .await
    .expect("reload removes it");
    assert!(values(&send().await, V2).is_empty(), "the section is gone, and so is the header");
}

/// A request to the reverse-proxy listener with the client's own copies of
/// every restriction header, for `path` with `host` as its `Host`.
async fn reverse(env: &TestEnv, host: Option<&str>, path: &str) -> reqwest::Response {
    let client = crate::support::client(&env.pki.ca_pem, true);
    let mut req = client.post(env.url(path)).header("content-type", "application/x-www-form-urlencoded");
    if let Some(host) = host {
        req = req.header("host", host);
    }
    for h in SMUGGLED {
        let (name, value) = h.split_once(": ").unwrap();
        req = req.header(name, value);
    }
    req.body(FORM).send().await.unwrap()
}

#[tokio::test]
async fn the_reverse_listener_forwards_to_a_sign_in_host_only_with_the_configured_headers() {
    // Routes whose upstream is a sign-in host (spelled in upper case, with a
    // final dot and the port), served by the reverse-proxy listener (no
    // CONNECT anywhere): the decision is the destination's, not the listener's.
    let by_path = format!(
        "[[routes]]\nname = \"sign-in-by-path\"\nkind = \"login\"\npath_prefix = \"/{TENANT}\"\nupstream = \"https://LOGIN.MicrosoftOnline.com.:443\"\nupstream_ca = \"@CA@\"\n"
    );
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!("{LOGIN_ROUTE}{by_path}"))
        .egress(&section(true))
        .start()
        .await;
    let path = format!("/{TENANT}/oauth2/v2.0/token");
    // The route named by Host (the declared login.microsoftonline.com route).
    let rsp = reverse(&env, Some(LOGIN), &path).await;
    assert_eq!(rsp.status(), 200, "{:?}", rsp.text().await);
    let seen = env.upstream.last();
    assert_restricted(&seen.headers, true);
    assert_eq!(seen.path_and_query, path);
    // The route chosen by its path, its upstream a sign-in host.
    let rsp = reverse(&env, None, &path).await;
    assert_eq!(rsp.status(), 200, "{:?}", rsp.text().await);
    assert_restricted(&env.upstream.last().headers, true);
    assert_eq!(env.upstream.hits(), 2);
    let series = |action: &str| format!(r#"mfagate_tenant_restrictions_total{{action="{action}",host="{LOGIN}"}}"#);
    assert_eq!(env.metric(&series("injected")).await, 2.0);
    assert_eq!(env.metric(&series("client_header_removed")).await, 2.0);
    // A built-in route served by the reverse listener injects too (its
    // upstream, the real host, is not trusted here: 502, but the headers
    // were set on what was sent).
    let rsp = reverse(&env, Some("login.microsoft.com"), "/common/oauth2/v2.0/token").await;
    assert_eq!(rsp.status(), 502);
    assert_eq!(
        env.metric(r#"mfagate_tenant_restrictions_total{action="injected",host="login.microsoft.com"}"#).await,
        1.0
    );
    // Without the section nothing is added, and a client's copy is the client's business.
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&by_path).egress("").start().await;
    let rsp = reverse(&env, None, &path).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(values(&env.upstream.last().headers, V2).len(), 2, "passed on as sent");
}

#[tokio::test]
async fn a_json_token_request_a_strict_parser_rejects_is_refused_through_the_proxy() {
    let env = TestEnv::setup().more_routes(LOGIN_ROUTE).egress(&section(false)).start().await;
    let ca = egress_ca(&env);
    let body = r#"{"grant_type":"password","username":"a@b.c","password":"Hunter2","client_id":"04b07795-8ddb-461a-bbee-02f9e1bf7b46","x":1e99999}"#;
    for content_type in ["content-type: application/json", "content-type: text/json", "content-type: text/plain"] {
        let out = curl(&env, &["--cacert", &ca, "-H", content_type, "--data", body, TOKEN_URL]).await;
        assert_eq!(out.code, 400, "{content_type}: {out:?}");
        let answer: serde_json::Value = serde_json::from_str(&out.body).unwrap();
        assert_eq!(answer["reason"], "bad_request", "{answer}");
        assert!(answer["error_description"].as_str().unwrap().ends_with("(rule: token_request_json)."), "{answer}");
        assert!(!out.body.contains("Hunter2"));
    }
    assert_eq!(env.upstream.hits(), 0, "the password never reached the sign-in host");
}
