//! What is forwarded is what was checked.

use crate::support::idp::OTHER_TID;
use crate::support::{TestEnv, assert_rejected};

const STRANGER_TID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// Rule 2 (Partner Center customer ids) and the "two parsers" shape: the
/// customer is read from the request path, but the upstream gets the
/// route's base path in front of it. With `upstream = ".../v1/customers"`
/// (a route that fronts only the customer APIs) the request
/// `/{stranger}/subscriptions` has no `customers` segment for the gateway,
/// so the `customers` rule is skipped, while Partner Center receives
/// `/v1/customers/{stranger}/subscriptions`.
/// Correct: the customer is read from the path as the upstream receives it
/// (base path included): 403 customer_not_allowed, upstream never reached.
#[tokio::test]
async fn a_customer_named_by_the_base_path_and_the_request_together_is_not_checked() {
    let env = TestEnv::setup()
        .route("path_prefix = \"/v1\"")
        .more_routes(&format!(
            r#"
[[routes]]
name = "pc-customers"
upstream = "@UPSTREAM@/v1/customers"
upstream_ca = "@CA@"
audiences = ["https://api.partnercenter.microsoft.com"]
customers = [{{ tenant_id = "{OTHER_TID}", ends = "2099-01-01T00:00:00Z" }}]
"#
        ))
        .start()
        .await;
    let token = env.idp.delegated().mint();
    // The related customer goes through, as it should.
    let rsp = env.get(&format!("/{OTHER_TID}/subscriptions"), Some(&token)).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.upstream.last().path_and_query, format!("/v1/customers/{OTHER_TID}/subscriptions"));
    // A customer with no relationship goes through too.
    let rsp = env.get(&format!("/{STRANGER_TID}/subscriptions"), Some(&token)).await;
    let status = rsp.status().as_u16();
    let seen = env.upstream.last().path_and_query;
    assert_eq!((status, env.upstream.hits()), (403, 1), "forwarded to {seen}");
    assert_rejected(rsp, 403, "customer_not_allowed").await;
}

/// "Headers X-Original-URL / X-Rewrite-URL / X-HTTP-Method-Override /
/// X-HTTP-Method / X-Method-Override are stripped before forwarding".
/// Only those exact names are removed; the same fields spelled with
/// underscores (`X_Original_URL`) are forwarded. IIS (and CGI-style
/// servers: PHP, classic ASP.NET server variables) map both spellings to
/// the same `HTTP_X_ORIGINAL_URL` variable, which is what URL-rewriting
/// front controllers read, so the upstream may serve
/// `/v1/customers/{stranger}` for a request checked as `/v1/customers`.
/// Correct: removed (or the request refused 400) over HTTP/1.1 and HTTP/2.
#[tokio::test]
async fn retargeting_headers_spelled_with_underscores_reach_the_upstream() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    let spelled = ["X_Original_URL", "X_Rewrite_URL", "X_HTTP_Method_Override", "X_HTTP_Method", "X_Method_Override"];
    let mut leaked = Vec::new();
    for http1 in [true, false] {
        let client = crate::support::client(&env.pki.ca_pem, http1);
        let mut req = client.get(env.url("/v1/customers")).bearer_auth(&token);
        for name in spelled {
            req = req.header(name, format!("/v1/customers/{STRANGER_TID}/subscriptions"));
        }
        let rsp = req.send().await.unwrap();
        if rsp.status() == 200 {
            let seen = env.upstream.last();
            leaked.extend(
                spelled.iter().filter(|n| seen.headers.contains_key(**n)).map(|n| format!("http1={http1} {n}")),
            );
        }
    }
    assert!(leaked.is_empty(), "forwarded: {leaked:?}");
}
