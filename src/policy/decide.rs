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

use super::{Decision, Denial, Evaluation, Input, Mode, Reason, RoutePolicy, evaluate, exemptions, stepup};
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
        let mode = mode_of(policy, reason, now);
        if reason == Reason::ComputeAbuseSuspected {
            let claims = match &facts.token {
                Some(Presented::Checked { claims, verified: true }) => Some(claims),
                _ => None,
            };
            // A fresh sign-in to the route's authentication context vouches
            // for the request; a client that can take a challenge is asked to.
            if claims.is_some_and(|c| stepup::carries_context(policy, c)) {
                continue;
            }
            // An exemption for the verified principal covers the rule too.
            if claims.is_some_and(|c| exemptions::find(&policy.exemptions, c, now).0.is_some()) {
                verdicts.exempt.get_or_insert(reason);
                continue;
            }
            if mode == Mode::Enforce {
                let step_up = claims.and_then(|c| stepup::offer(policy, c, reason));
                verdicts.deny.get_or_insert(Denial { reason, step_up });
                continue;
            }
        }
        verdicts.fail(reason, mode);
    }
    let mut evaluation = None;
    if let Some(token) = &facts.token
        && let Some(e) = judge_token(policy, token, facts, now, &mut verdicts)
    {
        verdicts.decided(&e.decision);
        evaluation = Some(e);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Exemption, Rule, Schedule, Selector};

    const OID: &str = "02223b6b-aa1d-42d4-9ec0-1b2bb9194438";

    fn claims(amr: &[&str]) -> Arc<Claims> {
        Arc::new(Claims {
            tid: Some("df845f1a-1111-2222-3333-444455556666".into()),
            oid: Some(OID.into()),
            scp: Some("user_impersonation".into()),
            appidacr: Some("1".into()),
            amr: Some(amr.iter().map(|s| s.to_string()).collect()),
            xms_cc: Some(vec!["cp1".into()]),
            ..Claims::default()
        })
    }

    fn checked(amr: &[&str]) -> Presented {
        Presented::Checked { claims: claims(amr), verified: true }
    }

    fn report_only(enforced: &[Rule]) -> RoutePolicy {
        let mut p = RoutePolicy {
            schedule: Schedule { mode: Mode::ReportOnly, enforce_after: None },
            ..RoutePolicy::default()
        };
        for r in enforced {
            p.rule_modes[*r as usize] = Some(Mode::Enforce);
        }
        p
    }

    fn with(token: Presented) -> Facts {
        Facts { token: Some(token), ..Facts::default() }
    }

    fn verdict(policy: &RoutePolicy, facts: &Facts) -> (&'static str, Option<Reason>) {
        let d = decide(policy, facts, 1_000).decision;
        (d.as_str(), d.reason())
    }

    #[test]
    fn a_token_that_cannot_be_checked_is_refused_while_any_rule_enforces() {
        let strict = report_only(&[Rule::LegacyAuth, Rule::Mfa]);
        let lax = report_only(&[]);
        for reason in [
            Reason::MalformedToken,
            Reason::MissingToken,
            Reason::BadSignature,
            Reason::Expired,
            Reason::KeysUnavailable,
        ] {
            let facts = with(Presented::failed(reason));
            assert_eq!(verdict(&strict, &facts), ("deny", Some(reason)), "{}", reason.as_str());
            assert_eq!(verdict(&lax, &facts), ("would_deny", Some(reason)), "{}", reason.as_str());
            assert_eq!(verdict(&RoutePolicy::default(), &facts), ("deny", Some(reason)));
        }
        // A rule the route does not configure cannot be sidestepped.
        let unconfigured = report_only(&[Rule::Customers, Rule::DenyRoles]);
        assert_eq!(verdict(&unconfigured, &with(Presented::failed(Reason::Expired))).0, "would_deny");
        // enforce_after: before the instant everything is report-only.
        let staged = RoutePolicy {
            schedule: Schedule { mode: Mode::Enforce, enforce_after: Some(2_000) },
            ..RoutePolicy::default()
        };
        assert_eq!(verdict(&staged, &with(Presented::failed(Reason::Expired))).0, "would_deny");
    }

    #[test]
    fn a_finding_is_judged_under_its_own_rule() {
        let facts = Facts { findings: vec![Reason::LegacyAuth], ..with(checked(&["mfa"])) };
        assert_eq!(verdict(&report_only(&[Rule::LegacyAuth]), &facts), ("deny", Some(Reason::LegacyAuth)));
        assert_eq!(verdict(&report_only(&[Rule::Mfa]), &facts), ("would_deny", Some(Reason::LegacyAuth)));
        let mut enforce_but_legacy_reported = RoutePolicy::default();
        enforce_but_legacy_reported.rule_modes[Rule::LegacyAuth as usize] = Some(Mode::ReportOnly);
        assert_eq!(verdict(&enforce_but_legacy_reported, &facts), ("would_deny", Some(Reason::LegacyAuth)));
        // Basic alone: the legacy finding, and no token for an enforcing MFA rule.
        let basic = Facts { findings: vec![Reason::LegacyAuth], ..with(Presented::failed(Reason::MissingToken)) };
        assert_eq!(verdict(&report_only(&[Rule::Mfa]), &basic), ("deny", Some(Reason::MissingToken)));
        assert_eq!(verdict(&report_only(&[]), &basic), ("would_deny", Some(Reason::LegacyAuth)));
        assert_eq!(verdict(&RoutePolicy::default(), &basic), ("deny", Some(Reason::LegacyAuth)));
    }

    #[test]
    fn every_auxiliary_token_passes_the_same_checks() {
        let policy = RoutePolicy { auth_context_id: Some("c1".into()), ..RoutePolicy::default() };
        let ok = Facts { auxiliary: vec![checked(&["mfa"]), checked(&["mfa"])], ..with(checked(&["mfa"])) };
        assert_eq!(verdict(&policy, &ok), ("allow", None));
        let no_mfa = Facts { auxiliary: vec![checked(&["mfa"]), checked(&["pwd"])], ..with(checked(&["mfa"])) };
        let outcome = decide(&policy, &no_mfa, 1_000);
        let Decision::Deny(denial) = &outcome.decision else { panic!("{:?}", outcome.decision) };
        assert_eq!(denial.reason, Reason::MfaRequired);
        assert!(denial.step_up.is_none(), "a challenge would ask for the main token again");
        let bad = Facts { auxiliary: vec![Presented::failed(Reason::BadSignature)], ..with(checked(&["mfa"])) };
        assert_eq!(verdict(&policy, &bad), ("deny", Some(Reason::BadSignature)));
        assert_eq!(verdict(&report_only(&[]), &no_mfa), ("would_deny", Some(Reason::MfaRequired)));
        // The main token's step-up stays.
        let main = decide(&policy, &with(checked(&["pwd"])), 1_000);
        assert!(matches!(main.decision, Decision::Deny(Denial { step_up: Some(_), .. })));
    }

    #[test]
    fn an_exemption_covers_only_the_token_of_its_principal() {
        let exemption = Exemption { selector: Selector::Oid(OID.into()), reason: "break-glass".into(), expires: 5_000 };
        let policy = RoutePolicy { exemptions: vec![exemption], ..RoutePolicy::default() };
        assert_eq!(verdict(&policy, &with(checked(&["pwd"]))), ("exempt", Some(Reason::MfaRequired)));
        let unverified = with(Presented::Checked { claims: claims(&["pwd"]), verified: false });
        assert_eq!(verdict(&policy, &unverified).0, "deny", "an exemption never rests on unverified claims");
        let mut other = (*claims(&["pwd"])).clone();
        other.oid = Some("aaaaaaaa-0000-0000-0000-000000000001".into());
        let aux = Facts {
            auxiliary: vec![Presented::Checked { claims: Arc::new(other), verified: true }],
            ..with(checked(&["pwd"]))
        };
        assert_eq!(verdict(&policy, &aux), ("deny", Some(Reason::MfaRequired)));
        let expired = with(Presented::failed(Reason::Expired));
        assert_eq!(verdict(&policy, &expired), ("deny", Some(Reason::Expired)), "no claims, no exemption");
    }

    #[test]
    fn a_flagged_compute_request_is_refused_challenged_or_vouched_for() {
        let policy = RoutePolicy { auth_context_id: Some("c2".into()), ..RoutePolicy::default() };
        let flagged = |token| Facts { findings: vec![Reason::ComputeAbuseSuspected], ..with(token) };
        let outcome = decide(&policy, &flagged(checked(&["mfa"])), 1_000);
        let Decision::Deny(denial) = &outcome.decision else { panic!("{:?}", outcome.decision) };
        assert_eq!(denial.reason, Reason::ComputeAbuseSuspected);
        assert_eq!(denial.step_up.as_ref().map(|s| s.auth_context.as_str()), Some("c2"));
        let mut stepped = (*claims(&["mfa"])).clone();
        stepped.acrs = Some(vec!["c2".into()]);
        let stepped = Presented::Checked { claims: Arc::new(stepped), verified: true };
        assert_eq!(verdict(&policy, &flagged(stepped.clone())), ("allow", None));
        let unverified = match stepped {
            Presented::Checked { claims, .. } => Presented::Checked { claims, verified: false },
            other => other,
        };
        assert_eq!(verdict(&policy, &flagged(unverified)).0, "deny", "an unverified acrs vouches for nothing");
        let mut no_cp1 = (*claims(&["mfa"])).clone();
        no_cp1.xms_cc = None;
        let plain = decide(&policy, &flagged(Presented::Checked { claims: Arc::new(no_cp1), verified: true }), 1_000);
        assert!(matches!(plain.decision, Decision::Deny(Denial { step_up: None, .. })));
        let mut reported = RoutePolicy::default();
        reported.rule_modes[Rule::ComputeGuard as usize] = Some(Mode::ReportOnly);
        assert_eq!(
            verdict(&reported, &flagged(checked(&["mfa"]))),
            ("would_deny", Some(Reason::ComputeAbuseSuspected))
        );
        let exemption = Exemption { selector: Selector::Oid(OID.into()), reason: "gpu lab".into(), expires: 5_000 };
        let exempted = RoutePolicy { exemptions: vec![exemption], ..RoutePolicy::default() };
        let facts = flagged(checked(&["mfa"]));
        assert_eq!(verdict(&exempted, &facts), ("exempt", Some(Reason::ComputeAbuseSuspected)));
        assert_eq!(decide(&exempted, &facts, 6_000).decision.as_str(), "deny", "an expired exemption covers nothing");
    }

    #[test]
    fn only_verified_claims_make_a_subject() {
        assert!(with(checked(&["mfa"])).subject().is_some());
        assert!(with(Presented::Checked { claims: claims(&["mfa"]), verified: false }).subject().is_none());
        assert!(with(Presented::failed(Reason::BadSignature)).subject().is_none());
        let expired_but_signed = Presented::Failed { reason: Reason::Expired, claims: Some(claims(&["mfa"])) };
        assert_eq!(with(expired_but_signed).subject().and_then(|s| s.oid().map(str::to_string)).as_deref(), Some(OID));
        assert!(Facts::default().subject().is_none());
    }
}
