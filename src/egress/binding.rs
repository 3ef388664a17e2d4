//! Audience binding: through the egress proxy a bearer token may only travel
//! to the host its audience names. A Partner Center token sent to Graph, or
//! a Graph token sent to any other host, is refused before anything else is
//! checked, so a token cannot be carried off through the proxy.
//!
//! An audience names hosts three ways: an `https://host` audience names its
//! own host; a route that accepts an audience binds it to the route's
//! `host`; and Microsoft's first-party resources are known by app id too.
//! An audience that names no host (another API's app id) binds nothing.
//! The claims are read without verifying the signature: this check can only
//! refuse, never admit, so a forged audience gains nothing.

use std::collections::HashMap;

use http::{HeaderMap, Uri};
use serde::Deserialize;

use super::error::EgressError;
use super::hosts::{self, pattern_matches};
use crate::auth::claims::Audience;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::auth::credentials;
use crate::config::RouteConfig;

/// Microsoft first-party resources: audience (URI or app id) → the hosts
/// that serve it. ARM tokens name `management.core.windows.net` but are
/// sent to `management.azure.com`.
const FIRST_PARTY: &[(&str, &[&str])] = &[
    ("https://api.partnercenter.microsoft.com", &["api.partnercenter.microsoft.com"]),
    ("fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd", &["api.partnercenter.microsoft.com"]),
    ("https://graph.microsoft.com", &["graph.microsoft.com"]),
    ("00000003-0000-0000-c000-000000000000", &["graph.microsoft.com"]),
    ("https://management.azure.com", &["management.azure.com", "management.core.windows.net"]),
    ("https://management.core.windows.net", &["management.azure.com", "management.core.windows.net"]),
    ("797f4846-ba00-4fd7-ba43-dac1f8f63013", &["management.azure.com", "management.core.windows.net"]),
    ("https://outlook.office365.com", &["outlook.office365.com"]),
    ("00000002-0000-0ff1-ce00-000000000000", &["outlook.office365.com"]),
];

#[derive(Debug, Clone)]
pub struct AudienceBinding {
    /// Audience (lower-case, no trailing slash) → host patterns it may go to.
    bound: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct AudOnly {
    #[serde(default)]
    aud: Audience,
}

impl AudienceBinding {
    pub fn new(routes: &[RouteConfig]) -> Self {
        let mut bound: HashMap<String, Vec<String>> = HashMap::new();
        for (aud, hosts) in FIRST_PARTY {
            bound.entry(aud.to_string()).or_default().extend(hosts.iter().map(|h| h.to_string()));
        }
        for route in routes {
            let Some(host) = &route.host else { continue };
            for aud in &route.audiences {
                bound.entry(key(aud)).or_default().push(host.clone());
            }
        }
        Self { bound }
    }

    /// Refuses a request that carries, anywhere (every `Authorization`
    /// value, auxiliary tokens, an `access_token` query parameter, cookies),
    /// a bearer token bound to hosts other than `host` (normalised). A token
    /// that binds nothing, or none at all: no objection here (the route's
    /// own checks still run on guarded hosts).
    pub fn check(&self, path_and_query: &str, headers: &HeaderMap, host: &str) -> Result<(), EgressError> {
        // Every token, however long: the length limit protects verification,
        // and nothing here is verified.
        for token in credentials::every_token(path_and_query, headers) {
            for audience in audiences(&token) {
                self.check_one(&audience, host)?;
            }
        }
        Ok(())
    }

    /// One token's audience: any one of its values that allows `host` will
    /// do; refused when some value binds it elsewhere and none allows it.
    fn check_one(&self, audience: &Audience, host: &str) -> Result<(), EgressError> {
        let mut bound = false;
        for aud in audience.iter() {
            let key = key(aud);
            let own = own_host(&key);
            let configured = self.bound.get(&key).map(Vec::as_slice).unwrap_or_default();
            if own.is_none() && configured.is_empty() {
                continue;
            }
            bound = true;
            if own.as_deref() == Some(host) || configured.iter().any(|p| pattern_matches(p, host)) {
                return Ok(());
            }
        }
        if bound { Err(EgressError::AudienceHostMismatch) } else { Ok(()) }
    }
}

/// A token's audience, and that of the access token it wraps (a
/// proof-of-possession token carries one in `at`).
fn audiences(token: &str) -> Vec<Audience> {
    let mut out = Vec::new();
    let Some(outer) = payload(token) else { return out };
    out.extend(serde_json::from_value::<AudOnly>(outer.clone()).ok().map(|a| a.aud));
    if let Some(inner) = outer.get("at").and_then(|v| v.as_str()).and_then(payload) {
        out.extend(serde_json::from_value::<AudOnly>(inner).ok().map(|a| a.aud));
    }
    out
}

/// The claims of a JWS, read without looking at its header: whatever its
/// algorithm, a token's audience binds it.
fn payload(token: &str) -> Option<serde_json::Value> {
    let segment = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn key(aud: &str) -> String {
    aud.trim_end_matches('/').to_ascii_lowercase()
}

/// The host of an `http(s)://host[/...]` audience.
fn own_host(aud: &str) -> Option<String> {
    let uri: Uri = aud.parse().ok()?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) {
        return None;
    }
    hosts::normalize(uri.host()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use http::HeaderValue;
    use http::header::AUTHORIZATION;

    fn headers(aud: serde_json::Value) -> HeaderMap {
        let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let token = format!(
            "{}.{}.c2ln",
            b64(serde_json::json!({"alg": "RS256", "kid": "k"})),
            b64(serde_json::json!({ "aud": aud }))
        );
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        h
    }

    fn binding() -> AudienceBinding {
        let config = crate::config::Config::from_toml(
            r#"
[[routes]]
name = "custom"
host = "*.api.contoso.example"
upstream = "https://api.contoso.example"
audiences = ["api://contoso-automation", "8b1f6a52-1c7d-4e3b-9a0f-2d4c6e8a0b1c"]
"#,
        )
        .unwrap();
        AudienceBinding::new(&config.routes)
    }

    fn check(aud: serde_json::Value, host: &str) -> Result<(), EgressError> {
        binding().check("/", &headers(aud), host)
    }

    #[test]
    fn tokens_go_only_where_their_audience_points() {
        use serde_json::json;
        let pc = "api.partnercenter.microsoft.com";
        assert!(check(json!("https://api.partnercenter.microsoft.com"), pc).is_ok());
        assert!(check(json!("https://api.partnercenter.microsoft.com/"), pc).is_ok());
        assert!(check(json!("fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd"), pc).is_ok());
        assert!(check(json!("https://api.partnercenter.microsoft.com"), "graph.microsoft.com").is_err());
        assert!(check(json!("00000003-0000-0000-c000-000000000000"), pc).is_err());
        assert!(check(json!("https://graph.microsoft.com"), "files.example.net").is_err());
        assert!(check(json!("https://management.core.windows.net/"), "management.azure.com").is_ok());
        assert!(check(json!("https://outlook.office365.com"), "evil.example").is_err());
        // Bound by a route with a wildcard host.
        assert!(check(json!("api://contoso-automation"), "eu.api.contoso.example").is_ok());
        assert!(check(json!("api://contoso-automation"), "graph.microsoft.com").is_err());
        // An audience that names nothing binds nothing.
        assert!(check(json!("api://someone-else"), "files.example.net").is_ok());
        assert!(check(json!("6e4b1c1a-0000-4000-8000-000000000000"), pc).is_ok());
        // Several audiences: any one that allows the host will do.
        assert!(check(json!(["https://graph.microsoft.com", "https://api.partnercenter.microsoft.com"]), pc).is_ok());
        assert!(check(json!(["https://graph.microsoft.com", "api://someone-else"]), pc).is_err());
    }

    #[test]
    fn no_token_or_no_audience_is_not_this_checks_business() {
        assert!(binding().check("/", &HeaderMap::new(), "graph.microsoft.com").is_ok());
        assert!(check(serde_json::Value::Null, "graph.microsoft.com").is_ok());
        let mut garbage = HeaderMap::new();
        garbage.insert(AUTHORIZATION, HeaderValue::from_static("Bearer not-a-jwt"));
        assert!(binding().check("/", &garbage, "graph.microsoft.com").is_ok());
    }
}
