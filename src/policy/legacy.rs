//! Legacy authentication, which can never prove MFA: password-bearing
//! `Authorization` schemes, Exchange's legacy endpoints reached with
//! anything but a bearer token, and the resource owner password grant
//! (ROPC) on Entra's token endpoint.

use super::{Check, DenyReason};

/// First path segments of Exchange's legacy protocols: EWS, ActiveSync,
/// Autodiscover, Outlook Anywhere (RPC over HTTP) and MAPI over HTTP.
const EXCHANGE_LEGACY: [&str; 5] = ["ews", "microsoft-server-activesync", "autodiscover", "rpc", "mapi"];

/// What an `Authorization` header carries (read by `auth::credentials`).
pub use crate::auth::credentials::Scheme as Credential;

/// True when a path segment names one of Exchange's legacy endpoints
/// (`/EWS/`, `/Microsoft-Server-ActiveSync`, `/autodiscover/`, `/rpc/`, `/mapi/`).
pub fn is_exchange_legacy(path: &str) -> bool {
    path.split('/').any(|raw| {
        let segment = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        EXCHANGE_LEGACY.iter().any(|e| segment.eq_ignore_ascii_case(e))
    })
}

/// Exchange's legacy endpoints take only a bearer token: any other
/// credential is legacy authentication, whatever its scheme. (A request
/// with no credentials is left to the token check: `missing_token`.)
pub fn exchange(path: &str, credential: Credential) -> Check {
    match credential {
        _ if !is_exchange_legacy(path) => Check::Skip,
        Credential::None => Check::Skip,
        Credential::Bearer => Check::Pass,
        Credential::Basic | Credential::Ntlm | Credential::Negotiate | Credential::Digest | Credential::Other => {
            Check::Fail(DenyReason::LegacyAuth)
        }
    }
}

/// True for WS-Trust endpoints that take a password or a Windows credential.
pub fn ws_trust(_path: &str) -> bool {
    false
}

/// What a request to Entra's token endpoint asks for, from its query and
/// its `application/x-www-form-urlencoded` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_types: Vec<String>,
    pub client_id: Option<String>,
    pub username: Option<String>,
}

impl TokenRequest {
    pub fn parse(query: Option<&str>, _content_type: Option<&str>, body: &[u8]) -> Result<Self, &'static str> {
        Ok(Self::parse_form(query, body))
    }

    fn parse_form(query: Option<&str>, body: &[u8]) -> Self {
        let mut request = Self::default();
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).chain(form_urlencoded::parse(body));
        for (key, value) in pairs {
            match key.as_ref() {
                "grant_type" => request.grant_types.push(value.into_owned()),
                "client_id" if request.client_id.is_none() => request.client_id = Some(value.into_owned()),
                "username" if request.username.is_none() => request.username = Some(value.into_owned()),
                _ => {}
            }
        }
        request
    }

    /// ROPC sends the user's password to Entra, which cannot then ask for a
    /// second factor. Any `grant_type=password`, even among others, fails.
    pub fn check(&self) -> Check {
        if self.grant_types.iter().any(|g| g.trim().eq_ignore_ascii_case("password")) {
            Check::Fail(DenyReason::PasswordGrant)
        } else if self.grant_types.is_empty() {
            Check::Skip
        } else {
            Check::Pass
        }
    }

    /// The first grant type, when it is short and plain (for logs), else `other`.
    pub fn grant_label(&self) -> Option<&str> {
        let g = self.grant_types.first()?;
        let plain = g.len() <= 64 && g.bytes().all(|b| b.is_ascii_alphanumeric() || b":._-".contains(&b));
        Some(if plain { g } else { "other" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_endpoints() {
        for path in [
            "/EWS/Exchange.asmx",
            "/Microsoft-Server-ActiveSync?Cmd=Sync",
            "/autodiscover/autodiscover.xml",
            "/rpc/rpcproxy.dll",
            "/mapi/emsmdb/",
            "/exo/%45WS/Exchange.asmx",
        ] {
            let path = path.split('?').next().unwrap();
            assert!(is_exchange_legacy(path), "{path}");
            assert_eq!(exchange(path, Credential::Basic), Check::Fail(DenyReason::LegacyAuth), "{path}");
            assert_eq!(exchange(path, Credential::Other), Check::Fail(DenyReason::LegacyAuth), "{path}");
            assert_eq!(exchange(path, Credential::Bearer), Check::Pass, "{path}");
            assert_eq!(exchange(path, Credential::None), Check::Skip, "{path}");
        }
        for path in ["/v1/customers", "/ewsx/", "/api/mapping", "/v1.0/users"] {
            assert!(!is_exchange_legacy(path), "{path}");
            assert_eq!(exchange(path, Credential::Other), Check::Skip);
        }
    }

    #[test]
    fn password_grants() {
        let ropc = TokenRequest::parse_form(None, b"client_id=c&grant_type=password&username=u%40x&password=p");
        assert_eq!(ropc.check(), Check::Fail(DenyReason::PasswordGrant));
        assert_eq!(ropc.username.as_deref(), Some("u@x"));
        assert_eq!(ropc.client_id.as_deref(), Some("c"));
        assert_eq!(ropc.grant_label(), Some("password"));
        let cases: [(Option<&str>, &[u8], Check); 6] = [
            (None, b"grant_type=Password", Check::Fail(DenyReason::PasswordGrant)),
            (None, b"grant_type=%70assword", Check::Fail(DenyReason::PasswordGrant)),
            (None, b"grant_type=refresh_token&grant_type=password", Check::Fail(DenyReason::PasswordGrant)),
            (Some("grant_type=password"), b"grant_type=client_credentials", Check::Fail(DenyReason::PasswordGrant)),
            (None, b"grant_type=authorization_code&code=x&password=literal", Check::Pass),
            (None, b"{\"grant_type\":\"password\"}", Check::Skip),
        ];
        for (query, body, expected) in cases {
            assert_eq!(TokenRequest::parse_form(query, body).check(), expected, "{}", String::from_utf8_lossy(body));
        }
        let long = TokenRequest::parse_form(None, format!("grant_type={}", "x".repeat(100)).as_bytes());
        assert_eq!(long.grant_label(), Some("other"));
        let jwt = TokenRequest::parse_form(None, b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
        assert_eq!(jwt.grant_label(), Some("urn:ietf:params:oauth:grant-type:jwt-bearer"));
    }
}
