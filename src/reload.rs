//! Hot reload: on SIGHUP (or when `server.watch_interval` finds the
//! configuration or certificate files changed) the configuration is read
//! again and the whole serving state is built from it by the same function
//! as at start (`Serving::build`: certificate, routes, claim checks, policy,
//! limits, the egress proxy's host rules, CA and binding) and swapped in at
//! once. A configuration that fails to load or to build is rejected with a
//! log line naming the key, and the running one stays. Requests in flight
//! finish on the configuration they started with.
//!
//! The settings of `serving::Startup` (listen addresses, worker threads,
//! logging, key sources, the token cache, the egress listener) are bound at
//! start: a reload that changes one is rejected, naming the key.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::{Config, ConfigError, Source, TlsSource};
use crate::serving::{self, Current, Purpose, Serving, Shared, Startup};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no configuration source to reload from")]
    NoSource,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}: changing it needs a restart")]
    RestartRequired(String),
    #[error(transparent)]
    Build(#[from] serving::BuildError),
}

impl ReloadError {
    /// The configuration key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Config(e) => e.key(),
            Self::RestartRequired(key) => Some(key),
            Self::Build(e) => e.key(),
            Self::NoSource => None,
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
    current: Arc<Current>,
    shared: Arc<Shared>,
    counters: ReloadMetrics,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(current: Arc<Current>, shared: Arc<Shared>) -> Result<Self, prometheus::Error> {
        let counters = ReloadMetrics::register(shared.metrics.registry())?;
        Ok(Self { source: Mutex::new(None), current, shared, counters, one_at_a_time: tokio::sync::Mutex::new(()) })
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
        start_only_unchanged(&self.current.load(), &config)?;
        let serving = Serving::build(config, &self.shared, Purpose::Serve)?;
        serving.activate(&self.shared.metrics);
        self.current.store(serving);
        Ok(())
    }

    /// Listens for SIGHUP. Called before the gateway says it has started, so
    /// that a reload asked for right after start (`systemctl reload`) is
    /// not lost: a signal that arrives before its stream exists is dropped.
    #[cfg(unix)]
    pub fn hangups() -> Option<tokio::signal::unix::Signal> {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(e) => {
                error!(error = %e, "cannot listen for SIGHUP: reload by signal is unavailable");
                None
            }
        }
    }

    /// Reloads on every SIGHUP of `hangups` until `stop`.
    #[cfg(unix)]
    pub async fn on_hangup(self: Arc<Self>, hangups: Option<tokio::signal::unix::Signal>, stop: CancellationToken) {
        let Some(mut hangups) = hangups else { return stop.cancelled().await };
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
    pub fn hangups() -> Option<()> {
        None
    }

    #[cfg(not(unix))]
    pub async fn on_hangup(self: Arc<Self>, _hangups: Option<()>, stop: CancellationToken) {
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

/// Refuses a change to a setting that only takes effect at start.
fn start_only_unchanged(running: &Serving, next: &Config) -> Result<(), ReloadError> {
    match running.startup.changed_key(&Startup::of(next), &running.config, next) {
        Some(key) => Err(ReloadError::RestartRequired(key)),
        None => Ok(()),
    }
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
        match Startup::of(&running).changed_key(&Startup::of(&next), &running, &next) {
            Some(key) => Err(ReloadError::RestartRequired(key)),
            None => Ok(()),
        }
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
        assert_eq!(key("[log]\nformat = \"json\"").as_deref(), Some("log.format"));
        assert_eq!(key("[server]\nadmin_listen = \"127.0.0.1:1\"").as_deref(), Some("server.admin_listen"));
        assert_eq!(key("[identity]\nrefresh_interval = \"2h\"").as_deref(), Some("identity.refresh_interval"));
        assert_eq!(key("[identity]\ntoken_cache_size = 5").as_deref(), Some("identity.token_cache_size"));
        assert_eq!(key("[identity]\nstate_dir = \"elsewhere\"").as_deref(), Some("identity.state_dir"));
        let egress = "[egress]\nlisten = \"127.0.0.1:3128\"\nca_cert = \"a\"\nca_key = \"b\"\n";
        assert_eq!(key(egress).as_deref(), Some("egress.listen"));
    }

    #[test]
    fn egress_rules_routes_and_limits_reload() {
        let egress = |extra: &str| {
            format!("[egress]\nlisten = \"127.0.0.1:3128\"\nca_cert = \"a\"\nca_key = \"b\"\n{extra}\n{BASE}")
        };
        let running = Config::from_toml(&egress("")).unwrap();
        for change in [
            "default = \"tunnel\"",
            "allow_hosts = [\"pypi.org\"]\ndeny_hosts = [\"*.example.net\"]",
            "connect_ports = [443, 8443]",
            "tunnel_idle_timeout = \"1m\"",
            "[egress.proxy_auth]\nusername = \"svc\"\npassword = \"p\"",
            "[egress.resolve]\n\"graph.microsoft.com\" = \"127.0.0.1:9443\"",
        ] {
            let next = Config::from_toml(&egress(change)).unwrap();
            assert_eq!(Startup::of(&running).changed_key(&Startup::of(&next), &running, &next), None, "{change}");
        }
        let other_ca = egress("").replace("ca_cert = \"a\"", "ca_cert = \"c\"");
        let next = Config::from_toml(&other_ca).unwrap();
        assert_eq!(Startup::of(&running).changed_key(&Startup::of(&next), &running, &next), None, "the CA reloads");
        let more_routes = format!(
            "{}\n[[routes]]\nname = \"g\"\nhost = \"graph.microsoft.com\"\nupstream = \"https://graph.microsoft.com\"\naudiences = [\"https://graph.microsoft.com\"]\n",
            egress("")
        );
        let next = Config::from_toml(&more_routes).unwrap();
        assert_eq!(Startup::of(&running).changed_key(&Startup::of(&next), &running, &next), None, "routes reload");
    }
}
