//! The routes' policy keys: defaults by route kind, values, files, errors and environment overrides.

use super::*;

const GRAPH: &str = r#"
[[routes]]
name = "graph"
upstream = "https://graph.microsoft.com"
audiences = ["https://graph.microsoft.com"]
"#;

#[test]
fn policy_defaults_follow_the_route_kind() {
    let config = Config::from_toml(&format!("{MINIMAL}path_prefix = \"/v1\"\n{GRAPH}")).unwrap();
    let (pc, graph) = (&config.routes[0].policy, &config.routes[1].policy);
    assert_eq!(pc.kind, RouteKind::PartnerCenter);
    assert!(pc.deny_roles.is_empty());
    assert_eq!(graph.kind, RouteKind::Aobo);
    assert_eq!(graph.deny_roles, [crate::policy::gdap::GLOBAL_ADMINISTRATOR]);
    for p in [pc, graph] {
        assert!(p.verify_signature && !p.require_certificate_client);
        assert!(p.denied_apps.is_empty() && p.partner_tenants.is_empty() && p.customers.is_none());
        assert_eq!(p.schedule, crate::policy::Schedule::ENFORCE);
        assert_eq!(p.rule_modes, [None; crate::policy::Rule::ALL.len()]);
        assert!(p.auth_context_id.is_none() && p.exemptions.is_empty());
    }
    assert_eq!(config.audit.sink, AuditSink::Off);
    let graph = Config::from_toml(&format!("{GRAPH}deny_roles = []\n")).unwrap();
    assert!(graph.routes[0].policy.deny_roles.is_empty());
    let login = Config::from_toml(
        "[[routes]]\nname = \"login\"\nkind = \"login\"\nupstream = \"https://login.microsoftonline.com\"\n",
    )
    .unwrap();
    assert_eq!(login.routes[0].policy.kind, RouteKind::Login);
    let inferred =
        Config::from_toml("[[routes]]\nname = \"login\"\nupstream = \"https://LOGIN.microsoftonline.com\"\n").unwrap();
    assert_eq!(inferred.routes[0].policy.kind, RouteKind::Login);
    // A route to the sign-in host cannot be another kind.
    let explicit = err_key(
        "[[routes]]\nname = \"idp\"\nkind = \"aobo\"\nupstream = \"https://login.microsoftonline.com\"\naudiences = [\"a\"]\n",
    );
    assert_eq!(explicit, "routes[0].kind");
}

#[test]
fn policy_keys_are_read() {
    let text = format!(
        r#"{GRAPH}
mode = "enforce"
enforce_after = 2026-04-01T00:00:00Z
rule_modes = {{ deny_roles = "report-only", legacy_auth = "enforce" }}
verify_signature = false
require_certificate_client = true
denied_apps = ["@scripting-clients", "04B07795-8DDB-461A-BBEE-02F9E1BF7B46", "11111111-2222-3333-4444-555555555555"]
partner_tenants = ["DF845F1A-1111-2222-3333-444455556666"]
customers = [{{ tenant_id = "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6", ends = "2027-01-01" }}]
deny_roles = ["62e90394-69f5-4237-9190-012177145e10", "e8611ab8-c189-46e8-94e1-60213ab1f814"]
auth_context_id = "C1"

[audit]
sink = "file"
path = "audit.jsonl"

[[exemptions]]
oid = "02223b6b-aa1d-42d4-9ec0-1b2bb9194438"
reason = "break-glass account"
expires = "2026-06-30T00:00:00Z"

[[exemptions]]
appid = "23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21"
reason = "nightly report, migrating"
expires = 2026-05-01T00:00:00Z
routes = ["nowhere-else"]

[[routes]]
name = "nowhere-else"
upstream = "https://graph.microsoft.com"
audiences = ["x"]
"#
    );
    let config = Config::from_toml(&text).unwrap();
    let p = &config.routes[0].policy;
    assert_eq!(p.schedule.enforce_after, Some(1_775_001_600));
    assert_eq!(p.rule_modes[crate::policy::Rule::DenyRoles as usize], Some(Mode::ReportOnly));
    assert_eq!(p.rule_modes[crate::policy::Rule::LegacyAuth as usize], Some(Mode::Enforce));
    assert!(!p.verify_signature && p.require_certificate_client);
    assert_eq!(
        p.denied_apps.len(),
        crate::policy::sam::SCRIPTING_CLIENTS.len() + 1,
        "preset expanded, duplicates merged"
    );
    assert_eq!(p.partner_tenants, ["df845f1a-1111-2222-3333-444455556666"]);
    let customers = p.customers.as_ref().unwrap();
    assert_eq!(customers.relationship_end("7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6"), Some(1_798_761_600));
    assert_eq!(p.deny_roles.len(), 2);
    assert_eq!(p.auth_context_id.as_deref(), Some("c1"));
    assert_eq!(config.audit.sink, AuditSink::File("audit.jsonl".into()));
    assert_eq!(config.exemptions.len(), 2);
    assert_eq!(p.exemptions.len(), 1, "the second exemption names another route");
    assert_eq!(config.routes[1].policy.exemptions.len(), 2);
    assert_eq!(config.exemptions[1].expires, 1_777_593_600);
}

#[test]
fn customers_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gdap.csv");
    std::fs::write(&path, "tenantId,endDateTime,status\n7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6,2027-01-01,active\n")
        .unwrap();
    let text = format!("{GRAPH}customers = \"{}\"\n", path.display());
    let config = Config::from_toml(&text).unwrap();
    assert_eq!(config.routes[0].policy.customers.as_ref().unwrap().len(), 1);
    std::fs::write(&path, "tenantId,endDateTime\nnot-a-tenant,2027-01-01\n").unwrap();
    let e = err(&text);
    assert_eq!(e.key(), Some("routes[0].customers"));
    assert!(e.to_string().contains("line 2"), "{e}");
    let e = err(&format!("{GRAPH}customers = \"{}\"\n", dir.path().join("missing.json").display()));
    assert_eq!(e.key(), Some("routes[0].customers"));
    assert!(e.to_string().contains("missing.json"), "{e}");
}

#[test]
fn bad_policy_values_name_the_key() {
    let cases = [
        ("kind = \"graph\"", "routes[0].kind"),
        ("enforce_after = \"next spring\"", "routes[0].enforce_after"),
        ("enforce_after = \"2026-04-01T00:00:00\"", "routes[0].enforce_after"),
        ("mode = \"report-only\"\nenforce_after = \"2026-04-01T00:00:00Z\"", "routes[0].enforce_after"),
        ("rule_modes = { mfa_rule = \"enforce\" }", "routes[0].rule_modes.mfa_rule"),
        ("rule_modes = { mfa = \"audit\" }", "routes[0].rule_modes.mfa"),
        ("verify_signature = \"sometimes\"", "routes[0].verify_signature"),
        ("denied_apps = [\"@powershell\"]", "routes[0].denied_apps[0]"),
        ("partner_tenants = [\"contoso.onmicrosoft.com\"]", "routes[0].partner_tenants[0]"),
        ("deny_roles = [\"Global Administrator\"]", "routes[0].deny_roles[0]"),
        ("auth_context_id = \"mfa\"", "routes[0].auth_context_id"),
        ("auth_context_id = \"c0\"", "routes[0].auth_context_id"),
        ("auth_context_id = \"c100\"", "routes[0].auth_context_id"),
        ("customers = [{ tenant_id = \"7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6\" }]", "routes[0].customers[0].ends"),
        ("customers = [{ ends = \"2027-01-01\" }]", "routes[0].customers[0].tenant_id"),
        (
            "customers = [{ tenant_id = \"7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6\", ends = \"2027-01-01\", end = \"x\" }]",
            "routes[0].customers[0].end",
        ),
        ("customers = [{ tenant_id = \"contoso\", ends = \"2027-01-01\" }]", "routes[0].customers[0]"),
        ("customers = 5", "routes[0].customers"),
    ];
    for (line, key) in cases {
        assert_eq!(err_key(&format!("{MINIMAL}{line}\n")), key, "{line}");
    }
    let exemption = |body: &str| err_key(&format!("{MINIMAL}\n[[exemptions]]\n{body}\n"));
    let oid = "oid = \"02223b6b-aa1d-42d4-9ec0-1b2bb9194438\"";
    assert_eq!(exemption(&format!("{oid}\nreason = \"x\"")), "exemptions[0]", "expires is mandatory");
    assert_eq!(exemption(&format!("{oid}\nreason = \"x\"\nexpires = \"soon\"")), "exemptions[0].expires");
    assert_eq!(exemption(&format!("{oid}\nreason = \" \"\nexpires = \"2026-06-30\"")), "exemptions[0].reason");
    assert_eq!(exemption("reason = \"x\"\nexpires = \"2026-06-30\""), "exemptions[0]");
    assert_eq!(
        exemption(&format!(
            "{oid}\nappid = \"23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21\"\nreason = \"x\"\nexpires = \"2026-06-30\""
        )),
        "exemptions[0]"
    );
    assert_eq!(exemption("oid = \"admin@contoso\"\nreason = \"x\"\nexpires = \"2026-06-30\""), "exemptions[0].oid");
    assert_eq!(
        exemption(&format!("{oid}\nreason = \"x\"\nexpires = \"2026-06-30\"\nroutes = [\"pc\", \"gone\"]")),
        "exemptions[0].routes[1]"
    );
    assert_eq!(err_key(&format!("[audit]\nsink = \"syslog\"\n{MINIMAL}")), "audit.sink");
    assert_eq!(err_key(&format!("[audit]\nsink = \"file\"\n{MINIMAL}")), "audit.path");
    assert_eq!(err_key("[[routes]]\nname = \"pc\"\nupstream = \"https://x\"\n"), "routes[0].audiences");
}

#[test]
fn environment_overrides_policy_keys() {
    let env = [
        ("MFAGATE__ROUTES__0__RULE_MODES__MFA", "report-only"),
        ("MFAGATE__ROUTES__0__ENFORCE_AFTER", "2026-04-01T00:00:00Z"),
        ("MFAGATE__ROUTES__0__DENIED_APPS", r#"["@scripting-clients"]"#),
        ("MFAGATE__AUDIT__SINK", "stdout"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let config = Config::from_toml_with_env(MINIMAL, env).unwrap();
    let p = &config.routes[0].policy;
    assert_eq!(p.rule_modes[crate::policy::Rule::Mfa as usize], Some(Mode::ReportOnly));
    assert_eq!(p.schedule.enforce_after, Some(1_775_001_600));
    assert!(!p.denied_apps.is_empty());
    assert_eq!(config.audit.sink, AuditSink::Stdout);
}
