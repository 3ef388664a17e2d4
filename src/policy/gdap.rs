//! AOBO and GDAP: a partner's user acting in a customer tenant is a foreign
//! principal there (`idp` names the partner's tenant, `tid` the customer's).
//! It must come from one of the partner's tenants, the customer must have a
//! live relationship, and no role the route denies may be in `wids` (least
//! privilege, as GDAP asks).

pub use super::customer_id::{PathCustomer, customer_in_path, parse_guid};
pub use super::relationships::{Customers, Status};
use super::{Check, Reason, RouteKind, RoutePolicy};
use crate::auth::claims::Claims;
pub use crate::entra::tenant_of;

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
        Tenancy::Foreign { .. } => Check::Fail(Reason::ForeignTenantNotAllowed),
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
            None => return Check::Fail(Reason::CustomerNotAllowed),
        },
    };
    match list.relationship_end(customer) {
        None => Check::Fail(Reason::CustomerNotAllowed),
        Some(ends) if now >= ends => Check::Fail(Reason::RelationshipExpired),
        Some(_) => Check::Pass,
    }
}

pub fn deny_roles(policy: &RoutePolicy, claims: &Claims) -> Check {
    if policy.deny_roles.is_empty() {
        return Check::Off;
    }
    let privileged = claims.wids.as_ref().is_some_and(|w| w.iter().any(|r| listed(&policy.deny_roles, r)));
    if privileged { Check::Fail(Reason::PrivilegedRole) } else { Check::Pass }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::RequestRule;

    const C: &str = "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6";

    /// Another tenant, with leading zeros in its groups.
    const Z: &str = "0a1b2c3d-0e5f-004b-0c7d-9e0f1a2b3c4d";

    #[test]
    fn guids_in_every_form_dotnet_parses() {
        let n = C.replace('-', "");
        let x = "{0x7f3a8e21,0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}}";
        for (name, input, id) in [
            ("D", C.to_string(), C),
            ("D, upper case", C.to_uppercase(), C),
            ("D, mixed case", "7F3a8E21-5b6C-4D7e-8F90-A1b2C3d4E5f6".into(), C),
            ("N", n.clone(), C),
            ("N, upper case", n.to_uppercase(), C),
            ("B", format!("{{{C}}}"), C),
            ("B, upper case", format!("{{{}}}", C.to_uppercase()), C),
            ("P", format!("({C})"), C),
            ("X", x.into(), C),
            ("X, upper case", x.to_uppercase(), C),
            (
                "X, whitespace anywhere",
                "{ 0x7f3a8e21 ,\t0x5b6c,\n0x4d7e , { 0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6 } }".into(),
                C,
            ),
            (
                "X, leading zeros",
                "{0x007f3a8e21,0x05b6c,0x0000004d7e,{0x08f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0x00f6}}".into(),
                C,
            ),
            ("X, short numbers", "{0xa1b2c3d,0xe5f,0x4b,{0xc,0x7d,0x9e,0xf,0x1a,0x2b,0x3c,0x4d}}".into(), Z),
            ("surrounding whitespace", format!("  {C}\t\r\n"), C),
            ("surrounding Unicode spaces", format!("\u{a0}{n}\u{3000}"), C),
            ("B in spaces", format!(" {{{C}}} "), C),
            ("D, signs and prefixes in groups", "+a1b2c3d-+e5f-0x4b-+c7d-9e0f1a2b3c4d".into(), Z),
            (
                "D, + in the fifth group",
                "7f3a8e21-5b6c-4d7e-8f90-+1b2c3d4e5f6".into(),
                "7f3a8e21-5b6c-4d7e-8f90-01b2c3d4e5f6",
            ),
            ("B, prefixes in groups", "{0x0a1b2c3d-+e5f-0X4b-0c7d-9e0f1a2b3c4d}".replace("0x0a1b2c3d", "+a1b2c3d"), Z),
        ] {
            assert_eq!(parse_guid(&input).as_deref(), Some(id), "{name}: {input}");
        }
        for input in [
            "",
            "   ",
            "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5fg",
            "7f3a8e215b6c-4d7e-8f90-a1b2c3d4e5f6",
            "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f",
            "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f66",
            "7f3a8e21-5b6c-4d7e-8f90a-1b2c3d4e5f6",
            "7f3a8e21 -5b6c-4d7e-8f90-a1b2c3d4e5f6",
            "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4+5f6",
            "-f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6",
            "７f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6",
            "7f3a8e215b6c4d7e8f90a1b2c3d4e5f",
            "7f3a8e215b6c4d7e8f90a1b2c3d4e5f60",
            "+f3a8e215b6c4d7e8f90a1b2c3d4e5f6",
            "{7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6",
            "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6}",
            "{7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6)",
            "(7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6}",
            "{7f3a8e215b6c4d7e8f90a1b2c3d4e5f6}",
            "(7f3a8e215b6c4d7e8f90a1b2c3d4e5f6)",
            "{7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6}x",
            "x7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6",
            "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6;x=1",
            "{ 7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6}",
            "{7f3a8e21,0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}}",
            "{0x7f3a8e21,0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5}}",
            "{0x7f3a8e21,0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6,0x1}}",
            "{0x7f3a8e21,0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0x100}}",
            "{0x7f3a8e21,0x10000,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}}",
            "{0x17f3a8e21,0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}}",
            "{0x7f3a8e21,0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}}x",
            "{0x7f3a8e21,0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}",
            "{0x7f3a8e21,0x5b6c,0x4d7e,0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}",
            "{0x,0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}}",
            "{0x7f3a8e21,0x5b6c,0x4d7e,{0x8g,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}}",
            "{0x7f3a8e21;0x5b6c,0x4d7e,{0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6}}",
        ] {
            assert_eq!(parse_guid(input), None, "{input}");
        }
    }

    #[test]
    fn customer_ids_in_partner_center_paths() {
        let n = C.replace('-', "");
        let other = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
        let canonical = |tail: &str| Some(format!("/v1/customers/{C}{tail}"));
        let found: Vec<(String, Option<String>)> = vec![
            (format!("/v1/customers/{C}/subscriptions"), None),
            (format!("/v1/customers/{C}"), None),
            (format!("/v1/Customers/{C}/"), None),
            (format!("/v1/CUSTOMERS;x=1/{C}"), None),
            (format!("/v1/customers./{C}"), None),
            (format!("/v1/customers/{}", C.to_uppercase()), canonical("")),
            (format!("/v1/customers/{n}/orders"), canonical("/orders")),
            (format!("/v1/customers/%7B{C}%7D/orders"), canonical("/orders")),
            (format!("/v1/customers/%7b{}%7d", C.to_uppercase()), canonical("")),
            (format!("/v1/customers/({C})/users/x"), canonical("/users/x")),
            (
                "/v1/customers/%7B0x7f3a8e21,0x5b6c,0x4d7e,%7B0x8f,0x90,0xa1,0xb2,0xc3,0xd4,0xe5,0xf6%7D%7D".into(),
                canonical(""),
            ),
            (format!("/v1/customers/%20{C}/x"), canonical("/x")),
            (format!("/v1/customers/{C}%C2%A0/x"), canonical("/x")),
            (format!("/v1/%63ustomers/%37{}", &C[1..]), Some(format!("/v1/%63ustomers/{C}"))),
            (format!("/v1/customers/{C}/x/customers/{other}"), None),
        ];
        for (path, rewritten) in found {
            let got =
                customer_in_path(&path).unwrap_or_else(|e| panic!("{path}: {e}")).unwrap_or_else(|| panic!("{path}"));
            assert_eq!((got.id.as_str(), got.path), (C, rewritten), "{path}");
        }
        for path in [
            "/v1/customers",
            "/v1/customers/",
            "/v1/customers/relationshiprequests",
            "/v1/Customers/RelationshipRequests",
            "/v1/customers/usagerecords",
            "/v1/customers/all/validations",
            "/v1/customers/ALL",
            "/v1/invoices",
            "/v1/invoices/x/lineitems",
            "/v1/customer/x",
            "/",
        ] {
            assert!(matches!(customer_in_path(path), Ok(None)), "{path}");
        }
        let not_a_customer = Err(RequestRule::NotACustomerId);
        for path in [
            format!("/v1/customers/{C};x=1"),
            format!("/v1/customers/{C};x=1/subscriptions"),
            format!("/v1/customers/{C}x"),
            format!("/v1/customers/{C}."),
            format!("/v1/customers/%7B{C}"),
            format!("/v1/customers/{n}0"),
            "/v1/customers/contoso.onmicrosoft.com".into(),
            "/v1/customers/relationshiprequests;x=1".into(),
            "/v1/customers/relationshiprequest".into(),
            "/v1/customers//x".into(),
            format!("/v1/customers;a/everyone/customers/{C}"),
        ] {
            assert!(matches!(customer_in_path(&path), Err(e) if Err::<(), _>(e) == not_a_customer), "{path}");
        }
        assert_eq!(customer_in_path(&format!("/v1/customers/{other}/../{C}")).err(), Some(RequestRule::DotSegment));
        assert_eq!(customer_in_path(&format!("/v1/customers/./{C}")).err(), Some(RequestRule::DotSegment));
        assert_eq!(customer_in_path(&format!("/v1/customers%2F{C}")).err(), Some(RequestRule::EncodedSlash));
        assert_eq!(customer_in_path(&format!("/v1/customers/{C}%5C..")).err(), Some(RequestRule::EncodedBackslash));
        assert_eq!(customer_in_path("/v1/%ff").err(), Some(RequestRule::PathNotUtf8));
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
