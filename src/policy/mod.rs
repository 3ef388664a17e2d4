//! Authorisation: a pure function of the route's policy, what was found out
//! about the request (`decide::Facts`: findings, every token's claims or
//! failure, the customer in its path) and the time. No I/O, no clock, no
//! logging, so table tests cover every branch, and the gateway, `mfagate
//! replay` and `mfagate check-token` share one `decide`. `Authorized` is
//! the proof `forward` requires; only this module builds one.
//!
//! Rule families, in evaluation order: legacy authentication (`legacy`),
//! the Secure Application Model (`sam`, MFA in `partner_center`), AOBO/GDAP
//! (`gdap`); then exemptions and, for missing MFA, a step-up challenge. On
//! login routes, the grant policy of token requests (`grants`).

pub mod compute;
pub mod customer_id;
pub mod decide;
mod evaluate;
pub mod exemptions;
pub mod gdap;
pub mod grants;
pub mod legacy;
pub mod mode;
pub mod partner_center;
pub mod relationships;
mod route;
pub mod sam;
pub mod stepup;
mod verdict;

pub use crate::reason::{Reason, Rule};
pub use decide::{Facts, Outcome, Presented, Subject, decide};
pub use evaluate::{Evaluation, evaluate};
pub use exemptions::{Exemption, Selector};
pub use mode::{Mode, Schedule};
pub use partner_center::{ClientType, Principal, TokenVersion, classify};
pub use relationships::Customers;
pub use route::{RouteKind, RoutePolicy};
pub use stepup::StepUp;
pub use verdict::{Check, Decision, Denial, Input};

/// Proof that a request may be forwarded: every token it carries passed
/// the route's rules, an exemption covers it, or what failed runs in
/// report-only mode. Only this module builds one, and `forward` requires it.
#[derive(Debug)]
pub struct Authorized {
    waived: bool,
    subject: Option<Subject>,
}

impl Authorized {
    /// True when the request is forwarded only because what failed is report-only.
    pub fn is_waived(&self) -> bool {
        self.waived
    }

    /// Who the request speaks for, from claims whose signature verified;
    /// `None` when no verified token was presented. This is what may key
    /// anything that affects other callers (rate limits).
    pub fn subject(&self) -> Option<&Subject> {
        self.subject.as_ref()
    }
}

/// Turns the outcome into the proof `forward` requires, or the denial.
pub fn authorize(outcome: &Outcome<'_>, facts: &Facts) -> Result<Authorized, Denial> {
    let subject = facts.subject();
    match &outcome.decision {
        Decision::Allow | Decision::Exempt(_) => Ok(Authorized { waived: false, subject }),
        Decision::WouldDeny(_) => Ok(Authorized { waived: true, subject }),
        Decision::Deny(denial) => Err(denial.clone()),
    }
}
