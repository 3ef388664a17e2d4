//! Route selection: the first route whose `host` (when set; `*.name` for any
//! name below `name`) and `path_prefix` match. No match means 404: this is
//! not an open proxy.

use http::header::HOST;
use http::request::Parts;

use crate::config::RouteConfig;
use crate::host::pattern_matches;
use crate::metrics::RouteMetrics;
use crate::upstream::Upstream;

/// A configured route with its upstream connection pool and its metrics.
pub struct Route {
    pub config: RouteConfig,
    pub upstream: Upstream,
    pub metrics: RouteMetrics,
}

/// True when `path` is `prefix` or lies below it on a segment boundary:
/// `/v1` matches `/v1` and `/v1/customers`, not `/v1x`. Letters match in any
/// case, as Microsoft's APIs read paths case-insensitively (`/V1` must not
/// slip past a `/v1` route to another one). Segments are compared without
/// their path parameters (`;x`, also with `;` encoded): a server that strips
/// them reads `/v1;x/customers` as `/v1/customers`, so it must not slip past
/// a `/v1` or `/v1/customers` route either.
pub fn path_matches(prefix: &str, path: &str) -> bool {
    let (Some(prefix), Some(path)) = (prefix.strip_prefix('/'), path.strip_prefix('/')) else {
        return false;
    };
    let mut have = path.split('/');
    let mut want = prefix.split('/').peekable();
    while let Some(w) = want.next() {
        let h = have.next();
        // A prefix ending with `/`: anything below it.
        if w.is_empty() && want.peek().is_none() {
            return h.is_some();
        }
        match h {
            Some(h) if without_parameters(h).eq_ignore_ascii_case(w) => {}
            _ => return false,
        }
    }
    true
}

/// A path segment up to its first parameter (`;`, or `;` percent-encoded).
fn without_parameters(segment: &str) -> &str {
    let raw = segment.find(';');
    let encoded = segment.as_bytes().windows(3).position(|w| w.eq_ignore_ascii_case(b"%3b"));
    match raw.into_iter().chain(encoded).min() {
        Some(end) => &segment[..end],
        None => segment,
    }
}

/// The host the request names, lower-cased, without port.
pub fn request_host(parts: &Parts) -> Option<String> {
    let raw = match parts.uri.authority() {
        Some(a) => a.host().to_string(),
        None => {
            let value = parts.headers.get(HOST)?.to_str().ok()?;
            let authority: http::uri::Authority = value.parse().ok()?;
            authority.host().to_string()
        }
    };
    Some(raw.trim_end_matches('.').to_ascii_lowercase())
}

/// The first route matching the request.
pub fn find<'a>(routes: &'a [Route], parts: &Parts) -> Option<&'a Route> {
    first(routes, |r| &r.config, parts)
}

/// The first configured route matching the request, as `find` chooses it
/// (for tools that judge a request without serving it).
pub fn find_config<'a>(routes: &'a [RouteConfig], parts: &Parts) -> Option<&'a RouteConfig> {
    first(routes, |r| r, parts)
}

fn first<'a, T>(routes: &'a [T], config: impl Fn(&T) -> &RouteConfig, parts: &Parts) -> Option<&'a T> {
    let path = parts.uri.path();
    let mut host: Option<Option<String>> = None;
    routes.iter().find(|route| {
        let route = config(route);
        if !path_matches(&route.path_prefix, path) {
            return false;
        }
        match &route.host {
            None => true,
            Some(want) => {
                host.get_or_insert_with(|| request_host(parts)).as_deref().is_some_and(|h| pattern_matches(want, h))
            }
        }
    })
}

/// The first route that names `host` (lower-case, chosen by the caller, not
/// read from the request) and matches `path`. Routes without a `host` never
/// match: they forward to their own upstream, not to `host`.
pub fn find_for_host<'a>(routes: &'a [Route], host: &str, path: &str) -> Option<&'a Route> {
    routes.iter().find(|route| {
        let route = &route.config;
        route.host.as_deref().is_some_and(|want| pattern_matches(want, host)) && path_matches(&route.path_prefix, path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host: Option<&str>) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn prefixes_match_on_segments() {
        assert!(path_matches("/", "/anything"));
        assert!(path_matches("/v1", "/v1"));
        assert!(path_matches("/v1", "/v1/customers"));
        assert!(!path_matches("/v1", "/v1x"));
        assert!(path_matches("/v1/", "/v1/x"));
        assert!(!path_matches("/v1/", "/v1"));
        assert!(path_matches("/v1", "/V1/customers"));
        assert!(!path_matches("/v1", "/"));
        assert!(path_matches("/v1", "/v1;x/customers"));
        assert!(path_matches("/v1", "/V1%3bx"));
        assert!(!path_matches("/v1", "/v1x;/customers"));
        assert!(path_matches("/v1/customers", "/v1;x/customers;y/abc"));
        assert!(path_matches("/v1/customers", "/V1%3B/Customers"));
        assert!(!path_matches("/v1/customers", "/v1/customersx"));
        assert!(!path_matches("/v1/customers", "/v1;x"));
        assert!(path_matches("/v1/", "/v1;x/y"));
        assert!(!path_matches("/v1/", "/v1;x"));
    }

    #[test]
    fn host_from_authority_or_header() {
        assert_eq!(
            request_host(&parts("/", Some("API.PartnerCenter.microsoft.com:443"))).unwrap(),
            "api.partnercenter.microsoft.com"
        );
        assert_eq!(request_host(&parts("https://graph.microsoft.com./v1.0", None)).unwrap(), "graph.microsoft.com");
        assert_eq!(request_host(&parts("/", Some("[::1]:8443"))).unwrap(), "[::1]");
        assert!(request_host(&parts("/", None)).is_none());
    }
}
