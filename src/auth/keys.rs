//! Signing keys from a JWK Set (RFC 7517): parsed once when the set is
//! fetched, so that a request only looks a key up and verifies.

use jsonwebtoken::{Algorithm as JwtAlgorithm, DecodingKey};
use serde::Deserialize;

use super::token::Algorithm;

/// What kind of key, hence which algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
}

/// One verification key from the key set.
pub struct VerifyKey {
    pub kid: String,
    family: KeyFamily,
    /// The key's own `alg`, when the set states one: the token must use it.
    alg: Option<Algorithm>,
    /// The v2 key's `issuer` (with `{tenantid}`), when stated.
    pub issuer: Option<String>,
    decoding: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Public key material is not secret, but logs have no use for it.
        f.debug_struct("VerifyKey").field("kid", &self.kid).field("family", &self.family).finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// True when a token signed with `alg` may be verified with this key.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        let family_ok = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.family == KeyFamily::Rsa,
            Algorithm::ES256 => self.family == KeyFamily::EcP256,
            Algorithm::ES384 => self.family == KeyFamily::EcP384,
        };
        family_ok && self.alg.is_none_or(|a| a == alg)
    }

    /// Checks `signature` (base64url) over `signing_input`. Call only after `accepts`.
    pub fn verify(&self, alg: Algorithm, signing_input: &str, signature: &str) -> bool {
        jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &self.decoding, jwt_alg(alg)).unwrap_or(false)
    }
}

fn jwt_alg(alg: Algorithm) -> JwtAlgorithm {
    match alg {
        Algorithm::RS256 => JwtAlgorithm::RS256,
        Algorithm::RS384 => JwtAlgorithm::RS384,
        Algorithm::RS512 => JwtAlgorithm::RS512,
        Algorithm::PS256 => JwtAlgorithm::PS256,
        Algorithm::PS384 => JwtAlgorithm::PS384,
        Algorithm::PS512 => JwtAlgorithm::PS512,
        Algorithm::ES256 => JwtAlgorithm::ES256,
        Algorithm::ES384 => JwtAlgorithm::ES384,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("key set is not a JSON object with a \"keys\" array")]
    NotAKeySet,
}

/// The usable keys of a key set, and how many were skipped (wrong `use`,
/// unsupported `kty`, missing parameters).
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<VerifyKey>,
    pub skipped: usize,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// Only the members we use; unknown members (x5c, x5t, cloud_instance_name…) are ignored.
#[derive(Deserialize)]
struct RawKey {
    kty: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    issuer: Option<String>,
}

pub fn parse_key_set(json: &[u8]) -> Result<KeySet, KeySetError> {
    let raw: RawSet = serde_json::from_slice(json).map_err(|_| KeySetError::NotAKeySet)?;
    let mut set = KeySet::default();
    for value in raw.keys {
        match serde_json::from_value::<RawKey>(value).ok().and_then(parse_key) {
            Some(key) => set.keys.push(key),
            None => set.skipped += 1,
        }
    }
    Ok(set)
}

fn parse_key(raw: RawKey) -> Option<VerifyKey> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let kid = raw.kid.filter(|k| !k.is_empty())?;
    let alg = match raw.alg.as_deref() {
        None => None,
        Some(a) => Some(Algorithm::parse(a)?),
    };
    let (family, decoding) = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => {
            let key = DecodingKey::from_rsa_components(raw.n.as_deref()?, raw.e.as_deref()?).ok()?;
            (KeyFamily::Rsa, key)
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let key = DecodingKey::from_ec_components(raw.x.as_deref()?, raw.y.as_deref()?).ok()?;
            (if crv == "P-256" { KeyFamily::EcP256 } else { KeyFamily::EcP384 }, key)
        }
        // `oct` (HMAC) keys are never usable: a shared secret published in a
        // key set would let anyone sign.
        _ => return None,
    };
    Some(VerifyKey { kid, family, alg, issuer: raw.issuer, decoding })
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "3I2c2shPwo4E7Y9Npyp7A5s4bkw9u3BV0sNsn4Ph2WAZFXduaTy8ZirXa8cQF2_Riwckxcqf2DYmdUKGDb1FCBESW34oV2V5PopqS2llIfwU6gwrbWycQuai7FUG-UZWfud64ZRqbk8oyyYD7gHfijUiZ-nOHd3ozzDS0NNnH6TKCHiwKu-ocqzT7pDUMr3ozu2Gv0Gb4txtQk4m2QbNn4uNmYrSjgKzNH3HYWQgBYAEEgCUkG-nH4Ui1IsBvPCEIig_UhHn-OtJ9ZHnGmQnRQo22VMRWa9WPXYBt4RCA3eljmDYXLfQNua8Z69e40cGoXrSza90KsuXqNLo-0xQ0w";

    #[test]
    fn reads_an_entra_shaped_key_set() {
        let json = serde_json::json!({"keys": [
            {"kty":"RSA","use":"sig","kid":"Mc7l3Iz93g7uwgNeEmmw_WYGPko","x5t":"Mc7l3Iz93g7uwgNeEmmw_WYGPko",
             "n": N, "e":"AQAB", "x5c":["MIIC"], "issuer":"https://login.microsoftonline.com/{tenantid}/v2.0",
             "cloud_instance_name":"microsoftonline.com"},
            {"kty":"RSA","use":"enc","kid":"enc1","n": N, "e":"AQAB"},
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
            {"kty":"RSA","use":"sig","n": N, "e":"AQAB"},
            {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"abc"},
            "not an object",
        ]});
        let set = parse_key_set(json.to_string().as_bytes()).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.skipped, 5);
        let key = &set.keys[0];
        assert_eq!(key.kid, "Mc7l3Iz93g7uwgNeEmmw_WYGPko");
        assert_eq!(key.issuer.as_deref(), Some("https://login.microsoftonline.com/{tenantid}/v2.0"));
        assert!(key.accepts(Algorithm::RS256));
        assert!(key.accepts(Algorithm::PS256));
        assert!(!key.accepts(Algorithm::ES256));
    }

    #[test]
    fn a_stated_alg_binds_the_key() {
        let json = serde_json::json!({"keys": [{"kty":"RSA","kid":"k","alg":"RS256","n": N, "e":"AQAB"}]});
        let set = parse_key_set(json.to_string().as_bytes()).unwrap();
        assert!(set.keys[0].accepts(Algorithm::RS256));
        assert!(!set.keys[0].accepts(Algorithm::RS512));
        let json = serde_json::json!({"keys": [{"kty":"RSA","kid":"k","alg":"HS256","n": N, "e":"AQAB"}]});
        assert_eq!(parse_key_set(json.to_string().as_bytes()).unwrap().skipped, 1);
    }

    #[test]
    fn rejects_documents_that_are_not_key_sets() {
        assert!(parse_key_set(b"<html>").is_err());
        assert!(parse_key_set(b"{\"keys\": 5}").is_err());
        assert!(parse_key_set(b"[]").is_err());
    }
}
