//! `[server]`: listeners, certificate, timeouts and limits, checked into
//! `ServerConfig`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::raw;
use super::values::{duration, min_duration, socket_addr};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: TlsSource,
    pub admin_listen: SocketAddr,
    /// Worker threads; 0 means one per available CPU.
    pub workers: usize,
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub keep_alive_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub http2_max_concurrent_streams: u32,
    pub max_connections: usize,
    pub max_in_flight: usize,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    /// Longest pause allowed between two parts of an upstream's response body.
    pub upstream_idle_timeout: Duration,
    /// Idle connections kept per upstream host; requests beyond it open
    /// (and close) connections of their own, so it should be at least the
    /// number of requests in flight to one upstream.
    pub upstream_pool_max_idle: usize,
    pub upstream_pool_idle_timeout: Duration,
    /// After an answer given before the request body was read, at most this
    /// many bytes of the body are read and discarded before the connection
    /// closes (RFC 9112 §9.6); 0: none.
    pub discard_body_limit: u64,
    /// ... and for at most this long; zero: none.
    pub discard_body_timeout: Duration,
    /// Between turning not-ready and closing the listener on shutdown.
    pub drain_delay: Duration,
    pub drain_grace: Duration,
    /// How often the configuration and certificate files are checked for
    /// changes; `None` when only SIGHUP reloads.
    pub watch_interval: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum TlsSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// A certificate for `localhost`/`127.0.0.1` generated at start.
    SelfSigned,
}

pub(super) fn server(raw: &raw::Server) -> Result<ServerConfig, ConfigError> {
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (Some(cert), Some(key)) => TlsSource::Files { cert: cert.into(), key: key.into() },
        (None, None) => TlsSource::SelfSigned,
        (Some(_), None) => return Err(ConfigError::invalid("server.tls_key", "required when server.tls_cert is set")),
        (None, Some(_)) => return Err(ConfigError::invalid("server.tls_cert", "required when server.tls_key is set")),
    };
    const MS: Duration = Duration::from_millis(1);
    let watch_interval = duration("server.watch_interval", &raw.watch_interval)?;
    if !watch_interval.is_zero() && watch_interval < Duration::from_millis(100) {
        return Err(ConfigError::invalid("server.watch_interval", "0s (off) or at least 100ms"));
    }
    Ok(ServerConfig {
        listen: socket_addr("server.listen", &raw.listen)?,
        tls,
        admin_listen: socket_addr("server.admin_listen", &raw.admin_listen)?,
        workers: raw.workers,
        tls_handshake_timeout: min_duration("server.tls_handshake_timeout", &raw.tls_handshake_timeout, MS)?,
        header_read_timeout: min_duration("server.header_read_timeout", &raw.header_read_timeout, MS)?,
        keep_alive_timeout: min_duration("server.keep_alive_timeout", &raw.keep_alive_timeout, MS)?,
        max_header_bytes: within("server.max_header_bytes", raw.max_header_bytes, 8192, 1024 * 1024)?,
        max_headers: within("server.max_headers", raw.max_headers, 16, 1000)?,
        http2_max_concurrent_streams: within(
            "server.http2_max_concurrent_streams",
            raw.http2_max_concurrent_streams as usize,
            1,
            10_000,
        )? as u32,
        max_connections: within("server.max_connections", raw.max_connections, 1, 1_000_000)?,
        max_in_flight: within("server.max_in_flight", raw.max_in_flight, 1, 1_000_000)?,
        upstream_connect_timeout: min_duration("server.upstream_connect_timeout", &raw.upstream_connect_timeout, MS)?,
        upstream_timeout: min_duration("server.upstream_timeout", &raw.upstream_timeout, MS)?,
        upstream_idle_timeout: min_duration("server.upstream_idle_timeout", &raw.upstream_idle_timeout, MS)?,
        upstream_pool_max_idle: within("server.upstream_pool_max_idle", raw.upstream_pool_max_idle, 0, 1_000_000)?,
        upstream_pool_idle_timeout: min_duration(
            "server.upstream_pool_idle_timeout",
            &raw.upstream_pool_idle_timeout,
            MS,
        )?,
        discard_body_limit: byte_size("server.discard_body_limit", &raw.discard_body_limit, MAX_DISCARD_BYTES)?,
        discard_body_timeout: duration("server.discard_body_timeout", &raw.discard_body_timeout)?,
        drain_delay: duration("server.drain_delay", &raw.drain_delay)?,
        drain_grace: duration("server.drain_grace", &raw.drain_grace)?,
        watch_interval: (!watch_interval.is_zero()).then_some(watch_interval),
    })
}

/// The largest `discard_body_limit`: reading more than this to keep one
/// answer is not worth the bandwidth.
const MAX_DISCARD_BYTES: u64 = 1 << 30;

/// A size: bytes, or a number with a unit, `KiB`, `MiB`, `GiB` (powers of
/// 1024) or `kB`, `MB`, `GB` (powers of 1000), in any case; at most `max`.
fn byte_size(key: &str, raw: &raw::ByteSize, max: u64) -> Result<u64, ConfigError> {
    const UNITS: [(&str, u64); 7] = [
        ("kib", 1 << 10),
        ("mib", 1 << 20),
        ("gib", 1 << 30),
        ("kb", 1000),
        ("mb", 1_000_000),
        ("gb", 1_000_000_000),
        ("b", 1),
    ];
    let bytes = match raw {
        raw::ByteSize::Bytes(n) => Some(*n),
        raw::ByteSize::Text(text) => {
            let text = text.trim().to_ascii_lowercase();
            let (number, unit) = UNITS
                .iter()
                .find_map(|(name, unit)| text.strip_suffix(name).map(|n| (n.trim_end(), *unit)))
                .unwrap_or((text.as_str(), 1));
            number.parse::<u64>().ok().and_then(|n| n.checked_mul(unit))
        }
    };
    let bytes =
        bytes.ok_or_else(|| ConfigError::invalid(key, "not a size like \"64MiB\", \"512KiB\" or a number of bytes"))?;
    if bytes > max {
        return Err(ConfigError::invalid(key, format!("at most {}MiB", max >> 20)));
    }
    Ok(bytes)
}

fn within(key: &str, value: usize, min: usize, max: usize) -> Result<usize, ConfigError> {
    if !(min..=max).contains(&value) {
        return Err(ConfigError::invalid(key, format!("between {min} and {max}")));
    }
    Ok(value)
}
