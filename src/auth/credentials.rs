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

/// An `Authorization` value that cannot be read: not visible ASCII, or
/// naming no scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable;

/// The credentials of every `Basic` element of an `Authorization` value
/// (itself, or each element of a comma-separated list), in order, read as
/// every value is: any run of spaces or tabs around and after the scheme,
/// the scheme in any case. Used where Basic carries a client's secret (a
/// token request), where a second element is a second set of credentials.
pub fn basic(value: &HeaderValue) -> Result<Vec<&str>, Unreadable> {
    let text = value.to_str().map_err(|_| Unreadable)?;
    let items = text.split(',');
    if items.clone().next().is_none_or(|first| scheme_and_rest(first).0.is_empty()) {
        return Err(Unreadable);
    }
    // In a list, an element that is a bare token68 (no scheme a server
    // knows, nothing after it; not an auth-param such as `realm="b"`) may be
    // read as the previous element's second credentials: it cannot be read
    // alike everywhere.
    let bare = |item: &str| {
        let (scheme, rest) = scheme_and_rest(item);
        let token68 = scheme.trim_end_matches('=');
        !token68.is_empty()
            && rest.is_empty()
            && token68.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
            && Scheme::of(scheme.as_bytes()) == Scheme::Other
    };
    if items.clone().count() > 1 && items.clone().any(bare) {
        return Err(Unreadable);
    }
    Ok(items
        .filter_map(|item| {
            let (scheme, rest) = scheme_and_rest(item);
            (Scheme::of(scheme.as_bytes()) == Scheme::Basic).then_some(rest)
        })
        .collect())
}

/// The first legacy scheme in a field value: its own scheme, or that of any
/// element of a comma-separated list of credentials.
fn legacy_scheme(value: &HeaderValue) -> Option<Scheme> {
    // Bytes that are not ASCII cannot hide a scheme name, but may surround
    // one. Most values are ASCII, which `from_utf8` checks a word at a time.
    let bytes = value.as_bytes();
    let text = std::str::from_utf8(bytes).map_or_else(|_| String::from_utf8_lossy(bytes), std::borrow::Cow::Borrowed);
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
mod tests;
