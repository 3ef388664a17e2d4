//! `[egress]`: the forward-proxy listener, its interception CA, which hosts
//! may be tunnelled, the proxy's own credentials and the `[egress.resolve]`
//! address map. The serde mirror and the checked runtime type live together
//! here; `raw::Config` holds the section.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::error::ConfigError;
use super::tenant_restrictions::{self, RawTenantRestrictions, TenantRestrictions};
use super::values::{min_duration, socket_addr};
use crate::host::{self as hosts, HostPattern};

/// The section as written in the file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEgress {
    pub listen: String,
    pub ca_cert: String,
    pub ca_key: String,
    #[serde(default = "default_action")]
    pub default: String,
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    #[serde(default)]
    pub deny_hosts: Vec<String>,
    #[serde(default = "default_connect_ports")]
    pub connect_ports: Vec<u16>,
    #[serde(default = "default_http_ports")]
    pub http_ports: Vec<u16>,
    #[serde(default = "default_tunnel_idle_timeout")]
    pub tunnel_idle_timeout: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_auth: Option<RawProxyAuth>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolve: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_restrictions: Option<RawTenantRestrictions>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxyAuth {
    pub username: String,
    /// Never printed: `check-config` shows a placeholder.
    #[serde(serialize_with = "redacted")]
    pub password: String,
}

fn redacted<S: Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("(redacted)")
}

fn default_action() -> String {
    "deny".into()
}

fn default_connect_ports() -> Vec<u16> {
    vec![443]
}

fn default_http_ports() -> Vec<u16> {
    vec![80]
}

fn default_tunnel_idle_timeout() -> String {
    "10m".into()
}

/// What happens to a host that no route guards and no list names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Tunnel,
    Deny,
}

/// The checked `[egress]` section.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    pub listen: SocketAddr,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub default: DefaultAction,
    pub allow_hosts: Vec<HostPattern>,
    pub deny_hosts: Vec<HostPattern>,
    pub connect_ports: Vec<u16>,
    pub http_ports: Vec<u16>,
    /// A blind tunnel with no byte in either direction for this long is closed.
    pub tunnel_idle_timeout: Duration,
    pub proxy_auth: Option<ProxyCredentials>,
    /// Lower-case host name → the address connections to it go to instead.
    pub resolve: HashMap<String, SocketAddr>,
    /// `[egress.tenant_restrictions]`: the sign-in hosts are intercepted
    /// and every request to them carries these headers.
    pub tenant_restrictions: Option<TenantRestrictions>,
}

/// The proxy's own Basic credentials.
#[derive(Clone)]
pub struct ProxyCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

pub fn from_raw(raw: &RawEgress) -> Result<EgressConfig, ConfigError> {
    let path = |key: &str, value: &str| {
        if value.is_empty() {
            Err(ConfigError::invalid(key, "a file path is required"))
        } else {
            Ok(PathBuf::from(value))
        }
    };
    let default = match raw.default.as_str() {
        "tunnel" => DefaultAction::Tunnel,
        "deny" => DefaultAction::Deny,
        _ => return Err(ConfigError::invalid("egress.default", "expected \"tunnel\" or \"deny\"")),
    };
    let proxy_auth = match &raw.proxy_auth {
        None => None,
        Some(a) if a.username.is_empty() || a.username.contains(':') => {
            return Err(ConfigError::invalid("egress.proxy_auth.username", "1 or more characters, no ':'"));
        }
        Some(a) if a.password.is_empty() => {
            return Err(ConfigError::invalid("egress.proxy_auth.password", "must not be empty"));
        }
        Some(a) => Some(ProxyCredentials { username: a.username.clone(), password: a.password.clone() }),
    };
    let mut resolve = HashMap::new();
    for (host, addr) in &raw.resolve {
        let key = format!("egress.resolve.\"{host}\"");
        let name = hosts::normalize(host).map_err(|_| ConfigError::invalid(&key, "not a host name"))?;
        resolve.insert(name, socket_addr(&key, addr)?);
    }
    Ok(EgressConfig {
        listen: socket_addr("egress.listen", &raw.listen)?,
        ca_cert: path("egress.ca_cert", &raw.ca_cert)?,
        ca_key: path("egress.ca_key", &raw.ca_key)?,
        default,
        allow_hosts: patterns("egress.allow_hosts", &raw.allow_hosts)?,
        deny_hosts: patterns("egress.deny_hosts", &raw.deny_hosts)?,
        connect_ports: ports("egress.connect_ports", &raw.connect_ports)?,
        http_ports: ports("egress.http_ports", &raw.http_ports)?,
        tunnel_idle_timeout: min_duration(
            "egress.tunnel_idle_timeout",
            &raw.tunnel_idle_timeout,
            Duration::from_secs(1),
        )?,
        proxy_auth,
        resolve,
        tenant_restrictions: raw.tenant_restrictions.as_ref().map(tenant_restrictions::from_raw).transpose()?,
    })
}

fn patterns(key: &str, values: &[String]) -> Result<Vec<HostPattern>, ConfigError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            HostPattern::parse(v).ok_or_else(|| {
                ConfigError::invalid(format!("{key}[{i}]"), "a host name, or *.name for every name below it")
            })
        })
        .collect()
}

fn ports(key: &str, values: &[u16]) -> Result<Vec<u16>, ConfigError> {
    if let Some(i) = values.iter().position(|&p| p == 0) {
        return Err(ConfigError::invalid(format!("{key}[{i}]"), "0 is not a port"));
    }
    Ok(values.to_vec())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const ROUTE: &str = r#"
[[routes]]
name = "pc"
host = "api.partnercenter.microsoft.com"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["https://api.partnercenter.microsoft.com"]
"#;

    fn load(egress: &str) -> Result<Config, crate::config::ConfigError> {
        Config::from_toml(&format!("{ROUTE}\n[egress]\n{egress}"))
    }

    fn key_of(egress: &str) -> String {
        load(egress).unwrap_err().key().unwrap_or_default().to_string()
    }

    const BASE: &str = "listen = \"127.0.0.1:3128\"\nca_cert = \"ca.pem\"\nca_key = \"ca.key\"\n";

    #[test]
    fn defaults_fail_closed() {
        let config = load(BASE).unwrap();
        let egress = config.egress.unwrap();
        assert_eq!(egress.default, super::DefaultAction::Deny);
        assert_eq!(egress.connect_ports, [443]);
        assert_eq!(egress.http_ports, [80]);
        assert_eq!(egress.tunnel_idle_timeout, std::time::Duration::from_secs(600));
        assert!(egress.proxy_auth.is_none());
        assert!(Config::from_toml(ROUTE).unwrap().egress.is_none(), "no [egress]: no forward proxy");
    }

    #[test]
    fn resolve_keeps_dotted_host_names_whole() {
        let config = load(&format!(
            "{BASE}[egress.resolve]\n\"API.PartnerCenter.microsoft.com\" = \"127.0.0.1:9443\"\n\"graph.microsoft.com.\" = \"[::1]:9444\"\n"
        ))
        .unwrap();
        let resolve = config.egress.unwrap().resolve;
        assert_eq!(resolve["api.partnercenter.microsoft.com"], "127.0.0.1:9443".parse().unwrap());
        assert_eq!(resolve["graph.microsoft.com"], "[::1]:9444".parse().unwrap());
    }

    #[test]
    fn bad_values_name_their_key() {
        let missing = load("ca_cert = \"a\"\nca_key = \"b\"\n").unwrap_err().to_string();
        assert!(missing.starts_with("egress:") && missing.contains("listen"), "{missing}");
        assert_eq!(key_of(&format!("{BASE}default = \"allow\"\n")), "egress.default");
        assert_eq!(key_of(&format!("{BASE}allow_hosts = [\"ok.example\", \"http://x\"]\n")), "egress.allow_hosts[1]");
        assert_eq!(key_of(&format!("{BASE}deny_hosts = [\"a.*.example\"]\n")), "egress.deny_hosts[0]");
        assert_eq!(key_of(&format!("{BASE}connect_ports = [443, 0]\n")), "egress.connect_ports[1]");
        assert_eq!(key_of(&format!("{BASE}tunnel_idle_timeout = \"0s\"\n")), "egress.tunnel_idle_timeout");
        assert_eq!(key_of(&format!("{BASE}tunnel_idle_timeout = \"soon\"\n")), "egress.tunnel_idle_timeout");
        assert_eq!(
            key_of(&format!("{BASE}[egress.proxy_auth]\nusername = \"a:b\"\npassword = \"p\"\n")),
            "egress.proxy_auth.username"
        );
        assert_eq!(
            key_of(&format!("{BASE}[egress.resolve]\n\"api.partnercenter.microsoft.com\" = \"localhost\"\n")),
            "egress.resolve.\"api.partnercenter.microsoft.com\""
        );
        assert_eq!(key_of("listen = \"127.0.0.1:3128\"\nca_cert = \"\"\nca_key = \"k\"\n"), "egress.ca_cert");
        assert_eq!(key_of(&format!("{BASE}tunnel = true\n")), "egress.tunnel");
    }

    #[test]
    fn route_hosts_take_a_wildcard_only_as_the_first_label() {
        let route =
            |host: &str| ROUTE.replace("api.partnercenter.microsoft.com\"\nupstream", &format!("{host}\"\nupstream"));
        assert!(Config::from_toml(&route("*.partnercenter.microsoft.com")).is_ok());
        for bad in ["api.*.microsoft.com", "*", "*.", "a*.microsoft.com"] {
            let err = Config::from_toml(&route(bad)).unwrap_err();
            assert_eq!(err.key(), Some("routes[0].host"), "{bad}");
        }
    }

    #[test]
    fn the_password_is_never_printed() {
        let config =
            load(&format!("{BASE}[egress.proxy_auth]\nusername = \"svc\"\npassword = \"s3cret-value\"\n")).unwrap();
        let printed = toml::to_string_pretty(&config.effective).unwrap();
        assert!(printed.contains("username = \"svc\""), "{printed}");
        assert!(!printed.contains("s3cret-value"), "{printed}");
        assert!(!format!("{:?}", config.egress).contains("s3cret-value"));
    }
}
