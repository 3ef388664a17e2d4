//! Hot reload: a valid configuration (routes, claim checks, limits,
//! certificate) takes effect for new requests at once; an invalid one is
//! rejected naming the key and the running one stays; requests in flight
//! finish on the configuration they started with; SIGHUP and the file watch
//! trigger it; and under a load of thousands of requests no request fails.

mod support;

use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use support::idp::{OTHER_TID, TID};
use support::load::Load;
use support::process::Gateway;
use support::{TestEnv, assert_rejected, eventually, raw};

/// `env`'s configuration with `line` added to `[identity]`.
fn with_identity(env: &TestEnv, line: &str) -> String {
    env.config_toml.replacen("[identity]\n", &format!("[identity]\n{line}\n"), 1)
}

async fn reloads(env: &TestEnv, result: &str) -> f64 {
    env.metric(&format!(r#"mfagate_config_reload_total{{result="{result}"}}"#)).await
}

#[tokio::test]
async fn a_valid_reload_takes_effect_for_new_requests() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    let started = env.metric("mfagate_config_last_reload_success_timestamp_seconds").await;
    assert!(started > 1.7e9, "set at start: {started}");

    std::fs::write(&env.config_path, with_identity(&env, &format!(r#"tenants = ["{OTHER_TID}"]"#))).unwrap();
    env.reloader.reload().await.expect("valid configuration");
    assert_rejected(env.get("/v1/customers", Some(&token)).await, 403, "tenant_not_allowed").await;

    std::fs::write(&env.config_path, with_identity(&env, &format!(r#"tenants = ["{TID}"]"#))).unwrap();
    env.reloader.reload().await.expect("valid configuration");
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);

    assert_eq!(reloads(&env, "success").await, 2.0);
    assert_eq!(reloads(&env, "failure").await, 0.0);
    assert_eq!(env.metric("mfagate_config_last_reload_successful").await, 1.0);
    assert!(env.metric("mfagate_config_last_reload_success_timestamp_seconds").await >= started);
}

#[tokio::test]
async fn an_invalid_configuration_is_rejected_and_the_running_one_stays() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    let cases = [
        (format!("{}mode = \"audit\"\n", env.config_toml), Some("routes[0].mode")),
        (format!("{}\nnot toml at all = = =\n", env.config_toml), Some("(file)")),
        (env.config_toml.replacen("[server]\n", "[server]\nmax_in_flight = 0\n", 1), Some("server.max_in_flight")),
        (env.config_toml.replacen("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"", 1), Some("server.listen")),
        (with_identity(&env, r#"refresh_interval = "2h""#), Some("identity.refresh_interval")),
        (
            env.config_toml.replace(&env.dir.path().join("gateway.pem").display().to_string(), "/nonexistent/cert.pem"),
            Some("server.tls_cert"),
        ),
    ];
    for (n, (text, key)) in cases.iter().enumerate() {
        std::fs::write(&env.config_path, text).unwrap();
        let err = env.reloader.reload().await.expect_err("invalid configuration");
        assert_eq!(err.key(), *key, "{err}");
        assert_eq!(
            env.get("/v1/customers", Some(&token)).await.status(),
            200,
            "{err}: the running configuration stays"
        );
        assert_eq!(reloads(&env, "failure").await, (n + 1) as f64);
        assert_eq!(env.metric("mfagate_config_last_reload_successful").await, 0.0);
    }
    std::fs::remove_file(&env.config_path).unwrap();
    assert!(env.reloader.reload().await.is_err(), "a missing file is an error");
    assert_eq!(reloads(&env, "success").await, 0.0);
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn requests_in_flight_finish_on_the_configuration_they_started_with() {
    let env = TestEnv::setup().server("upstream_timeout = \"30s\"").start().await;
    let token = env.idp.delegated().mint();
    let slow = {
        let (client, url, token) = (env.client.clone(), env.url("/delay/1500"), token.clone());
        tokio::spawn(async move {
            let rsp = client.get(url).bearer_auth(token).send().await.unwrap();
            (rsp.status(), rsp.text().await.unwrap())
        })
    };
    eventually("the slow request is in flight", || async {
        env.metric(r#"mfagate_requests_in_flight{listener="gateway"}"#).await == 1.0
    })
    .await;
    // The route the slow request took disappears.
    std::fs::write(&env.config_path, format!("{}path_prefix = \"/v2\"\n", env.config_toml)).unwrap();
    env.reloader.reload().await.unwrap();
    assert_rejected(env.get("/delay/1", Some(&token)).await, 404, "no_route").await;
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "delayed");
}

#[tokio::test]
async fn a_reload_reopens_the_decision_log_after_rotation() {
    let logs = tempfile::tempdir().unwrap();
    let (current, rotated) = (logs.path().join("audit.jsonl"), logs.path().join("audit.jsonl.1"));
    let env = TestEnv::setup()
        .more_routes(&format!("[audit]\nsink = \"file\"\npath = \"{}\"\n", current.display()))
        .start()
        .await;
    let lines = |path: &std::path::Path| std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0);
    let token = env.idp.delegated().mint();
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    eventually("the first decision is logged", || async { lines(&current) == 1 }).await;
    // Rotation by renaming, then a reload (what SIGHUP does).
    std::fs::rename(&current, &rotated).unwrap();
    env.reloader.reload().await.expect("the same configuration reloads");
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    eventually("the next decision goes to a new file", || async { lines(&current) == 1 }).await;
    assert_eq!(lines(&rotated), 1, "the rotated file keeps only what was written before");
}

#[tokio::test]
async fn certificates_are_reloaded() {
    let env = TestEnv::setup().start().await;
    let der = |pem: &str| CertificateDer::pem_slice_iter(pem.as_bytes()).next().unwrap().unwrap().to_vec();
    let served = || async {
        let tls = raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };
    let before = served().await;
    // Replace the files in place, as a certificate renewal does.
    let renewed = env.pki.leaf(env.dir.path(), "renewed", &["localhost", "127.0.0.1"]);
    std::fs::copy(&renewed.cert_path, env.dir.path().join("gateway.pem")).unwrap();
    std::fs::copy(&renewed.key_path, env.dir.path().join("gateway.key")).unwrap();
    assert_eq!(served().await, before, "nothing changes before the reload");
    env.reloader.reload().await.unwrap();
    let after = served().await;
    assert_ne!(after, before);
    assert_eq!(after, der(&renewed.cert_pem));
    assert_eq!(env.get("/v1/customers", Some(&env.idp.delegated().mint())).await.status(), 200);
}

#[tokio::test]
async fn the_file_watch_reloads_on_change() {
    let env = TestEnv::setup().server("watch_interval = \"200ms\"").start().await;
    let token = env.idp.delegated().mint();
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(&env.config_path, with_identity(&env, &format!(r#"tenants = ["{OTHER_TID}"]"#))).unwrap();
    eventually("the change is picked up", || async { reloads(&env, "success").await == 1.0 }).await;
    assert_rejected(env.get("/v1/customers", Some(&token)).await, 403, "tenant_not_allowed").await;
    // A broken edit is rejected once, not retried while the file stays the same.
    std::fs::write(&env.config_path, format!("{}mode = \"audit\"\n", env.config_toml)).unwrap();
    eventually("the broken edit is seen", || async { reloads(&env, "failure").await == 1.0 }).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(reloads(&env, "failure").await, 1.0);
    assert_rejected(env.get("/v1/customers", Some(&token)).await, 403, "tenant_not_allowed").await;
}

#[tokio::test]
async fn sighup_reloads_under_load_without_failing_a_request() {
    let env = TestEnv::setup().start().await;
    let config = env.path("binary.toml");
    let base = format!(
        "{}\n[log]\nformat = \"json\"\n",
        env.config_toml.replacen("[server]\n", "[server]\ndrain_delay = \"0s\"\n", 1)
    );
    std::fs::write(&config, &base).unwrap();
    let mut gw = Gateway::start(&config).await;
    let token = env.idp.delegated().mint();
    const TOTAL: usize = 4000;
    let load = Load::start(&env.pki.ca_pem, gw.url("/v1/customers"), token, TOTAL, 32, false);
    sent(&load, 500).await;
    let renewed = env.pki.leaf(env.dir.path(), "renewed", &["localhost", "127.0.0.1"]);
    let valid = base
        .replace(&env.dir.path().join("gateway.pem").display().to_string(), &renewed.cert_path.display().to_string())
        .replace(&env.dir.path().join("gateway.key").display().to_string(), &renewed.key_path.display().to_string())
        .replacen("[identity]\n", &format!("[identity]\ntenants = [\"{TID}\"]\n"), 1);
    std::fs::write(&config, &valid).unwrap();
    gw.signal("HUP").await;
    gw.wait_for("configuration reloaded").await;

    sent(&load, 1500).await;
    std::fs::write(&config, format!("{valid}\n[server]\nmax_in_flight = 0\n")).unwrap();
    gw.signal("HUP").await;
    let rejected = gw.wait_for("configuration reload rejected; the running configuration stays").await;
    assert_eq!(rejected["key"], "(file)", "{rejected}");
    std::fs::write(&config, valid.replacen("[server]\n", "[server]\nmax_in_flight = 0\n", 1)).unwrap();
    gw.signal("HUP").await;
    let rejected = gw.wait_for("configuration reload rejected; the running configuration stays").await;
    assert_eq!(rejected["key"], "server.max_in_flight", "{rejected}");

    sent(&load, 2500).await;
    std::fs::write(&config, &base).unwrap();
    gw.signal("HUP").await;
    gw.wait_for("configuration reloaded").await;

    let outcomes = load.finish().await;
    assert_eq!(outcomes.len(), TOTAL);
    let failed: Vec<_> = outcomes.iter().filter(|o| o.result != Ok(200)).collect();
    assert!(failed.is_empty(), "{} of {TOTAL} requests failed: {:?}", failed.len(), &failed[..failed.len().min(5)]);
    assert_eq!(gw.metric(r#"mfagate_config_reload_total{result="success"}"#).await, 2.0);
    assert_eq!(gw.metric(r#"mfagate_config_reload_total{result="failure"}"#).await, 2.0);
    assert_eq!(env.upstream.hits(), TOTAL);
    gw.signal("TERM").await;
    assert!(gw.exit(Duration::from_secs(30)).await.success());
}

/// Waits until the load has sent `n` requests.
async fn sent(load: &Load, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while load.sent.load(std::sync::atomic::Ordering::SeqCst) < n {
        assert!(tokio::time::Instant::now() < deadline, "the load stalled before {n} requests");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The gateway with a text log: every line it writes to stderr, as written.
struct TextLog {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl TextLog {
    async fn start(config: &std::path::Path) -> Self {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mfagate"))
            .args(["run", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx.send(line);
            }
        });
        let mut log = Self { child, lines, seen: Vec::new() };
        log.wait_for("mfagate started").await;
        log
    }

    async fn wait_for(&mut self, fragment: &str) {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no line with {fragment:?}: {:#?}", self.seen))
                .unwrap_or_else(|| panic!("exited before {fragment:?}: {:#?}", self.seen));
            let found = line.contains(fragment);
            self.seen.push(line);
            if found {
                return;
            }
        }
    }

    async fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let kill = support::setup::program("kill");
        assert!(tokio::process::Command::new(kill).args([&format!("-{name}"), &pid]).status().await.unwrap().success());
    }

    /// Every line, once the process has exited.
    async fn all(mut self) -> Vec<String> {
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        let _ = self.child.wait().await;
        self.seen
    }
}

#[tokio::test]
async fn a_rejected_reload_is_one_line_of_the_text_log() {
    let env = TestEnv::setup().start().await;
    let config = env.path("text-log.toml");
    let valid = format!("{}\n[log]\nformat = \"text\"\n", env.config_toml);
    std::fs::write(&config, &valid).unwrap();
    let mut log = TextLog::start(&config).await;
    // A string left open: the TOML parser's own message spans several lines.
    std::fs::write(&config, valid.replacen("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:0", 1)).unwrap();
    log.signal("HUP").await;
    log.wait_for("configuration reload rejected").await;
    log.signal("TERM").await;
    let lines = log.all().await;
    let rejected = lines.iter().find(|l| l.contains("configuration reload rejected")).unwrap();
    assert!(rejected.contains("line 3"), "the line names where: {rejected}");
    // Each line is an event of its own: a timestamp, then the level.
    let strays: Vec<&String> = lines.iter().filter(|l| !is_text_event(l)).collect();
    assert!(strays.is_empty(), "lines that are not events: {strays:#?}\nin {lines:#?}");
}

/// `2026-01-01T00:00:00.000000Z  INFO mfagate: ...`
fn is_text_event(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let stamp = words.next().unwrap_or_default();
    let level = words.next().unwrap_or_default();
    stamp.len() > 20
        && stamp.as_bytes()[4] == b'-'
        && stamp.ends_with('Z')
        && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level)
}

/// A SIGHUP sent the moment the gateway says it has started (as
/// `systemctl reload` right after `start` does) reloads: the gateway
/// listens for it before saying so, and a signal that arrives before its
/// stream exists would be lost.
#[tokio::test]
async fn a_sighup_right_after_start_is_not_lost() {
    let env = TestEnv::start(TestEnv::setup().server("drain_delay = \"0s\"")).await;
    let config = env.path("prompt.toml");
    std::fs::write(&config, format!("{}\n[log]\nformat = \"json\"\n", env.config_toml)).unwrap();
    for _ in 0..10 {
        let mut gw = Gateway::start(&config).await;
        gw.signal("HUP").await;
        gw.wait_for("configuration reloaded").await;
        gw.signal("TERM").await;
        assert!(gw.exit(Duration::from_secs(30)).await.success());
    }
}
