//! AOBO and GDAP: a partner's user acting in a customer tenant is a foreign
//! principal there (`idp` names the partner's tenant, `tid` the customer's).
//! It must come from one of the partner's tenants, the customer must have a
//! live relationship, and no role the route denies may be in `wids` (least
//! privilege, as GDAP asks).

use std::collections::HashMap;

use super::{Check, DenyReason, RouteKind, RoutePolicy};
use crate::auth::claims::{Claims, is_guid};

/// Role template id of Global Administrator, denied by default on AOBO routes.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Where the principal comes from, relative to the tenant that issued the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenancy<'a> {
    /// A member of the token's own tenant (`idp` absent or the issuer).
    Home,
    /// A guest or a partner's user (`idp` names another tenant; `None`
    /// when it names no tenant, e.g. `live.com`).
    Foreign { idp_tenant: Option<&'a str> },
}

/// `idp` "is identical to the value of the Issuer claim unless the user
/// account isn't in the same tenant as the issuer". Tenants are compared,
/// not strings, since v1 and v2 issuers write the same tenant differently.
pub fn tenancy(claims: &Claims) -> Tenancy<'_> {
    let Some(idp) = claims.idp.as_deref() else { return Tenancy::Home };
    if claims.iss.as_deref() == Some(idp) {
        return Tenancy::Home;
    }
    let idp_tenant = tenant_of(idp);
    match (idp_tenant, claims.tid.as_deref()) {
        (Some(i), Some(t)) if i.eq_ignore_ascii_case(t) => Tenancy::Home,
        _ => Tenancy::Foreign { idp_tenant },
    }
}

/// The tenant id in an issuer URL such as `https://sts.windows.net/{tid}/`
/// (or a bare tenant id).
pub fn tenant_of(issuer: &str) -> Option<&str> {
    let path = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    path.split('/').find(|s| is_guid(s))
}

fn listed(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v.eq_ignore_ascii_case(value))
}

pub fn partner_tenants(policy: &RoutePolicy, claims: &Claims) -> Check {
    if policy.partner_tenants.is_empty() {
        return Check::Off;
    }
    match tenancy(claims) {
        Tenancy::Home => Check::Skip,
        Tenancy::Foreign { idp_tenant: Some(t) } if listed(&policy.partner_tenants, t) => Check::Pass,
        Tenancy::Foreign { .. } => Check::Fail(DenyReason::ForeignTenantNotAllowed),
    }
}

/// The customer of the call must have a live relationship at `now`. On
/// Partner Center routes the customer is `path_customer` (no customer in
/// the path: not a customer call); elsewhere it is the token's tenant,
/// unless that is one of the partner's own tenants.
pub fn customers(policy: &RoutePolicy, claims: &Claims, path_customer: Option<&str>, now: i64) -> Check {
    let Some(list) = &policy.customers else { return Check::Off };
    let customer = match policy.kind {
        RouteKind::PartnerCenter => match path_customer {
            Some(c) => c,
            None => return Check::Skip,
        },
        RouteKind::Aobo | RouteKind::Login => match claims.tid.as_deref() {
            Some(tid) if listed(&policy.partner_tenants, tid) => return Check::Skip,
            Some(tid) => tid,
            None => return Check::Fail(DenyReason::CustomerNotAllowed),
        },
    };
    match list.relationship_end(customer) {
        None => Check::Fail(DenyReason::CustomerNotAllowed),
        Some(ends) if now >= ends => Check::Fail(DenyReason::RelationshipExpired),
        Some(_) => Check::Pass,
    }
}

pub fn deny_roles(policy: &RoutePolicy, claims: &Claims) -> Check {
    if policy.deny_roles.is_empty() {
        return Check::Off;
    }
    let privileged = claims.wids.as_ref().is_some_and(|w| w.iter().any(|r| listed(&policy.deny_roles, r)));
    if privileged { Check::Fail(DenyReason::PrivilegedRole) } else { Check::Pass }
}

/// A relationship's state, as Microsoft Graph's `delegatedAdminRelationship`
/// reports it (`status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `active`, `expiring`: usable until its end date.
    Live,
    /// `expired`, `terminated`, `terminating`, `terminationRequested`.
    Ended,
    /// `created`, `approvalPending`, `approved`, `activating`: not usable yet.
    Pending,
}

impl Status {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "active" | "expiring" => Self::Live,
            "expired" | "terminated" | "terminating" | "terminationrequested" => Self::Ended,
            "created" | "approvalpending" | "approved" | "activating" => Self::Pending,
            _ => return None,
        })
    }
}

/// Customer tenants and when their relationship with the partner ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customers {
    ends: HashMap<String, i64>,
}

impl Customers {
    /// Adds one relationship. A customer with several keeps the latest end;
    /// an ended one counts as already over; a pending one is not added.
    pub fn add(&mut self, tenant: &str, ends: i64, status: Status) {
        let ends = match status {
            Status::Live => ends,
            Status::Ended => i64::MIN,
            Status::Pending => return,
        };
        let slot = self.ends.entry(tenant.to_ascii_lowercase()).or_insert(ends);
        *slot = (*slot).max(ends);
    }

    /// When the relationship with `tenant` ends (unix seconds; `i64::MIN`
    /// when it has been terminated), or `None` when there is none.
    pub fn relationship_end(&self, tenant: &str) -> Option<i64> {
        match self.ends.get(tenant) {
            Some(end) => Some(*end),
            None if tenant.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.ends.get(&tenant.to_ascii_lowercase()).copied()
            }
            None => None,
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// The lower-case `{customer-id}` of a Partner Center path
/// (`/v1/customers/{customer-id}/...`), when the segment after the first
/// `customers` is a tenant id. Segments are compared after percent-decoding,
/// as the upstream reads them; dot segments and encoded slashes are refused,
/// since the upstream could resolve them to another customer than the one
/// checked.
pub fn customer_in_path(path: &str) -> Result<Option<String>, &'static str> {
    let mut after_customers = false;
    let mut found = None;
    for raw in path.split('/') {
        let segment = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| "the path is not valid UTF-8 once decoded")?;
        if segment.contains(['/', '\\']) {
            return Err("the path has an encoded slash");
        }
        if segment == "." || segment == ".." {
            return Err("the path has a dot segment");
        }
        if found.is_none() {
            if after_customers {
                found = Some(is_guid(&segment).then(|| segment.to_ascii_lowercase()));
            }
            after_customers = segment.eq_ignore_ascii_case("customers");
        }
    }
    Ok(found.flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6";

    #[test]
    fn customer_ids_in_partner_center_paths() {
        assert_eq!(customer_in_path(&format!("/v1/customers/{C}/subscriptions")).unwrap().as_deref(), Some(C));
        assert_eq!(customer_in_path(&format!("/v1/customers/{}", C.to_uppercase())).unwrap().as_deref(), Some(C));
        assert_eq!(customer_in_path(&format!("/v1/Customers/{C}/")).unwrap().as_deref(), Some(C));
        let encoded = format!("/v1/%63ustomers/%37{}", &C[1..]);
        assert_eq!(customer_in_path(&encoded).unwrap().as_deref(), Some(C));
        assert_eq!(customer_in_path("/v1/customers").unwrap(), None);
        assert_eq!(customer_in_path("/v1/customers/relationshiprequests").unwrap(), None);
        assert_eq!(customer_in_path("/v1/invoices").unwrap(), None);
        let other = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
        assert_eq!(customer_in_path(&format!("/v1/customers/{C}/x/customers/{other}")).unwrap().as_deref(), Some(C));
        assert!(customer_in_path(&format!("/v1/customers/{other}/../{C}")).is_err());
        assert!(customer_in_path(&format!("/v1/customers/./{C}")).is_err());
        assert!(customer_in_path(&format!("/v1/customers%2F{C}")).is_err());
        assert!(customer_in_path(&format!("/v1/customers/{C}%5C..")).is_err());
        assert!(customer_in_path("/v1/%ff").is_err());
    }

    #[test]
    fn issuer_tenants() {
        assert_eq!(tenant_of(&format!("https://sts.windows.net/{C}/")), Some(C));
        assert_eq!(tenant_of(&format!("https://login.microsoftonline.com/{C}/v2.0")), Some(C));
        assert_eq!(tenant_of(C), Some(C));
        assert_eq!(tenant_of("live.com"), None);
    }

    #[test]
    fn relationships_keep_the_latest_live_end() {
        let mut c = Customers::default();
        c.add(C, 100, Status::Live);
        c.add(&C.to_uppercase(), 300, Status::Live);
        c.add(C, 200, Status::Ended);
        assert_eq!(c.relationship_end(C), Some(300));
        assert_eq!(c.relationship_end(&C.to_uppercase()), Some(300));
        c.add("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", 500, Status::Ended);
        assert_eq!(c.relationship_end("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"), Some(i64::MIN));
        c.add("bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee", 500, Status::Pending);
        assert_eq!(c.relationship_end("bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee"), None);
        assert_eq!(c.len(), 2);
        assert_eq!(Status::parse("terminationRequested"), Some(Status::Ended));
        assert_eq!(Status::parse("Active"), Some(Status::Live));
        assert_eq!(Status::parse("maybe"), None);
    }
}
