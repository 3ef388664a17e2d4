use super::*;

mod multipart;

#[test]
fn exchange_endpoints() {
    for path in [
        "/EWS/Exchange.asmx",
        "/Microsoft-Server-ActiveSync?Cmd=Sync",
        "/autodiscover/autodiscover.xml",
        "/rpc/rpcproxy.dll",
        "/mapi/emsmdb/",
        "/exo/%45WS/Exchange.asmx",
        "/EWS;x/Exchange.asmx",
        "/ews%3B/Exchange.asmx",
        "/mapi;/emsmdb",
    ] {
        let path = path.split('?').next().unwrap();
        assert!(is_exchange_legacy(path), "{path}");
        assert_eq!(exchange(path, Credential::Basic), Check::Fail(Reason::LegacyAuth), "{path}");
        assert_eq!(exchange(path, Credential::Other), Check::Fail(Reason::LegacyAuth), "{path}");
        assert_eq!(exchange(path, Credential::Bearer), Check::Pass, "{path}");
        assert_eq!(exchange(path, Credential::None), Check::Skip, "{path}");
    }
    for path in ["/v1/customers", "/ewsx/", "/api/mapping", "/v1.0/users"] {
        assert!(!is_exchange_legacy(path), "{path}");
        assert_eq!(exchange(path, Credential::Other), Check::Skip);
    }
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const PW: Check = Check::Fail(Reason::PasswordGrant);
const LEGACY: Check = Check::Fail(Reason::LegacyAuth);

fn parse(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<TokenRequest, RequestRule> {
    TokenRequest::parse(query, content_type, body)
}

/// A multipart body; each part is `(its headers, its value)`, CR LF line endings.
fn multipart(boundary: &str, parts: &[(&str, &str)]) -> Vec<u8> {
    let mut body = String::new();
    for (headers, value) in parts {
        body.push_str(&format!("--{boundary}\r\n{headers}\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body.into_bytes()
}

fn named(name: &str) -> String {
    format!("Content-Disposition: form-data; {name}")
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn utf16be_bom(text: &str) -> Vec<u8> {
    [0xfe, 0xff].into_iter().chain(text.encode_utf16().flat_map(u16::to_be_bytes)).collect()
}

/// Name, query, Content-Type, body, and the check (`Err` when refused).
type Case<'a> = (&'a str, Option<&'a str>, Option<String>, Vec<u8>, Result<Check, ()>);

fn mp(boundary: &str) -> String {
    format!("multipart/form-data; boundary={boundary}")
}

fn grant(name: &str, value: &str) -> Vec<u8> {
    multipart("x", &[(&named(name), value)])
}

const MPX: Option<&str> = Some("multipart/form-data; boundary=x");

/// Each case is read as a lenient token endpoint would read it.
fn check(cases: Vec<Case<'_>>) {
    assert!(!cases.is_empty());
    for (name, query, content_type, body, expected) in cases {
        let got = parse(query, content_type.as_deref(), &body).map(|r| r.check()).map_err(|_| ());
        assert_eq!(got, expected, "{name}");
    }
}

/// Forms and the query, read whatever the declared type.
#[test]
fn token_requests_in_every_form_a_lenient_server_reads() {
    let cases: Vec<Case> = vec![
        // Form bodies: names in any case and encoding, values trimmed.
        ("plain", None, FORM.map(Into::into), b"grant_type=password".to_vec(), Ok(PW)),
        ("name case", None, FORM.map(Into::into), b"Grant_Type=password".to_vec(), Ok(PW)),
        ("upper case", None, FORM.map(Into::into), b"GRANT_TYPE=PASSWORD".to_vec(), Ok(PW)),
        ("encoded name", None, FORM.map(Into::into), b"grant%5Ftype=password".to_vec(), Ok(PW)),
        ("encoded letters", None, FORM.map(Into::into), b"%67rant%5ftype=%70assword".to_vec(), Ok(PW)),
        ("plus as space", None, FORM.map(Into::into), b"grant_type=+password+".to_vec(), Ok(PW)),
        ("NUL and tab", None, FORM.map(Into::into), b"grant_type=%00password%09".to_vec(), Ok(PW)),
        ("NUL inside", None, FORM.map(Into::into), b"grant_type=pass%00word".to_vec(), Ok(PW)),
        ("no-break space", None, FORM.map(Into::into), b"grant_type=%C2%A0password".to_vec(), Ok(PW)),
        ("long s", None, FORM.map(Into::into), b"grant_type=pa%C5%BF%C5%BFword".to_vec(), Ok(PW)),
        ("name padded", None, FORM.map(Into::into), b"+grant_type+=password".to_vec(), Ok(PW)),
        ("after another", None, FORM.map(Into::into), b"grant_type=refresh_token&grant_type=password".to_vec(), Ok(PW)),
        (
            "before another",
            None,
            FORM.map(Into::into),
            b"grant_type=password&grant_type=refresh_token".to_vec(),
            Ok(PW),
        ),
        ("percent-u value", None, FORM.map(Into::into), b"grant_type=%u0070assword".to_vec(), Ok(PW)),
        ("percent-u name", None, FORM.map(Into::into), b"grant%u005Ftype=password".to_vec(), Ok(PW)),
        ("percent-u in the query", Some("grant_type=%U0050ASSWORD"), None, Vec::new(), Ok(PW)),
        ("utf-8 byte order mark", None, FORM.map(Into::into), "\u{feff}grant_type=password".into(), Ok(PW)),
        // The query, whatever the body says.
        ("query", Some("grant_type=password"), None, Vec::new(), Ok(PW)),
        (
            "query name case",
            Some("GRANT_type=password"),
            FORM.map(Into::into),
            b"grant_type=refresh_token".to_vec(),
            Ok(PW),
        ),
        (
            "query under multipart",
            Some("Grant_Type=password"),
            MPX.map(Into::into),
            grant("name=grant_type", "refresh_token"),
            Ok(PW),
        ),
        // The form reading, whatever the declared type, unless multipart.
        ("no content type", None, None, b"grant_type=password".to_vec(), Ok(PW)),
        // Declared JSON must be JSON: a form under it is refused.
        ("declared JSON", None, Some("application/json".into()), b"grant_type=password".to_vec(), Err(())),
        (
            "utf-8 quoted",
            None,
            Some("application/x-www-form-urlencoded; charset=\"UTF-8\"".into()),
            b"grant_type=password".to_vec(),
            Ok(PW),
        ),
        (
            "us-ascii",
            None,
            Some("application/x-www-form-urlencoded;charset=us-ascii".into()),
            b"grant_type=password".to_vec(),
            Ok(PW),
        ),
        (
            "latin-1",
            None,
            Some("Application/X-WWW-Form-Urlencoded ; Charset = ISO-8859-1".into()),
            b"grant_type=password".to_vec(),
            Ok(PW),
        ),
    ];
    check(cases);
}

/// JSON, UTF-16 in disguise, the SAML bearer grants, no grant type, other grants.
#[test]
fn token_requests_in_json_utf16_saml_and_other_grants() {
    let cases: Vec<Case> = vec![
        // JSON.
        ("JSON", None, Some("application/json".into()), br#"{"grant_type":"password"}"#.to_vec(), Ok(PW)),
        ("JSON key case", None, FORM.map(Into::into), br#"{"Grant_Type":" PASSWORD "}"#.to_vec(), Ok(PW)),
        (
            "JSON duplicate keys",
            None,
            None,
            br#"{"grant_type":"refresh_token","grant_type":"password"}"#.to_vec(),
            Ok(PW),
        ),
        ("JSON array", None, None, br#"{"grant_type":["refresh_token","password"]}"#.to_vec(), Ok(PW)),
        ("JSON escapes", None, None, br#"{"grant\u005Ftype":"pass\u0077ord"}"#.to_vec(), Ok(PW)),
        ("JSON byte order mark", None, None, "\u{feff}{\"grant_type\":\"password\"}".into(), Ok(PW)),
        // UTF-16 in disguise.
        ("UTF-16LE form", None, FORM.map(Into::into), utf16le("client_id=c&grant_type=password"), Ok(PW)),
        ("UTF-16BE JSON with BOM", None, None, utf16be_bom(r#"{"grant_type":"password"}"#), Ok(PW)),
        (
            "UTF-16LE multipart",
            None,
            None,
            utf16le("--b\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword\r\n--b--"),
            Ok(PW),
        ),
        // The SAML bearer grants that complete WS-Trust sign-ins.
        (
            "SAML 1.1",
            None,
            FORM.map(Into::into),
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Asaml1_1-bearer".to_vec(),
            Ok(LEGACY),
        ),
        (
            "SAML 2",
            None,
            FORM.map(Into::into),
            b"grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer&assertion=x".to_vec(),
            Ok(LEGACY),
        ),
        (
            "SAML upper case",
            None,
            None,
            b"GRANT_TYPE=URN:IETF:PARAMS:OAUTH:GRANT-TYPE:SAML2-BEARER".to_vec(),
            Ok(LEGACY),
        ),
        (
            "SAML in multipart",
            None,
            MPX.map(Into::into),
            grant("name=grant_type", " urn:ietf:params:oauth:grant-type:saml1_1-bearer "),
            Ok(LEGACY),
        ),
        (
            "SAML and password",
            None,
            FORM.map(Into::into),
            b"grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer&grant_type=password".to_vec(),
            Ok(PW),
        ),
        // No grant type.
        ("empty", None, None, Vec::new(), Ok(Check::Skip)),
        ("other parameters", None, FORM.map(Into::into), b"client_id=x&grant_typex=password".to_vec(), Ok(Check::Skip)),
        ("JSON without one", None, None, br#"{"a":1,"b":{"grant_type":"password"}}"#.to_vec(), Ok(Check::Skip)),
        ("JSON array body", None, None, br#"["grant_type","password"]"#.to_vec(), Err(())),
        (
            "multipart part without a name",
            None,
            MPX.map(Into::into),
            multipart("x", &[("Content-Type: text/plain", "password")]),
            Ok(Check::Skip),
        ),
        // Other grants.
        (
            "refresh_token",
            None,
            FORM.map(Into::into),
            b"grant_type=refresh_token&refresh_token=0.A".to_vec(),
            Ok(Check::Pass),
        ),
        (
            "a password parameter",
            None,
            FORM.map(Into::into),
            b"grant_type=authorization_code&code=x&password=literal".to_vec(),
            Ok(Check::Pass),
        ),
        ("password as a prefix", None, FORM.map(Into::into), b"grant_type=passwordx".to_vec(), Ok(Check::Pass)),
        ("password with a space", None, FORM.map(Into::into), b"grant_type=pass+word".to_vec(), Ok(Check::Pass)),
        (
            "multipart client_credentials",
            None,
            MPX.map(Into::into),
            multipart(
                "x",
                &[
                    (&named("name=grant_type"), "client_credentials"),
                    (&named("name=client_secret"), "a&grant_type=password"),
                ],
            ),
            Ok(Check::Pass),
        ),
        (
            "jwt-bearer",
            None,
            FORM.map(Into::into),
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer".to_vec(),
            Ok(Check::Pass),
        ),
    ];
    check(cases);
}

#[test]
fn fields_are_read_from_every_source_in_order() {
    let ropc =
        parse(Some("client_id=q"), FORM, b"Client_Id=c&grant_type=password&USERNAME=+u%40x+&password=p").unwrap();
    assert_eq!(ropc.check(), PW);
    assert_eq!(ropc.client_id.as_deref(), Some("q"), "the query comes first");
    assert_eq!(ropc.username.as_deref(), Some("u@x"));
    assert_eq!(ropc.grant_label(), Some("password"));
    let body = multipart("x", &[(&named("name=grant_type"), "refresh_token"), (&named("name=username"), "m")]);
    let mp = parse(Some("grant_type=a"), None, &body).unwrap();
    assert_eq!(mp.grant_types, ["a", "refresh_token"]);
    assert_eq!(mp.username.as_deref(), Some("m"));
    let json = parse(None, None, br#"{"grant_type":"client_credentials","client_id":"j"}"#).unwrap();
    assert_eq!(
        (json.grant_types.as_slice(), json.client_id.as_deref()),
        (&["client_credentials".to_string()][..], Some("j"))
    );
    let plain = parse(None, FORM, b"grant_type=refresh_token").unwrap();
    assert_eq!(plain.grant_types, ["refresh_token"], "one reading of a plain body");
    let long = parse(None, FORM, format!("grant_type={}", "x".repeat(100)).as_bytes()).unwrap();
    assert_eq!(long.grant_label(), Some("other"));
    let jwt = parse(None, FORM, b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer").unwrap();
    assert_eq!(jwt.grant_label(), Some("urn:ietf:params:oauth:grant-type:jwt-bearer"));
}

#[test]
fn ws_trust_endpoints() {
    for path in [
        "/rst2.srf",
        "/RST2.SRF",
        "/%72st2.srf",
        "/common/rst2.srf",
        "/extSTS.srf",
        "/_forms/extsts.srf;x=1",
        "/adfs/services/trust/13/usernamemixed",
        "/adfs/services/trust/2005/usernamemixed",
        "/adfs/services/trust/13/windowstransport",
        "/adfs/services/trust/2005/windowstransport",
        "/adfs/services/trust/13/windowsmixed",
        "/adfs/services/trust/2005/windows",
        "/adfs/services/trust/13/usernamebasictransport",
        "/adfs/services/trust/2005/kerberosmixed",
        "/adfs/services/trust/13/username",
        "/ADFS/Services/Trust/13/UserNameMixed",
        "/adfs/services/%74rust/13/username%4Dixed",
        "/adfs/services/trust/13/usernamemixed/",
        "/adfs/services/trust/13/usernamemixed;v=1",
        "/adfs/services/trust;x/13/usernamemixed",
        "/df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50/winauth/trust/2005/usernamemixed",
        "/winauth/trust/2005/windowstransport",
    ] {
        assert!(ws_trust(path), "{path}");
    }
    for path in [
        "/organizations/oauth2/v2.0/token",
        "/common/oauth2/token",
        "/adfs/oauth2/token",
        "/adfs/services/trust/mex",
        "/adfs/services/trust/13/certificatemixed",
        "/adfs/ls/",
        "/rst2.srfx",
        "/trust",
        "/usernamemixed",
        "/v1/trusted/13/usernamemixed",
    ] {
        assert!(!ws_trust(path), "{path}");
    }
}

#[test]
fn a_json_member_of_any_type_is_sent() {
    for secret in ["12345", "true", "{}", "null", "[]", "[1, \"s\"]"] {
        let body = format!(r#"{{"grant_type":"client_credentials","client_secret":{secret}}}"#);
        let request = parse(None, Some("application/json"), body.as_bytes()).unwrap();
        assert_eq!(request.client_auth(), ClientAuth::Secret, "{secret}");
    }
    let request = parse(None, None, br#"{"client_id":42,"grant_type":["a",true]}"#).unwrap();
    assert_eq!(request.client_ids, ["42"]);
    assert_eq!(request.grant_types, ["a", "true"]);
}

#[test]
fn grants_and_client_ids_are_logged_in_one_spelling() {
    let request = parse(
        None,
        FORM,
        b"grant_type=Device_Code&grant_type=urn:ietf:params:oauth:grant-type:device_code&grant_type=REFRESH_TOKEN&client_id=23EC45A3-5F8B-4C3D-9E1A-7B6C5D4E3F21",
    )
    .unwrap();
    assert_eq!(request.grant_label(), Some("urn:ietf:params:oauth:grant-type:device_code refresh_token"));
    assert_eq!(request.client_id.as_deref(), Some("23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21"));
    assert!(request.is_token_request());
    let discovery = parse(Some("api-version=1.1"), None, b"").unwrap();
    assert!(!discovery.is_token_request());
}

/// A body declared JSON, in any spelling of a JSON media type, or shaped as
/// JSON, that a strict parser rejects is refused, never read as no parameters.
#[test]
fn json_a_strict_parser_rejects_is_refused() {
    let password = r#""grant_type":"password","username":"a@b.c","password":"p""#;
    let deep = format!("{{{password},\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
    let bodies = [
        format!("{{{password},\"x\":1e99999}}"),
        deep,
        "{'grant_type':'password'}".to_string(),
        format!("{{{password},}}"),
        format!("{{{password}}} garbage"),
        format!("{{{password},\"x\":NaN}}"),
        format!("{{/* c */{password}}}"),
        format!("\u{feff} \r\n{{{password},}}"),
        format!("[{{{password}}}]"),
        // Shapes a lenient reader starts a document with, past any white
        // space or byte-order marks a strict one stops at.
        format!("/*c*/{{{password}}}"),
        format!("\u{b}{{{password}}}"),
        format!("\u{a0}{{{password}}}"),
        format!("\u{feff}\u{feff}{{{password}}}"),
        format!("'{{{password}}}'"),
    ];
    for content_type in
        [None, FORM, Some("application/json"), Some("text/json"), Some("Application/JSON; charset=utf-8")]
    {
        for body in &bodies {
            let got = parse(None, content_type, body.as_bytes()).map(|_| ());
            assert_eq!(got, Err(RequestRule::TokenRequestJson), "{content_type:?} {body}");
        }
    }
    for content_type in ["text/json", "application/problem+json", "APPLICATION/X-JSON", "application/json ; q=1"] {
        let got = parse(None, Some(content_type), b"grant_type=password").map(|_| ());
        assert_eq!(got, Err(RequestRule::TokenRequestJson), "{content_type}");
    }
    // A declared JSON body with nothing in it hides nothing.
    assert!(parse(None, Some("application/json"), b" ").is_ok());
    for content_type in ["application/json5", "application/x-ndjson"] {
        let got = parse(None, Some(content_type), format!("/*c*/{{{password}}}").as_bytes()).map(|_| ());
        assert_eq!(got, Err(RequestRule::TokenRequestJson), "{content_type}");
    }
    let commented = utf16le(&format!("/*c*/{{{password}}}"));
    assert_eq!(parse(None, FORM, &commented).map(|_| ()), Err(RequestRule::TokenRequestJson));
    // A form whose values hold braces is still a form.
    assert!(parse(None, FORM, br#"grant_type=client_credentials&claims={"a":1}"#).is_ok());
    // UTF-16 JSON is read once its NUL bytes are gone.
    assert_eq!(parse(None, None, &utf16le(r#"{"grant_type":"password"}"#)).unwrap().check(), PW);
}
