//! The serde mirror of the configuration file: plain data, defaults filled in,
//! unknown keys rejected. `config.rs` turns it into checked runtime types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub identity: Identity,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
    pub admin_listen: String,
    pub workers: usize,
    pub tls_handshake_timeout: String,
    pub header_read_timeout: String,
    pub keep_alive_timeout: String,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub http2_max_concurrent_streams: u32,
    pub max_connections: usize,
    pub max_in_flight: usize,
    pub upstream_connect_timeout: String,
    pub upstream_timeout: String,
    pub upstream_idle_timeout: String,
    pub drain_delay: String,
    pub drain_grace: String,
    pub watch_interval: String,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8443".into(),
            tls_cert: None,
            tls_key: None,
            admin_listen: "127.0.0.1:9090".into(),
            workers: 0,
            tls_handshake_timeout: "10s".into(),
            header_read_timeout: "10s".into(),
            keep_alive_timeout: "60s".into(),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            http2_max_concurrent_streams: 100,
            max_connections: 4096,
            max_in_flight: 1024,
            upstream_connect_timeout: "10s".into(),
            upstream_timeout: "120s".into(),
            upstream_idle_timeout: "60s".into(),
            drain_delay: "5s".into(),
            drain_grace: "30s".into(),
            watch_interval: "0s".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    pub jwks_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_ca: Option<String>,
    pub issuers: Vec<String>,
    pub clock_skew_secs: u64,
    pub tenants: Vec<String>,
    pub refresh_interval: String,
    pub unknown_kid_refetch_interval: String,
    pub max_token_bytes: usize,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            jwks_uri: "https://login.microsoftonline.com/common/discovery/keys".into(),
            jwks_ca: None,
            issuers: vec![
                "https://sts.windows.net/{tenantid}/".into(),
                "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
            ],
            clock_skew_secs: 60,
            tenants: Vec::new(),
            refresh_interval: "1h".into(),
            unknown_kid_refetch_interval: "5m".into(),
            max_token_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: String,
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub upstream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ca: Option<String>,
    pub audiences: Vec<String>,
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default = "yes")]
    pub require_mfa: bool,
    #[serde(default = "default_accepted_amr")]
    pub accepted_amr: Vec<String>,
    #[serde(default)]
    pub allow_app_only: bool,
    #[serde(default)]
    pub allow_public_clients: bool,
    #[serde(default)]
    pub allowed_apps: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RouteRate>,
}

/// Limits that are not tied to one route.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub denied_per_ip: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Self { denied_per_ip: Rate { requests: 100, per: "10s".into(), burst: None } }
    }
}

/// `requests` per `per`, with bursts up to `burst` (default: `requests`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub requests: u32,
    pub per: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// A route's rate limit on one identity claim of verified tokens.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRate {
    pub key: String,
    pub requests: u32,
    pub per: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

fn default_path_prefix() -> String {
    "/".into()
}

fn default_mode() -> String {
    "enforce".into()
}

fn yes() -> bool {
    true
}

fn default_accepted_amr() -> Vec<String> {
    vec!["mfa".into(), "ngcmfa".into()]
}
