//! `check-config` runs every check `run` runs before it serves: a
//! configuration it accepts is one `run` starts on, and one `run` refuses is
//! refused by `check-config` too, naming the same key.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mfagate");

fn mfagate(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("MFAGATE_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("MFAGATE__") {
            cmd.env_remove(k);
        }
    }
    cmd.output().unwrap()
}

const ROUTE: &str = r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[identity]
jwks_uri = "http://127.0.0.1:9/keys"
state_dir = ""
[[routes]]
name = "pc"
host = "api.partnercenter.microsoft.com"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]
"#;

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("mfagate.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Both commands refuse `text`, naming `key`.
fn both_refuse(dir: &Path, text: &str, key: &str) {
    let config = write(dir, text);
    let check = mfagate(&["check-config", "--config", &config]);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "check-config accepted it: {stderr}");
    assert!(stderr.contains(key), "check-config: {stderr}");
    let run = mfagate(&["run", "--config", &config]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_ne!(run.status.code(), Some(0), "run started: {stderr}");
    assert!(stderr.contains(key), "run: {stderr}");
}

#[test]
fn what_run_refuses_check_config_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let narrow = dir.path().join("narrow-ca");
    assert!(mfagate(&["ca", "init", "--out", ca.to_str().unwrap()]).status.success());
    let permit = ["ca", "init", "--out", narrow.to_str().unwrap(), "--permit", "graph.microsoft.com"];
    assert!(mfagate(&permit).status.success());
    let egress = |ca: &Path| {
        format!(
            "[egress]\nlisten = \"127.0.0.1:0\"\nca_cert = \"{}\"\nca_key = \"{}\"\n",
            ca.join("ca.pem").display(),
            ca.join("ca.key").display()
        )
    };
    // The interception CA cannot vouch for a guarded host.
    both_refuse(dir.path(), &format!("{ROUTE}{}", egress(&narrow)), "egress.ca_cert");
    // The CA files are missing.
    both_refuse(dir.path(), &format!("{ROUTE}{}", egress(&dir.path().join("nowhere"))), "egress.ca_cert");
    // The decision log's directory does not exist.
    let missing_dir = dir.path().join("no/such/dir/audit.jsonl");
    both_refuse(
        dir.path(),
        &format!("[audit]\nsink = \"file\"\npath = \"{}\"\n{ROUTE}", missing_dir.display()),
        "audit.path",
    );
    // The certificate files are missing.
    let cert = "[server]\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n";
    both_refuse(dir.path(), &ROUTE.replacen("[server]\n", cert, 1), "server.tls_cert");
    // A route's extra CA is missing.
    both_refuse(dir.path(), &format!("{ROUTE}upstream_ca = \"/nonexistent/ca.pem\"\n"), "upstream_ca");

    // What check-config accepts, check-config accepts without writing anything.
    let log = dir.path().join("audit.jsonl");
    let ok =
        write(dir.path(), &format!("[audit]\nsink = \"file\"\npath = \"{}\"\n{ROUTE}{}", log.display(), egress(&ca)));
    let out = mfagate(&["check-config", "--config", &ok]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!log.exists(), "check-config created the decision log");
}
