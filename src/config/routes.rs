//! `[[routes]]`: where each route forwards, what it accepts, its policy,
//! limits and answer format.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use http::Uri;
use http::uri::{Authority, Scheme};

use super::error::ConfigError;
use super::limits::RouteRate;
use super::values::is_loopback;
use super::{compute, limits, policy, raw};
use crate::auth::claims::audience_key;
use crate::error::ErrorFormat;
use crate::host::{self as hosts, BadHost, HostPattern};
use crate::policy::{RouteKind, RoutePolicy};

/// The route label used for requests that match no route; reserved as a route name.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    pub path_prefix: String,
    /// `route_host`'s form (a lower-case DNS name without a final dot,
    /// `*.name`, or an address); `None` matches any host.
    pub host: Option<String>,
    pub upstream: UpstreamTarget,
    pub upstream_ca: Option<PathBuf>,
    /// Accepted audiences, as `audience_key` writes them.
    pub audiences: Vec<String>,
    pub policy: RoutePolicy,
    pub rate_limits: Vec<RouteRate>,
    /// How the gateway's own answers on this route are written.
    pub error_format: ErrorFormat,
}

/// Where a route forwards to: scheme and authority, plus an optional base path
/// that is put in front of the request's path.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub scheme: Scheme,
    pub authority: Authority,
    pub base_path: String,
}

pub(super) fn route(i: usize, raw: &raw::Route) -> Result<RouteConfig, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 64
        && raw.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(ConfigError::invalid(key("name"), "1-64 characters from a-z, 0-9, '-' and '_'"));
    }
    if raw.name == UNMATCHED_ROUTE {
        return Err(ConfigError::invalid(key("name"), "\"unmatched\" is reserved"));
    }
    if !raw.path_prefix.starts_with('/') {
        return Err(ConfigError::invalid(key("path_prefix"), "must start with '/'"));
    }
    let host = raw.host.as_deref().map(|h| route_host(&key("host"), h)).transpose()?;
    let upstream = upstream_target(&key("upstream"), &raw.upstream)?;
    let audiences: Vec<String> = raw.audiences.iter().map(|a| audience_key(a)).collect();
    // The kind is inferred from the audiences as tokens are compared with them.
    let normalised = raw::Route { audiences: audiences.clone(), ..raw.clone() };
    let kind = policy::kind(&key("kind"), &normalised, upstream.authority.host())?;
    sign_in_upstream(i, &upstream, kind)?;
    // A login route checks token requests, which carry no token to check.
    if audiences.is_empty() && kind != RouteKind::Login {
        return Err(ConfigError::invalid(key("audiences"), "at least one audience is required"));
    }
    let rate_limits = limits::route_rates(&key("rate_limits"), &raw.rate_limits)?;
    // A limit keyed on a claim nobody verified would let a forged token
    // spend another principal's budget.
    if let Some(j) = rate_limits.iter().position(|r| r.key.is_claim()) {
        let why = match kind {
            RouteKind::Login => Some("a login route has no token whose claims could key a limit; use key = \"peer\""),
            _ if !raw.verify_signature => Some(
                "this route does not verify token signatures (verify_signature = false), so its claims cannot key a limit; use key = \"peer\"",
            ),
            _ => None,
        };
        if let Some(why) = why {
            return Err(ConfigError::invalid(key(&format!("rate_limits[{j}].key")), why));
        }
    }
    let error_format = match raw.error_format.as_deref() {
        Some(f) => ErrorFormat::parse(f).ok_or_else(|| {
            ConfigError::invalid(key("error_format"), "expected \"partner-center\", \"arm\", \"graph\" or \"oauth\"")
        })?,
        None => ErrorFormat::infer(
            kind == RouteKind::PartnerCenter,
            kind == RouteKind::Login,
            host.as_deref().into_iter().chain([upstream.authority.host()]),
            &audiences,
        ),
    };
    let mut policy = policy::route_policy(i, raw, kind)?;
    if let Some(guard) = &raw.compute_guard {
        let hosts = host.as_deref().into_iter().chain([upstream.authority.host()]);
        let arm = kind == RouteKind::Aobo && ErrorFormat::is_arm(hosts, &audiences);
        policy.compute_guard = Some(Arc::new(compute::compute_guard(i, guard, arm)?));
    }
    Ok(RouteConfig {
        name: raw.name.clone(),
        path_prefix: raw.path_prefix.clone(),
        host,
        upstream,
        upstream_ca: raw.upstream_ca.as_ref().map(PathBuf::from),
        audiences,
        policy,
        rate_limits,
        error_format,
    })
}

/// A route's `host` as requests and CONNECT targets are compared with it:
/// the egress proxy's own `hosts::normalize` (lower-case, no final dot, a
/// DNS name), `*.name` for every name below `name`, or an IP address
/// written in full (reverse mode only: a CONNECT to an address is refused),
/// an IPv6 one in brackets as a `Host` carries it.
fn route_host(key: &str, h: &str) -> Result<String, ConfigError> {
    if h.contains('*') {
        return HostPattern::parse(h)
            .filter(|_| hosts::is_wildcard(h))
            .map(|p| p.as_str().to_string())
            .ok_or_else(|| ConfigError::invalid(key, "a wildcard is only allowed as *.name, name a DNS name"));
    }
    match hosts::normalize(h) {
        Ok(name) if crate::entra::is_never_intercepted(&name) => Err(ConfigError::invalid(
            key,
            "device authentication hosts (device.login.microsoftonline.com, enterpriseregistration.windows.net) are never intercepted: leave them to allow_hosts",
        )),
        Ok(name) => Ok(name),
        Err(BadHost::IpLiteral) => match h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => Ok(ip.to_string()),
            Ok(IpAddr::V6(ip)) => Ok(format!("[{ip}]")),
            Err(_) => Err(ConfigError::invalid(key, "an address must be written in full, e.g. 127.0.0.1")),
        },
        Err(BadHost::Invalid) => Err(ConfigError::invalid(
            key,
            "a DNS name without scheme, port or path (labels of 1-63 letters, digits, '-' or '_')",
        )),
    }
}

/// A route forwarding to a sign-in host (in any spelling the forwarding step
/// reads as that host: any case, a final dot, a port) is a login route,
/// whatever its `host`, so that its token requests are judged by the grant
/// rules and reviewed; no route forwards to a device authentication host.
fn sign_in_upstream(i: usize, upstream: &UpstreamTarget, kind: RouteKind) -> Result<(), ConfigError> {
    let name = match hosts::normalize(upstream.authority.host()) {
        Ok(name) => name,
        Err(crate::host::BadHost::IpLiteral) => return Ok(()),
        // A name no resolver reads alike everywhere (`login.microsoftonline.com..`)
        // could still reach a sign-in host.
        Err(crate::host::BadHost::Invalid) => {
            return Err(ConfigError::invalid(format!("routes[{i}].upstream"), "not a valid host name"));
        }
    };
    if crate::entra::is_never_intercepted(&name) {
        return Err(ConfigError::invalid(
            format!("routes[{i}].upstream"),
            "device authentication hosts (device.login.microsoftonline.com, enterpriseregistration.windows.net) are never intercepted: leave them to allow_hosts",
        ));
    }
    if crate::entra::is_sign_in_host(&name) && kind != RouteKind::Login {
        return Err(ConfigError::invalid(
            format!("routes[{i}].kind"),
            format!("this route forwards to the sign-in host {name}: it must be kind = \"login\""),
        ));
    }
    Ok(())
}

/// `https://host[:port][/base]`; plain `http://` only to a loopback address,
/// since the request carries a bearer token.
fn upstream_target(key: &str, s: &str) -> Result<UpstreamTarget, ConfigError> {
    let uri: Uri = s.parse().map_err(|_| ConfigError::invalid(key, "not a valid URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
        return Err(ConfigError::invalid(key, "an absolute https:// URL is required"));
    };
    if scheme == Scheme::HTTP && !is_loopback(authority.host()) {
        return Err(ConfigError::invalid(key, "plain http:// is only allowed to a loopback address"));
    }
    if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
        return Err(ConfigError::invalid(key, "scheme must be https (or http to loopback)"));
    }
    if uri.query().is_some() || authority.as_str().contains('@') {
        return Err(ConfigError::invalid(key, "no query or user information allowed"));
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(UpstreamTarget { scheme, authority, base_path })
}
