//! `mfagate check-token` and `mfagate replay` run as processes on real
//! files: configuration, key set and token files for `check-token`; a
//! decision log written by a running gateway for `replay`. Exit codes: 0
//! allow, 2 deny, 1 error.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::idp::{GLOBAL_ADMIN, Idp, JwksMode, OTHER_TID, TID, jwks_document, keys, now};
use support::{TestEnv, write};

const BIN: &str = env!("CARGO_BIN_EXE_mfagate");

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args`, standard input from `stdin` (or nothing).
async fn mfagate(args: &[&str], stdin: Option<&Path>) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).env_remove("MFAGATE_CONFIG").env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("MFAGATE__") {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(match stdin {
        Some(path) => Stdio::from(std::fs::File::open(path).unwrap()),
        None => Stdio::null(),
    });
    let out = cmd.output().await.expect("mfagate runs");
    Output {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn day(offset_days: i64) -> String {
    mfagate::rfc3339::format(now() + offset_days * 86_400)
}

/// A configuration with a Partner Center route (customers from the path),
/// a report-only one, and a Graph route that does not verify signatures.
fn check_config(dir: &Path, name: &str, jwks: &str) -> PathBuf {
    let text = format!(
        r#"
[identity]
jwks_uri = "{jwks}"

[[routes]]
name = "partner-center"
path_prefix = "/v1"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]
customers = [{{ tenant_id = "{OTHER_TID}", ends = "{ends}" }}]

[[routes]]
name = "pc-staged"
path_prefix = "/staged"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]
mode = "report-only"

[[routes]]
name = "graph"
path_prefix = "/v1.0"
upstream = "https://graph.microsoft.com"
audiences = ["https://graph.microsoft.com"]
verify_signature = false
partner_tenants = ["{TID}"]
"#,
        ends = day(30)
    );
    write(dir, name, &text)
}

#[tokio::test]
async fn check_token_verdicts_and_exit_codes() {
    let idp = Idp::start(JwksMode::Serve).await;
    let dir = tempfile::tempdir().unwrap();
    let config = check_config(dir.path(), "mfagate.toml", &idp.url);
    let config = config.to_str().unwrap();
    let token_file = |name: &str, token: &str| write(dir.path(), name, &format!("{token}\n"));

    // A compliant token on standard input, keys fetched from the identity provider.
    let ok = idp.delegated().mint();
    let out = mfagate(&["check-token", "--config", config, "-"], Some(&token_file("ok.jwt", &ok))).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("\"amr\": [\n    \"pwd\",\n    \"mfa\"\n  ]"), "{}", out.stdout);
    assert!(out.stdout.contains("Route \"partner-center\""), "{}", out.stdout);
    assert!(out.stdout.contains("signature           pass"), "{}", out.stdout);
    assert!(out.stdout.contains("principal   app+user"), "{}", out.stdout);
    assert!(out.stdout.contains("Decision: allow"), "{}", out.stdout);
    assert!(!out.stdout.contains(ok.rsplit('.').next().unwrap()), "the signature is never printed");
    assert!(idp.hits() >= 1, "the key set was fetched");

    // No MFA, as an argument (a pasted "Bearer " prefix is fine): deny, with a hint.
    let no_mfa = idp.delegated().amr(&["pwd"]).mint();
    let out = mfagate(&["check-token", "--config", config, &format!("Bearer {no_mfa}")], None).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("mfa                 FAIL    mfa_required (401)"), "{}", out.stdout);
    assert!(out.stdout.contains("amr=[pwd]: no accepted MFA method"), "{}", out.stdout);
    assert!(out.stdout.contains("multipleauthn"), "{}", out.stdout);
    assert!(out.stdout.contains("Decision: deny: mfa_required (HTTP 401)"), "{}", out.stdout);

    // JSON: every rule, the classification, the decision.
    let out = mfagate(&["check-token", "--config", config, "--json", &no_mfa], None).await;
    assert_eq!(out.code, 2);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["decision"].as_str(), v["reason"].as_str(), v["status"].as_u64()),
        (Some("deny"), Some("mfa_required"), Some(401))
    );
    assert_eq!(v["signature"], "verified");
    assert_eq!(v["classification"]["principal"], "app_user");
    assert_eq!(v["classification"]["client"], "secret");
    assert_eq!(v["classification"]["tenancy"], "home");
    assert_eq!(v["header"]["kid"], "primary-kid");
    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 10);
    let mfa = rules.iter().find(|r| r["rule"] == "mfa").unwrap();
    assert_eq!(
        (mfa["result"].as_str(), mfa["reason"].as_str(), mfa["mode"].as_str()),
        (Some("fail"), Some("mfa_required"), Some("enforce"))
    );
    assert!(mfa["hint"].as_str().unwrap().contains("amr=[pwd]"));
    assert_eq!(rules.iter().find(|r| r["rule"] == "denied_apps").unwrap()["result"], "off");

    // A forged signature fails; --no-verify checks the claims only.
    let forged = idp.delegated().signed_by(&keys().rogue).mint();
    let forged_file = token_file("forged.jwt", &forged);
    let out = mfagate(&["check-token", "--config", config, "--json"], Some(&forged_file)).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["signature"].as_str(), v["reason"].as_str()), (Some("failed"), Some("bad_signature")));
    let out = mfagate(&["check-token", "--config", config, "--no-verify"], Some(&forged_file)).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("not checked: --no-verify"), "{}", out.stdout);

    // A Graph token picks the Graph route by its audience; that route does not verify.
    let graph = idp.graph_with_nonce().mint();
    let out = mfagate(&["check-token", "--config", config, "--json", &graph], None).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["route"].as_str(), v["signature"].as_str()), (Some("graph"), Some("not_checked")));
    assert_eq!(v["classification"]["tenancy"], "foreign");
    assert_eq!(v["classification"]["idp_tenant"], TID);
    let ga = idp.graph_with_nonce().claim("wids", vec![GLOBAL_ADMIN]).mint();
    let out = mfagate(&["check-token", "--config", config, &ga], None).await;
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("privileged_role (403)"), "{}", out.stdout);
    assert!(out.stdout.contains("Global Administrator (62e90394-69f5-4237-9190-012177145e10)"), "{}", out.stdout);

    // v2, expired, app-only, a customer from --path, report-only.
    let cases: [(Vec<String>, String, &str); 5] = [
        (vec![], idp.v2().mint(), "mfa_unprovable_v2 (401)"),
        (vec![], idp.delegated().claim("exp", now() - 600).mint(), "token               FAIL    expired (401)"),
        (vec![], idp.app_only().mint(), "app_only_not_allowed (403)"),
        (
            vec!["--path".into(), "/v1/customers/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/orders".into()],
            idp.delegated().mint(),
            "customer_not_allowed (403)",
        ),
        (vec!["--route".into(), "pc-staged".into()], no_mfa.clone(), "enforcing would deny: mfa_required"),
    ];
    for (extra, token, expected) in cases {
        let mut args = vec!["check-token", "--config", config];
        args.extend(extra.iter().map(String::as_str));
        args.push(&token);
        let out = mfagate(&args, None).await;
        assert_eq!(out.code, 2, "{expected}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains(expected), "{expected}:\n{}", out.stdout);
    }
    let path = format!("/v1/customers/{OTHER_TID}/orders");
    let out = mfagate(&["check-token", "--config", config, "--path", &path, &ok], None).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[tokio::test]
async fn check_token_picks_the_route_by_audience_in_any_case() {
    let idp = Idp::start(JwksMode::Serve).await;
    let dir = tempfile::tempdir().unwrap();
    let config = check_config(dir.path(), "mfagate.toml", &idp.url);
    let config = config.to_str().unwrap();
    for aud in ["HTTPS://Graph.Microsoft.com/", "https://GRAPH.microsoft.com"] {
        let graph = idp.graph_with_nonce().claim("aud", aud).mint();
        let out = mfagate(&["check-token", "--config", config, "--json", &graph], None).await;
        let v: Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
        assert_eq!((v["route"].as_str(), v["decision"].as_str()), (Some("graph"), Some("allow")), "{aud}: {v}");
        assert_eq!(out.code, 0, "{aud}");
    }
    // Another path is another audience: the first API route, which refuses it.
    let other = idp.graph_with_nonce().claim("aud", "https://graph.microsoft.com/beta").mint();
    let out = mfagate(&["check-token", "--config", config, "--json", "--no-verify", &other], None).await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["route"].as_str(), v["reason"].as_str()), (Some("partner-center"), Some("bad_audience")), "{v}");
}

#[tokio::test]
async fn check_token_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = write(dir.path(), "jwks.json", &jwks_document().to_string());
    let config = check_config(dir.path(), "mfagate.toml", jwks.to_str().unwrap());
    let config = config.to_str().unwrap();
    let idp = Idp::start(JwksMode::Serve).await;
    let token = idp.delegated().mint();
    // A key set read from a file works like a fetched one.
    let out = mfagate(&["check-token", "--config", config, &token], None).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    let out = mfagate(&["check-token", "--config", config, "--route", "nope", &token], None).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no route \"nope\" (routes: partner-center, pc-staged, graph)"), "{}", out.stderr);
    let empty = write(dir.path(), "empty.jwt", "\n");
    let out = mfagate(&["check-token", "--config", config], Some(&empty)).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no token given"), "{}", out.stderr);
    let bad = write(
        dir.path(),
        "bad.toml",
        "[[routes]]\nname = \"x\"\nupstream = \"https://x\"\naudiences = [\"a\"]\nmode = \"audit\"\n",
    );
    let out = mfagate(&["check-token", "--config", bad.to_str().unwrap(), &token], None).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("routes[0].mode"), "{}", out.stderr);
    let missing_keys = check_config(dir.path(), "missing-keys.toml", dir.path().join("gone.json").to_str().unwrap());
    let out = mfagate(&["check-token", "--config", missing_keys.to_str().unwrap(), &token], None).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--no-verify"), "{}", out.stderr);
    let out = mfagate(&["check-token", "--config", missing_keys.to_str().unwrap(), "--no-verify", &token], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Not a token at all is a verdict, not an error.
    let out = mfagate(&["check-token", "--config", config, "not-a-token"], None).await;
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("malformed_token"), "{}", out.stdout);
}

/// Reads the decision log until it holds `n` lines.
async fn wait_for_lines(path: &Path, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text;
        }
        assert!(Instant::now() < deadline, "the decision log has {} of {n} lines", text.lines().count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn replay_shows_what_a_candidate_configuration_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let audit = format!("[audit]\nsink = \"file\"\npath = \"{}\"\n", log.display());
    // Today: report-only, so everything is forwarded and recorded.
    let env = TestEnv::setup().route("mode = \"report-only\"").more_routes(&audit).start().await;
    let idp = &env.idp;
    let requests = [
        Some(idp.delegated().mint()),
        Some(idp.delegated().amr(&["pwd"]).mint()),
        Some(idp.delegated().amr(&["pwd"]).mint()),
        Some(idp.app_only().mint()),
        Some(idp.delegated().claim("appidacr", "2").mint()),
        None,
    ];
    for token in &requests {
        assert_eq!(env.get("/v1/customers", token.as_deref()).await.status(), 200);
    }
    wait_for_lines(&log, requests.len()).await;
    let log_path = log.to_str().unwrap();
    let candidate = |name: &str, route_extra: &str| {
        let text = env.config_toml.replace("mode = \"report-only\"", route_extra).replace(&audit, "");
        write(dir.path(), name, &text).to_str().unwrap().to_string()
    };

    // The same configuration changes nothing.
    let same = candidate("same.toml", "mode = \"report-only\"");
    let out = mfagate(&["replay", "--config", &same, log_path], None).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("6 decisions replayed"), "{}", out.stdout);
    assert!(out.stdout.contains("0 would change"), "{}", out.stdout);

    // Enforcing would deny what was only reported: exit 2, each change listed.
    let enforce = candidate("enforce.toml", "mode = \"enforce\"");
    let out = mfagate(&["replay", "--config", &enforce, log_path], None).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.matches("would_deny (mfa_required) -> deny (mfa_required)").count(), 2, "{}", out.stdout);
    assert!(out.stdout.contains("would_deny (app_only_not_allowed) -> deny (app_only_not_allowed)"), "{}", out.stdout);
    assert!(out.stdout.contains("would_deny (missing_token) -> deny (missing_token)"), "{}", out.stdout);
    assert!(out.stdout.contains("4 would change (4 newly denied, 0 newly forwarded, 0 other)"), "{}", out.stdout);

    // A stricter rule is seen too; JSON for machines.
    let strict =
        candidate("strict.toml", "mode = \"enforce\"\nallow_app_only = true\nrequire_certificate_client = true");
    let out = mfagate(&["replay", "--config", &strict, "--json", log_path], None).await;
    assert_eq!(out.code, 2);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["records"].as_u64(), v["changed"].as_u64()), (Some(6), Some(5)));
    let changes = v["changes"].as_array().unwrap();
    let first = &changes[0];
    assert_eq!((first["line"].as_u64(), first["route"].as_str()), (Some(1), Some("partner-center")));
    assert_eq!(first["before"], serde_json::json!({"decision": "allow", "reason": "none"}));
    assert_eq!(first["after"], serde_json::json!({"decision": "deny", "reason": "certificate_required"}));
    assert!(changes.iter().all(|c| c["line"] != 5), "the certificate client stays allowed");

    // Staged: nothing changes before the instant; --at shows the day after.
    let staged = candidate("staged.toml", &format!("mode = \"enforce\"\nenforce_after = \"{}\"", day(30)));
    let out = mfagate(&["replay", "--config", &staged, log_path], None).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let out = mfagate(&["replay", "--config", &staged, "--at", &day(31), log_path], None).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stdout.contains("4 newly denied"), "{}", out.stdout);

    // Loosening is reported as newly forwarded, and exits 0.
    let loose = candidate("loose.toml", "mode = \"enforce\"\nrequire_mfa = false\nallow_app_only = true");
    let out = mfagate(&["replay", "--config", &enforce, log_path], None).await;
    assert_eq!(out.code, 2);
    let enforced_log = dir.path().join("enforced.jsonl");
    std::fs::write(&enforced_log, enforced_copy(&std::fs::read_to_string(&log).unwrap())).unwrap();
    let out = mfagate(&["replay", "--config", &loose, enforced_log.to_str().unwrap()], None).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("deny (mfa_required) -> allow"), "{}", out.stdout);
    assert!(out.stdout.contains("3 newly forwarded"), "{}", out.stdout);

    // A route the candidate lacks, a broken line, a missing file.
    let other = write(
        dir.path(),
        "other.toml",
        "[[routes]]\nname = \"other\"\nupstream = \"https://x\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\n",
    );
    let mut broken = std::fs::read_to_string(&log).unwrap();
    broken.push_str("{\"truncated\n");
    let broken_log = write(dir.path(), "broken.jsonl", &broken);
    let out = mfagate(&["replay", "--config", other.to_str().unwrap(), broken_log.to_str().unwrap()], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("6 records of route \"partner-center\", which the configuration does not have"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("unreadable lines skipped: 7"), "{}", out.stdout);
    let out = mfagate(&["replay", "--config", &same, dir.path().join("none.jsonl").to_str().unwrap()], None).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("none.jsonl"), "{}", out.stderr);
}

/// The log as an enforcing gateway would have written it.
fn enforced_copy(log: &str) -> String {
    log.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if v["decision"] == "would_deny" {
                v["decision"] = "deny".into();
            }
            format!("{v}\n")
        })
        .collect()
}

/// A `cp1` client on a route with `auth_context_id` gets a claims
/// challenge, and `check-token` shows it (claims decoded); a request the
/// gateway refuses before any token check names the rule that refused it.
#[tokio::test]
async fn check_token_shows_the_step_up_and_the_refusing_rule() {
    let idp = Idp::start(JwksMode::Serve).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[identity]
jwks_uri = "{}"

[[routes]]
name = "partner-center"
path_prefix = "/v1"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]
auth_context_id = "c1"
"#,
        idp.url
    );
    let config = write(dir.path(), "stepup.toml", &text);
    let config = config.to_str().unwrap();
    let capable = idp.delegated().amr(&["pwd"]).claim("xms_cc", vec!["cp1"]).mint();
    let out = mfagate(&["check-token", "--config", config, &capable], None).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Decision: deny: mfa_required (HTTP 401)"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(r#"WWW-Authenticate: Bearer realm="", authorization_uri="https://login.microsoftonline.com/"#),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(r#"error="insufficient_claims", claims="eyJ"#), "{}", out.stdout);
    assert!(
        out.stdout.contains(r#"claims (decoded): {"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#),
        "{}",
        out.stdout
    );
    let out = mfagate(&["check-token", "--config", config, "--json", &capable], None).await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["step_up"]["claims"]["access_token"]["acrs"]["value"], "c1", "{v}");
    assert!(v["step_up"]["challenge"].as_str().unwrap().contains("insufficient_claims"));
    // Without cp1 no challenge is offered, and none is shown.
    let plain = idp.delegated().amr(&["pwd"]).mint();
    let out = mfagate(&["check-token", "--config", config, "--json", &plain], None).await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["decision"].as_str(), v["step_up"].is_null()), (Some("deny"), true), "{v}");

    let ok = idp.delegated().mint();
    let out = mfagate(&["check-token", "--config", config, "--path", "/v1/customers/%2e%2e/x", &ok], None).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Decision: deny: bad_request (HTTP 400, rule dot_segment)"), "{}", out.stdout);
    let out = mfagate(&["check-token", "--config", config, "--json", "--path", "/v1/a%2Fb", &ok], None).await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["reason"].as_str(), v["rule"].as_str()), (Some("bad_request"), Some("encoded_slash")), "{v}");
    assert!(!out.stdout.contains("a%2Fb"), "the request's own text is not echoed: {}", out.stdout);
}

/// `check-token --path` must judge a path under the route the gateway
/// sends it to. The gateway routes on the (normalised) path: a path no
/// route's `path_prefix` takes is answered 404 `no_route`, and a path under
/// another route's prefix is held to that route's policy. `check-token`
/// picked its route by the token's audience (or `--route`) whatever the
/// path, so it called requests compliant that the gateway refuses.
#[tokio::test]
async fn check_token_judges_a_path_under_the_route_the_gateway_picks() {
    let graph = r#"
[[routes]]
name = "graph"
path_prefix = "/v1.0"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://graph.microsoft.com"]
"#;
    let env = TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(graph).start().await;
    let config = env.config_path.to_str().unwrap();
    let pc = env.idp.delegated().mint();

    // No route takes /v2: the gateway answers 404, check-token must not allow.
    let rsp = env.client.get(env.url("/v2/customers")).bearer_auth(&pc).send().await.unwrap();
    support::assert_rejected(rsp, 404, "no_route").await;
    let out = mfagate(&["check-token", "--config", config, "--json", "--path", "/v2/customers", &pc], None).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["reason"].as_str(), v["status"].as_u64()), (Some("no_route"), Some(404)), "{v}");

    // /v1.0/me is Graph's: a Partner Center token is refused there by the
    // gateway, whatever route its audience would pick.
    let rsp = env.client.get(env.url("/v1.0//me")).bearer_auth(&pc).send().await.unwrap();
    support::assert_rejected(rsp, 401, "bad_audience").await;
    let out = mfagate(&["check-token", "--config", config, "--json", "--path", "/v1.0//me", &pc], None).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["route"].as_str(), v["reason"].as_str()), (Some("graph"), Some("bad_audience")), "{v}");

    // --route names a route the path never reaches: the gateway would not
    // apply that route's policy to it.
    let aobo = env.idp.aobo().mint();
    let out = mfagate(
        &["check-token", "--config", config, "--json", "--route", "graph", "--path", "/v1/customers", &aobo],
        None,
    )
    .await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["reason"].as_str(), Some("no_route"), "{v}");
    // Where the path does reach the route, nothing changes.
    let out = mfagate(&["check-token", "--config", config, "--path", "/v1/customers", &pc], None).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out =
        mfagate(&["check-token", "--config", config, "--route", "graph", "--path", "/v1.0/me", &aobo], None).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(env.upstream.hits(), 0, "a refused request reached the upstream");

    // Routes guarded by host (egress interception) are routed by the host
    // the client named: without a Host, the token's audience still picks
    // among the routes whose path_prefix takes the path; with one, the
    // route is the gateway's for that host and path.
    let egress = write(
        env.dir.path(),
        "egress-routes.toml",
        &format!(
            r#"
[identity]
jwks_uri = "{}"

[[routes]]
name = "partner-center"
host = "api.partnercenter.microsoft.com"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]

[[routes]]
name = "graph"
host = "graph.microsoft.com"
upstream = "https://graph.microsoft.com"
audiences = ["https://graph.microsoft.com"]
"#,
            env.idp.url
        ),
    );
    let egress = egress.to_str().unwrap();
    let out = mfagate(&["check-token", "--config", egress, "--json", "--path", "/v1.0/me", &aobo], None).await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    assert_eq!((v["route"].as_str(), v["decision"].as_str()), (Some("graph"), Some("allow")), "{v}");
    let host = ["--header", "Host: graph.microsoft.com"];
    let out = mfagate(
        &[&["check-token", "--config", egress, "--json", "--path", "/v1.0/me"], &host[..], &[&pc]].concat(),
        None,
    )
    .await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    assert_eq!((v["route"].as_str(), v["reason"].as_str()), (Some("graph"), Some("bad_audience")), "{v}");
    // Routes without a host are chosen by path alone, the first that takes
    // it, whatever the token's audience: a catch-all after Graph's prefix
    // does not take /v1.0/me from it.
    let catch_all = write(
        env.dir.path(),
        "catch-all.toml",
        &format!(
            r#"
[identity]
jwks_uri = "{}"

[[routes]]
name = "graph"
path_prefix = "/v1.0"
upstream = "https://graph.microsoft.com"
audiences = ["https://graph.microsoft.com"]

[[routes]]
name = "partner-center"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]
"#,
            env.idp.url
        ),
    );
    let catch_all = catch_all.to_str().unwrap();
    let out = mfagate(&["check-token", "--config", catch_all, "--json", "--path", "/v1.0/me", &pc], None).await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    assert_eq!((v["route"].as_str(), v["reason"].as_str()), (Some("graph"), Some("bad_audience")), "{v}");
    let out = mfagate(&["check-token", "--config", catch_all, "--json", "--path", "/v1/customers", &pc], None).await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    assert_eq!((v["route"].as_str(), v["decision"].as_str()), (Some("partner-center"), Some("allow")), "{v}");

    let host = ["--header", "Host: evil.example"];
    let out = mfagate(
        &[&["check-token", "--config", egress, "--json", "--path", "/v1.0/me"], &host[..], &[&pc]].concat(),
        None,
    )
    .await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    assert_eq!(v["reason"].as_str(), Some("no_route"), "{v}");
}
