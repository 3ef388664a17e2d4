//! The rollout as the decision log and the configuration show it. The log
//! records each decision's mode at that instant and the reason of the
//! exemption that applied: the evidence of what happened. Only the
//! configuration knows what is planned: a route's `enforce_after`, its rules'
//! own modes, and when each exemption expires. Both go into one row per
//! route and one per exemption.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::AuditRecord;
use crate::config::{Config, UNMATCHED_ROUTE};
use crate::policy::{Exemption, Mode, Selector};
use crate::reason::Rule;
use crate::rfc3339;

/// How many records, and the first and last of them (RFC 3339, as logged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub count: u64,
    pub first: Option<String>,
    pub last: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Span {
    count: u64,
    first: Option<(i128, String)>,
    last: Option<(i128, String)>,
}

impl Span {
    fn note(&mut self, at: i128, timestamp: &str) {
        self.count += 1;
        if self.first.as_ref().is_none_or(|(t, _)| at < *t) {
            self.first = Some((at, timestamp.to_string()));
        }
        if self.last.as_ref().is_none_or(|(t, _)| at > *t) {
            self.last = Some((at, timestamp.to_string()));
        }
    }

    fn add(&mut self, other: &Span) {
        self.count += other.count;
        for (at, ts) in other.first.iter().chain(&other.last) {
            if self.first.as_ref().is_none_or(|(t, _)| at < t) {
                self.first = Some((*at, ts.clone()));
            }
            if self.last.as_ref().is_none_or(|(t, _)| at > t) {
                self.last = Some((*at, ts.clone()));
            }
        }
    }

    fn seen(&self) -> Seen {
        Seen {
            count: self.count,
            first: self.first.as_ref().map(|(_, ts)| ts.clone()),
            last: self.last.as_ref().map(|(_, ts)| ts.clone()),
        }
    }
}

/// One route: its configured schedule (when the configuration was read) and
/// what the log shows of it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    pub route: String,
    /// The configured mode, `enforce` or `report-only`; absent when no
    /// configuration was read or it has no such route.
    pub mode: Option<String>,
    /// From when an enforcing route enforces (report-only before).
    pub enforce_after: Option<String>,
    /// Seconds from the report's making to `enforce_after` (negative: passed).
    pub enforce_in_secs: Option<i64>,
    /// Rules of the route with a mode of their own, `rule = mode`.
    pub rule_modes: Vec<String>,
    /// Decisions taken while the route was report-only.
    pub report_only: Seen,
    /// Decisions taken while it enforced.
    pub enforce: Seen,
    /// Of the non-compliant decisions, those it let through (report-only)
    /// and those it denied.
    pub would_deny: u64,
    pub denied: u64,
}

impl RouteStatus {
    /// Not simply enforcing throughout: report-only now or in the log, an
    /// enforce date, or a rule with a mode of its own.
    pub fn is_staged(&self) -> bool {
        self.mode.as_deref() == Some(Mode::ReportOnly.as_str())
            || self.enforce_after.is_some()
            || !self.rule_modes.is_empty()
            || self.report_only.count > 0
            || self.would_deny > 0
    }
}

/// One exemption: as configured, and the requests it let through.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExemptionStatus {
    /// `oid` or `appid`, and its value, from the configuration.
    pub covers: Option<String>,
    pub id: Option<String>,
    pub reason: String,
    pub expires: Option<String>,
    /// Seconds from the report's making to `expires` (negative: expired).
    pub expires_in_secs: Option<i64>,
    /// At the report's making: `active` or `expired`; absent for an
    /// exemption the log names and the configuration does not hold.
    pub state: Option<String>,
    /// The routes it applies to (configured).
    pub routes: Vec<String>,
    /// Requests it let through.
    pub let_through: Seen,
    /// Requests it matched after it had expired (so it no longer applied).
    pub matched_expired: Seen,
}

/// What the log says, gathered record by record.
#[derive(Default)]
pub struct Rollout {
    routes: BTreeMap<String, RouteLog>,
    /// By exemption reason, `oid` and `appid` (lower-case), whether it had
    /// expired: enough to tell configured exemptions apart.
    uses: BTreeMap<(String, String, String, bool), Span>,
}

#[derive(Default)]
struct RouteLog {
    report_only: Span,
    enforce: Span,
    would_deny: u64,
    denied: u64,
}

impl Rollout {
    /// Notes one record in range; `non_compliance` as the report decides it.
    pub fn observe(&mut self, record: &AuditRecord, at: i128, non_compliance: bool) {
        if record.route != UNMATCHED_ROUTE {
            let mode = Mode::parse(&record.mode);
            if mode.is_some() || self.routes.contains_key(&record.route) {
                let route = self.routes.entry(record.route.clone()).or_default();
                match mode {
                    Some(Mode::ReportOnly) => route.report_only.note(at, &record.timestamp),
                    Some(Mode::Enforce) => route.enforce.note(at, &record.timestamp),
                    None => {}
                }
                match record.decision.as_str() {
                    "would_deny" if non_compliance => route.would_deny += 1,
                    "deny" if non_compliance => route.denied += 1,
                    _ => {}
                }
            }
        }
        let id = |v: &Option<String>| v.as_deref().unwrap_or_default().to_lowercase();
        let uses = [
            (record.exemption.as_ref().filter(|_| record.decision == "exempt"), false),
            (record.expired_exemption.as_ref(), true),
        ];
        for (reason, expired) in uses {
            if let Some(reason) = reason {
                let key = (reason.clone(), id(&record.oid), id(&record.appid), expired);
                self.uses.entry(key).or_default().note(at, &record.timestamp);
            }
        }
    }

    /// The routes (configured ones first, in their order) and the
    /// exemptions (configured ones first), as of `now` (unix seconds).
    pub fn finish(self, config: Option<&Config>, now: i64) -> (Vec<RouteStatus>, Vec<ExemptionStatus>) {
        let mut logged = self.routes;
        let mut routes = Vec::new();
        for route in config.map_or(&[][..], |c| &c.routes) {
            let schedule = route.policy.schedule;
            let rule_modes = Rule::ALL
                .into_iter()
                .filter(|r| route.policy.configures(*r))
                .filter_map(|r| route.policy.rule_modes[r as usize].map(|m| format!("{} = {}", r.as_str(), m.as_str())))
                .collect();
            routes.push(status(
                &route.name,
                logged.remove(&route.name).unwrap_or_default(),
                RouteStatus {
                    mode: Some(schedule.mode.as_str().to_string()),
                    enforce_after: schedule.enforce_after.map(rfc3339::format),
                    enforce_in_secs: schedule.enforce_after.map(|t| t - now),
                    rule_modes,
                    ..RouteStatus::default()
                },
            ));
        }
        for (name, log) in logged {
            routes.push(status(&name, log, RouteStatus::default()));
        }

        let mut uses = self.uses;
        let mut exemptions = Vec::new();
        for exemption in config.map_or(&[][..], |c| &c.exemptions) {
            let (mut let_through, mut matched_expired) = (Span::default(), Span::default());
            uses.retain(|(reason, oid, appid, expired), span| {
                let covered = *reason == exemption.reason && covers(exemption, oid, appid);
                if covered {
                    if *expired { matched_expired.add(span) } else { let_through.add(span) }
                }
                !covered
            });
            let (covers, id) = match &exemption.selector {
                Selector::Oid(id) => ("oid", id),
                Selector::AppId(id) => ("appid", id),
            };
            let routes = config
                .map(|c| c.routes.iter().filter(|r| r.policy.exemptions.contains(exemption)).map(|r| r.name.clone()))
                .into_iter()
                .flatten()
                .collect();
            exemptions.push(ExemptionStatus {
                covers: Some(covers.to_string()),
                id: Some(id.clone()),
                reason: exemption.reason.clone(),
                expires: Some(rfc3339::format(exemption.expires)),
                expires_in_secs: Some(exemption.expires - now),
                state: Some(if exemption.is_active(now) { "active" } else { "expired" }.to_string()),
                routes,
                let_through: let_through.seen(),
                matched_expired: matched_expired.seen(),
            });
        }
        // Exemptions the log names and the configuration does not hold (or
        // none was read), by reason.
        let mut unknown: BTreeMap<String, (Span, Span)> = BTreeMap::new();
        for ((reason, _, _, expired), span) in uses {
            let entry = unknown.entry(reason).or_default();
            if expired { entry.1.add(&span) } else { entry.0.add(&span) }
        }
        for (reason, (let_through, matched_expired)) in unknown {
            exemptions.push(ExemptionStatus {
                reason,
                let_through: let_through.seen(),
                matched_expired: matched_expired.seen(),
                ..ExemptionStatus::default()
            });
        }
        (routes, exemptions)
    }
}

fn status(name: &str, log: RouteLog, configured: RouteStatus) -> RouteStatus {
    RouteStatus {
        route: name.to_string(),
        report_only: log.report_only.seen(),
        enforce: log.enforce.seen(),
        would_deny: log.would_deny,
        denied: log.denied,
        ..configured
    }
}

/// Whether `exemption` covers a record with these (lower-case) ids.
fn covers(exemption: &Exemption, oid: &str, appid: &str) -> bool {
    match &exemption.selector {
        Selector::Oid(want) => want.eq_ignore_ascii_case(oid),
        Selector::AppId(want) => want.eq_ignore_ascii_case(appid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(route: &str, mode: &str, decision: &str, ts: &str) -> AuditRecord {
        AuditRecord {
            timestamp: ts.into(),
            route: route.into(),
            mode: mode.into(),
            decision: decision.into(),
            reason: "mfa_required".into(),
            ..AuditRecord::default()
        }
    }

    #[test]
    fn routes_and_exemptions_from_the_log_and_the_configuration() {
        let config = Config::from_toml(&format!(
            "{}enforce_after = \"2026-04-01\"\nrule_modes = {{ deny_roles = \"report-only\" }}\ndeny_roles = [\"62e90394-69f5-4237-9190-012177145e10\"]\n\
             [[exemptions]]\noid = \"02223B6B-AA1D-42D4-9EC0-1B2BB9194438\"\nreason = \"glass\"\nexpires = \"2026-05-01\"\n",
            crate::config::TEST_ROUTE
        ))
        .unwrap();
        let mut rollout = Rollout::default();
        let at = |ts: &str| rfc3339::parse_millis(ts).unwrap();
        for (mode, decision, ts) in [
            ("report-only", "would_deny", "2026-03-02T10:00:00.000Z"),
            ("report-only", "would_deny", "2026-03-01T10:00:00.000Z"),
            ("enforce", "deny", "2026-04-02T10:00:00.000Z"),
        ] {
            rollout.observe(&record("pc", mode, decision, ts), at(ts), true);
        }
        let mut exempt = record("pc", "enforce", "exempt", "2026-04-03T00:00:00.000Z");
        exempt.oid = Some("02223b6b-aa1d-42d4-9ec0-1b2bb9194438".into());
        exempt.exemption = Some("glass".into());
        rollout.observe(&exempt, at(&exempt.timestamp), true);
        exempt.oid = Some("9f1c2e3d-4b5a-4c6d-8e7f-0a1b2c3d4e5f".into());
        rollout.observe(&exempt, at(&exempt.timestamp), true);
        rollout.observe(&record("unmatched", "", "deny", "2026-03-02T10:00:00.000Z"), 0, false);
        rollout.observe(&record("old", "enforce", "allow", "2026-03-02T10:00:00.000Z"), 0, false);

        let now = rfc3339::parse("2026-03-31T00:00:00Z").unwrap();
        let (routes, exemptions) = rollout.finish(Some(&config), now);
        let names: Vec<_> = routes.iter().map(|r| r.route.as_str()).collect();
        assert_eq!(names, ["pc", "old"], "configured first; never the unmatched pseudo-route");
        let pc = &routes[0];
        assert_eq!(pc.enforce_after.as_deref(), Some("2026-04-01T00:00:00Z"));
        assert_eq!(pc.enforce_in_secs, Some(86_400));
        assert_eq!(pc.rule_modes, ["deny_roles = report-only"]);
        assert_eq!(pc.report_only.first.as_deref(), Some("2026-03-01T10:00:00.000Z"));
        assert_eq!(pc.report_only.last.as_deref(), Some("2026-03-02T10:00:00.000Z"));
        assert_eq!((pc.report_only.count, pc.enforce.count, pc.would_deny, pc.denied), (2, 3, 2, 1));
        assert!(pc.is_staged() && !routes[1].is_staged());

        assert_eq!(exemptions.len(), 2);
        let glass = &exemptions[0];
        assert_eq!((glass.covers.as_deref(), glass.state.as_deref()), (Some("oid"), Some("active")));
        assert_eq!(glass.let_through.count, 1, "only the record of the oid it covers");
        assert_eq!(glass.routes, ["pc"]);
        let stray = &exemptions[1];
        assert_eq!((stray.reason.as_str(), stray.state.as_deref(), stray.let_through.count), ("glass", None, 1));
    }
}
