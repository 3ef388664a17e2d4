//! What operators scrape: a live gateway's `/metrics` after real traffic
//! passes `promtool check metrics` (format and lint), and each series says
//! what happened: decisions, latency histograms, upstream answers and
//! failures by kind, in-flight requests and open connections, certificate
//! expiry checked against `openssl`, readiness and key state.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::idp::now;
use support::{JwksMode, TestEnv, sample};
use tokio::io::AsyncWriteExt;

/// Runs `promtool check metrics` on `scrape`: exit status and everything it printed.
pub async fn promtool_check_metrics(scrape: &str) -> (i32, String) {
    let mut child = tokio::process::Command::new(support::setup::program("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(scrape.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Polls the scrape until `series` has `value`, for at most 10 s.
async fn wait_for(env: &TestEnv, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = env.metric(series).await;
        if now == value {
            return;
        }
        assert!(Instant::now() < deadline, "{series} stayed {now}, expected {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn scrape_after_traffic_passes_promtool_and_counts_each_outcome() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let enforce_after = now() + 7 * 86_400;
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!(
            "[[routes]]\nname = \"staged\"\npath_prefix = \"/staged\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\n\
             audiences = [\"https://api.partnercenter.microsoft.com\"]\nenforce_after = \"{}\"\n\n\
             [[routes]]\nname = \"dead\"\npath_prefix = \"/dead\"\nupstream = \"https://127.0.0.1:{dead_port}\"\n\
             audiences = [\"https://api.partnercenter.microsoft.com\"]\n",
            mfagate::rfc3339::format(enforce_after)
        ))
        .start()
        .await;
    let ok = env.idp.delegated().mint();
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let app_only = env.idp.app_only().mint();
    assert_eq!(env.get("/v1/customers", Some(&ok)).await.status(), 200);
    assert_eq!(env.get("/v1/customers", Some(&no_mfa)).await.status(), 401);
    assert_eq!(env.get("/v1/customers", Some(&app_only)).await.status(), 403);
    assert_eq!(env.get("/staged/customers", Some(&no_mfa)).await.status(), 200, "report-only until enforce_after");
    assert_eq!(env.get("/dead/x", Some(&ok)).await.status(), 502);
    assert_eq!(env.get("/nowhere", None).await.status(), 404);

    let scrape = env.metrics().await;
    let (code, out) = promtool_check_metrics(&scrape).await;
    assert_eq!(code, 0, "promtool check metrics: {out}\n{scrape}");
    assert!(out.trim().is_empty(), "lint problems: {out}");

    let v = |series: &str| sample(&scrape, series);
    assert_eq!(v(r#"mfagate_requests_total{decision="allow",reason="none",route="partner-center"}"#), 1.0);
    assert_eq!(v(r#"mfagate_requests_total{decision="deny",reason="mfa_required",route="partner-center"}"#), 1.0);
    assert_eq!(v(r#"mfagate_requests_total{decision="would_deny",reason="mfa_required",route="staged"}"#), 1.0);
    assert_eq!(v(r#"mfagate_requests_total{decision="deny",reason="no_route",route="unmatched"}"#), 1.0);
    // The three token checks were timed; only the forwarded request reached the upstream.
    assert_eq!(v(r#"mfagate_token_verification_duration_seconds_count{route="partner-center"}"#), 3.0);
    assert_eq!(v(r#"mfagate_upstream_duration_seconds_count{route="partner-center"}"#), 1.0);
    assert_eq!(v(r#"mfagate_upstream_responses_total{class="2xx",route="partner-center"}"#), 1.0);
    assert_eq!(v(r#"mfagate_request_duration_seconds_count{route="partner-center"}"#), 3.0);
    assert_eq!(v(r#"mfagate_upstream_errors_total{kind="connect",route="dead"}"#), 1.0);
    assert_eq!(v(r#"mfagate_upstream_duration_seconds_count{route="dead"}"#), 1.0, "a failure is timed too");
    assert_eq!(v(r#"mfagate_upstream_responses_total{class="5xx",route="dead"}"#), 0.0, "no answer is no status");
    // A sub-millisecond bucket exists and the verification of a cached key is in it or later ones.
    assert!(scrape.contains(r#"mfagate_request_duration_seconds_bucket{route="partner-center",le="0.00005"}"#));
    // What the routes are and when the staged one starts enforcing.
    assert_eq!(v(r#"mfagate_route_info{kind="partner-center",mode="enforce",route="staged"}"#), 1.0);
    assert_eq!(v(r#"mfagate_route_enforce_after_timestamp_seconds{route="staged"}"#), enforce_after as f64);
    assert!(!scrape.contains(r#"mfagate_route_enforce_after_timestamp_seconds{route="partner-center"}"#));
    // App+user requests by whether their token shows MFA, whatever the route
    // decided: Partner Center's compliance measure. App-only tokens and
    // requests without a readable token are not app+user requests.
    let mfa = |mfa: &str, route: &str| v(&format!(r#"mfagate_app_user_requests_total{{mfa="{mfa}",route="{route}"}}"#));
    assert_eq!((mfa("proven", "partner-center"), mfa("missing", "partner-center")), (1.0, 1.0));
    assert_eq!((mfa("proven", "staged"), mfa("missing", "staged")), (0.0, 1.0));
    assert_eq!((mfa("proven", "dead"), mfa("missing", "dead")), (1.0, 0.0));
    assert_eq!((mfa("proven", "unmatched"), mfa("missing", "unmatched")), (0.0, 0.0));
    // Every reason's class, for queries that ask "is it a credential or rule
    // failure" without listing reason codes.
    let classes: Vec<&str> = scrape.lines().filter(|l| l.starts_with("mfagate_reason_info{")).collect();
    assert_eq!(classes.len(), mfagate::error::Reason::ALL.len(), "{classes:?}");
    for (class, reason) in [
        ("rule", "mfa_required"),
        ("credential", "expired"),
        ("credential", "keys_unavailable"),
        ("capacity", "rate_limited"),
        ("request", "no_route"),
        ("egress", "egress_denied"),
        ("upstream", "upstream_timeout"),
    ] {
        assert_eq!(v(&format!(r#"mfagate_reason_info{{class="{class}",reason="{reason}"}}"#)), 1.0, "{reason}");
    }
    // Healthy: ready, keys fresh.
    assert_eq!(v("mfagate_ready"), 1.0);
    assert_eq!(v(r#"mfagate_jwks_state{source="default",state="fresh"}"#), 1.0);
    assert_eq!(v(r#"mfagate_jwks_state{source="default",state="missing"}"#), 0.0);
    // No label carries a token, tenant, user, application or path.
    for secret in [ok.as_str(), support::idp::TID, support::idp::OID, support::idp::SAM_APP, "/v1/customers"] {
        assert!(!scrape.contains(secret), "{secret} leaked into the scrape");
    }
}

#[tokio::test]
async fn certificate_expiry_matches_openssl() {
    let env = TestEnv::setup().start().await;
    let not_after = env.metric(r#"mfagate_tls_cert_not_after_seconds{listener="gateway"}"#).await as i64;
    assert!(not_after > now(), "{not_after}");
    let cert = env.path("gateway.pem");
    // `-checkend N` exits 0 when the certificate is still valid N seconds from now.
    let checkend = |secs: i64| {
        let cert = cert.clone();
        async move {
            tokio::process::Command::new(support::setup::program("openssl"))
                .args(["x509", "-noout", "-in", cert.to_str().unwrap(), "-checkend", &secs.to_string()])
                .stdout(Stdio::null())
                .status()
                .await
                .expect("openssl runs")
                .code()
        }
    };
    let left = not_after - now();
    assert_eq!(checkend(left - 120).await, Some(0), "valid two minutes before the exported instant");
    assert_eq!(checkend(left + 120).await, Some(1), "expired two minutes after it");
}

#[tokio::test]
async fn in_flight_requests_and_open_connections_rise_and_fall() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    let in_flight = r#"mfagate_requests_in_flight{listener="gateway"}"#;
    let open = r#"mfagate_connections_open{listener="gateway"}"#;
    assert_eq!(env.metric(in_flight).await, 0.0);
    assert_eq!(env.metric(open).await, 0.0);

    // The upstream holds /slow past the gateway's 2 s upstream timeout.
    let client = support::client(&env.pki.ca_pem, true);
    let pending = tokio::spawn({
        let (client, url, token) = (client.clone(), env.url("/slow"), token.clone());
        async move { client.get(url).bearer_auth(token).send().await.unwrap().status() }
    });
    wait_for(&env, in_flight, 1.0).await;
    assert_eq!(env.metric(open).await, 1.0);
    assert_eq!(pending.await.unwrap(), 504);
    assert_eq!(env.metric(in_flight).await, 0.0, "the request ended before its answer was sent");
    assert_eq!(env.metric(open).await, 1.0, "the connection is kept alive");
    assert_eq!(env.metric(r#"mfagate_connections_accepted_total{listener="gateway"}"#).await, 1.0);
    drop(client);
    wait_for(&env, open, 0.0).await;
}

#[tokio::test]
async fn not_ready_and_keys_missing_when_the_identity_provider_fails() {
    let env = TestEnv::setup().jwks(JwksMode::Fail).start().await;
    let scrape = env.metrics().await;
    assert_eq!(sample(&scrape, "mfagate_ready"), 0.0, "{scrape}");
    assert_eq!(sample(&scrape, r#"mfagate_jwks_state{source="default",state="missing"}"#), 1.0);
    assert_eq!(sample(&scrape, r#"mfagate_jwks_state{source="default",state="fresh"}"#), 0.0);
    let (code, out) = promtool_check_metrics(&scrape).await;
    assert_eq!(code, 0, "{out}");
}
