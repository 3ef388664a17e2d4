//! The documentation against the code: README stays short; every link
//! between pages resolves (file and heading); every reason code is in the
//! answers page and every configuration key in the configuration reference
//! (the metrics are checked against a live scrape in tests/deploy.rs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// README, CONTRIBUTING and every page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![Path::new(ROOT).join("README.md"), Path::new(ROOT).join("CONTRIBUTING.md")];
    for entry in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The headings' anchors of a page, code blocks skipped.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// `[label](target)` links outside code blocks and inline code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn the_readme_is_short_and_points_to_the_docs() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 200, "README.md has {lines} lines: move detail into docs/");
    for page in pages().iter().filter(|p| p.starts_with(Path::new(ROOT).join("docs"))) {
        let name = format!("docs/{}", page.file_name().unwrap().to_string_lossy());
        assert!(readme.contains(&format!("]({name})")), "README's index does not link {name}");
    }
    for command in ["cargo run --release", "cargo test"] {
        assert!(readme.contains(&format!("```sh\n{command}\n```")), "README gives `{command}` on its own");
    }
}

#[test]
fn every_link_between_pages_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() { page.clone() } else { page.parent().unwrap().join(path) };
            if !file.exists() {
                broken.push(format!("{}: {target} (no such file)", page.display()));
                continue;
            }
            if !anchor.is_empty() {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&text).contains(anchor) {
                    broken.push(format!("{}: {target} (no such heading)", page.display()));
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_reason_code_is_on_the_answers_page() {
    let answers = read("docs/answers.md");
    let missing: Vec<_> = mfagate::error::Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|c| !answers.contains(&format!("`{c}`")))
        .collect();
    assert!(missing.is_empty(), "reason codes missing from docs/answers.md: {missing:?}");
}

#[test]
fn every_request_rule_is_on_the_answers_page() {
    let answers = read("docs/answers.md");
    let missing: Vec<_> = mfagate::reason::RequestRule::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|c| !answers.contains(&format!("| `{c}` |")))
        .collect();
    assert!(missing.is_empty(), "request rules missing from docs/answers.md: {missing:?}");
}

/// A configuration that sets every key, optional ones included.
const EVERY_KEY: &str = r#"
[server]
instance = "gw-1"
listen = "127.0.0.1:8443"
tls_cert = "c.pem"
tls_key = "k.pem"
[identity]
jwks_uri = "https://login.microsoftonline.com/common/discovery/keys"
jwks_ca = "ca.pem"
[[identity.sources]]
name = "s"
jwks_uri = "https://login.microsoftonline.com/common/discovery/keys"
metadata_uri = "https://login.microsoftonline.com/common/.well-known/openid-configuration"
issuers = ["https://sts.windows.net/{tenantid}/"]
token_version = "1.0"
required = true
refresh_interval = "1h"
unknown_kid_refetch_interval = "5m"
key_ttl = "24h"
max_stale = "24h"
metadata_refresh_interval = "12h"
[log]
[audit]
sink = "file"
path = "audit.jsonl"
[limits]
denied_per_ip = { requests = 100, per = "10s" }
store = "redis"
redis_url = "rediss://u:p@redis:6380/0"
redis_password_env = "REDIS_PASSWORD"
redis_ca = "redis-ca.pem"
store_timeout = "50ms"
on_store_error = "allow"
key_prefix = "mfagate:"
[[routes]]
name = "r"
kind = "partner-center"
host = "api.partnercenter.microsoft.com"
upstream = "https://api.partnercenter.microsoft.com"
upstream_ca = "ca.pem"
audiences = ["https://api.partnercenter.microsoft.com"]
enforce_after = "2027-01-01T00:00:00Z"
rule_modes = { mfa = "enforce" }
allowed_apps = ["23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21"]
denied_apps = ["@scripting-clients"]
partner_tenants = ["df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50"]
customers = [{ tenant_id = "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6", ends = "2027-01-31T00:00:00Z" }]
deny_roles = ["62e90394-69f5-4237-9190-012177145e10"]
auth_context_id = "c1"
error_format = "graph"
rate_limits = [{ key = "peer", requests = 5, per = "1m", burst = 10 }]
deny_grants = ["password", "urn:ietf:params:oauth:grant-type:device_code"]
require_client_assertion = true
allowed_token_clients = ["23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21"]
[[routes]]
name = "arm"
upstream = "https://management.azure.com"
audiences = ["https://management.azure.com"]
[routes.compute_guard]
families = ["NC", "ND"]
max_vcpus = 64
max_regions_per_hour = 3
quota_requests = true
uninspectable = "flag"
inspect_body_limit = "1MiB"
inspect_body_timeout = "10s"
[[exemptions]]
oid = "02223b6b-aa1d-42d4-9ec0-1b2bb9194438"
reason = "break-glass"
expires = "2027-01-01T00:00:00Z"
routes = ["r"]
[egress]
listen = "0.0.0.0:3128"
ca_cert = "ca.pem"
ca_key = "ca.key"
[egress.proxy_auth]
username = "svc"
password = "p"
[egress.resolve]
"api.partnercenter.microsoft.com" = "127.0.0.1:9443"
[egress.tenant_restrictions]
tenant_id = "df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50"
policy_id = "0b7e4c1d-2a3f-4b5c-9d6e-7f8a9b0c1d2e"
restrict_access_to_tenants = ["contoso.onmicrosoft.com"]
restrict_access_context = "df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50"
"#;

/// The key names of a raw configuration: every member of every table,
/// nested tables and tables in arrays included (`resolve`'s host names are
/// values, not keys).
fn key_names(value: &serde_json::Value, parent: &str, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) if parent != "resolve" && parent != "rule_modes" => {
            for (k, v) in map {
                out.insert(k.clone());
                key_names(v, k, out);
            }
        }
        serde_json::Value::Array(items) if parent != "customers" => {
            for item in items {
                key_names(item, parent, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_configuration_key_is_in_the_reference() {
    let raw: mfagate::config::raw::Config = toml::from_str(EVERY_KEY).unwrap();
    let mut keys = BTreeSet::new();
    key_names(&serde_json::to_value(&raw).unwrap(), "", &mut keys);
    assert!(keys.len() >= 80, "{} keys: {keys:?}", keys.len());
    let reference = read("docs/configuration.md");
    // A key is named as `key`, as `key = ...` in an example, or as a section `[key]`/`[[...key]]`.
    let named = |k: &str| {
        [
            format!("`{k}`"),
            format!("`{k} = "),
            format!("{{ {k} = "),
            format!("[{k}]"),
            format!(".{k}]"),
            format!("[[{k}]]"),
        ]
        .iter()
        .any(|form| reference.contains(form.as_str()))
    };
    let missing: Vec<_> = keys.iter().filter(|k| !named(k)).collect();
    assert!(missing.is_empty(), "keys missing from docs/configuration.md: {missing:?}");
}

/// The cells of a table row, `\|` kept inside a cell.
fn cells(row: &str) -> usize {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut n = 1;
    let mut escaped = false;
    let mut in_code = false;
    for c in row.chars() {
        match c {
            '\\' => escaped = !escaped,
            '`' if !escaped => in_code = !in_code,
            '|' if !escaped && !in_code => n += 1,
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    n
}

#[test]
fn every_table_has_a_header_and_rows_of_its_width() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if !lines[i].starts_with('|') {
                i += 1;
                continue;
            }
            let start = i;
            while i < lines.len() && lines[i].starts_with('|') {
                i += 1;
            }
            let table = &lines[start..i];
            let at = format!("{}:{}", page.display(), start + 1);
            if table.len() < 2
                || !table[1]
                    .trim_matches(['|', ' '])
                    .split('|')
                    .all(|c| c.trim().trim_matches(':').chars().all(|ch| ch == '-') && !c.trim().is_empty())
            {
                broken.push(format!("{at}: a table without a header separator (a blank line inside a table?)"));
                continue;
            }
            let width = cells(table[0]);
            for (n, row) in table.iter().enumerate().skip(2) {
                if cells(row) != width {
                    broken.push(format!("{at}: row {} has {} cells, the header {width}", n + 1, cells(row)));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// CI runs the test command README gives, and no other cargo command before
/// fuzzing: what a reader runs on a fresh clone is what CI proves.
#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let readme = read("README.md");
    let after = readme.split_once("Run the tests:").expect("README says how to run the tests").1;
    let command = after.split_once("```sh\n").unwrap().1.split_once("```").unwrap().0.trim();
    let ci = read(".ci/run");
    let cargo: Vec<&str> =
        ci.lines().map(str::trim).filter(|l| l.starts_with("cargo ") && !l.starts_with("cargo install ")).collect();
    assert_eq!(cargo, [command], ".ci/run");
}
