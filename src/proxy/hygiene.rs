//! Request hygiene before routing: what hyper accepts but must never reach an
//! upstream, and paths that an upstream could read differently from the
//! gateway. Ambiguity is refused (400, naming the `RequestRule`), never
//! guessed at.
//!
//! Framing (RFC 9112 §6): `Transfer-Encoding` together with `Content-Length`,
//! any transfer coding but a lone `chunked`, repeated or non-numeric
//! `Content-Length`, HTTP/1.1 without exactly one `Host` (RFC 9112 §3.2), a
//! `Host` that differs from the request target's authority (RFC 9113
//! §8.3.1). Byte-level faults that parsing hides (bare LF line endings, long
//! chunk extensions) are found by the listener's inspector and arrive here as
//! a `Refusal`.
//!
//! Paths: the route is chosen on the normalised path, the rules read it, and
//! it is what the upstream gets. Normalising decodes percent-encoded
//! unreserved characters (`%76%31` is `v1`, `%2E` is `.`) and collapses
//! empty segments (`/v1.0//me` is `/v1.0/me`); what an upstream could still
//! read differently once it gets that path is refused: dot segments, encoded
//! slashes and backslashes, backslashes, double encoding, control
//! characters, and segments ending with a dot or a space (which IIS strips).

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery};
use http::{Uri, Version};

use crate::config::HttpSettings;
use crate::reason::RequestRule;

/// Request checks that depend on the configuration.
#[derive(Debug, Clone)]
pub struct Hygiene {
    max_headers: usize,
}

impl Default for Hygiene {
    fn default() -> Self {
        Self { max_headers: 100 }
    }
}

impl Hygiene {
    pub fn new(http: &HttpSettings) -> Self {
        Self { max_headers: http.max_headers }
    }

    /// Refuses a request that is ambiguous or framed in a way that must not
    /// be forwarded, and normalises its path.
    pub fn check(&self, parts: &mut Parts) -> Result<(), RequestRule> {
        if parts.headers.len() > self.max_headers {
            return Err(RequestRule::TooManyHeaders);
        }
        crate::upstream::headers::check_connection(&parts.headers)?;
        underscores(parts)?;
        framing(parts)?;
        host(parts)?;
        if let Some(path) = normalize_path(parts.uri.path())? {
            parts.uri = with_path(&parts.uri, &path).ok_or(RequestRule::UnbuildableTarget)?;
        }
        Ok(())
    }
}

/// Fields the gateway reads or relies on. Servers that read headers CGI-style
/// (IIS, ASP.NET, PHP-FPM: `HTTP_X_MS_AUTHORIZATION_AUXILIARY`) cannot tell
/// `X_Name` from `X-Name`; nginx drops such names for this reason.
const CHECKED: [&str; 14] = [
    "authorization",
    "x-ms-authorization-auxiliary",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "content-type",
    "content-encoding",
    "connection",
    "proxy-authorization",
    "te",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-host",
];

/// Refuses a field name spelled with underscores that stands for one the
/// gateway checks: the upstream could read it as that field, unchecked.
/// Forwarding it as sent keeps the ambiguity, so it stays refused.
fn underscores(parts: &Parts) -> Result<(), RequestRule> {
    for name in parts.headers.keys() {
        if name.as_str().contains('_') {
            let hyphens = name.as_str().replace('_', "-");
            if CHECKED.contains(&hyphens.as_str()) {
                return Err(RequestRule::UnderscoreHeader);
            }
        }
    }
    Ok(())
}

/// The framing rules: where a proxy and an upstream may disagree on where a
/// request ends, the next request can be smuggled; all stay refused.
fn framing(parts: &Parts) -> Result<(), RequestRule> {
    let te = parts.headers.get_all(TRANSFER_ENCODING);
    let cl = parts.headers.get_all(CONTENT_LENGTH);
    let has_te = te.iter().next().is_some();
    if has_te && cl.iter().next().is_some() {
        return Err(RequestRule::TeAndContentLength);
    }
    if has_te {
        if parts.version != Version::HTTP_11 {
            return Err(RequestRule::TeOutsideHttp11);
        }
        let mut values = te.iter();
        let only_chunked =
            values.next().is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked")) && values.next().is_none();
        if !only_chunked {
            return Err(RequestRule::TeNotChunked);
        }
    }
    let mut values = cl.iter();
    if let Some(v) = values.next() {
        if values.next().is_some() {
            return Err(RequestRule::RepeatedContentLength);
        }
        let digits = v.as_bytes();
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(RequestRule::BadContentLength);
        }
    }
    Ok(())
}

/// The host rules: routes are chosen by host, so a request must name one
/// host, one way. All stay refused.
fn host(parts: &Parts) -> Result<(), RequestRule> {
    let mut hosts = parts.headers.get_all(HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(RequestRule::RepeatedHost);
    }
    let host = match first {
        None if parts.version == Version::HTTP_11 && parts.uri.authority().is_none() => {
            return Err(RequestRule::MissingHost);
        }
        None if parts.uri.authority().is_some_and(|a| a.as_str().contains('@')) => {
            return Err(RequestRule::Userinfo);
        }
        None => return Ok(()),
        Some(value) => {
            let authority: Authority = value.to_str().ok().and_then(|s| s.parse().ok()).ok_or(RequestRule::BadHost)?;
            if authority.as_str().contains('@') {
                return Err(RequestRule::Userinfo);
            }
            if authority.host().is_empty() {
                return Err(RequestRule::BadHost);
            }
            authority
        }
    };
    match parts.uri.authority() {
        Some(target) if target.as_str().contains('@') => Err(RequestRule::Userinfo),
        Some(target) if !target.as_str().eq_ignore_ascii_case(host.as_str()) => Err(RequestRule::HostMismatch),
        _ => Ok(()),
    }
}

/// The normalised form of `path` when it differs from `path`; the rule it
/// breaks when it is ambiguous. The normalised path is the one routed,
/// checked and forwarded, so a rule stays only where an upstream could
/// still read that path differently from the gateway.
pub fn normalize_path(path: &str) -> Result<Option<String>, RequestRule> {
    // Origin form only (RFC 9112 §3.2.1): `*` and relative targets have no
    // path a route or a rule could read.
    if !path.starts_with('/') {
        return Err(RequestRule::PathNotAbsolute);
    }
    // IIS and ASP.NET read `\` as `/`: `/open\..\v1` is `/v1` to them.
    // Forwarded as sent the ambiguity stays; rewritten it would guess at
    // the upstream.
    if path.contains('\\') {
        return Err(RequestRule::Backslash);
    }
    let bytes = path.as_bytes();
    // A raw control character truncates a path (NUL) or splits a line (CR
    // LF) in whatever reads it next.
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(RequestRule::ControlCharacter);
    }
    let mut out: Option<String> = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            // Up to the next '%' (ASCII, so a character boundary).
            let end = bytes[i..].iter().position(|&b| b == b'%').map_or(bytes.len(), |p| i + p);
            if let Some(o) = out.as_mut() {
                o.push_str(&path[i..end]);
            }
            i = end;
            continue;
        }
        // Upstreams disagree on a '%' without two hex digits: kept as
        // text, refused, or decoded by a lenient parser.
        let (Some(hi), Some(lo)) = (bytes.get(i + 1).and_then(hex), bytes.get(i + 2).and_then(hex)) else {
            return Err(RequestRule::BadPercentEncoding);
        };
        let decoded = hi << 4 | lo;
        let o = out.get_or_insert_with(|| path[..i].to_string());
        match decoded {
            // Some upstreams decode `%2F` into a separator, others keep it in
            // the segment: their segments would not be the ones checked.
            b'/' => return Err(RequestRule::EncodedSlash),
            // Decoded upstream, then read as `/` (see the backslash above).
            b'\\' => return Err(RequestRule::EncodedBackslash),
            // `%25` then a hex digit, written as is or itself encoded
            // (`%2535`: the `5` would be decoded here and make `%255`): an
            // upstream that decodes twice reads `%252e` as `.`.
            b'%' if next_is_hex(bytes, i + 3) => {
                return Err(RequestRule::DoubleEncoding);
            }
            // Decoded upstream, a control character does what a raw one does.
            0..=0x1f | 0x7f => return Err(RequestRule::EncodedControlCharacter),
            // Unreserved (RFC 3986 §2.3; `.` included, judged as a dot below):
            // decoded, as every upstream reads it.
            c if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'~' | b'.') => o.push(c as char),
            c => {
                o.push('%');
                o.push(HEX[usize::from(c >> 4)] as char);
                o.push(HEX[usize::from(c & 0xf)] as char);
            }
        }
        i += 3;
    }
    // Empty segments: SDKs whose base URL ends with `/` send `/v1.0//me`,
    // and Microsoft's APIs read it as `/v1.0/me`. Collapsed, the path the
    // upstream gets is the one routed and checked: nothing is left to read
    // differently. A trailing `/` is kept (it ends the last segment).
    if out.as_deref().unwrap_or(path).contains("//") {
        let from = out.take().unwrap_or_else(|| path.to_string());
        let mut collapsed = String::with_capacity(from.len());
        for c in from.chars() {
            if !(c == '/' && collapsed.ends_with('/')) {
                collapsed.push(c);
            }
        }
        out = Some(collapsed);
    }
    let normalized = out.as_deref().unwrap_or(path);
    for segment in normalized[1..].split('/') {
        // `..` and `.`, also with path parameters: `..;x` is `..` to servers
        // that strip them (Tomcat, Jetty) and a name to others (IIS), so
        // whether it is a dot segment at all depends on the upstream.
        // Plain `..` could be resolved, but no client sends one (RFC 3986
        // §5.2.4 has the client remove dot segments, as browsers, curl and
        // Microsoft's SDKs do): a request that carries one was written to
        // find where the gateway and the upstream disagree, and resolving
        // it would rewrite the segments the client named. An encoded `;`
        // counts too (written `%3B` once normalised): a server that decodes
        // before it strips parameters reads `..%3B` as `..;`, and `%2E%2E%3B`
        // is `..%3B` once its dots are decoded.
        let name = segment.split(';').next().unwrap_or(segment);
        let name = name.split("%3B").next().unwrap_or(name);
        if name == "." || name == ".." {
            return Err(RequestRule::DotSegment);
        }
        // IIS strips a trailing dot or space: `customers.` is `customers` to
        // it, a name no route or rule of the gateway saw.
        if [name, segment].iter().any(|s| s.ends_with(['.', ' ']) || s.ends_with("%20")) {
            return Err(RequestRule::TrailingDotOrSpace);
        }
    }
    Ok(out.filter(|o| o != path))
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// True when the character at `at` is a hex digit, or a percent-encoded one.
fn next_is_hex(bytes: &[u8], at: usize) -> bool {
    match bytes.get(at) {
        Some(b'%') => match (bytes.get(at + 1).and_then(hex), bytes.get(at + 2).and_then(hex)) {
            (Some(hi), Some(lo)) => (hi << 4 | lo).is_ascii_hexdigit(),
            _ => false,
        },
        Some(b) => hex(b).is_some(),
        None => false,
    }
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

/// `uri` with its path replaced by `path` (the query kept).
pub(crate) fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let path_and_query: PathAndQuery = match uri.query() {
        Some(q) => format!("{path}?{q}").parse().ok()?,
        None => path.parse().ok()?,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests;
