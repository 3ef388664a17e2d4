//! The compact JWS serialisation (RFC 7515 §7.1): three base64url segments.
//! Parsing here is strict and allocation-light; nothing in the header is ever
//! followed (`jku`, `x5u`, `jwk` are ignored, RFC 8725 §3.10).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::AuthError;

/// The asymmetric algorithms a Microsoft identity platform key can verify.
/// `none` and the HMAC family have no variant, so they can never be selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
}

impl Algorithm {
    pub const ALL: [Algorithm; 8] =
        [Self::RS256, Self::RS384, Self::RS512, Self::PS256, Self::PS384, Self::PS512, Self::ES256, Self::ES384];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
        }
    }
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The parts of a token, before any verification.
#[derive(Debug)]
pub struct Jws<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// `BASE64URL(header) . BASE64URL(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// The base64url signature segment.
    pub signature: &'a str,
    /// The decoded payload (the claims JSON).
    pub payload: Vec<u8>,
}

pub fn parse(token: &str) -> Result<Jws<'_>, AuthError> {
    let (signing_input, signature) =
        token.rsplit_once('.').ok_or(AuthError::Malformed("not a compact JWS (header.payload.signature)"))?;
    let (header_b64, payload_b64) =
        signing_input.split_once('.').ok_or(AuthError::Malformed("not a compact JWS (header.payload.signature)"))?;
    if payload_b64.contains('.') {
        return Err(AuthError::Malformed("JWE or nested token; expected three segments"));
    }
    let header_json = decode_segment(header_b64)?;
    let header: RawHeader =
        serde_json::from_slice(&header_json).map_err(|_| AuthError::Malformed("token header is not valid JSON"))?;
    let alg = Algorithm::parse(&header.alg).ok_or(AuthError::DisallowedAlg)?;
    if header.crit.is_some() {
        // RFC 7515 §4.1.11: a recipient that does not understand a listed
        // extension must reject the token. We understand none.
        return Err(AuthError::Malformed("unsupported critical header parameter"));
    }
    let payload = decode_segment(payload_b64)?;
    if signature.is_empty() {
        return Err(AuthError::BadSignature);
    }
    Ok(Jws { alg, kid: header.kid, signing_input, signature, payload })
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, AuthError> {
    if segment.is_empty() {
        return Err(AuthError::Malformed("empty token segment"));
    }
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| AuthError::Malformed("token segment is not base64url"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, payload: &str, sig: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), sig)
    }

    fn reason(t: &str) -> &'static str {
        parse(t).unwrap_err().reason().as_str()
    }

    #[test]
    fn parses_a_well_formed_token() {
        let t = token(r#"{"alg":"RS256","kid":"k1","typ":"JWT","x5t":"k1"}"#, r#"{"a":1}"#, "c2ln");
        let jws = parse(&t).unwrap();
        assert_eq!(jws.alg, Algorithm::RS256);
        assert_eq!(jws.kid.as_deref(), Some("k1"));
        assert_eq!(jws.payload, br#"{"a":1}"#);
        assert_eq!(jws.signature, "c2ln");
    }

    #[test]
    fn refuses_unsafe_algorithms() {
        for alg in ["none", "None", "NONE", "HS256", "HS384", "HS512", "EdDSA", "", "rs256"] {
            let t = token(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#), "{}", "c2ln");
            assert_eq!(reason(&t), "disallowed_alg", "{alg}");
        }
    }

    #[test]
    fn refuses_malformed_shapes() {
        assert_eq!(reason("abc"), "malformed_token");
        assert_eq!(reason("a.b"), "malformed_token");
        assert_eq!(reason("a.b.c.d"), "malformed_token");
        assert_eq!(reason(&format!("{}..c2ln", b64(r#"{"alg":"RS256"}"#))), "malformed_token");
        assert_eq!(reason(&format!("{}.{}=.c2ln", b64(r#"{"alg":"RS256"}"#), b64("{}"))), "malformed_token");
        assert_eq!(reason(&format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), "e30+")), "malformed_token");
        assert_eq!(reason(&token("not json", "{}", "c2ln")), "malformed_token");
        assert_eq!(reason(&token(r#"{"alg":"RS256","crit":["exp2"],"exp2":1}"#, "{}", "c2ln")), "malformed_token");
        assert_eq!(reason(&token(r#"{"alg":"RS256","kid":"k"}"#, "{}", "")), "bad_signature");
    }
}
