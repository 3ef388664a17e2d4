//! Second red-team pass: attacks on the fixes of the first one and their
//! neighbours. Every test here states the rule it attacks and the answer the
//! gateway owes; each fails while the finding stands.
#![allow(dead_code)]

mod support;

#[path = "egress/clients.rs"]
mod clients;

#[path = "redteam2/binding.rs"]
mod binding;

#[path = "redteam2/stray.rs"]
mod stray;

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
