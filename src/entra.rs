//! What Entra's identifiers are: a GUID as Entra writes tenant, object and
//! application ids, the tenant named by an issuer, and an audience in the
//! form tokens and routes are compared in.

/// The one form in which audiences are compared, the configured ones (at
/// load) and a token's `aud` alike: one trailing slash dropped (Entra emits
/// v1 audiences "with or without a trailing slash"); a GUID lower-cased; a
/// URI's scheme and host lower-cased, which RFC 3986 §6.2.2.1 makes
/// case-insensitive, and the rest (path, query) kept as written.
pub fn audience_key(s: &str) -> String {
    let s = s.strip_suffix('/').unwrap_or(s);
    if is_guid(s) {
        return s.to_ascii_lowercase();
    }
    let Some((scheme, rest)) = s.split_once("://").filter(|(scheme, _)| is_scheme(scheme)) else {
        return s.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // User information, were there any, is not part of the host.
    let host_at = authority.rfind('@').map_or(0, |at| at + 1);
    let (user, host) = authority.split_at(host_at);
    format!("{}://{user}{}{tail}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `8-4-4-4-12` hexadecimal digits, as Entra writes tenant and object ids.
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The tenant id in an issuer URL such as `https://sts.windows.net/{tid}/`
/// (or a bare tenant id).
pub fn tenant_of(issuer: &str) -> Option<&str> {
    let path = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    path.split('/').find(|s| is_guid(s))
}

/// The sign-in hosts Entra's tenant restrictions (v2 and v1) name: the
/// egress proxy adds the restriction headers to every request to these.
pub const SIGN_IN_HOSTS: [&str; 4] =
    ["login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "login.live.com"];

/// The sign-in hosts of the national clouds (US Government, China).
pub const NATIONAL_SIGN_IN_HOSTS: [&str; 4] = [
    "login.microsoftonline.us",
    "login-us.microsoftonline.com",
    "login.partner.microsoftonline.cn",
    "login.chinacloudapi.cn",
];

/// True for a host (lower-case, no final dot) where Entra takes sign-ins
/// and token requests: a route forwarding there must be a login route.
pub fn is_sign_in_host(host: &str) -> bool {
    SIGN_IN_HOSTS.contains(&host) || NATIONAL_SIGN_IN_HOSTS.contains(&host)
}

/// Hosts never intercepted, whatever the configuration: device
/// authentication and registration break under TLS interception (Entra's
/// tenant restrictions guidance).
pub const NEVER_INTERCEPTED: [&str; 2] = ["device.login.microsoftonline.com", "enterpriseregistration.windows.net"];

/// True for a host (lower-case, no final dot) the proxy must only tunnel.
pub fn is_never_intercepted(host: &str) -> bool {
    NEVER_INTERCEPTED.contains(&host)
}
