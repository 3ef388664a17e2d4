//! The Python interpreter with the packages of `tests/py/requirements.txt`
//! (`setup` installs them),
//! and a way to run the scripts in `tests/py/` without blocking the
//! runtime.

use std::path::PathBuf;

/// `$MFAGATE_TEST_PYTHON`, else the virtual environment `target/py-venv`,
/// made on first use from `tests/py/requirements.txt`.
pub fn python() -> PathBuf {
    super::setup::python()
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py")).join(name)
}

/// Runs `tests/py/{name}` with `args` and returns its stdout parsed as JSON.
pub async fn run_json(name: &str, args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(python())
        .arg(script(name))
        .args(args)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{name} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{name} printed no JSON ({e}): {stdout}"))
}
