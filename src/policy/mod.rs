//! Authorisation: a pure function of the route's policy and a verified
//! token's claims. No I/O, no clock, no logging, so a table test covers every
//! branch. `Authorized` is the proof `forward` requires; only this module
//! builds one.

pub mod partner_center;

use crate::auth::VerifiedToken;
pub use partner_center::{ClientType, Principal, classify};

/// Whether a route blocks what its policy rejects or only records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    ReportOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::ReportOnly => "report-only",
        }
    }
}

/// A route's rules, compiled from `[[routes]]`.
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    pub require_mfa: bool,
    pub accepted_amr: Vec<String>,
    pub allow_app_only: bool,
    pub allow_public_clients: bool,
    /// Lower-case application ids; empty means any confidential client.
    pub allowed_apps: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DenyReason {
    #[error("no accepted MFA method in amr")]
    MfaRequired,
    #[error("app-only token not allowed")]
    AppOnlyNotAllowed,
    #[error("public client not allowed")]
    PublicClient,
    #[error("application not allowed")]
    AppNotAllowed,
}

/// Proof that a request may be forwarded: its token passed the route's
/// policy, or the route is report-only and the failure was recorded.
#[derive(Debug)]
pub struct Authorized {
    waived: bool,
}

impl Authorized {
    /// True when the request is forwarded only because the route is report-only.
    pub fn is_waived(&self) -> bool {
        self.waived
    }
}

/// Applies the route's rules to a verified token.
pub fn authorize(policy: &RoutePolicy, token: &VerifiedToken) -> Result<Authorized, DenyReason> {
    partner_center::evaluate(policy, token.claims())?;
    Ok(Authorized { waived: false })
}

/// In report-only mode, lets through a request that enforce mode would reject.
pub fn waive(mode: Mode) -> Option<Authorized> {
    match mode {
        Mode::ReportOnly => Some(Authorized { waived: true }),
        Mode::Enforce => None,
    }
}
