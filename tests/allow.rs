//! The allow path: compliant calls pass untouched, streamed both ways, over
//! HTTP/1.1 and HTTP/2; report-only forwards and records `would_deny`.

mod support;

use futures_util::StreamExt;
use support::idp::{AZURE_CLI, keys};
use support::{TestEnv, client};

#[tokio::test]
async fn request_and_response_pass_intact() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    let h1 = client(&env.pki.ca_pem, true);
    let rsp = h1
        .post(env.url("/v1/customers/abc/orders?api-version=2&x=%2F"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("x-custom", "kept")
        .header("accept", "application/json")
        .header("ms-correlationid", "4c7e5b0a-1f2d-4e3c-8b9a-0d1e2f3a4b5c")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "dropped")
        .header("x-forwarded-for", "10.1.2.3")
        .body(r#"{"lineItems":[{"offerId":"CFQ7TTC0LH18"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.headers()["x-upstream"], "recording");
    assert_eq!(
        rsp.headers()["ms-correlationid"],
        "4c7e5b0a-1f2d-4e3c-8b9a-0d1e2f3a4b5c",
        "the client's correlation id wins"
    );
    assert!(rsp.headers().contains_key("ms-requestid"));
    assert!(!rsp.headers().contains_key("x-upstream-private"), "fields named in the upstream's Connection are dropped");
    assert_eq!(rsp.text().await.unwrap(), r#"{"lineItems":[{"offerId":"CFQ7TTC0LH18"}]}"#);

    let seen = env.upstream.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path_and_query, "/v1/customers/abc/orders?api-version=2&x=%2F");
    assert_eq!(seen.headers["authorization"], format!("Bearer {token}"), "Authorization is forwarded as is");
    assert_eq!(seen.headers["x-custom"], "kept");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.headers["ms-correlationid"], "4c7e5b0a-1f2d-4e3c-8b9a-0d1e2f3a4b5c");
    assert_eq!(seen.headers["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert_eq!(seen.headers["x-forwarded-host"], format!("localhost:{}", env.addr.port()));
    assert!(!seen.headers.contains_key("x-hop"));
    assert!(!seen.headers.contains_key("connection"));
    let host = seen.headers.get("host").map(|h| h.to_str().unwrap().to_string());
    let expected = format!("127.0.0.1:{}", env.upstream.addr.port());
    assert!(
        host.is_none() || host.as_deref() == Some(expected.as_str()),
        "Host is the upstream's, not the client's: {host:?}"
    );
}

#[tokio::test]
async fn a_new_correlation_id_is_made_when_the_client_sends_none() {
    let env = TestEnv::setup().start().await;
    let rsp = env.get("/v1/customers", Some(&env.idp.delegated().mint())).await;
    let id = rsp.headers()["ms-correlationid"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(env.upstream.last().headers["ms-correlationid"], id.as_str());
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    const MIB: usize = 1024 * 1024;
    // 32 MiB up, sent in chunks, echoed back in chunks.
    let chunks = futures_util::stream::iter((0..32).map(|i| Ok::<_, std::io::Error>(vec![(i % 251) as u8; MIB])));
    let rsp = env
        .client
        .put(env.url("/v1/upload"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(rsp.status(), 200);
    let mut stream = rsp.bytes_stream();
    let (mut total, mut frames) = (0usize, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for (i, b) in chunk.iter().enumerate() {
            assert_eq!(*b, (((total + i) / MIB) % 251) as u8);
        }
        total += chunk.len();
        frames += 1;
    }
    assert_eq!(total, 32 * MIB);
    assert!(frames > 32, "the body arrived in pieces, not collected");
    // 64 MiB down.
    let rsp = env.get(&format!("/download/{}", 64 * MIB), Some(&token)).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.bytes().await.unwrap().len(), 64 * MIB);
}

#[tokio::test]
async fn http2_on_both_sides() {
    let env = TestEnv::setup().start().await;
    let rsp = env.get("/v1/customers", Some(&env.idp.delegated().mint())).await;
    assert_eq!(rsp.version(), reqwest::Version::HTTP_2, "ALPN chose h2 with the client");
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.upstream.last().version, http::Version::HTTP_2, "and with the upstream");
    let h1 = client(&env.pki.ca_pem, true);
    let rsp = h1.get(env.url("/v1/customers")).bearer_auth(env.idp.delegated().mint()).send().await.unwrap();
    assert_eq!(rsp.version(), reqwest::Version::HTTP_11);
    assert_eq!(rsp.status(), 200);
}

#[tokio::test]
async fn accepted_token_shapes() {
    let env = TestEnv::setup().start().await;
    let idp = &env.idp;
    let cases = [
        ("mfa", idp.delegated().mint()),
        ("ngcmfa", idp.delegated().amr(&["ngcmfa"]).mint()),
        ("certificate client", idp.delegated().claim("appidacr", "2").mint()),
        ("GUID audience", idp.delegated().claim("aud", "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd").mint()),
        ("trailing slash audience", idp.delegated().claim("aud", "https://api.partnercenter.microsoft.com/").mint()),
        ("audience array", idp.delegated().claim("aud", vec!["x", "https://api.partnercenter.microsoft.com"]).mint()),
        ("ES256 key", idp.delegated().header("alg", "ES256").header("kid", "ec-kid").signed_by(&keys().ec).mint()),
        ("within skew", idp.delegated().claim("exp", support::idp::now() - 30).mint()),
    ];
    for (what, token) in cases {
        assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200, "{what}");
    }
    assert_eq!(env.upstream.hits(), 8);
}

#[tokio::test]
async fn audiences_match_in_any_case_where_guids_and_uri_hosts_do() {
    let env = TestEnv::setup().start().await;
    let idp = &env.idp;
    for aud in [
        serde_json::json!("HTTPS://API.PartnerCenter.microsoft.com/"),
        serde_json::json!("https://API.PARTNERCENTER.MICROSOFT.COM"),
        serde_json::json!("FA3D9A0C-3FB0-42CC-9193-47C7ECD2EDBD"),
        serde_json::json!("Fa3d9a0c-3fb0-42CC-9193-47c7ecd2edbd"),
        serde_json::json!(["x", "Https://Api.PartnerCenter.Microsoft.Com"]),
    ] {
        let token = idp.delegated().claim("aud", aud.clone()).mint();
        assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200, "{aud}");
    }
    assert_eq!(env.upstream.hits(), 5);
}

#[tokio::test]
async fn audiences_configured_in_upper_case_accept_real_tokens() {
    let env = TestEnv::setup()
        .route("path_prefix = \"/other\"")
        .more_routes(
            r#"
[[routes]]
name = "shouting"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["HTTPS://API.PARTNERCENTER.MICROSOFT.COM/", "FA3D9A0C-3FB0-42CC-9193-47C7ECD2EDBD"]
"#,
        )
        .start()
        .await;
    let idp = &env.idp;
    for aud in ["https://api.partnercenter.microsoft.com", "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd"] {
        let token = idp.delegated().claim("aud", aud).mint();
        assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200, "{aud}");
    }
    assert_eq!(
        env.metric(r#"mfagate_requests_total{decision="allow",reason="none",route="shouting"}"#).await,
        2.0,
        "the route configured in upper case took them"
    );
}

#[tokio::test]
async fn relaxed_route_options() {
    let env =
        TestEnv::setup().route("allow_app_only = true\nallow_public_clients = true\nrequire_mfa = false").start().await;
    for token in [
        env.idp.app_only().mint(),
        env.idp.delegated().claim("appidacr", "0").claim("appid", AZURE_CLI).mint(),
        env.idp.delegated().amr(&["pwd"]).mint(),
    ] {
        assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    }
}

#[tokio::test]
async fn report_only_forwards_and_counts_would_deny() {
    let env = TestEnv::setup().route(r#"mode = "report-only""#).start().await;
    let series = |reason: &str| {
        format!(r#"mfagate_requests_total{{decision="would_deny",reason="{reason}",route="partner-center"}}"#)
    };
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    assert_eq!(env.get("/v1/customers", Some(&no_mfa)).await.status(), 200);
    assert_eq!(env.get("/v1/customers", Some(&env.idp.app_only().mint())).await.status(), 200);
    assert_eq!(env.get("/v1/customers", None).await.status(), 200);
    assert_eq!(env.get("/v1/customers", Some(&env.idp.delegated().mint())).await.status(), 200);
    assert_eq!(env.upstream.hits(), 4);
    let scrape = env.metrics().await;
    assert_eq!(support::sample(&scrape, &series("mfa_required")), 1.0);
    assert_eq!(support::sample(&scrape, &series("app_only_not_allowed")), 1.0);
    assert_eq!(support::sample(&scrape, &series("missing_token")), 1.0);
    assert_eq!(
        support::sample(&scrape, r#"mfagate_requests_total{decision="allow",reason="none",route="partner-center"}"#),
        1.0
    );
    assert_eq!(
        support::sample(
            &scrape,
            r#"mfagate_requests_total{decision="deny",reason="mfa_required",route="partner-center"}"#
        ),
        0.0
    );
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let env = TestEnv::setup().start().await;
    assert_eq!(env.get("/v1/customers", Some(&env.idp.delegated().mint())).await.status(), 200);
    let scrape = env.metrics().await;
    assert_eq!(
        support::sample(&scrape, r#"mfagate_requests_total{decision="allow",reason="none",route="partner-center"}"#),
        1.0
    );
    assert_eq!(support::sample(&scrape, r#"mfagate_request_duration_seconds_count{route="partner-center"}"#), 1.0);
    assert!(support::sample(&scrape, r#"mfagate_jwks_fetch_total{result="success",source="default"}"#) >= 1.0);
    assert!(scrape.contains(&format!(r#"mfagate_build_info{{version="{}"}} 1"#, env!("CARGO_PKG_VERSION"))));
    assert_eq!(reqwest::get(env.admin_url("/healthz")).await.unwrap().status(), 200);
    let ready = reqwest::get(env.admin_url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(reqwest::get(env.admin_url("/nope")).await.unwrap().status(), 404);
}

#[tokio::test]
async fn curl_gets_through_with_a_compliant_token() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    let out = tokio::process::Command::new(support::setup::program("curl"))
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&env.pki.ca_path)
        .args([
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .arg(env.url("/v1/customers"))
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .await
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200 2", "{}", String::from_utf8_lossy(&out.stderr));
    let out = tokio::process::Command::new(support::setup::program("curl"))
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&env.pki.ca_path)
        .args(["-H", &format!("Authorization: Bearer {}", env.idp.delegated().amr(&["pwd"]).mint())])
        .arg(env.url("/v1/customers"))
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .await
        .expect("curl runs");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["code"], "900421");
    assert_eq!(env.upstream.hits(), 1);
}
