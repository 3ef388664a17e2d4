//! Paths as Microsoft's SDKs send them. The Graph Python SDK's base URL ends
//! with a slash, so every call goes out as `/v1.0//me`: empty segments are
//! collapsed, and the collapsed path is the one routed, checked and
//! forwarded. What stays ambiguous once the forwarded path is the checked
//! one is still refused, naming the rule.

use std::time::Duration;

use crate::support::assert_rejected;
use crate::support::idp::AZURE_CLI;
use crate::support::raw;
use crate::{description, setup};

#[tokio::test]
async fn empty_segments_are_collapsed_routed_and_forwarded() {
    let env = setup().start().await;
    let compliant = env.idp.aobo().mint();
    for http1 in [false, true] {
        let client = crate::support::client(&env.pki.ca_pem, http1);
        for (sent, forwarded) in [
            ("/v1.0//me", "/v1.0/me"),
            ("/v1.0///users", "/v1.0/users"),
            ("/v1.0//users?$top=1&$filter=a%2F%2Fb", "/v1.0/users?$top=1&$filter=a%2F%2Fb"),
            ("//v1.0/me/", "/v1.0/me/"),
        ] {
            let before = env.upstream.hits();
            let rsp = client.get(env.url(sent)).bearer_auth(&compliant).send().await.unwrap();
            assert_eq!(rsp.status(), 200, "{sent}");
            assert_eq!(env.upstream.hits(), before + 1, "{sent}");
            assert_eq!(env.upstream.last().path_and_query, forwarded, "{sent}");
        }
    }

    // The collapsed path is the one checked: a token that may not call Graph
    // is refused, and the upstream never sees it.
    let before = env.upstream.hits();
    let no_mfa = env.idp.aobo().amr(&["pwd"]).mint();
    for sent in ["/v1.0//me", "/v1.0///users"] {
        let rsp = env.client.get(env.url(sent)).bearer_auth(&no_mfa).send().await.unwrap();
        let challenge = assert_rejected(rsp, 401, "mfa_required").await;
        assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
    }
    let public = env.idp.aobo().claim("appid", AZURE_CLI).claim("appidacr", "0").mint();
    let rsp = env.client.get(env.url("/v1.0//users")).bearer_auth(&public).send().await.unwrap();
    assert_rejected(rsp, 403, "public_client").await;
    assert_eq!(env.upstream.hits(), before, "a refused request reached the upstream");
}

/// An empty segment cannot hide a route: `//v1/customers` is `/v1/customers`,
/// the Partner Center route, with its MFA rule.
#[tokio::test]
async fn a_collapsed_path_is_routed_as_collapsed() {
    let env = setup().start().await;
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    for sent in ["//v1/customers", "/v1//customers", "//v1//customers//"] {
        let rsp = env.client.get(env.url(sent)).bearer_auth(&no_mfa).send().await.unwrap();
        assert_rejected(rsp, 401, "mfa_required").await;
    }
    assert_eq!(env.upstream.hits(), 0);
}

/// What an upstream could still read differently from the gateway is
/// refused before any route is known, and the answer names the rule, never
/// the request's text. Sent as raw bytes:
/// an HTTP client would resolve the dot segments itself.
#[tokio::test]
async fn what_stays_ambiguous_is_refused_naming_the_rule() {
    let env = setup().start().await;
    let token = env.idp.aobo().mint();
    for (path, rule) in [
        ("/v1.0/me/../users", "dot_segment"),
        ("/v1.0/%2e%2e/users", "dot_segment"),
        ("/v1.0/..;/users", "dot_segment"),
        ("/v1.0//../users", "dot_segment"),
        ("/v1.0/me%2Fusers", "encoded_slash"),
        ("/v1.0/me%5Cusers", "encoded_backslash"),
        ("/v1.0/%252e%252e/users", "double_encoding"),
        ("/v1.0/me%00", "encoded_control_character"),
        ("/v1.0/users./x", "trailing_dot_or_space"),
        ("/v1.0/users%20/x", "trailing_dot_or_space"),
        ("/v1.0/%zz", "bad_percent_encoding"),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
        let answer = raw::send(env.addr, &env.pki.ca_pem, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(answer.statuses(), [400], "{path}: {}", answer.text());
        assert!(answer.closed, "{path}: the connection stays open");
        let body = answer.json().unwrap_or_else(|| panic!("{path}: {}", answer.text()));
        // Refused before routing, answered in the format of the route the
        // target names (Graph's).
        assert_eq!(
            (body["error"]["reason"].as_str(), body["error"]["code"].as_str()),
            (Some("bad_request"), Some("bad_request")),
            "{path}: {body}"
        );
        assert_eq!(
            description(&body),
            format!("The request is malformed or ambiguous and was not forwarded (rule: {rule})."),
            "{path}"
        );
        assert!(!answer.text().to_ascii_lowercase().contains("www-authenticate"), "{path}");
    }
    assert_eq!(env.upstream.hits(), 0, "a refused request reached the upstream");

    // Decoded dots are dots: inside a segment they are harmless.
    let rsp = env.client.get(env.url("/v1%2E0/users/a%2eb")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.upstream.hits(), 1);
    assert_eq!(env.upstream.last().path_and_query, "/v1.0/users/a.b");
}
