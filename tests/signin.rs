//! The sign-in plane on a login route: the grant policy (`deny_grants`,
//! `require_client_assertion`, `allowed_token_clients`, each a rule with its
//! own mode) refusing token requests in the OAuth error format before they
//! reach the token endpoint, in every spelling the lenient body parser
//! reads; and the sign-in review: what the decision log records of each
//! token request (never a secret, code, assertion, refresh token or
//! password) and `mfagate report --table signins` on that log.

mod support;

use base64::Engine;
use support::idp::{AZURE_CLI, SAM_APP, TID};
use support::{TestEnv, assert_rejected};

const BIN: &str = env!("CARGO_BIN_EXE_mfagate");
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

/// A login route to the recording upstream with `extra` keys.
fn login_route(extra: &str) -> String {
    format!(
        "[[routes]]\nname = \"login\"\nkind = \"login\"\npath_prefix = \"/{TID}\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\n{extra}\n"
    )
}

fn strict() -> String {
    login_route(&format!(
        "deny_grants = [\"password\", \"{DEVICE_CODE}\"]\nrequire_client_assertion = true\nallowed_token_clients = [\"{SAM_APP}\"]"
    ))
}

fn token_url(env: &TestEnv) -> String {
    env.url(&format!("/{TID}/oauth2/v2.0/token"))
}

async fn post(env: &TestEnv, content_type: &str, body: &str) -> reqwest::Response {
    env.client.post(token_url(env)).header("content-type", content_type).body(body.to_string()).send().await.unwrap()
}

const FORM: &str = "application/x-www-form-urlencoded";

/// Asserts the OAuth answer for `reason` (RFC 6749 §5.2, `unauthorized_client`).
async fn refused(rsp: reqwest::Response, reason: &str) {
    let rsp_status = rsp.status();
    let text = rsp.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{rsp_status}: {text}"));
    assert_eq!((rsp_status.as_u16(), body["reason"].as_str()), (403, Some(reason)), "{body}");
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
}

fn assertion_body(client: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={client}&client_assertion=eyJhbGciOiJSUzI1NiJ9.e30.c2ln&client_assertion_type={JWT_BEARER}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
    )
}

#[tokio::test]
async fn the_grant_policy_refuses_before_the_token_endpoint_in_every_spelling() {
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&strict()).start().await;
    // The device code grant, in the forms a lenient server reads.
    for (content_type, body) in [
        (FORM, format!("grant_type={DEVICE_CODE}&client_id={SAM_APP}&device_code=GAAA")),
        (FORM, format!("Grant_Type=URN%3AIETF%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id={SAM_APP}")),
        (FORM, format!("grant_type=refresh_token&grant_type={DEVICE_CODE}&client_id={SAM_APP}")),
        ("application/json", format!(r#"{{"grant_type":"{DEVICE_CODE}","client_id":"{SAM_APP}"}}"#)),
        ("text/plain", format!("grant_type={DEVICE_CODE}&client_id={SAM_APP}")),
    ] {
        refused(post(&env, content_type, &body).await, "grant_not_allowed").await;
    }
    // In the query too.
    let rsp = env
        .client
        .post(format!("{}?grant_type={DEVICE_CODE}", token_url(&env)))
        .header("content-type", FORM)
        .body(assertion_body(SAM_APP))
        .send()
        .await
        .unwrap();
    refused(rsp, "grant_not_allowed").await;
    // The password grant stays password_grant (legacy authentication).
    let rsp = post(&env, FORM, &format!("grant_type=password&client_id={SAM_APP}&username=a&password=b")).await;
    assert_rejected(rsp, 403, "password_grant").await;

    // A client secret, in the body (any case, even empty) or as Basic client authentication.
    for body in [
        format!("grant_type=client_credentials&client_id={SAM_APP}&client_secret=s3cr3t"),
        format!("grant_type=client_credentials&client_id={SAM_APP}&CLIENT%5FSECRET="),
        format!("{}&client_secret=s3cr3t", assertion_body(SAM_APP)),
    ] {
        refused(post(&env, FORM, &body).await, "client_secret_not_allowed").await;
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SAM_APP}:s3cr3t"));
    let rsp = env
        .client
        .post(token_url(&env))
        .header("content-type", FORM)
        .header("authorization", format!("basic {basic}"))
        .body("grant_type=client_credentials&scope=x")
        .send()
        .await
        .unwrap();
    refused(rsp, "client_secret_not_allowed").await;

    // A client that is not listed, alone or beside the listed one.
    for body in [
        assertion_body(AZURE_CLI),
        format!("{}&client_id={AZURE_CLI}", assertion_body(SAM_APP)),
        assertion_body(SAM_APP).replace(&format!("client_id={SAM_APP}&"), ""),
    ] {
        refused(post(&env, FORM, &body).await, "token_client_not_allowed").await;
    }
    assert_eq!(env.upstream.hits(), 0, "nothing reached the token endpoint");

    // A certificate-authenticated request of the listed client passes, body intact.
    let body = assertion_body(&SAM_APP.to_uppercase());
    let rsp = post(&env, FORM, &body).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.text().await.unwrap(), body);
    assert_eq!(env.upstream.hits(), 1);
    let counted =
        |reason: &str| format!(r#"mfagate_requests_total{{decision="deny",reason="{reason}",route="login"}}"#);
    assert_eq!(env.metric(&counted("grant_not_allowed")).await, 6.0);
    assert_eq!(env.metric(&counted("client_secret_not_allowed")).await, 4.0);
    assert_eq!(env.metric(&counted("token_client_not_allowed")).await, 3.0);
}

#[tokio::test]
async fn each_grant_rule_has_its_own_mode() {
    let route =
        strict() + "rule_modes = { deny_grants = \"report-only\", require_client_assertion = \"report-only\" }\n";
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&route).start().await;
    let rsp = post(&env, FORM, &format!("grant_type={DEVICE_CODE}&client_id={SAM_APP}")).await;
    assert_eq!(rsp.status(), 200, "report-only: forwarded");
    let rsp = post(&env, FORM, &format!("grant_type=client_credentials&client_id={SAM_APP}&client_secret=x")).await;
    assert_eq!(rsp.status(), 200);
    // allowed_token_clients still enforces.
    refused(post(&env, FORM, &assertion_body(AZURE_CLI)).await, "token_client_not_allowed").await;
    assert_eq!(env.upstream.hits(), 2);
    let would =
        |reason: &str| format!(r#"mfagate_requests_total{{decision="would_deny",reason="{reason}",route="login"}}"#);
    assert_eq!(env.metric(&would("grant_not_allowed")).await, 1.0);
    assert_eq!(env.metric(&would("client_secret_not_allowed")).await, 1.0);
}

#[test]
fn the_grant_keys_belong_to_login_routes() {
    let base = "[[routes]]\nname = \"pc\"\nupstream = \"https://api.partnercenter.microsoft.com\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\n";
    let key = |extra: &str| {
        mfagate::config::Config::from_toml(&format!("{base}{extra}\n"))
            .unwrap_err()
            .key()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(key(&format!("deny_grants = [\"{DEVICE_CODE}\"]")), "routes[0].deny_grants");
    assert_eq!(key("require_client_assertion = true"), "routes[0].require_client_assertion");
    assert_eq!(key(&format!("allowed_token_clients = [\"{SAM_APP}\"]")), "routes[0].allowed_token_clients");
    let login = "[[routes]]\nname = \"l\"\nkind = \"login\"\nupstream = \"https://login.microsoftonline.com\"\n";
    let key = |extra: &str| {
        mfagate::config::Config::from_toml(&format!("{login}{extra}\n"))
            .unwrap_err()
            .key()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(key("allowed_token_clients = [\"not-a-guid\"]"), "routes[0].allowed_token_clients[0]");
    assert_eq!(key("deny_grants = [\"a,b\"]"), "routes[0].deny_grants[0]");
    assert_eq!(key("rule_modes = { deny_grant = \"report-only\" }"), "routes[0].rule_modes.deny_grant");
}

async fn report(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(BIN).arg("report").args(args).env_remove("MFAGATE_CONFIG").output().await;
    let out = out.expect("mfagate runs");
    (out.status.code().expect("exited"), String::from_utf8(out.stdout).unwrap())
}

#[tokio::test]
async fn the_sign_in_review_records_who_signs_in_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let route = strict()
        .replace("require_client_assertion = true\n", "")
        .replace(&format!("path_prefix = \"/{TID}\""), "path_prefix = \"/\"")
        + &format!("\n[audit]\nsink = \"file\"\npath = {}\n", support::toml_str(&log));
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&route).start().await;
    // Every value a token request carries that must never be logged.
    let secrets = [
        "Sec-Ret-Value-1f0e",
        "AuthCode-0AQ-7c2d",
        "eyJhbGciOiJSUzI1NiJ9.Assert10n.S1g",
        "RefreshTok-0.AAAA-91ab",
        "Passw0rd-hunter2",
        "DeviceCode-GAAA-55",
        "BasicSecret-3c4d",
    ];
    let sends = [
        format!(
            "grant_type=client_credentials&client_id={SAM_APP}&client_secret={}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
            secrets[0]
        ),
        format!(
            "grant_type=authorization_code&client_id={SAM_APP}&code={}&client_assertion={}&client_assertion_type={JWT_BEARER}&scope=https%3A%2F%2Fapi.partnercenter.microsoft.com%2Fuser_impersonation",
            secrets[1], secrets[2]
        ),
        format!(
            "grant_type=refresh_token&client_id={SAM_APP}&refresh_token={}&resource=https%3A%2F%2Fmanagement.azure.com%2F",
            secrets[3]
        ),
        format!("grant_type=password&client_id={SAM_APP}&username=admin%40contoso.com&password={}", secrets[4]),
        format!("grant_type={DEVICE_CODE}&client_id={SAM_APP}&device_code={}", secrets[5]),
        format!("grant_type=client_credentials&client_id={AZURE_CLI}&client_secret={}", secrets[0]),
    ];
    let mut statuses = Vec::new();
    for body in &sends {
        statuses.push(post(&env, FORM, body).await.status().as_u16());
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SAM_APP}:{}", secrets[6]));
    let rsp = env
        .client
        .post(env.url("/Contoso.onmicrosoft.com/oauth2/token"))
        .header("content-type", FORM)
        .header("authorization", format!("Basic {basic}"))
        .body("grant_type=client_credentials&scope=x")
        .send()
        .await
        .unwrap();
    statuses.push(rsp.status().as_u16());
    assert_eq!(statuses, [200, 200, 200, 403, 403, 403, 200], "{statuses:?}");
    let n = statuses.len();
    let (text, lines) = support::audit_lines(&log, n).await;
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} is in the decision log:\n{text}");
    }
    assert!(!text.contains("admin@contoso.com"), "the user name is only fingerprinted");

    let secret = &lines[0];
    assert_eq!(secret["route"], "login");
    assert_eq!(secret["signin_tenant"], TID);
    assert_eq!(secret["appid"], SAM_APP);
    assert_eq!(secret["grant_type"], "client_credentials");
    assert_eq!(secret["client_auth"], "secret");
    assert_eq!(secret["scope"], "https://graph.microsoft.com/.default");
    assert_eq!((secret["decision"].as_str(), secret["upstream_status"].as_u64()), (Some("allow"), Some(200)));
    let assertion = &lines[1];
    assert_eq!(
        (assertion["client_auth"].as_str(), assertion["grant_type"].as_str()),
        (Some("assertion"), Some("authorization_code"))
    );
    assert_eq!(lines[2]["resource"], "https://management.azure.com/");
    assert_eq!(
        (lines[2]["client_auth"].as_str(), lines[2]["grant_type"].as_str()),
        (Some("none"), Some("refresh_token"))
    );
    assert_eq!((lines[3]["decision"].as_str(), lines[3]["reason"].as_str()), (Some("deny"), Some("password_grant")));
    assert!(lines[3]["upn_sha256"].is_string());
    assert!(lines[3].get("upstream_status").is_none(), "never forwarded");
    assert_eq!(lines[4]["reason"], "grant_not_allowed");
    assert_eq!(
        (lines[5]["reason"].as_str(), lines[5]["appid"].as_str()),
        (Some("token_client_not_allowed"), Some(AZURE_CLI))
    );
    let basic = &lines[6];
    assert_eq!(
        (basic["signin_tenant"].as_str(), basic["client_auth"].as_str()),
        (Some("contoso.onmicrosoft.com"), Some("secret"))
    );
    assert_eq!(basic["appid"], SAM_APP, "the client of Basic client authentication");

    // The review, as text, CSV and JSON.
    let path = log.display().to_string();
    let (code, table) = report(&["--table", "signins", &path]).await;
    println!("{table}");
    assert_eq!(code, 2, "some were denied");
    assert!(table.starts_with("Decision log: "), "{table}");
    assert!(table.contains("Sign-ins (token requests on login routes)"), "{table}");
    let row = table.lines().find(|l| l.contains("device_code")).expect(&table);
    assert!(row.contains(TID) && row.contains(SAM_APP) && row.contains("grant_not_allowed=1"), "{row}");
    let (_, csv) = report(&["--format", "csv", "--table", "signins", &path]).await;
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("tenant,clientId,grantType,clientAuth,count,forwarded,issued,denied,wouldDeny,firstSeen,lastSeen")
    );
    let cc = csv.lines().find(|l| l.starts_with(&format!("{TID},{SAM_APP},client_credentials,secret,"))).expect(&csv);
    assert!(cc.contains(",1,1,1,,,"), "one request, forwarded, a token issued: {cc}");
    let (_, json) = report(&["--format", "json", &path]).await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let signins = json["signins"].as_array().unwrap();
    let password = signins.iter().find(|s| s["grantType"] == "password").unwrap();
    assert_eq!(password["denied"]["password_grant"], 1);
    assert_eq!(password["clientAuth"], "none");
    assert_eq!(signins.iter().map(|s| s["count"].as_u64().unwrap()).sum::<u64>(), n as u64);
    let (_, html) = report(&["--format", "html", &path]).await;
    let section = &html[html.find("<h2>Sign-in review</h2>").expect("the HTML report has the section")..];
    assert!(section.contains(DEVICE_CODE) && section.contains("grant_not_allowed=1"), "{section}");
    for secret in secrets {
        assert!(!table.contains(secret) && !csv.contains(secret) && !html.contains(secret), "{secret}");
    }
}

/// A token request with these `Authorization` values (raw bytes) and `body`.
async fn with_authorization(env: &TestEnv, values: &[&[u8]], body: &str) -> reqwest::Response {
    let mut req = env.client.post(token_url(env)).header("content-type", FORM);
    for v in values {
        req = req.header("authorization", reqwest::header::HeaderValue::from_bytes(v).unwrap());
    }
    req.body(body.to_string()).send().await.unwrap()
}

#[tokio::test]
async fn basic_client_authentication_is_read_whatever_whitespace_separates_it_and_an_unreadable_one_is_refused() {
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&strict()).start().await;
    let b64 = |creds: &str| base64::engine::general_purpose::STANDARD.encode(creds);
    // The client secret in Basic, separated by a tab, tabs and spaces, or surrounded by them.
    for sep in ["\t", "\t\t", " \t ", "  "] {
        let value = format!("Basic{sep}{}", b64(&format!("{SAM_APP}:s3cr3t")));
        let rsp = with_authorization(&env, &[value.as_bytes()], "grant_type=client_credentials&scope=x").await;
        refused(rsp, "client_secret_not_allowed").await;
    }
    // The client it names is read the same way: not listed, refused.
    let lax =
        login_route(&format!("allowed_token_clients = [\"{SAM_APP}\"]")).replace("name = \"login\"", "name = \"lax\"");
    let env2 = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&lax).start().await;
    let value = format!("BASIC\t{}", b64(&format!("{AZURE_CLI}:s3cr3t")));
    let rsp =
        with_authorization(&env2, &[value.as_bytes()], &format!("grant_type=client_credentials&client_id={SAM_APP}"))
            .await;
    refused(rsp, "token_client_not_allowed").await;
    // Basic anywhere in a list of credentials is a secret too.
    let value = format!("Bearer abc, Basic\t{}", b64(&format!("{SAM_APP}:s3cr3t")));
    refused(with_authorization(&env, &[value.as_bytes()], &assertion_body(SAM_APP)).await, "client_secret_not_allowed")
        .await;
    // A value that cannot be read (not text, or no scheme): refused, never forwarded unchecked.
    for value in [&b"\xffBasic abc"[..], b"", b"Basic\xa0abc"] {
        let rsp = with_authorization(&env, &[value], &assertion_body(SAM_APP)).await;
        assert_eq!(rsp.status(), 400, "{value:?}");
        let body: serde_json::Value = rsp.json().await.unwrap();
        assert_eq!((body["error"].as_str(), body["reason"].as_str()), (Some("invalid_request"), Some("bad_request")));
        let description = body["error_description"].as_str().unwrap();
        assert!(description.ends_with("(rule: token_request_authorization)."), "{value:?}: {body}");
    }
    assert_eq!(env.upstream.hits() + env2.upstream.hits(), 0, "nothing reached the token endpoint");
}

#[tokio::test]
async fn the_device_code_grant_is_denied_by_its_v1_name_too() {
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&strict()).start().await;
    // ADAL's name for it on the v1 endpoint, in any case and form.
    let v1 = env.url(&format!("/{TID}/oauth2/token"));
    for (content_type, body) in [
        (
            FORM,
            format!("grant_type=device_code&client_id={SAM_APP}&code=GAAA&resource=https%3A%2F%2Fgraph.windows.net"),
        ),
        (FORM, format!("grant_type=%20Device_Code%00&client_id={SAM_APP}&code=GAAA")),
        ("application/json", format!(r#"{{"grant_type":"DEVICE_CODE","client_id":"{SAM_APP}"}}"#)),
    ] {
        let rsp = env.client.post(&v1).header("content-type", content_type).body(body).send().await.unwrap();
        refused(rsp, "grant_not_allowed").await;
    }
    // And the other way round: a route that lists the v1 name denies the URN.
    let short =
        login_route("deny_grants = [\"password\", \"device_code\"]").replace("name = \"login\"", "name = \"short\"");
    let env2 = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&short).start().await;
    refused(post(&env2, FORM, &format!("grant_type={DEVICE_CODE}&client_id={SAM_APP}")).await, "grant_not_allowed")
        .await;
    assert_eq!(env.upstream.hits() + env2.upstream.hits(), 0, "nothing reached the token endpoint");
    // Other grants still pass.
    let rsp = post(&env2, FORM, &format!("grant_type=client_credentials&client_id={SAM_APP}&client_secret=x")).await;
    assert_eq!(rsp.status(), 200);
}

#[tokio::test]
async fn a_json_client_secret_of_any_type_is_a_secret() {
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&strict()).start().await;
    let assertion = format!(
        r#""grant_type":"client_credentials","client_id":"{SAM_APP}","client_assertion":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","client_assertion_type":"urn:ietf:params:oauth:client-assertion-type:jwt-bearer""#
    );
    for secret in ["12345", "true", "false", "{}", r#"{"v":"s3cr3t"}"#, "null", "[]", "[1]", "1.5e3"] {
        let body = format!(r#"{{{assertion},"client_secret":{secret}}}"#);
        refused(post(&env, "application/json", &body).await, "client_secret_not_allowed").await;
    }
    // A client id that is not a string names no allowed client.
    let body = format!(
        r#"{{"grant_type":"client_credentials","client_id":"{SAM_APP}","client_id":12345,"client_assertion":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","client_assertion_type":"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}"#
    );
    refused(post(&env, "application/json", &body).await, "token_client_not_allowed").await;
    assert_eq!(env.upstream.hits(), 0, "nothing reached the token endpoint");
    // The certificate alone passes.
    let rsp = post(&env, "application/json", &format!("{{{assertion}}}")).await;
    assert_eq!(rsp.status(), 200);
}

#[tokio::test]
async fn the_sign_in_review_counts_token_requests_only_in_one_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let route = login_route(&format!(
        "deny_grants = [\"password\", \"{DEVICE_CODE}\"]\n\n[audit]\nsink = \"file\"\npath = {}\n",
        support::toml_str(&log)
    ));
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&route).start().await;
    // Not token requests: discovery and the authorize endpoint.
    for path in ["/discovery/instance?api-version=1.1", "/oauth2/v2.0/authorize?client_id=x&response_type=code"] {
        let rsp = env.client.get(env.url(&format!("/{TID}{path}"))).send().await.unwrap();
        assert_eq!(rsp.status(), 200, "{path}");
    }
    let v1 = env.url(&format!("/{TID}/oauth2/token"));
    let sends = [
        format!("grant_type=Client_Credentials&client_id={}&client_secret=x", SAM_APP.to_uppercase()),
        format!("grant_type=client_credentials&client_id={SAM_APP}&client_secret=x"),
        format!("grant_type=device_code&client_id={SAM_APP}&code=x"),
        format!("grant_type=URN:IETF:PARAMS:OAUTH:GRANT-TYPE:DEVICE_CODE&client_id={SAM_APP}&device_code=x"),
        format!("grant_type=authorization_code&grant_type={DEVICE_CODE}&client_id={SAM_APP}&code=x"),
    ];
    let mut statuses = Vec::new();
    for body in &sends {
        let rsp = env.client.post(&v1).header("content-type", FORM).body(body.clone()).send().await.unwrap();
        statuses.push(rsp.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 403, 403, 403]);
    let (_, lines) = support::audit_lines(&log, 7).await;
    assert!(lines[..2].iter().all(|l| l.get("client_auth").is_none() && l.get("grant_type").is_none()), "{lines:?}");
    assert_eq!(lines[2]["appid"], SAM_APP, "a client id is recorded lower-case");
    let (_, json) = report(&["--format", "json", &log.display().to_string()]).await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows: Vec<(String, String, u64)> = json["signins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["clientId"].as_str().unwrap().into(),
                s["grantType"].as_str().unwrap().into(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (SAM_APP.to_string(), "client_credentials".to_string(), 2),
            (SAM_APP.to_string(), DEVICE_CODE.to_string(), 2),
            (SAM_APP.to_string(), format!("authorization_code {DEVICE_CODE}"), 1),
        ],
        "{json}"
    );
}

/// Asserts a 400 OAuth answer naming request rule `rule`.
async fn bad_request(rsp: reqwest::Response, rule: &str, what: &str) {
    assert_eq!(rsp.status(), 400, "{what}");
    let body: serde_json::Value = rsp.json().await.unwrap();
    assert_eq!((body["error"].as_str(), body["reason"].as_str()), (Some("invalid_request"), Some("bad_request")));
    let description = body["error_description"].as_str().unwrap();
    assert!(description.ends_with(&format!("(rule: {rule}).")), "{what}: {body}");
}

#[tokio::test]
async fn a_json_body_a_strict_parser_rejects_is_refused_not_read_as_nothing() {
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&login_route("")).start().await;
    let password =
        format!(r#""grant_type":"password","username":"a@b.c","password":"Hunter2","client_id":"{AZURE_CLI}""#);
    let bodies = [
        format!(r#"{{{password},"x":1e99999}}"#),
        format!(r#"{{{password},"x":{}{}}}"#, "[".repeat(200), "]".repeat(200)),
        format!("{{{}}}", password.replace('"', "'")),
        format!("{{{password},}}"),
        format!("{{{password}}}x"),
        format!(r#"{{{password},"x":NaN}}"#),
        format!("{{/**/{password}}}"),
        format!("\u{feff}\n[{{{password}}}]"),
        format!("/*c*/{{{password}}}"),
        format!("\u{b}{{{password}}}"),
        format!("\u{a0}{{{password}}}"),
        format!("\u{feff}\u{feff}{{{password}}}"),
    ];
    for content_type in [
        "application/json",
        "text/json",
        "Application/JSON; charset=utf-8",
        "application/x+json",
        FORM,
        "application/json5",
    ] {
        for body in &bodies {
            bad_request(post(&env, content_type, body).await, "token_request_json", &format!("{content_type} {body}"))
                .await;
        }
    }
    // A form declared JSON is refused too.
    bad_request(post(&env, "text/json", "grant_type=password&password=Hunter2").await, "token_request_json", "form")
        .await;
    assert_eq!(env.upstream.hits(), 0, "nothing reached the token endpoint");
    // JSON a strict parser reads is judged as before.
    refused(post(&env, "application/json", &format!("{{{password}}}")).await, "password_grant").await;
}

#[tokio::test]
async fn every_basic_credential_in_one_authorization_list_names_its_client() {
    let lax = login_route(&format!("allowed_token_clients = [\"{SAM_APP}\"]"));
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&lax).start().await;
    let b64 = |creds: &str| base64::engine::general_purpose::STANDARD.encode(creds);
    let body = format!("grant_type=client_credentials&client_id={SAM_APP}&scope=x");
    // The listed client first, another one later in the same list: refused,
    // as two headers are.
    for value in [
        format!("Basic {}, Basic {}", b64(&format!("{SAM_APP}:s")), b64(&format!("{AZURE_CLI}:s"))),
        format!("Basic {},Bearer x,basic\t{}", b64(&format!("{SAM_APP}:s")), b64(&format!("{AZURE_CLI}:s"))),
    ] {
        refused(with_authorization(&env, &[value.as_bytes()], &body).await, "token_client_not_allowed").await;
    }
    assert_eq!(env.upstream.hits(), 0, "nothing reached the token endpoint");
    // The same client twice in one list names that client.
    let same = format!("Basic {}, Basic {}", b64(&format!("{SAM_APP}:s")), b64(&format!("{SAM_APP}:s")));
    assert_eq!(with_authorization(&env, &[same.as_bytes()], &body).await.status(), 200);
}

/// Every token request names its grant: a body sent to a token endpoint in
/// which no reading finds one (JSON behind a prefix a lenient reader skips,
/// in UTF-16 or ISO-8859-1) is refused, never forwarded as a request with
/// nothing to judge; a request that is not a token request still passes.
#[tokio::test]
async fn a_token_request_in_which_no_reading_finds_a_grant_is_refused() {
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&strict()).start().await;
    let json = format!(r#"{{"grant_type":"password","username":"u","password":"Hunter2","client_id":"{SAM_APP}"}}"#);
    let utf16 = |prefix: &[u8], text: &str, big: bool| {
        let mut out = prefix.to_vec();
        for unit in text.encode_utf16() {
            out.extend_from_slice(&if big { unit.to_be_bytes() } else { unit.to_le_bytes() });
        }
        out
    };
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (FORM, utf16(b"\xff\xfe", &format!("\u{a0}{json}"), false)),
        (FORM, utf16(b"\xff\xfe", &format!("\u{feff}{json}"), false)),
        (FORM, utf16(b"\xfe\xff", &format!("\u{feff}{json}"), true)),
        (FORM, utf16(b"", &format!("\u{3000}{json}"), false)),
        ("application/x-www-form-urlencoded; charset=iso-8859-1", [&b"\xa0"[..], json.as_bytes()].concat()),
        ("application/x-www-form-urlencoded; charset=iso-8859-1", [&b"\x85"[..], json.as_bytes()].concat()),
        (FORM, format!("#c\n{json}").into_bytes()),
        (FORM, format!(")]}}'\n{json}").into_bytes()),
        (FORM, [&b"\xef\xbb\xbf\xff\xfe"[..], json.as_bytes()].concat()),
    ];
    for path in
        ["/oauth2/v2.0/token", "/oauth2/token", "/oauth2/v2.0/%74oken", "/oauth2/v2.0/token;x", "/oauth2/v2.0/TOKEN/"]
    {
        for (content_type, body) in &bodies {
            let rsp = env
                .client
                .post(env.url(&format!("/{TID}{path}")))
                .header("content-type", *content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            bad_request(rsp, "token_request_no_grant", &format!("{path} {content_type} {body:?}")).await;
        }
    }
    assert_eq!(env.upstream.hits(), 0, "nothing reached the token endpoint");
    // A device code request names no grant, and is no token request.
    let rsp = env
        .client
        .post(env.url(&format!("/{TID}/oauth2/v2.0/devicecode")))
        .header("content-type", FORM)
        .body(format!("client_id={SAM_APP}&scope=openid"))
        .send()
        .await
        .unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.upstream.hits(), 1);
}
