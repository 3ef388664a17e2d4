//! Each route answers in its API's error format (`error_format`, inferred
//! from the route): Partner Center's contract, ARM's and Graph's `error`
//! object, OAuth's `error`/`error_description`. Every format carries the
//! stable reason and the correlation id; statuses and challenges do not
//! change with the format.

use serde_json::Value;

use crate::support::idp::TID;
use crate::support::assert_rejected;
use crate::{ARM_AUDIENCE, setup};

async fn json(rsp: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = rsp.status().as_u16();
    let challenge = rsp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    (status, challenge, rsp.json().await.unwrap())
}

#[tokio::test]
async fn graph_routes_answer_as_graph() {
    let env = setup().start().await;
    let no_mfa = env.idp.aobo().amr(&["pwd"]).mint();
    let rsp = env
        .client
        .get(env.url("/v1.0/me"))
        .bearer_auth(&no_mfa)
        .header("client-request-id", "4b2e0c5e-9d1f-4c3a-8b7e-1f2a3b4c5d6e")
        .header("ms-correlationid", "corr-graph-1")
        .send()
        .await
        .unwrap();
    let request_id = rsp.headers()["ms-requestid"].to_str().unwrap().to_string();
    let (status, challenge, body) = json(rsp).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
    let error = &body["error"];
    assert_eq!(error["code"], "900421", "{body}");
    assert_eq!(error["reason"], "mfa_required");
    assert_eq!(error["correlationId"], "corr-graph-1");
    assert!(error["message"].as_str().unwrap().contains("MFA"), "{body}");
    let inner = &error["innerError"];
    assert_eq!(inner["request-id"], request_id.as_str());
    assert_eq!(inner["client-request-id"], "4b2e0c5e-9d1f-4c3a-8b7e-1f2a3b4c5d6e");
    let date = inner["date"].as_str().unwrap();
    assert!(date.len() == 20 && date.ends_with('Z'), "RFC 3339 seconds: {date}");
    assert!(body.get("code").is_none() && body.get("description").is_none(), "one shape only: {body}");
    // A client-request-id that is not a plain id is not echoed.
    let rsp = env
        .client
        .get(env.url("/v1.0/me"))
        .bearer_auth(&no_mfa)
        .header("client-request-id", "<script>")
        .send()
        .await
        .unwrap();
    let (_, _, body) = json(rsp).await;
    assert_eq!(body["error"]["innerError"]["client-request-id"], body["error"]["correlationId"], "{body}");
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn arm_routes_answer_as_arm() {
    let env = setup().start().await;
    let no_mfa = env.idp.aobo().claim("aud", ARM_AUDIENCE).amr(&["pwd"]).mint();
    let rsp = env.client.get(env.url("/subscriptions?api-version=2022-12-01")).bearer_auth(&no_mfa).send().await.unwrap();
    let (status, _, body) = json(rsp).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "900421", "{body}");
    assert_eq!(body["error"]["reason"], "mfa_required");
    assert!(body["error"]["message"].as_str().unwrap().contains("MFA"));
    assert!(body["error"].get("innerError").is_none(), "{body}");
    let rsp = env.client.get(env.url("/subscriptions")).bearer_auth(&no_mfa).send().await.unwrap();
    assert_rejected(rsp, 401, "mfa_required").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn login_routes_answer_as_oauth() {
    let env = setup().start().await;
    let post = |body: &'static str, content_type: &'static str| {
        env.client
            .post(env.url("/organizations/oauth2/v2.0/token"))
            .header("content-type", content_type)
            .header("ms-correlationid", "corr-login-1")
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let (status, challenge, body) =
        json(post("grant_type=password&username=a&password=b&client_id=x", form).await.unwrap()).await;
    assert_eq!(status, 403);
    assert_eq!(challenge, None, "a token request presented no bearer token");
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    assert_eq!(body["reason"], "password_grant");
    assert_eq!(body["correlation_id"], "corr-login-1");
    assert!(body["error_description"].as_str().unwrap().to_lowercase().contains("password"), "{body}");
    let (status, _, body) =
        json(post("grant_type=client_credentials", "application/x-www-form-urlencoded; charset=utf-16").await.unwrap())
            .await;
    assert_eq!(status, 400);
    assert_eq!((body["error"].as_str(), body["reason"].as_str()), (Some("invalid_request"), Some("bad_request")));
    assert!(body["error_description"].as_str().unwrap().ends_with("(rule: token_request_charset)."), "{body}");
    assert_eq!(env.upstream.hits(), 0);
}

/// Partner Center keeps its contract; a route may name its format.
#[tokio::test]
async fn the_format_is_the_routes_to_choose() {
    let routes = format!(
        r#"
[[routes]]
name = "graph-as-pc"
path_prefix = "/beta"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://graph.microsoft.com"]
partner_tenants = ["{TID}"]
error_format = "partner-center"
"#
    );
    let env = setup().more_routes(&routes).start().await;
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let rsp = env.client.get(env.url("/v1/customers")).bearer_auth(&no_mfa).send().await.unwrap();
    assert_rejected(rsp, 401, "mfa_required").await;
    let rsp = env.client.get(env.url("/v1/customers")).bearer_auth(&no_mfa).send().await.unwrap();
    let (_, _, body) = json(rsp).await;
    assert_eq!((body["code"].as_str(), body["source"].as_str()), (Some("900421"), Some("mfagate")), "{body}");
    let graph = env.idp.aobo().amr(&["pwd"]).mint();
    let rsp = env.client.get(env.url("/beta/me")).bearer_auth(&graph).send().await.unwrap();
    let (_, _, body) = json(rsp).await;
    assert_eq!(body["reason"], "mfa_required", "the route's own format wins over the audience: {body}");
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn an_unknown_format_is_refused_naming_the_key() {
    let text = r#"
[[routes]]
name = "x"
upstream = "https://127.0.0.1:1"
audiences = ["https://graph.microsoft.com"]
error_format = "odata"
"#;
    let err = mfagate::config::Config::from_toml(text).unwrap_err().to_string();
    assert!(err.contains("routes[0].error_format") && err.contains("\"graph\""), "{err}");
}
