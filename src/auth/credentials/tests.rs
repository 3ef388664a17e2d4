use super::*;

fn headers(name: &HeaderName, values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(name.clone(), HeaderValue::from_bytes(v).unwrap());
    }
    h
}

fn auth(values: &[&str]) -> HeaderMap {
    headers(&AUTHORIZATION, &values.iter().map(|v| v.as_bytes()).collect::<Vec<_>>())
}

fn reason(values: &[&str]) -> &'static str {
    read(&auth(values), 100).bearer.unwrap_err().reason().as_str()
}

#[test]
fn one_bearer_token_with_any_spacing() {
    for v in [
        "Bearer abc.def.ghi",
        "bearer  abc.def.ghi",
        "BEARER\tabc.def.ghi",
        "Bearer \t abc.def.ghi \t",
        " Bearer abc.def.ghi",
    ] {
        let h = auth(&[v]);
        let c = read(&h, 100);
        assert_eq!(c.bearer, Ok("abc.def.ghi"), "{v:?}");
        assert_eq!((c.scheme, c.legacy), (Scheme::Bearer, None), "{v:?}");
    }
}

#[test]
fn legacy_schemes_anywhere() {
    for values in [
        &["Basic dXNlcjpwYXNz"][..],
        &["Basic\tdXNlcjpwYXNz"],
        &["basic"],
        &["NTLM TlRMTVNTUAAB"],
        &["negotiate YII="],
        &["Digest username=\"x\", realm=\"y\""],
        &["Bearer a.b.c", "Basic eA=="],
        &["Basic eA==", "Bearer a.b.c"],
        &["Bearer a.b.c, Basic eA=="],
        &["Bearer a.b.c,\tNTLM x"],
    ] {
        let h = auth(values);
        let c = read(&h, 100);
        assert!(c.legacy.is_some(), "{values:?}");
        assert!(c.bearer.is_err(), "{values:?}");
    }
    let h = auth(&["Basic eA=="]);
    let c = read(&h, 100);
    assert_eq!((c.scheme, c.legacy), (Scheme::Basic, Some(Scheme::Basic)));
    assert_eq!(c.bearer.unwrap_err().reason().as_str(), "missing_token");
}

#[test]
fn ambiguous_or_missing() {
    assert_eq!(reason(&[]), "missing_token");
    assert_eq!(reason(&["Token abc"]), "missing_token");
    assert_eq!(reason(&["PoP eyJ.a.b"]), "missing_token");
    assert_eq!(reason(&["Bearer"]), "malformed_token");
    assert_eq!(reason(&["Bearer \t "]), "malformed_token");
    assert_eq!(reason(&["Bearer a", "Bearer a"]), "malformed_token");
    assert_eq!(reason(&["Bearer a", "Bearer b"]), "malformed_token");
    assert_eq!(reason(&["Bearer a b"]), "malformed_token");
    assert_eq!(reason(&["Bearer a, Bearer b"]), "malformed_token");
    assert_eq!(reason(&["Bearer a,"]), "malformed_token");
    assert_eq!(reason(&[&format!("Bearer {}", "x".repeat(101))]), "malformed_token");
    let odd = headers(&AUTHORIZATION, &[b"Bearer a\xffb"]);
    assert_eq!(read(&odd, 100).bearer.unwrap_err().reason().as_str(), "malformed_token");
    let odd = headers(&AUTHORIZATION, &[b"\xffBasic x"]);
    assert!(read(&odd, 100).legacy.is_none(), "a scheme glued to other bytes is no scheme");
}

#[test]
fn auxiliary_tokens() {
    let h = headers(&AUXILIARY, &[b"Bearer t1, Bearer\tt2", b"bearer t3"]);
    assert_eq!(auxiliary(&h, 100).unwrap(), ["t1", "t2", "t3"]);
    assert!(auxiliary(&HeaderMap::new(), 100).unwrap().is_empty());
    let four = headers(&AUXILIARY, &[b"Bearer a, Bearer b, Bearer c, Bearer d"]);
    assert!(auxiliary(&four, 100).is_err());
    for bad in [&b"Basic eA=="[..], b"Bearer", b"t1", b"Bearer a b", b"Bearer a,", b"Bearer a\xff"] {
        assert!(auxiliary(&headers(&AUXILIARY, &[bad]), 100).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

fn jws() -> String {
    format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#), URL_SAFE_NO_PAD.encode("{}"))
}

#[test]
fn stray_tokens() {
    let none = HeaderMap::new();
    assert!(stray(Some("access_token=x"), &none).is_some());
    assert!(stray(Some("a=1&ACCESS_TOKEN=x"), &none).is_some());
    assert!(stray(Some("access%5Ftoken=x"), &none).is_some());
    assert!(stray(Some("api-version=2022-12-01&$top=5"), &none).is_none());
    assert!(stray(None, &none).is_none());
    let cookie = |v: &str| headers(&COOKIE, &[v.as_bytes()]);
    assert!(stray(None, &cookie(&format!("a=1; session={}", jws()))).is_some());
    assert!(stray(None, &cookie(&format!("s=\"{}\"", jws()))).is_some());
    assert!(stray(None, &cookie(&format!("s={}", jws().replace('.', "%2E")))).is_some());
    assert!(stray(None, &cookie("a=1; b=x.y.z; c=eyJ.e30")).is_none());
    assert!(stray(None, &cookie(&format!("theme=dark, session={}", jws()))).is_some(), "',' separates cookies too");
    assert!(stray(Some("access_token=&access_token=x"), &none).is_some());
    assert!(stray(Some("size=10;access_token=x"), &none).is_some(), "';' separates parameters too");
    assert!(stray(Some("a=1&b=2"), &none).is_none());
}

#[test]
fn every_token_is_seen() {
    let t = |n: u8| {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","n":{n}}}"#)),
            URL_SAFE_NO_PAD.encode("{}")
        )
    };
    let mut h = auth(&[&format!("Bearer {}", t(1)), &format!("Bearer {}, Basic x", t(2)), &format!("JWT {}", t(3))]);
    h.append(AUTHORIZATION, HeaderValue::from_str(&t(4)).unwrap());
    h.append(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer,{}", t(5))).unwrap());
    h.append(&AUXILIARY, HeaderValue::from_str(&format!("Bearer {}", t(6))).unwrap());
    h.append(COOKIE, HeaderValue::from_str(&format!("a=b, c=\"{}\"", t(7))).unwrap());
    h.append("x-anything", HeaderValue::from_str(&t(8)).unwrap());
    let path = format!("/p/{}?access_token=x&access_token={}&other={}", t(9), t(10), t(11).replace('.', "%2E"));
    let all = every_token(&path, &h);
    for n in 1..=11 {
        assert!(all.contains(&t(n)), "token {n} not seen: {all:?}");
    }
    assert!(every_token("/v1/customers?size=10", &auth(&["Bearer abc"])).is_empty());
    // Next to any punctuation, glued to other text, inside Basic.
    for value in [
        format!("{{'access_token': '{}'}}", t(12)),
        format!("automation:{}", t(12)),
        format!("[{}]", t(12)),
        format!("x.{}.", t(12)),
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("user:{}", t(12)))),
    ] {
        let h = auth(&[&value]);
        assert_eq!(every_token("/", &h), [t(12)], "{value}");
    }
}

#[test]
fn basic_credentials_with_any_spacing_anywhere_in_a_list() {
    let basic = |v: &[u8]| {
        super::basic(&HeaderValue::from_bytes(v).unwrap())
            .map(|c| c.into_iter().map(str::to_string).collect::<Vec<_>>())
    };
    for v in [&b"Basic abc"[..], b"basic\tabc", b"BASIC \t abc ", b"\tBasic\t\tabc", b"Bearer x, Basic\tabc"] {
        assert_eq!(basic(v), Ok(vec!["abc".to_string()]), "{v:?}");
    }
    // Every Basic element of a list, not only the first.
    assert_eq!(basic(b"Basic abc, Basic\tdef,Bearer x"), Ok(vec!["abc".to_string(), "def".to_string()]));
    assert_eq!(basic(b"Bearer abc"), Ok(vec![]));
    assert_eq!(basic(b"Basicabc"), Ok(vec![]), "no separator: another scheme");
    // A bare token after a Basic element could be read as its second credentials.
    for v in [&b"Basic abc, ZGVm"[..], b"Basic abc,ZGVm=", b"Bearer x, Basic abc, def"] {
        assert_eq!(basic(v), Err(Unreadable), "{v:?}");
    }
    // Auth-params of a scheme (Digest's) are not bare tokens.
    assert_eq!(basic(br#"Digest username="a", realm="b", nonce="c""#), Ok(vec![]));
    for v in [&b""[..], b"  ", b"\xffBasic abc", b"Basic\xa0abc", b", Basic abc"] {
        assert_eq!(basic(v), Err(Unreadable), "{v:?}");
    }
}
