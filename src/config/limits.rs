//! `[limits]` and a route's `rate_limits`: token-bucket rates checked into
//! the form the rate limiters use.

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
    Ok(LimitsConfig { denied_per_ip })
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
