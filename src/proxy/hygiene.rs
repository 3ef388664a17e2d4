//! Request hygiene before routing: what hyper accepts but must never reach an
//! upstream, and paths that an upstream could read differently from the
//! gateway. Ambiguity is refused (400), never guessed at.
//!
//! Framing (RFC 9112 §6): `Transfer-Encoding` together with `Content-Length`,
//! any transfer coding but a lone `chunked`, repeated or non-numeric
//! `Content-Length`, HTTP/1.1 without exactly one `Host` (RFC 9112 §3.2), a
//! `Host` that differs from the request target's authority (RFC 9113
//! §8.3.1). Byte-level faults that parsing hides (bare LF line endings, long
//! chunk extensions) are found by the listener's inspector and arrive here as
//! a `Refusal`.
//!
//! Paths: the route is chosen on the normalised path, and the normalised path
//! is what the upstream gets. Percent-encoded unreserved characters are
//! decoded (`%76%31` is `v1`); dot segments, encoded dots, slashes and
//! backslashes, empty segments, double encoding, encoded control characters
//! and segments ending with a dot or a space (which IIS strips) are refused.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery};
use http::{Uri, Version};

use crate::config::ServerConfig;

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
    pub fn new(server: &ServerConfig) -> Self {
        Self { max_headers: server.max_headers }
    }

    /// Refuses a request that is ambiguous or framed in a way that must not
    /// be forwarded, and normalises its path.
    pub fn check(&self, parts: &mut Parts) -> Result<(), &'static str> {
        if parts.headers.len() > self.max_headers {
            return Err("too many header fields");
        }
        underscores(parts)?;
        framing(parts)?;
        host(parts)?;
        if let Some(path) = normalize_path(parts.uri.path())? {
            parts.uri = with_path(&parts.uri, &path).ok_or("request target cannot be rebuilt")?;
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
fn underscores(parts: &Parts) -> Result<(), &'static str> {
    for name in parts.headers.keys() {
        if name.as_str().contains('_') {
            let hyphens = name.as_str().replace('_', "-");
            if CHECKED.contains(&hyphens.as_str()) {
                return Err("a header name spelled with underscores for a field the gateway checks");
            }
        }
    }
    Ok(())
}

fn framing(parts: &Parts) -> Result<(), &'static str> {
    let te = parts.headers.get_all(TRANSFER_ENCODING);
    let cl = parts.headers.get_all(CONTENT_LENGTH);
    let has_te = te.iter().next().is_some();
    if has_te && cl.iter().next().is_some() {
        return Err("both Transfer-Encoding and Content-Length");
    }
    if has_te {
        if parts.version != Version::HTTP_11 {
            return Err("Transfer-Encoding outside HTTP/1.1");
        }
        let mut values = te.iter();
        let only_chunked =
            values.next().is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked")) && values.next().is_none();
        if !only_chunked {
            return Err("Transfer-Encoding other than a single chunked");
        }
    }
    let mut values = cl.iter();
    if let Some(v) = values.next() {
        if values.next().is_some() {
            return Err("repeated Content-Length");
        }
        let digits = v.as_bytes();
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return Err("Content-Length is not a number");
        }
    }
    Ok(())
}

fn host(parts: &Parts) -> Result<(), &'static str> {
    let mut hosts = parts.headers.get_all(HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err("more than one Host");
    }
    let host = match first {
        None if parts.version == Version::HTTP_11 && parts.uri.authority().is_none() => {
            return Err("HTTP/1.1 request without Host");
        }
        None if parts.uri.authority().is_some_and(|a| a.as_str().contains('@')) => {
            return Err("user information in the request target");
        }
        None => return Ok(()),
        Some(value) => {
            let authority: Authority =
                value.to_str().ok().and_then(|s| s.parse().ok()).ok_or("Host is not host[:port]")?;
            if authority.as_str().contains('@') || authority.host().is_empty() {
                return Err("Host is not host[:port]");
            }
            authority
        }
    };
    match parts.uri.authority() {
        Some(target) if target.as_str().contains('@') => Err("user information in the request target"),
        Some(target) if !target.as_str().eq_ignore_ascii_case(host.as_str()) => {
            Err("Host differs from the request target's authority")
        }
        _ => Ok(()),
    }
}

/// The normalised form of `path` when it differs from `path`; an error when
/// `path` is ambiguous.
pub fn normalize_path(path: &str) -> Result<Option<String>, &'static str> {
    if !path.starts_with('/') {
        return Err("request target is not an absolute path");
    }
    if path.contains('\\') {
        return Err("backslash in path");
    }
    let bytes = path.as_bytes();
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err("control character in path");
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
        let (Some(hi), Some(lo)) = (bytes.get(i + 1).and_then(hex), bytes.get(i + 2).and_then(hex)) else {
            return Err("invalid percent-encoding in path");
        };
        let decoded = hi << 4 | lo;
        let o = out.get_or_insert_with(|| path[..i].to_string());
        match decoded {
            b'.' => return Err("encoded dot in path"),
            b'/' => return Err("encoded slash in path"),
            b'\\' => return Err("encoded backslash in path"),
            // `%25` then a hex digit, written as is or itself encoded
            // (`%2535`: the `5` would be decoded here and make `%255`).
            b'%' if next_is_hex(bytes, i + 3) => {
                return Err("double percent-encoding in path");
            }
            0..=0x1f | 0x7f => return Err("encoded control character in path"),
            c if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'~' => o.push(c as char),
            c => {
                o.push('%');
                o.push(HEX[usize::from(c >> 4)] as char);
                o.push(HEX[usize::from(c & 0xf)] as char);
            }
        }
        i += 3;
    }
    let normalized = out.as_deref().unwrap_or(path);
    let segments: Vec<&str> = normalized[1..].split('/').collect();
    let last = segments.len() - 1;
    for (n, segment) in segments.iter().enumerate() {
        // `..;x` is `..` to servers that strip path parameters.
        let name = segment.split(';').next().unwrap_or(segment);
        if name == "." || name == ".." {
            return Err("dot segment in path");
        }
        if segment.is_empty() && n != last {
            return Err("empty segment in path");
        }
        // IIS strips a trailing dot or space: `customers.` is `customers` to it.
        if [name, segment].iter().any(|s| s.ends_with(['.', ' ']) || s.ends_with("%20")) {
            return Err("trailing dot or space in a path segment");
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
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, &'static str> {
        normalize_path(p).map(|o| o.unwrap_or_else(|| p.to_string()))
    }

    #[test]
    fn plain_paths_are_untouched() {
        for p in [
            "/",
            "/v1/customers",
            "/v1/customers/",
            "/v1/a%20b",
            "/v1/x%3Ay",
            "/v1/file.txt",
            "/a;b=c",
            "/..a/.b",
            "/v1.0/me",
            "/v1/a.b",
            "/v1/.well-known/x",
            "/v1/x%C2%A0",
        ] {
            assert_eq!(normalize_path(p), Ok(None), "{p}");
        }
    }

    #[test]
    fn unreserved_characters_are_decoded_and_hex_upper_cased() {
        assert_eq!(norm("/%76%31/customers"), Ok("/v1/customers".into()));
        assert_eq!(norm("/v1/%7e%5F%2d"), Ok("/v1/~_-".into()));
        assert_eq!(norm("/v1/a%3ab"), Ok("/v1/a%3Ab".into()));
        assert_eq!(norm("/v1/%C3%A9"), Ok("/v1/%C3%A9".into()));
        assert_eq!(norm("/%76\u{e9}/%41\u{e9}"), Ok("/v\u{e9}/A\u{e9}".into()));
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for p in [
            "/v1/../admin",
            "/v1/./x",
            "/v1/..",
            "/v1/..;/admin",
            "/v1/%2e%2e/admin",
            "/v1/%2E%2e/admin",
            "/v1/.%2e/admin",
            "/v1/..%2fadmin",
            "/v1%2F..%2Fadmin",
            "/v1\\..\\admin",
            "/v1/%5c../admin",
            "/v1//admin",
            "//v1/x",
            "/v1/%252e%252e/admin",
            "/%25%35%3AA/",
            "/v1/%25%36%31",
            "/v1/%00",
            "/v1/%0d%0a",
            "/v1/%zz",
            "/v1/%4",
            "*",
            "v1/x",
        ] {
            assert!(normalize_path(p).is_err(), "{p}");
        }
    }

    /// IIS strips a trailing dot or space from a segment: `/v1/customers./x`
    /// is `/v1/customers/x` to it.
    #[test]
    fn segments_ending_with_a_dot_or_a_space_are_refused() {
        for p in [
            "/v1/customers./x",
            "/v1/customers%20/x",
            "/v1./customers",
            "/v1/x.",
            "/v1/x%20",
            "/v1/customers.../x",
            "/v1/customers.%20/x",
            "/v1/customers%20./x",
            "/v1/customers%20%20",
            "/v1/customers.;a=b/x",
            "/v1/customers;a=b./x",
            "/%76%31./x",
            "/v1/%43ustomers./x",
            "/v1/...",
        ] {
            assert_eq!(normalize_path(p), Err("trailing dot or space in a path segment"), "{p}");
        }
        assert_eq!(normalize_path("/v1/../x"), Err("dot segment in path"));
        assert_eq!(normalize_path("/v1/%2e/x"), Err("encoded dot in path"));
    }

    fn parts(raw: http::request::Builder) -> Parts {
        raw.body(()).unwrap().into_parts().0
    }

    fn check(b: http::request::Builder) -> Result<(), &'static str> {
        Hygiene::default().check(&mut parts(b))
    }

    fn h1() -> http::request::Builder {
        http::Request::builder().uri("/v1/x").version(Version::HTTP_11).header("host", "localhost:8443")
    }

    #[test]
    fn framing_rules() {
        assert!(check(h1().header("content-length", "5")).is_ok());
        assert!(check(h1().header("transfer-encoding", "Chunked")).is_ok());
        assert!(check(h1().header("transfer-encoding", "chunked").header("content-length", "5")).is_err());
        assert!(check(h1().header("transfer-encoding", "gzip, chunked")).is_err());
        assert!(check(h1().header("transfer-encoding", "chunked").header("transfer-encoding", "chunked")).is_err());
        assert!(check(h1().header("content-length", "5").header("content-length", "5")).is_err());
        assert!(check(h1().header("content-length", "5, 5")).is_err());
        assert!(check(h1().header("content-length", "+5")).is_err());
        let h10 = http::Request::builder().uri("/x").version(Version::HTTP_10).header("transfer-encoding", "chunked");
        assert!(check(h10).is_err());
    }

    #[test]
    fn host_rules() {
        assert!(check(http::Request::builder().uri("/x").version(Version::HTTP_11)).is_err());
        assert!(check(http::Request::builder().uri("/x").version(Version::HTTP_10)).is_ok());
        assert!(check(h1().header("host", "other")).is_err());
        let userinfo = http::Request::builder().uri("/x").header("host", "evil@localhost");
        assert!(check(userinfo).is_err());
        let h2 = http::Request::builder().uri("https://localhost:8443/x").version(Version::HTTP_2);
        assert!(check(h2).is_ok());
        let h2 = http::Request::builder()
            .uri("https://LOCALHOST:8443/x")
            .version(Version::HTTP_2)
            .header("host", "localhost:8443");
        assert!(check(h2).is_ok());
        let h2 =
            http::Request::builder().uri("https://localhost:8443/x").version(Version::HTTP_2).header("host", "evil");
        assert!(check(h2).is_err());
        let userinfo = http::Request::builder().uri("https://evil@localhost:8443/x").version(Version::HTTP_2);
        assert!(check(userinfo).is_err());
    }

    #[test]
    fn the_normalised_path_keeps_the_query() {
        let mut p = parts(h1().uri("/%76%31/customers?size=10&x=%2F"));
        Hygiene::default().check(&mut p).unwrap();
        assert_eq!(p.uri.path_and_query().unwrap().as_str(), "/v1/customers?size=10&x=%2F");
    }

    #[test]
    fn underscores_cannot_stand_for_a_checked_field() {
        for name in [
            "x_ms_authorization_auxiliary",
            "X_MS_Authorization_Auxiliary",
            "content_length",
            "transfer_encoding",
            "x_forwarded_for",
        ] {
            assert!(check(h1().header(name, "x")).is_err(), "{name}");
        }
        assert!(check(h1().header("x_custom_thing", "x")).is_ok());
        assert!(check(h1().header("x-ms-client-request-id", "x")).is_ok());
    }

    #[test]
    fn header_count_is_bounded() {
        let mut b = h1();
        for i in 0..100 {
            b = b.header(format!("x-{i}"), "1");
        }
        assert_eq!(check(b), Err("too many header fields"));
    }
}
