//! Table test of the partner rules over token shapes taken from Microsoft's
//! documentation (the Partner Center sample token, the v1/v2 claim references).

use super::*;
use serde_json::{Value, json};

const PC_APP: &str = "23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21";
const AZ_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

fn strict() -> RoutePolicy {
    RoutePolicy {
        require_mfa: true,
        accepted_amr: vec!["mfa".into(), "ngcmfa".into()],
        allow_app_only: false,
        allow_public_clients: false,
        allowed_apps: vec![],
    }
}

/// The Partner Center doc's sample v1 token, with a confidential client.
fn pc_sample() -> Value {
    json!({
        "aud": "https://api.partnercenter.microsoft.com", "iss": "https://sts.windows.net/df845f1a-1111-2222-3333-444455556666/",
        "acr": "1", "amr": ["pwd", "mfa"], "appid": PC_APP, "appidacr": "1",
        "scp": "user_impersonation", "tid": "df845f1a-1111-2222-3333-444455556666", "ver": "1.0",
    })
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

fn eval(policy: &RoutePolicy, v: &Value) -> Result<(), DenyReason> {
    let claims = Claims::parse(v.to_string().as_bytes()).unwrap();
    evaluate(policy, &claims)
}

#[test]
fn partner_rules_table() {
    use DenyReason::*;
    let st = strict();
    let app_only =
        json!({"aud": "x", "iss": "x", "appid": PC_APP, "appidacr": "1", "roles": ["a"], "idtyp": "app", "tid": "t"});
    let relaxed = RoutePolicy { allow_app_only: true, allow_public_clients: true, ..strict() };
    let allowlist = RoutePolicy { allowed_apps: vec![PC_APP.into()], ..strict() };
    let no_mfa_needed = RoutePolicy { require_mfa: false, ..strict() };
    let allowlist_app_only = RoutePolicy { allow_app_only: true, ..allowlist.clone() };
    let otp_only = RoutePolicy { accepted_amr: vec!["otp".into()], ..strict() };
    let rows: Vec<(&str, &RoutePolicy, Value, Result<(), DenyReason>)> = vec![
        ("PC sample, confidential", &st, pc_sample(), Ok(())),
        ("PC sample as documented (appidacr 0)", &st, with(pc_sample(), json!({"appidacr": "0"})), Err(PublicClient)),
        ("ngcmfa", &st, with(pc_sample(), json!({"amr": ["ngcmfa"]})), Ok(())),
        ("mfa rsa pwd", &st, with(pc_sample(), json!({"amr": ["mfa", "rsa", "pwd"]})), Ok(())),
        ("pwd only (ROPC-like)", &st, with(pc_sample(), json!({"amr": ["pwd"]})), Err(MfaRequired)),
        ("wiaormfa is ambiguous", &st, with(pc_sample(), json!({"amr": ["wiaormfa"]})), Err(MfaRequired)),
        ("wia", &st, with(pc_sample(), json!({"amr": ["wia"]})), Err(MfaRequired)),
        ("fed without mfa", &st, with(pc_sample(), json!({"amr": ["fed"]})), Err(MfaRequired)),
        ("mfa as substring only", &st, with(pc_sample(), json!({"amr": ["notmfa", "mfax"]})), Err(MfaRequired)),
        ("MFA in other case", &st, with(pc_sample(), json!({"amr": ["MFA"]})), Err(MfaRequired)),
        ("empty amr", &st, with(pc_sample(), json!({"amr": []})), Err(MfaRequired)),
        ("no amr", &st, with(pc_sample(), json!({"amr": null})), Err(MfaRequired)),
        (
            "v2 token: no amr",
            &st,
            with(
                pc_sample(),
                json!({"amr": null, "ver": "2.0", "appid": null, "appidacr": null, "azp": PC_APP, "azpacr": "1"}),
            ),
            Err(MfaRequired),
        ),
        (
            "mfa checked before client type",
            &st,
            with(pc_sample(), json!({"amr": ["pwd"], "appidacr": "0"})),
            Err(MfaRequired),
        ),
        ("secret client", &st, with(pc_sample(), json!({"appidacr": "1"})), Ok(())),
        ("certificate client", &st, with(pc_sample(), json!({"appidacr": "2"})), Ok(())),
        ("missing appidacr is not confidential", &st, with(pc_sample(), json!({"appidacr": null})), Err(PublicClient)),
        ("unknown appidacr", &st, with(pc_sample(), json!({"appidacr": "3"})), Err(PublicClient)),
        (
            "Azure CLI public client",
            &st,
            with(pc_sample(), json!({"appid": AZ_CLI, "appidacr": "0"})),
            Err(PublicClient),
        ),
        (
            "v2 azpacr 2",
            &no_mfa_needed,
            with(pc_sample(), json!({"appid": null, "appidacr": null, "azp": PC_APP, "azpacr": "2"})),
            Ok(()),
        ),
        (
            "v2 azpacr 0",
            &no_mfa_needed,
            with(pc_sample(), json!({"appid": null, "appidacr": null, "azp": AZ_CLI, "azpacr": "0"})),
            Err(PublicClient),
        ),
        ("public client allowed", &relaxed, with(pc_sample(), json!({"appidacr": "0"})), Ok(())),
        ("require_mfa off", &no_mfa_needed, with(pc_sample(), json!({"amr": ["pwd"]})), Ok(())),
        ("app-only denied", &st, app_only.clone(), Err(AppOnlyNotAllowed)),
        ("app-only allowed", &relaxed, app_only.clone(), Ok(())),
        ("app-only without idtyp", &st, with(app_only.clone(), json!({"idtyp": null})), Err(AppOnlyNotAllowed)),
        ("app-only without roles", &st, json!({"appid": PC_APP, "appidacr": "1"}), Err(AppOnlyNotAllowed)),
        ("app-only needs no amr when allowed", &relaxed, with(app_only.clone(), json!({"amr": null})), Ok(())),
        ("idtyp app beats scp", &st, with(pc_sample(), json!({"idtyp": "app"})), Err(AppOnlyNotAllowed)),
        ("idtyp user", &st, with(pc_sample(), json!({"idtyp": "user", "scp": null})), Ok(())),
        ("user with app roles is still a user", &st, with(pc_sample(), json!({"roles": ["Admin"]})), Ok(())),
        (
            "user with roles and no mfa",
            &st,
            with(pc_sample(), json!({"roles": ["Admin"], "amr": ["pwd"]})),
            Err(MfaRequired),
        ),
        ("allowlisted app", &allowlist, pc_sample(), Ok(())),
        ("allowlist, upper-case appid", &allowlist, with(pc_sample(), json!({"appid": PC_APP.to_uppercase()})), Ok(())),
        (
            "app not on allowlist",
            &allowlist,
            with(pc_sample(), json!({"appid": "11111111-2222-3333-4444-555555555555"})),
            Err(AppNotAllowed),
        ),
        ("allowlist, no appid", &allowlist, with(pc_sample(), json!({"appid": null})), Err(AppNotAllowed)),
        ("allowlist via azp", &allowlist, with(pc_sample(), json!({"appid": null, "azp": PC_APP})), Ok(())),
        (
            "allowlist applies to app-only",
            &allowlist_app_only,
            with(app_only.clone(), json!({"appid": AZ_CLI})),
            Err(AppNotAllowed),
        ),
        ("allowlisted app-only", &allowlist_app_only, app_only.clone(), Ok(())),
        (
            "AOBO foreign principal with mfa",
            &st,
            with(pc_sample(), json!({"idp": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"})),
            Ok(()),
        ),
        (
            "AOBO foreign principal without mfa",
            &st,
            with(
                pc_sample(),
                json!({"idp": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/", "amr": ["pwd"]}),
            ),
            Err(MfaRequired),
        ),
        ("custom accepted amr", &otp_only, with(pc_sample(), json!({"amr": ["otp"]})), Ok(())),
        ("custom accepted amr excludes mfa", &otp_only, pc_sample(), Err(MfaRequired)),
    ];
    assert!(rows.len() >= 40);
    for (name, policy, claims, expected) in rows {
        assert_eq!(eval(policy, &claims), expected, "{name}");
    }
}

#[test]
fn classification() {
    let c = |v: Value| classify(&Claims::parse(v.to_string().as_bytes()).unwrap());
    assert_eq!(c(pc_sample()), Principal::Delegated);
    assert_eq!(c(json!({"roles": ["x"]})), Principal::AppOnly);
    assert_eq!(c(json!({})), Principal::AppOnly);
    assert_eq!(c(json!({"idtyp": "app", "scp": "x"})), Principal::AppOnly);
    assert_eq!(ClientType::of(&Claims::parse(br#"{"azpacr":"2"}"#).unwrap()), ClientType::Certificate);
}
