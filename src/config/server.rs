//! `[server]`: listeners, certificate, timeouts and limits, checked into
//! `ServerConfig`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::raw;
use super::values::{duration, min_duration, socket_addr};

/// `[server]`, in the parts each component owns: a component is handed
/// its part, never the whole section.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: TlsSource,
    pub admin_listen: SocketAddr,
    /// Worker threads; 0 means one per available CPU.
    pub workers: usize,
    /// How a client connection is spoken to (the listeners).
    pub http: HttpSettings,
    /// How many connections and requests are served at once (the listener's load).
    pub load: LoadLimits,
    /// How the gateway calls upstreams (the upstream client).
    pub upstream: UpstreamSettings,
    /// What is read of a body after an early answer (the answer).
    pub discard: DiscardSettings,
    /// How the process stops (the wiring).
    pub drain: DrainSettings,
    /// How often the configuration and certificate files are checked for
    /// changes; `None` when only SIGHUP reloads.
    pub watch_interval: Option<Duration>,
}

/// The client side of a connection, on every listener that speaks HTTP to
/// clients (the gateway's, and the tunnels the egress proxy intercepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub keep_alive_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub http2_max_concurrent_streams: u32,
}

impl Default for HttpSettings {
    /// The defaults of `[server]`, for listeners of the tools that have no
    /// configuration of their own.
    fn default() -> Self {
        let defaults = server(&raw::Server::default()).map(|s| s.http);
        defaults.unwrap_or_else(|e| unreachable!("the defaults of [server] are valid: {e}"))
    }
}

/// `max_connections` and `max_in_flight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    pub max_connections: usize,
    pub max_in_flight: usize,
}

/// The `upstream_*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Longest pause allowed between two parts of an upstream's response body.
    pub idle_timeout: Duration,
    /// Idle connections kept per upstream host; requests beyond it open
    /// (and close) connections of their own, so it should be at least the
    /// number of requests in flight to one upstream.
    pub pool_max_idle: usize,
    pub pool_idle_timeout: Duration,
}

/// `discard_body_limit` and `discard_body_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscardSettings {
    /// After an answer given before the request body was read, at most this
    /// many bytes of the body are read and discarded before the connection
    /// closes (RFC 9112 §9.6); 0: none.
    pub limit: u64,
    /// ... and for at most this long; zero: none.
    pub timeout: Duration,
}

/// `drain_delay` and `drain_grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainSettings {
    /// Between turning not-ready and closing the listener on shutdown.
    pub delay: Duration,
    /// How long open connections may finish once the listener is closed.
    pub grace: Duration,
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
        http: HttpSettings {
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
        },
        load: LoadLimits {
            max_connections: within("server.max_connections", raw.max_connections, 1, 1_000_000)?,
            max_in_flight: within("server.max_in_flight", raw.max_in_flight, 1, 1_000_000)?,
        },
        upstream: UpstreamSettings {
            connect_timeout: min_duration("server.upstream_connect_timeout", &raw.upstream_connect_timeout, MS)?,
            timeout: min_duration("server.upstream_timeout", &raw.upstream_timeout, MS)?,
            idle_timeout: min_duration("server.upstream_idle_timeout", &raw.upstream_idle_timeout, MS)?,
            pool_max_idle: within("server.upstream_pool_max_idle", raw.upstream_pool_max_idle, 0, 1_000_000)?,
            pool_idle_timeout: min_duration("server.upstream_pool_idle_timeout", &raw.upstream_pool_idle_timeout, MS)?,
        },
        discard: DiscardSettings {
            limit: byte_size("server.discard_body_limit", &raw.discard_body_limit, MAX_DISCARD_BYTES)?,
            timeout: duration("server.discard_body_timeout", &raw.discard_body_timeout)?,
        },
        drain: DrainSettings {
            delay: duration("server.drain_delay", &raw.drain_delay)?,
            grace: duration("server.drain_grace", &raw.drain_grace)?,
        },
        watch_interval: (!watch_interval.is_zero()).then_some(watch_interval),
    })
}

/// The largest `discard_body_limit`: reading more than this to keep one
/// answer is not worth the bandwidth.
const MAX_DISCARD_BYTES: u64 = 1 << 30;

/// A size: bytes, or a number with a unit, `KiB`, `MiB`, `GiB` (powers of
/// 1024) or `kB`, `MB`, `GB` (powers of 1000), in any case; at most `max`.
pub(super) fn byte_size(key: &str, raw: &raw::ByteSize, max: u64) -> Result<u64, ConfigError> {
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
