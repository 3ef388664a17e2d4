//! An identity provider for tests: RSA and EC keys generated here, a JWK Set
//! served over real HTTP on 127.0.0.1, and tokens in Entra's v1 shape.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};

use super::serve;

pub const TID: &str = "df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50";
pub const OTHER_TID: &str = "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6";
pub const OID: &str = "02223b6b-aa1d-42d4-9ec0-1b2bb9194438";
/// A partner's registered Secure Application Model app.
pub const SAM_APP: &str = "23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21";
/// Microsoft Azure CLI, a public client.
pub const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
pub const PC_AUDIENCE: &str = "https://api.partnercenter.microsoft.com";

/// A signing key with its public JWK.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    pub public_pem: String,
    /// PKCS#8 PEM, for minting tokens with other libraries.
    pub private_pem: String,
}

pub fn rsa_key(kid: &str) -> TestKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    key_from(
        kid,
        Algorithm::RS256,
        EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap(),
        pair.public_key_pem(),
        pair.serialize_pem(),
    )
}

fn ec_key(kid: &str) -> TestKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    key_from(
        kid,
        Algorithm::ES256,
        EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        pair.public_key_pem(),
        pair.serialize_pem(),
    )
}

fn key_from(kid: &str, alg: Algorithm, encoding: EncodingKey, public_pem: String, private_pem: String) -> TestKey {
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
    let obj = jwk.as_object_mut().unwrap();
    obj.retain(|k, _| matches!(k.as_str(), "kty" | "n" | "e" | "crv" | "x" | "y"));
    obj.insert("kid".into(), kid.into());
    obj.insert("use".into(), "sig".into());
    obj.insert("x5t".into(), kid.into());
    TestKey { kid: kid.into(), alg, encoding, jwk, public_pem, private_pem }
}

/// RSA key generation is slow; every test in a binary shares these.
pub struct Keys {
    pub primary: TestKey,
    pub second: TestKey,
    /// Same kid as `primary`, different key: a forgery.
    pub rogue: TestKey,
    pub ec: TestKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rogue = rsa_key("primary-kid");
        rogue.jwk = Value::Null;
        Keys { primary: rsa_key("primary-kid"), second: rsa_key("second-kid"), rogue, ec: ec_key("ec-kid") }
    })
}

/// How the key-set endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwksMode {
    Serve,
    Fail,
}

struct IdpState {
    keys: Vec<Value>,
    mode: JwksMode,
}

#[derive(Clone)]
pub struct Idp {
    pub url: String,
    hits: Arc<AtomicUsize>,
    state: Arc<Mutex<IdpState>>,
}

impl Idp {
    pub async fn start(mode: JwksMode) -> Self {
        let k = keys();
        let state = Arc::new(Mutex::new(IdpState { keys: vec![k.primary.jwk.clone(), k.ec.jwk.clone()], mode }));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (Arc::clone(&state), Arc::clone(&hits));
        let addr = serve::http(None, move |_req| {
            let (s, h) = (Arc::clone(&s), Arc::clone(&h));
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let (keys, mode) = {
                    let st = s.lock().unwrap();
                    (st.keys.clone(), st.mode)
                };
                let mut rsp = match mode {
                    JwksMode::Serve => Response::new(Full::new(Bytes::from(json!({ "keys": keys }).to_string()))),
                    JwksMode::Fail => Response::new(Full::new(Bytes::from_static(b"unavailable"))),
                };
                if mode == JwksMode::Fail {
                    *rsp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                }
                rsp
            }
        })
        .await;
        Self { url: format!("http://{addr}/common/discovery/keys"), hits, state }
    }

    /// Key-set fetches so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn publish(&self, key: &TestKey) {
        self.state.lock().unwrap().keys.push(key.jwk.clone());
    }

    pub fn set_mode(&self, mode: JwksMode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// An app+user token shaped like Partner Center's documented sample:
    /// confidential client, `amr` with `mfa`, audience Partner Center.
    pub fn delegated(&self) -> TokenBuilder {
        let now = now();
        TokenBuilder::new(&keys().primary).claims(json!({
            "aud": PC_AUDIENCE,
            "iss": format!("https://sts.windows.net/{TID}/"),
            "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
            "acr": "1", "amr": ["pwd", "mfa"],
            "appid": SAM_APP, "appidacr": "1",
            "family_name": "Agent", "given_name": "Admin", "ipaddr": "203.0.113.7", "name": "Admin Agent",
            "oid": OID, "scp": "user_impersonation", "tid": TID,
            "unique_name": "admin@contoso.onmicrosoft.com", "upn": "admin@contoso.onmicrosoft.com",
            "uti": "FVsGxYXI30-TuikuuUoFAA", "ver": "1.0",
        }))
    }

    /// A client-credentials token: no `scp`, application `roles`.
    pub fn app_only(&self) -> TokenBuilder {
        let now = now();
        TokenBuilder::new(&keys().primary).claims(json!({
            "aud": PC_AUDIENCE,
            "iss": format!("https://sts.windows.net/{TID}/"),
            "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
            "appid": SAM_APP, "appidacr": "1", "idtyp": "app",
            "oid": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "roles": ["Partner.Read.All"],
            "tid": TID, "uti": "aBcDeFgHiJkLmNoPqRsTuV", "ver": "1.0",
        }))
    }
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

#[derive(Clone)]
pub struct TokenBuilder {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    key: EncodingKey,
    alg: Algorithm,
}

impl TokenBuilder {
    pub fn new(key: &TestKey) -> Self {
        let header = json!({"typ": "JWT", "alg": alg_name(key.alg), "kid": key.kid, "x5t": key.kid});
        Self {
            header: header.as_object().unwrap().clone(),
            claims: Map::new(),
            key: key.encoding.clone(),
            alg: key.alg,
        }
    }

    pub fn claims(mut self, v: Value) -> Self {
        self.claims = v.as_object().unwrap().clone();
        self
    }

    pub fn claim(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.claims.insert(k.into(), v.into());
        self
    }

    pub fn without(mut self, k: &str) -> Self {
        self.claims.remove(k);
        self
    }

    pub fn header(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.header.insert(k.into(), v.into());
        self
    }

    /// Signs with `key` instead, keeping the header's `kid`.
    pub fn signed_by(mut self, key: &TestKey) -> Self {
        self.key = key.encoding.clone();
        self.alg = key.alg;
        self
    }

    /// Signs with `alg` and `key` whatever the header says.
    pub fn signed_with(mut self, alg: Algorithm, key: EncodingKey) -> Self {
        self.alg = alg;
        self.key = key;
        self
    }

    pub fn amr(self, amr: &[&str]) -> Self {
        self.claim("amr", amr.to_vec())
    }

    pub fn unsigned_parts(&self) -> (String, String) {
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self.header).unwrap());
        let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self.claims).unwrap());
        (h, c)
    }

    pub fn mint(&self) -> String {
        let (h, c) = self.unsigned_parts();
        let message = format!("{h}.{c}");
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.alg).unwrap();
        format!("{message}.{sig}")
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::HS256 => "HS256",
        _ => unimplemented!("test keys are RS256 or ES256"),
    }
}
