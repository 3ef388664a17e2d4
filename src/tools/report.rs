//! `mfagate report`: what a partner needs before switching to enforce,
//! from the decision log. Three tables:
//!
//! - MFA compliance of app+user requests per day and application, in the
//!   shape of Partner Center's own summary (`GET /v1/applicationmfaadoptionstatus`:
//!   `loginDate`, `applicationId`, `mfaCompliantRequestCount`,
//!   `totalRequestCount`), so the two can be reconciled;
//! - every principal and application that was denied, would be denied
//!   (report-only) or got through only by an exemption, by reason, with
//!   counts and the first and last time seen;
//! - the sign-in review (`--table signins`): token requests on login routes
//!   per tenant, client, grant and client authentication (`signins`).
//!
//! A request counts as MFA-compliant when its token's `amr` holds `mfa` or
//! `ngcmfa` (the gateway's default `accepted_amr`). App-only requests,
//! token requests and requests without a readable token are not app+user
//! requests and are left out of the first table, as Partner Center does.
//!
//! With `--config`, the routes' enforce dates and rule modes and the
//! exemptions' expiry come from the configuration (the log records only
//! what happened, not what is planned); `--format html` draws it all on one
//! page for an auditor.

mod chart;
mod compute;
mod html;
mod markup;
mod render;
mod rollout;
mod signins;

use super::merge::{Line, Merged};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use super::check_token::EXIT_DENY;
use crate::audit::AuditRecord;
use crate::cli::{ReportArgs, ReportFormat, ReportTable};
use crate::config::{Config, Source};
use crate::error::Reason;
use crate::policy::partner_center::counts_as_mfa;
use crate::rfc3339;
pub use compute::ComputeFlagged;
pub use rollout::{ExemptionStatus, RouteStatus};
pub use signins::{SignIn, by_reason as signins_by_reason};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReportError(String);

/// Runs the report on `args.logs` (merged by time), with the configuration at `config` when
/// one was named.
pub fn run(config_path: Option<&Path>, args: &ReportArgs) -> ExitCode {
    let config = match config_path.map(|p| Config::load(&Source::File(p.to_path_buf()))).transpose() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("report: configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    match build(args, config.as_ref()) {
        Ok(mut report) => {
            report.config = config_path.map(|p| p.display().to_string());
            let out = match args.format {
                ReportFormat::Text if args.table == ReportTable::Signins => render::signins_text(&report),
                ReportFormat::Text => render::text(&report),
                ReportFormat::Csv => render::csv(&report, args.table),
                ReportFormat::Json => render::json(&report),
                ReportFormat::Html => html::page(&report),
            };
            let written = match &args.out {
                Some(path) => std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display())),
                None => {
                    print!("{out}");
                    Ok(())
                }
            };
            if let Err(e) = written {
                eprintln!("report: {e}");
                return ExitCode::FAILURE;
            }
            let flagged = report.compute.iter().any(|c| matches!(c.decision.as_str(), "deny" | "would_deny"));
            if flagged || report.non_compliant.iter().any(|n| n.decision != "exempt") {
                ExitCode::from(EXIT_DENY)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One row of the compliance table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Compliance {
    pub login_date: String,
    pub application_id: String,
    pub mfa_compliant_request_count: u64,
    pub total_request_count: u64,
}

/// One principal and application that a rule stopped (or would have).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NonCompliant {
    /// `deny`, `would_deny` or `exempt`.
    pub decision: String,
    pub reason: String,
    pub application_id: String,
    pub tenant_id: String,
    pub object_id: String,
    /// SHA-256 of the lower-cased user name, as the decision log keeps it.
    pub upn_sha256: String,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub routes: Vec<String>,
}

/// Non-compliant decisions of one day, decision and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Daily {
    pub date: String,
    pub decision: String,
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub log: String,
    /// When the report was made, RFC 3339.
    pub generated: String,
    /// The configuration read for enforce dates and exemptions, if any.
    pub config: Option<String>,
    /// Inclusive bounds, RFC 3339, when given.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Decision records read (in range or not).
    pub records: u64,
    /// Of these, in range.
    pub in_range: u64,
    /// The first and last record in range.
    pub first_record: Option<String>,
    pub last_record: Option<String>,
    /// Line numbers that are not decision records.
    pub unreadable: Vec<usize>,
    pub compliance: Vec<Compliance>,
    pub non_compliant: Vec<NonCompliant>,
    /// The non-compliant decisions per day, by decision and reason.
    pub daily: Vec<Daily>,
    /// Configured routes and those the log names, with their staging.
    pub routes: Vec<RouteStatus>,
    /// Configured exemptions and those the log names.
    pub exemptions: Vec<ExemptionStatus>,
    /// ARM compute requests `compute_guard` flagged (Azure fraud).
    pub compute: Vec<ComputeFlagged>,
    /// The sign-in review: token requests on login routes.
    pub signins: Vec<SignIn>,
}

#[derive(Default)]
struct Counts {
    compliant: u64,
    total: u64,
}

type PrincipalKey = (String, String, String, String, String, String);

struct Seen {
    count: u64,
    first: (i128, String),
    last: (i128, String),
    routes: BTreeSet<String>,
}

fn build(args: &ReportArgs, config: Option<&Config>) -> Result<Report, ReportError> {
    let now = rfc3339::unix_now();
    let now_ms = i128::from(now) * 1000;
    let bound = |flag: &str, value: &Option<String>| -> Result<Option<i128>, ReportError> {
        value.as_deref().map(|v| instant(v, now_ms).ok_or_else(|| ReportError(format!("{flag} {v:?}: expected an RFC 3339 date-time, a date (2026-04-01) or a duration back from now (7d, 12h)")))).transpose()
    };
    let since = bound("--since", &args.since)?;
    let until = bound("--until", &args.until)?;
    let input = Merged::open(&args.logs).map_err(ReportError)?;
    let names = Merged::describe(&args.logs);
    let mut report = Report {
        log: names.clone(),
        generated: rfc3339::format(now),
        since: since.map(|ms| rfc3339::format((ms / 1000) as i64)),
        until: until.map(|ms| rfc3339::format((ms / 1000) as i64)),
        ..Report::default()
    };
    let mut compliance: BTreeMap<(String, String), Counts> = BTreeMap::new();
    let mut principals: BTreeMap<PrincipalKey, Seen> = BTreeMap::new();
    let mut daily: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut span: Option<((i128, String), (i128, String))> = None;
    let mut rollout = rollout::Rollout::default();
    let mut flagged = compute::Collector::default();
    let mut signins = signins::Signins::default();
    for line in input {
        let Line { number, text: line } = line.map_err(ReportError)?;
        if line.trim().is_empty() {
            continue;
        }
        let Some((record, at)) = serde_json::from_str::<AuditRecord>(&line)
            .ok()
            .and_then(|r| rfc3339::parse_millis(&r.timestamp).map(|at| (r, at)))
        else {
            report.unreadable.push(number);
            continue;
        };
        report.records += 1;
        if since.is_some_and(|s| at < s) || until.is_some_and(|u| at > u) {
            continue;
        }
        report.in_range += 1;
        let stamp = (at, record.timestamp.clone());
        span = Some(match span {
            None => (stamp.clone(), stamp),
            Some((first, last)) => (first.min(stamp.clone()), last.max(stamp)),
        });
        let day = rfc3339::format((at.div_euclid(1000)) as i64)[..10].to_string();
        let non_compliance = is_non_compliance(&record);
        rollout.observe(&record, at, non_compliance);
        flagged.observe(&record, at);
        signins.observe(&record, at);
        if non_compliance {
            *daily.entry((day.clone(), record.decision.clone(), record.reason.clone())).or_default() += 1;
        }
        if record.principal.as_deref() == Some("app_user") {
            let counts = compliance.entry((day, id(&record.appid))).or_default();
            counts.total += 1;
            if counts_as_mfa(record.amr.as_deref()) {
                counts.compliant += 1;
            }
        }
        if non_compliance {
            let key = (
                record.decision.clone(),
                record.reason.clone(),
                id(&record.appid),
                id(&record.tid),
                id(&record.oid),
                id(&record.upn_sha256),
            );
            let seen = principals.entry(key).or_insert_with(|| Seen {
                count: 0,
                first: (at, record.timestamp.clone()),
                last: (at, record.timestamp.clone()),
                routes: BTreeSet::new(),
            });
            seen.count += 1;
            if at < seen.first.0 {
                seen.first = (at, record.timestamp.clone());
            }
            if at > seen.last.0 {
                seen.last = (at, record.timestamp.clone());
            }
            seen.routes.insert(record.route.clone());
        }
    }
    if report.records == 0 && !report.unreadable.is_empty() {
        return Err(ReportError(format!("{names} holds no decision records")));
    }
    report.compliance = compliance
        .into_iter()
        .map(|((login_date, application_id), c)| Compliance {
            login_date,
            application_id,
            mfa_compliant_request_count: c.compliant,
            total_request_count: c.total,
        })
        .collect();
    report.non_compliant = principals
        .into_iter()
        .map(|((decision, reason, application_id, tenant_id, object_id, upn_sha256), s)| NonCompliant {
            decision,
            reason,
            application_id,
            tenant_id,
            object_id,
            upn_sha256,
            count: s.count,
            first_seen: s.first.1,
            last_seen: s.last.1,
            routes: s.routes.into_iter().collect(),
        })
        .collect();
    // Most frequent first; ties in key order.
    report.non_compliant.sort_by_key(|n| std::cmp::Reverse(n.count));
    report.daily =
        daily.into_iter().map(|((date, decision, reason), count)| Daily { date, decision, reason, count }).collect();
    if let Some(((_, first), (_, last))) = span {
        (report.first_record, report.last_record) = (Some(first), Some(last));
    }
    (report.routes, report.exemptions) = rollout.finish(config, now);
    report.compute = flagged.finish();
    report.signins = signins.finish();
    Ok(report)
}

/// A decision about the caller's credentials that stopped the request, or
/// would have: not routing, request syntax, the upstream, or our own keys.
fn is_non_compliance(record: &AuditRecord) -> bool {
    matches!(record.decision.as_str(), "deny" | "would_deny" | "exempt")
        && Reason::parse(&record.reason).is_some_and(|r| r.waivable() && r != Reason::KeysUnavailable)
}

fn id(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// An RFC 3339 instant, a date, or a duration back from `now_ms`, in milliseconds.
fn instant(value: &str, now_ms: i128) -> Option<i128> {
    if let Some(ms) = rfc3339::parse_millis(value) {
        return Some(ms);
    }
    let back = humantime::parse_duration(value.trim()).ok()?;
    Some(now_ms - back.as_millis() as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_take_instants_dates_and_durations() {
        let now = 1_775_000_000_000;
        assert_eq!(instant("2026-04-01", now), Some(1_775_001_600_000));
        assert_eq!(instant("2026-04-01T00:00:00.250Z", now), Some(1_775_001_600_250));
        assert_eq!(instant("7d", now), Some(now - 7 * 86_400_000));
        assert_eq!(instant("12h", now), Some(now - 12 * 3_600_000));
        assert_eq!(instant("yesterday", now), None);
    }

    #[test]
    fn only_credential_decisions_are_non_compliance() {
        let record = |decision: &str, reason: &str| AuditRecord {
            decision: decision.into(),
            reason: reason.into(),
            ..AuditRecord::default()
        };
        assert!(is_non_compliance(&record("deny", "mfa_required")));
        assert!(is_non_compliance(&record("would_deny", "public_client")));
        assert!(is_non_compliance(&record("exempt", "privileged_role")));
        assert!(is_non_compliance(&record("deny", "legacy_auth")));
        assert!(!is_non_compliance(&record("allow", "none")));
        assert!(!is_non_compliance(&record("deny", "no_route")));
        assert!(!is_non_compliance(&record("deny", "keys_unavailable")));
        assert!(!is_non_compliance(&record("deny", "bad_request")));
        assert!(!is_non_compliance(&record("deny", "invented")));
    }
}
