//! The egress listener holds every credential to the same parser as the
//! reverse one: inside an intercepted tunnel, duplicated, tab-separated and
//! legacy `Authorization` values and auxiliary tokens are judged as in
//! reverse mode; and the audience binding refuses a request that carries a
//! bound token anywhere (every `Authorization` value, auxiliary tokens, the
//! query, cookies) to another host, over plain HTTP as inside a tunnel.

use crate::clients::{PlainPeer, curl};
use crate::support::{GRAPH_HOST, PC_HOST, TestEnv, assert_rejected};
use crate::{PC_URL, guarded, proxied_client};

async fn send(env: &TestEnv, http2: bool, url: &str, headers: &[(&str, String)]) -> reqwest::Response {
    let ca = std::fs::read_to_string(env.egress_ca.as_ref().unwrap()).unwrap();
    let mut req = proxied_client(env, &ca, http2).get(url);
    for (name, value) in headers {
        req = req.header(*name, value.as_str());
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn intercepted_requests_get_the_same_credential_rules() {
    let env = TestEnv::setup()
        .route(&format!(
            "host = \"{PC_HOST}\"\nmode = \"report-only\"\nrule_modes = {{ legacy_auth = \"enforce\", mfa = \"enforce\" }}"
        ))
        .egress("")
        .start()
        .await;
    let good = env.idp.delegated().mint();
    let no_mfa = env.idp.delegated().amr(&["pwd"]).mint();
    let auth = |v: String| ("authorization", v);
    let cases = [
        (vec![auth(format!("Bearer {good}")), auth("Basic dXNlcjpwYXNz".into())], 401, "legacy_auth"),
        (vec![auth("Basic\tdXNlcjpwYXNz".into())], 401, "legacy_auth"),
        (vec![auth(format!("Bearer {no_mfa}")), auth(format!("Bearer {no_mfa}"))], 401, "malformed_token"),
        (vec![auth(format!("Bearer\t{no_mfa}"))], 401, "mfa_required"),
        (
            vec![auth(format!("Bearer {good}")), ("x-ms-authorization-auxiliary", format!("Bearer {no_mfa}"))],
            401,
            "mfa_required",
        ),
        (vec![auth(format!("Bearer {good}")), ("cookie", format!("t={good}"))], 400, "bad_request"),
    ];
    for http2 in [false, true] {
        for (headers, status, reason) in &cases {
            let rsp = send(&env, http2, PC_URL, headers).await;
            assert_eq!(rsp.status().as_u16(), *status, "h2={http2} {headers:?}");
            assert_rejected(rsp, *status, reason).await;
        }
    }
    let rsp = send(&env, false, &format!("{PC_URL}?access_token=x"), &[auth(format!("Bearer {good}"))]).await;
    assert_rejected(rsp, 400, "bad_request").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn a_bound_token_anywhere_in_the_request_is_bound() {
    let plain = PlainPeer::start().await;
    let env = guarded().egress("default = \"tunnel\"").resolve("intranet.example.net", plain.addr).start().await;
    let pc = env.idp.delegated().mint();
    let harmless = env.idp.delegated().claim("aud", "api://someone-else").mint();
    let url = "http://intranet.example.net/upload";
    let cases: Vec<Vec<String>> = vec![
        vec![format!("Authorization: Bearer {harmless}"), format!("Authorization: Bearer {pc}")],
        vec![format!("Authorization: Bearer {pc}"), format!("Authorization: Bearer {harmless}")],
        vec![format!("Authorization: Bearer\t{pc}")],
        vec![format!("Authorization: bearer   {pc}")],
        vec![format!("Authorization: Bearer {harmless}, Bearer {pc}")],
        vec![format!("Authorization: Basic eA==, Bearer {pc}")],
        vec![format!("x-ms-authorization-auxiliary: Bearer {pc}")],
        vec![format!("Cookie: session={pc}")],
    ];
    for headers in &cases {
        let mut args = Vec::new();
        for h in headers {
            args.extend(["-H", h.as_str()]);
        }
        args.push(url);
        let out = curl(&env, &args).await;
        assert_eq!(
            (out.code, out.json()["reason"].as_str()),
            (403, Some("audience_host_mismatch")),
            "{headers:?}: {out:?}"
        );
    }
    let out = curl(&env, &[&format!("{url}?access_token={pc}")]).await;
    assert_eq!((out.code, out.json()["reason"].as_str()), (403, Some("audience_host_mismatch")), "{out:?}");
    assert_eq!(plain.hits(), 0, "no Partner Center token left in clear");
    let out = curl(&env, &["-H", &format!("Authorization: Bearer {harmless}"), url]).await;
    assert_eq!(out.code, 200, "{out:?}");
    // Inside a tunnel to Graph, a Partner Center token in a second header is bound too.
    let graph = env.idp.delegated().claim("aud", "https://graph.microsoft.com").mint();
    let headers =
        [("authorization", format!("Bearer {graph}")), ("x-ms-authorization-auxiliary", format!("Bearer {pc}"))];
    let rsp = send(&env, false, &format!("https://{GRAPH_HOST}/v1.0/me"), &headers).await;
    assert_rejected(rsp, 403, "audience_host_mismatch").await;
    assert_eq!(env.upstream.hits(), 0);
}
