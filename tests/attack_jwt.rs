//! JWT attacks, end to end. Each forged, confused or malformed token gets a
//! 401 (403 for a genuine token of a tenant the gateway does not serve) with
//! the reason in the body and the `invalid_token` challenge, and neither the
//! upstream nor any URL named in the token is ever contacted. Tokens come
//! from Rust (jsonwebtoken, byte-exact JSON) and from Python's PyJWT and
//! jwcrypto.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey};
use support::idp::{OTHER_TID, PC_AUDIENCE, TID, keys, now, rsa_key};
use support::{TestEnv, assert_rejected};

const INVALID: &str = r#"Bearer realm="mfagate", error="invalid_token""#;

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// A token from exact JSON text (duplicate keys and all), signed with `key`.
fn raw_token(header: &str, claims: &str, alg: Algorithm, key: &EncodingKey) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{sig}")
}

/// A server that counts requests: the URL a token points the gateway at.
async fn attacker() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    let jwk = rsa_key("attacker-kid").jwk;
    let addr = support::serve::http(None, move |_req| {
        h.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::json!({ "keys": [jwk.clone()] }).to_string();
        async move { http::Response::new(Full::new(Bytes::from(body))) }
    })
    .await;
    (format!("http://{addr}/keys.json"), hits)
}

async fn env() -> TestEnv {
    // Every case here is a denial from one address: lift the denied-request budget.
    TestEnv::setup()
        .identity(&format!(r#"tenants = ["{TID}"]"#))
        .limits(r#"denied_per_ip = { requests = 100000, per = "1s" }"#)
        .start()
        .await
}

/// Sends `authorization` and checks the whole rejection; the upstream stays untouched.
async fn rejected(env: &TestEnv, name: &str, authorization: HeaderValue, status: u16, reason: &str) {
    let before = env.upstream.hits();
    let rsp = env.client.get(env.url("/v1/customers")).header("authorization", authorization).send().await.unwrap();
    let challenge = assert_rejected(rsp, status, reason).await;
    if status == 401 {
        let challenge = challenge.unwrap_or_else(|| panic!("{name}: no challenge"));
        assert!(challenge.starts_with(INVALID), "{name}: {challenge}");
    }
    assert_eq!(env.upstream.hits(), before, "{name}: the upstream was reached");
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

#[tokio::test]
async fn forged_and_confused_tokens_get_401() {
    let env = env().await;
    let (attacker_url, attacker_hits) = attacker().await;
    let k = keys();
    let valid = env.idp.delegated();
    let (h, c) = valid.unsigned_parts();
    let pem = k.primary.public_pem.as_bytes();
    let attacker_key = rsa_key("attacker-kid");
    let mut cases: Vec<(&str, String, &str)> = Vec::new();

    for alg in ["none", "None", "NONE", "nOnE"] {
        let (h, c) = valid.clone().header("alg", alg).unsigned_parts();
        cases.push(("alg none, no signature", format!("{h}.{c}."), "disallowed_alg"));
        cases.push(("alg none, with a signature", format!("{h}.{c}.c2ln"), "disallowed_alg"));
    }
    for (alg, name) in [(Algorithm::HS256, "HS256"), (Algorithm::HS384, "HS384"), (Algorithm::HS512, "HS512")] {
        let confused = valid.clone().header("alg", name).signed_with(alg, EncodingKey::from_secret(pem).unwrap());
        cases.push(("HMAC keyed with the RSA public key", confused.mint(), "disallowed_alg"));
    }
    let n = k.primary.jwk["n"].as_str().unwrap();
    let confused = valid
        .clone()
        .header("alg", "HS256")
        .signed_with(Algorithm::HS256, EncodingKey::from_secret(n.as_bytes()).unwrap());
    cases.push(("HMAC keyed with the JWK modulus", confused.mint(), "disallowed_alg"));
    cases.push(("RS256 header on the EC key", valid.clone().header("kid", "ec-kid").mint(), "disallowed_alg"));
    cases.push((
        "RS512 header over an RS256 signature",
        {
            let t = valid.mint();
            let (_, rest) = t.split_once('.').unwrap();
            format!("{}.{rest}", valid.clone().header("alg", "RS512").unsigned_parts().0)
        },
        "bad_signature",
    ));

    for kid in [
        "../../../../dev/null",
        "/dev/null",
        "../../../../../../etc/passwd",
        "x' UNION SELECT 'c2VjcmV0' --",
        "primary-kid\u{0}",
        "primary-kid ",
        "PRIMARY-KID",
        "",
        "|cat /etc/passwd",
        "${jndi:ldap://127.0.0.1/x}",
    ] {
        cases.push(("kid injection", valid.clone().header("kid", kid).mint(), "unknown_key"));
    }
    cases.push(("kid of 8 KiB", valid.clone().header("kid", "k".repeat(8192)).mint(), "unknown_key"));
    cases.push(("kid as a number", valid.clone().header("kid", 7).mint(), "malformed_token"));
    cases.push((
        "kid as an object",
        valid.clone().header("kid", serde_json::json!({"$ne": null})).mint(),
        "malformed_token",
    ));

    for (field, value) in [
        ("jku", serde_json::json!(attacker_url)),
        ("x5u", serde_json::json!(attacker_url)),
        ("jwk", attacker_key.jwk.clone()),
        ("x5c", serde_json::json!([STANDARD.encode(b"not a certificate")])),
    ] {
        let own_kid = valid.clone().header(field, value.clone()).header("kid", "attacker-kid").signed_by(&attacker_key);
        cases.push(("attacker key advertised in the header", own_kid.mint(), "unknown_key"));
        let our_kid = valid.clone().header(field, value).signed_by(&attacker_key);
        cases.push(("attacker key under our kid", our_kid.mint(), "bad_signature"));
    }

    cases.push((
        "unknown crit",
        valid.clone().header("crit", serde_json::json!(["exp2"])).header("exp2", 1).mint(),
        "malformed_token",
    ));
    cases.push((
        "crit b64",
        valid.clone().header("crit", serde_json::json!(["b64"])).header("b64", false).mint(),
        "malformed_token",
    ));

    let (eh, ec) = valid.clone().header("alg", "ES256").header("kid", "ec-kid").unsigned_parts();
    cases.push(("ES256 r=s=0", format!("{eh}.{ec}.{}", URL_SAFE_NO_PAD.encode([0u8; 64])), "bad_signature"));
    cases.push((
        "ES256 r=s=0, DER",
        format!("{eh}.{ec}.{}", URL_SAFE_NO_PAD.encode([0x30, 6, 2, 1, 0, 2, 1, 0])),
        "bad_signature",
    ));
    let order = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    let n_bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&order[2 * i..2 * i + 2], 16).unwrap()).collect();
    cases.push((
        "ES256 r=s=n",
        format!("{eh}.{ec}.{}", URL_SAFE_NO_PAD.encode([n_bytes.clone(), n_bytes].concat())),
        "bad_signature",
    ));

    cases.push(("stripped signature", format!("{h}.{c}."), "bad_signature"));
    cases.push((
        "signature cut short",
        {
            let t = valid.mint();
            t[..t.len() - 10].to_string()
        },
        "bad_signature",
    ));
    cases.push(("two segments", format!("{h}.{c}"), "malformed_token"));
    cases.push(("five segments (JWE shape)", format!("{h}.{c}.a.b.c"), "malformed_token"));

    cases.push((
        "nbf in the future",
        valid.clone().claim("nbf", now() + 3600).claim("exp", now() + 7200).mint(),
        "not_yet_valid",
    ));
    cases.push(("expired", valid.clone().claim("exp", now() - 3600).mint(), "expired"));
    cases.push(("exp as a string", valid.clone().claim("exp", (now() + 3600).to_string()).mint(), "malformed_token"));
    cases.push(("exp as a boolean", valid.clone().claim("exp", true).mint(), "malformed_token"));
    cases.push(("exp missing", valid.clone().without("exp").mint(), "malformed_token"));
    cases.push((
        "aud with mixed types",
        valid.clone().claim("aud", serde_json::json!([PC_AUDIENCE, 1])).mint(),
        "malformed_token",
    ));
    cases.push((
        "aud as an object",
        valid.clone().claim("aud", serde_json::json!({"aud": PC_AUDIENCE})).mint(),
        "malformed_token",
    ));
    cases.push((
        "aud array with null",
        valid.clone().claim("aud", serde_json::json!([PC_AUDIENCE, null])).mint(),
        "malformed_token",
    ));
    cases.push((
        "aud for another API",
        valid.clone().claim("aud", "https://graph.microsoft.com").mint(),
        "bad_audience",
    ));
    cases.push(("amr as a string", valid.clone().claim("amr", "mfa").mint(), "malformed_token"));

    // Duplicate JSON keys: a parser that keeps the last value would see MFA.
    let claims_text = String::from_utf8(URL_SAFE_NO_PAD.decode(&c).unwrap()).unwrap();
    let without_amr = valid.clone().without("amr").unsigned_parts().1;
    let without_amr = String::from_utf8(URL_SAFE_NO_PAD.decode(without_amr).unwrap()).unwrap();
    let header_text = String::from_utf8(URL_SAFE_NO_PAD.decode(&h).unwrap()).unwrap();
    let dup = format!(r#"{{"amr":["pwd"],{},"amr":["pwd","mfa"]}}"#, &without_amr[1..without_amr.len() - 1]);
    cases.push((
        "duplicate amr",
        raw_token(&header_text, &dup, Algorithm::RS256, &k.primary.encoding),
        "malformed_token",
    ));
    let dup = format!(r#"{{"tid":"{OTHER_TID}",{}}}"#, &claims_text[1..claims_text.len() - 1]);
    cases.push((
        "duplicate tid",
        raw_token(&header_text, &dup, Algorithm::RS256, &k.primary.encoding),
        "malformed_token",
    ));
    let dup_header = format!(r#"{{"alg":"none",{}}}"#, &header_text[1..header_text.len() - 1]);
    cases.push((
        "duplicate alg in the header",
        raw_token(&dup_header, &claims_text, Algorithm::RS256, &k.primary.encoding),
        "malformed_token",
    ));

    cases.push((
        "token over identity.max_token_bytes",
        valid.clone().claim("pad", "p".repeat(20 * 1024)).mint(),
        "malformed_token",
    ));
    cases.push(("standard base64 characters", format!("{}+/.{c}.c2ln", &h[..h.len() - 2]), "malformed_token"));
    cases.push(("padding", format!("{h}=.{c}.c2ln"), "malformed_token"));
    cases.push(("percent-encoding", format!("{h}.{c}%2e.c2ln"), "malformed_token"));
    cases.push((
        "space inside",
        {
            let t = valid.mint();
            format!("{} {}", &t[..20], &t[20..])
        },
        "malformed_token",
    ));
    cases.push((
        "a valid token for another tenant",
        valid.clone().claim("tid", OTHER_TID).claim("iss", format!("https://sts.windows.net/{OTHER_TID}/")).mint(),
        "tenant_not_allowed",
    ));
    cases.push((
        "another tenant's issuer with our tid",
        valid.clone().claim("iss", format!("https://sts.windows.net/{OTHER_TID}/")).mint(),
        "bad_issuer",
    ));

    for (name, token, reason) in &cases {
        let status = if *reason == "tenant_not_allowed" { 403 } else { 401 };
        rejected(&env, name, bearer(token), status, reason).await;
    }
    // Bytes no token contains: non-ASCII and control characters.
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(valid.mint().as_bytes());
    value.extend_from_slice("\u{e9}".as_bytes());
    rejected(&env, "non-ASCII", HeaderValue::from_bytes(&value).unwrap(), 401, "malformed_token").await;
    let tab = HeaderValue::from_str(&format!("Bearer {}\t{}", &valid.mint()[..30], &valid.mint()[30..])).unwrap();
    rejected(&env, "tab inside", tab, 401, "malformed_token").await;

    assert_eq!(attacker_hits.load(Ordering::SeqCst), 0, "a URL named in a token was fetched");
    assert_eq!(env.upstream.hits(), 0);
    // The control: the same builder, unmodified, passes.
    assert_eq!(env.get("/v1/customers", Some(&valid.mint())).await.status(), 200);
}

#[tokio::test]
async fn oversized_tokens_stop_at_the_header_limit() {
    let env = TestEnv::setup().server("max_header_bytes = 32768").start().await;
    let huge = env.idp.delegated().claim("pad", "p".repeat(48 * 1024)).mint();
    let h1 = support::client(&env.pki.ca_pem, true);
    let rsp = h1.get(env.url("/v1/customers")).bearer_auth(&huge).send().await;
    match rsp {
        Ok(rsp) => assert_eq!(rsp.status(), 431),
        Err(e) => panic!("HTTP/1.1: {e}"),
    }
    // HTTP/2: the header list is refused (431 or a reset stream); never forwarded.
    if let Ok(rsp) = env.client.get(env.url("/v1/customers")).bearer_auth(&huge).send().await {
        assert!(rsp.status() == 431 || rsp.status() == 400, "{}", rsp.status());
    }
    assert_eq!(env.upstream.hits(), 0);
    assert_eq!(env.get("/v1/customers", Some(&env.idp.delegated().mint())).await.status(), 200);
}

#[tokio::test]
async fn tokens_minted_by_pyjwt_and_jwcrypto() {
    let env = env().await;
    let (attacker_url, attacker_hits) = attacker().await;
    let k = keys();
    let input = serde_json::json!({
        "rsa_private_pem": k.primary.private_pem,
        "rsa_public_pem": k.primary.public_pem,
        "rsa_kid": k.primary.kid,
        "ec_kid": k.ec.kid,
        "tid": TID,
        "other_tid": OTHER_TID,
        "audience": PC_AUDIENCE,
        "attacker_url": attacker_url,
    });
    let path = support::write(env.dir.path(), "keys.json", &input.to_string());
    let cases = support::py::run_json("jwt_attacks.py", &[path.to_str().unwrap()]).await;
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 15, "{cases:?}");
    let mut forwarded = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let token = case["token"].as_str().unwrap();
        let status = case["status"].as_u64().unwrap() as u16;
        if status == 200 {
            let rsp = env.get("/v1/customers", Some(token)).await;
            assert_eq!(rsp.status(), 200, "{name}");
            forwarded += 1;
            continue;
        }
        rejected(&env, name, bearer(token), status, case["reason"].as_str().unwrap()).await;
    }
    assert_eq!(forwarded, 1, "exactly the control token passes");
    assert_eq!(env.upstream.hits(), 1);
    assert_eq!(attacker_hits.load(Ordering::SeqCst), 0);
}
