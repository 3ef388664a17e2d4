//! MSAL for Python (`tests/py/clients/msal_clients.py`): every flow gets its
//! token from the fake authority, and the gateway judges the token as the
//! policy says, through both listeners.

use crate::run::{self, BOTH, Via};
use crate::support::authority::{Authority, ENTRA_HOST};

#[tokio::test]
async fn msal_confidential_and_public_clients() {
    let (env, authority) = crate::start_with_authority().await;
    for via in BOTH {
        let before = env.upstream.hits();
        let out = run::python("msal_clients.py", &[], &crate::sdk_env(&env, &authority, via)).await;
        let outcome = |name: &str| (out[name]["status"].as_u64().unwrap_or(0), out[name]["reason"].clone());
        let what = format!("{via:?}: {out}");
        // Client credentials give app-only tokens, which the route refuses.
        assert_eq!(outcome("secret_client_credentials"), (403, "app_only_not_allowed".into()), "{what}");
        assert_eq!(outcome("certificate_client_credentials"), (403, "app_only_not_allowed".into()), "{what}");
        // A user's refresh token: allowed with MFA, from either credential.
        assert_eq!(out["secret_refresh_token_mfa"]["status"], 200, "{what}");
        assert_eq!(out["certificate_refresh_token_mfa"]["status"], 200, "{what}");
        assert_eq!(outcome("secret_refresh_token_password_only"), (401, "mfa_required".into()), "{what}");
        // A public client is refused even with MFA.
        assert_eq!(outcome("public_device_code"), (403, "public_client".into()), "{what}");
        assert_eq!(outcome("public_refresh_token_mfa"), (403, "public_client".into()), "{what}");
        assert_eq!(env.upstream.hits(), before + 2, "{what}");
    }
    let requests = authority.requests();
    let grants =
        |auth: &str, grant: &str| requests.iter().filter(|r| r.client_auth == auth && r.grant_type == grant).count();
    assert_eq!(grants("secret", "client_credentials"), 2, "{requests:?}");
    assert_eq!(grants("certificate", "client_credentials"), 2, "a signed client assertion: {requests:?}");
    assert_eq!(grants("certificate", "refresh_token"), 2, "{requests:?}");
    assert_eq!(grants("none", "urn:ietf:params:oauth:grant-type:device_code"), 2, "{requests:?}");
}

/// A password grant refused by a login route reads as an OAuth error:
/// MSAL returns `error` and `error_description`, azure-identity raises
/// with the description. In Partner Center's shape (the route's
/// `error_format` set to it) MSAL finds no `error` and azure-identity says
/// "None": what partners saw before login routes answered as OAuth.
#[tokio::test]
async fn a_refused_password_grant_reads_as_an_oauth_error() {
    for format in [None, Some("partner-center")] {
        let authority = Authority::start().await;
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("authority-ca.pem");
        std::fs::write(&ca, &authority.ca_pem).unwrap();
        let format_line = format.map(|f| format!("error_format = \"{f}\"")).unwrap_or_default();
        let login = format!(
            "[[routes]]\nname = \"entra\"\nhost = \"{ENTRA_HOST}\"\nupstream = \"https://{ENTRA_HOST}\"\nupstream_ca = {}\n{format_line}\n",
            crate::support::toml_str(&ca)
        );
        let env = crate::setup().more_routes(&login).resolve(ENTRA_HOST, authority.addr).start().await;
        let out = run::python("password_grant.py", &[], &crate::sdk_env(&env, &authority, Via::Egress)).await;
        let what = format!("{format:?}: {out}");
        let (msal, identity) = (&out["msal"], &out["azure_identity"]);
        assert_eq!(msal["access_token"], false, "{what}");
        assert_eq!(identity["raised"], "ClientAuthenticationError", "{what}");
        let message = identity["message"].as_str().unwrap_or_default();
        match format {
            None => {
                assert_eq!(msal["error"], "unauthorized_client", "{what}");
                assert_eq!(msal["reason"], "password_grant", "{what}");
                assert!(msal["correlation_id"].is_string(), "{what}");
                let description = msal["error_description"].as_str().unwrap_or_default();
                assert!(description.starts_with("The resource owner password credentials grant"), "{what}");
                assert!(message.contains("The resource owner password credentials grant"), "{what}");
            }
            Some(_) => {
                assert!(msal["error"].is_null(), "{what}");
                assert!(!message.contains("password credentials grant"), "{what}");
            }
        }
        let grants = authority.requests();
        assert!(grants.iter().all(|r| r.grant_type != "password"), "a password grant reached Entra: {grants:?}");
    }
}

/// With tenant restrictions the egress proxy intercepts the sign-in host:
/// MSAL's sign-ins through it still get their tokens from the authority,
/// and every token request reached it with exactly one
/// `sec-Restrict-Tenant-Access-Policy`, the configured value.
#[tokio::test]
async fn msal_signs_in_through_tenant_restrictions() {
    let authority = Authority::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("authority-ca.pem");
    std::fs::write(&ca, &authority.ca_pem).unwrap();
    let login = format!(
        "[[routes]]\nname = \"entra\"\nhost = \"{ENTRA_HOST}\"\nupstream = \"https://{ENTRA_HOST}\"\nupstream_ca = {}\n",
        crate::support::toml_str(&ca)
    );
    let policy = "6f1c0a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    let section = format!("[egress.tenant_restrictions]\ntenant_id = \"{}\"\npolicy_id = \"{policy}\"\n", crate::TID);
    let env = crate::setup().more_routes(&login).egress(&section).resolve(ENTRA_HOST, authority.addr).start().await;
    let out = run::python("msal_clients.py", &[], &crate::sdk_env(&env, &authority, Via::Egress)).await;
    let outcome = |name: &str| (out[name]["status"].as_u64().unwrap_or(0), out[name]["reason"].clone());
    assert_eq!(out["secret_refresh_token_mfa"]["status"], 200, "{out}");
    assert_eq!(out["certificate_refresh_token_mfa"]["status"], 200, "{out}");
    assert_eq!(outcome("secret_client_credentials"), (403, "app_only_not_allowed".into()), "{out}");
    assert_eq!(outcome("public_device_code"), (403, "public_client".into()), "{out}");
    let requests = authority.requests();
    assert!(requests.len() >= 6, "{requests:?}");
    let expected = vec![format!("{}:{policy}", crate::TID)];
    for r in &requests {
        assert_eq!(r.tenant_restrictions, expected, "{r:?}");
    }
    let injected =
        env.metric(&format!(r#"mfagate_tenant_restrictions_total{{action="injected",host="{ENTRA_HOST}"}}"#)).await;
    assert!(injected >= requests.len() as f64, "discovery and token requests: {injected}");
}
