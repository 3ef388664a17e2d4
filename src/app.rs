//! Startup and lifetime: builds every part from the configuration, binds the
//! listeners (and the egress proxy's, when `[egress]` is set), runs them with
//! the key refresher, and drains on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::admin::Admin;
use crate::auth::Authenticator;
use crate::auth::claims::ClaimChecks;
use crate::auth::jwks::KeyStore;
use crate::auth::token_cache::TokenCache;
use crate::config::Config;
use crate::egress::Egress;
use crate::egress::ca::CaError;
use crate::listener::{self, ConnSettings};
use crate::metrics::Metrics;
use crate::proxy::Gateway;
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
    Gateway(#[from] crate::proxy::BuildError),
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Egress(#[from] CaError),
}

pub struct App {
    config: Config,
    listener: TcpListener,
    admin_listener: TcpListener,
    egress: Option<(Arc<Egress>, TcpListener)>,
    acceptor: TlsAcceptor,
    fingerprint: String,
    gateway: Arc<Gateway>,
    keys: Arc<KeyStore>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

impl App {
    /// Builds everything and binds both listeners. Tries to load the signing
    /// keys of every source once (falling back to the saved key sets); a
    /// failure is logged and retried in the background.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let metrics = Arc::new(Metrics::new()?);
        let server_tls = tls::server(&config.server.tls)?;
        if server_tls.self_signed {
            info!(sha256 = %server_tls.fingerprint, "no certificate configured: generated a self-signed one for localhost and 127.0.0.1");
        } else {
            info!(sha256 = %server_tls.fingerprint, "serving the configured certificate");
        }
        metrics.tls_cert_not_after("gateway", server_tls.not_after);
        let keys = Arc::new(KeyStore::new(&config.identity, |name| metrics.jwks_source(name))?);
        keys.load().await;
        let checks = ClaimChecks {
            issuers: config.identity.issuers.clone(),
            tenants: config.identity.tenants.clone(),
            skew_secs: config.identity.clock_skew_secs as i64,
        };
        let auth = Authenticator::new(Arc::clone(&keys), checks, config.identity.max_token_bytes)
            .with_token_cache(TokenCache::new(config.identity.token_cache_size, metrics.token_cache()));
        let gateway = Arc::new(Gateway::build(&config, auth, &metrics)?);
        let egress = match &config.egress {
            Some(e) => {
                let egress = Egress::build(e, &config, Arc::clone(&gateway), metrics.egress())?;
                Some((Arc::new(egress), bind(e.listen).await?))
            }
            None => None,
        };
        let listener = bind(config.server.listen).await?;
        let admin_listener = bind(config.server.admin_listen).await?;
        Ok(Self {
            egress,
            acceptor: TlsAcceptor::from(server_tls.config),
            fingerprint: server_tls.fingerprint,
            config,
            listener,
            admin_listener,
            gateway,
            keys,
            metrics,
            readiness: Arc::new(Readiness::default()),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.server.listen)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener.local_addr().unwrap_or(self.config.server.admin_listen)
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

    /// Serves until `shutdown` resolves, then drains within `server.drain_grace`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let stop = CancellationToken::new();
        let grace = self.config.server.drain_grace;
        info!(listen = %self.local_addr(), admin = %self.admin_addr(), routes = self.config.routes.len(), "mfagate started");
        let mut refreshers = self.keys.spawn_refreshers(&stop);
        let settings = ConnSettings {
            tls_handshake_timeout: self.config.server.tls_handshake_timeout,
            header_read_timeout: self.config.server.header_read_timeout,
        };
        let gateway = tokio::spawn(listener::serve_gateway(
            self.listener,
            self.acceptor,
            self.gateway,
            settings,
            stop.clone(),
            grace,
        ));
        let egress = self.egress.map(|(egress, tcp)| {
            info!(listen = %tcp.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "egress proxy started");
            tokio::spawn(egress.serve(tcp, stop.clone(), grace))
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
            grace,
        ));
        shutdown.await;
        info!(?grace, "shutting down: not ready, draining connections");
        self.readiness.set_draining();
        stop.cancel();
        let _ = gateway.await;
        if let Some(egress) = egress {
            let _ = egress.await;
        }
        while refreshers.join_next().await.is_some() {}
        admin_stop.cancel();
        let _ = admin_task.await;
        info!("mfagate stopped");
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })
}
