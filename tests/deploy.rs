//! Everything under `deploy/` checked by the real tool for it, each also
//! shown to fail on a broken copy: promtool (scrape configuration, alert
//! rules and their unit tests), kubernetes-validate (Kubernetes schemas),
//! the Prometheus Operator's ServiceMonitor schema, hadolint, and
//! systemd-analyze. The dashboard and the rules are checked against a live
//! gateway's scrape: every metric they name exists, and every metric the
//! gateway exports is documented in docs/operations.md.
//!
//! The shipped files are also run as they would be run: the image's
//! environment with each ConfigMap (`deploy/container.rs`), the pod's files
//! as a kubelet writes them and the pod's user (`deploy/pod.rs`), the
//! automation's trust store (`deploy/trust.rs`), every shipped route
//! configuration against recording upstreams (`deploy/routes.rs`), Services
//! and NetworkPolicies (`deploy/network.rs`), and the systemd units'
//! start, failure and reload (`deploy/systemd.rs`).
//!
//! The tools are installed on first use (`support::setup`): promtool from
//! Debian's `prometheus`, the Python ones in a virtual environment and the
//! Node one with npm, both under `target/ops-tools` (or `$MFAGATE_OPS_TOOLS`).

mod support;

#[path = "deploy/container.rs"]
mod container;
#[path = "deploy/network.rs"]
mod network;
#[path = "deploy/pod.rs"]
mod pod;
#[path = "deploy/routes.rs"]
mod routes;
#[path = "deploy/systemd.rs"]
mod systemd;
#[path = "deploy/trust.rs"]
mod trust;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::TestEnv;
use support::idp::now;
use support::setup::ops_tool;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_mfagate");

fn deploy(path: &str) -> PathBuf {
    Path::new(ROOT).join("deploy").join(path)
}

struct Run {
    code: i32,
    out: String,
}

async fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Run {
    support::setup::debian();
    let program = program.as_ref().to_owned();
    let out = tokio::process::Command::new(&program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program:?} runs: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        out: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    }
}

/// The documents of a YAML file as JSON, read by PyYAML (YAML 1.1, as
/// Kubernetes reads manifests: `0440` is octal).
async fn manifest(path: &Path) -> Vec<Value> {
    let python = ops_tool("venv/bin/python");
    let script =
        "import json, sys, yaml\njson.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d], sys.stdout)";
    let out = tokio::process::Command::new(python).args(["-c", script]).arg(path).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The document of `kind` named `name`.
fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// A Deployment's pod spec and its container (or native sidecar) `name`.
fn pod_and_container<'a>(deployment: &'a Value, name: &str) -> (&'a Value, &'a Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = ["initContainers", "containers"].into_iter().flat_map(|k| pod[k].as_array().into_iter().flatten());
    let container = containers.into_iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no container {name}"));
    (pod, container)
}

/// The gateway's pods as shipped: manifest, Deployment, ConfigMap, and the
/// Secret (with its keys) the gateway's certificate comes from.
pub struct Shipped {
    pub file: &'static str,
    pub deployment: &'static str,
    pub configmap: &'static str,
    pub secret: &'static str,
}

pub const SHIPPED: [Shipped; 2] = [
    Shipped {
        file: "kubernetes/sidecar.yaml",
        deployment: "partner-automation",
        configmap: "mfagate-config",
        secret: "mfagate-tls",
    },
    Shipped {
        file: "kubernetes/egress.yaml",
        deployment: "mfagate-egress",
        configmap: "mfagate-egress-config",
        secret: "mfagate-egress-tls",
    },
];

/// `mounted` pointing at files that do not exist.
fn unmounted_copy(mounted: &str, root: &Path) -> String {
    mounted.replace(&format!("{}/etc/mfagate/tls/", root.display()), "/nonexistent/")
}

/// `text` with `from` replaced, written to a temporary file named `name`.
fn broken_copy(dir: &Path, name: &str, text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found");
    support::write(dir, name, &text.replacen(from, to, 1)).display().to_string()
}

#[tokio::test]
async fn promtool_accepts_the_scrape_config_and_rules_and_their_tests_pass() {
    let config = deploy("prometheus/prometheus.yml");
    let r = run("promtool", &["check", "config", config.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(!r.out.contains("WARNING"), "{}", r.out);
    let rules = deploy("prometheus/alerts.yml");
    let r = run("promtool", &["check", "rules", rules.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("SUCCESS: 15 rules found"), "{}", r.out);
    let tests = deploy("prometheus/alerts_test.yml");
    let r = run("promtool", &["test", "rules", tests.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.out);

    // The same tools refuse a broken rule, and a rule test whose alert no longer fires.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&rules).unwrap();
    let bad = broken_copy(dir.path(), "alerts.yml", &text, "expr: mfagate_ready == 0", "expr: mfagate_ready ==");
    assert_eq!(run("promtool", &["check", "rules", &bad]).await.code, 1);
    let weakened = text.replace("> 0.05", "> 0.5");
    support::write(dir.path(), "alerts.yml", &weakened);
    let test_text = std::fs::read_to_string(&tests).unwrap();
    let copy = support::write(dir.path(), "alerts_test.yml", &test_text);
    let r = run("promtool", &["test", "rules", copy.to_str().unwrap()]).await;
    assert_eq!(r.code, 1, "a 10 % error ratio no longer alerts: {}", r.out);
    assert!(r.out.contains("MfagateUpstreamErrors"), "{}", r.out);
    // A denial spike that counted outages (every class) would fire on them.
    let classes = r#"class=~"credential|rule|egress", reason!="keys_unavailable""#;
    assert_eq!(text.matches(classes).count(), 3, "the spike rule selects callers' denials by class");
    support::write(dir.path(), "alerts.yml", &text.replace(classes, r#"class=~".+""#));
    let r = run("promtool", &["test", "rules", copy.to_str().unwrap()]).await;
    assert_eq!(r.code, 1, "outages count as denials: {}", r.out);
    assert!(r.out.contains(r#"route="outage""#), "{}", r.out);
}

/// The query of the dashboard panel titled `title`, target `ref_id`, with
/// Grafana's variables replaced as Grafana would for "All" over one hour.
fn panel_query(dashboard: &serde_json::Value, title: &str, ref_id: &str) -> String {
    let panel = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?}"));
    let target = panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["refId"] == ref_id)
        .unwrap_or_else(|| panic!("{title:?} has no target {ref_id}"));
    target["expr"]
        .as_str()
        .unwrap()
        .replace("$instance", ".*")
        .replace("$route", ".*")
        .replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
}

/// The panels' queries evaluated by promtool on series shaped like a
/// gateway's: what each panel shows, including the cases the dashboard once
/// got wrong (outages counted as non-compliance, zero series drawn, "No
/// data" for a target that is down).
#[tokio::test]
async fn dashboard_queries_show_compliance_and_health() {
    use serde_json::json;
    let text = std::fs::read_to_string(deploy("grafana/mfagate.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let series = |name: &str, labels: &str, values: &str| {
        let sep = if labels.is_empty() { "" } else { ", " };
        json!({ "series": format!(r#"{name}{{instance="gw:9090", job="mfagate"{sep}{labels}}}"#), "values": values })
    };
    let requests = |route: &str, decision: &str, reason: &str, values: &str| {
        series(
            "mfagate_requests_total",
            &format!(r#"route="{route}", decision="{decision}", reason="{reason}""#),
            values,
        )
    };
    let mut input = vec![
        series("up", "", "1x60"),
        json!({ "series": r#"up{instance="down:9090", job="mfagate"}"#, "values": "0x60" }),
        series("mfagate_ready", "", "1x60"),
        // pc enforces; staged enforces from a date still ahead; trial is report-only.
        series("mfagate_route_info", r#"route="pc", kind="partner-center", mode="enforce""#, "1x60"),
        series("mfagate_route_info", r#"route="staged", kind="partner-center", mode="enforce""#, "1x60"),
        series("mfagate_route_info", r#"route="trial", kind="partner-center", mode="report-only""#, "1x60"),
        series("mfagate_route_enforce_after_timestamp_seconds", r#"route="staged""#, "10000000000x60"),
        // Per second: pc allows 3, denies 1 for MFA, exempts 1, and answers
        // 5 each of rate_limited, overloaded and keys_unavailable.
        requests("pc", "allow", "none", "0+180x60"),
        requests("pc", "deny", "mfa_required", "0+60x60"),
        requests("pc", "deny", "public_client", "0x60"),
        requests("pc", "deny", "rate_limited", "0+300x60"),
        requests("pc", "deny", "overloaded", "0+300x60"),
        requests("pc", "deny", "keys_unavailable", "0+300x60"),
        requests("pc", "exempt", "privileged_role", "0+60x60"),
        requests("staged", "allow", "none", "0+60x60"),
        requests("staged", "would_deny", "mfa_required", "0+60x60"),
        requests("trial", "allow", "none", "0+60x60"),
        requests("trial", "would_deny", "mfa_required", "0x60"),
        requests("unmatched", "deny", "no_route", "0+60x60"),
        series("mfagate_app_user_requests_total", r#"route="pc", mfa="proven""#, "0+180x60"),
        series("mfagate_app_user_requests_total", r#"route="pc", mfa="missing""#, "0+60x60"),
        series("mfagate_app_user_requests_total", r#"route="staged", mfa="proven""#, "0+60x60"),
        series("mfagate_app_user_requests_total", r#"route="staged", mfa="missing""#, "0+60x60"),
        series("mfagate_app_user_requests_total", r#"route="trial", mfa="proven""#, "0x60"),
        series("mfagate_app_user_requests_total", r#"route="trial", mfa="missing""#, "0x60"),
    ];
    for (reason, class) in [
        ("mfa_required", "rule"),
        ("public_client", "rule"),
        ("privileged_role", "rule"),
        ("rate_limited", "capacity"),
        ("overloaded", "capacity"),
        ("keys_unavailable", "credential"),
        ("no_route", "request"),
    ] {
        input.push(series("mfagate_reason_info", &format!(r#"reason="{reason}", class="{class}""#), "1x60"));
    }
    let sample = |labels: &str, value: f64| json!({ "labels": labels, "value": value });
    let route = |r: &str| format!(r#"{{route="{r}"}}"#);
    let checks = [
        // A target that cannot be scraped shows as down (-1), not "No data".
        ("Ready", "A", vec![sample("{}", -1.0)]),
        // Partner Center's measure per route; trial had no app+user requests.
        (
            "MFA compliance of app+user requests (range)",
            "A",
            vec![sample(&route("pc"), 0.75), sample(&route("staged"), 0.5)],
        ),
        ("Compliance over time", "A", vec![sample(&route("pc"), 0.75), sample(&route("staged"), 0.5)]),
        // Staged routes only, and a staged route that would deny nothing shows 0.
        ("Would deny on staged routes (range)", "A", vec![sample(&route("staged"), 0.5), sample(&route("trial"), 0.0)]),
        ("Compliance over time", "B", vec![sample(&route("staged"), 0.5), sample(&route("trial"), 0.0)]),
        // Credentials and rules only: no outage, no zero series.
        (
            "Non-compliant requests by route and reason (range)",
            "A",
            vec![
                sample(r#"{route="pc", decision="deny", reason="mfa_required"}"#, 3600.0),
                sample(r#"{route="pc", decision="exempt", reason="privileged_role"}"#, 3600.0),
                sample(r#"{route="staged", decision="would_deny", reason="mfa_required"}"#, 3600.0),
            ],
        ),
        // Every reason that occurred, and only those.
        (
            "Decisions by reason",
            "A",
            vec![
                sample(r#"{decision="deny", reason="mfa_required"}"#, 1.0),
                sample(r#"{decision="deny", reason="rate_limited"}"#, 5.0),
                sample(r#"{decision="deny", reason="overloaded"}"#, 5.0),
                sample(r#"{decision="deny", reason="keys_unavailable"}"#, 5.0),
                sample(r#"{decision="deny", reason="no_route"}"#, 1.0),
                sample(r#"{decision="exempt", reason="privileged_role"}"#, 1.0),
                sample(r#"{decision="would_deny", reason="mfa_required"}"#, 1.0),
            ],
        ),
    ];
    let exprs: Vec<_> = checks
        .iter()
        .map(|(title, ref_id, samples)| {
            json!({ "expr": panel_query(&dashboard, title, ref_id), "eval_time": "60m", "exp_samples": samples })
        })
        .collect();
    let file = json!({
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            { "interval": "1m", "input_series": input, "promql_expr_test": exprs },
            // With every target up, Ready is the readiness gauge.
            {
                "interval": "1m",
                "input_series": [series("up", "", "1x60"), series("mfagate_ready", "", "1 1 1 0x57")],
                "promql_expr_test": [
                    { "expr": panel_query(&dashboard, "Ready", "A"), "eval_time": "60m", "exp_samples": [sample("{}", 0.0)] },
                ],
            },
        ],
    });
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML: promtool reads it as is.
    let path = support::write(dir.path(), "dashboard_test.yml", &serde_json::to_string_pretty(&file).unwrap());
    let r = run("promtool", &["test", "rules", path.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.out);
}

/// Metric names (`mfagate_...`) in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("mfagate_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn dashboard_and_rules_name_only_exported_metrics_and_readme_documents_every_one() {
    let enforce_after = mfagate::rfc3339::format(now() + 86_400);
    let env = TestEnv::setup().route(&format!("enforce_after = \"{enforce_after}\"")).start().await;
    let token = env.idp.delegated().mint();
    assert_eq!(env.get("/v1/customers", Some(&token)).await.status(), 200);
    let scrape = env.metrics().await;
    // Sample names: histograms' _bucket, _sum and _count included.
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    let families: BTreeSet<String> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();

    let dashboard_text = std::fs::read_to_string(deploy("grafana/mfagate.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).expect("the dashboard is valid JSON");
    assert_eq!(dashboard["uid"], "mfagate");
    let panels = dashboard["panels"].as_array().unwrap();
    let mut exprs = String::new();
    for panel in panels {
        let kind = panel["type"].as_str().unwrap();
        if matches!(kind, "row" | "text") {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{} has no targets", panel["title"]));
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for t in targets {
            exprs.push_str(t["expr"].as_str().unwrap());
            exprs.push('\n');
        }
    }
    for expected in [
        "sum by (decision, reason) (rate(mfagate_requests_total",
        "histogram_quantile(0.99, sum by (le) (rate(mfagate_request_duration_seconds_bucket",
        "mfagate_token_verification_duration_seconds_bucket",
        "mfagate_upstream_duration_seconds_bucket",
        "mfagate_jwks_age_seconds",
        "mfagate_upstream_errors_total",
        "mfagate_tls_cert_not_after_seconds",
        "mfagate_route_enforce_after_timestamp_seconds",
    ] {
        assert!(exprs.contains(expected), "the dashboard shows {expected}");
    }
    assert!(dashboard_text.contains("mfagate report"), "the dashboard says where per-application detail is");

    let mut used = metric_names(&exprs);
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        used.extend(metric_names(variable["definition"].as_str().unwrap_or_default()));
    }
    for file in ["prometheus/alerts.yml", "prometheus/alerts_test.yml"] {
        used.extend(metric_names(&std::fs::read_to_string(deploy(file)).unwrap()));
    }
    assert!(used.len() >= 15, "{used:?}");
    let missing: Vec<_> = used.difference(&exported).collect();
    assert!(missing.is_empty(), "named in deploy/ but not exported: {missing:?}\n{scrape}");

    let operations = std::fs::read_to_string(Path::new(ROOT).join("docs/operations.md")).unwrap();
    let undocumented: Vec<_> = families.iter().filter(|f| !operations.contains(&format!("`{f}`"))).collect();
    assert!(undocumented.is_empty(), "metrics missing from docs/operations.md: {undocumented:?}");
}

#[tokio::test]
async fn kubernetes_manifests_pass_schema_validation() {
    let validate = ops_tool("venv/bin/kubernetes-validate");
    let files = [deploy("kubernetes/sidecar.yaml"), deploy("kubernetes/egress.yaml")];
    let files: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec!["--strict"];
    args.extend(&files);
    let r = run(&validate, &args).await;
    assert_eq!(r.code, 0, "{}", r.out);
    for resource in [
        "configmap/mfagate-config",
        "secret/mfagate-tls",
        "deployment/partner-automation",
        "service/mfagate-admin",
        "configmap/mfagate-egress-config",
        "deployment/mfagate-egress",
        "service/mfagate-egress",
        "poddisruptionbudget/mfagate-egress",
        "networkpolicy/mfagate-egress",
        "networkpolicy/mfagate-clients-egress",
    ] {
        assert!(r.out.contains(&format!("passed for resource {resource}")), "{resource}: {}", r.out);
    }

    // The Prometheus Operator's ServiceMonitor, against its own schema.
    let npm = ops_tool("npm");
    let monitor = deploy("kubernetes/servicemonitor.yaml");
    let script = npm.join("servicemonitor-check.mjs");
    let r = run("node", &[script.to_str().unwrap(), monitor.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("ServiceMonitor/mfagate valid"), "{}", r.out);

    // Both refuse what the schema does not allow.
    let dir = tempfile::tempdir().unwrap();
    let sidecar = std::fs::read_to_string(files[0]).unwrap();
    let bad =
        broken_copy(dir.path(), "s.yaml", &sidecar, "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true");
    assert_ne!(run(&validate, &["--strict", &bad]).await.code, 0, "an unknown field fails");
    let text = std::fs::read_to_string(&monitor).unwrap();
    let bad = broken_copy(dir.path(), "m.yaml", &text, "interval: 30s", "interval: thirty");
    let r = run("node", &[script.to_str().unwrap(), &bad]).await;
    assert_eq!(r.code, 1, "{}", r.out);

    // What the issue asks of the pods: probes, non-root, read-only root, requests, TLS key as a Secret.
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for needle in [
            "path: /healthz",
            "path: /readyz",
            "runAsNonRoot: true",
            "readOnlyRootFilesystem: true",
            "allowPrivilegeEscalation: false",
            "requests:",
            "secretName: mfagate",
        ] {
            assert!(text.contains(needle), "{file}: {needle}");
        }
    }

    // The configuration each ConfigMap carries is one the gateway accepts.
    let python = ops_tool("venv/bin/python");
    for (file, name) in [(files[0], "mfagate-config"), (files[1], "mfagate-egress-config")] {
        let script = format!(
            "import sys, yaml\nfor d in yaml.safe_load_all(open({file:?})):\n    if d and d['kind'] == 'ConfigMap' and d['metadata']['name'] == {name:?}:\n        sys.stdout.write(d['data']['mfagate.toml'])\n"
        );
        let r = run(&python, &["-c", &script]).await;
        assert_eq!(r.code, 0, "{}", r.out);
        // check-config loads the certificate as `run` does: the files the
        // pod mounts are put where the configuration expects them, under a
        // root of the test's own.
        let root = dir.path().join(name);
        let tls = root.join("etc/mfagate/tls");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::create_dir_all(root.join("var/lib/mfagate")).unwrap();
        let pki = support::Pki::new(&root);
        let leaf = pki.leaf(&root, "pod", &["localhost"]);
        std::fs::copy(&leaf.cert_path, tls.join("tls.crt")).unwrap();
        std::fs::copy(&leaf.key_path, tls.join("tls.key")).unwrap();
        let mounted = r.out.replace("\"/etc/mfagate/", &format!("\"{}/etc/mfagate/", root.display()));
        let mounted = mounted.replace("\"/var/lib/mfagate", &format!("\"{}/var/lib/mfagate", root.display()));
        let toml = support::write(dir.path(), &format!("{name}.toml"), &mounted);
        let r = run(BIN, &["check-config", "--config", toml.to_str().unwrap()]).await;
        assert_eq!(r.code, 0, "{name}: {}", r.out);
        // Without the mounted files it is refused, naming the key.
        let unmounted = support::write(dir.path(), &format!("{name}-unmounted.toml"), &unmounted_copy(&mounted, &root));
        let r = run(BIN, &["check-config", "--config", unmounted.to_str().unwrap()]).await;
        assert!(r.code == 1 && r.out.contains("server.tls_cert"), "{name}: {}", r.out);
    }
}

#[tokio::test]
async fn dockerfile_passes_hadolint() {
    let hadolint = ops_tool("venv/bin/hadolint");
    let dockerfile = deploy("docker/Dockerfile");
    let r = run(&hadolint, &["--failure-threshold", "style", dockerfile.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.out);
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    assert!(text.matches("\nFROM ").count() >= 2, "multi-stage");
    assert!(text.contains("USER 65532:65532") && text.contains("distroless"), "small, non-root runtime");

    let dir = tempfile::tempdir().unwrap();
    let bad = broken_copy(dir.path(), "Dockerfile", &text, "USER 65532:65532", "RUN apt-get install curl\nUSER root");
    let r = run(&hadolint, &["--failure-threshold", "style", &bad]).await;
    assert_ne!(r.code, 0, "{}", r.out);
}

#[tokio::test]
async fn systemd_unit_verifies_and_is_hardened() {
    // The unit names the installed path; check it against the binary built here.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(deploy("systemd/mfagate.service")).unwrap();
    let unit = support::write(dir.path(), "mfagate.service", &text.replace("/usr/local/bin/mfagate", BIN));
    let unit = unit.to_str().unwrap();
    let r = run("systemd-analyze", &["verify", unit]).await;
    assert_eq!(r.code, 0, "{}", r.out);
    // Exposure at most 2.0 of 10 ("OK").
    let r = run("systemd-analyze", &["security", "--offline=yes", "--threshold=20", unit]).await;
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("Overall exposure level for mfagate.service: 1."), "{}", r.out);

    let start = text.find("DynamicUser=yes").unwrap();
    let end = text.find("LimitNOFILE").unwrap();
    let soft = format!("{}{}", &text[..start], &text[end..]);
    let soft = support::write(dir.path(), "soft.service", &soft.replace("/usr/local/bin/mfagate", BIN));
    let r = run("systemd-analyze", &["security", "--offline=yes", "--threshold=20", soft.to_str().unwrap()]).await;
    assert_ne!(r.code, 0, "a unit without the hardening is over the threshold: {}", r.out);
}
