//! Every credential a request carries, read by the one parser every check
//! uses: the gateway's authentication, the legacy-authentication rule, the
//! egress proxy's audience binding, `check-token`. Two parsers of one header
//! would disagree on exactly the input an attacker chooses.
//!
//! - `Authorization`: every field value is examined, however many there
//!   are, with any run of spaces or tabs between scheme and credential
//!   (RFC 9110 §11.4 asks for one space; lenient servers take more). A
//!   legacy scheme (Basic, NTLM, Negotiate, Digest) anywhere, even in a list
//!   or next to a bearer token, is legacy authentication. Only a request
//!   with exactly one value holding exactly one bearer token has a token;
//!   several values, several credentials in one value, or bytes that are
//!   not visible ASCII are ambiguous.
//! - `x-ms-authorization-auxiliary`: Azure Resource Manager's auxiliary
//!   tokens for cross-tenant calls, up to three `Bearer` tokens separated by
//!   commas (in one or several field values). Each is a token to check like
//!   the main one.
//! - Bearer credentials anywhere else (an `access_token` query parameter, a
//!   cookie whose value is a JWS) are stray: the gateway cannot tell which
//!   one an upstream would read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, COOKIE, HeaderName};
use http::{HeaderMap, HeaderValue};

use super::AuthError;
use crate::reason::RequestRule;

/// Azure Resource Manager's header for the tokens of other tenants.
pub static AUXILIARY: HeaderName = HeaderName::from_static("x-ms-authorization-auxiliary");

/// ARM takes at most this many auxiliary tokens.
pub const MAX_AUXILIARY: usize = 3;

/// An `Authorization` scheme; a bounded set, fit for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    None,
    Bearer,
    Basic,
    Ntlm,
    Negotiate,
    Digest,
    Other,
}

impl Scheme {
    fn of(name: &[u8]) -> Self {
        [
            (&b"bearer"[..], Self::Bearer),
            (b"basic", Self::Basic),
            (b"ntlm", Self::Ntlm),
            (b"negotiate", Self::Negotiate),
            (b"digest", Self::Digest),
        ]
        .into_iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n))
        .map_or(Self::Other, |(_, s)| s)
    }

    /// Schemes Entra's "block legacy authentication" guidance covers: they
    /// send a password (or a Windows ticket) and can never prove MFA.
    pub fn is_legacy(self) -> bool {
        matches!(self, Self::Basic | Self::Ntlm | Self::Negotiate | Self::Digest)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Bearer => "bearer",
            Self::Basic => "basic",
            Self::Ntlm => "ntlm",
            Self::Negotiate => "negotiate",
            Self::Digest => "digest",
            Self::Other => "other",
        }
    }
}

/// What a request's `Authorization` fields carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The scheme of the first value (`None` without the header), for logs.
    pub scheme: Scheme,
    /// A legacy scheme found in any value, at any position.
    pub legacy: Option<Scheme>,
    /// The one bearer token, or why there is none.
    pub bearer: Result<&'a str, AuthError>,
}

/// SP and HTAB: what may separate a scheme from its credential.
fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits `scheme<spaces>rest` (leading spaces skipped); `rest` may be empty.
fn scheme_and_rest(item: &str) -> (&str, &str) {
    let item = item.trim_start_matches([' ', '\t']);
    match item.bytes().position(is_space) {
        Some(i) => (&item[..i], item[i..].trim_matches([' ', '\t'])),
        None => (item, ""),
    }
}

/// Reads the request's `Authorization` fields. `max_token_bytes` bounds the
/// bearer token.
pub fn read(headers: &HeaderMap, max_token_bytes: usize) -> Credentials<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(first) = values.next() else {
        return Credentials {
            scheme: Scheme::None,
            legacy: None,
            bearer: Err(AuthError::MissingToken("no Authorization header")),
        };
    };
    let several = values.next().is_some();
    let scheme = first.to_str().map_or(Scheme::Other, |v| Scheme::of(scheme_and_rest(v).0.as_bytes()));
    let legacy = headers.get_all(AUTHORIZATION).iter().find_map(legacy_scheme);
    let bearer = if several {
        Err(AuthError::Malformed("more than one Authorization header"))
    } else {
        bearer_token(first, max_token_bytes)
    };
    Credentials { scheme, legacy, bearer }
}

/// The first legacy scheme in a field value: its own scheme, or that of any
/// element of a comma-separated list of credentials.
fn legacy_scheme(value: &HeaderValue) -> Option<Scheme> {
    // Bytes that are not ASCII cannot hide a scheme name, but may surround one.
    let text = String::from_utf8_lossy(value.as_bytes());
    text.split(',').map(|item| Scheme::of(scheme_and_rest(item).0.as_bytes())).find(|s| s.is_legacy())
}

/// The token of a single `Bearer` credential.
fn bearer_token(value: &HeaderValue, max_token_bytes: usize) -> Result<&str, AuthError> {
    let value = value.to_str().map_err(|_| AuthError::Malformed("Authorization header is not visible ASCII"))?;
    let (scheme, token) = scheme_and_rest(value);
    // A legacy scheme is reported as `legacy`; it carries no bearer token.
    if Scheme::of(scheme.as_bytes()) != Scheme::Bearer {
        return Err(AuthError::MissingToken("Authorization scheme is not Bearer"));
    }
    token68(token, max_token_bytes)
}

/// A bearer token: one non-empty run of token68 characters (RFC 6750 §2.1),
/// nothing after it.
fn token68(token: &str, max_token_bytes: usize) -> Result<&str, AuthError> {
    if token.is_empty() {
        return Err(AuthError::Malformed("empty bearer token"));
    }
    if token.bytes().any(|b| is_space(b) || b == b',') {
        return Err(AuthError::Malformed("more than one credential in one Authorization header"));
    }
    if token.len() > max_token_bytes {
        return Err(AuthError::Malformed("bearer token exceeds identity.max_token_bytes"));
    }
    Ok(token)
}

/// The auxiliary tokens of `x-ms-authorization-auxiliary`, in order; empty
/// without the header.
pub fn auxiliary(headers: &HeaderMap, max_token_bytes: usize) -> Result<Vec<&str>, AuthError> {
    let mut tokens = Vec::new();
    for value in headers.get_all(&AUXILIARY) {
        let value = value.to_str().map_err(|_| AuthError::Malformed("auxiliary token header is not visible ASCII"))?;
        for item in value.split(',') {
            let (scheme, token) = scheme_and_rest(item);
            if Scheme::of(scheme.as_bytes()) != Scheme::Bearer {
                return Err(AuthError::Malformed("an auxiliary token is not a Bearer credential"));
            }
            tokens.push(token68(token, max_token_bytes)?);
        }
    }
    if tokens.len() > MAX_AUXILIARY {
        return Err(AuthError::Malformed("more than three auxiliary tokens"));
    }
    Ok(tokens)
}

/// Why a request carries a bearer credential outside `Authorization` and
/// `x-ms-authorization-auxiliary`, when it does: an `access_token` query
/// parameter (any of them, its name in any case), or a JWS anywhere in a
/// cookie (however the cookies are split: ASP.NET splits on `;` and `,`).
pub fn stray(query: Option<&str>, headers: &HeaderMap) -> Option<RequestRule> {
    if query_tokens(query).next().is_some() {
        return Some(RequestRule::StrayAccessToken);
    }
    let cookie = headers.get_all(COOKIE).iter().any(|v| !jose_in(&String::from_utf8_lossy(v.as_bytes())).is_empty());
    if cookie {
        return Some(RequestRule::TokenInCookie);
    }
    None
}

/// Every `access_token` query parameter (RFC 6750 §2.3), its name in any
/// case; `;` separates parameters too, as some servers read it.
fn query_tokens(query: Option<&str>) -> impl Iterator<Item = String> {
    let query = query.unwrap_or_default().replace(';', "&");
    form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("access_token"))
        .map(|(_, value)| value.into_owned())
        .collect::<Vec<_>>()
        .into_iter()
}

/// Every compact JWS or JWE written anywhere in `text`, whatever surrounds
/// it: a token's header is a JSON object, so its encoding starts with `eyJ`
/// (`{"`); from each such start, the dot-separated base64url segments that
/// follow. `text` is read as written and percent-decoded.
pub fn jose_in(text: &str) -> Vec<String> {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
    let mut out = Vec::new();
    for source in [text, decoded.as_ref()] {
        let bytes = source.as_bytes();
        for (start, _) in source.match_indices("eyJ") {
            let run = bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
                .count();
            let candidate = &source[start..start + run];
            let segments: Vec<&str> = candidate.split('.').collect();
            for n in [5, 3] {
                if segments.len() >= n {
                    let token = segments[..n].join(".");
                    if is_jose(&token) && !out.contains(&token) {
                        out.push(token);
                        break;
                    }
                }
            }
        }
        if decoded.as_ref() == text {
            break;
        }
    }
    out
}

/// True for a compact JWS or JWE: dot-separated base64url segments whose
/// first decodes to a JSON object.
pub fn is_jose(s: &str) -> bool {
    let s = s.trim();
    let segments: Vec<&str> = s.split('.').collect();
    if !matches!(segments.len(), 3 | 5) {
        return false;
    }
    let charset = |seg: &str| seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=');
    if !segments.iter().all(|seg| charset(seg)) {
        return false;
    }
    URL_SAFE_NO_PAD
        .decode(segments[0].trim_end_matches('='))
        .is_ok_and(|header| header.trim_ascii_start().first() == Some(&b'{'))
}

/// Every token a request carries anywhere, for a check that must see all of
/// them (the egress audience binding): every JWS in any header value, in
/// any position and next to any character, whatever the field or scheme
/// (also inside `Basic` credentials, base64-decoded), in the path and in
/// the query.
pub fn every_token(path_and_query: &str, headers: &HeaderMap) -> Vec<String> {
    let mut out = jose_in(path_and_query);
    for value in headers.values() {
        let text = String::from_utf8_lossy(value.as_bytes());
        out.extend(jose_in(&text));
        // `Basic base64(user:password)`: a token may be the password.
        for item in text.split(',') {
            let (scheme, rest) = scheme_and_rest(item);
            if Scheme::of(scheme.as_bytes()) == Scheme::Basic
                && let Ok(plain) = base64::engine::general_purpose::STANDARD.decode(rest.trim())
            {
                out.extend(jose_in(&String::from_utf8_lossy(&plain)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
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
        let mut h =
            auth(&[&format!("Bearer {}", t(1)), &format!("Bearer {}, Basic x", t(2)), &format!("JWT {}", t(3))]);
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
}
