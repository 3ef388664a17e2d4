//! The binary's side of the egress proxy: `ca init`, `check-config` on the
//! shipped example, and a start-up that refuses a CA which cannot vouch for
//! a guarded host.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mfagate");

fn mfagate(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("MFAGATE_CONFIG").env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("MFAGATE__") {
            cmd.env_remove(k);
        }
    }
    cmd.output().unwrap()
}

#[test]
fn ca_init_writes_a_private_key_and_says_how_to_trust_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("egress-ca");
    let out = mfagate(&["ca", "init", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "update-ca-certificates",
        "update-ca-trust",
        "security add-trusted-cert",
        "certutil -addstore -f Root",
        "Import-Certificate",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "HTTPS_PROXY",
        "ca_key = ",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
    assert!(!stdout.contains("PRIVATE KEY"), "the key is never printed");

    let (cert, key) = (out_dir.join("ca.pem"), out_dir.join("ca.key"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&out_dir), 0o700);
    assert!(std::fs::read_to_string(&key).unwrap().contains("BEGIN PRIVATE KEY"));
    let text = Command::new(crate::support::setup::program("openssl"))
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign"), "{text}");
    // The key belongs to the certificate.
    let pubkey =
        |args: &[&str]| Command::new(crate::support::setup::program("openssl")).args(args).output().unwrap().stdout;
    assert_eq!(
        pubkey(&["x509", "-noout", "-pubkey", "-in", cert.to_str().unwrap()]),
        pubkey(&["pkey", "-pubout", "-in", key.to_str().unwrap()])
    );

    // Never overwritten.
    let before = std::fs::read(&key).unwrap();
    let again = mfagate(&["ca", "init", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not overwritten"));
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn ca_init_can_constrain_the_ca_to_named_domains() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("ca");
    let out = mfagate(&["ca", "init", "--out", out_dir.to_str().unwrap(), "--permit", "partnercenter.microsoft.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = Command::new(crate::support::setup::program("openssl"))
        .args(["x509", "-noout", "-text", "-in"])
        .arg(out_dir.join("ca.pem"))
        .output();
    let text = String::from_utf8(text.unwrap().stdout).unwrap();
    assert!(text.contains("Permitted:") && text.contains("DNS:partnercenter.microsoft.com"), "{text}");
    let bad = mfagate(&["ca", "init", "--out", dir.path().join("x").to_str().unwrap(), "--permit", "10.0.0.1"]);
    assert_eq!(bad.status.code(), Some(2));

    // A gateway whose routes guard a host the CA may not vouch for does not start.
    let config = dir.path().join("egress.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[identity]
jwks_uri = "http://127.0.0.1:9/keys"
state_dir = ""
[[routes]]
name = "graph"
host = "graph.microsoft.com"
upstream = "https://graph.microsoft.com"
audiences = ["https://graph.microsoft.com"]
[egress]
listen = "127.0.0.1:0"
ca_cert = "{dir}/ca.pem"
ca_key = "{dir}/ca.key"
"#,
            dir = out_dir.display()
        ),
    )
    .unwrap();
    let run = mfagate(&["run", "--config", config.to_str().unwrap()]);
    // The configuration is at fault: EX_CONFIG, which service managers do not restart on.
    assert_eq!(run.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("egress.ca_cert") && stderr.contains("graph.microsoft.com"), "{stderr}");
}

#[test]
fn check_config_accepts_the_egress_example_and_hides_the_password() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/egress.toml");
    // check-config loads the CA as `run` does: give it one where the example
    // expects its mount.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("egress-ca");
    assert!(mfagate(&["ca", "init", "--out", ca.to_str().unwrap()]).status.success());
    let missing = Command::new(BIN).args(["check-config", "--config", example]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1), "the example's CA path does not exist here");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("egress.ca_cert"));
    let out = Command::new(BIN)
        .args(["check-config", "--config", example])
        .env("MFAGATE__EGRESS__CA_CERT", ca.join("ca.pem"))
        .env("MFAGATE__EGRESS__CA_KEY", ca.join("ca.key"))
        .env("MFAGATE__EGRESS__PROXY_AUTH__USERNAME", "svc-automation")
        .env("MFAGATE__EGRESS__PROXY_AUTH__PASSWORD", "from-the-environment")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("[egress]") && stdout.contains(r#"listen = "0.0.0.0:3128""#), "{stdout}");
    assert!(stdout.contains(r#"username = "svc-automation""#), "{stdout}");
    assert!(!stdout.contains("from-the-environment"), "{stdout}");
}
