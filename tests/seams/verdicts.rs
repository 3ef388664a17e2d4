//! One decision, three callers: the gateway, `mfagate replay` and
//! `mfagate check-token` call the same `decide`, so on one table of
//! requests (token, route, path, headers) they give the same verdict. The
//! gateway's verdicts are read from its decision log; replay re-decides that
//! log under the same configuration (nothing may change); check-token is
//! asked about each request as a process, as an operator would.

use std::time::{Duration, Instant};
use tokio::process::Command;

use crate::get_with;
use crate::support::idp::{AZURE_CLI, GLOBAL_ADMIN, OTHER_TID, TID, keys, now};
use crate::support::{TestEnv, toml_str};

const ARM_AUDIENCE: &str = "https://management.azure.com";
const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
const STRANGER: &str = "5a5a5a5a-0000-4000-8000-000000000000";
const EXEMPT_APP: &str = "e0e0e0e0-1111-4222-8333-444455556666";

fn routes() -> String {
    format!(
        r#"
[[routes]]
name = "staged"
path_prefix = "/staged"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://api.partnercenter.microsoft.com"]
mode = "report-only"
rule_modes = {{ legacy_auth = "enforce", mfa = "enforce" }}

[[routes]]
name = "graph"
path_prefix = "/v1.0"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["{GRAPH_AUDIENCE}"]
verify_signature = false
partner_tenants = ["{TID}"]
customers = [{{ tenant_id = "{OTHER_TID}", ends = "2099-01-01T00:00:00Z" }}]

[[routes]]
name = "arm"
path_prefix = "/subscriptions"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["{ARM_AUDIENCE}"]
partner_tenants = ["{TID}"]
customers = [{{ tenant_id = "{OTHER_TID}", ends = "2099-01-01T00:00:00Z" }}]
auth_context_id = "c1"

[[exemptions]]
appid = "{EXEMPT_APP}"
reason = "migration of the billing job"
expires = "2099-01-01T00:00:00Z"
"#
    )
}

/// One request of the table: the path, its bearer token (absent: none) and
/// more headers.
struct Case {
    route: &'static str,
    path: String,
    token: Option<String>,
    headers: Vec<(&'static str, String)>,
}

fn case(route: &'static str, path: &str, token: &str) -> Case {
    Case { route, path: path.to_string(), token: Some(token.to_string()), headers: Vec::new() }
}

impl Case {
    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

#[tokio::test]
async fn the_gateway_replay_and_check_token_agree() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let customers = format!(
        "customers = [{{ tenant_id = \"{OTHER_TID}\", ends = \"2099-01-01T00:00:00Z\" }}]\ndenied_apps = [\"@scripting-clients\"]\npath_prefix = \"/v1\""
    );
    let env = TestEnv::setup()
        .route(&customers)
        .more_routes(&routes())
        .more_routes(&format!("[audit]\nsink = \"file\"\npath = {}", toml_str(&log)))
        .start()
        .await;
    let idp = &env.idp;
    let good = idp.delegated().mint();
    let no_mfa = idp.delegated().amr(&["pwd"]).mint();
    let pc_tokens = [
        good.clone(),
        no_mfa.clone(),
        idp.delegated().amr(&["pwd"]).claim("xms_cc", vec!["cp1"]).mint(),
        idp.delegated().claim("appidacr", "0").mint(),
        idp.delegated().claim("appid", AZURE_CLI).claim("appidacr", "0").mint(),
        idp.app_only().mint(),
        idp.v2().mint(),
        idp.delegated().claim("exp", now() - 600).mint(),
        idp.delegated().claim("nbf", now() + 3600).mint(),
        idp.delegated().signed_by(&keys().rogue).mint(),
        idp.delegated().claim("aud", GRAPH_AUDIENCE).mint(),
        idp.delegated().claim("iss", format!("https://sts.windows.net/{OTHER_TID}/")).mint(),
        idp.delegated().amr(&["pwd"]).claim("appid", EXEMPT_APP).mint(),
        idp.delegated().amr(&["wiaormfa"]).mint(),
    ];
    let mut cases = Vec::new();
    for token in &pc_tokens {
        cases.push(case("partner-center", "/v1/customers", token));
        cases.push(case("staged", "/staged/customers", token));
    }
    for path in [format!("/v1/customers/{OTHER_TID}/subscriptions"), format!("/v1/customers/{STRANGER}/orders")] {
        cases.push(case("partner-center", &path, &good));
        cases.push(case("partner-center", &path, &no_mfa));
    }
    for (route, path) in [("partner-center", "/v1/customers"), ("staged", "/staged/customers")] {
        cases.push(case(route, path, &good).header("authorization", "Basic dXNlcjpwYXNz".into()));
        cases.push(case(route, path, &no_mfa).header("authorization", format!("Bearer {no_mfa}")));
        cases.push(case(route, path, &good).header("cookie", format!("s={good}")));
        cases.push(case(route, &format!("{path}?access_token=x"), &good));
    }
    let graph = [
        idp.aobo().mint(),
        idp.graph_with_nonce().mint(),
        idp.aobo().amr(&["pwd"]).mint(),
        idp.aobo().tenant(STRANGER).mint(),
        idp.aobo().claim("wids", vec![GLOBAL_ADMIN]).mint(),
        idp.aobo().claim("idp", format!("https://sts.windows.net/{STRANGER}/")).mint(),
        idp.aobo().claim("exp", now() - 600).mint(),
    ];
    for token in &graph {
        cases.push(case("graph", "/v1.0/users", token));
    }
    let arm = |b: crate::support::idp::TokenBuilder| b.claim("aud", ARM_AUDIENCE);
    let main = arm(idp.aobo()).mint();
    let aux = |b: crate::support::idp::TokenBuilder| format!("Bearer {}", arm(b).mint());
    let path = "/subscriptions/s1/resourceGroups";
    cases.push(case("arm", path, &main));
    cases.push(case("arm", path, &arm(idp.aobo()).amr(&["pwd"]).claim("xms_cc", vec!["cp1"]).mint()));
    for value in [
        aux(idp.aobo()),
        aux(idp.aobo().tenant(STRANGER)),
        aux(idp.aobo().amr(&["pwd"])),
        aux(idp.aobo().signed_by(&keys().rogue)),
        format!("{}, {}", aux(idp.aobo()), aux(idp.aobo().claim("wids", vec![GLOBAL_ADMIN]))),
        "Basic dXNlcjpwYXNz".into(),
    ] {
        cases.push(case("arm", path, &main).header("x-ms-authorization-auxiliary", value));
    }
    assert!(cases.len() >= 50, "{} cases", cases.len());

    // The gateway.
    let mut statuses = Vec::new();
    for c in &cases {
        let mut headers: Vec<(&str, String)> =
            c.token.iter().map(|t| ("authorization", format!("Bearer {t}"))).collect();
        headers.extend(c.headers.iter().cloned());
        statuses.push(get_with(&env, true, &c.path, &headers).await.status().as_u16());
    }
    let lines = read_log(&log, cases.len()).await;
    for ((c, line), status) in cases.iter().zip(&lines).zip(&statuses) {
        assert_eq!(line["route"], c.route, "{line}");
        assert_eq!(line["status"].as_u64(), Some(u64::from(*status)), "{line}");
    }
    let verdicts: Vec<(String, String)> = lines
        .iter()
        .map(|l| (l["decision"].as_str().unwrap().to_string(), l["reason"].as_str().unwrap().to_string()))
        .collect();
    let kinds: std::collections::HashSet<&(String, String)> = verdicts.iter().collect();
    assert!(kinds.len() >= 20, "the table covers many verdicts: {kinds:?}");

    // replay: the same log under the same configuration changes nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_mfagate"))
        .args(["replay", "--json", "--config", env.config_path.to_str().unwrap(), log.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("replay: {e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert_eq!(report["records"].as_u64(), Some(cases.len() as u64), "{report}");
    assert_eq!(report["changed"], 0, "replay decided otherwise: {report}");
    let request_errors = verdicts.iter().filter(|(_, r)| r == "bad_request").count() as u64;
    assert_eq!(report["not_replayed"].as_u64(), Some(request_errors), "{report}");

    // check-token: each request as given.
    for (c, (decision, reason)) in cases.iter().zip(&verdicts) {
        let Some(token) = &c.token else { continue };
        let mut args = vec!["check-token", "--json", "--config", env.config_path.to_str().unwrap()];
        args.extend(["--route", c.route, "--path", &c.path]);
        let headers: Vec<String> = c.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        for h in &headers {
            args.extend(["--header", h]);
        }
        args.push(token);
        // Asynchronously: the identity provider it fetches keys from runs on this runtime.
        let out = Command::new(env!("CARGO_BIN_EXE_mfagate")).args(&args).output().await.unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("check-token {}: {e}: {}", c.path, String::from_utf8_lossy(&out.stderr)));
        let got = (answer["decision"].as_str().unwrap_or("?"), answer["reason"].as_str().unwrap_or("none"));
        assert_eq!(got, (decision.as_str(), reason.as_str()), "check-token on {} {:?}", c.path, c.headers);
        let forwarded_as_compliant = matches!(decision.as_str(), "allow" | "exempt");
        assert_eq!(out.status.code(), Some(if forwarded_as_compliant { 0 } else { 2 }), "{}", c.path);
    }
}

async fn read_log(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        }
        assert!(Instant::now() < deadline, "the decision log has {} of {n} lines", text.lines().count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
