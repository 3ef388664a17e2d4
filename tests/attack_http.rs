//! Request attacks over raw TLS sockets: smuggling (CL.TE, TE.CL, obfuscated
//! Transfer-Encoding, repeated Content-Length), line-ending and folding
//! tricks, Host games, chunk extensions, hop-by-hop abuse and path tricks
//! against `path_prefix`. Every request carries a valid token, so only the
//! request checks can stop it; each must be refused with 400, the connection
//! closed after one answer, and the upstream never reached. The forms that
//! are merely unusual but unambiguous pass, and the upstream gets exactly
//! what the gateway checked.

mod support;

use std::time::Duration;

use support::raw::{self, Answer};
use support::{TestEnv, assert_rejected};

const QUIET: Duration = Duration::from_secs(5);

/// `/v1` requires MFA; everything else goes to a route that does not.
async fn env() -> TestEnv {
    TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(
            "[[routes]]\nname = \"open\"\npath_prefix = \"/\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\nrequire_mfa = false\n",
        )
        .start()
        .await
}

async fn send(env: &TestEnv, request: &str) -> Answer {
    raw::send(env.addr, &env.pki.ca_pem, request.as_bytes(), QUIET).await
}

/// Asserts a refusal: one 400 answer (the gateway's JSON `bad_request`, or
/// hyper's own), the connection closed, and the upstream untouched.
async fn refused(env: &TestEnv, name: &str, request: &str) -> &'static str {
    let before = env.upstream.hits();
    let answer = send(env, request).await;
    assert_eq!(answer.statuses(), [400], "{name}: {}", answer.text());
    assert!(answer.closed, "{name}: the connection stays open after a refusal");
    assert_eq!(env.upstream.hits(), before, "{name}: the upstream was reached");
    match answer.json() {
        Some(body) => {
            assert_eq!(body["reason"], "bad_request", "{name}: {body}");
            "gateway"
        }
        None => "hyper",
    }
}

#[tokio::test]
async fn smuggling_and_framing_attacks_are_refused() {
    let env = env().await;
    let token = env.idp.delegated().mint();
    let head = |extra: &str| {
        format!("POST /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n{extra}\r\n")
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "CL.TE",
            format!(
                "{}0\r\n\r\nGET /v1/admin HTTP/1.1\r\nHost: x\r\n\r\n",
                head("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n")
            ),
        ),
        (
            "TE.CL",
            format!(
                "{}5c\r\nGPOST /v1/customers HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n",
                head("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n")
            ),
        ),
        ("TE xchunked", format!("{}0\r\n\r\n", head("Transfer-Encoding: xchunked\r\n"))),
        ("TE space before colon", format!("{}0\r\n\r\n", head("Transfer-Encoding : chunked\r\n"))),
        ("TE twice", format!("{}0\r\n\r\n", head("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"))),
        ("TE chunked, identity", format!("{}0\r\n\r\n", head("Transfer-Encoding: chunked, identity\r\n"))),
        ("TE identity, chunked", format!("{}0\r\n\r\n", head("Transfer-Encoding: identity, chunked\r\n"))),
        ("TE gzip, chunked", format!("{}0\r\n\r\n", head("Transfer-Encoding: gzip, chunked\r\n"))),
        ("TE quoted", format!("{}0\r\n\r\n", head("Transfer-Encoding: \"chunked\"\r\n"))),
        ("TE vertical tab", format!("{}0\r\n\r\n", head("Transfer-Encoding:\x0bchunked\r\n"))),
        ("TE folded", format!("{}0\r\n\r\n", head("Transfer-Encoding:\r\n chunked\r\n"))),
        ("TE with CL and junk", format!("{}0\r\n\r\n", head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"))),
        (
            "TE on HTTP/1.0",
            format!(
                "POST /v1/customers HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
        ),
        ("CL twice, same", format!("{}hello", head("Content-Length: 5\r\nContent-Length: 5\r\n"))),
        ("CL twice, different", format!("{}hello", head("Content-Length: 5\r\nContent-Length: 6\r\n"))),
        ("CL list", format!("{}hello", head("Content-Length: 5, 5\r\n"))),
        ("CL plus sign", format!("{}hello", head("Content-Length: +5\r\n"))),
        ("CL hex", format!("{}hello", head("Content-Length: 0x5\r\n"))),
        ("obs-fold", head("X-Custom: a\r\n b\r\n")),
        ("obs-fold with tab", head("X-Custom: a\r\n\tb\r\n")),
        ("bare LF", format!("GET /v1/customers HTTP/1.1\nHost: localhost\nAuthorization: Bearer {token}\n\n")),
        (
            "bare LF in the headers only",
            format!("GET /v1/customers HTTP/1.1\r\nHost: localhost\nAuthorization: Bearer {token}\r\n\r\n"),
        ),
        (
            "bare LF ending the head",
            format!("GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\n"),
        ),
        (
            "bare CR",
            format!("GET /v1/customers HTTP/1.1\r\nHost: localhost\rX: y\r\nAuthorization: Bearer {token}\r\n\r\n"),
        ),
        (
            "huge chunk extension",
            format!("{}1;{}\r\na\r\n0\r\n\r\n", head("Transfer-Encoding: chunked\r\n"), "x".repeat(20 * 1024)),
        ),
        (
            "many chunk extensions",
            format!(
                "{}{}0\r\n\r\n",
                head("Transfer-Encoding: chunked\r\n"),
                "1;ext=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\na\r\n".repeat(20)
            ),
        ),
        ("chunk line with bare LF", format!("{}1\na\r\n0\r\n\r\n", head("Transfer-Encoding: chunked\r\n"))),
        ("missing Host", format!("GET /v1/customers HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n")),
        (
            "two Hosts",
            format!(
                "GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nHost: api.partnercenter.microsoft.com\r\nAuthorization: Bearer {token}\r\n\r\n"
            ),
        ),
        (
            "Host with user info",
            format!(
                "GET /v1/customers HTTP/1.1\r\nHost: evil.example@localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
            ),
        ),
        (
            "absolute form for another host",
            format!(
                "GET https://evil.example/v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
            ),
        ),
        (
            "CONNECT",
            format!(
                "CONNECT api.partnercenter.microsoft.com:443 HTTP/1.1\r\nHost: api.partnercenter.microsoft.com:443\r\nAuthorization: Bearer {token}\r\n\r\n"
            ),
        ),
        (
            "two spaces in the request line",
            format!("GET  /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"),
        ),
        (
            "Connection: authorization",
            format!(
                "GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nConnection: authorization\r\nAuthorization: Bearer {token}\r\n\r\n"
            ),
        ),
        (
            "Connection: close, Authorization",
            format!(
                "GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nConnection: close, Authorization\r\nAuthorization: Bearer {token}\r\n\r\n"
            ),
        ),
        (
            "Connection: host",
            format!(
                "GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nConnection: Host\r\nAuthorization: Bearer {token}\r\n\r\n"
            ),
        ),
    ];
    let mut by_gateway = Vec::new();
    for (name, request) in &cases {
        if refused(&env, name, request).await == "gateway" {
            by_gateway.push(*name);
        }
    }
    eprintln!("refused by the gateway itself (the rest by hyper): {by_gateway:?}");
    // The cases hyper lets through are the ones the gateway's own checks exist for.
    for name in [
        "CL.TE",
        "TE.CL",
        "bare LF",
        "missing Host",
        "huge chunk extension",
        "CL twice, same",
        "Connection: authorization",
    ] {
        assert!(by_gateway.contains(&name), "{name} was not refused by the gateway's checks: {by_gateway:?}");
    }
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn path_tricks_cannot_reach_another_route() {
    let env = env().await;
    // No MFA: refused on /v1, allowed on the open route. A path that the
    // gateway routes as /open… but the upstream reads as /v1… would bypass MFA.
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    for path in [
        "/open/../v1/customers",
        "/open/./../v1/customers",
        "/open/%2e%2e/v1/customers",
        "/open/%2E%2e/v1/customers",
        "/open/.%2e/v1/customers",
        "/open/..%2fv1/customers",
        "/open%2f..%2fv1/customers",
        "/open/..;/v1/customers",
        "/open/%252e%252e/v1/customers",
        "/open/..%5cv1/customers",
        "/open//../v1/customers",
        "/v1/customers/%00",
        "/v1/customers%0d%0aX-Injected:%201",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {no_mfa}\r\n\r\n");
        refused(&env, path, &request).await;
    }
    for path in ["/open\\..\\v1/customers", "/open/../v1/customers#x"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {no_mfa}\r\n\r\n");
        refused(&env, path, &request).await;
    }
    assert_eq!(env.upstream.hits(), 0);

    // Encoded, upper-case or empty-segment spellings of /v1 land on the /v1 route.
    for path in ["/%76%31/customers", "/V1/customers", "/%56%31/customers", "//v1/customers", "/v1//customers"] {
        let rsp = env.client.get(env.url(path)).bearer_auth(&no_mfa).send().await.unwrap();
        assert_rejected(rsp, 401, "mfa_required").await;
    }
    assert_eq!(env.upstream.hits(), 0);

    // With MFA, the upstream gets the normalised path the gateway routed on.
    let mfa = env.idp.delegated().mint();
    let rsp = env.client.get(env.url("/%76%31/customers/%7eme?x=%2F%2e")).bearer_auth(&mfa).send().await.unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.upstream.last().path_and_query, "/v1/customers/~me?x=%2F%2e");
}

#[tokio::test]
async fn duplicate_authorization_is_refused() {
    let env = env().await;
    let good = env.idp.delegated().mint();
    let bad = env.idp.delegated().amr(&["pwd"]).mint();
    for (first, second) in [(&good, &bad), (&bad, &good), (&good, &good)] {
        let request = format!(
            "GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {first}\r\nauthorization: Bearer {second}\r\nConnection: close\r\n\r\n"
        );
        let answer = send(&env, &request).await;
        assert_eq!(answer.status(), Some(401), "{}", answer.text());
        assert_eq!(answer.json().unwrap()["reason"], "malformed_token");
    }
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn unusual_but_unambiguous_requests_pass_unchanged() {
    let env = env().await;
    let token = env.idp.delegated().mint();
    let head = |extra: &str| {
        format!(
            "POST /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n{extra}\r\n"
        )
    };
    let cases = [
        ("chunked in mixed case", format!("{}5\r\nhello\r\n0\r\n\r\n", head("Transfer-Encoding: cHuNkEd\r\n"))),
        ("tab before chunked", format!("{}5\r\nhello\r\n0\r\n\r\n", head("Transfer-Encoding:\tchunked\r\n"))),
        (
            "short chunk extension",
            format!("{}5;name=value\r\nhello\r\n0\r\n\r\n", head("Transfer-Encoding: chunked\r\n")),
        ),
        (
            "chunked with trailers",
            format!("{}5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", head("Transfer-Encoding: chunked\r\n")),
        ),
        ("content length", format!("{}hello", head("Content-Length: 5\r\n"))),
        ("expect 100-continue", format!("{}hello", head("Content-Length: 5\r\nExpect: 100-continue\r\n"))),
        (
            "h2c upgrade attempt",
            format!(
                "{}hello",
                head(
                    "Content-Length: 5\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                )
            ),
        ),
    ];
    for (n, (name, request)) in cases.iter().enumerate() {
        let answer = send(&env, request).await;
        assert_eq!(*answer.statuses().last().unwrap(), 200, "{name}: {}", answer.text());
        assert!(
            answer.text().ends_with("hello") || answer.text().contains("\r\n5\r\nhello\r\n"),
            "{name}: {}",
            answer.text()
        );
        assert_eq!(env.upstream.hits(), n + 1, "{name}");
        let seen = env.upstream.last();
        assert_eq!(seen.path_and_query, "/v1/customers", "{name}");
        for hop in ["upgrade", "http2-settings", "connection", "x-trailer"] {
            assert!(!seen.headers.contains_key(hop), "{name}: {hop} reached the upstream");
        }
    }
}

#[tokio::test]
async fn a_refused_request_takes_the_pipelined_ones_with_it() {
    let env = env().await;
    let token = env.idp.delegated().mint();
    // A clean request, then a smuggling attempt, then another clean one, in one write.
    let clean = format!("GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    let smuggle = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"
    );
    let answer = send(&env, &format!("{clean}{smuggle}{clean}")).await;
    assert!(answer.closed);
    let statuses = answer.statuses();
    assert!(!statuses.contains(&200) || statuses == [200, 400], "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 400, "{}", answer.text());
    assert!(env.upstream.hits() <= 1, "nothing after the refused request was forwarded");
}
