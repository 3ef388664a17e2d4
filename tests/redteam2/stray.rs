//! Stray bearer credentials on the reverse proxy (`credentials::stray`).

use crate::support::{TestEnv, assert_rejected};

/// Rule: "a bearer credential anywhere else is 400 `bad_request`: an
/// `access_token` query parameter (any of them, in any case)" (README step 4).
///
/// Finding: `query_tokens` splits the query on `&` only
/// (`form_urlencoded`). Servers that also take `;` as a parameter separator
/// (Rack before 3.0, Python's `parse_qs` before 3.9.2, Tomcat-era Java
/// frameworks) read `access_token` out of `a=1;access_token=<jws>`, which the
/// gateway sees as parameter `a` with a value it never looks at. The token
/// there is not the one the gateway checked. Correct answer: 400
/// `bad_request`, upstream never reached.
#[tokio::test]
async fn an_access_token_parameter_after_a_semicolon_is_a_stray_credential() {
    let env = TestEnv::setup().start().await;
    let good = env.idp.delegated().mint();
    let stray = env.idp.delegated().amr(&["pwd"]).mint();
    let rsp = env.get(&format!("/v1/customers?size=10&access_token={stray}"), Some(&good)).await;
    assert_rejected(rsp, 400, "bad_request").await;
    let rsp = env.get(&format!("/v1/customers?size=10;access_token={stray}"), Some(&good)).await;
    let status = rsp.status().as_u16();
    assert_eq!(
        (status, env.upstream.hits()),
        (400, 0),
        "a second bearer token after ';' was forwarded next to the checked one"
    );
    assert_rejected(rsp, 400, "bad_request").await;
}
