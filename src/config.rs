//! Configuration: TOML file (or the built-in default) plus `MFAGATE__SECTION__KEY`
//! environment overrides, deserialised into `raw` and checked into the runtime
//! types below. Every error names the key it is about.

pub mod customers;
pub mod egress;
mod env;
pub mod identity;
pub mod limits;
mod policy;
pub mod raw;
mod server;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use http::uri::{Authority, Scheme};

use crate::auth::claims::{audience_key, is_guid};
pub use crate::auth::issuer::IssuerTemplate;
use crate::error::ErrorFormat;
use crate::host::{self as hosts, BadHost, HostPattern};
use crate::policy::{Exemption, RouteKind, RoutePolicy};
pub use egress::{DefaultAction, EgressConfig, ProxyCredentials};
pub use identity::{IdentityConfig, JwksLocation, KeySourceConfig, SourceOrigin, SourceTiming};
pub use limits::{LimitsConfig, Rate, RateKey, RouteRate};
pub use server::{ServerConfig, TlsSource};

/// The configuration compiled into the binary: `config/mfagate.toml`.
pub const BUILT_IN: &str = include_str!("../config/mfagate.toml");
/// Where `run` looks for a configuration file when none is named.
pub const DEFAULT_PATH: &str = "config/mfagate.toml";
/// The route label used for requests that match no route; reserved as a route name.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), reason: reason.into() }
    }

    /// The configuration key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } => None,
        }
    }
}

/// Where the configuration text comes from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    BuiltIn,
}

impl Source {
    /// `path` if given; else `config/mfagate.toml` when it exists; else the built-in default.
    pub fn resolve(path: Option<&Path>) -> Self {
        match path {
            Some(p) => Self::File(p.to_path_buf()),
            None if Path::new(DEFAULT_PATH).is_file() => Self::File(PathBuf::from(DEFAULT_PATH)),
            None => Self::BuiltIn,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::BuiltIn => "built-in default".into(),
        }
    }
}

/// The validated configuration the gateway runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub identity: IdentityConfig,
    pub log: LogConfig,
    pub audit: AuditConfig,
    pub limits: LimitsConfig,
    pub routes: Vec<RouteConfig>,
    /// Every `[[exemptions]]` entry (each route's policy holds those that apply to it).
    pub exemptions: Vec<Exemption>,
    /// The forward proxy, when `[egress]` is configured.
    pub egress: Option<EgressConfig>,
    /// The effective settings (file + environment + defaults), for `check-config`.
    pub effective: raw::Config,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub json: bool,
    pub level: String,
}

/// Where the decision log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    Off,
    Stdout,
    /// Appended to; created when missing.
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub sink: AuditSink,
}

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

impl Config {
    /// Reads the source and applies the process environment's overrides.
    pub fn load(source: &Source) -> Result<Self, ConfigError> {
        Self::load_with_env(source, std::env::vars())
    }

    pub fn load_with_env(
        source: &Source,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = match source {
            Source::File(path) => {
                std::fs::read_to_string(path).map_err(|e| ConfigError::Read { path: path.clone(), source: e })?
            }
            Source::BuiltIn => BUILT_IN.to_string(),
        };
        Self::from_toml_with_env(&text, env)
    }

    /// Settings that are valid but weaker than they look, one line each,
    /// naming its key: `check-config` prints them, `run` logs them at start.
    pub fn warnings(&self) -> Vec<String> {
        identity::warnings(&self.identity, &self.effective.identity)
    }

    /// Parses TOML text with no environment overrides (tests, tools).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with_env(text, std::iter::empty())
    }

    pub fn from_toml_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        // The TOML parser's own message spans several lines (the source line
        // and a caret under it); this one is a line, as logs want it.
        if let Err(e) = toml::from_str::<toml::Table>(text) {
            return Err(ConfigError::invalid("(file)", syntax_error(text, &e)));
        }
        let mut builder = config::Config::builder().add_source(config::File::from_str(text, config::FileFormat::Toml));
        for (key, value) in env::overrides(env)? {
            builder = builder.set_override(key.clone(), value).map_err(|e| ConfigError::invalid(key, e.to_string()))?;
        }
        let merged = builder.build().map_err(|e| ConfigError::invalid("(file)", e.to_string()))?;
        let raw: raw::Config = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." || key.is_empty() { "(top level)".to_string() } else { key };
            ConfigError::invalid(key, e.into_inner().to_string())
        })?;
        Self::try_from(raw)
    }
}

impl TryFrom<raw::Config> for Config {
    type Error = ConfigError;

    fn try_from(mut raw: raw::Config) -> Result<Self, ConfigError> {
        let server = server::server(&raw.server)?;
        let identity = identity::from_raw(&raw.identity)?;
        let log = log(&raw.log)?;
        let audit = audit(&raw.audit)?;
        let limits = limits::limits(&raw.limits)?;
        if server.max_header_bytes < identity.max_token_bytes + 1024 {
            return Err(ConfigError::invalid(
                "server.max_header_bytes",
                "must exceed identity.max_token_bytes by at least 1024 (the token travels in a header)",
            ));
        }
        if raw.routes.is_empty() {
            return Err(ConfigError::invalid("routes", "at least one [[routes]] entry is required"));
        }
        let mut names = HashSet::new();
        let mut routes = Vec::with_capacity(raw.routes.len());
        for (i, r) in raw.routes.iter().enumerate() {
            let route = route(i, r)?;
            if !names.insert(route.name.clone()) {
                return Err(ConfigError::invalid(format!("routes[{i}].name"), "duplicate route name"));
            }
            routes.push(route);
        }
        // `check-config` prints the hosts that will be served.
        for (written, route) in raw.routes.iter_mut().zip(&routes) {
            written.host.clone_from(&route.host);
        }
        let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        let exemptions = policy::exemptions(&raw.exemptions, &names)?;
        for route in &mut routes {
            route.policy.exemptions = exemptions
                .iter()
                .filter(|(_, only)| only.as_ref().is_none_or(|names| names.contains(&route.name)))
                .map(|(e, _)| e.clone())
                .collect();
        }
        let exemptions = exemptions.into_iter().map(|(e, _)| e).collect();
        let egress = raw.egress.as_ref().map(egress::from_raw).transpose()?;
        Ok(Self { server, identity, log, audit, limits, routes, exemptions, egress, effective: raw })
    }
}

/// `TOML syntax error at line L, column C: message`, on one line.
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', "; ");
    let Some(at) = e.span().map(|s| s.start.min(text.len())) else {
        return format!("TOML syntax error: {message}");
    };
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("TOML syntax error at line {line}, column {column}: {message}")
}

impl LogConfig {
    /// The log settings to report a configuration that does not load with:
    /// `MFAGATE__LOG__FORMAT` and `MFAGATE__LOG__LEVEL` when set, else the
    /// file's `[log]` table read line by line (so that a syntax error
    /// elsewhere does not hide it), else text at `info`.
    pub fn of_unloadable(source: &Source, env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut log = Self { json: false, level: "info".into() };
        if let Source::File(path) = source {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let mut in_log = false;
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or_default().trim();
                if line.starts_with('[') {
                    in_log = line == "[log]";
                } else if let Some((key, value)) = line.split_once('=').filter(|_| in_log) {
                    let value = value.trim().trim_matches(['"', '\'']);
                    match key.trim() {
                        "format" => log.json = value == "json",
                        "level" if !value.is_empty() => log.level = value.to_string(),
                        _ => {}
                    }
                }
            }
        }
        for (name, value) in env {
            match name.as_str() {
                "MFAGATE__LOG__FORMAT" => log.json = value == "json",
                "MFAGATE__LOG__LEVEL" => log.level = value,
                _ => {}
            }
        }
        log
    }
}

fn log(raw: &raw::Log) -> Result<LogConfig, ConfigError> {
    let json = match raw.format.as_str() {
        "json" => true,
        "text" => false,
        _ => return Err(ConfigError::invalid("log.format", "expected \"text\" or \"json\"")),
    };
    if raw.level.parse::<tracing_subscriber::EnvFilter>().is_err() {
        return Err(ConfigError::invalid("log.level", "not a valid level or filter (e.g. \"info\")"));
    }
    Ok(LogConfig { json, level: raw.level.clone() })
}

fn audit(raw: &raw::Audit) -> Result<AuditConfig, ConfigError> {
    let sink = match (raw.sink.as_str(), &raw.path) {
        ("off", _) => AuditSink::Off,
        ("stdout", _) => AuditSink::Stdout,
        ("file", Some(path)) if !path.is_empty() => AuditSink::File(PathBuf::from(path)),
        ("file", _) => return Err(ConfigError::invalid("audit.path", "required when audit.sink = \"file\"")),
        _ => return Err(ConfigError::invalid("audit.sink", "expected \"off\", \"stdout\" or \"file\"")),
    };
    Ok(AuditConfig { sink })
}

fn route(i: usize, raw: &raw::Route) -> Result<RouteConfig, ConfigError> {
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
    Ok(RouteConfig {
        name: raw.name.clone(),
        path_prefix: raw.path_prefix.clone(),
        host,
        upstream,
        upstream_ca: raw.upstream_ca.as_ref().map(PathBuf::from),
        audiences,
        policy: policy::route_policy(i, raw, kind)?,
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

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn guids(key: &str, values: &[String]) -> Result<Vec<String>, ConfigError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if is_guid(v) {
                Ok(v.to_ascii_lowercase())
            } else {
                Err(ConfigError::invalid(format!("{key}[{i}]"), "not a GUID"))
            }
        })
        .collect()
}

fn socket_addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| ConfigError::invalid(key, "expected IP:PORT, e.g. 127.0.0.1:8443"))
}

/// Durations are written as `30s`, `5m`, `24h`, `250ms`.
pub fn duration(key: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s).map_err(|e| ConfigError::invalid(key, format!("not a duration like \"30s\" ({e})")))
}

fn min_duration(key: &str, s: &str, min: Duration) -> Result<Duration, ConfigError> {
    let d = duration(key, s)?;
    if d < min {
        return Err(ConfigError::invalid(key, format!("must be at least {}", humantime::format_duration(min))));
    }
    Ok(d)
}

/// One minimal route: what unit tests of other sections add to theirs.
#[cfg(test)]
pub(crate) const TEST_ROUTE: &str = r#"
[[routes]]
name = "pc"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]
"#;

#[cfg(test)]
mod tests;
