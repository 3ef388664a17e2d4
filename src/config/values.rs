//! How single values are read: addresses, durations, GUIDs.

use std::net::SocketAddr;
use std::time::Duration;

use super::error::ConfigError;
use crate::entra::is_guid;

pub(super) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn guids(key: &str, values: &[String]) -> Result<Vec<String>, ConfigError> {
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

pub(super) fn socket_addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| ConfigError::invalid(key, "expected IP:PORT, e.g. 127.0.0.1:8443"))
}

/// Durations are written as `30s`, `5m`, `24h`, `250ms`.
pub fn duration(key: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s).map_err(|e| ConfigError::invalid(key, format!("not a duration like \"30s\" ({e})")))
}

pub(super) fn min_duration(key: &str, s: &str, min: Duration) -> Result<Duration, ConfigError> {
    let d = duration(key, s)?;
    if d < min {
        return Err(ConfigError::invalid(key, format!("must be at least {}", humantime::format_duration(min))));
    }
    Ok(d)
}
