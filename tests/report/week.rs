//! A week of decisions as a gateway staged for enforcement logs them, and
//! the configuration that stages it: the input of the report tests that
//! read a configuration (tests/report.rs, tests/report/html.rs). One record
//! holds hostile strings in every field a token or request can fill.

use std::path::PathBuf;

use serde_json::Value;

use crate::support;
use crate::support::idp::{AZURE_CLI, OID, SAM_APP, TID};

/// An application id, a tenant, a principal, a route, an exemption reason
/// and a reason as an attacker could make a token or a request show them:
/// each tries to leave the text it is written into and run a script that
/// writes `xss:` and where it came from to the console.
pub const HOSTILE_APP: &str =
    r#""><script>console.error("xss:appid")</script><img src=x onerror=console.error("xss:appid-img")>"#;
pub const HOSTILE_TID: &str = r#"</style></title><svg onload=console.error("xss:tid")>"#;
pub const HOSTILE_OID: &str = r#"<script>console.error("xss:oid")</script>"><svg onload=console.error("xss:oid-svg")>"#;
pub const HOSTILE_UPN: &str = "]]><!-- &amp; <b>bold</b>";
pub const HOSTILE_ROUTE: &str = r#"<i>route</i><script>console.error("xss:route")</script>"#;
pub const HOSTILE_EXEMPTION: &str = r#"'"><iframe src=javascript:console.error("xss:exemption")>"#;
pub const HOSTILE_REASON: &str = r#"<script>console.error("xss:reason")</script>"#;

pub const BREAK_GLASS: &str = "9f1c2e3d-4b5a-4c6d-8e7f-0a1b2c3d4e5f";
pub const SYNC_APP: &str = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d";
const DAEMON_APP: &str = "11111111-2222-4333-8444-555555555555";

/// One decision log line.
fn line(day: u32, n: u32, route: &str, decision: &str, reason: &str, mode: &str, claims: Value) -> String {
    let mut record = serde_json::json!({
        "timestamp": format!("2026-03-{:02}T{:02}:{:02}:07.118Z", day, 8 + n / 60, n % 60),
        "route": route,
        "decision": decision,
        "reason": reason,
        "mode": mode,
        "correlation_id": format!("c-{day}-{n}"),
        "status": if decision == "deny" { 401 } else { 200 },
        "latency_us": 900,
    });
    for (k, v) in claims.as_object().unwrap() {
        record[k] = v.clone();
    }
    record.to_string()
}

fn user(app: &str, amr: &[&str]) -> Value {
    serde_json::json!({
        "verified": true, "tid": TID, "oid": OID, "appid": app, "principal": "app_user",
        "client": "secret", "ver": "1.0", "amr": amr, "upn_sha256": mfagate::audit::user_fingerprint("admin@contoso.onmicrosoft.com"),
    })
}

/// A week of decisions: per day `d` (2 to 8 March), SAM_APP makes four
/// requests with MFA and `d % 3` without (denied); Azure CLI, a public
/// client, is denied once a day until the 5th; the staged `graph` route
/// would deny two a day; a daemon's app-only calls are denied; a break-glass
/// account is exempted twice; an expired exemption matches once; routing
/// errors and rate limits (no compliance matter) appear too, and so does a
/// record whose every string is hostile.
fn week_of_decisions() -> (String, Vec<(String, u32, u32)>) {
    let mut lines = Vec::new();
    let mut days = Vec::new();
    for d in 2..=8 {
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        let date = format!("2026-03-{d:02}");
        let (mut compliant, mut total) = (0, 0);
        for _ in 0..4 {
            lines.push(line(d, next(), "partner-center", "allow", "none", "enforce", user(SAM_APP, &["pwd", "mfa"])));
            compliant += 1;
            total += 1;
        }
        for _ in 0..d % 3 {
            lines.push(line(d, next(), "partner-center", "deny", "mfa_required", "enforce", user(SAM_APP, &["pwd"])));
            total += 1;
        }
        if d <= 5 {
            let cli = user(AZURE_CLI, &["pwd"]);
            lines.push(line(d, next(), "partner-center", "deny", "public_client", "enforce", cli));
            total += 1;
        }
        for _ in 0..2 {
            lines.push(line(d, next(), "graph", "would_deny", "mfa_required", "report-only", user(SAM_APP, &["pwd"])));
            total += 1;
        }
        let daemon = serde_json::json!({"verified": true, "tid": TID, "oid": OID, "appid": DAEMON_APP, "principal": "app_only", "client": "certificate"});
        lines.push(line(d, next(), "partner-center", "deny", "app_only_not_allowed", "enforce", daemon));
        if d == 3 || d == 6 {
            let mut glass = user(SAM_APP, &["pwd", "mfa"]);
            glass["oid"] = BREAK_GLASS.into();
            glass["wids"] = serde_json::json!([support::idp::GLOBAL_ADMIN]);
            glass["exemption"] = "break-glass account, runbook BG-1".into();
            lines.push(line(d, next(), "partner-center", "exempt", "privileged_role", "enforce", glass));
            compliant += 1;
            total += 1;
        }
        if d == 7 {
            let mut sync = user(SYNC_APP, &["pwd", "mfa"]);
            sync["wids"] = serde_json::json!([support::idp::GLOBAL_ADMIN]);
            sync["expired_exemption"] = "directory sync account".into();
            lines.push(line(d, next(), "partner-center", "deny", "privileged_role", "enforce", sync));
            compliant += 1;
            total += 1;
        }
        lines.push(line(d, next(), "unmatched", "deny", "no_route", "", serde_json::json!({})));
        lines.push(line(d, next(), "partner-center", "deny", "rate_limited", "enforce", serde_json::json!({})));
        if d == 4 {
            let mut hostile = user(HOSTILE_APP, &["pwd"]);
            hostile["tid"] = HOSTILE_TID.into();
            hostile["oid"] = HOSTILE_OID.into();
            hostile["upn_sha256"] = HOSTILE_UPN.into();
            hostile["exemption"] = HOSTILE_EXEMPTION.into();
            lines.push(line(d, next(), HOSTILE_ROUTE, "exempt", "mfa_required", "<b>mode</b>", hostile));
            total += 1;
            // A reason that is no reason code is no compliance matter, and still text.
            lines.push(line(d, next(), "partner-center", "deny", HOSTILE_REASON, "enforce", serde_json::json!({})));
        }
        days.push((date, compliant, total));
    }
    lines.push("not a decision".into());
    (lines.join("\n") + "\n", days)
}

/// The log from `week_of_decisions` and a configuration that stages
/// `graph` (an enforce date 20 days on), keeps `arm` report-only, gives
/// `partner-center` a report-only rule, and holds an active and an expired
/// exemption.
pub struct Week {
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    pub config: PathBuf,
    /// Per day: app+user requests with MFA, and all.
    pub days: Vec<(String, u32, u32)>,
    pub graph_enforces: String,
    pub glass_expires: String,
    pub sync_expired: String,
}

pub fn write() -> Week {
    let dir = tempfile::tempdir().unwrap();
    let (log_text, days) = week_of_decisions();
    let log = support::write(dir.path(), "audit.jsonl", &log_text);
    let now = support::idp::now();
    let graph_enforces = mfagate::rfc3339::format(now + 20 * 86_400 + 3600);
    let glass_expires = mfagate::rfc3339::format(now + 30 * 86_400);
    let sync_expired = mfagate::rfc3339::format(now - 10 * 86_400);
    let route = |name: &str, prefix: &str, extra: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\npath_prefix = \"{prefix}\"\nupstream = \"https://api.partnercenter.microsoft.com\"\n\
             audiences = [\"https://api.partnercenter.microsoft.com\"]\n{extra}\n"
        )
    };
    let partner_center =
        format!("deny_roles = [\"{}\"]\nrule_modes = {{ deny_roles = \"report-only\" }}", support::idp::GLOBAL_ADMIN);
    let config = support::write(
        dir.path(),
        "mfagate.toml",
        &format!(
            "{}{}{}\
             [[exemptions]]\noid = \"{BREAK_GLASS}\"\nreason = \"break-glass account, runbook BG-1\"\nexpires = \"{glass_expires}\"\nroutes = [\"partner-center\"]\n\n\
             [[exemptions]]\nappid = \"{SYNC_APP}\"\nreason = \"directory sync account\"\nexpires = \"{sync_expired}\"\n",
            route("partner-center", "/v1", &partner_center),
            route("graph", "/graph", &format!("enforce_after = \"{graph_enforces}\"")),
            route("arm", "/arm", "mode = \"report-only\""),
        ),
    );
    Week { dir, log, config, days, graph_enforces, glass_expires, sync_expired }
}
