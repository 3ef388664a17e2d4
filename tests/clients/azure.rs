//! azure-identity, azure-core and azure-mgmt-resource
//! (`tests/py/clients/azure_clients.py`), through both listeners: tokens
//! from secret and certificate credentials, the CAE step-up round trip of
//! `BearerTokenCredentialPolicy(enable_cae=True)`, and ARM's
//! `resource_groups.list()` allowed and denied.

use crate::run::{self, BOTH};

#[tokio::test]
async fn azure_identity_core_and_mgmt_resource() {
    let (env, authority) = crate::start_with_authority().await;
    for via in BOTH {
        let out = run::python("azure_clients.py", &[], &crate::sdk_env(&env, &authority, via)).await;
        let what = format!("{via:?}: {out}");
        assert_eq!(out["client_secret_credential"]["token"], true, "{what}");
        assert_eq!(out["certificate_credential"]["token"], true, "{what}");

        // The step-up: challenged once with the decodable claims, then allowed.
        let step_up = &out["step_up"];
        assert_eq!(step_up["status"], 200, "{what}");
        let attempts = step_up["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{what}");
        assert_eq!(attempts[0]["status"], 401, "{what}");
        let challenge = attempts[0]["challenge"].as_str().unwrap_or_default();
        assert!(challenge.contains(r#"error="insufficient_claims""#), "{what}");
        assert_eq!(attempts[1]["status"], 200, "{what}");

        assert_eq!(out["resource_groups_mfa"]["names"], serde_json::json!(["rg-mfagate"]), "{what}");
        assert_eq!(out["resource_groups_password_only"]["status"], 401, "{what}");
    }
    // The retry asked for the authentication context the gateway named.
    let claimed = authority.requests().into_iter().filter_map(|r| r.claims).collect::<Vec<_>>();
    assert!(
        claimed.iter().any(|c| c["access_token"]["acrs"]["value"] == "c1"),
        "the decoded claims reached the authority: {claimed:?}"
    );
    assert!(claimed.iter().all(|c| c["access_token"]["xms_cc"]["values"].is_array()), "{claimed:?}");
}

/// An ARM-shaped denial reads as one: `HttpResponseError` shows ARM's
/// `error.code` and `error.message` (the reason's description). Needs the
/// per-route error formats of issue 13, item 3: before them azure-core
/// prints `(900421) None ... Message: None`.
#[tokio::test]
async fn an_arm_denial_reads_as_an_arm_error() {
    let (env, authority) = crate::start_with_authority().await;
    for via in BOTH {
        let out = run::python("azure_clients.py", &[], &crate::sdk_env(&env, &authority, via)).await;
        let denied = &out["resource_groups_password_only"];
        let what = format!("{via:?}: {denied}");
        assert_eq!(denied["status"], 401, "{what}");
        assert!(denied["error_code"].is_string(), "ARM's error.code: {what}");
        let message = denied["error_message"].as_str().unwrap_or_default();
        assert!(message.starts_with("Multi-factor authentication is required"), "ARM's error.message: {what}");
    }
}
