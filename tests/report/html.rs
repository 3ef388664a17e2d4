//! `mfagate report --format html` on a week of decisions, opened in
//! headless Chromium: the page an auditor gets (its text and its SVG charts,
//! a screenshot under target/report/), and that nothing in the decision log
//! can run in it, neither through the markup (escaped) nor past it (the
//! Content-Security-Policy forbids scripts).

use std::path::{Path, PathBuf};

use super::report;
use super::week::{self, BREAK_GLASS, SYNC_APP};
use crate::support;
use crate::support::idp::{AZURE_CLI, OID, SAM_APP, TID};

/// No element of `markup` runs, fetches or embeds anything, and none came
/// from the log: every tag is one the report writes, with no event handler,
/// no style attribute and no URL. Text holds no `<` (it is escaped), so the
/// tags are what lies between `<` and `>`.
fn assert_inert(markup: &str) {
    const TAGS: [&str; 23] = [
        "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "header", "footer", "section", "h1", "h2", "p",
        "span", "div", "ul", "li", "table", "thead", "tbody", "tr", "th", "td",
    ];
    const SVG: [&str; 6] = ["svg", "g", "rect", "line", "text", "title"];
    for tag in markup.split('<').skip(1).map(|t| &t[..t.find('>').unwrap_or_else(|| panic!("a '<' in text: <{t}"))]) {
        let name = tag.trim_start_matches('/').split([' ', '/', '\n']).next().unwrap();
        assert!(TAGS.contains(&name) || SVG.contains(&name), "<{tag}>");
        let attributes = tag
            .replace(r#"xmlns="http://www.w3.org/1999/xhtml""#, "")
            .replace(r#"xmlns="http://www.w3.org/2000/svg""#, "");
        for name in attributes.split_whitespace().filter_map(|w| w.split_once('=')).map(|(name, _)| name) {
            assert!(!name.starts_with("on") && !["src", "href", "xlink:href", "style"].contains(&name), "<{tag}>");
        }
        for scheme in ["http:", "https:", "javascript:", "data:", "file:"] {
            assert!(!attributes.contains(scheme), "<{tag}>");
        }
    }
}

/// The page written from the week's log and configuration.
struct Page {
    week: week::Week,
    path: PathBuf,
    html: String,
}

async fn write_page() -> Page {
    let week = week::write();
    let path = week.dir.path().join("report.html");
    let (code, stdout, stderr) = report(&[
        "--format",
        "html",
        "--out",
        path.to_str().unwrap(),
        "--config",
        week.config.to_str().unwrap(),
        week.log.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 2, "some requests were denied: {stderr}");
    assert_eq!(stdout, "", "the page goes to --out");
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.len() < 200_000, "{} bytes", html.len());
    Page { week, path, html }
}

/// A copy of the page next to it, named `name`, changed by `edit`.
fn variant(page: &Page, name: &str, edit: impl FnOnce(&str) -> String) -> PathBuf {
    let path = page.path.with_file_name(name);
    std::fs::write(&path, edit(&page.html)).unwrap();
    path
}

/// The page's Content-Security-Policy meta element.
fn csp_meta(html: &str) -> &str {
    let start = html.find(r#"<meta http-equiv="Content-Security-Policy""#).expect("a Content-Security-Policy meta");
    &html[start..start + html[start..].find("/>").unwrap() + 2]
}

/// Console lines written by a script from the log (or one injected).
fn scripts_that_ran(console: &[String]) -> Vec<&String> {
    console.iter().filter(|l| l.contains("xss:")).collect()
}

#[tokio::test]
async fn html_report_shows_compliance_denials_and_the_rollout() {
    let page = write_page().await;
    let html = &page.html;
    // Self-contained: no tag fetches or runs anything, nor does the style sheet.
    assert_inert(html);
    let style = &html[html.find("<style>").unwrap()..html.find("</style>").unwrap()];
    assert!(!style.contains("url(") && !style.contains("@import"), "{style}");

    // As the browser parsed it; no console message (a style sheet the
    // policy refused would show here).
    let run = support::browser::open(&page.path, &["--dump-dom"]).await;
    assert!(run.console.is_empty(), "console messages: {:?}", run.console);
    let dom = run.stdout;
    assert!(dom.contains("<title>MFA compliance report</title>"), "{dom}");
    assert_inert(&dom);
    for heading in [
        "MFA compliance per day",
        "MFA compliance per application",
        "Denials by reason over time",
        "Non-compliant applications",
        "Non-compliant principals",
        "Staged routes and enforce dates",
        "Exemptions",
    ] {
        assert!(dom.contains(&format!(">{heading}</h2>")), "{heading}");
    }
    // One chart per question, drawn as SVG: a bar per day, a bar per application.
    assert_eq!(dom.matches("<svg").count(), 3, "{dom}");
    let chart = |id: &str| {
        let start = dom.find(&format!(r#"<svg id="{id}""#)).unwrap_or_else(|| panic!("no chart {id}"));
        &dom[start..start + dom[start..].find("</svg>").unwrap()]
    };
    let by_day = chart("mfa-by-day");
    assert_eq!(by_day.matches(r#"<rect class="ok""#).count(), 7, "{by_day}");
    for (date, compliant, total) in &page.week.days {
        let percent = 100.0 * *compliant as f64 / *total as f64;
        let title = format!("{date}: {compliant} of {total} app+user requests with MFA ({percent:.1} %)");
        assert!(by_day.contains(&title), "{title}\n{by_day}");
    }
    let by_app = chart("mfa-by-app");
    // Four applications: two without MFA at all, one with some, one with all.
    assert_eq!(by_app.matches("<g>").count(), 4, "{by_app}");
    assert_eq!((by_app.matches(r#"<rect class="ok""#).count(), by_app.matches(r#"<rect class="bad""#).count()), (2, 3));
    assert!(by_app.contains(&format!("{AZURE_CLI}: 0 of 4 app+user requests with MFA (0.0 %)")), "{by_app}");
    let denials = chart("denials-by-day");
    assert!(denials.contains("2026-03-02: mfa_required 4, app_only_not_allowed 1, public_client 1"), "{denials}");
    assert!(denials.contains("2026-03-08: mfa_required 4"), "would_deny counts: {denials}");
    assert!(!denials.contains("no_route") && !denials.contains("rate_limited"), "{denials}");

    // The rollout: enforce dates and report-only rules from the
    // configuration, what the log shows of each route, the exemptions and
    // when they expire.
    let section = |heading: &str| {
        let start = dom.find(&format!(">{heading}</h2>")).unwrap();
        let end = dom[start..].find("</section>").unwrap();
        &dom[start..start + end]
    };
    let staged = section("Staged routes and enforce dates");
    let shown = |instant: &str| instant.replacen('T', " ", 1).replace('Z', "");
    assert!(staged.contains(&shown(&page.week.graph_enforces)) && staged.contains("in 20 days"), "{staged}");
    assert!(staged.contains("report-only, no enforce date"), "arm: {staged}");
    assert!(staged.contains("deny_roles"), "partner-center's report-only rule: {staged}");
    assert!(staged.contains("2026-03-02 08:") && staged.contains("14 would be denied"), "graph in the log: {staged}");
    let exemptions = section("Exemptions");
    assert!(
        exemptions.contains("break-glass account, runbook BG-1")
            && exemptions.contains(&shown(&page.week.glass_expires)),
        "{exemptions}"
    );
    assert!(exemptions.contains("active") && exemptions.contains("expired"), "{exemptions}");
    assert!(exemptions.contains(SYNC_APP) && exemptions.contains(BREAK_GLASS), "{exemptions}");
    let apps = section("Non-compliant applications");
    assert!(apps.contains(AZURE_CLI) && apps.contains("public_client"), "{apps}");
    assert!(apps.contains("2026-03-02 08:") && apps.contains("2026-03-05 08:"), "first and last seen: {apps}");
    let principals = section("Non-compliant principals");
    assert!(principals.contains(OID) && principals.contains(TID) && principals.contains(SAM_APP), "{principals}");

    // Well-formed too: the same file read as XHTML, whose parser stops at the
    // first markup error.
    let xhtml = variant(&page, "report.xhtml", str::to_string);
    let run = support::browser::open(&xhtml, &["--dump-dom"]).await;
    assert!(!run.stdout.contains("parsererror"), "{}", run.stdout);
    assert!(run.stdout.contains("MFA compliance per day"), "{}", run.stdout);
    assert!(run.console.is_empty(), "console messages: {:?}", run.console);

    // A screenshot of the page as an auditor sees it, kept under target/
    // with the page itself.
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("report");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::copy(&page.path, kept.join("report.html")).unwrap();
    let shot = kept.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let run = support::browser::open(
        &page.path,
        &[&format!("--screenshot={}", shot.display()), "--window-size=1280,4000", "--force-device-scale-factor=1"],
    )
    .await;
    assert!(run.console.is_empty(), "console messages: {:?}", run.console);
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{}", shot.display(), run.stderr));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());
    println!("screenshot: {}", shot.display());
}

/// Red team: principal names, application ids, tenants, routes and
/// exemption reasons from the log are text wherever they are written. The
/// browser is the judge: with the Content-Security-Policy taken out, so
/// that only the escaping stands between the log and a script, none runs.
#[tokio::test]
async fn html_report_runs_no_script_from_the_log() {
    let page = write_page().await;
    let html = &page.html;
    let without_policy = variant(&page, "no-policy.html", |html| html.replacen(csp_meta(html), "", 1));
    let run = support::browser::open(&without_policy, &["--dump-dom"]).await;
    assert_eq!(scripts_that_ran(&run.console), Vec::<&String>::new(), "scripts from the log ran");
    assert!(run.console.is_empty(), "console messages: {:?}", run.console);
    let dom = run.stdout;
    assert_inert(&dom);
    for shown in [
        r#"&lt;script&gt;console.error("xss:oid")&lt;/script&gt;"&gt;&lt;svg onload=console.error("xss:oid-svg")&gt;"#,
        r#"&lt;/style&gt;&lt;/title&gt;&lt;svg onload=console.error("xss:tid")&gt;"#,
        r#"&lt;img src=x onerror=console.error("xss:appid-img")&gt;"#,
        r#"&lt;i&gt;route&lt;/i&gt;&lt;script&gt;console.error("xss:route")&lt;/script&gt;"#,
        r#"'"&gt;&lt;iframe src=javascript:console.error("xss:exemption")&gt;"#,
    ] {
        assert!(dom.contains(shown), "shown as text: {shown}");
    }

    // The file as written: the same, and escaped for attributes too.
    let run = support::browser::open(&page.path, &["--dump-dom"]).await;
    assert!(run.console.is_empty(), "console messages: {:?}", run.console);
    assert_inert(html);
    assert!(html.contains(
        "&lt;script&gt;console.error(&quot;xss:oid&quot;)&lt;/script&gt;&quot;&gt;&lt;svg onload=console.error(&quot;xss:oid-svg&quot;)&gt;"
    ));
    assert!(html.contains("&#39;&quot;&gt;&lt;iframe src=javascript:"), "the exemption reason");
    assert!(html.contains("]]&gt;&lt;!-- &amp;amp; &lt;b…"), "the user fingerprint, cut");
    assert!(!html.contains("xss:reason"), "an unknown reason is no compliance matter and not shown");
}

/// The page's policy forbids scripts: markup that got past the escaping
/// still could not run. A copy with a script, an event handler and an image
/// injected shows the policy refusing each, and nothing runs.
#[tokio::test]
async fn html_report_content_security_policy_forbids_scripts() {
    let page = write_page().await;
    let injected = variant(&page, "injected.html", |html| {
        html.replacen(
            "<body>",
            r#"<body><script>console.error("xss:script")</script><img src="x.png" onerror="console.error('xss:img')"/><svg xmlns="http://www.w3.org/2000/svg" onload="console.error('xss:svg')"></svg>"#,
            1,
        )
    });
    let run = support::browser::open(&injected, &["--dump-dom"]).await;
    assert_eq!(scripts_that_ran(&run.console), Vec::<&String>::new(), "injected scripts ran");
    let refused = |what: &str| run.console.iter().any(|l| l.contains(what) && l.contains("Content Security Policy"));
    assert!(refused("inline script"), "{:?}", run.console);
    assert!(refused("inline event handler"), "{:?}", run.console);
    assert!(refused("Loading the image"), "{:?}", run.console);

    // Nothing allows scripts back in.
    let policy = csp_meta(&page.html);
    for directive in ["default-src 'none'", "base-uri 'none'", "form-action 'none'"] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("script-src"), "scripts fall under default-src: {policy}");
    assert!(!policy.contains("unsafe-"), "{policy}");
}
