//! Host names as routes, CONNECT targets, `Host` headers and audiences are
//! compared: lower-case, without a final dot, a DNS name; patterns `name`
//! and `*.name`.

use std::net::IpAddr;

/// A host name pattern: `name` (exactly that name) or `*.name` (every name
/// below `name`, not `name` itself). Stored lower-case, without a final dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(String);

impl HostPattern {
    pub fn parse(s: &str) -> Option<Self> {
        let (wild, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let name = normalize(name).ok()?;
        Some(Self(if wild { format!("*.{name}") } else { name }))
    }

    pub fn matches(&self, host: &str) -> bool {
        pattern_matches(&self.0, host)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True when `pattern` (`name` or `*.name`, lower-case) matches the
/// lower-case `host`.
pub fn pattern_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => host == pattern,
    }
}

/// `*.name` with no other wildcard.
pub fn is_wildcard(s: &str) -> bool {
    s.strip_prefix("*.").is_some_and(|rest| !rest.is_empty() && !rest.contains('*'))
}

/// Why a target host was not accepted as a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHost {
    /// An IP address, or a name a resolver could read as one (`127.1`, `0x7f.1`).
    IpLiteral,
    /// Not a syntactically valid host name.
    Invalid,
}

/// The host name lower-cased and without a final dot, if it is a DNS name.
pub fn normalize(host: &str) -> Result<String, BadHost> {
    if host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
        return Err(BadHost::IpLiteral);
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() || host.len() > 253 {
        return Err(BadHost::Invalid);
    }
    for label in host.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(BadHost::Invalid);
        }
    }
    // No top-level domain is numeric: such a name is an address in disguise,
    // which getaddrinfo would happily connect to (`127.1`, `2130706433`).
    let last = host.rsplit('.').next().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        return Err(BadHost::IpLiteral);
    }
    Ok(host)
}
