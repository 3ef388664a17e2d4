//! `[limits]` and a route's `rate_limits`: token-bucket rates checked into
//! the form the rate limiters use, and where the counts live (this process,
//! or a Redis shared by every replica).

use std::num::NonZeroU32;
use std::time::Duration;

use super::error::ConfigError;
use super::raw;
use super::values::duration;

/// The validated `[limits]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Denied requests per client address; `None` when `requests = 0`.
    pub denied_per_ip: Option<Rate>,
    pub store: StoreConfig,
}

/// Where the buckets live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In this process: each replica counts on its own.
    Local,
    /// In Redis, shared by every gateway pointed at it.
    Redis(RedisStore),
}

/// `store = "redis"` and its settings.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisStore {
    /// The connection: the URL and the password from the environment, if any.
    pub server: RedisServer,
    /// How long one operation may take before the request is decided per `on_error`.
    pub timeout: Duration,
    pub on_error: OnStoreError,
    pub key_prefix: String,
}

/// What a connection is made from; a reload that keeps it keeps the connection.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisServer {
    /// As written (a secret: it may carry the password).
    pub url: String,
    /// From `redis_password_env`; replaces the URL's password.
    pub password: Option<String>,
    /// The CA that signs a rediss:// server's certificate, instead of the system's.
    pub ca: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &redact(&self.server.url))
            .field("password", &self.server.password.as_ref().map(|_| REDACTED))
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// What a request gets while the store cannot answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// Served as if within its limits.
    Allow,
    /// 503 `rate_limit_store_unavailable`.
    Deny,
}

const REDACTED: &str = "(redacted)";

/// A Redis URL with its password replaced; one that does not parse is
/// replaced whole, as any part of it may be the password.
pub fn redact(url: &str) -> String {
    match redis::parse_redis_url(url) {
        Some(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some(REDACTED));
            }
            parsed.to_string().replace("%28redacted%29", REDACTED)
        }
        None => REDACTED.to_string(),
    }
}

/// `redis_url` as `check-config` prints it.
pub fn redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact(url))
}

/// `requests` per `per`, with bursts up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub requests: NonZeroU32,
    pub per: Duration,
    pub burst: NonZeroU32,
}

impl Rate {
    /// The time it takes to earn back one request.
    pub fn interval(&self) -> Duration {
        self.per / self.requests.get()
    }
}

/// What a route's rate limit counts by: a claim of a verified token, or the
/// client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// The principal: the user's or the service principal's object id.
    Oid,
    /// The calling application (`appid`/`azp`).
    App,
    /// The tenant (`tid`).
    Tenant,
    /// The client address (IPv6 by its /64).
    Peer,
}

impl RateKey {
    pub const ALL: [RateKey; 4] = [Self::Oid, Self::App, Self::Tenant, Self::Peer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oid => "oid",
            Self::App => "app",
            Self::Tenant => "tenant",
            Self::Peer => "peer",
        }
    }

    /// True for the keys read from a token's claims.
    pub fn is_claim(self) -> bool {
        !matches!(self, Self::Peer)
    }
}

/// One entry of a route's `rate_limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRate {
    pub key: RateKey,
    pub rate: Rate,
}

pub fn limits(raw: &raw::Limits) -> Result<LimitsConfig, ConfigError> {
    let r = &raw.denied_per_ip;
    let denied_per_ip =
        if r.requests == 0 { None } else { Some(rate("limits.denied_per_ip", r.requests, &r.per, r.burst)?) };
    let store = match raw.store.as_str() {
        "local" => StoreConfig::Local,
        "redis" => StoreConfig::Redis(redis_store(raw)?),
        _ => return Err(ConfigError::invalid("limits.store", "expected \"local\" or \"redis\"")),
    };
    Ok(LimitsConfig { denied_per_ip, store })
}

fn redis_store(raw: &raw::Limits) -> Result<RedisStore, ConfigError> {
    const URL: &str = "limits.redis_url";
    if raw.redis_url.is_empty() {
        return Err(ConfigError::invalid(URL, "required with store = \"redis\""));
    }
    // Never the URL itself in a message: it may carry the password.
    let parsed = redis::parse_redis_url(&raw.redis_url)
        .ok_or_else(|| ConfigError::invalid(URL, "not a redis:// or rediss:// URL"))?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err(ConfigError::invalid(URL, "not a redis:// or rediss:// URL"));
    }
    if parsed.fragment().is_some() {
        // `#insecure` would turn off the certificate check of rediss://.
        return Err(ConfigError::invalid(URL, "no #fragment (the server's certificate is always verified)"));
    }
    redis::IntoConnectionInfo::into_connection_info(parsed.clone())
        .map_err(|e| ConfigError::invalid(URL, e.to_string()))?;
    let password = match raw.redis_password_env.as_str() {
        "" => None,
        name => match std::env::var(name) {
            Ok(p) if !p.is_empty() => Some(p),
            _ => {
                return Err(ConfigError::invalid(
                    "limits.redis_password_env",
                    format!("the environment variable {name} is not set"),
                ));
            }
        },
    };
    let ca = match raw.redis_ca.as_str() {
        "" => None,
        _ if parsed.scheme() != "rediss" => {
            return Err(ConfigError::invalid("limits.redis_ca", "only with a rediss:// URL"));
        }
        path => Some(std::path::PathBuf::from(path)),
    };
    let timeout = duration("limits.store_timeout", &raw.store_timeout)?;
    if timeout < Duration::from_millis(1) || timeout > Duration::from_secs(10) {
        return Err(ConfigError::invalid("limits.store_timeout", "between 1ms and 10s"));
    }
    let on_error = match raw.on_store_error.as_str() {
        "allow" => OnStoreError::Allow,
        "deny" => OnStoreError::Deny,
        _ => return Err(ConfigError::invalid("limits.on_store_error", "expected \"allow\" or \"deny\"")),
    };
    let prefix = &raw.key_prefix;
    if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::invalid("limits.key_prefix", "1 to 64 printable ASCII characters, no spaces"));
    }
    Ok(RedisStore {
        server: RedisServer { url: raw.redis_url.clone(), password, ca },
        timeout,
        on_error,
        key_prefix: prefix.clone(),
    })
}

pub fn route_rates(key: &str, raw: &[raw::RouteRate]) -> Result<Vec<RouteRate>, ConfigError> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let entry = format!("{key}[{i}]");
        let claim = match r.key.as_str() {
            "oid" => RateKey::Oid,
            "app" => RateKey::App,
            "tenant" => RateKey::Tenant,
            "peer" => RateKey::Peer,
            _ => {
                return Err(ConfigError::invalid(
                    format!("{entry}.key"),
                    "expected \"oid\", \"app\", \"tenant\" or \"peer\"",
                ));
            }
        };
        if out.iter().any(|o: &RouteRate| o.key == claim) {
            return Err(ConfigError::invalid(format!("{entry}.key"), "one limit per key"));
        }
        out.push(RouteRate { key: claim, rate: rate(&entry, r.requests, &r.per, r.burst)? });
    }
    Ok(out)
}

fn rate(key: &str, requests: u32, per: &str, burst: Option<u32>) -> Result<Rate, ConfigError> {
    let Some(requests) = NonZeroU32::new(requests) else {
        return Err(ConfigError::invalid(format!("{key}.requests"), "must be at least 1"));
    };
    let per_key = format!("{key}.per");
    let per = duration(&per_key, per)?;
    if per < Duration::from_millis(1) || per > Duration::from_secs(24 * 3600) {
        return Err(ConfigError::invalid(per_key, "between 1ms and 24h"));
    }
    if (per / requests.get()).is_zero() {
        return Err(ConfigError::invalid(format!("{key}.requests"), "more than one request per nanosecond"));
    }
    let burst = match burst {
        None => requests,
        Some(b) => {
            NonZeroU32::new(b).ok_or_else(|| ConfigError::invalid(format!("{key}.burst"), "must be at least 1"))?
        }
    };
    Ok(Rate { requests, per, burst })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, StoreConfig, TEST_ROUTE};

    fn load(limits: &str) -> Result<Config, crate::config::ConfigError> {
        Config::from_toml(&format!("[limits]\n{limits}\n{TEST_ROUTE}"))
    }

    fn key_of(limits: &str) -> String {
        load(limits).unwrap_err().key().unwrap().to_string()
    }

    #[test]
    fn store_keys_are_checked_and_named() {
        assert!(matches!(load("").unwrap().limits.store, StoreConfig::Local));
        assert_eq!(key_of("store = \"memcached\""), "limits.store");
        assert_eq!(key_of("store = \"redis\""), "limits.redis_url");
        let redis = |extra: &str| format!("store = \"redis\"\nredis_url = \"redis://r:6379/0\"\n{extra}");
        assert!(load(&redis("")).is_ok());
        assert!(load("store = \"redis\"\nredis_url = \"REDIS://r\"").is_ok(), "the scheme in capitals");
        for bad in ["http://r/", "redis+unix:///tmp/r.sock", "rediss://r/#insecure", "redis://r/zero", "redis://:p@/0"]
        {
            let err = load(&format!("store = \"redis\"\nredis_url = \"{bad}\"")).unwrap_err();
            assert_eq!(err.key(), Some("limits.redis_url"), "{bad}");
            assert!(!err.to_string().contains(":p@"), "the URL is never echoed: {err}");
        }
        assert_eq!(key_of(&redis("store_timeout = \"0s\"")), "limits.store_timeout");
        assert_eq!(key_of(&redis("store_timeout = \"11s\"")), "limits.store_timeout");
        assert_eq!(key_of(&redis("on_store_error = \"maybe\"")), "limits.on_store_error");
        assert_eq!(key_of(&redis("key_prefix = \"\"")), "limits.key_prefix");
        assert_eq!(key_of(&redis("key_prefix = \"a b\"")), "limits.key_prefix");
        assert_eq!(key_of(&redis("redis_ca = \"ca.pem\"")), "limits.redis_ca", "a CA without TLS");
        assert_eq!(key_of(&redis("redis_password_env = \"MFAGATE_TEST_SURELY_UNSET\"")), "limits.redis_password_env");
    }

    #[test]
    fn the_redis_password_is_never_printed() {
        let config = load("store = \"redis\"\nredis_url = \"rediss://svc:s3cr%23t@r:6380/2\"").unwrap();
        let printed = toml::to_string_pretty(&config.effective).unwrap();
        assert!(printed.contains("rediss://svc:(redacted)@r:6380/2"), "{printed}");
        assert!(!printed.contains("s3cr"), "{printed}");
        assert!(!format!("{:?}", config.limits).contains("s3cr"));
        assert_eq!(super::redact("not a url with s3cret"), "(redacted)");
    }
}
