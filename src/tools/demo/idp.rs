//! The demo's identity provider: a P-256 signing key made at start, its
//! JWK Set, and access tokens in Entra's v1 shape for Partner Center. The
//! key never leaves the process; only the public half is served.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::rfc3339::unix_now;

/// The demo partner's tenant.
pub const TENANT: &str = "0b5a6e3c-7d1f-4e29-9c84-2f6a1d3b5e70";
/// The partner's Secure Application Model app (a confidential client).
pub const SAM_APP: &str = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b";
/// Microsoft Azure CLI: a public client.
pub const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
pub const AUDIENCE: &str = "https://api.partnercenter.microsoft.com";
const KID: &str = "mfagate-demo";
/// Tokens stay valid this long after the demo starts.
pub const LIFETIME_SECS: i64 = 8 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("generating the signing key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("signing a token: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("encoding the key set: {0}")]
    Json(#[from] serde_json::Error),
}

pub struct Idp {
    key: EncodingKey,
    /// `{"keys":[...]}` with the public key.
    pub jwks: Vec<u8>,
}

impl Idp {
    pub fn generate() -> Result<Self, IdpError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let key = EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256)?)?;
        if let Some(obj) = jwk.as_object_mut() {
            obj.retain(|k, _| matches!(k.as_str(), "kty" | "crv" | "x" | "y"));
            obj.insert("kid".into(), KID.into());
            obj.insert("use".into(), "sig".into());
            obj.insert("alg".into(), "ES256".into());
        }
        let jwks = serde_json::to_vec(&json!({ "keys": [jwk] }))?;
        Ok(Self { key, jwks })
    }

    /// An app+user token from the partner's confidential app, MFA done.
    pub fn compliant(&self) -> Result<String, IdpError> {
        self.sign(user_claims())
    }

    /// The same user signed in with a password only.
    pub fn without_mfa(&self) -> Result<String, IdpError> {
        let mut claims = user_claims();
        claims["amr"] = json!(["pwd"]);
        claims["uti"] = "dEmOnOmFaAAAAAAAAAAAAA".into();
        self.sign(claims)
    }

    /// MFA done, but through a public client (no client credential).
    pub fn public_client(&self) -> Result<String, IdpError> {
        let mut claims = user_claims();
        claims["appid"] = AZURE_CLI.into();
        claims["appidacr"] = "0".into();
        claims["uti"] = "dEmOpUbLiCAAAAAAAAAAAA".into();
        self.sign(claims)
    }

    /// Client credentials: no user at all.
    pub fn app_only(&self) -> Result<String, IdpError> {
        let now = unix_now();
        self.sign(json!({
            "aud": AUDIENCE, "iss": issuer(), "iat": now, "nbf": now, "exp": now + LIFETIME_SECS,
            "appid": SAM_APP, "appidacr": "1", "idp": issuer(), "idtyp": "app",
            "oid": "3e1d2c4b-5a69-4788-9a0b-1c2d3e4f5a6b", "roles": ["Partner.Read.All"],
            "sub": "3e1d2c4b-5a69-4788-9a0b-1c2d3e4f5a6b", "tid": TENANT,
            "uti": "dEmOaPpOnLyAAAAAAAAAAA", "ver": "1.0",
        }))
    }

    fn sign(&self, claims: Value) -> Result<String, IdpError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KID.into());
        header.typ = Some("JWT".into());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

fn issuer() -> String {
    format!("https://sts.windows.net/{TENANT}/")
}

fn user_claims() -> Value {
    let now = unix_now();
    json!({
        "aud": AUDIENCE, "iss": issuer(), "iat": now, "nbf": now, "exp": now + LIFETIME_SECS,
        "acr": "1", "amr": ["pwd", "mfa"], "appid": SAM_APP, "appidacr": "1",
        "name": "Demo Admin", "oid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "scp": "user_impersonation",
        "tid": TENANT, "unique_name": "admin@demo-partner.example", "upn": "admin@demo-partner.example",
        "uti": "dEmOcOmPlIaNtAAAAAAAAA", "ver": "1.0",
    })
}

/// The decoded claims of a token the demo minted (for printing what it carries).
pub fn claims_of(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}
