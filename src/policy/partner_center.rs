//! Partner Center's MFA requirement, and how a token is classified: app+user
//! calls must prove MFA in `amr`; app-only calls are not checked for MFA.

use super::{Check, Reason, RoutePolicy};
use crate::auth::claims::Claims;

/// Who the token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// Client credentials: an application acting as itself.
    AppOnly,
    /// App+user: an application acting for a signed-in user.
    Delegated,
}

impl Principal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AppOnly => "app_only",
            Self::Delegated => "app_user",
        }
    }
}

/// How the client application authenticated (`appidacr` / `azpacr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Public,
    Secret,
    Certificate,
    Unknown,
}

impl ClientType {
    pub fn of(claims: &Claims) -> Self {
        match claims.client_auth() {
            Some("0") => Self::Public,
            Some("1") => Self::Secret,
            Some("2") => Self::Certificate,
            _ => Self::Unknown,
        }
    }

    pub fn is_confidential(self) -> bool {
        matches!(self, Self::Secret | Self::Certificate)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Secret => "secret",
            Self::Certificate => "certificate",
            Self::Unknown => "unknown",
        }
    }

    /// The `appidacr` value this type stands for.
    pub fn acr(self) -> Option<&'static str> {
        match self {
            Self::Public => Some("0"),
            Self::Secret => Some("1"),
            Self::Certificate => Some("2"),
            Self::Unknown => None,
        }
    }
}

/// Entra's access-token format: v1 tokens carry `amr`, v2 tokens never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVersion {
    V1,
    V2,
    Unknown,
}

impl TokenVersion {
    /// `ver` when present, else the issuer's form.
    pub fn of(claims: &Claims) -> Self {
        match claims.ver.as_deref() {
            Some("1.0") => Self::V1,
            Some("2.0") => Self::V2,
            Some(_) => Self::Unknown,
            None => match claims.iss.as_deref() {
                Some(iss) if iss.ends_with("/v2.0") => Self::V2,
                Some(iss) if iss.starts_with("https://sts.windows.net/") => Self::V1,
                _ => Self::Unknown,
            },
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1.0",
            Self::V2 => "2.0",
            Self::Unknown => "unknown",
        }
    }
}

/// `idtyp` decides when present (Entra calls it the most accurate signal).
/// Otherwise a token with `scp` is app+user, since Entra includes `scp`
/// "only for user tokens"; one without is app-only (`roles`, when present,
/// are the application's permissions; user tokens may carry `roles` too).
pub fn classify(claims: &Claims) -> Principal {
    match claims.idtyp.as_deref() {
        Some("app") => Principal::AppOnly,
        Some("user") => Principal::Delegated,
        _ if claims.scp.is_some() => Principal::Delegated,
        _ => Principal::AppOnly,
    }
}

/// App+user tokens must show an accepted method in `amr`. A v2 token has no
/// `amr` at all (Microsoft has no v2 replacement), so it cannot prove MFA
/// and gets a reason that says so.
pub fn mfa(policy: &RoutePolicy, claims: &Claims, principal: Principal) -> Check {
    if !policy.require_mfa {
        return Check::Off;
    }
    if principal == Principal::AppOnly {
        return Check::Skip;
    }
    if proves_mfa(claims, &policy.accepted_amr) {
        return Check::Pass;
    }
    if claims.amr.is_none() && TokenVersion::of(claims) == TokenVersion::V2 {
        return Check::Fail(Reason::MfaUnprovableV2);
    }
    Check::Fail(Reason::MfaRequired)
}

/// `amr` must hold an accepted method as a whole element: `wiaormfa`
/// ("Windows or MFA") does not prove MFA, and neither does a substring.
pub fn proves_mfa(claims: &Claims, accepted: &[String]) -> bool {
    claims.amr.as_ref().is_some_and(|amr| amr.iter().any(|m| accepted.iter().any(|a| a == m)))
}

/// `amr` values that Partner Center's own compliance summary counts as MFA
/// (`GET /v1/applicationmfaadoptionstatus`), also the default `accepted_amr`.
pub const PARTNER_CENTER_MFA_AMR: [&str; 2] = ["mfa", "ngcmfa"];

/// Partner Center's measure of an app+user request, whatever a route
/// accepts: the `amr` holds `mfa` or `ngcmfa`. The metrics and the
/// compliance report count by it, so that both reconcile with Partner
/// Center's figures.
pub fn counts_as_mfa(amr: Option<&[String]>) -> bool {
    amr.is_some_and(|amr| amr.iter().any(|m| PARTNER_CENTER_MFA_AMR.contains(&m.as_str())))
}

#[cfg(test)]
mod tests;
