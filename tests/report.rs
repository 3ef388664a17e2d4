//! `mfagate report` run as a process on a decision log that a running
//! gateway wrote: the compliance table in Partner Center's shape, the
//! non-compliant principals and applications with their reasons, the time
//! bounds, the formats and the exit codes (0 none denied, 2 some, 1 error).

mod support;

#[path = "report/dates.rs"]
mod dates;
#[path = "report/html.rs"]
mod html;
#[path = "report/week.rs"]
mod week;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::TestEnv;
use support::idp::{AZURE_CLI, OID, SAM_APP, TID};

const BIN: &str = env!("CARGO_BIN_EXE_mfagate");

async fn report(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(BIN).arg("report").args(args).env_remove("MFAGATE_CONFIG").output().await;
    let out = out.expect("mfagate runs");
    (out.status.code().expect("exited"), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Reads the decision log until it holds `n` lines (written by a thread of
/// its own; nothing signals a flushed line).
async fn audit_lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= n {
            assert_eq!(lines.len(), n, "{text}");
            return lines;
        }
        assert!(Instant::now() < deadline, "the decision log has {} of {n} lines", lines.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn report_on_a_log_written_by_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!(
            "[[routes]]\nname = \"staged\"\npath_prefix = \"/staged\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\n\
             audiences = [\"https://api.partnercenter.microsoft.com\"]\nmode = \"report-only\"\n\n\
             [audit]\nsink = \"file\"\npath = {}\n",
            support::toml_str(&log)
        ))
        .start()
        .await;
    let ok = env.idp.delegated().mint();
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let public = env.idp.delegated().claim("appid", AZURE_CLI).claim("appidacr", "0").mint();
    let app_only = env.idp.app_only().mint();
    for (path, token, status) in [
        ("/v1/customers", Some(&ok), 200),
        ("/v1/customers", Some(&ok), 200),
        ("/v1/customers", Some(&no_mfa), 401),
        ("/v1/customers", Some(&no_mfa), 401),
        ("/v1/customers", Some(&no_mfa), 401),
        ("/staged/customers", Some(&no_mfa), 200),
        ("/v1/customers", Some(&public), 403),
        ("/v1/customers", Some(&app_only), 403),
        ("/v1/customers", None, 401),
        ("/nowhere", None, 404),
    ] {
        assert_eq!(env.get(path, token.map(String::as_str)).await.status(), status, "{path}");
    }
    let lines = audit_lines(&log, 10).await;
    assert!(lines[0]["upstream_latency_us"].as_u64().is_some(), "forwarded requests record the upstream's latency");
    assert!(lines[2].get("upstream_latency_us").is_none(), "denied ones were not forwarded");
    let day = &lines[0]["timestamp"].as_str().unwrap()[..10];
    let log = log.to_str().unwrap();

    // Partner Center's shape: app+user requests only, per day and application.
    let (code, csv, stderr) = report(&["--format", "csv", log]).await;
    assert_eq!(code, 2, "some requests were denied: {stderr}");
    assert_eq!(
        csv,
        format!(
            "loginDate,applicationId,mfaCompliantRequestCount,totalRequestCount\n\
             {day},{AZURE_CLI},1,1\n\
             {day},{SAM_APP},2,6\n"
        )
    );

    // Who would be stopped, and why; most frequent first.
    let (code, csv, _) = report(&["--format", "csv", "--table", "denials", log]).await;
    assert_eq!(code, 2);
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "decision",
            "reason",
            "applicationId",
            "tenantId",
            "objectId",
            "upnSha256",
            "count",
            "firstSeen",
            "lastSeen",
            "routes"
        ]
    );
    let summary: Vec<(&str, &str, &str, &str)> = rows[1..].iter().map(|r| (r[0], r[1], r[2], r[6])).collect();
    assert_eq!(
        summary,
        [
            ("deny", "mfa_required", SAM_APP, "3"),
            ("deny", "app_only_not_allowed", SAM_APP, "1"),
            ("deny", "missing_token", "", "1"),
            ("deny", "public_client", AZURE_CLI, "1"),
            ("would_deny", "mfa_required", SAM_APP, "1"),
        ]
    );
    let upn = mfagate::audit::user_fingerprint("admin@contoso.onmicrosoft.com");
    assert_eq!((rows[1][3], rows[1][4], rows[1][5]), (TID, OID, upn.as_str()));
    assert!(rows[1][7] <= rows[1][8], "first seen not after last seen: {rows:?}");
    assert_eq!(rows[5][9], "staged");
    assert!(!csv.contains("no_route"), "routing errors are not compliance problems");

    // JSON holds both tables and the counts.
    let (code, json, _) = report(&["--format", "json", log]).await;
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["records"].as_u64(), v["inRange"].as_u64()), (Some(10), Some(10)));
    assert_eq!(v["compliance"][1]["applicationId"], SAM_APP);
    assert_eq!(v["compliance"][1]["mfaCompliantRequestCount"], 2);
    assert_eq!(v["compliance"][1]["totalRequestCount"], 6);
    assert_eq!(v["nonCompliant"][0]["reason"], "mfa_required");
    assert_eq!(v["nonCompliant"][0]["count"], 3);
    assert_eq!(v["nonCompliant"][0]["routes"], serde_json::json!(["partner-center"]));

    // Text for a terminal.
    let (code, text, _) = report(&[log]).await;
    assert_eq!(code, 2);
    assert!(text.contains("(10 records)"), "{text}");
    assert!(text.contains(&format!("{day}  {SAM_APP}          2          6    33.3")), "{text}");
    assert!(text.contains("deny mfa_required x3  routes: partner-center"), "{text}");
    assert!(text.contains("Summary: 6 denied, 1 would be denied, 0 exempt"), "{text}");

    // Bounds: a window with no record is clean (exit 0); durations count back from now.
    let (code, json, _) = report(&["--format", "json", "--since", "2999-01-01", log]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["records"].as_u64(), v["inRange"].as_u64()), (Some(10), Some(0)));
    assert_eq!(v["since"], "2999-01-01T00:00:00Z");
    assert_eq!(v["compliance"], serde_json::json!([]));
    let (code, json, _) = report(&["--format", "json", "--since", "1h", log]).await;
    assert_eq!(code, 2);
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["inRange"], 10);
    let (code, json, _) = report(&["--format", "json", "--until", "2000-01-01", log]).await;
    assert_eq!((code, serde_json::from_str::<Value>(&json).unwrap()["inRange"].as_u64()), (0, Some(0)));

    // The log never holds a token.
    let text = std::fs::read_to_string(log).unwrap();
    for token in [&ok, &no_mfa, &public, &app_only] {
        assert!(!text.contains(token.as_str()));
    }
}

#[tokio::test]
async fn errors_exit_1_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let (code, out, err) = report(&[missing.to_str().unwrap()]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("missing.jsonl"), "{err}");

    let garbage = support::write(dir.path(), "garbage.jsonl", "not json\n{\"also\":\"not a record\"}\n");
    let (code, _, err) = report(&[garbage.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("holds no decision records"), "{err}");

    let empty = support::write(dir.path(), "empty.jsonl", "");
    let (code, _, err) = report(&["--since", "last tuesday", empty.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("--since \"last tuesday\""), "{err}");
}

/// The log records what happened, not what is planned: with `--config` the
/// text and JSON reports add each route's schedule and each exemption's
/// expiry, and what the log shows of each.
#[tokio::test]
async fn with_a_configuration_the_report_shows_enforce_dates_and_exemption_expiry() {
    let week = week::write();
    let (config, log) = (week.config.to_str().unwrap(), week.log.to_str().unwrap());
    let (code, json, stderr) = report(&["--format", "json", "--config", config, log]).await;
    assert_eq!(code, 2, "{stderr}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["config"], config);
    let routes: Vec<&str> = v["routes"].as_array().unwrap().iter().map(|r| r["route"].as_str().unwrap()).collect();
    assert!(
        routes.starts_with(&["partner-center", "graph", "arm"]),
        "configured routes first, in their order: {routes:?}"
    );
    let graph = &v["routes"][1];
    assert_eq!(
        (graph["enforceAfter"].as_str(), graph["wouldDeny"].as_u64()),
        (Some(week.graph_enforces.as_str()), Some(14))
    );
    assert_eq!(graph["reportOnly"]["first"], "2026-03-02T08:08:07.118Z");
    assert_eq!(v["routes"][0]["ruleModes"], serde_json::json!(["deny_roles = report-only"]));
    assert_eq!(v["routes"][2]["mode"], "report-only");
    let glass = &v["exemptions"][0];
    assert_eq!((glass["id"].as_str(), glass["state"].as_str()), (Some(week::BREAK_GLASS), Some("active")));
    assert_eq!(
        (glass["expires"].as_str(), glass["letThrough"]["count"].as_u64()),
        (Some(week.glass_expires.as_str()), Some(2))
    );
    let sync = &v["exemptions"][1];
    assert_eq!((sync["id"].as_str(), sync["state"].as_str()), (Some(week::SYNC_APP), Some("expired")));
    assert_eq!(
        (sync["expires"].as_str(), sync["matchedExpired"]["count"].as_u64()),
        (Some(week.sync_expired.as_str()), Some(1))
    );

    let (code, text, _) = report(&["--config", config, log]).await;
    assert_eq!(code, 2);
    assert!(text.contains(&format!("graph  mode enforce  enforces from {}", week.graph_enforces)), "{text}");
    assert!(text.contains("report-only decisions 14, would be denied 14"), "{text}");
    assert!(text.contains(&format!("expires {} (expired)", week.sync_expired)), "{text}");

    // Without one, only what the log shows: no schedule, no expiry.
    let (_, json, _) = report(&["--format", "json", log]).await;
    let v: Value = serde_json::from_str(&json).unwrap();
    assert!(v["config"].is_null() && v["routes"][0]["route"] != "arm", "{json}");
    assert!(v["routes"].as_array().unwrap().iter().all(|r| r["enforceAfter"].is_null()), "{json}");
    assert!(v["exemptions"].as_array().unwrap().iter().all(|e| e["expires"].is_null()), "{json}");
}
