//! The sections that say who is not compliant and what is planned: the
//! applications and principals, the staged routes and the exemptions.

use std::collections::{BTreeMap, BTreeSet};

use super::{Markup, instant, or_none, relative, seen, when};
use crate::tools::report::{ExemptionStatus, Report, RouteStatus, signins_by_reason};

pub(super) fn applications(m: &mut Markup, r: &Report) {
    m.raw("<section><h2>Non-compliant applications</h2>\n");
    #[derive(Default)]
    struct App<'a> {
        counts: [u64; 3],
        reasons: BTreeSet<&'a str>,
        principals: BTreeSet<(&'a str, &'a str, &'a str)>,
        first: Option<(i128, &'a str)>,
        last: Option<(i128, &'a str)>,
    }
    let mut apps: BTreeMap<&str, App<'_>> = BTreeMap::new();
    for n in &r.non_compliant {
        let a = apps.entry(n.application_id.as_str()).or_default();
        let slot = match n.decision.as_str() {
            "deny" => 0,
            "would_deny" => 1,
            _ => 2,
        };
        a.counts[slot] += n.count;
        a.reasons.insert(&n.reason);
        a.principals.insert((&n.tenant_id, &n.object_id, &n.upn_sha256));
        let (first, last) = (instant(&n.first_seen), instant(&n.last_seen));
        if a.first.is_none_or(|(t, _)| first < t) {
            a.first = Some((first, &n.first_seen));
        }
        if a.last.is_none_or(|(t, _)| last > t) {
            a.last = Some((last, &n.last_seen));
        }
    }
    if apps.is_empty() {
        m.raw("<p>None: no request in the period was denied, would have been denied or needed an exemption.</p></section>\n");
        return;
    }
    let mut rows: Vec<(&str, App<'_>)> = apps.into_iter().collect();
    rows.sort_by_key(|(_, a)| std::cmp::Reverse(a.counts.iter().sum::<u64>()));
    m.raw("<table><thead><tr><th>Application</th><th>Denied</th><th>Would be denied</th><th>Exempt</th><th>Reasons</th><th>Principals</th><th>First seen</th><th>Last seen</th></tr></thead><tbody>\n");
    for (app, a) in &rows {
        m.raw("<tr><td class=\"id\">").text(or_none(app)).raw("</td>");
        for c in a.counts {
            m.raw("<td class=\"n\">").int(c).raw("</td>");
        }
        m.raw("<td class=\"code\">")
            .text(&a.reasons.iter().copied().collect::<Vec<_>>().join(", "))
            .raw("</td><td class=\"n\">");
        m.int(a.principals.len() as u64).raw("</td><td>");
        when(m, a.first.map_or("", |f| f.1));
        m.raw("</td><td>");
        when(m, a.last.map_or("", |l| l.1));
        m.raw("</td></tr>\n");
    }
    m.raw("</tbody></table></section>\n");
}

pub(super) fn principals(m: &mut Markup, r: &Report) {
    m.raw("<section><h2>Non-compliant principals</h2>\n<p class=\"note\">Each principal and application with the reason that stopped it (or would have, or that an exemption waived). The decision log keeps user names only as SHA-256 fingerprints of the lower-cased name.</p>\n");
    if r.non_compliant.is_empty() {
        m.raw("<p>None.</p></section>\n");
        return;
    }
    m.raw("<table><thead><tr><th>Decision</th><th>Reason</th><th>Application</th><th>Tenant</th><th>Object</th><th>User (SHA-256)</th><th>Requests</th><th>First seen</th><th>Last seen</th><th>Routes</th></tr></thead><tbody>\n");
    for n in &r.non_compliant {
        m.raw("<tr><td>").text(&n.decision).raw("</td><td class=\"code\">").text(&n.reason).raw("</td>");
        for id in [&n.application_id, &n.tenant_id, &n.object_id] {
            m.raw("<td class=\"id\">").text(or_none(id)).raw("</td>");
        }
        m.raw("<td class=\"id\">").short(or_none(&n.upn_sha256), 16).raw("</td><td class=\"n\">").int(n.count);
        m.raw("</td><td>");
        when(m, &n.first_seen);
        m.raw("</td><td>");
        when(m, &n.last_seen);
        m.raw("</td><td>");
        m.text(&n.routes.join(", ")).raw("</td></tr>\n");
    }
    m.raw("</tbody></table></section>\n");
}

pub(super) fn compute(m: &mut Markup, r: &Report) {
    m.raw("<section><h2>Azure fraud: compute requests flagged</h2>\n<p class=\"note\">ARM requests compute_guard found shaped like crypto-mining compute (GPU or HPC sizes, too many vCPUs or regions in an hour, quota increases, bodies that could not be read), by customer, principal and application. Microsoft asks partners to act on these at once.</p>\n");
    if r.compute.is_empty() {
        m.raw("<p>None.</p></section>\n");
        return;
    }
    m.raw("<table><thead><tr><th>Customer</th><th>Object</th><th>Application</th><th>Decision</th><th>Kinds</th><th>Sizes</th><th>Regions</th><th>Subscriptions</th><th>Requests</th><th>First seen</th><th>Last seen</th></tr></thead><tbody>\n");
    for c in &r.compute {
        m.raw("<tr>");
        for id in [&c.tenant_id, &c.object_id, &c.application_id] {
            m.raw("<td class=\"id\">").text(or_none(id)).raw("</td>");
        }
        m.raw("<td>").text(&c.decision).raw("</td><td class=\"code\">").text(&c.kinds.join(", ")).raw("</td>");
        for list in [&c.sizes, &c.regions, &c.subscriptions] {
            m.raw("<td>").text(or_none(&list.join(", "))).raw("</td>");
        }
        m.raw("<td class=\"n\">").int(c.count).raw("</td><td>");
        when(m, &c.first_seen);
        m.raw("</td><td>");
        when(m, &c.last_seen);
        m.raw("</td></tr>\n");
    }
    m.raw("</tbody></table></section>\n");
}

pub(super) fn routes(m: &mut Markup, r: &Report) {
    m.raw("<section><h2>Staged routes and enforce dates</h2>\n");
    if r.config.is_none() {
        m.raw("<p class=\"note\">From the log alone: each route's mode as its decisions recorded it. The enforce dates, the routes' configured modes and the rules with a mode of their own are in the configuration: run the report with --config to show them.</p>\n");
    }
    let (staged, steady): (Vec<&RouteStatus>, Vec<&RouteStatus>) = r.routes.iter().partition(|s| s.is_staged());
    if staged.is_empty() {
        m.raw("<p>No route is staged: every route enforces.</p>\n");
    } else {
        m.raw("<table><thead><tr><th>Route</th><th>Configured mode</th><th>Enforces from</th><th>Rules with their own mode</th><th>Report-only in the log</th><th>Enforcing in the log</th><th>Would be denied</th></tr></thead><tbody>\n");
        for s in staged {
            m.raw("<tr><td>").text(&s.route).raw("</td><td>").text(s.mode.as_deref().unwrap_or("–")).raw("</td><td>");
            match (&s.enforce_after, s.mode.as_deref()) {
                (Some(after), _) => {
                    when(m, after);
                    m.raw(" (");
                    relative(m, s.enforce_in_secs.unwrap_or(0));
                    m.raw(")")
                }
                (None, Some("report-only")) => m.raw("report-only, no enforce date"),
                (None, Some(_)) => m.raw("enforcing"),
                (None, None) => m.raw("–"),
            };
            m.raw("</td><td class=\"code\">").text(&s.rule_modes.join(", ")).raw("</td><td>");
            seen(m, &s.report_only, "decisions");
            m.raw("</td><td>");
            seen(m, &s.enforce, "decisions");
            m.raw("</td><td>").int(s.would_deny).raw(" would be denied</td></tr>\n");
        }
        m.raw("</tbody></table>\n");
    }
    if !steady.is_empty() {
        m.raw("<p>Enforcing throughout: ");
        for (i, s) in steady.iter().enumerate() {
            if i > 0 {
                m.raw(", ");
            }
            m.text(&s.route);
        }
        m.raw(".</p>\n");
    }
    m.raw("</section>\n");
}

pub(super) fn exemptions(m: &mut Markup, r: &Report) {
    m.raw("<section><h2>Exemptions</h2>\n<p class=\"note\">A principal (oid) or application (appid) that the rules let through for a stated reason until a stated instant; token checks still apply.</p>\n");
    if r.exemptions.is_empty() {
        m.raw("<p>None configured");
        if r.config.is_none() {
            m.raw(" (no configuration read)");
        }
        m.raw(", and none applied in the period.</p></section>\n");
        return;
    }
    m.raw("<table><thead><tr><th>Covers</th><th>Reason</th><th>Expires</th><th>State</th><th>Routes</th><th>Let through</th><th>Matched after expiry</th></tr></thead><tbody>\n");
    for e in &r.exemptions {
        exemption(m, e);
    }
    m.raw("</tbody></table></section>\n");
}

fn exemption(m: &mut Markup, e: &ExemptionStatus) {
    m.raw("<tr><td>");
    match (&e.covers, &e.id) {
        (Some(covers), Some(id)) => m.text(covers).raw(" <span class=\"id\">").text(id).raw("</span>"),
        _ => m.raw("not in the configuration"),
    };
    m.raw("</td><td>").text(&e.reason).raw("</td><td>");
    if let Some(expires) = &e.expires {
        when(m, expires);
        m.raw(" (");
        relative(m, e.expires_in_secs.unwrap_or(0));
        m.raw(")");
    }
    m.raw("</td><td>");
    match e.state.as_deref() {
        Some("active") => m.raw("<span class=\"active\">active</span>"),
        Some(_) => m.raw("<span class=\"expired\">expired</span>"),
        None => m.raw("–"),
    };
    m.raw("</td><td>").text(&e.routes.join(", ")).raw("</td><td>");
    seen(m, &e.let_through, "requests");
    m.raw("</td><td>");
    seen(m, &e.matched_expired, "requests");
    m.raw("</td></tr>\n");
}

pub(super) fn signins(m: &mut Markup, r: &Report) {
    m.raw("<section><h2>Sign-in review</h2>\n<p class=\"note\">Token requests through the gateway's login routes, by the tenant in the path, the client, the grant and how the client authenticated (none, secret, assertion: a certificate). No secret, code, assertion or password is logged.</p>\n");
    if r.signins.is_empty() {
        m.raw("<p>None.</p></section>\n");
        return;
    }
    m.raw("<table><thead><tr><th>Tenant</th><th>Client</th><th>Grant</th><th>Client authentication</th><th>Requests</th><th>Forwarded</th><th>Issued</th><th>Denied</th><th>Would be denied</th><th>First seen</th><th>Last seen</th></tr></thead><tbody>\n");
    for s in &r.signins {
        m.raw("<tr><td class=\"id\">")
            .text(or_none(&s.tenant))
            .raw("</td><td class=\"id\">")
            .text(or_none(&s.client_id));
        m.raw("</td><td class=\"code\">").text(or_none(&s.grant_type)).raw("</td><td>").text(&s.client_auth);
        m.raw("</td><td class=\"n\">").int(s.count).raw("</td><td class=\"n\">").int(s.forwarded);
        m.raw("</td><td class=\"n\">").int(s.issued).raw("</td><td class=\"code\">");
        m.text(&signins_by_reason(&s.denied)).raw("</td><td class=\"code\">");
        m.text(&signins_by_reason(&s.would_deny)).raw("</td><td>");
        when(m, &s.first_seen);
        m.raw("</td><td>");
        when(m, &s.last_seen);
        m.raw("</td></tr>\n");
    }
    m.raw("</tbody></table></section>\n");
}
