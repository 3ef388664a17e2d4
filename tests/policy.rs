//! The partner policy end to end: each rule's rejection (status, body,
//! challenge, upstream untouched), staged enforcement on both sides of the
//! instant, per-rule report-only, exemptions, the step-up challenge,
//! unverifiable Graph tokens, token requests on a login route, and the
//! decision log.

mod support;

use base64::Engine;
use support::idp::{AZURE_CLI, GLOBAL_ADMIN, GRAPH_AUDIENCE, OID, OTHER_TID, SAM_APP, TID, USER_ADMIN, now};
use support::{TestEnv, assert_rejected};

const INVALID: &str = r#"Bearer realm="mfagate", error="invalid_token""#;
const FORBIDDEN: &str = r#"Bearer realm="mfagate", error="insufficient_scope""#;
/// Tenants with no relationship, and with an ended one.
const STRANGER_TID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const FORMER_TID: &str = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f";

/// GETs `path` with `token` and checks the whole rejection.
async fn denied(env: &TestEnv, path: &str, token: &str, status: u16, reason: &str, challenge: Option<&str>) {
    let before = env.upstream.hits();
    let got = assert_rejected(env.get(path, Some(token)).await, status, reason).await;
    match challenge {
        Some(prefix) => {
            let got = got.unwrap_or_else(|| panic!("{reason}: no WWW-Authenticate"));
            assert!(got.starts_with(prefix), "{reason}: {got}");
        }
        None => assert!(got.is_none(), "{reason}: unexpected challenge {got:?}"),
    }
    assert_eq!(env.upstream.hits(), before, "{reason}: the upstream was reached");
}

async fn allowed(env: &TestEnv, path: &str, token: &str) {
    let before = env.upstream.hits();
    let rsp = env.get(path, Some(token)).await;
    assert_eq!(rsp.status(), 200, "{path}: {}", rsp.text().await.unwrap());
    assert_eq!(env.upstream.hits(), before + 1);
}

/// A Microsoft Graph route at `/v1.0` (an AOBO route), next to the main
/// route, which then serves `/v1` only.
fn graph_route(extra: &str) -> String {
    format!(
        "[[routes]]\nname = \"graph\"\npath_prefix = \"/v1.0\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\naudiences = [\"{GRAPH_AUDIENCE}\"]\n{extra}\n"
    )
}

async fn with_graph(extra: &str) -> TestEnv {
    TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&graph_route(extra)).start().await
}

fn counter(decision: &str, reason: &str, route: &str) -> String {
    format!(r#"mfagate_requests_total{{decision="{decision}",reason="{reason}",route="{route}"}}"#)
}

fn day(offset_days: i64) -> String {
    mfagate::rfc3339::format(now() + offset_days * 86_400)
}

#[tokio::test]
async fn app_denied_for_scripting_clients() {
    let env =
        TestEnv::setup().route("denied_apps = [\"@scripting-clients\"]\nallow_public_clients = true").start().await;
    let cli = env.idp.delegated().claim("appid", AZURE_CLI).claim("appidacr", "0").mint();
    denied(&env, "/v1/customers", &cli, 403, "app_denied", Some(FORBIDDEN)).await;
    let graph_cli = env.idp.delegated().claim("appid", "14D82EEC-204B-4C2F-B7E8-296A70DAB67E").mint();
    denied(&env, "/v1/customers", &graph_cli, 403, "app_denied", Some(FORBIDDEN)).await;
    allowed(&env, "/v1/customers", &env.idp.delegated().claim("appidacr", "0").mint()).await;
}

#[tokio::test]
async fn certificate_required() {
    let env = TestEnv::setup().route("require_certificate_client = true").start().await;
    denied(&env, "/v1/customers", &env.idp.delegated().mint(), 403, "certificate_required", Some(FORBIDDEN)).await;
    allowed(&env, "/v1/customers", &env.idp.delegated().claim("appidacr", "2").mint()).await;
}

#[tokio::test]
async fn mfa_unprovable_v2() {
    let env = TestEnv::setup().start().await;
    let challenge =
        r#"Bearer realm="mfagate", error="invalid_token", error_description="MFA required, v2 token has no amr""#;
    denied(&env, "/v1/customers", &env.idp.v2().mint(), 401, "mfa_unprovable_v2", Some(challenge)).await;
    // A v1 token without amr is plainly missing MFA.
    denied(&env, "/v1/customers", &env.idp.delegated().without("amr").mint(), 401, "mfa_required", Some(INVALID)).await;
}

#[tokio::test]
async fn foreign_tenant_not_allowed() {
    let env = with_graph(&format!("partner_tenants = [\"{TID}\"]")).await;
    allowed(&env, "/v1.0/users", &env.idp.aobo().mint()).await;
    let guest = env.idp.aobo().claim("idp", format!("https://sts.windows.net/{STRANGER_TID}/")).mint();
    denied(&env, "/v1.0/users", &guest, 403, "foreign_tenant_not_allowed", Some(FORBIDDEN)).await;
    let msa = env.idp.aobo().claim("idp", "live.com").mint();
    denied(&env, "/v1.0/users", &msa, 403, "foreign_tenant_not_allowed", Some(FORBIDDEN)).await;
}

#[tokio::test]
async fn customers_of_aobo_calls() {
    let customers = format!(
        "partner_tenants = [\"{TID}\"]\ncustomers = [{{ tenant_id = \"{OTHER_TID}\", ends = \"{}\" }}, {{ tenant_id = \"{FORMER_TID}\", ends = \"{}\" }}]",
        day(30),
        day(-1)
    );
    let env = with_graph(&customers).await;
    allowed(&env, "/v1.0/users", &env.idp.aobo().mint()).await;
    let stranger = env.idp.aobo().tenant(STRANGER_TID).mint();
    denied(&env, "/v1.0/users", &stranger, 403, "customer_not_allowed", Some(FORBIDDEN)).await;
    let former = env.idp.aobo().tenant(FORMER_TID).mint();
    denied(&env, "/v1.0/users", &former, 403, "relationship_expired", Some(FORBIDDEN)).await;
    // The partner's own tenant is not a customer.
    let own = env.idp.aobo().tenant(TID).without("idp").mint();
    allowed(&env, "/v1.0/users", &own).await;
}

#[tokio::test]
async fn customers_of_partner_center_calls_from_a_relationship_export() {
    let dir = tempfile::tempdir().unwrap();
    let export = serde_json::json!({"value": [
        {"id": "r1", "status": "active", "endDateTime": day(30), "customer": {"tenantId": OTHER_TID}},
        {"id": "r2", "status": "expired", "endDateTime": day(-10), "customer": {"tenantId": FORMER_TID}},
    ]});
    let path = support::write(dir.path(), "relationships.json", &export.to_string());
    let env = TestEnv::setup().route(&format!("customers = \"{}\"", path.display())).start().await;
    let token = env.idp.delegated().mint();
    allowed(&env, &format!("/v1/customers/{OTHER_TID}/subscriptions"), &token).await;
    allowed(&env, "/v1/customers?size=10", &token).await;
    let reason = |path: String, status: u16, reason: &'static str| (path, status, reason);
    for (path, status, reason) in [
        reason(format!("/v1/customers/{FORMER_TID}/orders"), 403, "relationship_expired"),
        reason(format!("/v1/customers/{STRANGER_TID}"), 403, "customer_not_allowed"),
        reason(format!("/v1/Customers/{}/users", STRANGER_TID.to_uppercase()), 403, "customer_not_allowed"),
        reason(format!("/v1/customers/%30{}/users", &STRANGER_TID[1..]), 403, "customer_not_allowed"),
    ] {
        let challenge = (status == 403).then_some(FORBIDDEN);
        denied(&env, &path, &token, status, reason, challenge).await;
    }
    // A dot segment could make the upstream read another customer than the one checked.
    let before = env.upstream.hits();
    let out = tokio::process::Command::new(support::setup::program("curl"))
        .args(["-sS", "--max-time", "20", "--path-as-is", "--cacert"])
        .arg(&env.pki.ca_path)
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(env.url(&format!("/v1/customers/{OTHER_TID}/../{STRANGER_TID}/users")))
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .await
        .expect("curl runs");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["reason"], "bad_request", "{body}");
    assert_eq!(env.upstream.hits(), before);
}

#[tokio::test]
async fn privileged_role_on_aobo_routes_by_default() {
    let env = with_graph("").await;
    allowed(&env, "/v1.0/users", &env.idp.aobo().mint()).await;
    let ga = env.idp.aobo().claim("wids", vec![USER_ADMIN, GLOBAL_ADMIN]).mint();
    denied(&env, "/v1.0/users", &ga, 403, "privileged_role", Some(FORBIDDEN)).await;
    // Partner Center routes deny no role unless configured.
    allowed(&env, "/v1/customers", &env.idp.delegated().claim("wids", vec![GLOBAL_ADMIN]).mint()).await;
}

#[tokio::test]
async fn legacy_auth_on_exchange_endpoints() {
    let env = TestEnv::setup().start().await;
    for (path, value) in [
        ("/EWS/Exchange.asmx", "MSAuth1.0 usertoken=\"x\""),
        ("/Microsoft-Server-ActiveSync", "Basic dXNlcjpwYXNz"),
        ("/autodiscover/autodiscover.xml", "X-Custom abc"),
        ("/mapi/emsmdb/", "Negotiate YII="),
    ] {
        let rsp = env.client.post(env.url(path)).header("authorization", value).send().await.unwrap();
        assert_eq!(assert_rejected(rsp, 401, "legacy_auth").await.unwrap(), r#"Bearer realm="mfagate""#, "{path}");
    }
    // Elsewhere an unknown scheme is simply not a bearer token.
    let rsp = env.client.get(env.url("/v1/customers")).header("authorization", "X-Custom abc").send().await.unwrap();
    assert_rejected(rsp, 401, "missing_token").await;
    assert_eq!(env.upstream.hits(), 0);
    allowed(&env, "/EWS/Exchange.asmx", &env.idp.delegated().mint()).await;
}

/// `login.microsoftonline.com` as an egress route: token requests pass,
/// the password grant does not, and bodies arrive intact.
fn login_route(extra: &str) -> String {
    format!(
        "[[routes]]\nname = \"login\"\nkind = \"login\"\npath_prefix = \"/organizations\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\n{extra}\n"
    )
}

#[tokio::test]
async fn password_grant_on_the_token_endpoint() {
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&login_route("")).start().await;
    let url = env.url("/organizations/oauth2/v2.0/token");
    let form = |body: &'static str| {
        env.client.post(&url).header("content-type", "application/x-www-form-urlencoded").body(body)
    };
    let ropc = "client_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46&grant_type=password&username=admin%40contoso.com&password=hunter2&scope=openid";
    let rsp = form(ropc).send().await.unwrap();
    assert!(assert_rejected(rsp, 403, "password_grant").await.is_none(), "no bearer challenge on a token request");
    // Sent in chunks, with the grant type in the last one.
    let chunks = futures_util::stream::iter(
        ["client_id=x&scope=openid&", "username=a&password=b&", "grant_type=password"]
            .map(|c| Ok::<_, std::io::Error>(c.as_bytes().to_vec())),
    );
    let rsp = env.client.post(&url).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_rejected(rsp, 403, "password_grant").await;
    let rsp =
        env.client.post(format!("{url}?grant_type=password")).body("grant_type=refresh_token").send().await.unwrap();
    assert_rejected(rsp, 403, "password_grant").await;
    assert_eq!(env.upstream.hits(), 0);

    // Other grants pass, body intact, client credentials in Basic allowed.
    let body = "client_id=23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21&grant_type=refresh_token&refresh_token=0.AAAA&scope=https%3A%2F%2Fapi.partnercenter.microsoft.com%2Fuser_impersonation";
    let rsp = form(body).basic_auth(SAM_APP, Some("secret")).send().await.unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.text().await.unwrap(), body);
    assert_eq!(env.upstream.last().path_and_query, "/organizations/oauth2/v2.0/token");
    assert_eq!(env.upstream.last().headers["content-length"], body.len().to_string().as_str());
    let chunks = futures_util::stream::iter(
        ["grant_type=authorization_code&", "code=0.AQ&", "redirect_uri=https%3A%2F%2Flocalhost"]
            .map(|c| Ok::<_, std::io::Error>(c.as_bytes().to_vec())),
    );
    let rsp = env.client.post(&url).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(
        rsp.text().await.unwrap(),
        "grant_type=authorization_code&code=0.AQ&redirect_uri=https%3A%2F%2Flocalhost"
    );
    // Bounded: larger bodies and encoded bodies are refused.
    let big = "a".repeat(64 * 1024 + 1);
    assert_rejected(env.client.post(&url).body(big.clone()).send().await.unwrap(), 400, "bad_request").await;
    let big_chunked = futures_util::stream::iter((0..65).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 1024])));
    let rsp = env.client.post(&url).body(reqwest::Body::wrap_stream(big_chunked)).send().await.unwrap();
    assert_rejected(rsp, 400, "bad_request").await;
    let rsp = env.client.post(&url).header("content-encoding", "gzip").body("x").send().await.unwrap();
    assert_rejected(rsp, 400, "bad_request").await;
    assert_eq!(env.upstream.hits(), 2);
}

#[tokio::test]
async fn password_grant_in_report_only() {
    let route = login_route("rule_modes = { legacy_auth = \"report-only\" }");
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&route).start().await;
    let rsp = env.client.post(env.url("/organizations/oauth2/token")).body("grant_type=password").send().await.unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.metric(&counter("would_deny", "password_grant", "login")).await, 1.0);
}

/// The `key="value"` parameters of a challenge.
fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.strip_prefix("Bearer ").expect("a Bearer challenge");
    rest.split(", ")
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

#[tokio::test]
async fn step_up_challenge_for_capable_clients() {
    let env = TestEnv::setup().route(r#"auth_context_id = "c1""#).start().await;
    let capable = env.idp.delegated().amr(&["pwd"]).claim("xms_cc", vec!["cp1"]).mint();
    let rsp = env.get("/v1/customers", Some(&capable)).await;
    assert_eq!(rsp.headers().get_all("www-authenticate").iter().count(), 1, "one challenge header");
    let challenge = assert_rejected(rsp, 401, "mfa_required").await.unwrap();
    let params = challenge_params(&challenge);
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["realm", "authorization_uri", "error", "claims"], "{challenge}");
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap();
    assert_eq!(get("realm"), "");
    assert_eq!(get("authorization_uri"), format!("https://login.microsoftonline.com/{TID}/oauth2/authorize"));
    assert_eq!(get("error"), "insufficient_claims");
    let claims = base64::engine::general_purpose::STANDARD.decode(get("claims")).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims, serde_json::json!({"access_token": {"acrs": {"essential": true, "value": "c1"}}}));
    assert_eq!(env.upstream.hits(), 0);

    // Not capable, or already stepped up: the Partner Center style answer.
    let plain = r#"Bearer realm="mfagate", error="invalid_token", error_description="MFA required""#;
    let incapable = env.idp.delegated().amr(&["pwd"]).mint();
    denied(&env, "/v1/customers", &incapable, 401, "mfa_required", Some(plain)).await;
    let looped = env.idp.delegated().amr(&["pwd"]).claim("xms_cc", vec!["cp1"]).claim("acrs", vec!["c1"]).mint();
    denied(&env, "/v1/customers", &looped, 401, "mfa_required", Some(plain)).await;
}

#[tokio::test]
async fn a_rule_in_report_only_mode() {
    let env =
        TestEnv::setup().route(r#"rule_modes = { mfa = "report-only", legacy_auth = "report-only" }"#).start().await;
    allowed(&env, "/v1/customers", &env.idp.delegated().amr(&["pwd"]).mint()).await;
    let public = env.idp.delegated().amr(&["pwd"]).claim("appidacr", "0").mint();
    denied(&env, "/v1/customers", &public, 403, "public_client", Some(FORBIDDEN)).await;
    // legacy_auth is only reported, but Basic carries no token for the rules
    // that enforce (public_clients, ...): refused for the missing token.
    let rsp = env.client.get(env.url("/v1/customers")).basic_auth("user", Some("pass")).send().await.unwrap();
    assert_rejected(rsp, 401, "missing_token").await;
    // Token checks follow the route, which enforces.
    denied(&env, "/v1/customers", &env.idp.delegated().claim("exp", now() - 600).mint(), 401, "expired", Some(INVALID))
        .await;
    let scrape = env.metrics().await;
    assert_eq!(support::sample(&scrape, &counter("would_deny", "mfa_required", "partner-center")), 1.0);
    assert_eq!(support::sample(&scrape, &counter("deny", "missing_token", "partner-center")), 1.0);
    assert_eq!(support::sample(&scrape, &counter("deny", "public_client", "partner-center")), 1.0);
    assert_eq!(env.upstream.hits(), 1, "only the report-only MFA failure was forwarded");
}

#[tokio::test]
async fn enforce_after_on_both_sides_of_the_instant() {
    let no_mfa = |env: &TestEnv| env.idp.delegated().amr(&["pwd"]).mint();
    let before = TestEnv::setup().route(&format!("enforce_after = \"{}\"", day(1))).start().await;
    allowed(&before, "/v1/customers", &no_mfa(&before)).await;
    allowed(&before, "/v1/customers", &before.idp.app_only().mint()).await;
    let rsp = before.get("/v1/customers", None).await;
    assert_eq!(rsp.status(), 200, "report-only until the instant, token checks included");
    let scrape = before.metrics().await;
    assert_eq!(support::sample(&scrape, &counter("would_deny", "mfa_required", "partner-center")), 1.0);
    assert_eq!(support::sample(&scrape, &counter("would_deny", "missing_token", "partner-center")), 1.0);

    let after = TestEnv::setup().route(&format!("enforce_after = \"{}\"", day(-1))).start().await;
    denied(&after, "/v1/customers", &no_mfa(&after), 401, "mfa_required", Some(INVALID)).await;
    denied(&after, "/v1/customers", &after.idp.app_only().mint(), 403, "app_only_not_allowed", Some(FORBIDDEN)).await;
    assert_eq!(after.metric(&counter("deny", "mfa_required", "partner-center")).await, 1.0);
}

#[tokio::test]
async fn graph_tokens_are_decoded_for_deny_decisions_only() {
    let env = with_graph("verify_signature = false").await;
    // The signature is Graph's to check; a compliant token goes on to it.
    let graph = env.idp.graph_with_nonce().mint();
    allowed(&env, "/v1.0/users", &graph).await;
    assert_eq!(env.upstream.last().headers["authorization"], format!("Bearer {graph}").as_str());
    // Every claim rule still denies.
    let no_mfa = env.idp.graph_with_nonce().amr(&["pwd"]).mint();
    denied(&env, "/v1.0/users", &no_mfa, 401, "mfa_required", Some(INVALID)).await;
    let ga = env.idp.graph_with_nonce().claim("wids", vec![GLOBAL_ADMIN]).mint();
    denied(&env, "/v1.0/users", &ga, 403, "privileged_role", Some(FORBIDDEN)).await;
    let expired = env.idp.graph_with_nonce().claim("exp", now() - 600).mint();
    denied(&env, "/v1.0/users", &expired, 401, "expired", Some(INVALID)).await;
    let elsewhere = env.idp.graph_with_nonce().claim("aud", "https://management.azure.com").mint();
    denied(&env, "/v1.0/users", &elsewhere, 401, "bad_audience", Some(INVALID)).await;
    denied(&env, "/v1.0/users", "not-a-jwt", 401, "malformed_token", Some(INVALID)).await;
    // Where signatures are verified, the same token is refused.
    let pc = env.idp.graph_with_nonce().claim("aud", "https://api.partnercenter.microsoft.com").mint();
    denied(&env, "/v1/customers", &pc, 401, "bad_signature", Some(INVALID)).await;
}

#[tokio::test]
async fn exemptions_apply_until_they_expire() {
    // The third expires while the gateway runs: the gauge follows the clock.
    let soon = now() + 3;
    let exemptions = format!(
        "[[exemptions]]\noid = \"{OID}\"\nreason = \"break-glass account\"\nexpires = \"{}\"\n\n[[exemptions]]\nappid = \"{SAM_APP}\"\nreason = \"migration finished\"\nexpires = \"{}\"\n\n[[exemptions]]\noid = \"00000000-0000-0000-0000-000000000001\"\nreason = \"short window\"\nexpires = \"{}\"\n",
        day(7),
        day(-7),
        mfagate::rfc3339::format(soon)
    );
    let env = TestEnv::setup().more_routes(&exemptions).start().await;
    allowed(&env, "/v1/customers", &env.idp.delegated().amr(&["pwd"]).mint()).await;
    // Another user of the same (expired) app is not exempt.
    let other = env.idp.delegated().amr(&["pwd"]).claim("oid", "6f5e4d3c-2b1a-4098-8765-43210fedcba9").mint();
    denied(&env, "/v1/customers", &other, 401, "mfa_required", Some(INVALID)).await;
    // An exemption covers rules, not invalid tokens.
    let expired = env.idp.delegated().claim("exp", now() - 600).mint();
    denied(&env, "/v1/customers", &expired, 401, "expired", Some(INVALID)).await;
    let scrape = env.metrics().await;
    assert_eq!(support::sample(&scrape, &counter("exempt", "mfa_required", "partner-center")), 1.0);
    assert_eq!(support::sample(&scrape, r#"mfagate_exemptions{state="active"}"#), 2.0);
    assert_eq!(support::sample(&scrape, r#"mfagate_exemptions{state="expired"}"#), 1.0);
    while now() <= soon {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let scrape = env.metrics().await;
    assert_eq!(support::sample(&scrape, r#"mfagate_exemptions{state="active"}"#), 1.0);
    assert_eq!(support::sample(&scrape, r#"mfagate_exemptions{state="expired"}"#), 2.0);
}

#[tokio::test]
async fn decision_log_records_claims_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&graph_route("verify_signature = false"))
        .more_routes(&format!("[audit]\nsink = \"file\"\npath = \"{}\"", log.display()))
        .start()
        .await;
    let ok = env.idp.delegated().mint();
    let no_mfa = env.idp.delegated().amr(&["pwd"]).claim("xms_cc", vec!["CP1"]).mint();
    let graph = env.idp.graph_with_nonce().mint();
    let rsp = env.get(&format!("/v1/customers/{OTHER_TID}/orders"), Some(&ok)).await;
    let correlation = rsp.headers()["ms-correlationid"].to_str().unwrap().to_string();
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.get("/v1/customers", Some(&no_mfa)).await.status(), 401);
    assert_eq!(env.get("/v1.0/users", Some(&graph)).await.status(), 200);
    assert_eq!(env.get("/v1/customers", None).await.status(), 401);
    assert_eq!(env.get("/nowhere", None).await.status(), 404);
    let lines = support::audit_lines(&log, 5).await.1;

    let allow = &lines[0];
    assert_eq!(allow["route"], "partner-center");
    assert_eq!((allow["decision"].as_str(), allow["reason"].as_str()), (Some("allow"), Some("none")));
    assert_eq!(allow["mode"], "enforce");
    assert_eq!(allow["verified"], true);
    assert_eq!(allow["tid"], TID);
    assert_eq!(allow["oid"], OID);
    assert_eq!(allow["appid"], SAM_APP);
    assert_eq!((allow["client"].as_str(), allow["principal"].as_str()), (Some("secret"), Some("app_user")));
    assert_eq!(allow["amr"], serde_json::json!(["pwd", "mfa"]));
    assert_eq!(allow["ver"], "1.0");
    assert_eq!(allow["credential"], "bearer");
    assert_eq!(allow["correlation_id"], correlation.as_str());
    assert_eq!((allow["status"].as_u64(), allow["upstream_status"].as_u64()), (Some(200), Some(200)));
    assert!(allow["latency_us"].is_u64());
    assert!(mfagate::rfc3339::parse_millis(allow["timestamp"].as_str().unwrap()).is_some());
    let sha = |s: &str| mfagate::audit::sha256_hex(s.as_bytes());
    assert_eq!(allow["uti_sha256"], sha("FVsGxYXI30-TuikuuUoFAA").as_str());
    assert_eq!(allow["upn_sha256"], sha("admin@contoso.onmicrosoft.com").as_str());

    let deny = &lines[1];
    assert_eq!((deny["decision"].as_str(), deny["reason"].as_str()), (Some("deny"), Some("mfa_required")));
    assert_eq!(deny["xms_cc"], serde_json::json!(["CP1"]));
    assert!(deny.get("upstream_status").is_none());
    let graph_line = &lines[2];
    assert_eq!((graph_line["route"].as_str(), graph_line["verified"].as_bool()), (Some("graph"), Some(false)));
    assert_eq!(graph_line["idp_tenant"], TID);
    assert_eq!(graph_line["wids"], serde_json::json!([USER_ADMIN]));
    assert_eq!((lines[3]["reason"].as_str(), lines[3]["credential"].as_str()), (Some("missing_token"), Some("none")));
    assert!(lines[3].get("tid").is_none());
    assert_eq!((lines[4]["route"].as_str(), lines[4]["reason"].as_str()), (Some("unmatched"), Some("no_route")));

    let text = std::fs::read_to_string(&log).unwrap();
    for token in [&ok, &no_mfa, &graph] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "a token's signature is in the log");
        assert!(!text.contains(token.split('.').nth(1).unwrap()), "a token's claims segment is in the log");
    }
    assert!(!text.contains("admin@contoso") && !text.contains("FVsGxYXI30"), "user name or uti in clear");
}
