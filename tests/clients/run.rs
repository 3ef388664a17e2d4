//! Running the client scripts: Python from `target/py-venv` (or
//! `$MFAGATE_TEST_PYTHON`), Node with undici from `target/node-clients` (or
//! `$MFAGATE_NODE_CLIENTS`), each with this machine's proxy and CA bundle
//! variables removed and the ones the test chooses set. A client that is
//! not installed fails the test with the command that installs it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{TestEnv, py};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// What installs a missing client: the test setup, on first use.
pub const INSTALL: &str = "cargo test (tests/support/setup.rs installs the pinned clients)";

/// Variables of this machine's environment that would change what a client
/// does; every client gets them removed.
const INHERITED: [&str; 14] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "NODE_OPTIONS",
];

/// How a client reaches the services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `https://localhost:PORT`, the gateway's own certificate.
    Reverse,
    /// The real host names through `HTTPS_PROXY`, the interception CA.
    Egress,
}

pub const BOTH: [Via; 2] = [Via::Reverse, Via::Egress];

impl Via {
    /// The base URL of a service (`host`, e.g. `graph.microsoft.com`).
    pub fn base(self, env: &TestEnv, host: &str) -> String {
        match self {
            Self::Reverse => format!("https://localhost:{}", env.addr.port()),
            Self::Egress => format!("https://{host}"),
        }
    }
}

/// The environment of a client reaching the services `via`: the proxy, and
/// one CA bundle holding every CA it must trust (`extra_ca`: the authority's).
pub fn client_env(env: &TestEnv, via: Via, extra_ca: &str) -> Vec<(String, String)> {
    let gateway_ca = match via {
        Via::Reverse => env.pki.ca_pem.clone(),
        Via::Egress => std::fs::read_to_string(env.egress_ca.as_ref().expect("egress configured")).unwrap(),
    };
    let bundle = env.path(&format!("bundle-{via:?}.pem"));
    std::fs::write(&bundle, format!("{gateway_ca}\n{extra_ca}")).unwrap();
    let bundle = bundle.display().to_string();
    let mut vars = vec![
        ("REQUESTS_CA_BUNDLE".to_string(), bundle.clone()),
        ("SSL_CERT_FILE".to_string(), bundle.clone()),
        ("NODE_EXTRA_CA_CERTS".to_string(), bundle),
    ];
    if via == Via::Egress {
        let proxy = format!("http://{}", env.egress.expect("egress configured"));
        for var in ["HTTPS_PROXY", "https_proxy"] {
            vars.push((var.to_string(), proxy.clone()));
        }
    }
    vars
}

/// Runs `tests/py/clients/{script}` and returns the JSON it printed.
pub async fn python(script: &str, args: &[&str], vars: &[(String, String)]) -> Value {
    let interpreter = py::python();
    let path = Path::new(ROOT).join("tests/py/clients").join(script);
    let mut cmd = tokio::process::Command::new(&interpreter);
    cmd.arg(&path).args(args);
    output(script, cmd, vars, "Python").await
}

/// Runs `tests/node/{script}` with undici on `NODE_PATH` and returns the JSON it printed.
pub async fn node(script: &str, args: &[&str], vars: &[(String, String)]) -> Value {
    let modules = node_clients().join("node_modules");
    assert!(
        modules.join("undici/package.json").exists(),
        "undici is not installed in {}: run `{INSTALL}`",
        modules.display()
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(Path::new(ROOT).join("tests/node").join(script)).args(args).env("NODE_PATH", &modules);
    output(script, cmd, vars, "Node").await
}

fn node_clients() -> PathBuf {
    std::env::var_os("MFAGATE_NODE_CLIENTS").map_or_else(|| crate::support::setup::npm_tree("node"), PathBuf::from)
}

async fn output(script: &str, mut cmd: tokio::process::Command, vars: &[(String, String)], what: &str) -> Value {
    for var in INHERITED {
        cmd.env_remove(var);
    }
    cmd.envs(vars.iter().map(|(k, v)| (k, v))).kill_on_drop(true);
    let out = match cmd.output().await {
        Ok(out) => out,
        Err(e) => panic!("{what} cannot be started ({e}): run `{INSTALL}`"),
    };
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        !stderr.contains("ModuleNotFoundError") && !stderr.contains("Cannot find module"),
        "{script}: a client library is missing: run `{INSTALL}`\n{stderr}"
    );
    assert!(out.status.success(), "{script} failed:\n{stderr}\n{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}\n{stderr}"))
}
