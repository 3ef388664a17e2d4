//! Second tokens: on a route that checks tokens, every auxiliary token
//! (`x-ms-authorization-auxiliary`, ARM's cross-tenant header) passes the
//! same checks as the main one or the request is refused with the reason
//! that failed; a bearer credential anywhere else (an `access_token` query
//! parameter, a cookie holding a JWS) is refused 400.

use crate::support::idp::{GLOBAL_ADMIN, OTHER_TID, TID, keys, now};
use crate::support::{TestEnv, assert_rejected};
use crate::{get_with, refused_both_ways};

const ARM_AUDIENCE: &str = "https://management.azure.com";
/// A second customer with a live relationship.
const CUSTOMER2: &str = "c2c2c2c2-1111-4222-8333-444455556666";
const STRANGER: &str = "5a5a5a5a-0000-4000-8000-000000000000";

fn arm_route(extra: &str) -> String {
    format!(
        r#"
[[routes]]
name = "arm"
path_prefix = "/subscriptions"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["{ARM_AUDIENCE}"]
partner_tenants = ["{TID}"]
customers = [{{ tenant_id = "{OTHER_TID}", ends = "2099-01-01T00:00:00Z" }}, {{ tenant_id = "{CUSTOMER2}", ends = "2099-01-01T00:00:00Z" }}]
{extra}
"#
    )
}

async fn arm(extra: &str) -> TestEnv {
    TestEnv::setup().route("path_prefix = \"/v1\"").more_routes(&arm_route(extra)).start().await
}

const PATH: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups?api-version=2021-04-01";

fn main_token(env: &TestEnv) -> String {
    env.idp.aobo().claim("aud", ARM_AUDIENCE).mint()
}

fn aux(env: &TestEnv, tenant: &str) -> crate::support::idp::TokenBuilder {
    env.idp.aobo().claim("aud", ARM_AUDIENCE).tenant(tenant)
}

fn with_aux(main: &str, aux: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {main}")), ("x-ms-authorization-auxiliary", aux.to_string())]
}

#[tokio::test]
async fn every_auxiliary_token_is_checked_like_the_main_one() {
    let env = arm("").await;
    let main = main_token(&env);
    let good = aux(&env, CUSTOMER2).mint();
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("Bearer {}", aux(&env, STRANGER).mint()), 403, "customer_not_allowed"),
        (format!("Bearer {}", aux(&env, CUSTOMER2).amr(&["pwd"]).mint()), 401, "mfa_required"),
        (format!("Bearer {}", aux(&env, CUSTOMER2).signed_by(&keys().rogue).mint()), 401, "bad_signature"),
        (format!("Bearer {}", aux(&env, CUSTOMER2).claim("exp", now() - 600).mint()), 401, "expired"),
        (
            format!("Bearer {}", aux(&env, CUSTOMER2).claim("aud", "https://graph.microsoft.com").mint()),
            401,
            "bad_audience",
        ),
        (format!("Bearer {}", aux(&env, CUSTOMER2).claim("appidacr", "0").mint()), 403, "public_client"),
        (format!("Bearer {}", aux(&env, CUSTOMER2).claim("wids", vec![GLOBAL_ADMIN]).mint()), 403, "privileged_role"),
        (
            format!(
                "Bearer {}",
                aux(&env, CUSTOMER2)
                    .claim("idp", "https://sts.windows.net/5a5a5a5a-1111-4000-8000-000000000000/")
                    .mint()
            ),
            403,
            "foreign_tenant_not_allowed",
        ),
        // The bad one among good ones, in either position.
        (format!("Bearer {good}, Bearer {}", aux(&env, STRANGER).mint()), 403, "customer_not_allowed"),
        (format!("Bearer {}, Bearer {good}", aux(&env, CUSTOMER2).amr(&["pwd"]).mint()), 401, "mfa_required"),
        // More than ARM takes, or not bearer tokens: ambiguous.
        (format!("Bearer {good}, Bearer {good}, Bearer {good}, Bearer {good}"), 401, "malformed_token"),
        ("Basic dXNlcjpwYXNz".to_string(), 401, "malformed_token"),
        (good.clone(), 401, "malformed_token"),
        ("Bearer not-a-jwt".to_string(), 401, "malformed_token"),
        (format!("Bearer {good},"), 401, "malformed_token"),
    ];
    for (value, status, reason) in &cases {
        refused_both_ways(&env, PATH, &with_aux(&main, value), *status, reason).await;
    }
    assert_eq!(env.upstream.hits(), 0, "nothing reached the upstream");

    // Up to three good ones, in one field or several, reach ARM untouched.
    let three = format!("Bearer {good}, Bearer {}", aux(&env, OTHER_TID).mint());
    let mut headers = with_aux(&main, &three);
    headers.push(("x-ms-authorization-auxiliary", format!("Bearer {good}")));
    let rsp = get_with(&env, false, PATH, &headers).await;
    assert_eq!(rsp.status(), 200);
    let seen = env.upstream.last();
    let forwarded: Vec<_> = seen.headers.get_all("x-ms-authorization-auxiliary").iter().collect();
    assert_eq!(forwarded.len(), 2);
    assert_eq!(forwarded[0], three.as_str());
}

#[tokio::test]
async fn auxiliary_tokens_follow_the_modes() {
    let env = arm("mode = \"report-only\"").await;
    let main = main_token(&env);
    let stranger = format!("Bearer {}", aux(&env, STRANGER).mint());
    assert_eq!(get_with(&env, true, PATH, &with_aux(&main, &stranger)).await.status(), 200);
    let counter = r#"mfagate_requests_total{decision="would_deny",reason="customer_not_allowed",route="arm"}"#;
    assert_eq!(env.metric(counter).await, 1.0);
    let env = arm("mode = \"report-only\"\nrule_modes = { customers = \"enforce\" }").await;
    let main = main_token(&env);
    let stranger = format!("Bearer {}", aux(&env, STRANGER).mint());
    refused_both_ways(&env, PATH, &with_aux(&main, &stranger), 403, "customer_not_allowed").await;
    let forged = format!("Bearer {}", aux(&env, CUSTOMER2).signed_by(&keys().rogue).mint());
    refused_both_ways(&env, PATH, &with_aux(&main, &forged), 401, "bad_signature").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn bearer_credentials_anywhere_else_are_refused() {
    let env = arm("").await;
    let main = main_token(&env);
    let stray = aux(&env, CUSTOMER2).mint();
    let bearer = || vec![("authorization", format!("Bearer {main}"))];
    for query in [
        format!("access_token={stray}"),
        format!("api-version=1&ACCESS_TOKEN={stray}"),
        format!("Access_Token={stray}"),
        format!("access%5Ftoken={stray}"),
        "access_token=anything".to_string(),
    ] {
        let path = format!("/subscriptions/x/resourceGroups?{query}");
        refused_both_ways(&env, &path, &bearer(), 400, "bad_request").await;
    }
    for cookie in [
        format!("session={stray}"),
        format!("a=1; token=\"{stray}\""),
        format!("t={}", stray.replace('.', "%2E")),
        format!("x={}", main),
    ] {
        let mut headers = bearer();
        headers.push(("cookie", cookie));
        refused_both_ways(&env, PATH, &headers, 400, "bad_request").await;
    }
    assert_eq!(env.upstream.hits(), 0);
    let mut headers = bearer();
    headers.push(("cookie", "theme=dark; id=a.b.c".to_string()));
    let rsp = get_with(&env, false, PATH, &headers).await;
    assert_eq!(rsp.status(), 200, "a cookie that is no token is not this check's business");
    let rsp = get_with(&env, false, "/subscriptions/x?token_type=bearer", &bearer()).await;
    assert_eq!(rsp.status(), 200);
    // On Partner Center too: any route that checks tokens.
    let pc = env.idp.delegated().mint();
    let rsp = env.get(&format!("/v1/customers?access_token={pc}"), Some(&pc)).await;
    assert_rejected(rsp, 400, "bad_request").await;
    assert_eq!(env.upstream.hits(), 2);
}

/// ASP.NET splits a Cookie header on `;` and `,`: a JWS after a comma is a
/// stray bearer credential too (400, upstream never reached).
#[tokio::test]
async fn cookies_are_split_as_aspnet_splits_them() {
    let env = TestEnv::setup().start().await;
    let good = env.idp.delegated().mint();
    let stray = env.idp.delegated().amr(&["pwd"]).tenant("aaaaaaaa-0000-4000-8000-000000000001").mint();
    for http1 in [true, false] {
        let client = crate::support::client(&env.pki.ca_pem, http1);
        let rsp = client
            .get(env.url("/v1/customers"))
            .bearer_auth(&good)
            .header("cookie", format!("theme=dark, session={stray}"))
            .send()
            .await
            .unwrap();
        let status = rsp.status().as_u16();
        if status != 400 {
            panic!("http1={http1}: {status}, forwarded: {} upstream hits", env.upstream.hits());
        }
        assert_rejected(rsp, 400, "bad_request").await;
    }
    assert_eq!(env.upstream.hits(), 0);
}

/// Some servers (Rack before 3.0, Python's `parse_qs` before 3.9.2) take `;`
/// as a query separator: `access_token` after one is a stray credential too.
#[tokio::test]
async fn an_access_token_after_a_semicolon_is_stray_too() {
    let env = TestEnv::setup().start().await;
    let good = env.idp.delegated().mint();
    let stray = env.idp.delegated().amr(&["pwd"]).mint();
    let rsp = env.get(&format!("/v1/customers?size=10&access_token={stray}"), Some(&good)).await;
    assert_rejected(rsp, 400, "bad_request").await;
    let rsp = env.get(&format!("/v1/customers?size=10;access_token={stray}"), Some(&good)).await;
    let status = rsp.status().as_u16();
    assert_eq!(
        (status, env.upstream.hits()),
        (400, 0),
        "a second bearer token after ';' was forwarded next to the checked one"
    );
    assert_rejected(rsp, 400, "bad_request").await;
}
