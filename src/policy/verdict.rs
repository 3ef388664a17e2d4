//! What the rules say: one rule's verdict on one token, what they read,
//! and the decision with its denial.

use super::stepup::StepUp;
use crate::auth::claims::Claims;
use crate::reason::Reason;

/// A denial, and the claims challenge that lets the client step up, when one can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("denied: {}", reason.as_str())]
pub struct Denial {
    pub reason: Reason,
    pub step_up: Option<StepUp>,
}

impl From<Reason> for Denial {
    fn from(reason: Reason) -> Self {
        Self { reason, step_up: None }
    }
}

/// One rule's verdict on one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The route does not configure the rule.
    Off,
    /// The rule does not concern this token (e.g. MFA on an app-only token).
    Skip,
    Pass,
    Fail(Reason),
}

/// What the rules see: the token's claims and facts about the request.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub claims: &'a Claims,
    /// False when the signature was not checked (`verify_signature = false`).
    pub verified: bool,
    /// Lower-case `{customer-id}` of a Partner Center path, when present.
    pub customer: Option<&'a str>,
}

/// The outcome for a request whose token reached the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A rule failed, but an exemption covers the principal: forwarded.
    Exempt(Reason),
    /// Only report-only rules failed: forwarded and recorded.
    WouldDeny(Reason),
    Deny(Denial),
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Exempt(_) => "exempt",
            Self::WouldDeny(_) => "would_deny",
            Self::Deny(_) => "deny",
        }
    }

    pub fn reason(&self) -> Option<Reason> {
        match self {
            Self::Allow => None,
            Self::Exempt(r) | Self::WouldDeny(r) => Some(*r),
            Self::Deny(d) => Some(d.reason),
        }
    }
}
