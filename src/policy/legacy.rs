//! Legacy authentication, which can never prove MFA: password-bearing
//! `Authorization` schemes, Exchange's legacy endpoints reached with
//! anything but a bearer token, and, on a login route, every sign-in that
//! carries a password: the resource owner password grant (ROPC), WS-Trust
//! endpoints, and the SAML bearer grants that complete WS-Trust sign-ins.

mod body;

use super::{Check, Reason};
use crate::reason::RequestRule;
use body::Param;

/// First path segments of Exchange's legacy protocols: EWS, ActiveSync,
/// Autodiscover, Outlook Anywhere (RPC over HTTP) and MAPI over HTTP.
const EXCHANGE_LEGACY: [&str; 5] = ["ews", "microsoft-server-activesync", "autodiscover", "rpc", "mapi"];

/// What an `Authorization` header carries (read by `auth::credentials`).
pub use crate::auth::credentials::Scheme as Credential;

/// True when a path segment names one of Exchange's legacy endpoints
/// (`/EWS/`, `/Microsoft-Server-ActiveSync`, `/autodiscover/`, `/rpc/`,
/// `/mapi/`), compared as `ws_trust` compares them: percent-decoded, without
/// path parameters or a trailing dot or space (`/EWS;x/` is EWS too).
pub fn is_exchange_legacy(path: &str) -> bool {
    path.split('/').map(segment_name).any(|name| EXCHANGE_LEGACY.iter().any(|e| name.eq_ignore_ascii_case(e)))
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
            Check::Fail(Reason::LegacyAuth)
        }
    }
}

/// Entra's WS-Trust endpoints for a user name and password: `rst2.srf`
/// (Entra), `extSTS.srf` (SharePoint Online).
const WS_TRUST_SRF: [&str; 2] = ["rst2.srf", "extsts.srf"];

/// Prefixes of the WS-Trust bindings that take a user name and password or a
/// Windows credential. AD FS serves them under
/// `/adfs/services/trust/{2005,13}/`: `username`, `usernamemixed`,
/// `usernamebasictransport`, `windows`, `windowsmixed`, `windowstransport`,
/// `kerberosmixed` (Get-AdfsEndpoint; "How To: Use AD FS Endpoints When
/// Developing Claims Aware WCF Services Using WIF", learn.microsoft.com
/// archive); Entra's seamless SSO under `/{tenant}/winauth/trust/2005/`.
/// Certificate and issued-token bindings carry no password.
const WS_TRUST_BINDINGS: [&str; 3] = ["username", "windows", "kerberos"];

/// The SAML bearer grants with which MSAL completes the WS-Trust user name
/// and password and integrated Windows sign-ins.
const SAML_BEARER: [&str; 2] =
    ["urn:ietf:params:oauth:grant-type:saml1_1-bearer", "urn:ietf:params:oauth:grant-type:saml2-bearer"];

/// True for Entra/AD FS WS-Trust endpoints that take a password or a Windows
/// credential: a segment `rst2.srf` or `extsts.srf`, or a WS-Trust binding
/// name in a segment after a `trust` segment. Segments are compared
/// percent-decoded, in any case, without path parameters or a trailing dot
/// or space. For login routes, where it is legacy authentication.
pub fn ws_trust(path: &str) -> bool {
    let mut under_trust = false;
    path.split('/').map(segment_name).any(|name| {
        let binding = under_trust && WS_TRUST_BINDINGS.iter().any(|b| starts_with_ignore_case(&name, b));
        under_trust |= name.eq_ignore_ascii_case("trust");
        binding || WS_TRUST_SRF.iter().any(|s| name.eq_ignore_ascii_case(s))
    })
}

fn segment_name(raw: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let name = decoded.split(';').next().unwrap_or_default();
    name.trim_end_matches(['.', ' ']).to_string()
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// RFC 7523 §2.2: the client authenticates with a signed JWT (a certificate).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How a client authenticated to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Secret,
    Assertion,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Secret => "secret",
            Self::Assertion => "assertion",
        }
    }
}

/// What a request to Entra's token endpoint asks for, read from its query
/// and its body in every form a lenient server reads (see `body`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// Every grant type, in the order found, trimmed.
    pub grant_types: Vec<String>,
    pub client_id: Option<String>,
    pub username: Option<String>,
    /// Every `client_id`, in the order found (the first is `client_id`).
    pub client_ids: Vec<String>,
    /// The client id of HTTP Basic client authentication (RFC 6749
    /// §2.3.1), set by the caller from `Authorization: Basic`; empty when
    /// the credentials do not decode.
    pub basic_client: Option<String>,
    /// A `client_secret` parameter was sent (its value is never kept).
    pub client_secret: bool,
    /// A non-empty `client_assertion` was sent (its value is never kept).
    pub client_assertion: bool,
    /// Every `client_assertion_type`, trimmed.
    pub assertion_types: Vec<String>,
    /// The first `scope` and `resource`.
    pub scope: Option<String>,
    pub resource: Option<String>,
    /// The tenant the request's path names, as the log may show it (set by
    /// the caller: `signin_tenant`).
    pub tenant: Option<String>,
    /// The request went to a token endpoint (`…/token`; set by the caller).
    pub token_endpoint: bool,
    /// The grant types for the log: `grant_label`.
    grant: Option<String>,
}

impl TokenRequest {
    /// `content_type`: the request's Content-Type value, when it has one.
    /// Err(why) when the body cannot be read unambiguously. Parameter names
    /// match in any case once percent-decoded; values are trimmed of
    /// whitespace and NUL; `client_id` and `username` are the first found.
    pub fn parse(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<Self, RequestRule> {
        let mut request = Self::default();
        for param in body::params(query, content_type, body)? {
            request.add(&param);
        }
        request.grant = request.label();
        Ok(request)
    }

    fn add(&mut self, param: &Param) {
        let named = |field: &str| param.names.iter().any(|n| same(n, field));
        let value = || trimmed(&param.value).to_string();
        if named("grant_type") {
            self.grant_types.push(value());
        }
        if self.client_id.is_none() && named("client_id") {
            self.client_id = Some(client_id(value()));
        }
        if self.username.is_none() && named("username") {
            self.username = Some(value());
        }
        if named("client_id") {
            self.client_ids.push(client_id(value()));
        }
        self.client_secret |= named("client_secret");
        self.client_assertion |= named("client_assertion") && !trimmed(&param.value).is_empty();
        if named("client_assertion_type") {
            self.assertion_types.push(value());
        }
        if self.scope.is_none() && named("scope") {
            self.scope = Some(value());
        }
        if self.resource.is_none() && named("resource") {
            self.resource = Some(value());
        }
    }

    /// How the client authenticated to the token endpoint. A secret
    /// anywhere (a `client_secret` parameter or Basic credentials) makes it
    /// `Secret`, even beside an assertion; `Assertion` needs every
    /// `client_assertion_type` to be jwt-bearer.
    pub fn client_auth(&self) -> ClientAuth {
        let jwt_bearer = !self.assertion_types.is_empty() && self.assertion_types.iter().all(|t| same(t, JWT_BEARER));
        if self.client_secret || self.basic_client.is_some() {
            ClientAuth::Secret
        } else if self.client_assertion && jwt_bearer {
            ClientAuth::Assertion
        } else {
            ClientAuth::None
        }
    }

    /// Every client id the request names, in its parameters and its Basic credentials.
    pub fn every_client_id(&self) -> impl Iterator<Item = &str> {
        self.client_ids.iter().map(String::as_str).chain(self.basic_client.as_deref())
    }

    /// True when `grant_type` names `grant`, by any of its names (compared
    /// as parameter names are).
    pub fn asks_for(&self, grant: &str) -> bool {
        let grant = canonical_grant(grant);
        self.grant_types.iter().any(|g| canonical_grant(g) == grant)
    }

    /// `Fail(PasswordGrant)` for any `grant_type=password`, even among
    /// others: ROPC sends the user's password to Entra, which cannot then ask
    /// for a second factor. `Fail(LegacyAuth)` for a SAML bearer grant;
    /// `Skip` without a grant type; else `Pass`.
    pub fn check(&self) -> Check {
        let any = |names: &[&str]| self.grant_types.iter().any(|g| names.iter().any(|n| same(g, n)));
        if any(&["password"]) {
            Check::Fail(Reason::PasswordGrant)
        } else if any(&SAML_BEARER) {
            Check::Fail(Reason::LegacyAuth)
        } else if self.grant_types.is_empty() {
            Check::Skip
        } else {
            Check::Pass
        }
    }

    /// A sign-in: a request that asks for a grant, or any request to a
    /// token endpoint. Only these are the sign-in review's rows.
    pub fn is_token_request(&self) -> bool {
        self.token_endpoint || !self.grant_types.is_empty()
    }

    /// The grant types for logs, each by its canonical name
    /// (`canonical_grant`) when it is short and plain, else `other`; when
    /// the request names several, every distinct one, space-separated, so
    /// that the one decided on is among them.
    pub fn grant_label(&self) -> Option<&str> {
        self.grant.as_deref()
    }

    fn label(&self) -> Option<String> {
        let mut labels: Vec<String> = Vec::new();
        for g in &self.grant_types {
            let g = canonical_grant(g);
            let plain = g.len() <= 64 && g.bytes().all(|b| b.is_ascii_alphanumeric() || b":._-".contains(&b));
            let g = if plain { g } else { "other".to_string() };
            if !labels.contains(&g) {
                labels.push(g);
            }
        }
        (!labels.is_empty()).then(|| labels.join(" "))
    }
}

/// A client id as it is compared and logged: a GUID lower-cased.
pub fn client_id(id: String) -> String {
    if crate::entra::is_guid(&id) { id.to_ascii_lowercase() } else { id }
}

fn trimmed(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\0' || c == '\u{feff}')
}

/// `text` is `name` (lower-case ASCII) once trimmed, its NULs dropped, and
/// compared as .NET's case-insensitive ordinal comparison would at least:
/// `ſ` is `s`, `ı` and `İ` are `i`, the Kelvin sign is `k`.
fn same(text: &str, name: &str) -> bool {
    folded(text).eq(name.chars())
}

fn folded(text: &str) -> impl Iterator<Item = char> + '_ {
    trimmed(text).chars().filter(|&c| c != '\0').map(|c| match c {
        'ſ' => 's',
        'ı' | 'İ' => 'i',
        '\u{212a}' => 'k',
        c => c.to_ascii_lowercase(),
    })
}

/// The device code grant (RFC 8628).
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Other names Entra's token endpoints take for a grant: the v1 endpoint
/// (ADAL) redeems a device code as `grant_type=device_code`.
const GRANT_ALIASES: [(&str, &str); 1] = [("device_code", DEVICE_CODE)];

/// A grant type as it is compared and recorded: folded as parameter names
/// are (`same`), and an alias replaced by the grant it names.
pub fn canonical_grant(text: &str) -> String {
    let folded: String = folded(text).collect();
    GRANT_ALIASES.iter().find(|(alias, _)| *alias == folded).map_or(folded, |(_, grant)| (*grant).to_string())
}

#[cfg(test)]
mod tests;
