//! One end-to-end test per rejection reason: status, body, `WWW-Authenticate`,
//! and that the upstream was never reached.

mod support;

use jsonwebtoken::{Algorithm, EncodingKey};
use support::idp::{OTHER_TID, SAM_APP, keys, now};
use support::{JwksMode, TestEnv, assert_rejected};

const INVALID: &str = r#"Bearer realm="mfagate", error="invalid_token""#;
const FORBIDDEN: &str = r#"Bearer realm="mfagate", error="insufficient_scope""#;

/// Sends `token` to `/v1/customers` and checks the whole rejection.
async fn denied(env: &TestEnv, token: Option<&str>, status: u16, reason: &str, challenge: Option<&str>) {
    let before = env.upstream.hits();
    let rsp = env.get("/v1/customers?size=10", token).await;
    let got = assert_rejected(rsp, status, reason).await;
    match challenge {
        Some(prefix) => {
            let got = got.unwrap_or_else(|| panic!("{reason}: no WWW-Authenticate"));
            assert!(got.starts_with(prefix), "{reason}: {got}");
        }
        None => assert!(got.is_none(), "{reason}: unexpected challenge {got:?}"),
    }
    assert_eq!(env.upstream.hits(), before, "{reason}: the upstream was reached");
}

#[tokio::test]
async fn missing_token() {
    let env = TestEnv::setup().start().await;
    denied(&env, None, 401, "missing_token", Some(r#"Bearer realm="mfagate""#)).await;
    let rsp = env.client.get(env.url("/v1/customers")).header("authorization", "Token abc").send().await.unwrap();
    assert_eq!(assert_rejected(rsp, 401, "missing_token").await.unwrap(), r#"Bearer realm="mfagate""#);
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn legacy_auth() {
    let env = TestEnv::setup().start().await;
    for value in [
        "Basic YWRtaW46cGFzc3dvcmQ=",
        "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
        "Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnag",
        "Digest username=\"admin\"",
    ] {
        let rsp = env.client.get(env.url("/v1/customers")).header("authorization", value).send().await.unwrap();
        let challenge = assert_rejected(rsp, 401, "legacy_auth").await.unwrap();
        assert_eq!(challenge, r#"Bearer realm="mfagate""#);
    }
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn malformed_token() {
    let env = TestEnv::setup().start().await;
    denied(&env, Some("not-a-jwt"), 401, "malformed_token", Some(INVALID)).await;
    let token = env.idp.delegated().claim("exp", "tomorrow").mint();
    denied(&env, Some(&token), 401, "malformed_token", Some(INVALID)).await;
    let rsp = env
        .client
        .get(env.url("/v1/customers"))
        .header("authorization", format!("Bearer {}", env.idp.delegated().mint()))
        .header("authorization", format!("Bearer {}", env.idp.delegated().mint()))
        .send()
        .await
        .unwrap();
    assert_rejected(rsp, 401, "malformed_token").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn disallowed_alg() {
    let env = TestEnv::setup().start().await;
    // HS256 keyed with the RSA public key: the classic key-confusion forgery.
    let pem = keys().primary.public_pem.clone();
    let confused = env
        .idp
        .delegated()
        .header("alg", "HS256")
        .signed_with(Algorithm::HS256, EncodingKey::from_secret(pem.as_bytes()).unwrap())
        .mint();
    denied(&env, Some(&confused), 401, "disallowed_alg", Some(INVALID)).await;
    let (h, c) = env.idp.delegated().header("alg", "none").unsigned_parts();
    denied(&env, Some(&format!("{h}.{c}.")), 401, "disallowed_alg", Some(INVALID)).await;
    // An RS256 key asked to verify an ES256 signature.
    let wrong_family = env.idp.delegated().header("alg", "ES256").signed_by(&keys().ec).mint();
    denied(&env, Some(&wrong_family), 401, "disallowed_alg", Some(INVALID)).await;
}

#[tokio::test]
async fn unknown_key() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().header("kid", "no-such-kid").mint();
    denied(&env, Some(&token), 401, "unknown_key", Some(INVALID)).await;
    let token = env.idp.delegated().header("kid", "../../../../etc/passwd").mint();
    denied(&env, Some(&token), 401, "unknown_key", Some(INVALID)).await;
}

#[tokio::test]
async fn bad_signature() {
    let env = TestEnv::setup().start().await;
    let forged = env.idp.delegated().signed_by(&keys().rogue).mint();
    denied(&env, Some(&forged), 401, "bad_signature", Some(INVALID)).await;
    // A valid token whose claims were edited after signing.
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    let (_, mfa_claims) = env.idp.delegated().unsigned_parts();
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[1] = &mfa_claims;
    denied(&env, Some(&parts.join(".")), 401, "bad_signature", Some(INVALID)).await;
}

#[tokio::test]
async fn bad_issuer() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().claim("iss", format!("https://sts.windows.net/{OTHER_TID}/")).mint();
    denied(&env, Some(&token), 401, "bad_issuer", Some(INVALID)).await;
    let token = env.idp.delegated().claim("iss", "https://login.evil.example/{tenantid}/").mint();
    denied(&env, Some(&token), 401, "bad_issuer", Some(INVALID)).await;
}

#[tokio::test]
async fn bad_audience() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().claim("aud", "https://graph.microsoft.com").mint();
    denied(&env, Some(&token), 401, "bad_audience", Some(INVALID)).await;
}

#[tokio::test]
async fn an_audience_path_compares_exactly() {
    let env = TestEnv::setup()
        .route("path_prefix = \"/other\"")
        .more_routes(
            r#"
[[routes]]
name = "pc-v1"
kind = "partner-center"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://api.partnercenter.microsoft.com/v1"]
"#,
        )
        .start()
        .await;
    for aud in [
        "https://api.partnercenter.microsoft.com/V1",
        "HTTPS://API.PARTNERCENTER.MICROSOFT.COM/V1/",
        "https://api.partnercenter.microsoft.com/v1/x",
        "https://api.partnercenter.microsoft.com",
        "https://api.partnercenter.microsoft.com/v1?x",
    ] {
        let token = env.idp.delegated().claim("aud", aud).mint();
        denied(&env, Some(&token), 401, "bad_audience", Some(INVALID)).await;
    }
    // Scheme and host in any case, a trailing slash: the same audience.
    let token = env.idp.delegated().claim("aud", "HTTPS://Api.PartnerCenter.Microsoft.com/v1/").mint();
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn expired() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().claim("exp", now() - 120).mint();
    denied(&env, Some(&token), 401, "expired", Some(INVALID)).await;
}

#[tokio::test]
async fn not_yet_valid() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().claim("nbf", now() + 3600).claim("exp", now() + 7200).mint();
    denied(&env, Some(&token), 401, "not_yet_valid", Some(INVALID)).await;
}

#[tokio::test]
async fn mfa_required() {
    let env = TestEnv::setup().start().await;
    for amr in [vec!["pwd"], vec!["wiaormfa"], vec!["pwd", "rsa"], vec![]] {
        let token = env.idp.delegated().amr(&amr).mint();
        denied(
            &env,
            Some(&token),
            401,
            "mfa_required",
            Some(r#"Bearer realm="mfagate", error="invalid_token", error_description="MFA required""#),
        )
        .await;
    }
    let token = env.idp.delegated().without("amr").mint();
    denied(&env, Some(&token), 401, "mfa_required", Some(INVALID)).await;
}

#[tokio::test]
async fn tenant_not_allowed() {
    let env = TestEnv::setup().identity(&format!(r#"tenants = ["{OTHER_TID}"]"#)).start().await;
    let token = env.idp.delegated().mint();
    denied(&env, Some(&token), 403, "tenant_not_allowed", Some(FORBIDDEN)).await;
}

#[tokio::test]
async fn app_only_not_allowed() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.app_only().mint();
    denied(&env, Some(&token), 403, "app_only_not_allowed", Some(FORBIDDEN)).await;
    let no_idtyp = env.idp.app_only().without("idtyp").mint();
    denied(&env, Some(&no_idtyp), 403, "app_only_not_allowed", Some(FORBIDDEN)).await;
}

#[tokio::test]
async fn public_client() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().claim("appidacr", "0").claim("appid", support::idp::AZURE_CLI).mint();
    denied(&env, Some(&token), 403, "public_client", Some(FORBIDDEN)).await;
    let token = env.idp.delegated().without("appidacr").mint();
    denied(&env, Some(&token), 403, "public_client", Some(FORBIDDEN)).await;
}

#[tokio::test]
async fn app_not_allowed() {
    let env = TestEnv::setup().route(r#"allowed_apps = ["11111111-2222-3333-4444-555555555555"]"#).start().await;
    let token = env.idp.delegated().mint();
    denied(&env, Some(&token), 403, "app_not_allowed", Some(FORBIDDEN)).await;
    let allowed = TestEnv::setup().route(&format!(r#"allowed_apps = ["{}"]"#, SAM_APP.to_uppercase())).start().await;
    assert_eq!(allowed.get("/v1/customers", Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn keys_unavailable() {
    let env = TestEnv::setup().jwks(JwksMode::Fail).start().await;
    let token = env.idp.delegated().mint();
    let rsp = env.get("/v1/customers", Some(&token)).await;
    assert_eq!(rsp.headers()["retry-after"], "5");
    assert!(assert_rejected(rsp, 503, "keys_unavailable").await.is_none());
    assert_eq!(env.upstream.hits(), 0);
    let ready = reqwest::get(env.admin_url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn no_route() {
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .route(r#"host = "api.partnercenter.microsoft.com""#)
        .start()
        .await;
    let token = env.idp.delegated().mint();
    // Right path, wrong host (the client addresses localhost).
    denied(&env, Some(&token), 404, "no_route", None).await;
    let h1 = support::client(&env.pki.ca_pem, true);
    let rsp = h1
        .get(env.url("/v1x/customers"))
        .header("host", "api.partnercenter.microsoft.com")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_rejected(rsp, 404, "no_route").await;
    assert_eq!(env.upstream.hits(), 0);
    // Right host and path: forwarded.
    let rsp = h1
        .get(env.url("/v1/customers"))
        .header("host", "api.partnercenter.microsoft.com")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.upstream.hits(), 1);
}

#[tokio::test]
async fn bad_request_when_connection_names_a_checked_field() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    let h1 = support::client(&env.pki.ca_pem, true);
    let rsp = h1
        .get(env.url("/v1/customers"))
        .bearer_auth(&token)
        .header("connection", "authorization")
        .send()
        .await
        .unwrap();
    assert!(assert_rejected(rsp, 400, "bad_request").await.is_none());
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn upstream_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!(
            "[[routes]]\nname = \"dead\"\nupstream = \"https://127.0.0.1:{port}\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\n"
        ))
        .start()
        .await;
    let token = env.idp.delegated().mint();
    let rsp = env.get("/dead/x", Some(&token)).await;
    assert!(assert_rejected(rsp, 502, "upstream_unavailable").await.is_none());
    let errors = env.metric(r#"mfagate_upstream_errors_total{kind="connect",route="dead"}"#).await;
    assert_eq!(errors, 1.0);
}

#[tokio::test]
async fn upstream_timeout() {
    let env = TestEnv::setup().server(r#"upstream_timeout = "300ms""#).start().await;
    let token = env.idp.delegated().mint();
    let rsp = env.get("/slow", Some(&token)).await;
    assert!(assert_rejected(rsp, 504, "upstream_timeout").await.is_none());
    assert_eq!(env.upstream.hits(), 1, "the request did reach the upstream, which was too slow");
    assert_eq!(env.metric(r#"mfagate_upstream_errors_total{kind="timeout",route="partner-center"}"#).await, 1.0);
}

#[tokio::test]
async fn deny_metrics_count_each_reason() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    for _ in 0..3 {
        env.get("/v1/customers", Some(&token)).await;
    }
    env.get("/v1/customers", None).await;
    let scrape = env.metrics().await;
    let deny = |reason: &str| {
        support::sample(
            &scrape,
            &format!(r#"mfagate_requests_total{{decision="deny",reason="{reason}",route="partner-center"}}"#),
        )
    };
    assert_eq!(deny("mfa_required"), 3.0);
    assert_eq!(deny("missing_token"), 1.0);
    assert_eq!(
        support::sample(&scrape, r#"mfagate_requests_total{decision="allow",reason="none",route="partner-center"}"#),
        0.0
    );
}
