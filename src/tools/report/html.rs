//! The report as one self-contained page for an auditor: inline CSS, charts
//! as inline SVG, no script, no font, no image, nothing fetched. A
//! Content-Security-Policy allows only the page's own style sheet (by its
//! hash), so that even markup that slipped through could neither run nor
//! fetch anything. The markup is also well-formed XML (XHTML), which a test
//! checks with a browser's strict parser.

mod compliance;
mod findings;

use std::collections::BTreeSet;

use base64::Engine;

use super::Report;
use super::markup::Markup;
use super::rollout::Seen;
use crate::rfc3339;

const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:24px;color:#1f2328;background:#fff}\
h1{font-size:24px;margin:0 0 4px}\
h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid #d0d7de}\
p{margin:6px 0}.sub,.note{color:#59636e}.note{font-size:13px}\
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}\
.card{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;min-width:150px}\
.card .v{font-size:22px;font-weight:600}.card .k{color:#59636e;font-size:12px}\
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}\
th,td{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}\
th{background:#f6f8fa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.id,.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}.id{overflow-wrap:anywhere}.ts{white-space:nowrap}\
svg{width:100%;height:auto;display:block;margin:8px 0}\
svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#59636e}svg text.id{font-family:ui-monospace,monospace}\
svg .grid{stroke:#eaeef2}svg .axis{stroke:#8c959f}\
.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12px}\
.key{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}\
.ok{fill:#2da44e;background:#2da44e}.bad{fill:#cf222e;background:#cf222e}\
.c0{fill:#cf222e;background:#cf222e}.c1{fill:#0969da;background:#0969da}.c2{fill:#bf8700;background:#bf8700}\
.c3{fill:#8250df;background:#8250df}.c4{fill:#1b7c83;background:#1b7c83}.c5{fill:#bc4c00;background:#bc4c00}\
.c6{fill:#bf3989;background:#bf3989}.c7{fill:#4d2d00;background:#4d2d00}.c8{fill:#57606a;background:#57606a}\
.c9{fill:#afb8c1;background:#afb8c1}\
.active{color:#1a7f37;font-weight:600}.expired{color:#cf222e;font-weight:600}\
@media print{body{max-width:none;padding:0}h2{break-after:avoid}svg,tr{break-inside:avoid}}";

/// Reasons drawn in colours of their own; the rest share one.
const COLOURS: [&str; 9] = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"];

pub fn page(report: &Report) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
    let style_hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let mut m = Markup::new();
    m.raw("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    m.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    // `default-src` covers scripts, images, fonts, frames and connections;
    // `base-uri` and `form-action` are not covered by it.
    m.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; base-uri 'none'; form-action 'none'; style-src 'sha256-");
    m.text(&style_hash)
        .raw("'\"/>\n<title>MFA compliance report</title>\n<style>")
        .raw(STYLE)
        .raw("</style>\n</head>\n<body>\n");
    header(&mut m, report);
    summary(&mut m, report);
    compliance::by_day(&mut m, report);
    compliance::by_application(&mut m, report);
    compliance::denials(&mut m, report);
    findings::applications(&mut m, report);
    findings::principals(&mut m, report);
    findings::compute(&mut m, report);
    findings::routes(&mut m, report);
    findings::exemptions(&mut m, report);
    findings::signins(&mut m, report);
    footer(&mut m, report);
    m.raw("</body>\n</html>\n");
    m.into_string()
}

fn header(m: &mut Markup, r: &Report) {
    m.raw("<header><h1>MFA compliance report</h1>\n<p class=\"sub\">Decision log <span class=\"id\">").text(&r.log);
    m.raw("</span>: ").int(r.records).raw(" records, ").int(r.in_range).raw(" in the period");
    m.raw(", from ");
    when(m, r.since.as_deref().or(r.first_record.as_deref()).unwrap_or("the start"));
    m.raw(" to ");
    when(m, r.until.as_deref().or(r.last_record.as_deref()).unwrap_or("the end"));
    m.raw(" (all times UTC).</p>\n<p class=\"sub\">Made ");
    when(m, &r.generated);
    m.raw(" by mfagate ").raw(env!("CARGO_PKG_VERSION"));
    match &r.config {
        Some(config) => m.raw(", with the configuration <span class=\"id\">").text(config).raw("</span>"),
        None => m.raw(", from the log alone (no configuration read: enforce dates and exemption expiry need --config)"),
    };
    m.raw(".</p></header>\n");
}

fn card(m: &mut Markup, label: &'static str, value: impl FnOnce(&mut Markup), detail: impl FnOnce(&mut Markup)) {
    m.raw("<div class=\"card\"><div class=\"k\">").raw(label).raw("</div><div class=\"v\">");
    value(m);
    m.raw("</div><div class=\"k\">");
    detail(m);
    m.raw("</div></div>\n");
}

fn summary(m: &mut Markup, r: &Report) {
    let (compliant, total) = r
        .compliance
        .iter()
        .fold((0, 0), |(c, t), row| (c + row.mfa_compliant_request_count, t + row.total_request_count));
    let count =
        |decision: &str| r.non_compliant.iter().filter(|n| n.decision == decision).map(|n| n.count).sum::<u64>();
    let apps: BTreeSet<&str> = r.non_compliant.iter().map(|n| n.application_id.as_str()).collect();
    let principals: BTreeSet<(&str, &str, &str)> =
        r.non_compliant.iter().map(|n| (n.tenant_id.as_str(), n.object_id.as_str(), n.upn_sha256.as_str())).collect();
    m.raw("<section class=\"cards\">\n");
    card(
        m,
        "MFA compliance",
        |m| {
            if total == 0 {
                m.raw("–");
            } else {
                percent(m, compliant, total);
            }
        },
        |m| {
            m.int(compliant).raw(" of ").int(total).raw(" app+user requests");
        },
    );
    card(
        m,
        "Denied",
        |m| {
            m.int(count("deny"));
        },
        |m| {
            m.raw("requests");
        },
    );
    card(
        m,
        "Would be denied",
        |m| {
            m.int(count("would_deny"));
        },
        |m| {
            m.raw("on report-only routes and rules");
        },
    );
    card(
        m,
        "Let through by an exemption",
        |m| {
            m.int(count("exempt"));
        },
        |m| {
            m.raw("requests");
        },
    );
    card(
        m,
        "Non-compliant applications",
        |m| {
            m.int(apps.len() as u64);
        },
        |m| {
            m.int(principals.len() as u64).raw(" principals");
        },
    );
    m.raw("</section>\n");
}

fn footer(m: &mut Markup, r: &Report) {
    m.raw("<footer><p class=\"note\">Only decisions about the caller's credentials count as non-compliant. ");
    if !r.unreadable.is_empty() {
        m.int(r.unreadable.len() as u64);
        m.raw(if r.unreadable.len() == 1 { " line of the log was" } else { " lines of the log were" });
        m.raw(" not a decision record and skipped. ");
    }
    m.raw("The same figures: <span class=\"id\">mfagate report --format json</span>; Partner Center's shape: <span class=\"id\">--format csv</span>.</p></footer>\n");
}

fn seen(m: &mut Markup, s: &Seen, unit: &'static str) {
    if s.count == 0 {
        m.raw("none");
        return;
    }
    m.int(s.count).raw(" ").raw(unit).raw(", ");
    when(m, s.first.as_deref().unwrap_or(""));
    m.raw(" to ");
    when(m, s.last.as_deref().unwrap_or(""));
}

/// "in 20 days", "3 days ago", "today".
fn relative(m: &mut Markup, secs: i64) {
    let days = secs.abs() / 86_400;
    match (secs >= 0, days) {
        (_, 0) => m.raw(if secs >= 0 { "within a day" } else { "less than a day ago" }),
        (true, 1) => m.raw("in 1 day"),
        (true, d) => m.raw("in ").int(d).raw(" days"),
        (false, 1) => m.raw("1 day ago"),
        (false, d) => m.int(d).raw(" days ago"),
    };
}

fn percent(m: &mut Markup, part: u64, total: u64) {
    m.num(share(part, total), 1).raw(" %");
}

fn share(part: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { 100.0 * part as f64 / total as f64 }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "–" } else { s }
}

/// An instant from the log or the configuration, to the second
/// (`2026-03-02 08:07:11`); as it is when it does not parse.
fn when(m: &mut Markup, ts: &str) {
    match rfc3339::parse_millis(ts) {
        Some(ms) => {
            let t = rfc3339::format(ms.div_euclid(1000) as i64);
            m.raw("<span class=\"ts\">").text(&t.replacen('T', " ", 1).replace('Z', "")).raw("</span>")
        }
        None => m.text(ts),
    };
}

fn instant(ts: &str) -> i128 {
    rfc3339::parse_millis(ts).unwrap_or_default()
}
