//! Attempts on the collapsed path and the staged close: a customer hidden
//! behind an empty segment or another spelling, a request smuggled in (or
//! after) a body the gateway discards, and a client that trickles a body to
//! hold a discarding connection. Every refusal asserts that the upstream
//! was never reached.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::support::idp::OTHER_TID;
use crate::support::{TestEnv, assert_rejected, raw};

/// A tenant with no relationship with the partner.
const STRANGER: &str = "5a5a5a5a-0000-4000-8000-000000000000";

fn partner_center_with_customers() -> crate::support::Setup {
    TestEnv::setup()
        .route(&format!(
            "path_prefix = \"/v1\"\ncustomers = [{{ tenant_id = \"{OTHER_TID}\", ends = \"2099-01-01T00:00:00Z\" }}]"
        ))
        .more_routes(&crate::routes())
}

/// The customer Partner Center would serve is the one checked, however the
/// path spells it: empty segments, an encoded `customers`, a braced and
/// encoded id, over HTTP/1.1 and HTTP/2.
#[tokio::test]
async fn a_customer_behind_an_empty_segment_is_the_one_checked() {
    let env = partner_center_with_customers().start().await;
    let token = env.idp.delegated().mint();
    let upper = STRANGER.to_uppercase();
    let hidden = [
        format!("/v1/customers//{STRANGER}/orders"),
        format!("/v1//customers/{STRANGER}"),
        format!("//v1//customers///{STRANGER}//orders"),
        format!("/v1/%63ustomers//{STRANGER}"),
        format!("/v1/customers//%7B{upper}%7D/orders"),
        format!("/v1/customers//{}", STRANGER.replace('-', "")),
    ];
    for http1 in [true, false] {
        let client = crate::support::client(&env.pki.ca_pem, http1);
        for path in &hidden {
            let rsp = client.get(env.url(path)).bearer_auth(&token).send().await.unwrap();
            assert_rejected(rsp, 403, "customer_not_allowed").await;
        }
    }
    assert_eq!(env.upstream.hits(), 0, "a refused request reached the upstream");

    // The customer with a relationship is forwarded in the form checked.
    let rsp = env
        .client
        .get(env.url(&format!("/v1/customers//{}//orders", OTHER_TID.to_uppercase())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.upstream.hits(), 1);
    assert_eq!(env.upstream.last().path_and_query, format!("/v1/customers/{OTHER_TID}/orders"));
}

/// After an early answer the gateway reads the body only to throw it away:
/// a request written inside that body, or pipelined after it, is never
/// served, whatever the body's framing, `Expect: 100-continue` or HTTP/1.0
/// keep-alive.
#[tokio::test]
async fn a_request_in_or_after_a_discarded_body_is_never_served() {
    let env = crate::setup().start().await;
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let ok = env.idp.delegated().mint();
    let inner = format!("GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ok}\r\n\r\n");
    let head = |version: &str, extra: &str| {
        format!("POST /v1/customers {version}\r\nHost: localhost\r\nAuthorization: Bearer {no_mfa}\r\n{extra}")
    };
    let sized = format!("Content-Length: {}\r\n\r\n{inner}", inner.len());
    let chunked = format!("Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\n", inner.len());
    let cases = [
        ("content-length", format!("{}{inner}", head("HTTP/1.1", &sized))),
        ("chunked", format!("{}{inner}", head("HTTP/1.1", &chunked))),
        ("expect 100-continue", format!("{}{inner}", head("HTTP/1.1", &format!("Expect: 100-continue\r\n{sized}")))),
        ("HTTP/1.0 keep-alive", format!("{}{inner}", head("HTTP/1.0", &format!("Connection: keep-alive\r\n{sized}")))),
    ];
    for (what, request) in cases {
        let answer = raw::send(env.addr, &env.pki.ca_pem, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(statuses(&answer.text()), [401], "{what}: {}", answer.text());
        assert!(answer.closed, "{what}: the connection stays open");
        assert!(!answer.text().contains("100 Continue"), "{what}: {}", answer.text());
        // `close` alone: an HTTP/1.0 client or proxy that reads a
        // `keep-alive` token next to it would send its next request on a
        // connection the gateway is closing.
        let connection: Vec<&str> = answer
            .text()
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
            .map(|(_, value)| value.trim())
            .collect::<Vec<_>>()
            .into_iter()
            .map(|v| if v.eq_ignore_ascii_case("close") { "close" } else { "other" })
            .collect();
        assert_eq!(connection, ["close"], "{what}: {}", answer.text());
        let body = answer.json().unwrap_or_else(|| panic!("{what}: {}", answer.text()));
        assert_eq!(body["reason"], "mfa_required", "{what}: {body}");
        assert_eq!(env.upstream.hits(), 0, "{what}: a request in a discarded body reached the upstream");
    }
}

/// A refused upload trickled one byte at a time holds its connection for
/// `discard_body_timeout` at most: the bytes do not restart the clock. While
/// it is held the connection counts against `max_connections` (the next one
/// is answered 503), and once closed it no longer does.
#[tokio::test]
async fn a_trickled_discard_is_bounded_by_its_timeout() {
    let env = crate::setup().server("max_connections = 1\ndiscard_body_timeout = \"1s\"").start().await;
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {no_mfa}\r\nContent-Length: 100000\r\n\r\n"
    );
    let tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    let (mut read, mut write) = tokio::io::split(tls);
    write.write_all(head.as_bytes()).await.unwrap();
    write.flush().await.unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..400 {
            if write.write_all(b"x").await.is_err() || write.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let answer = raw::read_head(&mut read).await;
    assert_eq!(answer.status(), Some(401), "{}", answer.text());

    // Held by its discard: the one connection allowed is in use.
    let rsp = env.client.get(env.url("/v1/customers")).bearer_auth(env.idp.delegated().mint()).send().await.unwrap();
    assert_rejected(rsp, 503, "overloaded").await;

    let closed = raw::read_until_closed(&mut read, Duration::from_secs(15)).await;
    assert!(closed.closed, "the trickling connection is never closed");
    let held = started.elapsed();
    assert!(held < Duration::from_secs(5), "held for {held:?} by a trickle, past discard_body_timeout");
    trickle.abort();

    crate::support::eventually("the discarding connection is released", || async {
        env.client.get(env.url("/v1/customers")).bearer_auth(env.idp.delegated().mint()).send().await.unwrap().status()
            == 200
    })
    .await;
    assert_eq!(env.upstream.hits(), 1, "only the compliant request after the close reached the upstream");
}

/// The status of every response in `text`, HTTP/1.0 or HTTP/1.1.
fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.")
        .filter(|(i, _)| *i == 0 || text[..*i].ends_with('\n'))
        .filter_map(|(i, _)| text.get(i + 9..i + 12).and_then(|s| s.parse().ok()))
        .collect()
}

/// `%2E` is now decoded and judged as a dot, so `%2E%2E%3B` became
/// `..%3B`: a dot segment to a server that decodes before it strips path
/// parameters (`..;` is one, and refused). Refused before any route is
/// known, naming the rule; never forwarded.
#[tokio::test]
async fn an_encoded_parameter_cannot_hide_a_dot_segment() {
    let env = crate::setup().start().await;
    let token = env.idp.aobo().mint();
    for path in ["/v1.0/%2e%2e%3b/users", "/v1.0/..%3B/users", "/v1.0/me/..%3bx/users", "/v1.0/.%3B/users"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
        let answer = raw::send(env.addr, &env.pki.ca_pem, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(answer.statuses(), [400], "{path}: {}", answer.text());
        let body = answer.json().unwrap_or_else(|| panic!("{path}: {}", answer.text()));
        assert_eq!(body["error"]["reason"], "bad_request", "{path}: {body}");
        assert_eq!(
            crate::description(&body),
            "The request is malformed or ambiguous and was not forwarded (rule: dot_segment).",
            "{path}"
        );
    }
    assert_eq!(env.upstream.hits(), 0, "a refused request reached the upstream");
}

/// A route's `path_prefix` ends on a segment boundary, and a path parameter
/// does not move it: `/v1;x/customers` is `/v1/customers` to a server that
/// strips parameters (as `..;` is `..` to it), so it must not slip past the
/// `/v1` route to a catch-all with a laxer policy on the same upstream.
#[tokio::test]
async fn a_path_parameter_does_not_move_a_route_boundary() {
    let catch_all = r#"
[[routes]]
name = "orders"
path_prefix = "/v2/orders"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://api.partnercenter.microsoft.com"]

[[routes]]
name = "catch-all"
path_prefix = "/"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://api.partnercenter.microsoft.com"]
mode = "report-only"
"#;
    let env = crate::setup().more_routes(catch_all).start().await;
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    for path in ["/v1;x/customers", "/V1;/customers", "/v1%3Bx/customers", "/v1;x", "/v2;x/orders;y/1", "/v2%3b/Orders"]
    {
        let rsp = env.client.get(env.url(path)).bearer_auth(&no_mfa).send().await.unwrap();
        assert_rejected(rsp, 401, "mfa_required").await;
    }
    assert_eq!(env.upstream.hits(), 0, "a refused request reached the upstream");
    // Another name is another route.
    let rsp = env.client.get(env.url("/v1x/customers")).bearer_auth(&no_mfa).send().await.unwrap();
    assert_eq!(rsp.status(), 200, "report-only on the catch-all");
}

/// Exchange's legacy endpoints are named by their segment as a server reads
/// it: with a path parameter (`/EWS;x/`, `/EWS%3B/`) it is still EWS, and a
/// credential other than a bearer token there is legacy authentication. (It
/// was refused anyway, as `missing_token`, while any rule enforces; the
/// answer and the decision log named the wrong rule, and a route reporting
/// only would have recorded it as a missing token.)
#[tokio::test]
async fn a_path_parameter_does_not_hide_an_exchange_legacy_endpoint() {
    let env = TestEnv::setup()
        .route("path_prefix = \"/\"\nmode = \"report-only\"\nrule_modes = { legacy_auth = \"enforce\" }")
        .start()
        .await;
    for path in ["/EWS/Exchange.asmx", "/EWS;x/Exchange.asmx", "/ews%3B/Exchange.asmx", "/mapi;/emsmdb"] {
        let rsp = env.client.get(env.url(path)).header("authorization", "X-Custom c2VjcmV0").send().await.unwrap();
        assert_rejected(rsp, 401, "legacy_auth").await;
    }
    assert_eq!(env.upstream.hits(), 0, "a refused request reached the upstream");
}
