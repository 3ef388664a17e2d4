//! msgraph-sdk, unmodified (`tests/py/clients/graph_clients.py`), through
//! both listeners: `/me` and `/users` with MFA are served; without MFA the
//! `ODataError` carries the gateway's description in `error.message`.
//!
//! The SDK sends `/v1.0//me` (its base URL ends with a slash) and reads
//! Graph's error shape: both tests pass once the gateway collapses empty
//! path segments and answers Graph routes in Graph's format (issue 13,
//! items 1 and 3); until then the gateway answers 400.

use crate::run::{self, BOTH};

#[tokio::test]
async fn msgraph_sdk_reads_me_and_users() {
    let (env, authority) = crate::start_with_authority().await;
    for via in BOTH {
        let out = run::python("graph_clients.py", &[], &crate::sdk_env(&env, &authority, via)).await;
        let what = format!("{via:?}: {out}");
        assert_eq!(out["me"]["ok"], "Admin Agent", "{what}");
        assert_eq!(out["users"]["ok"], serde_json::json!(["admin@contoso.onmicrosoft.com"]), "{what}");
    }
}

/// Without MFA, the SDK's `ODataError` carries the gateway's description in
/// `error.message` (Graph's error shape, issue 13 item 3).
#[tokio::test]
async fn msgraph_sdk_reads_the_gateways_denial() {
    let (env, authority) = crate::start_with_authority().await;
    for via in BOTH {
        let out = run::python("graph_clients.py", &[], &crate::sdk_env(&env, &authority, via)).await;
        let what = format!("{via:?}: {out}");
        let denied = &out["denied_me"];
        assert_eq!(denied["status"], 401, "{what}");
        let message = denied["error_message"].as_str().unwrap_or_default();
        assert!(message.starts_with("Multi-factor authentication is required"), "Graph's error.message: {what}");
    }
}
