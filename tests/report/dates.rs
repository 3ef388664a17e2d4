//! `mfagate report --format html` on logs whose records lie far apart in
//! time: a record the log holds from a clock set wrong (or forged) must not
//! push the period's real days out of the charts.

use super::report;
use crate::support;
use crate::support::idp::{OID, SAM_APP, TID};

fn record(timestamp: &str, decision: &str, reason: &str, amr: &[&str]) -> String {
    serde_json::json!({
        "timestamp": timestamp, "route": "partner-center", "decision": decision, "reason": reason,
        "mode": "enforce", "correlation_id": "c", "status": if decision == "deny" { 401 } else { 200 },
        "latency_us": 900, "verified": true, "tid": TID, "oid": OID, "appid": SAM_APP,
        "principal": "app_user", "client": "secret", "ver": "1.0", "amr": amr,
    })
    .to_string()
}

/// The SVG element with id `id`.
fn svg<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<svg id=\"{id}\"")).unwrap_or_else(|| panic!("no chart {id}"));
    &html[start..start + html[start..].find("</svg>").unwrap()]
}

/// One record dated in year 1 (a clock at zero, or a forged line) before a
/// real day of decisions: the charts span at most ten years of days, and
/// they counted them from the first record, so the real day, thousands of
/// years later, fell off both charts, which drew only empty days.
#[tokio::test]
async fn a_record_from_the_distant_past_does_not_hide_the_period_from_the_charts() {
    let dir = tempfile::tempdir().unwrap();
    let log = [
        record("0001-01-01T00:00:00Z", "allow", "none", &["pwd", "mfa"]),
        record("2026-03-02T08:00:00.000Z", "allow", "none", &["pwd", "mfa"]),
        record("2026-03-02T08:01:00.000Z", "deny", "mfa_required", &["pwd"]),
    ]
    .join("\n");
    let log = support::write(dir.path(), "audit.jsonl", &(log + "\n"));
    let (code, html, stderr) = report(&["--format", "html", log.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{stderr}");
    let by_day = svg(&html, "mfa-by-day");
    assert!(by_day.contains("<title>2026-03-02: 1 of 2 app+user requests with MFA"), "the real day is charted");
    assert!(by_day.contains("<title>0001-01-01: 1 of 1 app+user requests with MFA"), "so is the odd one");
    let denials = svg(&html, "denials-by-day");
    assert!(denials.contains("<title>2026-03-02: mfa_required 1</title>"), "the denial is charted");
    assert!(html.len() < 400_000, "{} bytes", html.len());
}

/// A record dated in year 9999 after the real days: they stay on the charts.
#[tokio::test]
async fn a_record_from_the_distant_future_does_not_hide_the_period_from_the_charts() {
    let dir = tempfile::tempdir().unwrap();
    let log = [
        record("2026-03-02T08:01:00.000Z", "deny", "mfa_required", &["pwd"]),
        record("9999-12-31T23:59:59Z", "allow", "none", &["pwd", "mfa"]),
    ]
    .join("\n");
    let log = support::write(dir.path(), "audit.jsonl", &(log + "\n"));
    let (code, html, stderr) = report(&["--format", "html", log.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(svg(&html, "mfa-by-day").contains("<title>2026-03-02: 0 of 1 app+user requests with MFA"));
    assert!(svg(&html, "mfa-by-day").contains("<title>9999-12-31: 1 of 1 app+user requests with MFA"));
    assert!(svg(&html, "denials-by-day").contains("<title>2026-03-02: mfa_required 1</title>"));
    assert!(html.len() < 400_000, "{} bytes", html.len());
}

/// The text report is read in a terminal: a control character from the log
/// (an escape sequence in an application id or a route, a line break that
/// starts a forged summary) is written as U+FFFD, never as itself.
#[tokio::test]
async fn the_text_report_writes_no_control_character_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut hostile: serde_json::Value =
        serde_json::from_str(&record("2026-03-02T08:01:00.000Z", "deny", "mfa_required", &["pwd"])).unwrap();
    hostile["appid"] = "app\u{1b}]2;owned\u{7}\u{1b}[2J\nSummary: 0 denied, 0 would be denied, 0 exempt".into();
    hostile["route"] = "route\u{1b}[8m\r".into();
    let log = support::write(dir.path(), "audit.jsonl", &format!("{hostile}\n"));
    let (code, text, stderr) = report(&[log.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(!text.contains(['\u{1b}', '\u{7}', '\r']), "{text:?}");
    assert_eq!(text.lines().filter(|l| l.trim_start().starts_with("Summary:")).count(), 1, "{text:?}");
    assert!(text.contains("Summary: 1 denied"), "{text:?}");
}
