//! What a client gets back: paths as Microsoft's SDKs build them
//! (`/v1.0//me`), and the request check that refused a request named in the
//! answer and the decision log. Every refusal asserts that the upstream was
//! never reached.

mod support;

#[path = "answers/attacks.rs"]
mod attacks;
#[path = "answers/formats.rs"]
mod formats;
#[path = "answers/paths.rs"]
mod paths;
#[path = "answers/rules.rs"]
mod rules;

use support::idp::TID;
use support::{Setup, TestEnv};

pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
pub const ARM_AUDIENCE: &str = "https://management.azure.com";

/// The human-readable text of a refusal, in any error format.
pub fn description(body: &serde_json::Value) -> &str {
    support::description_of(body)
}

/// The main route serves Partner Center on `/v1`, then the `routes`.
pub fn setup() -> Setup {
    TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&routes())
}

/// Graph on `/v1.0`, ARM on `/subscriptions`, Entra's sign-in on
/// `/organizations` (a login route).
pub fn routes() -> String {
    format!(
        r#"
[[routes]]
name = "graph"
path_prefix = "/v1.0"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["{GRAPH_AUDIENCE}"]
partner_tenants = ["{TID}"]

[[routes]]
name = "arm"
path_prefix = "/subscriptions"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["{ARM_AUDIENCE}"]
partner_tenants = ["{TID}"]

[[routes]]
name = "login"
kind = "login"
path_prefix = "/organizations"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
"#
    )
}
