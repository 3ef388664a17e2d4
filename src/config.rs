//! Configuration: TOML file (or the built-in default) plus `MFAGATE__SECTION__KEY`
//! environment overrides, deserialised into `raw` and checked into the runtime
//! types below. Every error names the key it is about.

mod compute;
pub mod customers;
pub mod egress;
mod env;
mod error;
pub mod identity;
pub mod limits;
mod policy;
pub mod raw;
mod routes;
mod server;
pub mod tenant_restrictions;
mod values;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use crate::auth::issuer::IssuerTemplate;
use crate::policy::Exemption;
pub use egress::{DefaultAction, EgressConfig, ProxyCredentials};
pub use error::ConfigError;
pub use identity::{IdentityConfig, JwksLocation, KeySourceConfig, SourceOrigin, SourceTiming};
pub use limits::{LimitsConfig, OnStoreError, Rate, RateKey, RedisServer, RedisStore, RouteRate, StoreConfig};
use routes::route;
pub use routes::{RouteConfig, UNMATCHED_ROUTE, UpstreamTarget};
pub use server::{DiscardSettings, DrainSettings, HttpSettings, LoadLimits, ServerConfig, TlsSource, UpstreamSettings};
pub use values::duration;

/// The configuration compiled into the binary: `config/mfagate.toml`.
pub const BUILT_IN: &str = include_str!("../config/mfagate.toml");
/// Where `run` looks for a configuration file when none is named.
pub const DEFAULT_PATH: &str = "config/mfagate.toml";

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
    /// Which replica wrote a record (`server.instance`, else the host name).
    pub instance: String,
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
        // Said before serde's "missing field listen", which names no reason.
        if let Ok(egress) = merged.get_table("egress")
            && egress.contains_key("tenant_restrictions")
            && !egress.contains_key("listen")
        {
            return Err(ConfigError::invalid(
                "egress.tenant_restrictions",
                "needs the egress proxy and its interception CA: [egress] with listen, ca_cert and ca_key",
            ));
        }
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
        let audit = audit(&raw.audit, &raw.server.instance)?;
        let limits = limits::limits(&raw.limits)?;
        if server.http.max_header_bytes < identity.max_token_bytes + 1024 {
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
        if egress.as_ref().is_some_and(|e| e.tenant_restrictions.is_some()) {
            sign_in_routes(&mut routes)?;
        }
        Ok(Self { server, identity, log, audit, limits, routes, exemptions, egress, effective: raw })
    }
}

/// With tenant restrictions, every sign-in host is guarded: a route that
/// names it (exactly or by a wildcard) must be a login route, since its
/// requests carry the restriction headers; a host no route names gets a
/// built-in login route to itself (`tenant-restrictions-<host>`).
fn sign_in_routes(routes: &mut Vec<RouteConfig>) -> Result<(), ConfigError> {
    for host in crate::entra::SIGN_IN_HOSTS {
        let mut named = false;
        for (i, r) in routes.iter().enumerate() {
            if r.host.as_deref().is_some_and(|p| crate::host::pattern_matches(p, host)) {
                named = true;
                if r.policy.kind != crate::policy::RouteKind::Login {
                    return Err(ConfigError::invalid(
                        format!("routes[{i}].kind"),
                        format!(
                            "this route guards {host}, where egress.tenant_restrictions applies: it must be kind = \"login\""
                        ),
                    ));
                }
            }
        }
        if named {
            continue;
        }
        let name = format!("tenant-restrictions-{}", host.replace('.', "-"));
        if routes.iter().any(|r| r.name == name) {
            return Err(ConfigError::invalid("egress.tenant_restrictions", format!("route name {name:?} is reserved")));
        }
        let raw = raw::Route::login(&name, host);
        routes.push(route(routes.len(), &raw)?);
    }
    Ok(())
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

fn audit(raw: &raw::Audit, instance: &str) -> Result<AuditConfig, ConfigError> {
    let sink = match (raw.sink.as_str(), &raw.path) {
        ("off", _) => AuditSink::Off,
        ("stdout", _) => AuditSink::Stdout,
        ("file", Some(path)) if !path.is_empty() => AuditSink::File(PathBuf::from(path)),
        ("file", _) => return Err(ConfigError::invalid("audit.path", "required when audit.sink = \"file\"")),
        _ => return Err(ConfigError::invalid("audit.sink", "expected \"off\", \"stdout\" or \"file\"")),
    };
    let instance = match instance {
        "" => host_name(),
        name if name.len() <= 253 && name.bytes().all(|b| b.is_ascii_graphic()) => name.to_string(),
        _ => return Err(ConfigError::invalid("server.instance", "1 to 253 printable ASCII characters, no spaces")),
    };
    Ok(AuditConfig { sink, instance })
}

/// This machine's name (a pod's is the pod's name), as the kernel has it.
fn host_name() -> String {
    let name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_default();
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) { "unknown".into() } else { name.into() }
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
