//! Hot reload: on SIGHUP (or when `server.watch_interval` finds the
//! configuration or certificate files changed) the configuration is read
//! again and everything built from it (certificate, limits, routes, claim
//! checks, policy) is swapped in at once. A configuration that fails to load
//! or to build is rejected with a log line naming the key, and the running
//! one stays. Requests in flight finish on the configuration they started
//! with.
//!
//! Listen addresses, worker threads, logging and the signing-key source are
//! bound at start: a reload that changes them is rejected, naming the key.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::app;
use crate::auth::jwks::KeyStore;
use crate::config::{Config, ConfigError, Source, TlsSource};
use crate::limit::LimitStore;
use crate::listener::{Current, Serving};
use crate::metrics::Metrics;
use crate::tls::{self, TlsError};

/// `[identity]` keys that a reload applies; the others need a restart.
const IDENTITY_RELOADABLE: [&str; 4] = ["issuers", "tenants", "clock_skew_secs", "max_token_bytes"];
/// `[server]` keys that need a restart.
const SERVER_FIXED: [&str; 3] = ["listen", "admin_listen", "workers"];

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no configuration source to reload from")]
    NoSource,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}: changing it needs a restart")]
    RestartRequired(String),
    #[error(transparent)]
    Gateway(#[from] crate::proxy::BuildError),
    #[error("{key}: {source}")]
    Tls {
        key: &'static str,
        #[source]
        source: TlsError,
    },
}

impl ReloadError {
    /// The configuration key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Config(e) => e.key(),
            Self::RestartRequired(key) => Some(key),
            Self::Tls { key, .. } => Some(key),
            Self::Gateway(_) | Self::NoSource => None,
        }
    }
}

struct ReloadMetrics {
    success: IntCounter,
    failure: IntCounter,
    last_success: Gauge,
    last_ok: IntGauge,
}

impl ReloadMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let total = IntCounterVec::new(
            Opts::new("mfagate_config_reload_total", "Configuration reloads by result (success, failure)."),
            &["result"],
        )?;
        let last_success = Gauge::new(
            "mfagate_config_last_reload_success_timestamp_seconds",
            "Unix time of the last configuration load that took effect (start or reload).",
        )?;
        let last_ok = IntGauge::new(
            "mfagate_config_last_reload_successful",
            "1 when the last reload took effect (or none was tried), 0 when it was rejected.",
        )?;
        registry.register(Box::new(total.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(last_ok.clone()))?;
        last_ok.set(1);
        last_success.set(unix_now());
        Ok(Self {
            success: total.with_label_values(&["success"]),
            failure: total.with_label_values(&["failure"]),
            last_success,
            last_ok,
        })
    }
}

/// Reloads the configuration into `Current`, one reload at a time.
pub struct Reloader {
    source: Mutex<Option<Source>>,
    current: Current,
    keys: Arc<KeyStore>,
    metrics: Arc<Metrics>,
    limits: Arc<LimitStore>,
    counters: ReloadMetrics,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(
        current: Current,
        keys: Arc<KeyStore>,
        metrics: Arc<Metrics>,
        limits: Arc<LimitStore>,
    ) -> Result<Self, prometheus::Error> {
        let counters = ReloadMetrics::register(metrics.registry())?;
        Ok(Self {
            source: Mutex::new(None),
            current,
            keys,
            metrics,
            limits,
            counters,
            one_at_a_time: tokio::sync::Mutex::new(()),
        })
    }

    /// Where reloads read the configuration from.
    pub fn set_source(&self, source: Source) {
        *self.source.lock().unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    fn source(&self) -> Option<Source> {
        self.source.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Reads and applies the configuration; on any error the running one stays.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _one = self.one_at_a_time.lock().await;
        let result = self.build();
        match &result {
            Ok(()) => {
                self.counters.success.inc();
                self.counters.last_ok.set(1);
                self.counters.last_success.set(unix_now());
                let config = &self.current.load().config;
                info!(routes = config.routes.len(), "configuration reloaded");
            }
            Err(e) => {
                self.counters.failure.inc();
                self.counters.last_ok.set(0);
                error!(key = e.key().unwrap_or(""), error = %e, "configuration reload rejected; the running configuration stays");
            }
        }
        result
    }

    fn build(&self) -> Result<(), ReloadError> {
        let source = self.source().ok_or(ReloadError::NoSource)?;
        let config = Config::load(&source)?;
        fixed_keys_unchanged(&self.current.load().config, &config)?;
        let tls =
            tls::server(&config.server.tls).map_err(|source| ReloadError::Tls { key: "server.tls_cert", source })?;
        let gateway = app::gateway(&config, &self.keys, &self.metrics, &self.limits)?;
        self.metrics.tls_cert_not_after("gateway", tls.not_after);
        self.current.store(Arc::new(Serving::new(Arc::new(config), Arc::new(gateway), tls.config)));
        Ok(())
    }

    /// Reloads on every SIGHUP until `stop`.
    pub async fn on_hangup(self: Arc<Self>, stop: CancellationToken) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                return error!("cannot listen for SIGHUP: reload by signal is unavailable");
            };
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    got = hangups.recv() => if got.is_none() { return },
                }
                info!("SIGHUP: reloading the configuration");
                let _ = self.reload().await;
            }
        }
        #[cfg(not(unix))]
        stop.cancelled().await;
    }

    /// Reloads when the configuration file or the certificate files change,
    /// checking every `server.watch_interval` (when set) until `stop`.
    pub async fn watch_files(self: Arc<Self>, stop: CancellationToken) {
        let mut seen = self.files_state();
        loop {
            let interval = self.current.load().config.server.watch_interval;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval.unwrap_or(Duration::from_secs(1))) => {}
            }
            if interval.is_none() {
                seen = self.files_state();
                continue;
            }
            let now = self.files_state();
            if now != seen {
                info!("configuration or certificate files changed: reloading");
                let _ = self.reload().await;
                // A rejected change is not retried until the files change again.
                seen = self.files_state();
            }
        }
    }

    fn files_state(&self) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
        let mut paths = Vec::new();
        if let Some(Source::File(path)) = self.source() {
            paths.push(path);
        }
        if let TlsSource::Files { cert, key } = &self.current.load().config.server.tls {
            paths.push(cert.clone());
            paths.push(key.clone());
        }
        paths
            .into_iter()
            .map(|p| {
                let meta = std::fs::metadata(&p).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
                (p, meta)
            })
            .collect()
    }
}

/// Refuses a change to a key that only takes effect at start.
fn fixed_keys_unchanged(running: &Config, next: &Config) -> Result<(), ReloadError> {
    let (old, new) = (effective(running), effective(next));
    for key in SERVER_FIXED {
        if old["server"][key] != new["server"][key] {
            return Err(ReloadError::RestartRequired(format!("server.{key}")));
        }
    }
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    // The egress listener, its CA and host rules are built once, at start.
    if old["egress"] != new["egress"] {
        return Err(ReloadError::RestartRequired("egress".into()));
    }
    for section in ["identity", "log"] {
        let mut names = keys(&old[section]);
        names.extend(keys(&new[section]));
        for name in names {
            let reloadable = section == "identity" && IDENTITY_RELOADABLE.contains(&name.as_str());
            if !reloadable && old[section][&name] != new[section][&name] {
                return Err(ReloadError::RestartRequired(format!("{section}.{name}")));
            }
        }
    }
    Ok(())
}

fn effective(config: &Config) -> Value {
    serde_json::to_value(&config.effective).unwrap_or(Value::Null)
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::TEST_ROUTE as BASE;

    fn check(change: &str) -> Result<(), ReloadError> {
        let running = Config::from_toml(BASE).unwrap();
        let next = Config::from_toml(&format!("{change}\n{BASE}")).unwrap();
        fixed_keys_unchanged(&running, &next)
    }

    #[test]
    fn reloadable_changes_pass() {
        assert!(check("").is_ok());
        assert!(check("[server]\nmax_in_flight = 5\nupstream_timeout = \"1s\"").is_ok());
        assert!(check("[identity]\ntenants = [\"df845f1a-1111-2222-3333-444455556666\"]\nclock_skew_secs = 5").is_ok());
    }

    #[test]
    fn start_only_keys_are_named() {
        let key = |change: &str| check(change).unwrap_err().key().map(str::to_string);
        assert_eq!(key("[server]\nlisten = \"127.0.0.1:1\"").as_deref(), Some("server.listen"));
        assert_eq!(key("[server]\nworkers = 3").as_deref(), Some("server.workers"));
        assert_eq!(key("[identity]\njwks_uri = \"keys.json\"").as_deref(), Some("identity.jwks_uri"));
        assert_eq!(key("[log]\nlevel = \"debug\"").as_deref(), Some("log.level"));
    }
}
