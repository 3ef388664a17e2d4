//! Startup and lifetime: builds every part from the configuration, binds the
//! listeners, runs them with the key refresher and the reload triggers, and
//! drains on shutdown: not ready first, then (after `server.drain_delay`)
//! stop accepting, then let requests in flight finish within
//! `server.drain_grace`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::Admin;
use crate::auth::Authenticator;
use crate::auth::claims::ClaimChecks;
use crate::auth::jwks::KeyStore;
use crate::config::{Config, Source};
use crate::limit::LimitStore;
use crate::listener::{self, Current, Load, Serving};
use crate::metrics::Metrics;
use crate::proxy::Gateway;
use crate::reload::Reloader;
use crate::shutdown::Readiness;
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
}

pub struct App {
    current: Current,
    listener: TcpListener,
    admin_listener: TcpListener,
    fingerprint: String,
    keys: Arc<KeyStore>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    load: Arc<Load>,
    limits: Arc<LimitStore>,
    reloader: Arc<Reloader>,
}

/// The gateway for `config`: routes, claim checks and limits over the shared key store.
pub fn gateway(
    config: &Config,
    keys: &Arc<KeyStore>,
    metrics: &Metrics,
    limits: &LimitStore,
) -> Result<Gateway, TlsError> {
    let checks = ClaimChecks {
        issuers: config.identity.issuers.clone(),
        tenants: config.identity.tenants.clone(),
        skew_secs: config.identity.clock_skew_secs as i64,
    };
    let auth = Authenticator::new(Arc::clone(keys), checks, config.identity.max_token_bytes);
    Ok(Gateway::build(config, auth, metrics)?.with_limits(limits.limits(config)))
}

impl App {
    /// Builds everything and binds both listeners. Tries to load the signing
    /// keys once; a failure is logged and retried in the background.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let metrics = Arc::new(Metrics::new()?);
        let load = Arc::new(Load::register(metrics.registry())?);
        let limits = Arc::new(LimitStore::register(metrics.registry())?);
        let server_tls = tls::server(&config.server.tls)?;
        if server_tls.self_signed {
            info!(sha256 = %server_tls.fingerprint, "no certificate configured: generated a self-signed one for localhost and 127.0.0.1");
        } else {
            info!(sha256 = %server_tls.fingerprint, "serving the configured certificate");
        }
        let keys = Arc::new(KeyStore::new(&config.identity, metrics.jwks())?);
        if keys.refresh().await.is_err() {
            warn!("signing keys are not available yet: not ready, retrying in the background");
        }
        let gateway = Arc::new(gateway(&config, &keys, &metrics, &limits)?);
        let listener = bind(config.server.listen).await?;
        let admin_listener = bind(config.server.admin_listen).await?;
        let serving = Serving::new(Arc::new(config), gateway, server_tls.config);
        let current: Current = Arc::new(ArcSwap::from_pointee(serving));
        let reloader = Arc::new(Reloader::new(
            Arc::clone(&current),
            Arc::clone(&keys),
            Arc::clone(&metrics),
            Arc::clone(&limits),
        )?);
        Ok(Self {
            current,
            fingerprint: server_tls.fingerprint,
            listener,
            admin_listener,
            keys,
            metrics,
            readiness: Arc::new(Readiness::default()),
            load,
            limits,
            reloader,
        })
    }

    /// Where reloads read the configuration from (without one, a reload fails).
    pub fn with_source(self, source: Source) -> Self {
        self.reloader.set_source(source);
        self
    }

    fn config(&self) -> Arc<Config> {
        Arc::clone(&self.current.load().config)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config().server.listen)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener.local_addr().unwrap_or(self.config().server.admin_listen)
    }

    /// SHA-256 fingerprint of the served certificate.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// Triggers reloads (SIGHUP does the same).
    pub fn reloader(&self) -> Arc<Reloader> {
        Arc::clone(&self.reloader)
    }

    pub fn load(&self) -> &Arc<Load> {
        &self.load
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let stop = CancellationToken::new();
        let config = self.config();
        info!(listen = %self.local_addr(), admin = %self.admin_addr(), routes = config.routes.len(), "mfagate started");
        let current = Arc::clone(&self.current);
        let refresher = tokio::spawn(Arc::clone(&self.keys).run_refresher(stop.clone()));
        let cleanup = tokio::spawn(Arc::clone(&self.limits).run_cleanup(stop.clone()));
        let hangups = tokio::spawn(Arc::clone(&self.reloader).on_hangup(stop.clone()));
        let watcher = tokio::spawn(Arc::clone(&self.reloader).watch_files(stop.clone()));
        let gateway = tokio::spawn(listener::serve_gateway(
            self.listener,
            Arc::clone(&self.current),
            Arc::clone(&self.load),
            stop.clone(),
        ));
        let admin = Arc::new(Admin {
            metrics: Arc::clone(&self.metrics),
            keys: Arc::clone(&self.keys),
            readiness: Arc::clone(&self.readiness),
        });
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn(listener::serve_plain(
            self.admin_listener,
            move |req| {
                let admin = Arc::clone(&admin);
                async move { admin.handle(&req) }
            },
            admin_stop.clone(),
            config.server.drain_grace,
        ));
        shutdown.await;
        let config = Arc::clone(&current.load().config);
        let (delay, grace) = (config.server.drain_delay, config.server.drain_grace);
        info!(?delay, ?grace, "shutting down: not ready; closing the listener after the delay, then draining");
        self.readiness.set_draining();
        // Load balancers see /readyz fail and stop sending; requests that
        // still arrive meanwhile are served.
        tokio::time::sleep(delay).await;
        stop.cancel();
        let _ = gateway.await;
        info!("connections drained");
        let _ = tokio::join!(refresher, cleanup, hangups, watcher);
        admin_stop.cancel();
        let _ = admin_task.await;
        info!("mfagate stopped");
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })
}
