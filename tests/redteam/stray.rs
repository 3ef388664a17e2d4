//! Rule 6: bearer credentials outside `Authorization` and the auxiliary
//! header are refused 400 on token-checking routes.

use crate::support::{TestEnv, assert_rejected};

/// Rule 6: "access_token query parameter and JWS cookies refused 400 on
/// token-checking routes". `credentials::cookie_tokens` splits a Cookie
/// header on `;` only; ASP.NET Core (Partner Center's stack) splits on `;`
/// and `,` (CookieHeaderParserShared.GetNextNonEmptyOrWhitespaceIndex), so
/// `Cookie: theme=dark, session=<JWS>` gives the upstream a `session`
/// cookie holding a token the gateway never saw. Here the cookie carries a
/// token for another tenant, without MFA, next to a compliant bearer token.
/// Correct: 400 bad_request over HTTP/1.1 and HTTP/2, upstream never reached.
#[tokio::test]
async fn a_jws_cookie_after_a_comma_is_not_seen() {
    let env = TestEnv::setup().start().await;
    let good = env.idp.delegated().mint();
    let stray = env.idp.delegated().amr(&["pwd"]).tenant("aaaaaaaa-0000-4000-8000-000000000001").mint();
    for http1 in [true, false] {
        let client = crate::support::client(&env.pki.ca_pem, http1);
        let rsp = client
            .get(env.url("/v1/customers"))
            .bearer_auth(&good)
            .header("cookie", format!("theme=dark, session={stray}"))
            .send()
            .await
            .unwrap();
        let status = rsp.status().as_u16();
        if status != 400 {
            panic!("http1={http1}: {status}, forwarded: {} upstream hits", env.upstream.hits());
        }
        assert_rejected(rsp, 400, "bad_request").await;
    }
    assert_eq!(env.upstream.hits(), 0);
}
