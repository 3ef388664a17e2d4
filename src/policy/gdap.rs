//! AOBO and GDAP: a partner's user acting in a customer tenant is a foreign
//! principal there (`idp` names the partner's tenant, `tid` the customer's).
//! It must come from one of the partner's tenants, the customer must have a
//! live relationship, and no role the route denies may be in `wids` (least
//! privilege, as GDAP asks).

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use super::{Check, Reason, RouteKind, RoutePolicy};
use crate::auth::claims::{Claims, is_guid};
use crate::reason::RequestRule;

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

/// A customer tenant named in a Partner Center path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCustomer {
    /// Canonical: lower-case 8-4-4-4-12.
    pub id: String,
    /// The whole path with that segment rewritten to `id`, when the request
    /// wrote it another way (the gateway forwards what it checked).
    pub path: Option<String>,
}

/// What may follow `/v1/customers/` besides a customer id, in the Partner
/// Center REST reference:
/// - `relationshiprequests`: `GET /v1/customers/relationshiprequests`
///   (learn.microsoft.com/partner-center/developer/request-reseller-relationship);
/// - `usagerecords`: `GET /v1/customers/usagerecords`
///   (learn.microsoft.com/partner-center/developer/get-a-customer-s-usage-records);
/// - `all`: `GET /v1/customers/all/validations`
///   (learn.microsoft.com/partner-center/developer/get-a-partner-s-validation-codes).
///
/// They are also the only ones in the .NET SDK's route table
/// (microsoft/partner-center-sdk-for-dotNET,
/// `Source/PartnerSDK/Configuration/PartnerSdkConfiguration.json`:
/// `GetCustomerRelationshipRequest`, `GetCustomerUsageRecords`,
/// `GetValidationCodes`); every other route there has the customer id next.
const COLLECTIONS: [&str; 3] = ["relationshiprequests", "usagerecords", "all"];

/// The customer of a Partner Center path (`/v1/customers/{customer-id}/...`):
/// the segment after the first `customers`, in any form `Guid.Parse` reads
/// (Partner Center is ASP.NET). `None` when no segment follows `customers`
/// or it names one of Partner Center's collections; an error when it is
/// neither. Segments are compared after percent-decoding, as the upstream
/// reads them; dot segments and encoded slashes are refused anywhere, since
/// the upstream could resolve them to another customer than the one checked.
pub fn customer_in_path(path: &str) -> Result<Option<PathCustomer>, RequestRule> {
    let mut found = None;
    let mut after_customers = false;
    let mut start = 0;
    let mut segments = path.split('/').peekable();
    while let Some(raw) = segments.next() {
        let segment = decoded_segment(raw)?;
        if found.is_none() && after_customers {
            let at = start..start + raw.len();
            found = Some(customer(path, at, &segment, segments.peek().is_none())?);
        }
        after_customers = found.is_none() && is_customers(&segment);
        start += raw.len() + 1;
    }
    Ok(found.flatten())
}

fn decoded_segment(raw: &str) -> Result<Cow<'_, str>, RequestRule> {
    let segment = percent_encoding::percent_decode_str(raw).decode_utf8().map_err(|_| RequestRule::PathNotUtf8)?;
    if segment.contains('/') {
        return Err(RequestRule::EncodedSlash);
    }
    if segment.contains('\\') {
        return Err(RequestRule::EncodedBackslash);
    }
    if segment == "." || segment == ".." {
        return Err(RequestRule::DotSegment);
    }
    Ok(segment)
}

/// `customers` in any case; also with path parameters or a trailing dot or
/// space, which some servers drop (fail closed).
fn is_customers(segment: &str) -> bool {
    let name = segment.split(';').next().unwrap_or(segment);
    name.trim_end_matches(['.', ' ']).eq_ignore_ascii_case("customers")
}

/// The segment after `customers`, found at `at` in `path`.
fn customer(path: &str, at: Range<usize>, segment: &str, last: bool) -> Result<Option<PathCustomer>, RequestRule> {
    if (segment.is_empty() && last) || COLLECTIONS.iter().any(|c| segment.eq_ignore_ascii_case(c)) {
        return Ok(None);
    }
    let id = parse_guid(segment).ok_or(RequestRule::NotACustomerId)?;
    let rewritten = (path[at.clone()] != id).then(|| format!("{}{id}{}", &path[..at.start], &path[at.end..]));
    Ok(Some(PathCustomer { id, path: rewritten }))
}

/// The canonical form of a GUID written in any form .NET's `Guid.Parse`
/// accepts (N, D, B, P, X; any case; surrounding whitespace), else `None`.
/// As `System.Guid` does, the form is chosen by the dashes, the first
/// character and the braces; D (inside B and P too) keeps .NET's
/// compatibility forms, where any group but the last twelve digits may start
/// with `+` or `0x` within its width; X takes whitespace anywhere and hex
/// numbers of any length that fit their field.
pub fn parse_guid(s: &str) -> Option<String> {
    let s = s.trim();
    let guid = if s.contains('-') {
        match s.as_bytes().first() {
            Some(b'(') => dashed(s.strip_prefix('(')?.strip_suffix(')')?),
            Some(b'{') => dashed(s.strip_prefix('{')?.strip_suffix('}')?),
            _ => dashed(s),
        }
    } else if !s.contains('{') {
        digits(s)
    } else {
        hex_list(&s.chars().filter(|c| !c.is_whitespace()).collect::<String>())
    }?;
    Some(guid.canonical())
}

/// A GUID's fields, as `System.Guid` holds them.
struct Guid {
    a: u32,
    b: u16,
    c: u16,
    d: [u8; 8],
}

impl Guid {
    fn canonical(&self) -> String {
        let d: String = self.d.iter().map(|b| format!("{b:02x}")).collect();
        format!("{:08x}-{:04x}-{:04x}-{}-{}", self.a, self.b, self.c, &d[..4], &d[4..])
    }

    fn new(a: u32, b: u32, c: u32, d: [u32; 8]) -> Option<Self> {
        let mut bytes = [0; 8];
        for (out, v) in bytes.iter_mut().zip(d) {
            *out = u8::try_from(v).ok()?;
        }
        Some(Self { a, b: u16::try_from(b).ok()?, c: u16::try_from(c).ok()?, d: bytes })
    }
}

/// D: `aaaaaaaa-bbbb-cccc-dddd-dddddddddddd`.
fn dashed(s: &str) -> Option<Guid> {
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let group = |range: Range<usize>| dotnet_hex(&s[range]);
    let (a, b, c, d, e) = (group(0..8)?, group(9..13)?, group(14..18)?, group(19..23)?, group(24..28)?);
    // The last eight digits never took a prefix.
    let tail = &s[28..];
    if !tail.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let f = u32::from_str_radix(tail, 16).ok()?;
    let [f0, f1, f2, f3] = f.to_be_bytes().map(u32::from);
    Guid::new(a, b, c, [d >> 8, d & 0xff, e >> 8, e & 0xff, f0, f1, f2, f3])
}

/// N: 32 hex digits.
fn digits(s: &str) -> Option<Guid> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    dashed(&format!("{}-{}-{}-{}-{}", &s[..8], &s[8..12], &s[12..16], &s[16..20], &s[20..]))
}

/// X, whitespace removed: `{0xa,0xb,0xc,{0xd,0xd,0xd,0xd,0xd,0xd,0xd,0xd}}`.
fn hex_list(s: &str) -> Option<Guid> {
    let (abc, d) = s.strip_prefix('{')?.strip_suffix("}}")?.split_once(",{")?;
    let number = |n: &str| dotnet_hex(n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")).filter(|n| !n.is_empty())?);
    let abc: Vec<u32> = abc.split(',').map(number).collect::<Option<_>>()?;
    let d: Vec<u32> = d.split(',').map(number).collect::<Option<_>>()?;
    match (abc.as_slice(), <[u32; 8]>::try_from(d)) {
        ([a, b, c], Ok(d)) => Guid::new(*a, *b, *c, d),
        _ => None,
    }
}

/// `System.Guid`'s `TryParseHex`: an optional `+`, an optional `0x`, then
/// hex digits, at most eight once leading zeros are skipped.
fn dotnet_hex(s: &str) -> Option<u32> {
    let s = s.strip_prefix('+').unwrap_or(s);
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    let significant = s.trim_start_matches('0');
    if significant.len() > 8 || !significant.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if significant.is_empty() { Some(0) } else { u32::from_str_radix(significant, 16).ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

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
