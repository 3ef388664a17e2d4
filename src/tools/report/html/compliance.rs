//! The sections that answer "do callers use MFA": per day, per
//! application, and the denials by reason over time, each a chart and the
//! table of its figures.

use std::collections::BTreeMap;

use super::{COLOURS, Markup, or_none, percent, share};
use crate::error::Reason;
use crate::rfc3339;
use crate::tools::report::Report;
use crate::tools::report::chart::{self, Column, Share};

/// At most this many days, one column each, make a continuous axis.
const MAX_DAYS: i64 = 3660;

/// Every day from the first record in range to the last; when they lie
/// more than `MAX_DAYS` apart (a clock set wrong, a forged line), only the
/// days that hold a record. Cutting the axis at `MAX_DAYS` instead would
/// drop the later days, so one record from year 1 left the real period off
/// the charts.
fn days(r: &Report) -> Vec<String> {
    let day = |ts: Option<&str>| ts.and_then(rfc3339::parse_millis).map(|ms| (ms.div_euclid(86_400_000)) as i64);
    let (Some(first), Some(last)) = (day(r.first_record.as_deref()), day(r.last_record.as_deref())) else {
        return Vec::new();
    };
    if last - first <= MAX_DAYS {
        return (first..=last).map(|d| rfc3339::format(d * 86_400)[..10].to_string()).collect();
    }
    let recorded: std::collections::BTreeSet<&str> =
        r.compliance.iter().map(|c| c.login_date.as_str()).chain(r.daily.iter().map(|d| d.date.as_str())).collect();
    recorded.into_iter().map(str::to_string).collect()
}

pub(super) fn by_day(m: &mut Markup, r: &Report) {
    m.raw("<section><h2>MFA compliance per day</h2>\n<p class=\"note\">App+user requests whose token shows MFA (<span class=\"id\">amr</span> holds <span class=\"id\">mfa</span> or <span class=\"id\">ngcmfa</span>), whatever the route decided: Partner Center's own measure (<span class=\"id\">mfaCompliantRequestCount</span> of <span class=\"id\">totalRequestCount</span>). App-only calls and requests without a readable token carry no user and are not counted.</p>\n");
    let mut per_day: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for c in &r.compliance {
        let e = per_day.entry(c.login_date.as_str()).or_default();
        e.0 += c.mfa_compliant_request_count;
        e.1 += c.total_request_count;
    }
    if per_day.is_empty() {
        m.raw("<p>No app+user requests in the period.</p></section>\n");
        return;
    }
    let days = days(r);
    let columns: Vec<Column<'_>> = days
        .iter()
        .map(|date| {
            let (ok, total) = per_day.get(date.as_str()).copied().unwrap_or_default();
            let title = if total == 0 {
                format!("{date}: no app+user requests")
            } else {
                format!("{date}: {ok} of {total} app+user requests with MFA ({:.1} %)", share(ok, total))
            };
            let note = (total > 0).then(|| format!("{:.0}%", share(ok, total)));
            Column { label: date, segments: vec![("ok", ok), ("bad", total - ok)], title, note }
        })
        .collect();
    chart::columns(m, "mfa-by-day", "App+user requests per day, with and without MFA", &columns);
    m.raw("<ul class=\"legend\"><li><span class=\"key ok\"></span>with MFA</li><li><span class=\"key bad\"></span>without MFA</li></ul>\n");
    m.raw("<table><thead><tr><th>Date</th><th>With MFA</th><th>App+user requests</th><th>Compliant</th></tr></thead><tbody>\n");
    for (date, (ok, total)) in &per_day {
        m.raw("<tr><td>").text(date).raw("</td><td class=\"n\">").int(*ok).raw("</td><td class=\"n\">").int(*total);
        m.raw("</td><td class=\"n\">");
        percent(m, *ok, *total);
        m.raw("</td></tr>\n");
    }
    m.raw("</tbody></table></section>\n");
}

pub(super) fn by_application(m: &mut Markup, r: &Report) {
    m.raw("<section><h2>MFA compliance per application</h2>\n");
    struct App<'a> {
        ok: u64,
        total: u64,
        first: &'a str,
        last: &'a str,
    }
    let mut apps: BTreeMap<&str, App<'_>> = BTreeMap::new();
    for c in &r.compliance {
        let e = apps.entry(c.application_id.as_str()).or_insert(App {
            ok: 0,
            total: 0,
            first: &c.login_date,
            last: &c.login_date,
        });
        e.ok += c.mfa_compliant_request_count;
        e.total += c.total_request_count;
        e.first = e.first.min(&c.login_date);
        e.last = e.last.max(&c.login_date);
    }
    if apps.is_empty() {
        m.raw("<p>No app+user requests in the period.</p></section>\n");
        return;
    }
    // Least compliant first, then the busiest.
    let mut rows: Vec<(&str, &App<'_>)> = apps.iter().map(|(k, v)| (*k, v)).collect();
    rows.sort_by(|a, b| (a.1.ok * b.1.total).cmp(&(b.1.ok * a.1.total)).then(b.1.total.cmp(&a.1.total)));
    const SHOWN: usize = 40;
    let shares: Vec<Share<'_>> = rows
        .iter()
        .take(SHOWN)
        .map(|(app, a)| Share {
            label: if app.is_empty() { "(no application id)" } else { app },
            part: a.ok,
            total: a.total,
            title: format!(
                "{}: {} of {} app+user requests with MFA ({:.1} %)",
                or_none(app),
                a.ok,
                a.total,
                share(a.ok, a.total)
            ),
        })
        .collect();
    chart::shares(m, "mfa-by-app", "Share of each application's app+user requests with MFA", &shares);
    if rows.len() > SHOWN {
        m.raw("<p class=\"note\">The chart shows the ")
            .int(SHOWN as u64)
            .raw(" least compliant of ")
            .int(rows.len() as u64);
        m.raw(" applications; the table has them all.</p>\n");
    }
    m.raw("<table><thead><tr><th>Application</th><th>With MFA</th><th>App+user requests</th><th>Compliant</th><th>First day</th><th>Last day</th></tr></thead><tbody>\n");
    for (app, a) in &rows {
        m.raw("<tr><td class=\"id\">")
            .text(or_none(app))
            .raw("</td><td class=\"n\">")
            .int(a.ok)
            .raw("</td><td class=\"n\">")
            .int(a.total);
        m.raw("</td><td class=\"n\">");
        percent(m, a.ok, a.total);
        m.raw("</td><td>").text(a.first).raw("</td><td>").text(a.last).raw("</td></tr>\n");
    }
    m.raw("</tbody></table></section>\n");
}

pub(super) fn denials(m: &mut Markup, r: &Report) {
    m.raw("<section><h2>Denials by reason over time</h2>\n<p class=\"note\">Requests denied, or that report-only routes and rules would have denied, for a reason about the caller's credentials or a rule: not routing or malformed requests, rate limits, or the gateway's own outages.</p>\n");
    let mut totals: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for d in &r.daily {
        let slot = match d.decision.as_str() {
            "deny" => 0,
            "would_deny" => 1,
            _ => 2,
        };
        totals.entry(d.reason.as_str()).or_default()[slot] += d.count;
    }
    if totals.values().all(|t| t[0] + t[1] == 0) {
        m.raw("<p>None in the period.</p>\n");
    } else {
        let mut order: Vec<(&str, u64)> = totals.iter().map(|(r, t)| (*r, t[0] + t[1])).filter(|t| t.1 > 0).collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let colour = |reason: &str| {
            order.iter().position(|(r, _)| *r == reason).and_then(|i| COLOURS.get(i)).copied().unwrap_or("c9")
        };
        let days = days(r);
        let columns: Vec<Column<'_>> = days
            .iter()
            .map(|date| {
                let mut counts: Vec<(&str, u64)> = order.iter().map(|(reason, _)| (*reason, 0)).collect();
                for d in r.daily.iter().filter(|d| d.date == *date && d.decision != "exempt") {
                    if let Some(c) = counts.iter_mut().find(|c| c.0 == d.reason) {
                        c.1 += d.count;
                    }
                }
                let listed: Vec<String> = counts.iter().filter(|c| c.1 > 0).map(|(r, n)| format!("{r} {n}")).collect();
                let title =
                    if listed.is_empty() { format!("{date}: none") } else { format!("{date}: {}", listed.join(", ")) };
                let mut segments: Vec<(&'static str, u64)> = Vec::new();
                for (reason, n) in counts {
                    match segments.iter_mut().find(|s| s.0 == colour(reason)) {
                        Some(s) => s.1 += n,
                        None => segments.push((colour(reason), n)),
                    }
                }
                Column { label: date, segments, title, note: None }
            })
            .collect();
        chart::columns(m, "denials-by-day", "Denied and would-be-denied requests per day, by reason", &columns);
        m.raw("<ul class=\"legend\">");
        for (i, (reason, _)) in order.iter().enumerate() {
            m.raw("<li><span class=\"key ").raw(COLOURS.get(i).copied().unwrap_or("c9")).raw("\"></span>");
            if i < COLOURS.len() {
                m.text(reason)
            } else {
                m.raw("other reasons")
            };
            m.raw("</li>");
            if i >= COLOURS.len() {
                break;
            }
        }
        m.raw("</ul>\n");
    }
    m.raw("<table><thead><tr><th>Reason</th><th>Rule</th><th>Denied</th><th>Would be denied</th><th>Exempt</th><th>Meaning</th></tr></thead><tbody>\n");
    for (reason, t) in &totals {
        let parsed = Reason::parse(reason);
        m.raw("<tr><td class=\"code\">").text(reason).raw("</td><td class=\"code\">");
        m.text(parsed.and_then(Reason::rule).map_or("token check", |rule| rule.as_str()));
        m.raw("</td><td class=\"n\">")
            .int(t[0])
            .raw("</td><td class=\"n\">")
            .int(t[1])
            .raw("</td><td class=\"n\">")
            .int(t[2]);
        m.raw("</td><td>").text(parsed.map_or("", Reason::description)).raw("</td></tr>\n");
    }
    m.raw("</tbody></table></section>\n");
}
