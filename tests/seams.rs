//! Requests that must be refused however they are spelled, sent as real
//! clients send them (TLS on 127.0.0.1, real signed tokens, a recording
//! upstream): every deny asserts its status, its body and that the upstream
//! was never reached. Each module names the rule it holds the gateway to;
//! many are requests a lenient upstream (IIS, ASP.NET, Entra) reads in a way
//! a strict parser would not, and each must be judged as the upstream reads
//! it. The egress listener's side of the same rules is in tests/egress/.

mod support;

#[path = "seams/auxiliary.rs"]
mod auxiliary;
#[path = "seams/check_config.rs"]
mod check_config;
#[path = "seams/credentials.rs"]
mod credentials;
#[path = "seams/customers.rs"]
mod customers;
#[path = "seams/forwarding.rs"]
mod forwarding;
#[path = "seams/limits.rs"]
mod limits;
#[path = "seams/login.rs"]
mod login;
#[path = "seams/paths.rs"]
mod paths;
#[path = "seams/verdicts.rs"]
mod verdicts;

use support::{TestEnv, assert_rejected};

/// Sends `GET path` with each `(name, value)` header appended as given
/// (duplicates kept), over HTTP/2 or HTTP/1.1.
pub async fn get_with(env: &TestEnv, http1: bool, path: &str, headers: &[(&str, String)]) -> reqwest::Response {
    let client = support::client(&env.pki.ca_pem, http1);
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        map.append(name, reqwest::header::HeaderValue::from_str(value).unwrap());
    }
    client.get(env.url(path)).headers(map).send().await.expect("gateway answers")
}

/// `get_with` over both protocols, each answer checked as a rejection.
pub async fn refused_both_ways(env: &TestEnv, path: &str, headers: &[(&str, String)], status: u16, reason: &str) {
    for http1 in [false, true] {
        let rsp = get_with(env, http1, path, headers).await;
        let version = rsp.version();
        assert_eq!(rsp.status().as_u16(), status, "{version:?} {headers:?}");
        assert_rejected(rsp, status, reason).await;
    }
}
