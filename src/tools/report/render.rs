//! The report as text for a terminal, CSV for a spreadsheet (one table at a
//! time, Partner Center's column names), or one JSON object.

use std::borrow::Cow;
use std::fmt::Write;

use super::Report;
use crate::cli::ReportTable;

pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(out, "Decision log: {} ({} records", clean(&report.log), report.records);
    if report.since.is_some() || report.until.is_some() {
        let _ = write!(
            out,
            ", {} from {} to {}",
            report.in_range,
            report.since.as_deref().unwrap_or("the start"),
            report.until.as_deref().unwrap_or("the end")
        );
    }
    if !report.unreadable.is_empty() {
        let _ = write!(out, "; {} unreadable lines skipped", report.unreadable.len());
    }
    out.push_str(")\n\nMFA compliance of app+user requests, by day and application\n");
    if report.compliance.is_empty() {
        out.push_str("  (no app+user requests)\n");
    } else {
        let _ =
            writeln!(out, "  {:<10}  {:<36}  {:>9}  {:>9}  {:>6}", "date", "application", "compliant", "total", "%");
        for c in &report.compliance {
            let percent = 100.0 * c.mfa_compliant_request_count as f64 / c.total_request_count.max(1) as f64;
            let _ = writeln!(
                out,
                "  {:<10}  {:<36}  {:>9}  {:>9}  {:>6.1}",
                clean(&c.login_date),
                or_unknown(&c.application_id),
                c.mfa_compliant_request_count,
                c.total_request_count,
                percent
            );
        }
    }
    out.push_str("\nDenied, would be denied (report-only) or let through by an exemption, by principal\n");
    if report.non_compliant.is_empty() {
        out.push_str("  (none)\n");
    }
    for n in &report.non_compliant {
        let _ = writeln!(
            out,
            "  {} {} x{}  routes: {}",
            clean(&n.decision),
            clean(&n.reason),
            n.count,
            clean(&n.routes.join(", "))
        );
        let _ = writeln!(
            out,
            "      application {}  tenant {}  object {}  upn_sha256 {}",
            or_unknown(&n.application_id),
            or_unknown(&n.tenant_id),
            or_unknown(&n.object_id),
            or_unknown(&n.upn_sha256)
        );
        let _ = writeln!(out, "      first {}  last {}", clean(&n.first_seen), clean(&n.last_seen));
    }
    if !report.compute.is_empty() {
        out.push_str(
            "\nAzure fraud: compute requests flagged (compute_guard), by customer, principal and application\n",
        );
    }
    for c in &report.compute {
        let _ = writeln!(out, "  {} {} x{}", clean(&c.decision), clean(&c.kinds.join(",")), c.count);
        let _ = writeln!(
            out,
            "      customer {}  object {}  application {}",
            or_unknown(&c.tenant_id),
            or_unknown(&c.object_id),
            or_unknown(&c.application_id)
        );
        let _ = writeln!(
            out,
            "      sizes {}  regions {}  subscriptions {}",
            or_unknown(&c.sizes.join(", ")),
            or_unknown(&c.regions.join(", ")),
            or_unknown(&c.subscriptions.join(", "))
        );
        let _ = writeln!(out, "      first {}  last {}", clean(&c.first_seen), clean(&c.last_seen));
    }
    let staged: Vec<_> = report.routes.iter().filter(|r| r.is_staged()).collect();
    if !staged.is_empty() {
        out.push_str("\nStaged routes\n");
    }
    for r in staged {
        let _ = write!(out, "  {}  mode {}", clean(&r.route), clean(r.mode.as_deref().unwrap_or("(not configured)")));
        if let Some(after) = &r.enforce_after {
            let _ = write!(out, "  enforces from {}", clean(after));
        }
        if !r.rule_modes.is_empty() {
            let _ = write!(out, "  rules: {}", clean(&r.rule_modes.join(", ")));
        }
        let _ =
            writeln!(out, "\n      report-only decisions {}, would be denied {}", r.report_only.count, r.would_deny);
    }
    if !report.exemptions.is_empty() {
        out.push_str("\nExemptions\n");
    }
    for e in &report.exemptions {
        match (&e.covers, &e.id) {
            (Some(covers), Some(id)) => {
                let _ = write!(out, "  {} {}", clean(covers), clean(id));
            }
            _ => out.push_str("  (not configured)"),
        }
        let _ = write!(out, "  {:?}", e.reason);
        if let (Some(expires), Some(state)) = (&e.expires, &e.state) {
            let _ = write!(out, "  expires {} ({})", clean(expires), clean(state));
        }
        let _ = writeln!(
            out,
            "\n      let through {}, matched after expiry {}",
            e.let_through.count, e.matched_expired.count
        );
    }
    if !report.signins.is_empty() {
        out.push('\n');
        signins_table(&mut out, report);
    }
    let (deny, would, exempt) = report.non_compliant.iter().fold((0, 0, 0), |(d, w, e), n| match n.decision.as_str() {
        "deny" => (d + n.count, w, e),
        "would_deny" => (d, w + n.count, e),
        _ => (d, w, e + n.count),
    });
    let _ = writeln!(out, "\nSummary: {deny} denied, {would} would be denied, {exempt} exempt");
    out
}

/// The sign-in review alone (`--table signins`).
pub fn signins_text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Decision log: {} ({} records)\n", clean(&report.log), report.records);
    signins_table(&mut out, report);
    out
}

fn signins_table(out: &mut String, report: &Report) {
    out.push_str("Sign-ins (token requests on login routes), by tenant, client, grant and client authentication\n");
    if report.signins.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let _ = writeln!(
        out,
        "  {:<36}  {:<36}  {:<24}  {:<9}  {:>5}  {:>6}  {:>6}  denied / would deny",
        "tenant", "client", "grant", "auth", "count", "fwd", "issued"
    );
    for s in &report.signins {
        // The grants in full, as the row is keyed: a shortened name would
        // show two rows under one key.
        let grant = &s.grant_type;
        let mut line = format!(
            "  {:<36}  {:<36}  {:<24}  {:<9}  {:>5}  {:>6}  {:>6}  {}",
            or_unknown(&s.tenant),
            or_unknown(&s.client_id),
            or_unknown(grant),
            clean(&s.client_auth),
            s.count,
            s.forwarded,
            s.issued,
            clean(&super::signins::by_reason(&s.denied))
        );
        if !s.would_deny.is_empty() {
            let _ = write!(line, " / {}", clean(&super::signins::by_reason(&s.would_deny)));
        }
        let _ = writeln!(out, "{}", line.trim_end());
        let _ = writeln!(out, "      first {}  last {}", clean(&s.first_seen), clean(&s.last_seen));
    }
}

pub fn csv(report: &Report, table: ReportTable) -> String {
    let mut out = String::new();
    match table {
        ReportTable::Compliance => {
            out.push_str("loginDate,applicationId,mfaCompliantRequestCount,totalRequestCount\n");
            for c in &report.compliance {
                let _ = writeln!(
                    out,
                    "{},{},{},{}",
                    field(&c.login_date),
                    field(&c.application_id),
                    c.mfa_compliant_request_count,
                    c.total_request_count
                );
            }
        }
        ReportTable::Denials => {
            out.push_str("decision,reason,applicationId,tenantId,objectId,upnSha256,count,firstSeen,lastSeen,routes\n");
            for n in &report.non_compliant {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{}",
                    field(&n.decision),
                    field(&n.reason),
                    field(&n.application_id),
                    field(&n.tenant_id),
                    field(&n.object_id),
                    field(&n.upn_sha256),
                    n.count,
                    field(&n.first_seen),
                    field(&n.last_seen),
                    field(&n.routes.join(" "))
                );
            }
        }
        ReportTable::Compute => {
            out.push_str(
                "tenantId,objectId,applicationId,decision,kinds,sizes,regions,subscriptions,count,firstSeen,lastSeen\n",
            );
            for c in &report.compute {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    field(&c.tenant_id),
                    field(&c.object_id),
                    field(&c.application_id),
                    field(&c.decision),
                    field(&c.kinds.join(" ")),
                    field(&c.sizes.join(" ")),
                    field(&c.regions.join(" ")),
                    field(&c.subscriptions.join(" ")),
                    c.count,
                    field(&c.first_seen),
                    field(&c.last_seen)
                );
            }
        }
        ReportTable::Signins => {
            out.push_str(
                "tenant,clientId,grantType,clientAuth,count,forwarded,issued,denied,wouldDeny,firstSeen,lastSeen\n",
            );
            for s in &report.signins {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    field(&s.tenant),
                    field(&s.client_id),
                    field(&s.grant_type),
                    field(&s.client_auth),
                    s.count,
                    s.forwarded,
                    s.issued,
                    field(&super::signins::by_reason(&s.denied)),
                    field(&super::signins::by_reason(&s.would_deny)),
                    field(&s.first_seen),
                    field(&s.last_seen)
                );
            }
        }
    }
    out
}

pub fn json(report: &Report) -> String {
    let mut out = serde_json::to_string_pretty(report).unwrap_or_default();
    out.push('\n');
    out
}

fn or_unknown(s: &str) -> Cow<'_, str> {
    if s.is_empty() { Cow::Borrowed("-") } else { clean(s) }
}

/// `s` with every control character (escape sequences, line breaks) as
/// U+FFFD: the text report goes to a terminal, and the log's strings come
/// from tokens and requests, so one must neither drive the terminal nor
/// start a line of its own (a forged summary).
fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(s.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break. A
/// leading `=`, `+`, `-` or `@` is prefixed with `'` so that a spreadsheet
/// never runs a value from the log as a formula.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sign_in_row_shows_the_grants_it_is_keyed_by() {
        let row = |grant: &str| crate::tools::report::SignIn {
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: "23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21".into(),
            grant_type: grant.into(),
            client_auth: "none".into(),
            count: 1,
            forwarded: 0,
            issued: 0,
            denied: Default::default(),
            would_deny: Default::default(),
            first_seen: "t".into(),
            last_seen: "t".into(),
        };
        let both = "client_credentials urn:ietf:params:oauth:grant-type:device_code";
        let device = "urn:ietf:params:oauth:grant-type:device_code";
        let report = Report { signins: vec![row(both), row(device)], ..Report::default() };
        let text = signins_text(&report);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("contoso")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_ne!(lines[0], lines[1], "two rows, two keys shown: {text}");
        assert!(lines[0].contains(both) && lines[1].contains(device), "{text}");
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("-1,2"), "\"'-1,2\"");
    }
}
