//! Token requests on a login route, read the way a lenient ASP.NET server
//! reads them: parameter names in any case or encoding, in the query or the
//! body, the body as a form, multipart, JSON or UTF-16 text whatever its
//! declared type. Every password-carrying sign-in is refused (ROPC as
//! `password_grant`, WS-Trust endpoints and the SAML bearer grants that
//! complete them as `legacy_auth`), bodies that cannot be read unambiguously
//! are refused as `bad_request`, and every other token request reaches Entra
//! with its body intact.

use crate::support::{TestEnv, assert_rejected};

const TOKEN: &str = "/organizations/oauth2/v2.0/token";
const FORM: &str = "application/x-www-form-urlencoded";
const SOAP: &str = "application/soap+xml; charset=utf-8";
const TID: &str = crate::support::idp::TID;

/// The main route serves `/v1`; everything else is Entra's sign-in, a login route.
async fn env(extra: &str) -> TestEnv {
    let login = format!(
        "[[routes]]\nname = \"login\"\nkind = \"login\"\npath_prefix = \"/\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\n{extra}\n"
    );
    TestEnv::setup().route(r#"path_prefix = "/v1""#).more_routes(&login).start().await
}

/// One POST to the login route.
struct Post {
    name: &'static str,
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn post(name: &'static str, path: &str, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Post {
    Post { name, path: path.to_string(), content_type: content_type.map(str::to_string), body: body.into() }
}

/// A form-encoded POST to the token endpoint.
fn form(name: &'static str, body: &str) -> Post {
    post(name, TOKEN, Some(FORM), body)
}

async fn send(env: &TestEnv, p: &Post) -> reqwest::Response {
    let mut req = env.client.post(env.url(&p.path)).body(p.body.clone());
    if let Some(ct) = &p.content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.expect("gateway answers")
}

/// Each request is refused with `status` and `reason`, and Entra never sees it.
async fn refused(env: &TestEnv, posts: Vec<Post>, status: u16, reason: &str) {
    for p in posts {
        let before = env.upstream.hits();
        let rsp = send(env, &p).await;
        assert_eq!(rsp.status().as_u16(), status, "{}", p.name);
        assert_rejected(rsp, status, reason).await;
        assert_eq!(env.upstream.hits(), before, "{}: the upstream was reached", p.name);
    }
}

/// Each request reaches Entra, its body byte for byte.
async fn forwarded(env: &TestEnv, posts: Vec<Post>) {
    for p in posts {
        let before = env.upstream.hits();
        let rsp = send(env, &p).await;
        assert_eq!(rsp.status(), 200, "{}", p.name);
        assert_eq!(rsp.bytes().await.unwrap(), p.body, "{}: the body changed on the way", p.name);
        assert_eq!(env.upstream.hits(), before + 1, "{}", p.name);
        let seen = env.upstream.last();
        assert_eq!(seen.path_and_query, p.path, "{}", p.name);
        assert_eq!(seen.headers["content-length"], p.body.len().to_string().as_str(), "{}", p.name);
        if let Some(ct) = &p.content_type {
            assert_eq!(seen.headers["content-type"], ct.as_str(), "{}", p.name);
        }
    }
}

/// A multipart body; each part is `(Content-Disposition parameters, value)`.
fn multipart(boundary: &str, parts: &[(&str, &str)]) -> Vec<u8> {
    let mut body = String::new();
    for (params, value) in parts {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; {params}\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body.into_bytes()
}

fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let bom = if bom { vec![0xff, 0xfe] } else { Vec::new() };
    bom.into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect()
}

fn utf16be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

const ROPC: &str = "client_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46&username=admin%40contoso.com&password=hunter2";

#[tokio::test]
async fn password_grants_in_any_spelling_or_place_are_refused() {
    let env = env("").await;
    let query = |q: &str| format!("{TOKEN}?{q}");
    let posts = vec![
        form("mixed-case name", &format!("{ROPC}&Grant_Type=password")),
        form("upper-case name and value", &format!("GRANT_TYPE=Password&{ROPC}")),
        form("encoded underscore", &format!("grant%5Ftype=password&{ROPC}")),
        form("encoded letters", &format!("%67rant_type=%50ASSWORD&{ROPC}")),
        form("value padded with space and NUL", &format!("grant_type=+password%00&{ROPC}")),
        form("value padded with tab and CR LF", &format!("grant_type=%09password%0D%0A&{ROPC}")),
        form("name padded with space", &format!("grant_type+=password&{ROPC}")),
        form("long s", &format!("grant_type=pa%C5%BF%C5%BFword&{ROPC}")),
        form("System.Web %u escapes", &format!("grant%u005Ftype=%u0070assword&{ROPC}")),
        form(
            "after another grant",
            &format!("grant_type=refresh_token&refresh_token=0.AAA&grant_type=password&{ROPC}"),
        ),
        form("before another grant", &format!("grant_type=password&grant_type=refresh_token&{ROPC}")),
        post("only in the query", &query("grant_type=password"), Some(FORM), ROPC),
        post(
            "query, other case",
            &query("GRANT_TYPE=PASSWORD"),
            Some(FORM),
            "grant_type=refresh_token&refresh_token=x",
        ),
        post("query, no body", &query("Grant_Type=password&username=a&password=b"), None, ""),
        post("no content type", TOKEN, None, format!("Grant_Type=password&{ROPC}")),
        post("declared as text", TOKEN, Some("text/plain"), format!("grant_type=password&{ROPC}")),
        post("utf-8 with a byte order mark", TOKEN, Some(FORM), format!("\u{feff}grant_type=password&{ROPC}")),
        post(
            "declared latin-1",
            TOKEN,
            Some("application/x-www-form-urlencoded; Charset=ISO-8859-1"),
            "grant_type=password",
        ),
    ];
    refused(&env, posts, 403, "password_grant").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn password_grants_in_multipart_bodies_are_refused() {
    let env = env("").await;
    fn ropc(grant: &str) -> [(&str, &str); 3] {
        [(grant, "password"), ("name=\"username\"", "admin@contoso.com"), ("name=\"password\"", "x")]
    }
    let lf = "--b7\nContent-Disposition: form-data; name=\"grant_type\"\n\npassword\n--b7--\n";
    let preamble =
        "ignored preamble\r\n--b8\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword\r\n--b8--";
    let padded = "--b9  \r\ncontent-disposition:FORM-DATA;NAME = \"GRANT_TYPE\"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n password \r\n--b9--  \r\n";
    let posts = vec![
        post(
            "quoted boundary and name",
            TOKEN,
            Some("multipart/form-data; boundary=\"b1\""),
            multipart("b1", &ropc("name=\"grant_type\"")),
        ),
        post(
            "unquoted boundary and name",
            TOKEN,
            Some("multipart/form-data; boundary=b2"),
            multipart("b2", &ropc("name=grant_type")),
        ),
        post(
            "parameters in any case",
            TOKEN,
            Some("Multipart/Form-Data; BOUNDARY=b3"),
            multipart("b3", &ropc("NAME=\"Grant_Type\"")),
        ),
        post("declared as a form", TOKEN, Some(FORM), multipart("b4", &ropc("name=\"grant_type\""))),
        post("no content type", TOKEN, None, multipart("b5", &ropc("name=grant_type"))),
        post(
            "RFC 5987 name",
            TOKEN,
            Some("multipart/form-data; boundary=b6"),
            multipart("b6", &ropc("name*=UTF-8''grant%5Ftype")),
        ),
        post("LF line endings", TOKEN, Some("multipart/form-data; boundary=b7"), lf),
        post("a preamble", TOKEN, Some("multipart/form-data; boundary=b8"), preamble),
        post("padding and header case", TOKEN, Some("multipart/form-data; boundary=b9"), padded),
        post(
            "delimiter inside the preamble",
            TOKEN,
            Some("multipart/form-data; boundary=b11"),
            format!("x--b11\r\n{}", &String::from_utf8(multipart("b11", &ropc("name=grant_type"))).unwrap()[7..]),
        ),
        post(
            "among other grants",
            TOKEN,
            Some("multipart/form-data; boundary=\"a b'c\""),
            multipart(
                "a b'c",
                &[
                    ("name=grant_type", "refresh_token"),
                    ("name=refresh_token", "0.AAA"),
                    ("name=grant_type", "password"),
                ],
            ),
        ),
        post(
            "file part",
            TOKEN,
            Some("multipart/form-data; boundary=b10"),
            multipart("b10", &[("name=grant_type; filename=g.txt", "password")]),
        ),
    ];
    refused(&env, posts, 403, "password_grant").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn password_grants_in_json_and_utf16_bodies_are_refused() {
    let env = env("").await;
    let text = format!("grant_type=password&{ROPC}");
    let posts = vec![
        post("JSON", TOKEN, Some("application/json"), r#"{"grant_type":"password","username":"a","password":"b"}"#),
        post("JSON keys in any case, declared as a form", TOKEN, Some(FORM), r#"{"Grant_Type":" Password "}"#),
        post("JSON duplicate keys", TOKEN, None, r#"{"grant_type":"refresh_token","grant_type":"password"}"#),
        post("JSON escapes", TOKEN, Some("application/json"), r#"{"grant\u005Ftype":"pass\u0077ord"}"#),
        post("UTF-16LE form", TOKEN, Some(FORM), utf16le(&text, false)),
        post("UTF-16LE form with a byte order mark", TOKEN, None, utf16le(&text, true)),
        post("UTF-16BE JSON", TOKEN, Some("application/json"), utf16be(r#"{"grant_type":"password"}"#)),
    ];
    refused(&env, posts, 403, "password_grant").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn ws_trust_endpoints_and_saml_bearer_grants_are_legacy_auth() {
    let env = env("").await;
    let envelope = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body/></s:Envelope>";
    let soap = |name: &'static str, path: &str| post(name, path, Some(SOAP), envelope);
    let saml = |grant: &str| format!("grant_type={grant}&assertion=PHNhbWw%2B&client_id=c&scope=openid");
    let posts = vec![
        soap("AD FS 1.3 username", "/adfs/services/trust/13/usernamemixed"),
        soap("AD FS 2005 Windows", "/adfs/services/trust/2005/windowstransport"),
        soap("AD FS basic transport", "/adfs/services/trust/13/usernamebasictransport"),
        soap("AD FS in any case", "/ADFS/Services/Trust/13/UsernameMixed"),
        soap("AD FS encoded letter", "/adfs/services/trust/2005/username%6Dixed"),
        soap("AD FS trailing slash", "/adfs/services/trust/13/windowsmixed/"),
        soap("Entra seamless SSO", &format!("/{TID}/winauth/trust/2005/usernamemixed")),
        soap("Entra rst2.srf", "/rst2.srf"),
        soap("rst2.srf in any case", "/RST2.SRF"),
        soap("rst2.srf, encoded letter", "/%52st2.srf"),
        soap("rst2.srf, encoded dot", "/%72st2%2Esrf"),
        soap("SharePoint extSTS.srf", "/extSTS.srf"),
        form("SAML 1.1 bearer grant", &saml("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Asaml1_1-bearer")),
        form("SAML 2 bearer grant", &saml("urn:ietf:params:oauth:grant-type:saml2-bearer")),
        form("SAML grant in upper case", &saml("URN:IETF:PARAMS:OAUTH:GRANT-TYPE:SAML2-BEARER")),
        post(
            "SAML grant in multipart",
            TOKEN,
            Some("multipart/form-data; boundary=s"),
            multipart("s", &[("name=grant_type", "urn:ietf:params:oauth:grant-type:saml1_1-bearer")]),
        ),
    ];
    // With the status the reason declares for itself (an encoded dot is a
    // dot: `/%72st2%2Esrf` is `/rst2.srf`).
    let status = mfagate::error::Reason::LegacyAuth.status();
    assert!(status.is_client_error());
    refused(&env, posts, status.as_u16(), "legacy_auth").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn bodies_that_cannot_be_read_unambiguously_are_refused() {
    let env = env("").await;
    let mp = "multipart/form-data; boundary=x";
    let part = |headers: &str, value: &str| {
        format!("--x\r\nContent-Disposition: form-data; name=grant_type\r\n{headers}\r\n\r\n{value}\r\n--x--\r\n")
    };
    let posts = vec![
        post(
            "UTF-16 charset",
            TOKEN,
            Some("application/x-www-form-urlencoded; charset=utf-16"),
            utf16le("grant_type=password", false),
        ),
        post(
            "quoted UTF-16LE charset",
            TOKEN,
            Some("application/x-www-form-urlencoded; CHARSET=\"UTF-16LE\""),
            "grant_type=refresh_token",
        ),
        post("UTF-32 charset on JSON", TOKEN, Some("application/json; charset=utf-32"), "{}"),
        post(
            "multipart without a boundary",
            TOKEN,
            Some("multipart/form-data"),
            multipart("b", &[("name=grant_type", "password")]),
        ),
        post("multipart, body is a form", TOKEN, Some(mp), "grant_type=refresh_token&refresh_token=x"),
        post("multipart, another boundary", TOKEN, Some(mp), multipart("y", &[("name=grant_type", "refresh_token")])),
        post(
            "multipart without its closing line",
            TOKEN,
            Some(mp),
            "--x\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword",
        ),
        post("base64 part", TOKEN, Some(mp), part("Content-Transfer-Encoding: base64", "cGFzc3dvcmQ=")),
        post(
            "quoted-printable part",
            TOKEN,
            Some(mp),
            part("content-transfer-encoding: Quoted-Printable", "pass=77ord"),
        ),
        post("UTF-16 part", TOKEN, Some(mp), part("Content-Type: text/plain; charset=utf-16", "x")),
        post(
            "looks like multipart, does not parse",
            TOKEN,
            Some(FORM),
            "--x\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword\r\n",
        ),
        // Declared JSON, not JSON: a lenient server may still read the form.
        post("declared as JSON, a form", TOKEN, Some("application/json"), format!("grant_type=password&{ROPC}")),
    ];
    refused(&env, posts, 400, "bad_request").await;
    // Two Content-Types, or one that is not text, could each be read otherwise.
    let two: [&[u8]; 2] = [FORM.as_bytes(), b"multipart/form-data; boundary=x"];
    let not_text: [&[u8]; 1] = [b"multipart/form-data; boundary=\xff"];
    for (name, values) in [("two Content-Types", &two[..]), ("Content-Type not text", &not_text[..])] {
        let mut req = env.client.post(env.url(TOKEN)).body(multipart("x", &[("name=grant_type", "password")]));
        for v in values {
            req = req.header("content-type", reqwest::header::HeaderValue::from_bytes(v).unwrap());
        }
        let rsp = req.send().await.unwrap();
        assert_eq!(rsp.status(), 400, "{name}");
        assert_rejected(rsp, 400, "bad_request").await;
    }
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn other_token_requests_reach_entra_with_their_body_intact() {
    let env = env("").await;
    let code = "grant_type=authorization_code&client_id=23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21&code=0.AQ&redirect_uri=https%3A%2F%2Flocalhost&code_verifier=abc";
    let refresh = "client_id=23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21&grant_type=refresh_token&refresh_token=0.AAAA&scope=https%3A%2F%2Fapi.partnercenter.microsoft.com%2Fuser_impersonation";
    let credentials = "grant_type=client_credentials&client_id=c&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJ.x.y&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";
    let obo = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&requested_token_use=on_behalf_of&assertion=eyJ.x.y";
    let posts = vec![
        form("authorization_code", code),
        form("refresh_token", refresh),
        post(
            "client_credentials, utf-8 declared",
            TOKEN,
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            credentials,
        ),
        form("on-behalf-of", obo),
        form("a parameter named password on another grant", "grant_type=authorization_code&code=x&password=literal"),
        post(
            "authorization_code, multipart",
            TOKEN,
            Some("multipart/form-data; boundary=\"----form 1\""),
            multipart("----form 1", &[("name=\"grant_type\"", "authorization_code"), ("name=\"code\"", "0.AQ")]),
        ),
        post(
            "refresh_token, multipart",
            TOKEN,
            Some("multipart/form-data; boundary=r"),
            multipart("r", &[("name=grant_type", "refresh_token"), ("name=refresh_token", "0.AAAA")]),
        ),
        post(
            "client_credentials, multipart",
            TOKEN,
            Some("multipart/form-data; charset=utf-8; boundary=c"),
            multipart("c", &[("name=grant_type", "client_credentials"), ("name=client_secret", "s3cr&t=password")]),
        ),
        post("AD FS metadata exchange", "/adfs/services/trust/mex", Some(SOAP), "<s:Envelope/>"),
    ];
    forwarded(&env, posts).await;
    let rsp = env.client.get(env.url("/organizations/v2.0/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(rsp.status(), 200);
}

#[tokio::test]
async fn report_only_forwards_password_sign_ins_and_counts_them() {
    let env = env("rule_modes = { legacy_auth = \"report-only\" }").await;
    let posts = vec![
        form("mixed-case name", &format!("Grant_Type=password&{ROPC}")),
        post(
            "multipart",
            TOKEN,
            Some("multipart/form-data; boundary=b"),
            multipart("b", &[("name=grant_type", "password")]),
        ),
        post("WS-Trust", "/adfs/services/trust/13/usernamemixed", Some(SOAP), "<s:Envelope/>"),
        form("SAML bearer", "grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer&assertion=x"),
    ];
    forwarded(&env, posts).await;
    let scrape = env.metrics().await;
    let would_deny =
        |reason: &str| format!(r#"mfagate_requests_total{{decision="would_deny",reason="{reason}",route="login"}}"#);
    assert_eq!(crate::support::sample(&scrape, &would_deny("password_grant")), 2.0, "password_grant");
    assert_eq!(crate::support::sample(&scrape, &would_deny("legacy_auth")), 2.0, "legacy_auth");
}
