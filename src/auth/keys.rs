//! Signing keys from a JWK Set (RFC 7517): parsed once when the set is
//! fetched, into aws-lc-rs public keys ready to verify, so that a request only
//! looks a key up and checks the signature.

mod verifiers;

use serde::{Deserialize, Serialize};

use super::issuer::IssuerTemplate;
use super::token::Algorithm;
use verifiers::Verifiers;

/// Keys read from one document at most; the rest are skipped. Entra's sets
/// hold fewer than ten.
pub const MAX_KEYS: usize = 256;

/// What kind of key, hence which algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
}

impl KeyFamily {
    /// The algorithms a key of this family can verify.
    pub fn algorithms(self) -> &'static [Algorithm] {
        match self {
            Self::Rsa => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            Self::EcP256 => &[Algorithm::ES256],
            Self::EcP384 => &[Algorithm::ES384],
        }
    }
}

/// One verification key from the key set.
pub struct VerifyKey {
    pub kid: String,
    family: KeyFamily,
    /// The v2 key's `issuer` (with `{tenantid}`), when stated: the only
    /// issuers this key may sign for.
    pub issuer: Option<String>,
    issuer_template: Option<IssuerTemplate>,
    /// The members read, as compact JSON: what the state file keeps.
    jwk: Box<str>,
    /// The public key parsed for each algorithm it may verify: its family's,
    /// or only its stated `alg` (the token must then use that one).
    verifiers: Verifiers,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Public key material is not secret, but logs have no use for it.
        f.debug_struct("VerifyKey").field("kid", &self.kid).field("family", &self.family).finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// True when a token signed with `alg` may be verified with this key:
    /// `alg` is of the key's family, and is the key's own `alg` when it states one.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.verifiers.accepts(alg)
    }

    /// True when a token from `iss` (of tenant `tid`) may be signed by this
    /// key: always for keys without an `issuer` (v1 key sets), else when
    /// `iss` is the key's issuer with `{tenantid}` replaced by `tid`.
    pub fn allows_issuer(&self, iss: &str, tid: Option<&str>) -> bool {
        self.issuer_template.as_ref().is_none_or(|t| t.matches(iss, tid))
    }

    /// The key as the compact JWK it was read from (members we use only).
    pub fn jwk(&self) -> &str {
        &self.jwk
    }

    /// True when `other` is the same key (same members), so that a refetch
    /// keeps the loaded key and what was verified with it.
    pub fn same_as(&self, other: &VerifyKey) -> bool {
        self.jwk == other.jwk
    }

    /// Checks `signature` (base64url) over `signing_input` with `alg`; false
    /// when the key does not accept `alg`.
    pub fn verify(&self, alg: Algorithm, signing_input: &str, signature: &str) -> bool {
        self.verifiers.verify(alg, signing_input, signature)
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
#[derive(Deserialize, Serialize)]
struct RawKey {
    kty: String,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    use_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
}

pub fn parse_key_set(json: &[u8]) -> Result<KeySet, KeySetError> {
    let raw: RawSet = serde_json::from_slice(json).map_err(|_| KeySetError::NotAKeySet)?;
    let mut set = KeySet::default();
    for value in raw.keys {
        match (set.keys.len() < MAX_KEYS).then(|| parse_jwk(value)).flatten() {
            Some(key) => set.keys.push(key),
            None => set.skipped += 1,
        }
    }
    Ok(set)
}

/// One JWK; `None` when it is not a usable signing key.
pub fn parse_jwk(value: serde_json::Value) -> Option<VerifyKey> {
    serde_json::from_value::<RawKey>(value).ok().and_then(parse_key)
}

fn parse_key(raw: RawKey) -> Option<VerifyKey> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let kid = raw.kid.clone().filter(|k| !k.is_empty())?;
    let alg = match raw.alg.as_deref() {
        None => None,
        Some(a) => Some(Algorithm::parse(a)?),
    };
    let family = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => KeyFamily::Rsa,
        ("EC", Some("P-256")) => KeyFamily::EcP256,
        ("EC", Some("P-384")) => KeyFamily::EcP384,
        // `oct` (HMAC) keys are never usable: a shared secret published in a
        // key set would let anyone sign.
        _ => return None,
    };
    // A key whose stated `alg` is of another family verifies nothing.
    let algs: Vec<Algorithm> = family.algorithms().iter().copied().filter(|a| alg.is_none_or(|s| s == *a)).collect();
    let verifiers = match family {
        KeyFamily::Rsa => Verifiers::rsa(raw.n.as_deref()?, raw.e.as_deref()?, &algs)?,
        KeyFamily::EcP256 | KeyFamily::EcP384 => {
            Verifiers::ec(raw.x.as_deref()?, raw.y.as_deref()?, family.algorithms()[0], !algs.is_empty())?
        }
    };
    let issuer_template = match raw.issuer.as_deref() {
        None => None,
        Some(i) => Some(IssuerTemplate::parse(i)?),
    };
    let jwk = serde_json::to_string(&raw).ok()?.into_boxed_str();
    Some(VerifyKey { kid, family, issuer: raw.issuer.clone(), issuer_template, jwk, verifiers })
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
    fn a_v2_key_signs_only_for_its_issuer() {
        let tid = "df845f1a-1111-2222-3333-444455556666";
        let json = serde_json::json!({"keys": [
            {"kty":"RSA","kid":"v2","n": N, "e":"AQAB", "issuer":"https://login.microsoftonline.com/{tenantid}/v2.0"},
            {"kty":"RSA","kid":"msa","n": N, "e":"AQAB",
             "issuer":"https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"},
            {"kty":"RSA","kid":"v1","n": N, "e":"AQAB"},
            {"kty":"RSA","kid":"bad","n": N, "e":"AQAB", "issuer":"https://x/{tenantid}/{tenantid}"},
        ]});
        let set = parse_key_set(json.to_string().as_bytes()).unwrap();
        assert_eq!(set.skipped, 1);
        let [v2, msa, v1] = [&set.keys[0], &set.keys[1], &set.keys[2]];
        let v2_iss = format!("https://login.microsoftonline.com/{tid}/v2.0");
        assert!(v2.allows_issuer(&v2_iss, Some(tid)));
        assert!(!v2.allows_issuer(&format!("https://sts.windows.net/{tid}/"), Some(tid)));
        assert!(!v2.allows_issuer(&v2_iss, Some("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")));
        assert!(!msa.allows_issuer(&v2_iss, Some(tid)));
        let msa_iss = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
        assert!(msa.allows_issuer(msa_iss, Some("9188040d-6c67-4c5b-b112-36a304b66dad")));
        assert!(v1.allows_issuer(&format!("https://sts.windows.net/{tid}/"), Some(tid)));
    }

    #[test]
    fn the_kept_jwk_round_trips_and_identifies_the_key() {
        let json = serde_json::json!({"keys": [{"kty":"RSA","use":"sig","kid":"k","n": N, "e":"AQAB","x5c":["MIIC"]}]});
        let set = parse_key_set(json.to_string().as_bytes()).unwrap();
        let key = &set.keys[0];
        assert!(!key.jwk().contains("x5c"));
        let again = parse_jwk(serde_json::from_str(key.jwk()).unwrap()).unwrap();
        assert!(again.same_as(key));
        let other = serde_json::json!({"kty":"RSA","kid":"k","n": N, "e":"AQAB","alg":"RS256"});
        assert!(!parse_jwk(other).unwrap().same_as(key));
    }

    #[test]
    fn at_most_max_keys_are_read() {
        let keys: Vec<_> = (0..MAX_KEYS + 3)
            .map(|i| serde_json::json!({"kty":"RSA","kid":format!("k{i}"),"n": N, "e":"AQAB"}))
            .collect();
        let set = parse_key_set(serde_json::json!({ "keys": keys }).to_string().as_bytes()).unwrap();
        assert_eq!((set.keys.len(), set.skipped), (MAX_KEYS, 3));
    }

    #[test]
    fn rejects_documents_that_are_not_key_sets() {
        assert!(parse_key_set(b"<html>").is_err());
        assert!(parse_key_set(b"{\"keys\": 5}").is_err());
        assert!(parse_key_set(b"[]").is_err());
    }
}
