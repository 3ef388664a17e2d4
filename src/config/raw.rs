//! The serde mirror of the configuration file: plain data, defaults filled in,
//! unknown keys rejected. `config.rs` turns it into checked runtime types.

use std::collections::BTreeMap;

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
    pub audit: Audit,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemptions: Vec<Exemption>,
    /// The forward-proxy listener; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<super::egress::RawEgress>,
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
    pub upstream_pool_max_idle: usize,
    pub upstream_pool_idle_timeout: String,
    pub upstream_idle_timeout: String,
    pub discard_body_limit: ByteSize,
    pub discard_body_timeout: String,
    pub drain_delay: String,
    pub drain_grace: String,
    pub watch_interval: String,
    /// The replica's name in the decision log; empty: the host name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance: String,
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
            upstream_pool_max_idle: 1024,
            upstream_pool_idle_timeout: "90s".into(),
            upstream_idle_timeout: "60s".into(),
            discard_body_limit: ByteSize::Text("64MiB".into()),
            discard_body_timeout: "30s".into(),
            drain_delay: "5s".into(),
            drain_grace: "30s".into(),
            watch_interval: "0s".into(),
            instance: String::new(),
        }
    }
}

/// A size in bytes: an integer, or text such as `"64MiB"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    /// One-source shorthand; absent with no `sources`: Entra's v1 common key set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_ca: Option<String>,
    pub issuers: Vec<String>,
    pub clock_skew_secs: u64,
    pub tenants: Vec<String>,
    pub refresh_interval: String,
    pub unknown_kid_refetch_interval: String,
    pub max_token_bytes: usize,
    pub key_ttl: String,
    pub max_stale: String,
    pub metadata_refresh_interval: String,
    pub fetch_connect_timeout: String,
    pub fetch_timeout: String,
    pub max_document_bytes: usize,
    /// Empty disables saving the last good key sets.
    pub state_dir: String,
    pub token_cache_size: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<KeySource>,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            jwks_uri: None,
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
            key_ttl: "24h".into(),
            max_stale: "24h".into(),
            metadata_refresh_interval: "12h".into(),
            fetch_connect_timeout: "5s".into(),
            fetch_timeout: "10s".into(),
            max_document_bytes: 1024 * 1024,
            state_dir: "state".into(),
            token_cache_size: 10_000,
            sources: Vec::new(),
        }
    }
}

/// `[[identity.sources]]`: one key set, by its URI or through OIDC discovery.
/// Timing keys left out take the `[identity]` value.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySource {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_version: Option<String>,
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_kid_refetch_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_refresh_interval: Option<String>,
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

/// The decision log: one JSON line per decision.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    pub sink: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Default for Audit {
    fn default() -> Self {
        Self { sink: "off".into(), path: None }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub upstream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ca: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_after: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rule_modes: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub verify_signature: bool,
    #[serde(default = "yes")]
    pub require_mfa: bool,
    #[serde(default = "default_accepted_amr")]
    pub accepted_amr: Vec<String>,
    #[serde(default)]
    pub allow_app_only: bool,
    #[serde(default)]
    pub allow_public_clients: bool,
    #[serde(default)]
    pub require_certificate_client: bool,
    #[serde(default)]
    pub allowed_apps: Vec<String>,
    #[serde(default)]
    pub denied_apps: Vec<String>,
    #[serde(default)]
    pub partner_tenants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customers: Option<Customers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_context_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RouteRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_format: Option<String>,
    /// Login routes: grant types refused (`grant_not_allowed`).
    #[serde(default = "default_deny_grants")]
    pub deny_grants: Vec<String>,
    #[serde(default)]
    pub require_client_assertion: bool,
    #[serde(default)]
    pub allowed_token_clients: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_guard: Option<ComputeGuard>,
}

impl Route {
    /// A login route to `host` with every default: what tenant restrictions
    /// add for a sign-in host no route names.
    pub fn login(name: &str, host: &str) -> Self {
        Self {
            name: name.into(),
            kind: Some("login".into()),
            path_prefix: default_path_prefix(),
            host: Some(host.into()),
            upstream: format!("https://{host}"),
            upstream_ca: None,
            audiences: Vec::new(),
            mode: default_mode(),
            enforce_after: None,
            rule_modes: BTreeMap::new(),
            verify_signature: true,
            require_mfa: true,
            accepted_amr: default_accepted_amr(),
            allow_app_only: false,
            allow_public_clients: false,
            require_certificate_client: false,
            allowed_apps: Vec::new(),
            denied_apps: Vec::new(),
            partner_tenants: Vec::new(),
            customers: None,
            deny_roles: None,
            auth_context_id: None,
            rate_limits: Vec::new(),
            error_format: None,
            deny_grants: default_deny_grants(),
            require_client_assertion: false,
            allowed_token_clients: Vec::new(),
            compute_guard: None,
        }
    }
}

/// `[routes.compute_guard]`; every key optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeGuard {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub families: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vcpus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_regions_per_hour: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_requests: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninspectable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspect_body_limit: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspect_body_timeout: Option<String>,
}

/// A file of relationships (CSV or JSON), or the relationships inline as
/// `{ tenant_id = "...", ends = "..." }` tables.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Customers {
    File(String),
    Inline(Vec<BTreeMap<String, String>>),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    pub reason: String,
    pub expires: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
}

/// Limits that are not tied to one route.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub denied_per_ip: Rate,
    /// Where the rate-limit counts live: `local` (this process) or `redis`.
    pub store: String,
    /// Printed with its password replaced.
    #[serde(skip_serializing_if = "String::is_empty", serialize_with = "super::limits::redacted_url")]
    pub redis_url: String,
    /// The environment variable holding the Redis password (overrides the URL's).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub redis_password_env: String,
    /// A CA file for rediss:// (default: the system's trust store).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub redis_ca: String,
    pub store_timeout: String,
    pub on_store_error: String,
    pub key_prefix: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            denied_per_ip: Rate { requests: 100, per: "10s".into(), burst: None },
            store: "local".into(),
            redis_url: String::new(),
            redis_password_env: String::new(),
            redis_ca: String::new(),
            store_timeout: "50ms".into(),
            on_store_error: "allow".into(),
            key_prefix: "mfagate:".into(),
        }
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

fn default_deny_grants() -> Vec<String> {
    vec!["password".into()]
}

fn default_accepted_amr() -> Vec<String> {
    vec!["mfa".into(), "ngcmfa".into()]
}
