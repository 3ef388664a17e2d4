//! `mfagate report` run as a process on a decision log that a running
//! gateway wrote: the compliance table in Partner Center's shape, the
//! non-compliant principals and applications with their reasons, the time
//! bounds, the formats and the exit codes (0 none denied, 2 some, 1 error).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::TestEnv;
use support::idp::{AZURE_CLI, OID, SAM_APP, TID};

const BIN: &str = env!("CARGO_BIN_EXE_mfagate");

async fn report(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(BIN).arg("report").args(args).env_remove("MFAGATE_CONFIG").output().await;
    let out = out.expect("mfagate runs");
    (out.status.code().expect("exited"), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Reads the decision log until it holds `n` lines (written by a thread of
/// its own; nothing signals a flushed line).
async fn audit_lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= n {
            assert_eq!(lines.len(), n, "{text}");
            return lines;
        }
        assert!(Instant::now() < deadline, "the decision log has {} of {n} lines", lines.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn report_on_a_log_written_by_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!(
            "[[routes]]\nname = \"staged\"\npath_prefix = \"/staged\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\n\
             audiences = [\"https://api.partnercenter.microsoft.com\"]\nmode = \"report-only\"\n\n\
             [audit]\nsink = \"file\"\npath = {}\n",
            support::toml_str(&log)
        ))
        .start()
        .await;
    let ok = env.idp.delegated().mint();
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let public = env.idp.delegated().claim("appid", AZURE_CLI).claim("appidacr", "0").mint();
    let app_only = env.idp.app_only().mint();
    for (path, token, status) in [
        ("/v1/customers", Some(&ok), 200),
        ("/v1/customers", Some(&ok), 200),
        ("/v1/customers", Some(&no_mfa), 401),
        ("/v1/customers", Some(&no_mfa), 401),
        ("/v1/customers", Some(&no_mfa), 401),
        ("/staged/customers", Some(&no_mfa), 200),
        ("/v1/customers", Some(&public), 403),
        ("/v1/customers", Some(&app_only), 403),
        ("/v1/customers", None, 401),
        ("/nowhere", None, 404),
    ] {
        assert_eq!(env.get(path, token.map(String::as_str)).await.status(), status, "{path}");
    }
    let lines = audit_lines(&log, 10).await;
    assert!(lines[0]["upstream_latency_us"].as_u64().is_some(), "forwarded requests record the upstream's latency");
    assert!(lines[2].get("upstream_latency_us").is_none(), "denied ones were not forwarded");
    let day = &lines[0]["timestamp"].as_str().unwrap()[..10];
    let log = log.to_str().unwrap();

    // Partner Center's shape: app+user requests only, per day and application.
    let (code, csv, stderr) = report(&["--format", "csv", log]).await;
    assert_eq!(code, 2, "some requests were denied: {stderr}");
    assert_eq!(
        csv,
        format!(
            "loginDate,applicationId,mfaCompliantRequestCount,totalRequestCount\n\
             {day},{AZURE_CLI},1,1\n\
             {day},{SAM_APP},2,6\n"
        )
    );

    // Who would be stopped, and why; most frequent first.
    let (code, csv, _) = report(&["--format", "csv", "--table", "denials", log]).await;
    assert_eq!(code, 2);
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "decision",
            "reason",
            "applicationId",
            "tenantId",
            "objectId",
            "upnSha256",
            "count",
            "firstSeen",
            "lastSeen",
            "routes"
        ]
    );
    let summary: Vec<(&str, &str, &str, &str)> = rows[1..].iter().map(|r| (r[0], r[1], r[2], r[6])).collect();
    assert_eq!(
        summary,
        [
            ("deny", "mfa_required", SAM_APP, "3"),
            ("deny", "app_only_not_allowed", SAM_APP, "1"),
            ("deny", "missing_token", "", "1"),
            ("deny", "public_client", AZURE_CLI, "1"),
            ("would_deny", "mfa_required", SAM_APP, "1"),
        ]
    );
    let upn = mfagate::audit::user_fingerprint("admin@contoso.onmicrosoft.com");
    assert_eq!((rows[1][3], rows[1][4], rows[1][5]), (TID, OID, upn.as_str()));
    assert!(rows[1][7] <= rows[1][8], "first seen not after last seen: {rows:?}");
    assert_eq!(rows[5][9], "staged");
    assert!(!csv.contains("no_route"), "routing errors are not compliance problems");

    // JSON holds both tables and the counts.
    let (code, json, _) = report(&["--format", "json", log]).await;
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["records"].as_u64(), v["inRange"].as_u64()), (Some(10), Some(10)));
    assert_eq!(v["compliance"][1]["applicationId"], SAM_APP);
    assert_eq!(v["compliance"][1]["mfaCompliantRequestCount"], 2);
    assert_eq!(v["compliance"][1]["totalRequestCount"], 6);
    assert_eq!(v["nonCompliant"][0]["reason"], "mfa_required");
    assert_eq!(v["nonCompliant"][0]["count"], 3);
    assert_eq!(v["nonCompliant"][0]["routes"], serde_json::json!(["partner-center"]));

    // Text for a terminal.
    let (code, text, _) = report(&[log]).await;
    assert_eq!(code, 2);
    assert!(text.contains("(10 records)"), "{text}");
    assert!(text.contains(&format!("{day}  {SAM_APP}          2          6    33.3")), "{text}");
    assert!(text.contains("deny mfa_required x3  routes: partner-center"), "{text}");
    assert!(text.contains("Summary: 6 denied, 1 would be denied, 0 exempt"), "{text}");

    // Bounds: a window with no record is clean (exit 0); durations count back from now.
    let (code, json, _) = report(&["--format", "json", "--since", "2999-01-01", log]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["records"].as_u64(), v["inRange"].as_u64()), (Some(10), Some(0)));
    assert_eq!(v["since"], "2999-01-01T00:00:00Z");
    assert_eq!(v["compliance"], serde_json::json!([]));
    let (code, json, _) = report(&["--format", "json", "--since", "1h", log]).await;
    assert_eq!(code, 2);
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["inRange"], 10);
    let (code, json, _) = report(&["--format", "json", "--until", "2000-01-01", log]).await;
    assert_eq!((code, serde_json::from_str::<Value>(&json).unwrap()["inRange"].as_u64()), (0, Some(0)));

    // The log never holds a token.
    let text = std::fs::read_to_string(log).unwrap();
    for token in [&ok, &no_mfa, &public, &app_only] {
        assert!(!text.contains(token.as_str()));
    }
}

#[tokio::test]
async fn errors_exit_1_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let (code, out, err) = report(&[missing.to_str().unwrap()]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("missing.jsonl"), "{err}");

    let garbage = support::write(dir.path(), "garbage.jsonl", "not json\n{\"also\":\"not a record\"}\n");
    let (code, _, err) = report(&[garbage.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("holds no decision records"), "{err}");

    let empty = support::write(dir.path(), "empty.jsonl", "");
    let (code, _, err) = report(&["--since", "last tuesday", empty.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("--since \"last tuesday\""), "{err}");
}

/// An application id, a tenant, an object id, a user fingerprint, a route
/// and an exemption reason as an attacker could make a token or a request
/// show them: each tries to leave the text it is written into.
const HOSTILE_APP: &str = r#""><script>alert(1)</script><img src=x onerror=alert(2)>"#;
const HOSTILE_TID: &str = "</style></title><svg onload=alert(3)>";
const HOSTILE_OID: &str = "]]><!-- &amp; <b>bold</b>";
const HOSTILE_ROUTE: &str = "<i>route</i>";
const HOSTILE_EXEMPTION: &str = r#"'"><iframe src=javascript:alert(4)>"#;

const BREAK_GLASS: &str = "9f1c2e3d-4b5a-4c6d-8e7f-0a1b2c3d4e5f";
const SYNC_APP: &str = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d";
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
            hostile["upn_sha256"] = HOSTILE_OID.into();
            hostile["exemption"] = HOSTILE_EXEMPTION.into();
            lines.push(line(d, next(), HOSTILE_ROUTE, "exempt", "mfa_required", "<b>mode</b>", hostile));
            total += 1;
            // A reason that is no reason code is no compliance matter, and still text.
            lines.push(line(
                d,
                next(),
                "partner-center",
                "deny",
                "<script>alert(5)</script>",
                "enforce",
                serde_json::json!({}),
            ));
        }
        days.push((date, compliant, total));
    }
    lines.push("not a decision".into());
    (lines.join("\n") + "\n", days)
}

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

#[tokio::test]
async fn html_report_opens_in_a_browser_escapes_the_log_and_shows_the_rollout() {
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
    let config = support::write(
        dir.path(),
        "mfagate.toml",
        &format!(
            "{}{}{}\
             [[exemptions]]\noid = \"{BREAK_GLASS}\"\nreason = \"break-glass account, runbook BG-1\"\nexpires = \"{glass_expires}\"\nroutes = [\"partner-center\"]\n\n\
             [[exemptions]]\nappid = \"{SYNC_APP}\"\nreason = \"directory sync account\"\nexpires = \"{sync_expired}\"\n",
            route(
                "partner-center",
                "/v1",
                &format!(
                    "deny_roles = [\"{}\"]\nrule_modes = {{ deny_roles = \"report-only\" }}",
                    support::idp::GLOBAL_ADMIN
                )
            ),
            route("graph", "/graph", &format!("enforce_after = \"{graph_enforces}\"")),
            route("arm", "/arm", "mode = \"report-only\""),
        ),
    );
    let out = dir.path().join("report.html");
    let (code, stdout, stderr) = report(&[
        "--format",
        "html",
        "--out",
        out.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        log.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 2, "some requests were denied: {stderr}");
    assert_eq!(stdout, "", "the page goes to --out");
    let html = std::fs::read_to_string(&out).unwrap();
    println!("report: {} bytes", html.len());
    assert!(html.len() < 200_000, "{} bytes", html.len());

    // Self-contained: no tag fetches or runs anything, nor does the style sheet.
    assert_inert(&html);
    let style = &html[html.find("<style>").unwrap()..html.find("</style>").unwrap()];
    assert!(!style.contains("url(") && !style.contains("@import"), "{style}");
    assert!(html.contains("Content-Security-Policy"), "and forbids what it does not need");
    // The hostile strings are text, escaped where they are written.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(html.contains("&lt;/style&gt;&lt;/title&gt;&lt;svg onload=alert(3)&gt;"));
    assert!(html.contains("]]&gt;&lt;!-- &amp;amp; &lt;b&gt;bold&lt;/b&gt;"));
    assert!(html.contains("&#39;&quot;&gt;&lt;iframe src=javascript:alert(4)&gt;"));

    // As the browser parsed it.
    let run = support::browser::open(&out, &["--dump-dom"]).await;
    assert!(run.console.is_empty(), "console messages: {:?}", run.console);
    let dom = run.stdout;
    assert!(dom.contains("<title>MFA compliance report</title>"), "{dom}");
    assert_inert(&dom);
    assert!(dom.contains("&lt;img src=x onerror=alert(2)&gt;"), "the hostile app id is shown as text");
    assert!(dom.contains("&lt;i&gt;route&lt;/i&gt;"), "so is the hostile route");
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
    for (date, compliant, total) in &days {
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
    assert!(staged.contains(&shown(&graph_enforces)) && staged.contains("in 20 days"), "{staged}");
    assert!(staged.contains("report-only, no enforce date"), "arm: {staged}");
    assert!(staged.contains("deny_roles"), "partner-center's report-only rule: {staged}");
    assert!(staged.contains("2026-03-02 08:") && staged.contains("14 would be denied"), "graph in the log: {staged}");
    let exemptions = section("Exemptions");
    assert!(
        exemptions.contains("break-glass account, runbook BG-1") && exemptions.contains(&shown(&glass_expires)),
        "{exemptions}"
    );
    assert!(exemptions.contains("active") && exemptions.contains("expired"), "{exemptions}");
    assert!(exemptions.contains(SYNC_APP) && exemptions.contains(BREAK_GLASS), "{exemptions}");
    let apps = section("Non-compliant applications");
    assert!(apps.contains(AZURE_CLI) && apps.contains("public_client"), "{apps}");
    assert!(apps.contains("2026-03-02 08:") && apps.contains("2026-03-05 08:"), "first and last seen: {apps}");

    // Well-formed too: the same file read as XHTML, whose parser stops at the
    // first markup error.
    let xhtml = dir.path().join("report.xhtml");
    std::fs::copy(&out, &xhtml).unwrap();
    let run = support::browser::open(&xhtml, &["--dump-dom"]).await;
    assert!(!run.stdout.contains("parsererror"), "{}", run.stdout);
    assert!(run.stdout.contains("MFA compliance per day"), "{}", run.stdout);
    assert!(run.console.is_empty(), "console messages: {:?}", run.console);

    // A screenshot of the page as an auditor sees it, kept under target/.
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let run = support::browser::open(
        &out,
        &[&format!("--screenshot={}", shot.display()), "--window-size=1280,4000", "--force-device-scale-factor=1"],
    )
    .await;
    assert!(run.console.is_empty(), "console messages: {:?}", run.console);
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{}", shot.display(), run.stderr));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());
    println!("screenshot: {}", shot.display());
}
