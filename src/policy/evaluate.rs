//! Every rule on one token, then the decision: enforcing failures deny,
//! report-only ones are recorded, exemptions forward.

use super::exemptions::{self, Exemption};
use super::mode::Mode;
use super::partner_center::{self, classify};
use super::route::RoutePolicy;
use super::verdict::{Check, Decision, Denial, Input};
use super::{gdap, sam, stepup};
use crate::reason::Rule;

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
            // Judged on the request's body, before the token (a finding).
            Rule::ComputeGuard => Check::Pass,
            // Token requests carry no token: judged from the request (`grants`).
            Rule::DenyGrants | Rule::RequireClientAssertion | Rule::AllowedTokenClients => Check::Off,
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
