//! MSAL for Python (`tests/py/clients/msal_clients.py`): every flow gets its
//! token from the fake authority, and the gateway judges the token as the
//! policy says, through both listeners.

use crate::run::{self, BOTH};

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
