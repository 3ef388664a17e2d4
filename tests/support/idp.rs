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
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// Role template ids.
pub const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

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
    /// HTTP 500.
    Fail,
    /// 200 with a body that is not a key set.
    Garbage,
    /// 200 with a 2 MiB body, `Content-Length` announced.
    Huge,
    /// 200 with a 2 MiB body streamed in chunks, no `Content-Length`.
    HugeChunked,
    /// Accepts the request and never answers.
    Hang,
}

/// The v1 and v2 issuers of Entra, with `{tenantid}`.
pub const V1_ISSUER: &str = "https://sts.windows.net/{tenantid}/";
pub const V2_ISSUER: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
/// The Microsoft account (consumer) tenant's issuer: matched exactly.
pub const MSA_ISSUER: &str = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";

/// Paths served, after the base URL.
pub const V1_KEYS: &str = "/common/discovery/keys";
pub const V2_KEYS: &str = "/common/discovery/v2.0/keys";
pub const V1_METADATA: &str = "/common/.well-known/openid-configuration";
pub const V2_METADATA: &str = "/common/v2.0/.well-known/openid-configuration";

struct IdpState {
    keys: Vec<Value>,
    /// The v2 key set: each key carries its own `issuer`.
    v2_keys: Vec<Value>,
    mode: JwksMode,
    base: String,
}

type IdpBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

#[derive(Clone)]
pub struct Idp {
    pub url: String,
    /// `scheme://host:port`, without a path.
    pub base: String,
    hits: Arc<AtomicUsize>,
    metadata_hits: Arc<AtomicUsize>,
    state: Arc<Mutex<IdpState>>,
}

impl Idp {
    /// Over plain HTTP. Serves the v1 key set at `V1_KEYS` (and any other
    /// path but the ones below), the v2 key set at `V2_KEYS`, and discovery
    /// documents at `V1_METADATA` and `V2_METADATA`; `mode` applies to all.
    pub async fn start(mode: JwksMode) -> Self {
        Self::start_with(mode, None).await
    }

    /// Over HTTPS with `tls` (a certificate for `localhost`).
    pub async fn start_tls(mode: JwksMode, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(mode, Some(tls)).await
    }

    async fn start_with(mode: JwksMode, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let k = keys();
        let state = Arc::new(Mutex::new(IdpState {
            keys: vec![k.primary.jwk.clone(), k.ec.jwk.clone()],
            v2_keys: Vec::new(),
            mode,
            base: String::new(),
        }));
        let hits = Arc::new(AtomicUsize::new(0));
        let metadata_hits = Arc::new(AtomicUsize::new(0));
        let (s, h, m) = (Arc::clone(&state), Arc::clone(&hits), Arc::clone(&metadata_hits));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addr = serve::http(tls, move |req: hyper::Request<hyper::body::Incoming>| {
            let (s, h, m) = (Arc::clone(&s), Arc::clone(&h), Arc::clone(&m));
            async move { answer(req.uri().path(), &s, &h, &m).await }
        })
        .await;
        let host = if scheme == "https" { format!("localhost:{}", addr.port()) } else { addr.to_string() };
        let base = format!("{scheme}://{host}");
        state.lock().unwrap().base = base.clone();
        Self { url: format!("{base}{V1_KEYS}"), base, hits, metadata_hits, state }
    }

    /// Key-set fetches so far (v1 and v2).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Discovery document fetches so far.
    pub fn metadata_hits(&self) -> usize {
        self.metadata_hits.load(Ordering::SeqCst)
    }

    pub fn publish(&self, key: &TestKey) {
        self.state.lock().unwrap().keys.push(key.jwk.clone());
    }

    /// Adds any JSON value to the v1 key set (odd or unsupported keys).
    pub fn publish_raw(&self, jwk: Value) {
        self.state.lock().unwrap().keys.push(jwk);
    }

    /// Adds `key` to the v2 key set with its own `issuer`.
    pub fn publish_v2(&self, key: &TestKey, issuer: &str) {
        let mut jwk = key.jwk.clone();
        jwk["issuer"] = issuer.into();
        self.state.lock().unwrap().v2_keys.push(jwk);
    }

    /// Replaces the v1 key set with exactly `keys` (a front-end serving a subset, a rotation).
    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.state.lock().unwrap().keys = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    /// Removes `kid` from both key sets.
    pub fn retire(&self, kid: &str) {
        let mut st = self.state.lock().unwrap();
        st.keys.retain(|k| k["kid"] != kid);
        st.v2_keys.retain(|k| k["kid"] != kid);
    }

    pub fn set_mode(&self, mode: JwksMode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// An app-only v2 token (`ver` 2.0, v2 issuer, `azp`), signed by `key`.
    pub fn app_only_v2(&self, key: &TestKey) -> TokenBuilder {
        let now = now();
        TokenBuilder::new(key).claims(json!({
            "aud": PC_AUDIENCE,
            "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
            "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
            "azp": SAM_APP, "azpacr": "1", "idtyp": "app",
            "oid": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "roles": ["Partner.Read.All"],
            "tid": TID, "uti": "bBcDeFgHiJkLmNoPqRsTuV", "ver": "2.0",
        }))
    }

    /// An app+user token shaped like Partner Center's documented sample:
    /// confidential client, `amr` with `mfa`, audience Partner Center.
    pub fn delegated(&self) -> TokenBuilder {
        Self::delegated_token()
    }

    /// `delegated()`, for minting where no `Idp` is at hand (the fake authority).
    pub fn delegated_token() -> TokenBuilder {
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

    /// A partner technician (GDAP) calling Microsoft Graph in the customer
    /// tenant `OTHER_TID`: issued by the customer's tenant, `idp` the partner's
    /// (`TID`), confidential client, MFA done.
    pub fn aobo(&self) -> TokenBuilder {
        let now = now();
        TokenBuilder::new(&keys().primary).claims(json!({
            "aud": GRAPH_AUDIENCE,
            "iss": format!("https://sts.windows.net/{OTHER_TID}/"),
            "idp": format!("https://sts.windows.net/{TID}/"),
            "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
            "acr": "1", "amr": ["pwd", "mfa"], "appid": SAM_APP, "appidacr": "1",
            "oid": "5d9c3c1a-0b7e-4f3a-9d62-8e1f2a3b4c5d", "scp": "Directory.Read.All User.Read.All",
            "tid": OTHER_TID, "unique_name": "tech@partner.onmicrosoft.com",
            "uti": "aObOuTiAObOuTiAObOuTiA", "ver": "1.0", "wids": [USER_ADMIN],
        }))
    }

    /// A v2.0 access token for Partner Center: `azp`/`azpacr`, no `amr`.
    pub fn v2(&self) -> TokenBuilder {
        let now = now();
        TokenBuilder::new(&keys().primary).claims(json!({
            "aud": PC_AUDIENCE,
            "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
            "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
            "azp": SAM_APP, "azpacr": "1", "name": "Admin Agent", "oid": OID,
            "preferred_username": "admin@contoso.onmicrosoft.com", "scp": "user_impersonation", "tid": TID,
            "uti": "djJ1dGl2MnV0aXYydXRpdjI", "ver": "2.0",
        }))
    }

    /// A Microsoft Graph token as Graph's clients get it: a `nonce` header
    /// whose hash, not the value, was signed, so nobody but Graph can verify
    /// it (here: a signature the key set cannot verify).
    pub fn graph_with_nonce(&self) -> TokenBuilder {
        self.aobo().header("nonce", "kWeOL3rvRmU_AKSCBfbVwLsRLYFdwz4x4ZJmQrWBGHw").signed_by(&keys().rogue)
    }

    /// A client-credentials token: no `scp`, application `roles`.
    pub fn app_only(&self) -> TokenBuilder {
        Self::app_only_token()
    }

    /// `app_only()`, for minting where no `Idp` is at hand (the fake authority).
    pub fn app_only_token() -> TokenBuilder {
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

async fn answer(
    path: &str,
    state: &Mutex<IdpState>,
    hits: &AtomicUsize,
    metadata_hits: &AtomicUsize,
) -> Response<IdpBody> {
    use http_body_util::BodyExt;
    let (doc, mode) = {
        let st = state.lock().unwrap();
        let doc = match path {
            V1_METADATA => json!({"issuer": V1_ISSUER, "jwks_uri": format!("{}{V1_KEYS}", st.base),
                "token_endpoint": format!("{}/common/oauth2/token", st.base), "cloud_instance_name": "microsoftonline.com"}),
            V2_METADATA => json!({"issuer": V2_ISSUER, "jwks_uri": format!("{}{V2_KEYS}", st.base),
                "token_endpoint": format!("{}/common/oauth2/v2.0/token", st.base)}),
            V2_KEYS => json!({ "keys": st.v2_keys }),
            _ => json!({ "keys": st.keys }),
        };
        (doc, st.mode)
    };
    if path.ends_with("openid-configuration") { metadata_hits } else { hits }.fetch_add(1, Ordering::SeqCst);
    let full = |status: StatusCode, body: Bytes| {
        let mut rsp = Response::new(Full::new(body).boxed());
        *rsp.status_mut() = status;
        rsp
    };
    const HUGE: usize = 2 * 1024 * 1024;
    match mode {
        JwksMode::Serve => full(StatusCode::OK, Bytes::from(doc.to_string())),
        JwksMode::Fail => full(StatusCode::INTERNAL_SERVER_ERROR, Bytes::from_static(b"unavailable")),
        JwksMode::Garbage => full(StatusCode::OK, Bytes::from_static(b"<html><body>Sign in to continue</body></html>")),
        JwksMode::Huge => {
            full(StatusCode::OK, Bytes::from(format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(HUGE))))
        }
        JwksMode::HugeChunked => {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let frames = futures_util::stream::iter(
                (0..HUGE / chunk.len())
                    .map(move |_| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(chunk.clone()))),
            );
            Response::new(http_body_util::StreamBody::new(frames).boxed())
        }
        JwksMode::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            full(StatusCode::OK, Bytes::new())
        }
    }
}

/// The identity provider's key set as a JSON document (for file-based configurations).
pub fn jwks_document() -> Value {
    json!({ "keys": [keys().primary.jwk.clone(), keys().ec.jwk.clone()] })
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

    /// Issued by (and for) tenant `tid`: sets `tid` and a v1 `iss`.
    pub fn tenant(self, tid: &str) -> Self {
        self.claim("tid", tid).claim("iss", format!("https://sts.windows.net/{tid}/"))
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
