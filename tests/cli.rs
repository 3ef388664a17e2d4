//! The binary as a user runs it: `check-config` exit codes and messages, and
//! `run` without network (self-signed certificate, not ready, answers 503,
//! drains on SIGTERM).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "support/setup.rs"]
mod setup;

const BIN: &str = env!("CARGO_BIN_EXE_mfagate");

fn mfagate(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("MFAGATE_CONFIG").env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("MFAGATE__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const VALID: &str = r#"
[[routes]]
name = "pc"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]
"#;

#[test]
fn check_config_accepts_the_default_and_prints_it() {
    let out = mfagate(&["check-config", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/mfagate.toml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(r#"listen = "127.0.0.1:8443""#), "{stdout}");
    assert!(stdout.contains(r#"name = "partner-center""#));
    assert!(String::from_utf8_lossy(&out.stderr).contains("configuration OK"));
}

#[test]
fn check_config_names_the_bad_key_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(&dir, "bad.toml", &format!("{VALID}mode = \"audit\"\n"));
    let out = mfagate(&["check-config", "--config", &bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("routes[0].mode"), "{stderr}");
    assert!(out.stdout.is_empty());

    let unknown = write(&dir, "unknown.toml", &format!("[server]\nlisen = \"127.0.0.1:1\"\n{VALID}"));
    let out = mfagate(&["check-config", "--config", &unknown]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.lisen"));

    let missing = dir.path().join("missing.toml");
    let out = mfagate(&["check-config", "--config", missing.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn check_config_prints_route_hosts_normalised_and_names_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let with_host = |host: &str| format!("{VALID}host = {host:?}\n");
    for (host, printed) in [
        ("api.partnercenter.microsoft.com.", "api.partnercenter.microsoft.com"),
        ("API.PartnerCenter.Microsoft.com", "api.partnercenter.microsoft.com"),
        ("*.PartnerCenter.microsoft.com.", "*.partnercenter.microsoft.com"),
    ] {
        let path = write(&dir, "host.toml", &with_host(host));
        let out = mfagate(&["check-config", "--config", &path]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{host}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains(&format!("host = {printed:?}\n")), "{host}: {stdout}");
    }
    for host in ["api..example", "a_b c", "", "api.example:443", "https://api.example", "a.*.example", "127.1"] {
        let path = write(&dir, "host.toml", &with_host(host));
        let out = mfagate(&["check-config", "--config", &path]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{host:?} is refused: {stderr}");
        assert!(stderr.contains("routes[0].host"), "{host:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// The `warning:` lines of `check-config` on `text`, which must still pass.
fn check_config_warnings(dir: &tempfile::TempDir, text: &str) -> Vec<String> {
    let path = write(dir, "warned.toml", text);
    let out = mfagate(&["check-config", "--config", &path]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "a warning is not an error: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("[identity]"), "the effective settings are printed");
    stderr.lines().filter(|l| l.starts_with("warning:")).map(str::to_string).collect()
}

#[test]
fn check_config_warns_about_key_sources_that_serve_every_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let sources = r#"
[[identity.sources]]
name = "entra"
metadata_uri = "https://login.microsoftonline.com/common/.well-known/openid-configuration"
[[identity.sources]]
name = "lab"
jwks_uri = "https://keys.example.net/keys"
[[identity.sources]]
name = "gov"
jwks_uri = "https://login.microsoftonline.us/common/discovery/keys"
[[identity.sources]]
name = "lab-discovery"
metadata_uri = "https://idp.example.net/.well-known/openid-configuration"
[[identity.sources]]
name = "pinned"
jwks_uri = "https://keys.example.net/other"
issuers = ["https://sts.windows.net/{tenantid}/"]
[[identity.sources]]
name = "offline"
jwks_uri = "file:/etc/mfagate/keys.json"
"#;
    let warnings = check_config_warnings(&dir, &format!("{sources}{VALID}"));
    let named: Vec<&str> = warnings.iter().filter_map(|w| w.split(':').nth(1)).map(str::trim).collect();
    assert_eq!(
        named,
        [
            r#"identity.sources[1] ("lab")"#,
            r#"identity.sources[3] ("lab-discovery")"#,
            r#"identity.sources[5] ("offline")"#
        ],
        "{warnings:#?}"
    );
    assert!(warnings.iter().all(|w| w.contains("issuers")), "each says what to set: {warnings:#?}");
    // The one-source shorthand names its own key.
    let shorthand =
        check_config_warnings(&dir, &format!("[identity]\njwks_uri = \"https://keys.example.net/keys\"\n{VALID}"));
    assert_eq!(shorthand.len(), 1, "{shorthand:#?}");
    assert!(shorthand[0].starts_with(r#"warning: identity.jwks_uri ("default"): "#), "{shorthand:#?}");
    assert_eq!(check_config_warnings(&dir, VALID), Vec::<String>::new(), "Entra's own key set: no warning");
}

#[test]
fn environment_names_the_file_and_overrides_keys() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "good.toml", VALID);
    let out = mfagate(&["check-config"])
        .env("MFAGATE_CONFIG", &good)
        .env("MFAGATE__ROUTES__0__MODE", "report-only")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#"mode = "report-only""#));
    let out = mfagate(&["check-config"])
        .env("MFAGATE_CONFIG", &good)
        .env("MFAGATE__SERVER__LISTEN", "everywhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));
}

#[test]
fn run_with_an_invalid_config_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(&dir, "bad.toml", "[[routes]]\nname = \"x\"\n");
    let out = mfagate(&["run", "--config", &bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("routes[0]"));
}

/// A configuration `run` cannot parse is logged as one event per line, in
/// the format the configuration asks for when that much can be read.
#[test]
fn a_toml_syntax_error_is_one_log_event_per_line_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    // A string left open: the TOML parser's own message spans several lines.
    let text = write(&dir, "text.toml", "[server]\nlisten = \"127.0.0.1:0\n");
    let json = write(&dir, "json.toml", "[log]\nformat = \"json\"\n\n[server]\nlisten = \"127.0.0.1:0\n");
    let stderr = |out: std::process::Output| {
        assert_eq!(out.status.code(), Some(78));
        String::from_utf8(out.stderr).unwrap()
    };

    let log = stderr(mfagate(&["run", "--config", &text]).output().unwrap());
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "one event, one line: {log}");
    let mut words = lines[0].split_whitespace();
    assert!(words.next().is_some_and(|stamp| stamp.ends_with('Z')), "a timestamp first: {log}");
    assert_eq!(words.next(), Some("ERROR"), "{log}");
    assert!(lines[0].contains("line 2") && lines[0].contains("text.toml"), "where, and in which file: {log}");

    for (config, env) in [(&text, Some("json")), (&json, None)] {
        let mut cmd = mfagate(&["run", "--config", config]);
        if let Some(format) = env {
            cmd.env("MFAGATE__LOG__FORMAT", format);
        }
        let log = stderr(cmd.output().unwrap());
        let events: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON event: {l:?} in {log}")))
            .collect();
        assert_eq!(events.len(), 1, "{log}");
        assert_eq!(events[0]["level"], "ERROR", "{log}");
        assert!(events[0]["error"].as_str().unwrap().contains("line"), "{log}");
    }
}

/// Unicode and the tools that read logs know more line breaks than `\n` and
/// `\r`: a vertical tab, a form feed, the file, group and record
/// separators, NEL (U+0085) and the line and paragraph separators (U+2028,
/// U+2029) split a line for Python's `splitlines` and for editors. A
/// configuration path holding them, or an escape sequence that drives the
/// terminal reading the log, is written escaped, in text and in JSON.
#[test]
fn a_log_event_holds_no_other_line_break_or_escape_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no\u{b}such\u{c}file\u{1c}\u{1d}\u{1e}\u{85}\u{2028}\u{2029}\u{1b}[2J.toml");
    let path = path.to_str().unwrap();
    for format in ["text", "json"] {
        let out = mfagate(&["run", "--config", path]).env("MFAGATE__LOG__FORMAT", format).output().unwrap();
        assert_eq!(out.status.code(), Some(78), "{format}");
        let log = String::from_utf8(out.stderr).unwrap();
        assert_eq!(log.matches('\n').count(), 1, "{format}: {log:?}");
        let breaks = ['\u{b}', '\u{c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}', '\u{2029}', '\u{1b}', '\r'];
        assert!(!log.contains(breaks), "{format}: {log:?}");
        assert!(log.contains("no"), "{format}: {log:?}");
        if format == "json" {
            let event: serde_json::Value = serde_json::from_str(&log).unwrap();
            assert_eq!(event["config"], path, "the escapes are JSON's: the value reads back as it was");
        }
    }
}

/// A listener key that cannot be read is named as the key, in the message
/// and in the event's `key`: it was reported as `server.tls_cert`, sending
/// whoever reads the journal to a certificate that is fine.
#[test]
fn a_listener_key_that_cannot_be_read_is_named_as_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    let cert = write(&dir, "server.pem", &cert.pem());
    let missing = dir.path().join("server.key").display().to_string();
    let config = write(
        &dir,
        "mfagate.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ntls_cert = {cert:?}\ntls_key = {missing:?}\n\n\
             [log]\nformat = \"json\"\n{VALID}"
        ),
    );
    let out = mfagate(&["run", "--config", &config]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let log = String::from_utf8(out.stderr).unwrap();
    let event: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(event["key"], "server.tls_key", "{log}");
    assert!(event["error"].as_str().unwrap().starts_with("server.tls_key: "), "{log}");

    // The interception CA's key likewise: it was reported as egress.ca_cert.
    let ca = dir.path().join("egress-ca");
    assert!(mfagate(&["ca", "init", "--out", ca.to_str().unwrap()]).status().unwrap().success());
    let ca_cert = ca.join("ca.pem").display().to_string();
    let ca_key = ca.join("missing.key").display().to_string();
    let config = write(
        &dir,
        "egress.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n[log]\nformat = \"json\"\n\n\
             [egress]\nlisten = \"127.0.0.1:0\"\nca_cert = {ca_cert:?}\nca_key = {ca_key:?}\n{VALID}"
        ),
    );
    let out = mfagate(&["run", "--config", &config]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let log = String::from_utf8(out.stderr).unwrap();
    let event: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(event["key"], "egress.ca_key", "{log}");
}

/// A route's upstream CA that holds no certificate stops the start naming
/// the route's key, as the systemd units promise the journal: the event's
/// `key` was empty.
#[test]
fn a_bad_upstream_ca_is_named_by_its_route_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(&dir, "bad.pem", "not a certificate\n");
    let config = write(
        &dir,
        "mfagate.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n[log]\nformat = \"json\"\n{VALID}\
             upstream_ca = {bad:?}\n"
        ),
    );
    let out = mfagate(&["run", "--config", &config]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let log = String::from_utf8(out.stderr).unwrap();
    let event: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(event["key"], "routes[0].upstream_ca", "{log}");
}

struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Running {
    fn wait_for(&self, message: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no log line {message:?}"));
            if line["message"] == message {
                return line;
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start(config: &str) -> Running {
    let mut child = mfagate(&["run", "--config", config]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Every line must be JSON: a panic or stray print would fail here.
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
            assert_ne!(v["level"], "ERROR", "{line}");
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    Running { child, lines: rx }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new(setup::program("curl"))
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn runs_without_network_not_ready_self_signed_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let config = write(
        &dir,
        "offline.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[identity]\njwks_uri = \"https://{dead}/common/discovery/keys\"\nstate_dir = {state:?}\n[log]\nformat = \"json\"\n{VALID}",
            state = dir.path().join("state").display().to_string(),
        ),
    );
    let running = start(&config);
    // The key source is not Entra's and names no issuer: said once, at start.
    let warning = running.wait_for("configuration warning");
    assert_eq!(warning["level"], "WARN");
    assert!(warning["warning"].as_str().unwrap().starts_with(r#"identity.jwks_uri ("default"): "#), "{warning}");
    let cert = running.wait_for("no certificate configured: generated a self-signed one for localhost and 127.0.0.1");
    let fingerprint = cert["sha256"].as_str().unwrap().to_string();
    running.wait_for("cannot fetch signing keys");
    let started = running.wait_for("mfagate started");
    let listen = started["listen"].as_str().unwrap().to_string();
    let admin = started["admin"].as_str().unwrap().to_string();

    let ready = curl(&["-w", " %{http_code}", &format!("http://{admin}/readyz")]);
    assert!(ready.ends_with(" 503"), "{ready}");
    assert!(ready.contains(r#""keys":"unavailable""#), "{ready}");
    assert!(curl(&["-w", "%{http_code}", "-o", "/dev/null", &format!("http://{admin}/healthz")]).ends_with("200"));

    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJleHAiOjF9.c2ln";
    let body =
        curl(&["-k", "-H", &format!("Authorization: Bearer {token}"), &format!("https://{listen}/v1/customers")]);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "keys_unavailable");

    // The served certificate is the one whose fingerprint was logged.
    setup::program("openssl");
    let served = Command::new("sh")
        .arg("-c")
        .arg(format!("openssl s_client -connect {listen} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"))
        .output()
        .unwrap();
    let served = String::from_utf8(served.stdout).unwrap();
    assert!(served.trim().ends_with(&fingerprint), "served {served}, logged {fingerprint}");
    // Made at start for about 90 days, and it says what it is.
    let fields = Command::new("sh")
        .arg("-c")
        .arg(format!("openssl s_client -connect {listen} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -subject -startdate -enddate -checkend {}", 89 * 86_400))
        .output()
        .unwrap();
    let fields = String::from_utf8(fields.stdout).unwrap();
    assert!(fields.contains("mfagate") && fields.contains("self-signed"), "{fields}");
    assert!(fields.contains("Certificate will not expire"), "valid for 89 days more: {fields}");
    let date = |key: &str| {
        let line = fields.lines().find_map(|l| l.strip_prefix(key)).unwrap();
        let out = Command::new("date").args(["-u", "+%s", "-d", line]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().parse::<i64>().unwrap()
    };
    let (from, until) = (date("notBefore="), date("notAfter="));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(from <= now && now - from < 3_600, "made at start: {fields}");
    assert!((until - from - 90 * 86_400).abs() <= 3_600, "about 90 days: {fields}");

    let pid = running.child.id().to_string();
    assert!(Command::new(setup::program("kill")).args(["-TERM", &pid]).status().unwrap().success());
    running.wait_for("mfagate stopped");
    let mut running = running;
    let status = running.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
