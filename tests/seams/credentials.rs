//! Every `Authorization` value is examined, in any count and with any
//! whitespace between scheme and credential; a legacy scheme in any of them
//! fails `legacy_auth` under that rule's own mode; credentials that cannot
//! be checked (duplicates, several in one value, unparsable) are refused
//! while any rule of the route enforces, even on a report-only route.

use crate::support::TestEnv;
use crate::{get_with, refused_both_ways};

/// A report-only route whose legacy_auth and mfa rules enforce.
const STRICT_RULES: &str = "mode = \"report-only\"\nrule_modes = { legacy_auth = \"enforce\", mfa = \"enforce\" }";

const BASIC: &str = "Basic dXNlcjpwYXNz";

#[tokio::test]
async fn a_failing_credential_cannot_sidestep_an_enforcing_rule() {
    let env = TestEnv::setup().route(STRICT_RULES).start().await;
    let good = env.idp.delegated().mint();
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let auth = |v: String| ("authorization", v);
    type Case<'a> = (Vec<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        // A legacy scheme anywhere: legacy_auth, under its own (enforcing) mode.
        (vec![auth(format!("Bearer {good}")), auth(BASIC.into())], 401, "legacy_auth"),
        (vec![auth(BASIC.into()), auth(format!("Bearer {good}"))], 401, "legacy_auth"),
        (vec![auth("Basic\tdXNlcjpwYXNz".into())], 401, "legacy_auth"),
        (vec![auth("basic    dXNlcjpwYXNz".into())], 401, "legacy_auth"),
        (vec![auth(format!("Bearer {good}, {BASIC}"))], 401, "legacy_auth"),
        (vec![auth(format!("Bearer {good},NTLM TlRMTVNTUAAB"))], 401, "legacy_auth"),
        (vec![auth("Negotiate YIIGhgYGKwYBBQUCoII=".into())], 401, "legacy_auth"),
        (vec![auth("Digest username=\"u\", realm=\"r\", response=\"x\"".into())], 401, "legacy_auth"),
        // Ambiguous credentials: refused because a rule enforces.
        (vec![auth(format!("Bearer {no_mfa}")), auth(format!("Bearer {no_mfa}"))], 401, "malformed_token"),
        (vec![auth(format!("Bearer {good}")), auth(format!("Bearer {good}"))], 401, "malformed_token"),
        (vec![auth(format!("Bearer {good}")), auth(format!("Bearer {no_mfa}"))], 401, "malformed_token"),
        (vec![auth(format!("Bearer {no_mfa}, Bearer {no_mfa}"))], 401, "malformed_token"),
        (vec![auth(format!("Bearer {no_mfa} {no_mfa}"))], 401, "malformed_token"),
        (vec![auth("Bearer".into())], 401, "malformed_token"),
        (vec![auth("Bearer not-a-jwt".into())], 401, "malformed_token"),
        (vec![auth(format!("PoP {no_mfa}"))], 401, "missing_token"),
        (vec![auth(format!("Bearer{no_mfa}"))], 401, "missing_token"),
        (vec![], 401, "missing_token"),
        // Any run of spaces and tabs: the token is read, and its rules apply.
        (vec![auth(format!("Bearer\t{no_mfa}"))], 401, "mfa_required"),
        (vec![auth(format!("Bearer   {no_mfa}"))], 401, "mfa_required"),
        (vec![auth(format!("bearer \t {no_mfa}\t"))], 401, "mfa_required"),
        (vec![auth(format!("BEARER {no_mfa}"))], 401, "mfa_required"),
    ];
    for (headers, status, reason) in &cases {
        refused_both_ways(&env, "/v1/customers", headers, *status, reason).await;
    }
    assert_eq!(env.upstream.hits(), 0, "nothing reached the upstream");
    // The same spellings with a compliant token are read as that token.
    for value in [format!("Bearer\t{good}"), format!("bearer  {good} ")] {
        let rsp = get_with(&env, true, "/v1/customers", &[("authorization", value)]).await;
        assert_eq!(rsp.status(), 200);
    }
    assert_eq!(env.upstream.hits(), 2);
}

#[tokio::test]
async fn report_only_forwards_what_fails_only_report_only_rules() {
    // Everything report-only: the same requests are forwarded and recorded.
    let env = TestEnv::setup().route("mode = \"report-only\"").start().await;
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    for headers in [
        vec![("authorization", format!("Bearer {no_mfa}")), ("authorization", BASIC.to_string())],
        vec![("authorization", format!("Bearer {no_mfa}")), ("authorization", format!("Bearer {no_mfa}"))],
        vec![("authorization", format!("Bearer\t{no_mfa}"))],
    ] {
        assert_eq!(get_with(&env, true, "/v1/customers", &headers).await.status(), 200, "{headers:?}");
    }
    assert_eq!(env.upstream.hits(), 3);
    let would = |reason: &str| {
        format!(r#"mfagate_requests_total{{decision="would_deny",reason="{reason}",route="partner-center"}}"#)
    };
    assert_eq!(env.metric(&would("legacy_auth")).await, 1.0);
    assert_eq!(env.metric(&would("malformed_token")).await, 1.0);
    assert_eq!(env.metric(&would("mfa_required")).await, 1.0);
}

#[tokio::test]
async fn a_route_that_enforces_refuses_tokens_it_cannot_check() {
    // A report-only rule does not make the route's other rules lenient.
    let env = TestEnv::setup().route("rule_modes = { mfa = \"report-only\" }").start().await;
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let expired = env.idp.delegated().amr(&["pwd"]).claim("exp", support_now() - 600).mint();
    refused_both_ways(&env, "/v1/customers", &[("authorization", format!("Bearer {expired}"))], 401, "expired").await;
    let twice = [("authorization", format!("Bearer {no_mfa}")), ("authorization", format!("Bearer {no_mfa}"))];
    refused_both_ways(&env, "/v1/customers", &twice, 401, "malformed_token").await;
    assert_eq!(env.upstream.hits(), 0);
    let one = [("authorization", format!("Bearer {no_mfa}"))];
    assert_eq!(get_with(&env, false, "/v1/customers", &one).await.status(), 200, "mfa alone is report-only");
}

fn support_now() -> i64 {
    crate::support::idp::now()
}
