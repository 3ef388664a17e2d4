//! Header rules on the way to and from an upstream: hop-by-hop removal
//! (RFC 9110 §7.6.1), the `X-Forwarded-*` set, and the correlation headers
//! passed on.

use std::io::Write;
use std::net::IpAddr;

use http::HeaderMap;
use http::header::{CONNECTION, HOST, HeaderName, HeaderValue};
use http::request::Parts;

pub use crate::correlation::{Correlation, MS_CORRELATION_ID, MS_REQUEST_ID};
use crate::reason::RequestRule;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Connection-specific fields: never forwarded in either direction.
static HOP_BY_HOP: [HeaderName; 9] = [
    HeaderName::from_static("connection"),
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("proxy-authenticate"),
    HeaderName::from_static("proxy-authorization"),
    HeaderName::from_static("te"),
    HeaderName::from_static("trailer"),
    HeaderName::from_static("transfer-encoding"),
    HeaderName::from_static("upgrade"),
];

/// Fields with which a client could make an upstream (IIS, ASP.NET, many
/// frameworks) serve another path or method than the one checked: removed
/// before forwarding, on every route.
static RETARGETING: [HeaderName; 5] = [
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// Fields the gateway's decision rests on: a `Connection` header that names
/// one would make the upstream see a different request than the one checked.
const PROTECTED: [&str; 2] = ["authorization", "host"];

/// Refuses a request whose `Connection` header names a protected field: a
/// proxy on the way would drop it, so the upstream would see a request
/// without the field the gateway checked.
pub fn check_connection(headers: &HeaderMap) -> Result<(), RequestRule> {
    for token in connection_tokens(headers) {
        if PROTECTED.iter().any(|p| token.eq_ignore_ascii_case(p)) {
            return Err(RequestRule::ConnectionNamesCheckedField);
        }
    }
    Ok(())
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop fields, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none (and without `Connection` no field is named):
    // one look at each name is cheaper than a removal per hop-by-hop name.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> =
        connection_tokens(headers).filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok()).collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Fields the proxy itself sets on what it forwards (tenant restrictions):
/// every copy of `remove` the client sent is dropped, whatever its case
/// (names are compared lower-cased) or count, then `set` is added.
pub struct Injection {
    pub remove: &'static [&'static HeaderName],
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub injected: prometheus::IntCounter,
    pub client_header_removed: prometheus::IntCounter,
}

impl Injection {
    fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.remove.iter().copied().chain(self.set.iter().map(|(n, _)| n))
    }

    /// The client sent its own copy of a field this sets: to ask of the
    /// request as it came, before `to_upstream` drops the hop-by-hop fields
    /// (a copy a `Connection` header named is still the client's).
    pub fn client_sent(&self, headers: &HeaderMap) -> bool {
        self.names().any(|name| headers.contains_key(name))
    }
}

/// Applies `injection` to headers already rewritten by `to_upstream`
/// (hop-by-hop fields, those a `Connection` header named among them, are
/// gone): what is added is exactly what the upstream receives.
/// `client_sent`: `Injection::client_sent` of the request as it came.
pub fn inject(headers: &mut HeaderMap, injection: &Injection, client_sent: bool) {
    let mut removed = client_sent;
    for name in injection.names() {
        if let http::header::Entry::Occupied(entry) = headers.entry(name) {
            entry.remove_entry_mult().1.for_each(drop);
            removed = true;
        }
    }
    for (name, value) in &injection.set {
        headers.insert(name.clone(), value.clone());
    }
    injection.injected.inc();
    if removed {
        injection.client_header_removed.inc();
    }
}

/// The host the client addressed: `:authority` (HTTP/2) or `Host`.
pub fn original_host(parts: &Parts) -> Option<HeaderValue> {
    match parts.uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => parts.headers.get(HOST).cloned(),
    }
}

/// Rewrites a checked request's headers for the upstream.
pub fn to_upstream(headers: &mut HeaderMap, peer: IpAddr, original_host: Option<HeaderValue>, ids: &Correlation) {
    strip_hop_by_hop(headers);
    for name in &RETARGETING {
        headers.remove(name);
    }
    // Spelled with underscores they mean the same to CGI-style servers.
    if headers.keys().any(|n| n.as_str().contains('_')) {
        let aliases: Vec<HeaderName> = headers
            .keys()
            .filter(|n| {
                n.as_str().contains('_') && RETARGETING.iter().any(|r| r.as_str() == n.as_str().replace('_', "-"))
            })
            .cloned()
            .collect();
        for name in aliases {
            headers.remove(&name);
        }
    }
    // The upstream's own name is set from the upstream URI by the client.
    headers.remove(HOST);
    append_forwarded_for(headers, peer);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
    match original_host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host),
        None => headers.remove(&X_FORWARDED_HOST),
    };
    ids.apply(headers);
}

fn append_forwarded_for(headers: &mut HeaderMap, peer: IpAddr) {
    let previous: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
    let value = if previous.is_empty() {
        // The usual case, formatted on the stack: an IPv6 address fits in 45 bytes.
        let mut buf = [0u8; 64];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let _ = write!(cursor, "{peer}");
        let len = cursor.position() as usize;
        HeaderValue::from_bytes(&buf[..len])
    } else {
        HeaderValue::from_str(&format!("{}, {peer}", previous.join(", ")))
    };
    if let Ok(v) = value {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
}

/// Rewrites the upstream's response headers for the client (the
/// correlation ids are set on every response the gateway sends).
pub fn to_downstream(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hop_by_hop_and_named_fields_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic abc"),
            ("accept", "application/json"),
            ("authorization", "Bearer t"),
        ]);
        strip_hop_by_hop(&mut h);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["accept", "authorization"]);
        let ids = Correlation::of(&HeaderMap::new());
        let mut h = map(&[
            ("X-Original-URL", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("X-HTTP-Method-Override", "DELETE"),
            ("x-http-method", "DELETE"),
            ("X-Method-Override", "DELETE"),
            ("X_Original_URL", "/admin"),
            ("x_http_method_override", "DELETE"),
            ("accept", "application/json"),
            ("authorization", "Bearer t"),
        ]);
        to_upstream(&mut h, "127.0.0.1".parse().unwrap(), None, &ids);
        assert!(RETARGETING.iter().all(|name| !h.contains_key(name)), "{h:?}");
        assert!(!h.contains_key("x_original_url") && !h.contains_key("x_http_method_override"), "{h:?}");
        assert_eq!(h["authorization"], "Bearer t");
    }

    #[test]
    fn a_client_copy_named_in_connection_is_counted() {
        static NAME: HeaderName = HeaderName::from_static("restrict-access-context");
        static REMOVE: [&HeaderName; 1] = [&NAME];
        let injection = Injection {
            remove: &REMOVE,
            set: vec![(NAME.clone(), HeaderValue::from_static("ours"))],
            injected: prometheus::IntCounter::new("i", "i").unwrap(),
            client_header_removed: prometheus::IntCounter::new("r", "r").unwrap(),
        };
        let mut h = map(&[("connection", "Restrict-Access-Context"), ("restrict-access-context", "theirs")]);
        let sent = injection.client_sent(&h);
        assert!(sent);
        to_upstream(&mut h, "127.0.0.1".parse().unwrap(), None, &Correlation::of(&HeaderMap::new()));
        assert!(!h.contains_key(&NAME), "hop-by-hop: already gone");
        inject(&mut h, &injection, sent);
        assert_eq!(h.get_all(&NAME).iter().collect::<Vec<_>>(), ["ours"]);
        assert_eq!((injection.injected.get(), injection.client_header_removed.get()), (1, 1));
        let mut h = map(&[("accept", "*/*")]);
        let sent = injection.client_sent(&h);
        inject(&mut h, &injection, sent);
        assert_eq!((injection.injected.get(), injection.client_header_removed.get()), (2, 1));
    }

    #[test]
    fn connection_may_not_name_authorization_or_host() {
        assert!(check_connection(&map(&[("connection", "close, Authorization")])).is_err());
        assert!(check_connection(&map(&[("connection", "host")])).is_err());
        assert!(check_connection(&map(&[("connection", "keep-alive")])).is_ok());
    }

    #[test]
    fn forwarded_headers() {
        let ids = Correlation::of(&HeaderMap::new());
        let mut h = map(&[("x-forwarded-for", "10.0.0.1"), ("x-forwarded-proto", "http"), ("host", "127.0.0.1:8443")]);
        to_upstream(&mut h, "127.0.0.2".parse().unwrap(), Some(HeaderValue::from_static("127.0.0.1:8443")), &ids);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "127.0.0.1:8443");
        assert!(h.get("host").is_none());
        assert_eq!(h["ms-correlationid"], ids.correlation_id);
    }
}
