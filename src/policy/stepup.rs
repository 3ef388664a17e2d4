//! Step-up instead of a dead end. A token without MFA from a client that
//! handles claims challenges (`xms_cc` holds `cp1`) on a route with an
//! `auth_context_id` gets a 401 `insufficient_claims` challenge asking for
//! that Conditional Access authentication context, which the tenant's policy
//! maps to "require MFA"; MSAL then signs the user in again with MFA.

use super::{Reason, RoutePolicy};
use crate::auth::claims::{Claims, is_guid};

/// The challenge to send: the tenant to sign in to and the context to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    /// The token's tenant (the partner's for Partner Center, the customer's for AOBO).
    pub tenant: String,
    pub auth_context: String,
}

impl StepUp {
    /// The minified claims request: `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`.
    pub fn claims_request(&self) -> String {
        serde_json::json!({"access_token": {"acrs": {"essential": true, "value": self.auth_context}}}).to_string()
    }
}

/// A step-up when the denial is for missing MFA (or a flagged compute
/// request, which a fresh sign-in to the context may vouch for) and the
/// client can take one. Not when the token already carries the context: the tenant's policy
/// then does not require MFA for it, and asking again would loop.
pub fn offer(policy: &RoutePolicy, claims: &Claims, reason: Reason) -> Option<StepUp> {
    if !matches!(reason, Reason::MfaRequired | Reason::ComputeAbuseSuspected) {
        return None;
    }
    let auth_context = policy.auth_context_id.as_deref()?;
    let capable = claims_challenges(claims);
    let satisfied = carries_context(policy, claims);
    let tenant = claims.tid.as_deref().filter(|t| is_guid(t))?;
    (capable && !satisfied).then(|| StepUp { tenant: tenant.to_ascii_lowercase(), auth_context: auth_context.into() })
}

/// The client handles claims challenges (`xms_cc` holds `cp1`).
pub fn claims_challenges(claims: &Claims) -> bool {
    claims.xms_cc.as_ref().is_some_and(|cc| cc.iter().any(|c| c.eq_ignore_ascii_case("cp1")))
}

/// The token carries the route's authentication context in `acrs`.
pub fn carries_context(policy: &RoutePolicy, claims: &Claims) -> bool {
    let Some(context) = policy.auth_context_id.as_deref() else { return false };
    claims.acrs.as_ref().is_some_and(|a| a.iter().any(|c| c.eq_ignore_ascii_case(context)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50";

    fn claims(xms_cc: &[&str], acrs: &[&str]) -> Claims {
        Claims {
            tid: Some(TID.into()),
            xms_cc: Some(xms_cc.iter().map(|s| s.to_string()).collect()),
            acrs: Some(acrs.iter().map(|s| s.to_string()).collect()),
            ..Claims::default()
        }
    }

    #[test]
    fn only_capable_clients_on_routes_with_a_context() {
        let policy = RoutePolicy { auth_context_id: Some("c1".into()), ..RoutePolicy::default() };
        let step = offer(&policy, &claims(&["CP1"], &[]), Reason::MfaRequired).unwrap();
        assert_eq!(step.tenant, TID);
        assert_eq!(step.claims_request(), r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#);
        assert_eq!(offer(&policy, &claims(&["cp1"], &["c1"]), Reason::MfaRequired), None);
        assert_eq!(offer(&policy, &claims(&[], &[]), Reason::MfaRequired), None);
        assert_eq!(offer(&policy, &claims(&["cp1"], &[]), Reason::MfaUnprovableV2), None);
        assert_eq!(offer(&policy, &claims(&["cp1"], &[]), Reason::PublicClient), None);
        assert_eq!(offer(&RoutePolicy::default(), &claims(&["cp1"], &[]), Reason::MfaRequired), None);
        let mut no_tid = claims(&["cp1"], &[]);
        no_tid.tid = Some("common".into());
        assert_eq!(offer(&policy, &no_tid, Reason::MfaRequired), None);
    }
}
