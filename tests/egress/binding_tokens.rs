//! The audience binding reads every token however it is written: each test
//! sends a Partner Center token over plain HTTP to an allowed host that no
//! route guards, where it would leave in clear, and gets 403
//! `audience_host_mismatch` with the target never reached: a token longer
//! than `identity.max_token_bytes`, a proof-of-possession token whose outer
//! layer uses an algorithm the gateway does not verify, and a token next to
//! any punctuation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clients::{PlainPeer, curl};
use crate::support::TestEnv;

const URL: &str = "http://intranet.example.net/upload";

async fn plain_env(identity: &str) -> (TestEnv, PlainPeer) {
    let plain = PlainPeer::start().await;
    let env = crate::guarded()
        .identity(identity)
        .egress("default = \"tunnel\"")
        .resolve("intranet.example.net", plain.addr)
        .start()
        .await;
    (env, plain)
}

/// Sends `header` to the plain target; (status, reason).
async fn send(env: &TestEnv, header: &str) -> (u16, Option<String>) {
    let out = curl(env, &["-H", header, URL]).await;
    let reason = serde_json::from_str::<serde_json::Value>(&out.body)
        .ok()
        .and_then(|b| b["reason"].as_str().map(str::to_string));
    (out.code, reason)
}

fn refused() -> (u16, Option<String>) {
    (403, Some("audience_host_mismatch".to_string()))
}

/// A token longer than `identity.max_token_bytes` is bound too: that limit
/// protects verification, and the binding verifies nothing.
#[tokio::test]
async fn a_bound_token_longer_than_max_token_bytes_is_still_bound() {
    let (env, plain) = plain_env("max_token_bytes = 4096").await;
    let pc = env.idp.delegated().mint();
    assert_eq!(send(&env, &format!("x-upload-auth: {pc}")).await, refused(), "control");
    let long = format!("{pc}{}", "A".repeat(4096));
    assert_eq!(send(&env, &format!("x-upload-auth: {long}")).await, refused(), "a long Partner Center token");
    assert_eq!(plain.hits(), 0, "a Partner Center token left in clear");
}

/// A proof-of-possession token (signed HTTP request) whose outer JWS is
/// signed with `alg`, wrapping `at`.
fn pop(alg: &str, at: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": alg, "typ": "pop"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(
        serde_json::json!({"at": at, "ts": 1_700_000_000, "m": "GET", "u": "intranet.example.net", "p": "/upload"})
            .to_string(),
    );
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

/// A proof-of-possession token is bound by the access token in its `at`,
/// whatever algorithm its outer layer claims.
#[tokio::test]
async fn a_pop_token_signed_with_an_algorithm_the_gateway_does_not_verify_is_still_bound() {
    let (env, plain) = plain_env("").await;
    let pc = env.idp.delegated().mint();
    assert_eq!(send(&env, &format!("Authorization: PoP {}", pop("RS256", &pc))).await, refused(), "control");
    for alg in ["ES512", "EdDSA"] {
        assert_eq!(
            send(&env, &format!("Authorization: PoP {}", pop(alg, &pc))).await,
            refused(),
            "a PoP token signed with {alg} wrapping a Partner Center token"
        );
    }
    assert_eq!(plain.hits(), 0, "a Partner Center token left in clear");
}

/// A token is found next to any character: a quoted dict, `name:token`,
/// brackets.
#[tokio::test]
async fn a_bound_token_next_to_other_punctuation_is_still_bound() {
    let (env, plain) = plain_env("").await;
    let pc = env.idp.delegated().mint();
    assert_eq!(send(&env, &format!("x-upload-auth: {{\"access_token\": \"{pc}\"}}")).await, refused(), "control");
    for value in [format!("{{'access_token': '{pc}'}}"), format!("automation:{pc}"), format!("[{pc}]")] {
        assert_eq!(send(&env, &format!("x-upload-auth: {value}")).await, refused(), "x-upload-auth: {value}");
    }
    assert_eq!(plain.hits(), 0, "a Partner Center token left in clear");
}
