//! `mfagate demo` as a newcomer runs it: the process starts, prints curl
//! commands with what each should answer, and every printed command, run
//! by a real shell and curl, answers exactly that. Ports are ephemeral here
//! (`--listen`/`--admin-listen`); the defaults are the product's.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[allow(dead_code)]
#[path = "support/setup.rs"]
mod setup;

const BIN: &str = env!("CARGO_BIN_EXE_mfagate");

struct Case {
    command: String,
    status: u16,
    reason: String,
}

#[tokio::test]
async fn printed_commands_get_the_printed_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .env_remove("MFAGATE_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let read_all = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("Ctrl-C stops the demo");
            printed.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_all).await.expect("the demo prints its commands");
    let text = printed.join("\n");

    let mut cases = Vec::new();
    for (i, line) in printed.iter().enumerate() {
        if !line.starts_with("curl ") {
            continue;
        }
        let expect = printed[i + 1].trim().strip_prefix("expect: ").unwrap_or_else(|| panic!("no expect line: {text}"));
        let mut words = expect.split_whitespace();
        let status = words.next().unwrap().parse().unwrap();
        let reason = words.next().unwrap().to_string();
        cases.push(Case { command: line.clone(), status, reason });
    }
    assert_eq!(cases.len(), 4, "{text}");
    assert_eq!(
        cases.iter().map(|c| (c.status, c.reason.as_str())).collect::<Vec<_>>(),
        [(200, "allow"), (401, "mfa_required"), (403, "public_client"), (403, "app_only_not_allowed")]
    );
    setup::program("curl");
    for case in &cases {
        assert!(case.command.contains("--cacert"), "the commands verify the gateway's certificate");
        let out = tokio::process::Command::new("sh").args(["-c", &case.command]).output().await.unwrap();
        assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
        let answer = String::from_utf8(out.stdout).unwrap();
        let status_line = answer.lines().next().unwrap();
        assert!(status_line.starts_with(&format!("HTTP/2 {}", case.status)), "{status_line}\n{answer}");
        let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        if case.status == 200 {
            assert_eq!(body["upstream"], "echo", "{body}");
            assert_eq!(body["path"], "/v1/customers");
            assert_eq!(body["authorization_forwarded"], true);
        } else {
            assert_eq!(body["reason"], case.reason.as_str(), "{body}");
            assert_eq!(body["source"], "mfagate");
            let challenge = answer.lines().find(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"));
            assert!(challenge.is_some(), "{answer}");
        }
        if case.reason == "mfa_required" {
            assert_eq!(body["code"], "900421");
        }
    }

    // The admin URL it printed answers, and counts what just happened.
    let admin = text.lines().find_map(|l| l.trim().strip_prefix("admin")).unwrap().split_whitespace().next().unwrap();
    let metrics = reqwest::get(admin).await.unwrap().text().await.unwrap();
    for (decision, reason) in
        [("allow", "none"), ("deny", "mfa_required"), ("deny", "public_client"), ("deny", "app_only_not_allowed")]
    {
        let series =
            format!(r#"mfagate_requests_total{{decision="{decision}",reason="{reason}",route="partner-center"}} 1"#);
        assert!(metrics.contains(&series), "{series}");
    }

    // SIGTERM stops it cleanly; the decision log it named holds the four decisions.
    let pid = child.id().unwrap().to_string();
    assert!(
        tokio::process::Command::new(setup::program("kill")).args(["-TERM", &pid]).status().await.unwrap().success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
    assert!(!log.contains(cases[0].command.split("Bearer ").nth(1).unwrap().trim_end_matches('\'')));
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["demo", "--listen", &addr, "--admin-listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .env_remove("MFAGATE_CONFIG")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
    assert!(out.stdout.is_empty(), "no commands are printed for a demo that is not running");
}
