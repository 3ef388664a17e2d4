//! The decision: one pure function from what the gateway found out about a
//! request (`Facts`) to what happens to it. The gateway, `mfagate replay`
//! and `mfagate check-token` all call `decide`, so their verdicts cannot
//! drift apart.
//!
//! Each failure is judged under the mode of the unit it belongs to:
//! - a rule's failure (`legacy_auth` found in the request, or any rule on a
//!   token's claims) under that rule's own mode;
//! - a credential that cannot be checked (no token, an ambiguous or
//!   unverifiable one, the wrong issuer, audience or lifetime) under the
//!   strictest mode of the route's rules: refused while any rule the route
//!   configures enforces, since whether the request would pass that rule
//!   cannot be known.
//!
//! The first failure that enforces denies; otherwise the first report-only
//! failure is recorded and the request forwarded; an exemption covers only
//! the rules' failures on the token of the principal it names.

use std::sync::Arc;

use super::{Decision, Denial, Evaluation, Input, Mode, Reason, RoutePolicy, evaluate};
use crate::auth::claims::Claims;
use crate::reason::Class;

/// One token the request presented, after the token checks.
#[derive(Debug, Clone)]
pub enum Presented {
    /// The token passed the token checks; `verified`: its signature was
    /// checked (false on `verify_signature = false` routes).
    Checked { claims: Arc<Claims>, verified: bool },
    /// A token check failed (or no usable token was sent). `claims` are
    /// there only when the signature verified, for the log.
    Failed { reason: Reason, claims: Option<Arc<Claims>> },
}

impl Presented {
    pub fn failed(reason: Reason) -> Self {
        Self::Failed { reason, claims: None }
    }

    /// The claims, when they can be read (verified, or decoded on a
    /// `verify_signature = false` route).
    pub fn claims(&self) -> Option<&Arc<Claims>> {
        match self {
            Self::Checked { claims, .. } => Some(claims),
            Self::Failed { claims, .. } => claims.as_ref(),
        }
    }

    /// Whether the claims' signature was verified.
    pub fn verified(&self) -> bool {
        match self {
            Self::Checked { verified, .. } => *verified,
            // Failed tokens carry claims only when their signature verified.
            Self::Failed { claims, .. } => claims.is_some(),
        }
    }

    pub fn error(&self) -> Option<Reason> {
        match self {
            Self::Checked { .. } => None,
            Self::Failed { reason, .. } => Some(*reason),
        }
    }
}

/// Everything the decision reads about a request.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Rule failures found in the request itself, before any token: a legacy
    /// scheme in `Authorization`, a legacy Exchange endpoint reached without
    /// a bearer token, a password grant or WS-Trust endpoint on a login route.
    pub findings: Vec<Reason>,
    /// The bearer token of `Authorization`; `None` on login routes, which
    /// check token requests, not tokens.
    pub token: Option<Presented>,
    /// ARM's auxiliary tokens, each held to the same checks as the main one.
    pub auxiliary: Vec<Presented>,
    /// Lower-case `{customer-id}` of a Partner Center path.
    pub customer: Option<String>,
}

impl Facts {
    /// The verified principal of the main token, if any.
    pub fn subject(&self) -> Option<Subject> {
        let token = self.token.as_ref()?;
        token.verified().then(|| token.claims().map(|c| Subject(Arc::clone(c)))).flatten()
    }
}

/// Who a request speaks for, from claims whose signature verified.
#[derive(Debug, Clone)]
pub struct Subject(Arc<Claims>);

impl Subject {
    pub fn oid(&self) -> Option<&str> {
        self.0.oid.as_deref()
    }

    pub fn app(&self) -> Option<&str> {
        self.0.app_id()
    }

    pub fn tenant(&self) -> Option<&str> {
        self.0.tid.as_deref()
    }
}

/// The decision, and how the main token fared against each rule.
#[derive(Debug, Clone)]
pub struct Outcome<'p> {
    pub decision: Decision,
    /// The rules' verdicts on the main token, when its claims reached them.
    pub evaluation: Option<Evaluation<'p>>,
}

/// Collects the first failure of each kind, in the order found.
#[derive(Default)]
struct Verdicts {
    deny: Option<Denial>,
    report: Option<Reason>,
    exempt: Option<Reason>,
}

impl Verdicts {
    fn fail(&mut self, reason: Reason, mode: Mode) {
        match mode {
            Mode::Enforce => {
                self.deny.get_or_insert(reason.into());
            }
            Mode::ReportOnly => {
                self.report.get_or_insert(reason);
            }
        }
    }

    fn decided(&mut self, decision: &Decision) {
        match decision {
            Decision::Allow => {}
            Decision::Deny(denial) => {
                self.deny.get_or_insert_with(|| denial.clone());
            }
            Decision::WouldDeny(reason) => {
                self.report.get_or_insert(*reason);
            }
            Decision::Exempt(reason) => {
                self.exempt.get_or_insert(*reason);
            }
        }
    }

    fn decision(self) -> Decision {
        match (self.deny, self.report, self.exempt) {
            (Some(denial), _, _) => Decision::Deny(denial),
            (None, Some(reason), _) => Decision::WouldDeny(reason),
            (None, None, Some(reason)) => Decision::Exempt(reason),
            (None, None, None) => Decision::Allow,
        }
    }
}

/// The decision on a request with these facts under `policy` at `now`.
pub fn decide<'p>(policy: &'p RoutePolicy, facts: &Facts, now: i64) -> Outcome<'p> {
    let mut verdicts = Verdicts::default();
    for &reason in &facts.findings {
        verdicts.fail(reason, mode_of(policy, reason, now));
    }
    let mut evaluation = None;
    if let Some(token) = &facts.token {
        if let Some(e) = judge_token(policy, token, facts, now, &mut verdicts) {
            verdicts.decided(&e.decision);
            evaluation = Some(e);
        }
    }
    for token in &facts.auxiliary {
        if let Some(e) = judge_token(policy, token, facts, now, &mut verdicts) {
            // A step-up challenge would ask for the main token again.
            let decision = match e.decision {
                Decision::Deny(denial) => Decision::Deny(denial.reason.into()),
                other => other,
            };
            verdicts.decided(&decision);
        }
    }
    Outcome { decision: verdicts.decision(), evaluation }
}

/// A failed token is judged as a credential failure; a checked one by the
/// rules (returned, for the caller to fold in).
fn judge_token<'p>(
    policy: &'p RoutePolicy,
    token: &Presented,
    facts: &Facts,
    now: i64,
    verdicts: &mut Verdicts,
) -> Option<Evaluation<'p>> {
    match token {
        Presented::Failed { reason, .. } => {
            verdicts.fail(*reason, mode_of(policy, *reason, now));
            None
        }
        Presented::Checked { claims, verified } => {
            let input = Input { claims, verified: *verified, customer: facts.customer.as_deref() };
            Some(evaluate(policy, &input, now))
        }
    }
}

/// The mode a failure for `reason` is judged under at `now`.
pub fn mode_of(policy: &RoutePolicy, reason: Reason, now: i64) -> Mode {
    match reason.class() {
        Class::Rule(rule) => policy.mode(Some(rule), now),
        Class::Credential if policy.enforces_any(now) => Mode::Enforce,
        Class::Credential => Mode::ReportOnly,
        // Never waived.
        Class::Request | Class::Egress | Class::Capacity | Class::Upstream => Mode::Enforce,
    }
}
