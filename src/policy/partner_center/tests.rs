//! Table tests of the whole policy over token shapes taken from Microsoft's
//! documentation: the Partner Center sample token, the v1 and v2 samples of
//! the access-token reference (the v1 one is a foreign principal), an AOBO
//! partner user in a customer tenant, and a client-credentials token.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::auth::claims::Claims;
use crate::policy::gdap::{Customers, GLOBAL_ADMINISTRATOR, Status};
use crate::policy::sam::SCRIPTING_CLIENTS;
use crate::policy::*;

mod modes;

const PC_APP: &str = "23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21";
const AZ_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const PARTNER: &str = "df845f1a-1111-2222-3333-444455556666";
const CUSTOMER: &str = "fa15d692-e9c7-4460-a743-29f2956fd429";
const MICROSOFT: &str = "72f988bf-86f1-41af-91ab-2d7cd0122247";
const OTHER: &str = "11111111-2222-3333-4444-555555555555";
const OID: &str = "02223b6b-aa1d-42d4-9ec0-1b2bb9194438";
const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
/// 2026-04-01T00:00:00Z
const APRIL: i64 = 1_775_001_600;
const NOW: i64 = APRIL - 86_400;

fn strict() -> RoutePolicy {
    RoutePolicy::default()
}

/// The Partner Center doc's sample v1 token, with a confidential client.
fn pc_sample() -> Value {
    json!({
        "aud": "https://api.partnercenter.microsoft.com", "iss": format!("https://sts.windows.net/{PARTNER}/"),
        "acr": "1", "amr": ["pwd", "mfa"], "appid": PC_APP, "appidacr": "1",
        "scp": "user_impersonation", "tid": PARTNER, "ver": "1.0",
    })
}

/// The access-token reference's v1 sample: a guest from Microsoft's tenant.
fn v1_doc_sample() -> Value {
    json!({
        "aud": "ef1da9d4-ff77-4c3e-a005-840c3f830745", "iss": format!("https://sts.windows.net/{CUSTOMER}/"),
        "acr": "1", "amr": ["wia"], "appid": "75dbe77f-10a3-4e59-85fd-8c127544f17c", "appidacr": "0",
        "idp": format!("https://sts.windows.net/{MICROSOFT}/"), "ipaddr": "222.222.222.22", "oid": OID,
        "scp": "user_impersonation", "tid": CUSTOMER, "unique_name": "abeli@microsoft.com",
        "uti": "FVsGxYXI30-TuikuuUoFAA", "ver": "1.0",
    })
}

/// The access-token reference's v2 sample: `azp`/`azpacr`, no `amr`.
fn v2_sample() -> Value {
    json!({
        "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "iss": format!("https://login.microsoftonline.com/{PARTNER}/v2.0"),
        "azp": PC_APP, "azpacr": "1", "name": "Abe Lincoln", "oid": OID, "preferred_username": "abeli@microsoft.com",
        "scp": "user_impersonation", "tid": PARTNER, "ver": "2.0",
    })
}

/// A partner technician (GDAP) calling Graph in a customer tenant.
fn aobo() -> Value {
    json!({
        "aud": "https://graph.microsoft.com", "iss": format!("https://sts.windows.net/{CUSTOMER}/"),
        "amr": ["pwd", "mfa"], "appid": PC_APP, "appidacr": "2", "idp": format!("https://sts.windows.net/{PARTNER}/"),
        "oid": OID, "scp": "Directory.Read.All", "tid": CUSTOMER, "ver": "1.0", "wids": [USER_ADMIN],
    })
}

fn app_only() -> Value {
    json!({"aud": "x", "iss": format!("https://sts.windows.net/{PARTNER}/"), "appid": PC_APP, "appidacr": "1",
           "roles": ["Partner.Read.All"], "idtyp": "app", "tid": PARTNER, "oid": OID, "ver": "1.0"})
}

fn with(mut v: Value, patch: Value) -> Value {
    for (k, val) in patch.as_object().unwrap() {
        if val.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = val.clone();
        }
    }
    v
}

fn claims(v: &Value) -> Claims {
    Claims::parse(v.to_string().as_bytes()).unwrap()
}

fn customers(entries: &[(&str, i64, Status)]) -> Option<Arc<Customers>> {
    let mut c = Customers::default();
    for (tenant, ends, status) in entries {
        c.add(tenant, *ends, *status);
    }
    Some(Arc::new(c))
}

fn decide(policy: &RoutePolicy, v: &Value, customer: Option<&str>, now: i64) -> Decision {
    let claims = claims(v);
    evaluate(policy, &Input { claims: &claims, verified: true, customer }, now).decision
}

/// Allow, or the denying reason; panics on report-only and exempt outcomes.
fn eval(policy: &RoutePolicy, v: &Value, customer: Option<&str>) -> Result<(), Reason> {
    match decide(policy, v, customer, NOW) {
        Decision::Allow => Ok(()),
        Decision::Deny(d) => Err(d.reason),
        other => panic!("unexpected {other:?}"),
    }
}

/// Name, policy, claims, Partner Center customer in the path, expected outcome.
type Row<'a> = (&'a str, &'a RoutePolicy, Value, Option<&'a str>, Result<(), Reason>);

#[test]
fn policy_table() {
    use Reason::*;
    let st = strict();
    let relaxed = RoutePolicy { allow_app_only: true, allow_public_clients: true, ..strict() };
    let allowlist = RoutePolicy { allowed_apps: vec![PC_APP.into()], ..strict() };
    let no_mfa_needed = RoutePolicy { require_mfa: false, ..strict() };
    let allowlist_app_only = RoutePolicy { allow_app_only: true, ..allowlist.clone() };
    let otp_only = RoutePolicy { accepted_amr: vec!["otp".into()], ..strict() };
    let scripting: Vec<String> = SCRIPTING_CLIENTS.iter().map(|(id, _)| id.to_string()).collect();
    let denied = RoutePolicy { denied_apps: scripting, allow_public_clients: true, ..strict() };
    let certificate = RoutePolicy { require_certificate_client: true, allow_app_only: true, ..strict() };
    let gdap = RoutePolicy {
        kind: RouteKind::Aobo,
        partner_tenants: vec![PARTNER.into()],
        deny_roles: vec![GLOBAL_ADMINISTRATOR.into()],
        customers: customers(&[(CUSTOMER, APRIL, Status::Live), (OTHER, APRIL, Status::Ended)]),
        allow_app_only: true,
        ..strict()
    };
    let gdap_no_partner_list = RoutePolicy { partner_tenants: vec![], ..gdap.clone() };
    let pc_customers = RoutePolicy {
        customers: customers(&[(CUSTOMER, APRIL, Status::Live), (OTHER, NOW - 1, Status::Live)]),
        ..strict()
    };
    let partner_user_in_customer = with(aobo(), json!({"wids": null}));
    let rows: Vec<Row> = vec![
        // Partner Center's MFA requirement.
        ("PC sample, confidential", &st, pc_sample(), None, Ok(())),
        (
            "PC sample as documented (appidacr 0)",
            &st,
            with(pc_sample(), json!({"appidacr": "0"})),
            None,
            Err(PublicClient),
        ),
        ("ngcmfa", &st, with(pc_sample(), json!({"amr": ["ngcmfa"]})), None, Ok(())),
        ("mfa rsa pwd", &st, with(pc_sample(), json!({"amr": ["mfa", "rsa", "pwd"]})), None, Ok(())),
        ("pwd only (ROPC-like)", &st, with(pc_sample(), json!({"amr": ["pwd"]})), None, Err(MfaRequired)),
        ("wiaormfa is ambiguous", &st, with(pc_sample(), json!({"amr": ["wiaormfa"]})), None, Err(MfaRequired)),
        ("wia", &st, with(pc_sample(), json!({"amr": ["wia"]})), None, Err(MfaRequired)),
        ("fed without mfa", &st, with(pc_sample(), json!({"amr": ["fed"]})), None, Err(MfaRequired)),
        ("mfa as substring only", &st, with(pc_sample(), json!({"amr": ["notmfa", "mfax"]})), None, Err(MfaRequired)),
        ("MFA in other case", &st, with(pc_sample(), json!({"amr": ["MFA"]})), None, Err(MfaRequired)),
        ("empty amr", &st, with(pc_sample(), json!({"amr": []})), None, Err(MfaRequired)),
        ("v1 without amr", &st, with(pc_sample(), json!({"amr": null})), None, Err(MfaRequired)),
        ("v2 sample: no amr", &st, v2_sample(), None, Err(MfaUnprovableV2)),
        ("v2 without ver, by issuer", &st, with(v2_sample(), json!({"ver": null})), None, Err(MfaUnprovableV2)),
        ("v2 with amr is judged on it", &st, with(v2_sample(), json!({"amr": ["mfa"]})), None, Ok(())),
        ("v2 with amr without mfa", &st, with(v2_sample(), json!({"amr": ["pwd"]})), None, Err(MfaRequired)),
        ("v2 public client, no amr", &st, with(v2_sample(), json!({"azpacr": "0"})), None, Err(MfaUnprovableV2)),
        ("v2 app-only needs no amr", &relaxed, with(v2_sample(), json!({"scp": null, "roles": ["a"]})), None, Ok(())),
        (
            "mfa checked before client type",
            &st,
            with(pc_sample(), json!({"amr": ["pwd"], "appidacr": "0"})),
            None,
            Err(MfaRequired),
        ),
        ("custom accepted amr", &otp_only, with(pc_sample(), json!({"amr": ["otp"]})), None, Ok(())),
        ("custom accepted amr excludes mfa", &otp_only, pc_sample(), None, Err(MfaRequired)),
        ("require_mfa off", &no_mfa_needed, with(pc_sample(), json!({"amr": ["pwd"]})), None, Ok(())),
        // Secure Application Model.
        ("secret client", &st, with(pc_sample(), json!({"appidacr": "1"})), None, Ok(())),
        ("certificate client", &st, with(pc_sample(), json!({"appidacr": "2"})), None, Ok(())),
        (
            "missing appidacr is not confidential",
            &st,
            with(pc_sample(), json!({"appidacr": null})),
            None,
            Err(PublicClient),
        ),
        ("unknown appidacr", &st, with(pc_sample(), json!({"appidacr": "3"})), None, Err(PublicClient)),
        (
            "Azure CLI public client",
            &st,
            with(pc_sample(), json!({"appid": AZ_CLI, "appidacr": "0"})),
            None,
            Err(PublicClient),
        ),
        ("v2 azpacr 2", &no_mfa_needed, with(v2_sample(), json!({"azpacr": "2"})), None, Ok(())),
        (
            "v2 azpacr 0",
            &no_mfa_needed,
            with(v2_sample(), json!({"azp": AZ_CLI, "azpacr": "0"})),
            None,
            Err(PublicClient),
        ),
        ("public client allowed", &relaxed, with(pc_sample(), json!({"appidacr": "0"})), None, Ok(())),
        ("v1 doc sample: public client without MFA", &st, v1_doc_sample(), None, Err(MfaRequired)),
        ("app-only denied", &st, app_only(), None, Err(AppOnlyNotAllowed)),
        ("app-only allowed", &relaxed, app_only(), None, Ok(())),
        ("app-only without idtyp", &st, with(app_only(), json!({"idtyp": null})), None, Err(AppOnlyNotAllowed)),
        ("app-only without roles", &st, json!({"appid": PC_APP, "appidacr": "1"}), None, Err(AppOnlyNotAllowed)),
        ("idtyp app beats scp", &st, with(pc_sample(), json!({"idtyp": "app"})), None, Err(AppOnlyNotAllowed)),
        ("idtyp user", &st, with(pc_sample(), json!({"idtyp": "user", "scp": null})), None, Ok(())),
        ("user with app roles is still a user", &st, with(pc_sample(), json!({"roles": ["Admin"]})), None, Ok(())),
        ("allowlisted app", &allowlist, pc_sample(), None, Ok(())),
        (
            "allowlist, upper-case appid",
            &allowlist,
            with(pc_sample(), json!({"appid": PC_APP.to_uppercase()})),
            None,
            Ok(()),
        ),
        ("app not on allowlist", &allowlist, with(pc_sample(), json!({"appid": OTHER})), None, Err(AppNotAllowed)),
        ("allowlist, no appid", &allowlist, with(pc_sample(), json!({"appid": null})), None, Err(AppNotAllowed)),
        ("allowlist via azp", &allowlist, with(pc_sample(), json!({"appid": null, "azp": PC_APP})), None, Ok(())),
        (
            "allowlist applies to app-only",
            &allowlist_app_only,
            with(app_only(), json!({"appid": AZ_CLI})),
            None,
            Err(AppNotAllowed),
        ),
        ("allowlisted app-only", &allowlist_app_only, app_only(), None, Ok(())),
        (
            "denied: Azure CLI with MFA",
            &denied,
            with(pc_sample(), json!({"appid": AZ_CLI, "appidacr": "0"})),
            None,
            Err(AppDenied),
        ),
        (
            "denied: Graph CLI via azp",
            &denied,
            with(v2_sample(), json!({"azp": "14d82eec-204b-4c2f-b7e8-296a70dab67e", "amr": ["mfa"]})),
            None,
            Err(AppDenied),
        ),
        (
            "denied beats app-only",
            &denied,
            with(app_only(), json!({"appid": "1950A258-227B-4E31-A9CF-717495945FC2"})),
            None,
            Err(AppDenied),
        ),
        ("denied list, own app passes", &denied, with(pc_sample(), json!({"appidacr": "0"})), None, Ok(())),
        ("certificate required, secret", &certificate, pc_sample(), None, Err(CertificateRequired)),
        ("certificate required, certificate", &certificate, with(pc_sample(), json!({"appidacr": "2"})), None, Ok(())),
        (
            "certificate required, v2 azpacr 2",
            &certificate,
            with(v2_sample(), json!({"azpacr": "2", "amr": ["mfa"]})),
            None,
            Ok(()),
        ),
        ("certificate required for app-only too", &certificate, app_only(), None, Err(CertificateRequired)),
        (
            "certificate required, public client",
            &certificate,
            with(pc_sample(), json!({"appidacr": "0"})),
            None,
            Err(PublicClient),
        ),
        // AOBO / GDAP.
        (
            "AOBO foreign principal with mfa, no GDAP rules",
            &st,
            with(pc_sample(), json!({"idp": format!("https://sts.windows.net/{MICROSOFT}/")})),
            None,
            Ok(()),
        ),
        ("AOBO foreign principal without mfa", &st, with(aobo(), json!({"amr": ["pwd"]})), None, Err(MfaRequired)),
        ("GDAP: partner user, live customer", &gdap, partner_user_in_customer.clone(), None, Ok(())),
        ("GDAP: least-privileged role", &gdap, aobo(), None, Ok(())),
        (
            "GDAP: Global Administrator",
            &gdap,
            with(aobo(), json!({"wids": [USER_ADMIN, GLOBAL_ADMINISTRATOR]})),
            None,
            Err(PrivilegedRole),
        ),
        (
            "GDAP: role ids compare case-insensitively",
            &gdap,
            with(aobo(), json!({"wids": [GLOBAL_ADMINISTRATOR.to_uppercase()]})),
            None,
            Err(PrivilegedRole),
        ),
        (
            "GDAP: foreign principal from another tenant",
            &gdap,
            with(aobo(), json!({"idp": format!("https://sts.windows.net/{MICROSOFT}/")})),
            None,
            Err(ForeignTenantNotAllowed),
        ),
        (
            "GDAP: v1 doc sample guest (Microsoft tenant)",
            &gdap,
            with(v1_doc_sample(), json!({"amr": ["mfa"], "appidacr": "1"})),
            None,
            Err(ForeignTenantNotAllowed),
        ),
        (
            "GDAP: MSA guest (idp live.com)",
            &gdap,
            with(aobo(), json!({"idp": "live.com"})),
            None,
            Err(ForeignTenantNotAllowed),
        ),
        (
            "GDAP: v2 issuer, same tenant idp is home",
            &gdap,
            with(
                aobo(),
                json!({"idp": format!("https://sts.windows.net/{CUSTOMER}/"), "iss": format!("https://login.microsoftonline.com/{CUSTOMER}/v2.0")}),
            ),
            None,
            Ok(()),
        ),
        (
            "GDAP: customer without relationship",
            &gdap,
            with(aobo(), json!({"tid": MICROSOFT, "iss": format!("https://sts.windows.net/{MICROSOFT}/")})),
            None,
            Err(CustomerNotAllowed),
        ),
        ("GDAP: terminated relationship", &gdap, with(aobo(), json!({"tid": OTHER})), None, Err(RelationshipExpired)),
        (
            "GDAP: partner's own tenant is not a customer",
            &gdap,
            with(pc_sample(), json!({"aud": "https://graph.microsoft.com"})),
            None,
            Ok(()),
        ),
        ("GDAP: no tid", &gdap, with(aobo(), json!({"tid": null})), None, Err(CustomerNotAllowed)),
        ("GDAP: app-only in customer tenant", &gdap, with(app_only(), json!({"tid": CUSTOMER})), None, Ok(())),
        (
            "GDAP: app-only in unknown tenant",
            &gdap,
            with(app_only(), json!({"tid": MICROSOFT})),
            None,
            Err(CustomerNotAllowed),
        ),
        (
            "GDAP: foreign check before customer",
            &gdap,
            with(
                aobo(),
                json!({"idp": format!("https://sts.windows.net/{MICROSOFT}/"), "tid": "99999999-8888-7777-6666-555555555555"}),
            ),
            None,
            Err(ForeignTenantNotAllowed),
        ),
        (
            "GDAP: no partner list, partner tenant is a customer too",
            &gdap_no_partner_list,
            with(pc_sample(), json!({})),
            None,
            Err(CustomerNotAllowed),
        ),
        (
            "GDAP: no partner list, any foreign tenant",
            &gdap_no_partner_list,
            with(aobo(), json!({"idp": format!("https://sts.windows.net/{MICROSOFT}/")})),
            None,
            Ok(()),
        ),
        (
            "GDAP rules after MFA",
            &gdap,
            with(aobo(), json!({"amr": ["pwd"], "wids": [GLOBAL_ADMINISTRATOR]})),
            None,
            Err(MfaRequired),
        ),
        ("PC: live customer in path", &pc_customers, pc_sample(), Some(CUSTOMER), Ok(())),
        ("PC: expired customer in path", &pc_customers, pc_sample(), Some(OTHER), Err(RelationshipExpired)),
        ("PC: unknown customer in path", &pc_customers, pc_sample(), Some(MICROSOFT), Err(CustomerNotAllowed)),
        ("PC: no customer in path", &pc_customers, pc_sample(), None, Ok(())),
        (
            "PC: the token's tid is not the customer",
            &pc_customers,
            with(pc_sample(), json!({"tid": CUSTOMER})),
            Some(MICROSOFT),
            Err(CustomerNotAllowed),
        ),
    ];
    assert!(rows.len() >= 40, "{}", rows.len());
    let mut failures = Vec::new();
    for (name, policy, v, customer, expected) in rows {
        let got = eval(policy, &v, customer);
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
