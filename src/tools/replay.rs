//! `mfagate replay`: the what-if before a rollout. Reads a decision log,
//! decides every record again under a candidate configuration (at the
//! record's own time, or `--at`), and prints the decisions that would
//! change. The policy is a pure function of what the log records, so a
//! replayed decision is the decision the gateway would have taken.
//!
//! What is replayed: the rules, from the recorded claims; the mode of a
//! failed token check (which stays failed); the password grant on login
//! routes. What is not: routing and request errors, and records of routes
//! the candidate does not have (counted).

use super::merge::{Line, Merged};
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::check_token::EXIT_DENY;
use crate::audit::{AuditRecord, AuxiliaryRecord};
use crate::auth::claims::Claims;
use crate::cli::ReplayArgs;
use crate::config::{Config, ConfigError, RouteConfig, Source};
use crate::error::Reason;
use crate::policy::{self, Facts, Presented, RouteKind};
use crate::reason::Class;
use crate::rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Input(String),
}

pub fn run(source: &Source, args: &ReplayArgs) -> ExitCode {
    match replay(source, args) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report.to_json()).unwrap_or_default());
            } else {
                print!("{}", report.to_text());
            }
            if report.newly_denied() > 0 { ExitCode::from(EXIT_DENY) } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One decision that would change.
#[derive(Debug, Serialize)]
pub struct Change {
    pub line: usize,
    pub timestamp: String,
    pub route: String,
    pub correlation_id: String,
    pub appid: Option<String>,
    pub oid: Option<String>,
    pub before: Replayed,
    pub after: Replayed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    pub decision: String,
    pub reason: String,
}

impl Replayed {
    fn new(decision: &str, reason: Option<Reason>) -> Self {
        Self { decision: decision.into(), reason: reason.map_or("none", Reason::as_str).into() }
    }

    /// Sent upstream (allowed, exempt, or only reported).
    fn forwarded(&self) -> bool {
        self.decision != "deny"
    }
}

impl std::fmt::Display for Replayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason.as_str() {
            "none" => write!(f, "{}", self.decision),
            reason => write!(f, "{} ({reason})", self.decision),
        }
    }
}

#[derive(Debug, Default)]
pub struct ReplayReport {
    pub source: String,
    pub records: usize,
    pub changes: Vec<Change>,
    /// Records of routes the candidate does not have, by route name.
    pub missing_routes: Vec<(String, usize)>,
    /// Records that cannot be replayed (routing and request errors).
    pub not_replayed: usize,
    /// Line numbers that are not decision records.
    pub unreadable: Vec<usize>,
}

impl ReplayReport {
    /// Forwarded then, denied now.
    pub fn newly_denied(&self) -> usize {
        self.changes.iter().filter(|c| c.before.forwarded() && !c.after.forwarded()).count()
    }

    pub fn newly_forwarded(&self) -> usize {
        self.changes.iter().filter(|c| !c.before.forwarded() && c.after.forwarded()).count()
    }
}

fn replay(source: &Source, args: &ReplayArgs) -> Result<ReplayReport, ReplayError> {
    let config = Config::load(source)?;
    let at = match &args.at {
        Some(s) => Some(
            rfc3339::parse(s).ok_or_else(|| ReplayError::Input(format!("--at {s:?}: not an RFC 3339 date-time")))?,
        ),
        None => None,
    };
    let input = Merged::open(&args.logs).map_err(ReplayError::Input)?;
    let mut report = ReplayReport { source: source.describe(), ..ReplayReport::default() };
    for line in input {
        let Line { number, text: line } = line.map_err(ReplayError::Input)?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(record) = serde_json::from_str::<AuditRecord>(&line) else {
            report.unreadable.push(number);
            continue;
        };
        report.records += 1;
        let Some(now) = at.or_else(|| rfc3339::parse_millis(&record.timestamp).map(|ms| (ms / 1000) as i64)) else {
            report.unreadable.push(number);
            continue;
        };
        let Some(route) = config.routes.iter().find(|r| r.name == record.route) else {
            match report.missing_routes.iter_mut().find(|(name, _)| *name == record.route) {
                Some((_, n)) => *n += 1,
                None => report.missing_routes.push((record.route.clone(), 1)),
            }
            continue;
        };
        let before = Replayed { decision: record.decision.clone(), reason: record.reason.clone() };
        let Some(after) = decide(route, &record, now) else {
            report.not_replayed += 1;
            continue;
        };
        if after != before {
            report.changes.push(Change {
                line: number,
                timestamp: record.timestamp.clone(),
                route: record.route.clone(),
                correlation_id: record.correlation_id.clone(),
                appid: record.appid.clone(),
                oid: record.oid.clone(),
                before,
                after,
            });
        }
    }
    if report.records == 0 && !report.unreadable.is_empty() {
        return Err(ReplayError::Input(format!("{} holds no decision records", Merged::describe(&args.logs))));
    }
    Ok(report)
}

/// The record's decision under `route`'s policy at `now`, by the gateway's
/// own `decide` on the facts the record holds; `None` when it cannot be
/// replayed (routing, request, egress and capacity refusals).
pub fn decide(route: &RouteConfig, record: &AuditRecord, now: i64) -> Option<Replayed> {
    let reason = match record.reason.as_str() {
        "none" => None,
        code => Some(Reason::parse(code)?),
    };
    if reason.is_some_and(|r| !r.waivable()) {
        return None;
    }
    let facts = facts(route, record, reason)?;
    let decision = policy::decide(&route.policy, &facts, now).decision;
    Some(Replayed::new(decision.as_str(), decision.reason()))
}

/// The facts of a decision, as its record wrote them down. Records written
/// before the log had `findings` and `token_error` are read from their
/// reason.
pub fn facts(route: &RouteConfig, record: &AuditRecord, reason: Option<Reason>) -> Option<Facts> {
    let mut findings: Vec<Reason> =
        record.findings.as_deref().unwrap_or_default().split(',').filter_map(Reason::parse).collect();
    // A finding of a rule the route no longer configures (compute_guard
    // taken off) is no failure under it.
    findings.retain(|r| r.rule().is_none_or(|rule| route.policy.configures(rule)));
    if route.policy.kind == RouteKind::Login {
        let password = record.grant_type.as_deref().is_some_and(|g| g.eq_ignore_ascii_case("password"));
        if record.findings.is_none() && password {
            findings.push(Reason::PasswordGrant);
        }
        return Some(Facts { findings, ..Facts::default() });
    }
    let token = match (&record.token_error, record.verified) {
        (Some(code), verified) => {
            let claims = (verified == Some(true)).then(|| Arc::new(claims(record)));
            Presented::Failed { reason: Reason::parse(code)?, claims }
        }
        (None, Some(verified)) => Presented::Checked { claims: Arc::new(claims(record)), verified },
        // An older record: no claims means the token never reached the rules.
        (None, None) => match reason? {
            Reason::LegacyAuth => {
                if !findings.contains(&Reason::LegacyAuth) {
                    findings.push(Reason::LegacyAuth);
                }
                Presented::failed(Reason::MissingToken)
            }
            r if r.class() == Class::Credential => Presented::failed(r),
            _ => return None,
        },
    };
    let auxiliary = record
        .auxiliary
        .iter()
        .flatten()
        .map(|a| match &a.token_error {
            Some(code) => Reason::parse(code).map(Presented::failed),
            None => Some(Presented::Checked {
                claims: Arc::new(auxiliary_claims(a)),
                verified: a.verified.unwrap_or(false),
            }),
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Facts { findings, token: Some(token), auxiliary, customer: record.customer.clone() })
}

/// An auxiliary token's claims, as the decision log recorded them.
fn auxiliary_claims(a: &AuxiliaryRecord) -> Claims {
    let record = AuditRecord {
        tid: a.tid.clone(),
        idp: a.idp.clone(),
        oid: a.oid.clone(),
        appid: a.appid.clone(),
        client: a.client.clone(),
        principal: a.principal.clone(),
        ver: a.ver.clone(),
        amr: a.amr.clone(),
        wids: a.wids.clone(),
        xms_cc: a.xms_cc.clone(),
        acrs: a.acrs.clone(),
        ..AuditRecord::default()
    };
    claims(&record)
}

/// The claims the rules read, as the decision log recorded them.
pub fn claims(r: &AuditRecord) -> Claims {
    Claims {
        tid: r.tid.clone(),
        idp: r.idp.clone(),
        oid: r.oid.clone(),
        appid: r.appid.clone(),
        appidacr: match r.client.as_deref() {
            Some("public") => Some("0".into()),
            Some("secret") => Some("1".into()),
            Some("certificate") => Some("2".into()),
            _ => None,
        },
        idtyp: match r.principal.as_deref() {
            Some("app_only") => Some("app".into()),
            Some("app_user") => Some("user".into()),
            _ => None,
        },
        ver: r.ver.clone().filter(|v| v != "unknown"),
        amr: r.amr.clone(),
        wids: r.wids.clone(),
        xms_cc: r.xms_cc.clone(),
        acrs: r.acrs.clone(),
        ..Claims::default()
    }
}

impl ReplayReport {
    fn to_json(&self) -> serde_json::Value {
        json!({
            "config": self.source,
            "records": self.records,
            "changed": self.changes.len(),
            "newly_denied": self.newly_denied(),
            "newly_forwarded": self.newly_forwarded(),
            "not_replayed": self.not_replayed,
            "missing_routes": self.missing_routes.iter().map(|(r, n)| json!({"route": r, "records": n})).collect::<Vec<_>>(),
            "unreadable_lines": self.unreadable,
            "changes": self.changes,
        })
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            out.push_str(&format!(
                "{}  {}  {} -> {}  correlation={} appid={} oid={}\n",
                c.timestamp,
                c.route,
                c.before,
                c.after,
                c.correlation_id,
                c.appid.as_deref().unwrap_or("-"),
                c.oid.as_deref().unwrap_or("-"),
            ));
        }
        out.push_str(&format!(
            "{} decisions replayed under {}: {} would change ({} newly denied, {} newly forwarded, {} other)\n",
            self.records,
            self.source,
            self.changes.len(),
            self.newly_denied(),
            self.newly_forwarded(),
            self.changes.len() - self.newly_denied() - self.newly_forwarded(),
        ));
        for (route, n) in &self.missing_routes {
            out.push_str(&format!(
                "{n} records of route {route:?}, which the configuration does not have: not replayed\n"
            ));
        }
        if self.not_replayed > 0 {
            out.push_str(&format!("{} routing or request errors: not replayed\n", self.not_replayed));
        }
        if !self.unreadable.is_empty() {
            let lines: Vec<String> = self.unreadable.iter().map(usize::to_string).collect();
            out.push_str(&format!("unreadable lines skipped: {}\n", lines.join(", ")));
        }
        out
    }
}
