//! A fake Microsoft Entra authority for Microsoft's client libraries (MSAL,
//! azure-identity), over HTTPS with a CA of its own, on 127.0.0.1. Its
//! certificate names `localhost` and `login.microsoftonline.com`, so the
//! libraries reach it directly or, through the egress proxy, by Entra's
//! real name. Instance discovery is not served: the clients turn it off.
//!
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration` (and the v1
//!   document without `/v2.0`): the endpoints below, on the host asked for;
//! - `POST /{tenant}/oauth2/v2.0/token`: `client_credentials` (a client
//!   secret or a certificate's `client_assertion`), `refresh_token`,
//!   `authorization_code` and `device_code`, with the `claims` parameter;
//! - `POST /{tenant}/oauth2/v2.0/devicecode`.
//!
//! Tokens are Entra v1 access tokens signed with the test identity
//! provider's key, so the gateway verifies them. A user's sign-in proves
//! MFA when its refresh token or code says so (`mfa`), or once the client
//! asks for an authentication context in `claims` (a step-up, as Entra's
//! Conditional Access would demand MFA for it); `xms_cc` carries `cp1` when
//! the client declared it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::idp::{self, AZURE_CLI, OID, SAM_APP, TID, TokenBuilder};
use super::{Pki, pki, serve};

/// The confidential client (the partner's Secure Application Model app).
pub const CLIENT_ID: &str = SAM_APP;
pub const CLIENT_SECRET: &str = "mfagate-test-secret~value";
/// A public client (the Azure CLI's app id).
pub const PUBLIC_CLIENT_ID: &str = AZURE_CLI;
pub const ENTRA_HOST: &str = "login.microsoftonline.com";
/// Authorization codes and refresh tokens the authority knows: a user who
/// signed in with a password only, or with MFA.
pub const CODE_PASSWORD_ONLY: &str = "code-pwd";
pub const CODE_MFA: &str = "code-mfa";
pub const RT_PASSWORD_ONLY: &str = "rt-pwd";
pub const RT_MFA: &str = "rt-mfa";

/// One token request, as the authority read it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client_id: String,
    /// `secret`, `certificate` or `none`.
    pub client_auth: String,
    pub claims: Option<Value>,
    pub scope: String,
    /// Every `sec-Restrict-Tenant-Access-Policy` value the request carried.
    pub tenant_restrictions: Vec<String>,
}

pub struct Authority {
    pub addr: SocketAddr,
    /// The CA that issued the authority's certificate (PEM).
    pub ca_pem: String,
    /// The confidential client's certificate and key, one PEM file (as
    /// azure-identity's `CertificateCredential` reads it).
    pub client_cert_path: std::path::PathBuf,
    pub client_key_pem: String,
    /// SHA-1 of the client certificate, hex (MSAL's `thumbprint`).
    pub client_cert_thumbprint: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    _dir: tempfile::TempDir,
}

struct State {
    client_public_pem: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
}

impl Authority {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::named(dir.path(), "mfagate test authority root");
        let leaf = pki.leaf(dir.path(), "authority", &["localhost", ENTRA_HOST]);
        let client_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "mfagate test client");
        let client_cert = params.self_signed(&client_key).unwrap();
        let client_cert_path = dir.path().join("client.pem");
        std::fs::write(&client_cert_path, format!("{}{}", client_key.serialize_pem(), client_cert.pem())).unwrap();
        let thumbprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, client_cert.der());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State { client_public_pem: client_key.public_key_pem(), requests: Arc::clone(&requests) });
        let addr = serve::http(Some(pki::server_config(&leaf)), move |req: Request<Incoming>| {
            let state = Arc::clone(&state);
            async move { answer(req, &state).await }
        })
        .await;
        Self {
            addr,
            ca_pem: pki.ca_pem.clone(),
            client_cert_path,
            client_key_pem: client_key.serialize_pem(),
            client_cert_thumbprint: thumbprint.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            requests,
            _dir: dir,
        }
    }

    /// `https://localhost:PORT`: the authority host as the libraries take it
    /// when they reach it directly.
    pub fn host(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// Every token request so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

type Answer = Response<Full<Bytes>>;

fn json_answer(status: StatusCode, body: Value) -> Answer {
    let mut rsp = Response::new(Full::new(Bytes::from(body.to_string())));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert("content-type", "application/json; charset=utf-8".parse().unwrap());
    rsp
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Answer {
    json_answer(status, json!({ "error": error, "error_description": description, "error_codes": [7000215] }))
}

async fn answer(req: Request<Incoming>, state: &State) -> Answer {
    // `Host`, or `:authority` when the request came over HTTP/2 (as the
    // gateway forwards it).
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_string();
    let path = req.uri().path().to_string();
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let (tenant, rest) = (segments.next().unwrap_or_default().to_string(), segments.next().unwrap_or_default());
    let base = format!("https://{host}/{tenant}");
    match rest {
        "v2.0/.well-known/openid-configuration" | ".well-known/openid-configuration" => json_answer(
            StatusCode::OK,
            json!({
                "issuer": format!("https://{host}/{TID}/v2.0"),
                "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
                "token_endpoint": format!("{base}/oauth2/v2.0/token"),
                "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
                "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
                "jwks_uri": format!("https://{host}/{tenant}/discovery/v2.0/keys"),
                "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }),
        ),
        "oauth2/v2.0/devicecode" => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let scope = form_urlencoded::parse(&body).find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned());
            device_code(&host, &scope.unwrap_or_default())
        }
        "oauth2/v2.0/token" | "oauth2/token" => {
            let restrictions: Vec<String> = req
                .headers()
                .get_all("sec-restrict-tenant-access-policy")
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            let Ok(body) = req.into_body().collect().await else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "body");
            };
            let form: Vec<(String, String)> = form_urlencoded::parse(&body.to_bytes()).into_owned().collect();
            let rsp = token(&form, &format!("{base}/oauth2/v2.0/token"), state);
            if let Some(last) = state.requests.lock().unwrap().last_mut() {
                last.tenant_restrictions = restrictions;
            }
            rsp
        }
        _ => json_answer(StatusCode::NOT_FOUND, json!({ "error": "not_found" })),
    }
}

/// The device code carries the scope asked for: the token request that
/// redeems it names none.
const DEVICE_CODE: &str = "device-code ";

fn device_code(host: &str, scope: &str) -> Answer {
    json_answer(
        StatusCode::OK,
        json!({
            "device_code": format!("{DEVICE_CODE}{scope}"), "user_code": "MFAGATE1",
            "verification_uri": format!("https://{host}/common/oauth2/deviceauth"),
            "expires_in": 900, "interval": 1,
            "message": "To sign in, use a web browser to open the page and enter the code MFAGATE1.",
        }),
    )
}

fn token(form: &[(String, String)], endpoint: &str, state: &State) -> Answer {
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let grant_type = get("grant_type").unwrap_or_default();
    let client_id = get("client_id").unwrap_or_default();
    let scope =
        get("scope").or_else(|| get("device_code").and_then(|c| c.strip_prefix(DEVICE_CODE))).unwrap_or_default();
    let claims: Option<Value> = get("claims").and_then(|c| serde_json::from_str(c).ok());
    // appidacr: 0 public client, 1 client secret, 2 certificate.
    let (client_auth, appidacr) = match (get("client_secret"), get("client_assertion")) {
        (Some(secret), _) if secret == CLIENT_SECRET && client_id == CLIENT_ID => ("secret", "1"),
        (Some(_), _) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000215: Invalid client secret.");
        }
        (None, Some(assertion)) if client_id == CLIENT_ID && assertion_verifies(assertion, state) => {
            ("certificate", "2")
        }
        (None, Some(_)) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS700027: Bad client assertion.");
        }
        (None, None) if client_id == PUBLIC_CLIENT_ID => ("none", "0"),
        (None, None) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000218: A credential is required.");
        }
    };
    state.requests.lock().unwrap().push(TokenRequest {
        grant_type: grant_type.to_string(),
        client_id: client_id.to_string(),
        client_auth: client_auth.to_string(),
        claims: claims.clone(),
        scope: scope.to_string(),
        tenant_restrictions: Vec::new(),
    });
    let Some(audience) = audience(scope) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "AADSTS70011: No resource in the scope.");
    };
    let access = claims.as_ref().map(|c| &c["access_token"]);
    let cp1 = access
        .and_then(|a| a["xms_cc"]["values"].as_array())
        .is_some_and(|values| values.iter().any(|v| v.as_str().is_some_and(|v| v.eq_ignore_ascii_case("cp1"))));
    // An authentication context asked for in `claims`: this tenant's
    // Conditional Access demands MFA for it, and the user does it.
    let context = access.and_then(|a| a["acrs"]["value"].as_str()).map(str::to_string);
    let mfa = match grant_type {
        "client_credentials" => {
            let mut token = idp::Idp::app_only_token().claim("aud", audience).claim("appid", client_id);
            token = token.claim("appidacr", appidacr);
            return issued(token.mint(), None, endpoint, client_id);
        }
        "refresh_token" => match get("refresh_token") {
            Some(RT_MFA) => true,
            Some(RT_PASSWORD_ONLY) => false,
            _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "AADSTS70000: Unknown refresh token."),
        },
        "authorization_code" => match get("code") {
            Some(CODE_PASSWORD_ONLY) => false,
            Some(CODE_MFA) => true,
            _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "AADSTS70000: Unknown code."),
        },
        // The user signs in on the device login page, with MFA.
        "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => true,
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "AADSTS70003"),
    } || context.is_some();
    let mut token = idp::Idp::delegated_token()
        .claim("aud", audience)
        .claim("appid", client_id)
        .claim("appidacr", appidacr)
        .amr(if mfa { &["pwd", "mfa"] } else { &["pwd"] });
    if cp1 {
        token = token.claim("xms_cc", vec!["cp1"]);
    }
    if let Some(context) = &context {
        token = token.claim("acrs", vec![context.clone()]);
    }
    issued(token.mint(), Some(if mfa { RT_MFA } else { RT_PASSWORD_ONLY }), endpoint, client_id)
}

/// The resource of the first scope that names one: `https://graph.microsoft.com/.default` → `https://graph.microsoft.com`.
fn audience(scope: &str) -> Option<String> {
    scope.split(' ').find_map(|s| {
        let (scheme, rest) = s.split_once("://")?;
        let host = rest.split('/').next()?;
        Some(format!("{scheme}://{host}"))
    })
}

fn assertion_verifies(assertion: &str, state: &State) -> bool {
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(state.client_public_pem.as_bytes()) else { return false };
    let Ok(header) = jsonwebtoken::decode_header(assertion) else { return false };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    validation.set_issuer(&[CLIENT_ID]);
    matches!(header.alg, jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::PS256)
        && jsonwebtoken::decode::<Value>(assertion, &key, &validation).is_ok()
}

/// The token response, with an ID token and `client_info` for user grants
/// (MSAL and azure-identity key their caches by the account).
fn issued(access_token: String, refresh_token: Option<&str>, endpoint: &str, client_id: &str) -> Answer {
    let mut body = json!({
        "token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": access_token,
    });
    if let Some(rt) = refresh_token {
        let now = idp::now();
        let issuer = endpoint.split("/oauth2/").next().map(|b| format!("{b}/v2.0")).unwrap_or_default();
        let id_token = TokenBuilder::new(&idp::keys().primary)
            .claims(json!({
                "aud": client_id, "iss": issuer, "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
                "oid": OID, "sub": OID, "tid": TID, "name": "Admin Agent",
                "preferred_username": "admin@contoso.onmicrosoft.com", "ver": "2.0",
            }))
            .mint();
        let client_info = URL_SAFE_NO_PAD.encode(json!({ "uid": OID, "utid": TID }).to_string());
        body["refresh_token"] = rt.into();
        body["id_token"] = id_token.into();
        body["client_info"] = client_info.into();
        body["scope"] = "openid profile offline_access".into();
    }
    json_answer(StatusCode::OK, body)
}
