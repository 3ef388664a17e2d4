//! Python `requests` through the proxy, configured the way automation is:
//! `HTTPS_PROXY` (with the proxy's credentials in it) and
//! `REQUESTS_CA_BUNDLE`. `requests` comes from `tests/py/requirements.txt`
//! (installed on first use); `MFAGATE_TEST_PYTHON` names another interpreter.
//! This machine exports `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE`, so every
//! run sets or removes them explicitly.

use std::path::Path;

use serde_json::Value;

use crate::PC_URL;
use crate::clients::PROXY_ENV;
use crate::guarded;
use crate::support::TestEnv;

const SCRIPT: &str = r#"
import json, os, sys
import requests
try:
    r = requests.get(sys.argv[1], headers={"Authorization": "Bearer " + os.environ["TOKEN"]}, timeout=30)
    print(json.dumps({"status": r.status_code, "body": r.text,
                      "headers": {k.lower(): v for k, v in r.headers.items()}}))
except requests.exceptions.SSLError as e:
    print(json.dumps({"error": "ssl", "detail": str(e)}))
except requests.exceptions.ProxyError as e:
    print(json.dumps({"error": "proxy", "detail": str(e)}))
"#;

/// `requests.get(url)` with `HTTPS_PROXY=proxy` and `REQUESTS_CA_BUNDLE=ca`.
async fn requests_get(proxy: &str, ca: &Path, url: &str, token: &str) -> Value {
    let mut cmd = tokio::process::Command::new(crate::support::setup::python());
    cmd.arg("-c").arg(SCRIPT).arg(url);
    for var in PROXY_ENV {
        cmd.env_remove(var);
    }
    cmd.env("TOKEN", token).env("HTTPS_PROXY", proxy).env("https_proxy", proxy).env("REQUESTS_CA_BUNDLE", ca);
    let out = cmd.output().await.expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'requests'"),
        "Python requests is missing from the interpreter MFAGATE_TEST_PYTHON names"
    );
    assert!(out.status.success(), "python failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn proxy_url(env: &TestEnv, credentials: &str) -> String {
    format!("http://{credentials}@{}", env.egress.unwrap())
}

#[tokio::test]
async fn python_requests_through_the_proxy() {
    let env =
        guarded().egress("[egress.proxy_auth]\nusername = \"svc-automation\"\npassword = \"s3cret\"").start().await;
    let ca = env.egress_ca.clone().unwrap();
    let proxy = proxy_url(&env, "svc-automation:s3cret");

    let ok = requests_get(&proxy, &ca, PC_URL, &env.idp.delegated().mint()).await;
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["headers"]["x-upstream"], "recording");
    assert_eq!(env.upstream.hits(), 1);

    let denied = requests_get(&proxy, &ca, PC_URL, &env.idp.delegated().amr(&["pwd"]).mint()).await;
    assert_eq!(denied["status"], 401, "{denied}");
    let body: Value = serde_json::from_str(denied["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["code"], "900421");
    assert_eq!(body["reason"], "mfa_required");
    assert!(denied["headers"]["www-authenticate"].as_str().unwrap().contains("MFA required"));
    assert_eq!(env.upstream.hits(), 1, "the upstream was not reached");

    // Without the interception CA the client refuses the connection.
    let wrong_ca = requests_get(&proxy, &env.pki.ca_path, PC_URL, &env.idp.delegated().mint()).await;
    assert_eq!(wrong_ca["error"], "ssl", "{wrong_ca}");
    // Wrong proxy credentials: the CONNECT is refused.
    let wrong = requests_get(&proxy_url(&env, "svc-automation:guess"), &ca, PC_URL, "x").await;
    assert_eq!(wrong["error"], "proxy", "{wrong}");
    assert!(wrong["detail"].as_str().unwrap().contains("407"), "{wrong}");
    assert_eq!(env.upstream.hits(), 1);
}
