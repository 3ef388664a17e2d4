//! Red-team reproductions: each test is a request (or a sequence of
//! requests and reloads) that gets past a rule the gateway claims to
//! enforce, or breaks the gateway. Every test here FAILS on the code it was
//! written against; its comment names the rule and the correct answer.

mod support;

#[path = "egress/clients.rs"]
#[allow(dead_code)]
mod clients;

#[path = "redteam/egress.rs"]
mod egress;

use support::{PC_HOST, Setup, TestEnv};

/// Partner Center guarded by host (the main route), Graph by a second route.
pub fn guarded() -> Setup {
    TestEnv::setup().route(&format!("host = \"{PC_HOST}\"")).more_routes(
        r#"
[[routes]]
name = "graph"
host = "graph.microsoft.com"
upstream = "https://graph.microsoft.com"
upstream_ca = "@CA@"
audiences = ["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"]
"#,
    )
}

/// A client of the egress proxy trusting `ca_pem`.
pub fn proxied_client(env: &TestEnv, ca_pem: &str, http2: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let proxy = reqwest::Proxy::all(format!("http://{}", env.egress.unwrap())).unwrap();
    let mut b = reqwest::Client::builder().tls_certs_only([ca]).proxy(proxy);
    b = if http2 { b.http2_adaptive_window(true) } else { b.http1_only() };
    b.build().unwrap()
}

/// `env`'s configuration file rewritten by `change`, then reloaded.
pub async fn reload(env: &TestEnv, change: impl Fn(&str) -> String) -> Result<(), mfagate::reload::ReloadError> {
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(&env.config_path, change(&text)).unwrap();
    env.reloader.reload().await
}

#[path = "redteam/stray.rs"]
mod stray;

#[path = "redteam/forwarding.rs"]
mod forwarding;
