//! The systemd units' commands run as systemd runs them. systemd applies
//! `RestartPreventExitStatus=` to the main process only: with
//! `Restart=on-failure`, an `ExecStartPre=` that fails restarts the unit
//! again and again whatever its exit code. So a configuration that cannot
//! be used must be refused by `ExecStart=` itself, with a status the unit
//! lists there, and the key at fault written to the journal (stderr).
//! `systemctl reload` runs `ExecReload=`, which must reload.

use std::path::Path;
use std::time::Duration;

use crate::support::process::Gateway;
use crate::{BIN, deploy};

const UNITS: [(&str, &str); 2] = [
    ("systemd/mfagate.service", "/etc/mfagate/mfagate.toml"),
    ("systemd/mfagate-egress.service", "/etc/mfagate/egress.toml"),
];

/// The `[Service]` settings of a unit, in order.
fn service(file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy(file)).unwrap();
    let mut in_service = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service
            && !line.starts_with('#')
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

fn values<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

/// A command line of the unit with the installed paths replaced: the binary
/// built here, `config` for the unit's configuration file, `dir` for its
/// state directory. `None` for a `-` line, whose failure systemd ignores.
fn command(line: &str, unit_config: &str, config: &Path, dir: &Path) -> Option<Vec<String>> {
    let ignore_failure = line.trim_start_matches(['@', ':', '+', '!']).starts_with('-');
    let line = line.trim_start_matches(['-', '@', ':', '+', '!']);
    if ignore_failure {
        return None;
    }
    Some(
        line.split_whitespace()
            .map(|w| match w {
                "/usr/local/bin/mfagate" => BIN.to_string(),
                w if w == unit_config => config.display().to_string(),
                w => w.replace("/var/lib/mfagate", &dir.display().to_string()),
            })
            .collect(),
    )
}

fn environment(settings: &[(String, String)], dir: &Path) -> Vec<(String, String)> {
    values(settings, "Environment")
        .into_iter()
        .filter_map(|v| v.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("/var/lib/mfagate", &dir.display().to_string())))
        .collect()
}

async fn run(argv: &[String], env: &[(String, String)]) -> (Option<i32>, String) {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).env_clear().envs(env.iter().cloned()).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{argv:?} kept running on a configuration it cannot use"))
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const ROUTE: &str = "[[routes]]\nname = \"pc\"\nupstream = \"https://api.partnercenter.microsoft.com\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\n\n";

/// Configurations `run` cannot use (after `ROUTE`), and what the journal must name.
const BAD: [(&str, &str, &str); 3] = [
    ("an invalid value", "[server]\nlisten = \"everywhere\"\n", "server.listen"),
    (
        "a certificate file that is missing",
        "[server]\ntls_cert = \"/nonexistent/tls.crt\"\ntls_key = \"/nonexistent/tls.key\"\n",
        "server.tls_cert",
    ),
    ("a TOML syntax error", "[server]\nlisten = \"127.0.0.1:8443\n", "line 7"),
];

#[tokio::test]
async fn a_configuration_the_gateway_cannot_use_stops_each_unit_once_naming_the_key() {
    for (file, unit_config) in UNITS {
        let settings = service(file);
        let dir = tempfile::tempdir().unwrap();
        let env = environment(&settings, dir.path());
        assert_eq!(values(&settings, "Restart"), ["on-failure"], "{file}");
        let prevent: Vec<i32> = values(&settings, "RestartPreventExitStatus")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(|s| s.parse().expect("numeric exit statuses"))
            .collect();
        for (what, text, key) in BAD {
            let config = dir.path().join("bad.toml");
            std::fs::write(&config, format!("{ROUTE}{text}")).unwrap();
            let pre = values(&settings, "ExecStartPre").into_iter().map(|l| ("ExecStartPre", l));
            let start = values(&settings, "ExecStart").into_iter().map(|l| ("ExecStart", l));
            let mut stopped = false;
            for (setting, line) in pre.chain(start) {
                let Some(argv) = command(line, unit_config, &config, dir.path()) else { continue };
                let (code, stderr) = run(&argv, &env).await;
                if code == Some(0) {
                    assert_eq!(setting, "ExecStartPre", "{file}: ExecStart= ran with {what}");
                    continue;
                }
                assert_eq!(
                    setting, "ExecStart",
                    "{file}, {what}: {setting}={line} exits {code:?}, and systemd restarts the unit every RestartSec= (RestartPreventExitStatus= applies to the main process only): {stderr}"
                );
                assert!(
                    code.is_some_and(|c| prevent.contains(&c)),
                    "{file}, {what}: ExecStart= exits {code:?}, not one of RestartPreventExitStatus={prevent:?}, so systemd restarts it: {stderr}"
                );
                assert!(stderr.contains(key), "{file}, {what}: the journal does not name {key}: {stderr}");
                let strays: Vec<&str> = stderr.lines().filter(|l| !is_text_event(l)).collect();
                assert!(strays.is_empty(), "{file}, {what}: journal lines that are no event: {strays:?} in {stderr}");
                stopped = true;
                break;
            }
            assert!(stopped, "{file}: nothing refused {what}");
        }
    }
}

#[tokio::test]
async fn systemctl_reload_reloads_each_unit() {
    for (file, unit_config) in UNITS {
        let settings = service(file);
        let reload = values(&settings, "ExecReload");
        assert_eq!(reload.len(), 1, "{file}: ExecReload= (systemctl reload), as SIGHUP reloads");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mfagate.toml");
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[identity]\njwks_uri = \"http://{dead}/keys\"\nstate_dir = {:?}\n[log]\nformat = \"json\"\n[[routes]]\nname = \"pc\"\nupstream = \"https://api.partnercenter.microsoft.com\"\naudiences = [\"https://api.partnercenter.microsoft.com\"]\n",
                dir.path().join("state").display().to_string()
            ),
        )
        .unwrap();
        let mut gw = Gateway::start(&config).await;
        let pid = gw.pid().to_string();
        let argv: Vec<String> = command(reload[0], unit_config, &config, dir.path())
            .expect("a reload whose failure is reported")
            .into_iter()
            .map(|w| w.replace("${MAINPID}", &pid).replace("$MAINPID", &pid))
            .collect();
        let (code, stderr) = run(&argv, &[("PATH".into(), "/usr/bin:/bin".into())]).await;
        assert_eq!(code, Some(0), "{file}: {argv:?}: {stderr}");
        gw.wait_for("configuration reloaded").await;
        gw.signal("TERM").await;
        assert!(gw.exit(Duration::from_secs(30)).await.success());
    }
}

/// `2026-01-01T00:00:00.000000Z ERROR mfagate: ...`: one log event.
fn is_text_event(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let stamp = words.next().unwrap_or_default();
    let level = words.next().unwrap_or_default();
    stamp.len() > 20 && stamp.ends_with('Z') && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level)
}

/// A unit's `Environment=` wins over the configuration file it runs: a
/// `RUST_LOG` there overrides `[log] level`, so an operator who sets
/// `level = "warn"` (or `"debug"` to look into a problem) in the file sees
/// it ignored without a word. The units leave the log level to the file.
#[test]
fn no_unit_overrides_the_configured_log_level() {
    for (unit, _) in UNITS {
        let settings = service(unit);
        for value in values(&settings, "Environment") {
            let name = value.split_once('=').map_or(value, |(k, _)| k);
            assert!(
                name != "RUST_LOG" && !name.starts_with("MFAGATE__LOG__"),
                "{unit}: Environment={value} overrides the configuration's [log]"
            );
        }
    }
}
