//! The vocabulary of decisions: why a request was not forwarded (`Reason`)
//! and the rules of the policy (`Rule`). Every property of a reason (its
//! code, status, class, wording) is declared in its one row of the table
//! below, so a reason added later cannot inherit a default: leaving a column
//! out does not compile. What report-only mode may forward follows from the
//! class alone.

use http::StatusCode;

/// The rules, in evaluation order. Each is named after the configuration
/// key that governs it, which is also its key in `rule_modes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    LegacyAuth,
    DeniedApps,
    AppOnly,
    Mfa,
    PublicClients,
    CertificateClient,
    AllowedApps,
    PartnerTenants,
    Customers,
    DenyRoles,
}

impl Rule {
    pub const ALL: [Rule; 10] = [
        Self::LegacyAuth,
        Self::DeniedApps,
        Self::AppOnly,
        Self::Mfa,
        Self::PublicClients,
        Self::CertificateClient,
        Self::AllowedApps,
        Self::PartnerTenants,
        Self::Customers,
        Self::DenyRoles,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LegacyAuth => "legacy_auth",
            Self::DeniedApps => "denied_apps",
            Self::AppOnly => "app_only",
            Self::Mfa => "mfa",
            Self::PublicClients => "public_clients",
            Self::CertificateClient => "certificate_client",
            Self::AllowedApps => "allowed_apps",
            Self::PartnerTenants => "partner_tenants",
            Self::Customers => "customers",
            Self::DenyRoles => "deny_roles",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What kind of failure a reason is; it decides whether report-only mode
/// may forward the request anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The request's credentials could not be checked (no token, a token
    /// that does not verify, the wrong issuer or audience, expired, keys
    /// unavailable). Forwarded in report-only mode only while no rule of
    /// the route enforces: a rule that enforces cannot be sidestepped by
    /// sending a token it cannot read.
    Credential,
    /// A rule of the policy failed: forwarded while that rule runs
    /// report-only.
    Rule(Rule),
    /// The request itself is malformed, ambiguous or has no route: never
    /// forwarded.
    Request,
    /// The egress proxy refuses where the request goes: never forwarded.
    Egress,
    /// Rate limits and load shedding: never forwarded.
    Capacity,
    /// The upstream failed after the gateway forwarded the request: not a
    /// decision.
    Upstream,
}

impl Class {
    /// The class's label in `mfagate_reason_info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::Rule(_) => "rule",
            Self::Request => "request",
            Self::Egress => "egress",
            Self::Capacity => "capacity",
            Self::Upstream => "upstream",
        }
    }
}

macro_rules! reasons {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $code:literal, $status:ident, $class:expr, short $short:literal,
            $description:literal;
    )*) => {
        /// Why a request was not forwarded (or not answered by the upstream):
        /// the stable, documented reason codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            pub const ALL: [Reason; [$(Reason::$variant),*].len()] = [$(Self::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $code, )* }
            }

            pub fn status(self) -> StatusCode {
                match self { $( Self::$variant => StatusCode::$status, )* }
            }

            pub fn class(self) -> Class {
                match self { $( Self::$variant => $class, )* }
            }

            /// The human-readable `description` of the error body.
            pub fn description(self) -> &'static str {
                match self { $( Self::$variant => $description, )* }
            }

            /// A short `error_description` for `WWW-Authenticate` (RFC 6750
            /// §3: no quote or backslash); empty when the answer has no
            /// token challenge to describe.
            pub fn short(self) -> &'static str {
                match self { $( Self::$variant => $short, )* }
            }
        }
    };
}

use Class::{Capacity, Credential, Egress, Request, Upstream};

reasons! {
    MissingToken = "missing_token", UNAUTHORIZED, Credential, short "",
        "A bearer token is required: send 'Authorization: Bearer <access token>'.";
    LegacyAuth = "legacy_auth", UNAUTHORIZED, Class::Rule(Rule::LegacyAuth), short "",
        "Legacy authentication (Basic, NTLM, Negotiate, Digest, WS-Trust) cannot prove multi-factor authentication and is blocked. Use an OAuth access token obtained through the Secure Application Model.";
    MalformedToken = "malformed_token", UNAUTHORIZED, Credential, short "malformed token",
        "The bearer token is not a well-formed JSON Web Token, or the request's credentials are ambiguous (more than one Authorization header or credential).";
    DisallowedAlg = "disallowed_alg", UNAUTHORIZED, Credential, short "algorithm not allowed",
        "The token's signing algorithm is not allowed.";
    UnknownKey = "unknown_key", UNAUTHORIZED, Credential, short "unknown signing key",
        "The token is signed with a key that is not in the identity provider's key set.";
    BadSignature = "bad_signature", UNAUTHORIZED, Credential, short "invalid signature",
        "The token's signature is not valid.";
    BadIssuer = "bad_issuer", UNAUTHORIZED, Credential, short "issuer not accepted",
        "The token's issuer is not an accepted Microsoft Entra issuer for the token's tenant.";
    BadAudience = "bad_audience", UNAUTHORIZED, Credential, short "audience not accepted",
        "The token was not issued for this API.";
    Expired = "expired", UNAUTHORIZED, Credential, short "token expired",
        "The token has expired.";
    NotYetValid = "not_yet_valid", UNAUTHORIZED, Credential, short "token not yet valid",
        "The token is not valid yet.";
    MfaRequired = "mfa_required", UNAUTHORIZED, Class::Rule(Rule::Mfa), short "MFA required",
        "Multi-factor authentication is required: the token's amr claim does not show MFA. Sign in interactively with MFA and use the Secure Application Model (no password flows).";
    TenantNotAllowed = "tenant_not_allowed", FORBIDDEN, Credential, short "tenant not allowed",
        "The token's tenant is not allowed by this gateway.";
    AppOnlyNotAllowed = "app_only_not_allowed", FORBIDDEN, Class::Rule(Rule::AppOnly), short "app-only token not allowed",
        "App-only tokens are not allowed on this route; use app+user authentication with MFA.";
    PublicClient = "public_client", FORBIDDEN, Class::Rule(Rule::PublicClients), short "public client not allowed",
        "Tokens issued to public client applications are not allowed; use a confidential application (Secure Application Model).";
    AppNotAllowed = "app_not_allowed", FORBIDDEN, Class::Rule(Rule::AllowedApps), short "application not allowed",
        "The calling application is not allowed on this route.";
    AppDenied = "app_denied", FORBIDDEN, Class::Rule(Rule::DeniedApps), short "application denied",
        "The calling application is denied on this route: public tools for scripted sign-ins with a user's credentials are not part of the Secure Application Model.";
    CertificateRequired = "certificate_required", FORBIDDEN, Class::Rule(Rule::CertificateClient), short "certificate credential required",
        "The calling application must authenticate with a certificate (appidacr or azpacr 2), not a client secret or no credential.";
    MfaUnprovableV2 = "mfa_unprovable_v2", UNAUTHORIZED, Class::Rule(Rule::Mfa), short "MFA required, v2 token has no amr",
        "Multi-factor authentication is required, and a v2.0 access token cannot prove it: v2.0 tokens carry no amr claim. Request a v1.0 token for this API.";
    ForeignTenantNotAllowed = "foreign_tenant_not_allowed", FORBIDDEN, Class::Rule(Rule::PartnerTenants), short "foreign tenant not allowed",
        "The user belongs to another tenant (a guest or delegated admin) that is not one of the partner's tenants.";
    CustomerNotAllowed = "customer_not_allowed", FORBIDDEN, Class::Rule(Rule::Customers), short "customer not allowed",
        "The partner has no admin relationship with this customer tenant.";
    RelationshipExpired = "relationship_expired", FORBIDDEN, Class::Rule(Rule::Customers), short "customer relationship expired",
        "The partner's admin relationship with this customer tenant has ended.";
    PrivilegedRole = "privileged_role", FORBIDDEN, Class::Rule(Rule::DenyRoles), short "privileged role",
        "The token carries a directory role this route denies (e.g. Global Administrator): use a least-privileged role.";
    PasswordGrant = "password_grant", FORBIDDEN, Class::Rule(Rule::LegacyAuth), short "",
        "The resource owner password credentials grant cannot perform multi-factor authentication and is blocked. Use the authorization code flow with MFA (Secure Application Model).";
    /// Our fault, not the caller's: automation should retry, not re-authenticate.
    KeysUnavailable = "keys_unavailable", SERVICE_UNAVAILABLE, Credential, short "",
        "The gateway cannot verify tokens right now: its signing keys are unavailable. Retry later.";
    NoRoute = "no_route", NOT_FOUND, Request, short "",
        "No route is configured for this host and path.";
    BadRequest = "bad_request", BAD_REQUEST, Request, short "",
        "The request is malformed or ambiguous and was not forwarded.";
    UpstreamUnavailable = "upstream_unavailable", BAD_GATEWAY, Upstream, short "",
        "The upstream service could not be reached.";
    UpstreamTimeout = "upstream_timeout", GATEWAY_TIMEOUT, Upstream, short "",
        "The upstream service did not answer in time.";
    AudienceHostMismatch = "audience_host_mismatch", FORBIDDEN, Egress, short "token audience names another host",
        "The token's audience names another service: through the egress proxy a token may only be sent to the host its audience names.";
    MisdirectedRequest = "misdirected_request", MISDIRECTED_REQUEST, Egress, short "",
        "The request names another host than the tunnel was opened to: the CONNECT target, the TLS server name and Host must agree.";
    EgressDenied = "egress_denied", FORBIDDEN, Egress, short "",
        "The egress proxy does not allow connections to this host or port.";
    TlsRequired = "tls_required", FORBIDDEN, Egress, short "",
        "This host is only reachable over TLS (CONNECT); plain HTTP to it is refused.";
    ProxyAuthRequired = "proxy_auth_required", PROXY_AUTHENTICATION_REQUIRED, Egress, short "",
        "The egress proxy requires its own credentials: send 'Proxy-Authorization: Basic <credentials>'.";
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, Capacity, short "",
        "Too many requests. Retry after the number of seconds in the Retry-After header.";
    /// Shedding load: the caller should retry after `Retry-After`.
    Overloaded = "overloaded", SERVICE_UNAVAILABLE, Capacity, short "",
        "The gateway is at its capacity limit. Retry after the number of seconds in the Retry-After header.";
}

impl Reason {
    /// The reason with this code, e.g. from a decision log.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == code)
    }

    /// The rule this reason is a failure of, when it is one.
    pub fn rule(self) -> Option<Rule> {
        match self.class() {
            Class::Rule(rule) => Some(rule),
            Credential | Request | Egress | Capacity | Upstream => None,
        }
    }

    /// True when report-only mode may forward a request refused for this
    /// reason (under the conditions of its class).
    pub fn waivable(self) -> bool {
        matches!(self.class(), Credential | Class::Rule(_))
    }

    /// A reason the gateway decides on (everything but upstream failures).
    pub fn is_decision(self) -> bool {
        self.class() != Upstream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()), "{}", r.as_str());
            assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert!(!r.description().is_empty());
            assert!(!r.short().contains(['"', '\\']));
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("nope"), None);
    }

    #[test]
    fn only_credential_and_rule_failures_are_waivable() {
        for r in Reason::ALL {
            let expected = matches!(r.class(), Class::Credential | Class::Rule(_));
            assert_eq!(r.waivable(), expected, "{}", r.as_str());
        }
        for r in [
            Reason::NoRoute,
            Reason::BadRequest,
            Reason::AudienceHostMismatch,
            Reason::MisdirectedRequest,
            Reason::EgressDenied,
            Reason::TlsRequired,
            Reason::ProxyAuthRequired,
            Reason::RateLimited,
            Reason::Overloaded,
        ] {
            assert!(!r.waivable(), "{} must never be waived", r.as_str());
        }
    }

    #[test]
    fn every_rule_has_a_reason() {
        for rule in Rule::ALL {
            assert!(Reason::ALL.iter().any(|r| r.rule() == Some(rule)), "{}", rule.as_str());
            assert_eq!(Rule::parse(rule.as_str()), Some(rule));
        }
        assert_eq!(Reason::PasswordGrant.rule(), Some(Rule::LegacyAuth));
        assert_eq!(Reason::MfaUnprovableV2.rule(), Some(Rule::Mfa));
        assert_eq!(Reason::Expired.rule(), None);
    }
}
