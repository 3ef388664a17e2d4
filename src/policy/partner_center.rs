//! Microsoft's partner security requirements as rules on a token's claims:
//! app+user calls must prove MFA in `amr` and come from a confidential client
//! (the Secure Application Model); app-only calls only where a route allows them.

use super::{DenyReason, RoutePolicy};
use crate::auth::claims::Claims;

/// Who the token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// Client credentials: an application acting as itself.
    AppOnly,
    /// App+user: an application acting for a signed-in user.
    Delegated,
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

/// The rules in order: principal type, then (app+user) MFA and client type,
/// then the application allowlist.
pub fn evaluate(policy: &RoutePolicy, claims: &Claims) -> Result<(), DenyReason> {
    match classify(claims) {
        Principal::AppOnly if !policy.allow_app_only => return Err(DenyReason::AppOnlyNotAllowed),
        Principal::AppOnly => {}
        Principal::Delegated => {
            if policy.require_mfa && !proves_mfa(claims, &policy.accepted_amr) {
                return Err(DenyReason::MfaRequired);
            }
            if !policy.allow_public_clients && !ClientType::of(claims).is_confidential() {
                return Err(DenyReason::PublicClient);
            }
        }
    }
    if !policy.allowed_apps.is_empty() {
        let allowed = claims.app_id().is_some_and(|id| policy.allowed_apps.iter().any(|a| a.eq_ignore_ascii_case(id)));
        if !allowed {
            return Err(DenyReason::AppNotAllowed);
        }
    }
    Ok(())
}

/// `amr` must hold an accepted method as a whole element: `wiaormfa`
/// ("Windows or MFA") does not prove MFA, and neither does a substring.
fn proves_mfa(claims: &Claims, accepted: &[String]) -> bool {
    claims.amr.as_ref().is_some_and(|amr| amr.iter().any(|m| accepted.iter().any(|a| a == m)))
}

#[cfg(test)]
mod tests;
