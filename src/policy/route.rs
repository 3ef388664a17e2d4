//! A route's rules, as the configuration compiles them: what the route
//! fronts, which rules run and in which mode, and its exemptions.

use std::sync::Arc;

use super::compute::guard::ComputeGuard;
use super::exemptions::Exemption;
use super::mode::{Mode, Schedule};
use super::relationships::Customers;
use crate::reason::Rule;

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
    /// `[routes.compute_guard]` (ARM routes only); `None` turns the rule off.
    pub compute_guard: Option<Arc<ComputeGuard>>,
    /// Login routes: what token requests may ask for and how clients authenticate.
    pub grants: GrantPolicy,
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
            compute_guard: None,
            grants: GrantPolicy::default(),
        }
    }
}

/// What a login route allows token requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPolicy {
    /// Lower-case grant types refused with `grant_not_allowed`. `password`
    /// is always refused, as `password_grant` (legacy authentication).
    pub deny_grants: Vec<String>,
    /// A client that authenticates with a secret is refused.
    pub require_client_assertion: bool,
    /// Lower-case client ids that may request tokens; empty: any.
    pub allowed_token_clients: Vec<String>,
}

impl Default for GrantPolicy {
    fn default() -> Self {
        Self { deny_grants: vec![PASSWORD.into()], require_client_assertion: false, allowed_token_clients: Vec::new() }
    }
}

/// The password grant: always refused as `password_grant`.
pub(super) const PASSWORD: &str = "password";

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
            Rule::ComputeGuard => self.compute_guard.is_some(),
            Rule::DenyGrants => self.kind == RouteKind::Login && !self.grants.deny_grants.is_empty(),
            Rule::RequireClientAssertion => self.kind == RouteKind::Login && self.grants.require_client_assertion,
            Rule::AllowedTokenClients => self.kind == RouteKind::Login && !self.grants.allowed_token_clients.is_empty(),
        }
    }

    /// True when a rule the route configures enforces at `now`. A request
    /// whose credentials cannot be checked is then refused: whether it would
    /// pass that rule cannot be known.
    pub fn enforces_any(&self, now: i64) -> bool {
        Rule::ALL.into_iter().any(|r| self.configures(r) && self.mode(Some(r), now) == Mode::Enforce)
    }
}
