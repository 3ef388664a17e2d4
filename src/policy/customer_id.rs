//! Partner Center's `{customer-id}`: found in the path, in every form
//! .NET's `Guid.Parse` reads, and written back canonical.

use std::borrow::Cow;
use std::ops::Range;

use crate::reason::RequestRule;

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
