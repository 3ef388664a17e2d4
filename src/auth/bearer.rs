//! Pulls the bearer token out of the request's `Authorization` header
//! (RFC 6750 §2.1), and recognises the legacy schemes that cannot carry MFA.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::AuthError;

/// Schemes Entra's "block legacy authentication" guidance covers: they send a
/// password (or a Windows ticket) and can never prove MFA.
const LEGACY_SCHEMES: [&str; 4] = ["basic", "ntlm", "negotiate", "digest"];

/// The token of the request's single `Authorization: Bearer` header.
pub fn extract(headers: &HeaderMap, max_bytes: usize) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::MissingToken("no Authorization header"));
    };
    if values.next().is_some() {
        return Err(AuthError::Malformed("more than one Authorization header"));
    }
    let value = value.to_str().map_err(|_| AuthError::Malformed("Authorization header is not visible ASCII"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        if LEGACY_SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
            return Err(AuthError::LegacyAuth);
        }
        return Err(AuthError::MissingToken("Authorization scheme is not Bearer"));
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(AuthError::Malformed("empty bearer token"));
    }
    if token.len() > max_bytes {
        return Err(AuthError::Malformed("bearer token exceeds identity.max_token_bytes"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn reason(values: &[&str]) -> &'static str {
        extract(&headers(values), 100).unwrap_err().reason().as_str()
    }

    #[test]
    fn bearer_in_any_case() {
        assert_eq!(extract(&headers(&["Bearer abc.def.ghi"]), 100).unwrap(), "abc.def.ghi");
        assert_eq!(extract(&headers(&["bearer  abc"]), 100).unwrap(), "abc");
        assert_eq!(extract(&headers(&["BEARER abc"]), 100).unwrap(), "abc");
    }

    #[test]
    fn rejections() {
        assert_eq!(reason(&[]), "missing_token");
        assert_eq!(reason(&["Basic dXNlcjpwYXNz"]), "legacy_auth");
        assert_eq!(reason(&["NTLM TlRMTVNTUAAB"]), "legacy_auth");
        assert_eq!(reason(&["negotiate YII="]), "legacy_auth");
        assert_eq!(reason(&["Digest username=\"x\""]), "legacy_auth");
        assert_eq!(reason(&["Token abc"]), "missing_token");
        assert_eq!(reason(&["Bearer"]), "malformed_token");
        assert_eq!(reason(&["Bearer   "]), "malformed_token");
        assert_eq!(reason(&["Bearer a", "Bearer b"]), "malformed_token");
        assert_eq!(reason(&[&format!("Bearer {}", "x".repeat(101))]), "malformed_token");
    }
}
