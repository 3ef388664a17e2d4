//! Startup and lifetime: builds every part from the configuration, binds the
//! listeners (and the egress proxy's, when `[egress]` is set), runs them with
//! the key refreshers and the reload triggers, and drains on shutdown: not
//! ready first, then (after `server.drain_delay`) stop accepting, then let
//! requests in flight finish within `server.drain_grace`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::admin::Admin;
use crate::auth::jwks::KeyStore;
use crate::config::{Config, Source};
use crate::egress::Egress;
use crate::listener::{self, Load};
use crate::reload::Reloader;
use crate::serving::{BuildError, Current, Purpose, Serving, Shared, SharedError};
use crate::shutdown::Readiness;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Shared(#[from] SharedError),
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl StartupError {
    /// True when the configuration is at fault (a file it names cannot be
    /// read or used): starting again will not help.
    pub fn is_configuration(&self) -> bool {
        match self {
            Self::Build(_) | Self::Shared(SharedError::Keys(_)) => true,
            Self::Bind { .. } | Self::Metrics(_) | Self::Shared(SharedError::Metrics(_) | SharedError::Tickets(_)) => {
                false
            }
        }
    }

    /// The configuration key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Build(e) => e.key(),
            Self::Shared(SharedError::Keys(_)) => Some("identity.jwks_ca"),
            Self::Bind { .. } | Self::Metrics(_) | Self::Shared(_) => None,
        }
    }
}

pub struct App {
    current: Arc<Current>,
    shared: Arc<Shared>,
    listener: TcpListener,
    admin_listener: TcpListener,
    egress: Option<(Arc<Egress>, TcpListener)>,
    fingerprint: String,
    readiness: Arc<Readiness>,
    load: Arc<Load>,
    reloader: Arc<Reloader>,
}

impl App {
    /// Builds everything and binds the listeners. Tries to load the signing
    /// keys of every source once (falling back to the saved key sets); a
    /// failure is logged and retried in the background.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let shared = Arc::new(Shared::new(&config)?);
        let load = Arc::new(Load::register(shared.metrics.registry(), "gateway")?);
        let serving = Serving::build(config, &shared, Purpose::Serve)?;
        serving.activate(&shared.metrics);
        shared.keys.load().await;
        let listener = bind(serving.config.server.listen).await?;
        let admin_listener = bind(serving.config.server.admin_listen).await?;
        let egress_listen = serving.config.egress.as_ref().map(|e| e.listen);
        let fingerprint = serving.fingerprint.clone();
        let current = Arc::new(Current::new(serving));
        let egress = match egress_listen {
            Some(addr) => {
                let egress =
                    Egress::new(Arc::clone(&current) as Arc<dyn crate::egress::LiveEgress>, shared.metrics.egress());
                Some((Arc::new(egress), bind(addr).await?))
            }
            None => None,
        };
        let reloader = Arc::new(Reloader::new(Arc::clone(&current), Arc::clone(&shared))?);
        Ok(Self {
            current,
            shared,
            fingerprint,
            listener,
            admin_listener,
            egress,
            readiness: Arc::new(Readiness::default()),
            load,
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
        &self.shared.keys
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
        let hangups = Reloader::hangups();
        info!(listen = %self.local_addr(), admin = %self.admin_addr(), routes = config.routes.len(), "mfagate started");
        let current = Arc::clone(&self.current);
        let mut refreshers = self.shared.keys.spawn_refreshers(&stop);
        let cleanup = tokio::spawn(Arc::clone(&self.shared.limits).run_cleanup(stop.clone()));
        let hangups = tokio::spawn(Arc::clone(&self.reloader).on_hangup(hangups, stop.clone()));
        let watcher = tokio::spawn(Arc::clone(&self.reloader).watch_files(stop.clone()));
        let gateway = tokio::spawn(listener::serve_gateway(
            self.listener,
            Arc::clone(&self.current),
            Arc::clone(&self.load),
            stop.clone(),
        ));
        let egress = self.egress.map(|(egress, tcp)| {
            info!(listen = %tcp.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "egress proxy started");
            tokio::spawn(egress.serve(tcp, stop.clone()))
        });
        let admin = Arc::new(Admin {
            metrics: Arc::clone(&self.shared.metrics),
            keys: Arc::clone(&self.shared.keys),
            readiness: Arc::clone(&self.readiness),
        });
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn(listener::serve_plain(
            self.admin_listener,
            move |req| {
                let admin = Arc::clone(&admin);
                async move { admin.handle(&req) }
            },
            config.server.http,
            admin_stop.clone(),
            config.server.drain.grace,
        ));
        shutdown.await;
        let config = Arc::clone(&current.load().config);
        let (delay, grace) = (config.server.drain.delay, config.server.drain.grace);
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
