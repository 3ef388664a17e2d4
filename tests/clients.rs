//! Microsoft's own client libraries and the HTTP clients automation uses,
//! driven through both listeners against a fake Entra authority
//! (`support::authority`) and the recording upstream: through the reverse
//! listener (`https://localhost:PORT`) and through the egress proxy
//! (`HTTPS_PROXY`, the interception CA, the services by their real names).
//!
//! The Python packages are pinned in `tests/py/clients-requirements.txt`
//! (installed into `target/py-venv`, or the interpreter named by
//! `MFAGATE_TEST_PYTHON`), undici in `tests/node/package-lock.json`
//! (installed into `target/node-clients`, or `$MFAGATE_NODE_CLIENTS`);
//! the test setup (`support::setup`) installs both on first use.
//!
//! Modules: `uploads` (denied requests with bodies: raw sockets, `requests`,
//! Node's fetch), `msal`, `azure` (azure-identity, azure-core,
//! azure-mgmt-resource), `graph` (msgraph-sdk).

mod support;

#[path = "clients/azure.rs"]
mod azure;
#[path = "clients/graph.rs"]
mod graph;
#[path = "clients/msal.rs"]
mod msal;
#[path = "clients/run.rs"]
mod run;
#[path = "clients/uploads.rs"]
mod uploads;

use run::Via;
use support::authority::{self, Authority, ENTRA_HOST};
use support::idp::TID;
use support::{ARM_HOST, GRAPH_HOST, PC_HOST, Setup, TestEnv};

/// The routes of both listeners: by path for the reverse listener
/// (`/v1` Partner Center, `/subscriptions` ARM, `/v1.0` Graph), by host for
/// the egress proxy. Partner Center asks for authentication context `c1`
/// in a step-up.
pub fn setup() -> Setup {
    let reverse = format!(
        r#"
[[routes]]
name = "arm"
path_prefix = "/subscriptions"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://management.azure.com", "https://management.core.windows.net"]
partner_tenants = ["{TID}"]

[[routes]]
name = "graph"
path_prefix = "/v1.0"
upstream = "@UPSTREAM@"
upstream_ca = "@CA@"
audiences = ["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"]
partner_tenants = ["{TID}"]
"#
    );
    let egress = format!(
        r#"
[[routes]]
name = "partner-center-egress"
host = "{PC_HOST}"
upstream = "https://{PC_HOST}"
upstream_ca = "@CA@"
audiences = ["https://api.partnercenter.microsoft.com", "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd"]
auth_context_id = "c1"

[[routes]]
name = "arm-egress"
host = "{ARM_HOST}"
upstream = "https://{ARM_HOST}"
upstream_ca = "@CA@"
audiences = ["https://management.azure.com", "https://management.core.windows.net"]
partner_tenants = ["{TID}"]

[[routes]]
name = "graph-egress"
host = "{GRAPH_HOST}"
upstream = "https://{GRAPH_HOST}"
upstream_ca = "@CA@"
audiences = ["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"]
partner_tenants = ["{TID}"]
"#
    );
    TestEnv::setup()
        .route("path_prefix = \"/v1\"\nauth_context_id = \"c1\"")
        .more_routes(&reverse)
        .more_routes(&egress)
        .egress("")
}

/// The gateway of `setup()` with the fake authority next to it; through the
/// egress proxy the authority is `login.microsoftonline.com`, tunnelled blind.
pub async fn start_with_authority() -> (TestEnv, Authority) {
    let authority = Authority::start().await;
    let env =
        setup().egress(&format!("allow_hosts = [\"{ENTRA_HOST}\"]")).resolve(ENTRA_HOST, authority.addr).start().await;
    (env, authority)
}

/// The environment of an SDK script run `via` a listener: where the
/// authority and each service are, the app's credentials, the proxy and CA
/// bundle.
pub fn sdk_env(env: &TestEnv, authority: &Authority, via: Via) -> Vec<(String, String)> {
    let mut vars = run::client_env(env, via, &authority.ca_pem);
    let authority_host = match via {
        Via::Reverse => authority.host(),
        Via::Egress => format!("https://{ENTRA_HOST}"),
    };
    let settings = [
        ("AUTHORITY_HOST", authority_host),
        ("TENANT", TID.to_string()),
        ("CLIENT_ID", authority::CLIENT_ID.to_string()),
        ("CLIENT_SECRET", authority::CLIENT_SECRET.to_string()),
        ("CERT_PATH", authority.client_cert_path.display().to_string()),
        ("CERT_THUMBPRINT", authority.client_cert_thumbprint.clone()),
        ("PUBLIC_CLIENT_ID", authority::PUBLIC_CLIENT_ID.to_string()),
        ("PC_BASE", via.base(env, PC_HOST)),
        ("ARM_BASE", via.base(env, ARM_HOST)),
        ("GRAPH_BASE", via.base(env, GRAPH_HOST)),
        ("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/clients").to_string()),
    ];
    vars.extend(settings.into_iter().map(|(k, v)| (k.to_string(), v)));
    vars
}
