//! Every rejection becomes a response here and nowhere else: status, the
//! Partner Center style JSON body, `WWW-Authenticate`, and the correlation
//! headers.
//!
//! The body mirrors Partner Center's error contract
//! (`{"code","description","data","source"}`) so that automation which already
//! handles Partner Center's errors handles ours; `reason` and `correlationId`
//! are added. Descriptions are fixed per reason: nothing from the request is
//! echoed.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, PROXY_AUTHENTICATE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::auth::AuthError;
use crate::egress::EgressError;
use crate::policy::{Denial, DenyReason, StepUp};
use crate::proxy::Body;
use crate::proxy::forward::UpstreamError;

/// `Retry-After` of an `overloaded` answer.
pub const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Partner Center's own error code for a call without MFA.
pub const PARTNER_CENTER_MFA_CODE: &str = "900421";

/// Why a request was not forwarded (or not answered by the upstream): the
/// stable, documented reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    MissingToken,
    LegacyAuth,
    MalformedToken,
    DisallowedAlg,
    UnknownKey,
    BadSignature,
    BadIssuer,
    BadAudience,
    Expired,
    NotYetValid,
    MfaRequired,
    TenantNotAllowed,
    AppOnlyNotAllowed,
    PublicClient,
    AppNotAllowed,
    AppDenied,
    CertificateRequired,
    MfaUnprovableV2,
    ForeignTenantNotAllowed,
    CustomerNotAllowed,
    RelationshipExpired,
    PrivilegedRole,
    PasswordGrant,
    KeysUnavailable,
    NoRoute,
    BadRequest,
    UpstreamUnavailable,
    UpstreamTimeout,
    AudienceHostMismatch,
    MisdirectedRequest,
    EgressDenied,
    TlsRequired,
    ProxyAuthRequired,
    RateLimited,
    Overloaded,
}

impl Reason {
    pub const ALL: [Reason; 35] = [
        Self::MissingToken,
        Self::LegacyAuth,
        Self::MalformedToken,
        Self::DisallowedAlg,
        Self::UnknownKey,
        Self::BadSignature,
        Self::BadIssuer,
        Self::BadAudience,
        Self::Expired,
        Self::NotYetValid,
        Self::MfaRequired,
        Self::TenantNotAllowed,
        Self::AppOnlyNotAllowed,
        Self::PublicClient,
        Self::AppNotAllowed,
        Self::AppDenied,
        Self::CertificateRequired,
        Self::MfaUnprovableV2,
        Self::ForeignTenantNotAllowed,
        Self::CustomerNotAllowed,
        Self::RelationshipExpired,
        Self::PrivilegedRole,
        Self::PasswordGrant,
        Self::KeysUnavailable,
        Self::NoRoute,
        Self::BadRequest,
        Self::UpstreamUnavailable,
        Self::UpstreamTimeout,
        Self::AudienceHostMismatch,
        Self::MisdirectedRequest,
        Self::EgressDenied,
        Self::TlsRequired,
        Self::ProxyAuthRequired,
        Self::RateLimited,
        Self::Overloaded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::LegacyAuth => "legacy_auth",
            Self::MalformedToken => "malformed_token",
            Self::DisallowedAlg => "disallowed_alg",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::BadIssuer => "bad_issuer",
            Self::BadAudience => "bad_audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::MfaRequired => "mfa_required",
            Self::TenantNotAllowed => "tenant_not_allowed",
            Self::AppOnlyNotAllowed => "app_only_not_allowed",
            Self::PublicClient => "public_client",
            Self::AppNotAllowed => "app_not_allowed",
            Self::AppDenied => "app_denied",
            Self::CertificateRequired => "certificate_required",
            Self::MfaUnprovableV2 => "mfa_unprovable_v2",
            Self::ForeignTenantNotAllowed => "foreign_tenant_not_allowed",
            Self::CustomerNotAllowed => "customer_not_allowed",
            Self::RelationshipExpired => "relationship_expired",
            Self::PrivilegedRole => "privileged_role",
            Self::PasswordGrant => "password_grant",
            Self::KeysUnavailable => "keys_unavailable",
            Self::NoRoute => "no_route",
            Self::BadRequest => "bad_request",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::AudienceHostMismatch => "audience_host_mismatch",
            Self::MisdirectedRequest => "misdirected_request",
            Self::EgressDenied => "egress_denied",
            Self::TlsRequired => "tls_required",
            Self::ProxyAuthRequired => "proxy_auth_required",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            // No `_` arm: every new reason has to choose its status.
            Self::MissingToken
            | Self::LegacyAuth
            | Self::MalformedToken
            | Self::DisallowedAlg
            | Self::UnknownKey
            | Self::BadSignature
            | Self::BadIssuer
            | Self::BadAudience
            | Self::Expired
            | Self::NotYetValid
            | Self::MfaRequired
            | Self::MfaUnprovableV2 => StatusCode::UNAUTHORIZED,
            Self::TenantNotAllowed
            | Self::AppOnlyNotAllowed
            | Self::PublicClient
            | Self::AppNotAllowed
            | Self::AppDenied
            | Self::CertificateRequired
            | Self::ForeignTenantNotAllowed
            | Self::CustomerNotAllowed
            | Self::RelationshipExpired
            | Self::PrivilegedRole
            | Self::PasswordGrant => StatusCode::FORBIDDEN,
            // Our fault, not the caller's: automation should retry, not re-authenticate.
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::AudienceHostMismatch | Self::EgressDenied | Self::TlsRequired => StatusCode::FORBIDDEN,
            Self::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
            Self::ProxyAuthRequired => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            // Shedding load: the caller should retry after `Retry-After`.
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The reason with this code, e.g. from a decision log.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == code)
    }

    /// The policy rule's reason, when this is one (as opposed to a failed
    /// token check, routing, request syntax or the upstream).
    pub fn deny_reason(self) -> Option<DenyReason> {
        DENY_REASONS.into_iter().find(|d| Reason::from(*d) == self)
    }

    /// A decision about the caller's credentials (as opposed to routing,
    /// request syntax or the upstream): what report-only mode waives.
    pub fn is_policy(self) -> bool {
        // Egress refusals are about where a request goes, not who sent it:
        // report-only never lets a token travel to the wrong host.
        !matches!(
            self,
            Self::NoRoute
                | Self::BadRequest
                | Self::UpstreamUnavailable
                | Self::UpstreamTimeout
                | Self::AudienceHostMismatch
                | Self::MisdirectedRequest
                | Self::EgressDenied
                | Self::TlsRequired
                | Self::ProxyAuthRequired
                | Self::RateLimited
                | Self::Overloaded
        )
    }

    /// A reason the gateway decides on (everything but upstream failures).
    pub fn is_decision(self) -> bool {
        !matches!(self, Self::UpstreamUnavailable | Self::UpstreamTimeout)
    }

    /// The human-readable `description` of the error body.
    pub fn description(self) -> &'static str {
        match self {
            Self::MissingToken => "A bearer token is required: send 'Authorization: Bearer <access token>'.",
            Self::LegacyAuth => {
                "Legacy authentication (Basic, NTLM, Negotiate, Digest) cannot prove multi-factor authentication and is blocked. Use an OAuth access token obtained through the Secure Application Model."
            }
            Self::MalformedToken => "The bearer token is not a well-formed JSON Web Token.",
            Self::DisallowedAlg => "The token's signing algorithm is not allowed.",
            Self::UnknownKey => "The token is signed with a key that is not in the identity provider's key set.",
            Self::BadSignature => "The token's signature is not valid.",
            Self::BadIssuer => "The token's issuer is not an accepted Microsoft Entra issuer for the token's tenant.",
            Self::BadAudience => "The token was not issued for this API.",
            Self::Expired => "The token has expired.",
            Self::NotYetValid => "The token is not valid yet.",
            Self::MfaRequired => {
                "Multi-factor authentication is required: the token's amr claim does not show MFA. Sign in interactively with MFA and use the Secure Application Model (no password flows)."
            }
            Self::TenantNotAllowed => "The token's tenant is not allowed by this gateway.",
            Self::AppOnlyNotAllowed => {
                "App-only tokens are not allowed on this route; use app+user authentication with MFA."
            }
            Self::PublicClient => {
                "Tokens issued to public client applications are not allowed; use a confidential application (Secure Application Model)."
            }
            Self::AppNotAllowed => "The calling application is not allowed on this route.",
            Self::AppDenied => {
                "The calling application is denied on this route: public tools for scripted sign-ins with a user's credentials are not part of the Secure Application Model."
            }
            Self::CertificateRequired => {
                "The calling application must authenticate with a certificate (appidacr or azpacr 2), not a client secret or no credential."
            }
            Self::MfaUnprovableV2 => {
                "Multi-factor authentication is required, and a v2.0 access token cannot prove it: v2.0 tokens carry no amr claim. Request a v1.0 token for this API."
            }
            Self::ForeignTenantNotAllowed => {
                "The user belongs to another tenant (a guest or delegated admin) that is not one of the partner's tenants."
            }
            Self::CustomerNotAllowed => "The partner has no admin relationship with this customer tenant.",
            Self::RelationshipExpired => "The partner's admin relationship with this customer tenant has ended.",
            Self::PrivilegedRole => {
                "The token carries a directory role this route denies (e.g. Global Administrator): use a least-privileged role."
            }
            Self::PasswordGrant => {
                "The resource owner password credentials grant cannot perform multi-factor authentication and is blocked. Use the authorization code flow with MFA (Secure Application Model)."
            }
            Self::KeysUnavailable => {
                "The gateway cannot verify tokens right now: its signing keys are unavailable. Retry later."
            }
            Self::NoRoute => "No route is configured for this host and path.",
            Self::BadRequest => "The request is malformed or ambiguous and was not forwarded.",
            Self::UpstreamUnavailable => "The upstream service could not be reached.",
            Self::UpstreamTimeout => "The upstream service did not answer in time.",
            Self::AudienceHostMismatch => {
                "The token's audience names another service: through the egress proxy a token may only be sent to the host its audience names."
            }
            Self::MisdirectedRequest => {
                "The request names another host than the tunnel was opened to: the CONNECT target, the TLS server name and Host must agree."
            }
            Self::EgressDenied => "The egress proxy does not allow connections to this host or port.",
            Self::TlsRequired => "This host is only reachable over TLS (CONNECT); plain HTTP to it is refused.",
            Self::ProxyAuthRequired => {
                "The egress proxy requires its own credentials: send 'Proxy-Authorization: Basic <credentials>'."
            }
            Self::RateLimited => "Too many requests. Retry after the number of seconds in the Retry-After header.",
            Self::Overloaded => {
                "The gateway is at its capacity limit. Retry after the number of seconds in the Retry-After header."
            }
        }
    }

    /// A short `error_description` for `WWW-Authenticate` (RFC 6750 §3: no
    /// quote or backslash).
    fn short(self) -> &'static str {
        match self {
            Self::MfaRequired => "MFA required",
            Self::MalformedToken => "malformed token",
            Self::DisallowedAlg => "algorithm not allowed",
            Self::UnknownKey => "unknown signing key",
            Self::BadSignature => "invalid signature",
            Self::BadIssuer => "issuer not accepted",
            Self::BadAudience => "audience not accepted",
            Self::Expired => "token expired",
            Self::NotYetValid => "token not yet valid",
            Self::TenantNotAllowed => "tenant not allowed",
            Self::AppOnlyNotAllowed => "app-only token not allowed",
            Self::PublicClient => "public client not allowed",
            Self::AppNotAllowed => "application not allowed",
            Self::AppDenied => "application denied",
            Self::CertificateRequired => "certificate credential required",
            Self::MfaUnprovableV2 => "MFA required, v2 token has no amr",
            Self::ForeignTenantNotAllowed => "foreign tenant not allowed",
            Self::CustomerNotAllowed => "customer not allowed",
            Self::RelationshipExpired => "customer relationship expired",
            Self::PrivilegedRole => "privileged role",
            Self::AudienceHostMismatch => "token audience names another host",
            Self::MissingToken
            | Self::PasswordGrant
            | Self::LegacyAuth
            | Self::KeysUnavailable
            | Self::NoRoute
            | Self::BadRequest
            | Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::MisdirectedRequest
            | Self::EgressDenied
            | Self::TlsRequired
            | Self::ProxyAuthRequired => "",
            Self::RateLimited | Self::Overloaded => "",
        }
    }

    /// The body's `code`: Partner Center's own for missing MFA, else the reason.
    fn code(self) -> &'static str {
        match self {
            Self::MfaRequired | Self::MfaUnprovableV2 => PARTNER_CENTER_MFA_CODE,
            other => other.as_str(),
        }
    }

    /// RFC 6750 §3: no error code when no token was presented; `invalid_token`
    /// for a token that failed; `insufficient_scope` for a valid token that
    /// may not do this.
    fn challenge(self) -> Option<String> {
        if matches!(self, Self::EgressDenied | Self::TlsRequired) {
            // Refused for where it goes, whatever the credentials.
            return None;
        }
        let error = match self.status() {
            StatusCode::UNAUTHORIZED if matches!(self, Self::MissingToken | Self::LegacyAuth) => {
                return Some(r#"Bearer realm="mfagate""#.to_string());
            }
            StatusCode::UNAUTHORIZED => "invalid_token",
            // A refused token request presented no bearer token to challenge.
            StatusCode::FORBIDDEN if self == Self::PasswordGrant => return None,
            StatusCode::FORBIDDEN => "insufficient_scope",
            _ => return None,
        };
        Some(format!(r#"Bearer realm="mfagate", error="{error}", error_description="{}""#, self.short()))
    }
}

/// A request that is answered by the gateway itself.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error("no route matches")]
    NoRoute,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Egress(#[from] EgressError),
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    #[error("over the connection or in-flight request limit")]
    Overloaded,
}

impl Reject {
    pub fn reason(&self) -> Reason {
        match self {
            Self::Auth(e) => e.reason(),
            Self::Denied(denial) => Reason::from(denial.reason),
            Self::NoRoute => Reason::NoRoute,
            Self::BadRequest(_) => Reason::BadRequest,
            Self::Upstream(UpstreamError::Timeout) => Reason::UpstreamTimeout,
            Self::Upstream(UpstreamError::Unavailable(_) | UpstreamError::Target) => Reason::UpstreamUnavailable,
            Self::Egress(e) => e.reason(),
            Self::RateLimited(_) => Reason::RateLimited,
            Self::Overloaded => Reason::Overloaded,
        }
    }

    /// How long the caller should wait before retrying, when that is known.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(wait) => Some(*wait),
            Self::Overloaded => Some(OVERLOAD_RETRY_AFTER),
            _ => None,
        }
    }

    /// The response for this rejection; `correlation_id` goes in the body, the
    /// caller adds the correlation headers.
    pub fn into_response(self, correlation_id: &str) -> Response<Body> {
        let mut rsp = error_response(self.reason(), correlation_id);
        if let Self::Denied(Denial { step_up: Some(step_up), .. }) = &self
            && let Ok(challenge) = HeaderValue::from_str(&step_up_challenge(step_up))
        {
            rsp.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        if let Some(wait) = self.retry_after() {
            // RFC 9110 §10.2.3: whole seconds; round up so that a retry at that time succeeds.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            rsp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        rsp
    }
}

impl From<DenyReason> for Reject {
    fn from(reason: DenyReason) -> Self {
        Self::Denied(reason.into())
    }
}

const DENY_REASONS: [DenyReason; 13] = [
    DenyReason::LegacyAuth,
    DenyReason::PasswordGrant,
    DenyReason::AppDenied,
    DenyReason::AppOnlyNotAllowed,
    DenyReason::MfaRequired,
    DenyReason::MfaUnprovableV2,
    DenyReason::PublicClient,
    DenyReason::CertificateRequired,
    DenyReason::AppNotAllowed,
    DenyReason::ForeignTenantNotAllowed,
    DenyReason::CustomerNotAllowed,
    DenyReason::RelationshipExpired,
    DenyReason::PrivilegedRole,
];

impl From<DenyReason> for Reason {
    fn from(reason: DenyReason) -> Self {
        match reason {
            DenyReason::LegacyAuth => Self::LegacyAuth,
            DenyReason::PasswordGrant => Self::PasswordGrant,
            DenyReason::AppDenied => Self::AppDenied,
            DenyReason::AppOnlyNotAllowed => Self::AppOnlyNotAllowed,
            DenyReason::MfaRequired => Self::MfaRequired,
            DenyReason::MfaUnprovableV2 => Self::MfaUnprovableV2,
            DenyReason::PublicClient => Self::PublicClient,
            DenyReason::CertificateRequired => Self::CertificateRequired,
            DenyReason::AppNotAllowed => Self::AppNotAllowed,
            DenyReason::ForeignTenantNotAllowed => Self::ForeignTenantNotAllowed,
            DenyReason::CustomerNotAllowed => Self::CustomerNotAllowed,
            DenyReason::RelationshipExpired => Self::RelationshipExpired,
            DenyReason::PrivilegedRole => Self::PrivilegedRole,
        }
    }
}

/// The claims challenge of Entra's "claims challenge" contract: one
/// `WWW-Authenticate: Bearer` header with `realm`, `authorization_uri`,
/// `error="insufficient_claims"` and the base64 claims request. MSAL clients
/// that declared `cp1` answer it by signing in again for those claims.
fn step_up_challenge(step_up: &StepUp) -> String {
    format!(
        r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/{}/oauth2/authorize", error="insufficient_claims", claims="{}""#,
        step_up.tenant,
        STANDARD.encode(step_up.claims_request())
    )
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    description: &'a str,
    data: [(); 0],
    source: &'a str,
    reason: &'a str,
    #[serde(rename = "correlationId")]
    correlation_id: &'a str,
}

/// The gateway's own answer for `reason`.
pub fn error_response(reason: Reason, correlation_id: &str) -> Response<Body> {
    let body = ErrorBody {
        code: reason.code(),
        description: reason.description(),
        data: [],
        source: "mfagate",
        reason: reason.as_str(),
        correlation_id,
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut rsp = Response::new(Body::Right(Full::new(Bytes::from(json))));
    *rsp.status_mut() = reason.status();
    let headers = rsp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(challenge) = reason.challenge().and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(WWW_AUTHENTICATE, challenge);
    }
    if reason == Reason::KeysUnavailable {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    if reason == Reason::ProxyAuthRequired {
        headers.insert(PROXY_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="mfagate", charset="UTF-8""#));
    }
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()), "{}", r.as_str());
            assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert!(!r.description().is_empty());
            assert!(!r.short().contains(['"', '\\']));
        }
    }

    #[test]
    fn statuses_follow_whose_fault_it_is() {
        assert_eq!(Reason::MfaRequired.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(Reason::PublicClient.status(), StatusCode::FORBIDDEN);
        assert_eq!(Reason::KeysUnavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Reason::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(Reason::UpstreamUnavailable.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(Reason::UpstreamTimeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(Reason::AudienceHostMismatch.status(), StatusCode::FORBIDDEN);
        assert_eq!(Reason::MisdirectedRequest.status(), StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(Reason::ProxyAuthRequired.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    }

    #[test]
    fn egress_refusals_are_never_waived_and_challenge_only_for_tokens() {
        for r in [
            Reason::AudienceHostMismatch,
            Reason::MisdirectedRequest,
            Reason::EgressDenied,
            Reason::TlsRequired,
            Reason::ProxyAuthRequired,
        ] {
            assert!(!r.is_policy(), "{}", r.as_str());
            assert!(r.is_decision(), "{}", r.as_str());
        }
        assert!(Reason::AudienceHostMismatch.challenge().unwrap().contains("insufficient_scope"));
        assert!(Reason::EgressDenied.challenge().is_none());
        assert!(Reason::TlsRequired.challenge().is_none());
        let rsp = error_response(Reason::ProxyAuthRequired, "c-1");
        assert_eq!(rsp.headers()[PROXY_AUTHENTICATE], r#"Basic realm="mfagate", charset="UTF-8""#);
        assert!(!rsp.headers().contains_key(WWW_AUTHENTICATE));
    }

    #[test]
    fn challenges() {
        assert_eq!(Reason::MissingToken.challenge().unwrap(), r#"Bearer realm="mfagate""#);
        assert_eq!(
            Reason::MfaRequired.challenge().unwrap(),
            r#"Bearer realm="mfagate", error="invalid_token", error_description="MFA required""#
        );
        assert!(Reason::AppNotAllowed.challenge().unwrap().contains(r#"error="insufficient_scope""#));
        assert!(Reason::KeysUnavailable.challenge().is_none());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let wait = |d: Duration| {
            let rsp = Reject::RateLimited(d).into_response("c");
            rsp.headers()[RETRY_AFTER].to_str().unwrap().to_string()
        };
        assert_eq!(wait(Duration::from_millis(1)), "1");
        assert_eq!(wait(Duration::from_millis(1500)), "2");
        assert_eq!(wait(Duration::from_secs(30)), "30");
        let rsp = Reject::Overloaded.into_response("c");
        assert_eq!(rsp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(rsp.headers()[RETRY_AFTER], "1");
        assert!(Reject::NoRoute.into_response("c").headers().get(RETRY_AFTER).is_none());
        assert!(!Reason::RateLimited.is_policy() && !Reason::Overloaded.is_policy(), "report-only does not waive them");
    }

    #[test]
    fn body_has_partner_center_shape() {
        let rsp = error_response(Reason::MfaRequired, "c-1");
        assert_eq!(rsp.status(), StatusCode::UNAUTHORIZED);
        let Body::Right(full) = rsp.into_body() else { panic!("not a full body") };
        let bytes = futures_executor(full);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["code"], "900421");
        assert_eq!(v["reason"], "mfa_required");
        assert_eq!(v["source"], "mfagate");
        assert_eq!(v["data"], serde_json::json!([]));
        assert_eq!(v["correlationId"], "c-1");
    }

    #[test]
    fn codes_parse_back_and_rules_map_both_ways() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            if let Some(d) = r.deny_reason() {
                assert_eq!(Reason::from(d), r);
                assert!(r.is_policy());
            }
        }
        for d in DENY_REASONS {
            assert_eq!(Reason::from(d).deny_reason(), Some(d));
        }
        assert_eq!(Reason::parse("nope"), None);
        assert_eq!(Reason::BadSignature.deny_reason(), None);
        assert_eq!(Reason::MfaUnprovableV2.code(), PARTNER_CENTER_MFA_CODE);
        assert!(Reason::PasswordGrant.challenge().is_none());
        assert!(Reason::PrivilegedRole.challenge().unwrap().contains("insufficient_scope"));
    }

    #[test]
    fn step_up_replaces_the_challenge() {
        let denial = Denial {
            reason: DenyReason::MfaRequired,
            step_up: Some(StepUp { tenant: "df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50".into(), auth_context: "c1".into() }),
        };
        let rsp = Reject::Denied(denial).into_response("c-1");
        assert_eq!(rsp.status(), StatusCode::UNAUTHORIZED);
        let all: Vec<_> = rsp.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(all.len(), 1, "one challenge header");
        assert_eq!(
            all[0],
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19""#
        );
    }

    fn futures_executor(full: Full<Bytes>) -> Bytes {
        use http_body_util::BodyExt;
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(full.collect()).unwrap().to_bytes()
    }
}
