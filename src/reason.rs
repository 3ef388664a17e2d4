//! The vocabulary of decisions: why a request was not forwarded (`Reason`),
//! the rules of the policy (`Rule`) and the request checks that refuse a
//! request as `bad_request` (`RequestRule`). Every property of a reason (its
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
    /// Compute-abuse signals on ARM requests (`[routes.compute_guard]`).
    ComputeGuard,
    // Token requests on a login route.
    DenyGrants,
    RequireClientAssertion,
    AllowedTokenClients,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
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
        Self::ComputeGuard,
        Self::DenyGrants,
        Self::RequireClientAssertion,
        Self::AllowedTokenClients,
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
            Self::ComputeGuard => "compute_guard",
            Self::DenyGrants => "deny_grants",
            Self::RequireClientAssertion => "require_client_assertion",
            Self::AllowedTokenClients => "allowed_token_clients",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// False for the rules no token is ever judged by (`check-token`
    /// leaves them out): those of a login route's token requests, and
    /// `compute_guard`, which reads request bodies.
    pub fn judges_tokens(self) -> bool {
        !matches!(
            self,
            Self::ComputeGuard | Self::DenyGrants | Self::RequireClientAssertion | Self::AllowedTokenClients
        )
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
    /// The shared rate-limit store did not answer and `on_store_error = "deny"`.
    RateLimitStoreUnavailable = "rate_limit_store_unavailable", SERVICE_UNAVAILABLE, Capacity, short "",
        "The gateway cannot check its rate limits right now: their shared store did not answer. Retry after the number of seconds in the Retry-After header.";
    /// Shedding load: the caller should retry after `Retry-After`.
    Overloaded = "overloaded", SERVICE_UNAVAILABLE, Capacity, short "",
        "The gateway is at its capacity limit. Retry after the number of seconds in the Retry-After header.";
    // compute_guard: ARM requests shaped like crypto-mining compute.
    ComputeAbuseSuspected = "compute_abuse_suspected", FORBIDDEN, Class::Rule(Rule::ComputeGuard), short "compute request flagged",
        "The request creates compute shaped like Azure fraud (GPU or HPC sizes, many vCPUs, many regions in an hour, a quota increase, or a body that cannot be read) and was stopped for review. Ask the partner's security contact to confirm it.";
    ComputeBodyTooLarge = "compute_body_too_large", PAYLOAD_TOO_LARGE, Class::Rule(Rule::ComputeGuard), short "",
        "The body of this ARM compute request is larger than the gateway reads for inspection (compute_guard.inspect_body_limit) and was not forwarded.";
    // Token requests on a login route (the grant policy).
    GrantNotAllowed = "grant_not_allowed", FORBIDDEN, Class::Rule(Rule::DenyGrants), short "",
        "This grant type is not allowed through this gateway (e.g. the device code flow, which phishing abuses). Use the authorization code flow with MFA (Secure Application Model).";
    ClientSecretNotAllowed = "client_secret_not_allowed", FORBIDDEN, Class::Rule(Rule::RequireClientAssertion), short "",
        "The application authenticates to the token endpoint with a client secret; this gateway requires a certificate (a client_assertion of type urn:ietf:params:oauth:client-assertion-type:jwt-bearer), as the Secure Application Model recommends.";
    TokenClientNotAllowed = "token_client_not_allowed", FORBIDDEN, Class::Rule(Rule::AllowedTokenClients), short "",
        "This application (client_id) may not request tokens through this gateway.";
}

macro_rules! request_rules {
    ($( $variant:ident = $name:literal, $sentence:literal; )*) => {
        /// The request check that refused a request as `bad_request`: a
        /// short, stable name for the answer, the decision log and
        /// `check-token` (never the request's own text), and a sentence for
        /// people. A bounded set, so it may label metrics.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RequestRule {
            $( $variant, )*
        }

        impl RequestRule {
            pub const ALL: [RequestRule; [$(RequestRule::$variant),*].len()] = [$(Self::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $name, )* }
            }

            /// What the request did, in words.
            pub fn sentence(self) -> &'static str {
                match self { $( Self::$variant => $sentence, )* }
            }
        }
    };
}

request_rules! {
    // The raw bytes of an HTTP/1 connection (the listener's inspector) and
    // the framing headers (RFC 9112 §6): a proxy and an upstream reading them
    // differently is request smuggling.
    BareLf = "bare_lf", "a line ending in LF without CR";
    BareCr = "bare_cr", "a CR not followed by LF in the request head";
    FoldedHeader = "folded_header", "a folded (obs-fold) header line";
    SpaceBeforeColon = "space_before_colon", "whitespace between a header name and its colon";
    BadChunkSize = "bad_chunk_size", "a chunk size that is not a hexadecimal number";
    BadChunkEnd = "bad_chunk_end", "chunk data not followed by CRLF";
    ChunkLineTooLong = "chunk_line_too_long", "a chunk-size line longer than 1 KiB";
    ChunkExtensionsTooLong = "chunk_extensions_too_long", "more than 1 KiB of chunk extensions";
    TrailersTooLong = "trailers_too_long", "a trailer section longer than the header limit";
    TeAndContentLength = "te_and_content_length", "both Transfer-Encoding and Content-Length";
    TeNotChunked = "te_not_chunked", "a Transfer-Encoding other than one chunked";
    TeOutsideHttp11 = "te_outside_http11", "Transfer-Encoding outside HTTP/1.1";
    RepeatedContentLength = "repeated_content_length", "more than one Content-Length";
    BadContentLength = "bad_content_length", "a Content-Length that is not a number";
    BrokenBody = "broken_body", "the request body broke off or broke its framing";
    // Headers.
    TooManyHeaders = "too_many_headers", "more header fields than server.max_headers";
    UnderscoreHeader = "underscore_header", "a header name spelled with underscores for a field the gateway checks";
    ConnectionNamesCheckedField = "connection_names_checked_field", "a Connection header naming a field the gateway checks";
    MissingHost = "missing_host", "an HTTP/1.1 request without Host";
    RepeatedHost = "repeated_host", "more than one Host";
    BadHost = "bad_host", "a Host that is not host[:port]";
    Userinfo = "userinfo", "user information in the request target or Host";
    HostMismatch = "host_mismatch", "a Host that differs from the request target's authority";
    ConnectMethod = "connect_method", "CONNECT on the reverse-proxy listener";
    // The path.
    PathNotAbsolute = "path_not_absolute", "a request target that is not an absolute path";
    Backslash = "backslash", "a backslash in the path";
    ControlCharacter = "control_character", "a control character in the path";
    BadPercentEncoding = "bad_percent_encoding", "a '%' not followed by two hexadecimal digits";
    EncodedSlash = "encoded_slash", "an encoded slash (%2F) in the path";
    EncodedBackslash = "encoded_backslash", "an encoded backslash (%5C) in the path";
    DoubleEncoding = "double_encoding", "double percent-encoding (%25 then a hexadecimal digit)";
    EncodedControlCharacter = "encoded_control_character", "an encoded control character in the path";
    DotSegment = "dot_segment", "a dot segment ('.' or '..', also with parameters) in the path";
    TrailingDotOrSpace = "trailing_dot_or_space", "a path segment ending with a dot or a space";
    PathNotUtf8 = "path_not_utf8", "a path that is not UTF-8 once percent-decoded";
    UnbuildableTarget = "unbuildable_target", "a request target that cannot be rebuilt to forward";
    BodyUnavailable = "body_unavailable", "a request body that was taken before it could be forwarded";
    // Credentials outside Authorization and x-ms-authorization-auxiliary.
    StrayAccessToken = "stray_access_token", "a bearer token in the access_token query parameter";
    TokenInCookie = "token_in_cookie", "a bearer token in a cookie";
    // Partner Center's {customer-id}.
    NotACustomerId = "not_a_customer_id", "the segment after customers is neither a customer id nor a collection";
    BasePathCustomer = "base_path_customer", "the route's upstream base path names a customer in a non-canonical form";
    // Token requests on a login route.
    TokenRequestEncoded = "token_request_encoded", "a content-encoded token request body";
    TokenRequestTooLarge = "token_request_too_large", "a token request body larger than 64 KiB";
    TokenRequestUnreadable = "token_request_unreadable", "a token request body that could not be read";
    TokenRequestTimeout = "token_request_timeout", "a token request body that did not arrive in time";
    TokenRequestContentType = "token_request_content_type", "a token request Content-Type that is repeated, not text or malformed";
    TokenRequestCharset = "token_request_charset", "a token request charset other than UTF-8, US-ASCII or ISO-8859-1";
    TokenRequestMultipart = "token_request_multipart", "a multipart token request without one boundary or that does not parse";
    TokenRequestTransferEncoding = "token_request_transfer_encoding", "a multipart part with a transfer encoding";
    TokenRequestAuthorization = "token_request_authorization", "a token request Authorization header that is not text or names no scheme";
    TokenRequestJson = "token_request_json", "a token request body declared or shaped as JSON that is not one JSON object";
    TokenRequestNoGrant = "token_request_no_grant", "a body sent to a token endpoint in which no reading finds a grant_type";
    // The egress proxy's own request line.
    BadProxyTarget = "bad_proxy_target", "a proxy target that is not host:port or not a host name";
    NotAProxyRequest = "not_a_proxy_request", "neither CONNECT nor an absolute http:// URL";
    HttpsWithoutConnect = "https_without_connect", "an https:// URL sent without CONNECT";
    // ARM compute requests read for compute_guard.
    ComputeBodyTimeout = "compute_body_timeout", "an ARM compute request body that did not arrive within compute_guard.inspect_body_timeout";
    ComputeBodyUnreadable = "compute_body_unreadable", "an ARM compute request body that broke off while it was read";
}

impl std::fmt::Display for RequestRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
mod tests;
