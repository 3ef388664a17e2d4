//! Authorisation: a pure function of the route's policy, what was found out
//! about the request (`decide::Facts`: findings, every token's claims or
//! failure, the customer in its path) and the time. No I/O, no clock, no
//! logging, so table tests cover every branch, and the gateway, `mfagate
//! replay` and `mfagate check-token` share one `decide`. `Authorized` is
//! the proof `forward` requires; only this module builds one.
//!
//! Rule families, in evaluation order: legacy authentication (`legacy`),
//! the Secure Application Model (`sam`, MFA in `partner_center`), AOBO/GDAP
//! (`gdap`); then exemptions and, for missing MFA, a step-up challenge.

pub mod decide;
pub mod exemptions;
pub mod gdap;
pub mod legacy;
pub mod mode;
pub mod partner_center;
pub mod sam;
pub mod stepup;

use std::sync::Arc;

use crate::auth::claims::Claims;
pub use crate::reason::{Reason, Rule};
pub use decide::{Facts, Outcome, Presented, Subject, decide};
pub use exemptions::{Exemption, Selector};
pub use gdap::Customers;
pub use mode::{Mode, Schedule};
pub use partner_center::{ClientType, Principal, TokenVersion, classify};
pub use stepup::StepUp;

/// What a route fronts. It decides which tenant is "the customer" of a call
/// and which defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// The Partner Center API: the customer is `{customer-id}` in
    /// `/v1/customers/{customer-id}/...`.
    PartnerCenter,
    /// A customer tenant's API reached on behalf of the customer (Graph,
    /// ARM, Exchange): the customer is the token's `tid`.
    Aobo,
    /// Entra's token endpoint (egress): requests carry no bearer token; only
    /// the grant type is checked.
    Login,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PartnerCenter => "partner-center",
            Self::Aobo => "aobo",
            Self::Login => "login",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "partner-center" => Some(Self::PartnerCenter),
            "aobo" => Some(Self::Aobo),
            "login" => Some(Self::Login),
            _ => None,
        }
    }
}

/// A route's rules, compiled from `[[routes]]` (and the `[[exemptions]]`
/// that apply to it).
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    pub kind: RouteKind,
    pub schedule: Schedule,
    /// A rule's own mode, overriding the schedule; indexed by `Rule as usize`.
    pub rule_modes: [Option<Mode>; Rule::ALL.len()],
    /// False: claims are decoded without checking the signature (deny decisions only).
    pub verify_signature: bool,
    pub require_mfa: bool,
    pub accepted_amr: Vec<String>,
    pub allow_app_only: bool,
    pub allow_public_clients: bool,
    pub require_certificate_client: bool,
    /// Lower-case application ids; empty means any confidential client.
    pub allowed_apps: Vec<String>,
    /// Lower-case application ids that are always refused.
    pub denied_apps: Vec<String>,
    /// Lower-case tenant ids of the partner; a foreign principal must come from one.
    pub partner_tenants: Vec<String>,
    /// Customer tenants with their relationship end; `None` turns the rule off.
    pub customers: Option<Arc<Customers>>,
    /// Lower-case role template ids that deny a call when present in `wids`.
    pub deny_roles: Vec<String>,
    /// Conditional Access authentication context to ask for when MFA is missing.
    pub auth_context_id: Option<String>,
    pub exemptions: Vec<Exemption>,
}

impl Default for RoutePolicy {
    /// The strict Partner Center policy of the built-in configuration.
    fn default() -> Self {
        Self {
            kind: RouteKind::PartnerCenter,
            schedule: Schedule::ENFORCE,
            rule_modes: [None; Rule::ALL.len()],
            verify_signature: true,
            require_mfa: true,
            accepted_amr: vec!["mfa".into(), "ngcmfa".into()],
            allow_app_only: false,
            allow_public_clients: false,
            require_certificate_client: false,
            allowed_apps: Vec::new(),
            denied_apps: Vec::new(),
            partner_tenants: Vec::new(),
            customers: None,
            deny_roles: Vec::new(),
            auth_context_id: None,
            exemptions: Vec::new(),
        }
    }
}

impl RoutePolicy {
    /// The mode `rule` runs in at `now`: its own when set, else the route's.
    /// `None` stands for the token checks that are not a rule (signature,
    /// issuer, audience, lifetime), which follow the route.
    pub fn mode(&self, rule: Option<Rule>, now: i64) -> Mode {
        rule.and_then(|r| self.rule_modes[r as usize]).unwrap_or_else(|| self.schedule.mode_at(now))
    }

    /// True when the customer must be read from a Partner Center path.
    pub fn needs_path_customer(&self) -> bool {
        self.kind == RouteKind::PartnerCenter && self.customers.is_some()
    }

    /// False when the route turns `rule` off: it then passes every token
    /// (`Check::Off`). The rules ask this before anything else, so this is
    /// the one place that says which rules a route has.
    pub fn configures(&self, rule: Rule) -> bool {
        match rule {
            Rule::LegacyAuth => true,
            Rule::DeniedApps => !self.denied_apps.is_empty(),
            Rule::AppOnly => !self.allow_app_only,
            Rule::Mfa => self.require_mfa,
            Rule::PublicClients => !self.allow_public_clients,
            Rule::CertificateClient => self.require_certificate_client,
            Rule::AllowedApps => !self.allowed_apps.is_empty(),
            Rule::PartnerTenants => !self.partner_tenants.is_empty(),
            Rule::Customers => self.customers.is_some(),
            Rule::DenyRoles => !self.deny_roles.is_empty(),
        }
    }

    /// True when a rule the route configures enforces at `now`. A request
    /// whose credentials cannot be checked is then refused: whether it would
    /// pass that rule cannot be known.
    pub fn enforces_any(&self, now: i64) -> bool {
        Rule::ALL.into_iter().any(|r| self.configures(r) && self.mode(Some(r), now) == Mode::Enforce)
    }
}

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

#[derive(Debug, Clone)]
pub struct Evaluation<'p> {
    /// Every rule's verdict, indexed by `Rule as usize`.
    pub checks: [Check; Rule::ALL.len()],
    /// The exemption that turned a failure into `Exempt`.
    pub exemption: Option<&'p Exemption>,
    /// An exemption that matches the principal but has expired.
    pub expired_exemption: Option<&'p Exemption>,
    pub decision: Decision,
}

/// Runs every rule, then decides: the first failure of an enforcing rule
/// denies; otherwise the first failure of a report-only rule is recorded;
/// an active exemption for a principal whose signature verified forwards
/// either.
pub fn evaluate<'p>(policy: &'p RoutePolicy, input: &Input<'_>, now: i64) -> Evaluation<'p> {
    let claims = input.claims;
    let principal = classify(claims);
    let mut checks = [Check::Off; Rule::ALL.len()];
    for rule in Rule::ALL {
        if !policy.configures(rule) {
            continue;
        }
        checks[rule as usize] = match rule {
            // A bearer token reached the rules; the credential checks ran before.
            Rule::LegacyAuth => Check::Pass,
            Rule::DeniedApps => sam::denied_apps(policy, claims),
            Rule::AppOnly => sam::app_only(policy, principal),
            Rule::Mfa => partner_center::mfa(policy, claims, principal),
            Rule::PublicClients => sam::public_clients(policy, claims, principal),
            Rule::CertificateClient => sam::certificate_client(policy, claims),
            Rule::AllowedApps => sam::allowed_apps(policy, claims),
            Rule::PartnerTenants => gdap::partner_tenants(policy, claims),
            Rule::Customers => gdap::customers(policy, claims, input.customer, now),
            Rule::DenyRoles => gdap::deny_roles(policy, claims),
        };
    }
    let (mut deny, mut report) = (None, None);
    for rule in Rule::ALL {
        if let Check::Fail(reason) = checks[rule as usize] {
            let first = match policy.mode(Some(rule), now) {
                Mode::Enforce => &mut deny,
                Mode::ReportOnly => &mut report,
            };
            first.get_or_insert(reason);
        }
    }
    // An exemption allows: it never rests on claims nobody verified.
    let (exemption, expired_exemption) =
        if input.verified { exemptions::find(&policy.exemptions, claims, now) } else { (None, None) };
    let failed = deny.or(report);
    let exemption = exemption.filter(|_| failed.is_some());
    let decision = match (failed, deny) {
        (Some(reason), _) if exemption.is_some() => Decision::Exempt(reason),
        (_, Some(reason)) => Decision::Deny(Denial { reason, step_up: stepup::offer(policy, claims, reason) }),
        (Some(reason), None) => Decision::WouldDeny(reason),
        (None, None) => Decision::Allow,
    };
    Evaluation { checks, exemption, expired_exemption, decision }
}

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
