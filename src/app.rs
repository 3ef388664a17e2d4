//! Startup and lifetime: builds every part from the configuration, binds the
//! listeners (and the egress proxy's, when `[egress]` is set), runs them with
//! the key refreshers and the reload triggers, and drains on shutdown: not
//! ready first, then (after `server.drain_delay`) stop accepting, then let
//! requests in flight finish within `server.drain_grace`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::admin::Admin;
use crate::auth::Authenticator;
use crate::auth::claims::ClaimChecks;
use crate::auth::jwks::KeyStore;
use crate::auth::token_cache::TokenCache;
use crate::config::{Config, Source};
use crate::egress::Egress;
use crate::egress::ca::CaError;
use crate::limit::LimitStore;
use crate::listener::{self, Current, Load, Serving};
use crate::metrics::Metrics;
use crate::proxy::{BuildError, Gateway};
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
    #[error(transparent)]
    Gateway(#[from] BuildError),
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Egress(#[from] CaError),
}

pub struct App {
    current: Current,
    listener: TcpListener,
    admin_listener: TcpListener,
    egress: Option<(Arc<Egress>, TcpListener)>,
    fingerprint: String,
    keys: Arc<KeyStore>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    load: Arc<Load>,
    limits: Arc<LimitStore>,
    reloader: Arc<Reloader>,
}

/// The gateway for `config`: routes, claim checks, the verified-token cache
/// and limits over the shared key store.
pub fn gateway(
    config: &Config,
    keys: &Arc<KeyStore>,
    metrics: &Metrics,
    limits: &LimitStore,
) -> Result<Gateway, BuildError> {
    let checks = ClaimChecks {
        issuers: config.identity.issuers.clone(),
        tenants: config.identity.tenants.clone(),
        skew_secs: config.identity.clock_skew_secs as i64,
    };
    let auth = Authenticator::new(Arc::clone(keys), checks, config.identity.max_token_bytes)
        .with_token_cache(TokenCache::new(config.identity.token_cache_size, metrics.token_cache()));
    Ok(Gateway::build(config, auth, metrics)?.with_limits(limits.limits(config)))
}

impl App {
    /// Builds everything and binds the listeners. Tries to load the signing
    /// keys of every source once (falling back to the saved key sets); a
    /// failure is logged and retried in the background.
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
        metrics.tls_cert_not_after("gateway", server_tls.not_after);
        let keys = Arc::new(KeyStore::new(&config.identity, |name| metrics.jwks_source(name))?);
        keys.load().await;
        let gateway = Arc::new(gateway(&config, &keys, &metrics, &limits)?);
        let listener = bind(config.server.listen).await?;
        let admin_listener = bind(config.server.admin_listen).await?;
        let config = Arc::new(config);
        let serving = Serving::new(Arc::clone(&config), gateway, server_tls.config);
        let current: Current = Arc::new(ArcSwap::from_pointee(serving));
        let egress = match &config.egress {
            Some(e) => {
                let egress = Egress::build(e, &config, Arc::clone(&current), metrics.egress())?;
                Some((Arc::new(egress), bind(e.listen).await?))
            }
            None => None,
        };
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
            egress,
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

    /// The egress proxy's address, when `[egress]` is configured.
    pub fn egress_addr(&self) -> Option<SocketAddr> {
        self.egress.as_ref().and_then(|(_, l)| l.local_addr().ok())
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
        let mut refreshers = self.keys.spawn_refreshers(&stop);
        let cleanup = tokio::spawn(Arc::clone(&self.limits).run_cleanup(stop.clone()));
        let hangups = tokio::spawn(Arc::clone(&self.reloader).on_hangup(stop.clone()));
        let watcher = tokio::spawn(Arc::clone(&self.reloader).watch_files(stop.clone()));
        let gateway = tokio::spawn(listener::serve_gateway(
            self.listener,
            Arc::clone(&self.current),
            Arc::clone(&self.load),
            stop.clone(),
        ));
        let egress = self.egress.map(|(egress, tcp)| {
            info!(listen = %tcp.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "egress proxy started");
            tokio::spawn(egress.serve(tcp, stop.clone(), config.server.drain_grace))
        });
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
        if let Some(egress) = egress {
            let _ = egress.await;
        }
        info!("connections drained");
        while refreshers.join_next().await.is_some() {}
        let _ = tokio::join!(cleanup, hangups, watcher);
        admin_stop.cancel();
        let _ = admin_task.await;
        info!("mfagate stopped");
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })
}
