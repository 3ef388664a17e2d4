//! The serving state: everything that decides how traffic is routed,
//! intercepted or bound (reverse routes and their upstreams, claim checks
//! and policy, rate limits, the listener's certificate and connection
//! settings, the egress proxy's host rules, interception CA, audience
//! binding and proxy credentials) is built by `Serving::build` from one
//! `Config`, at start and at every reload alike, and swapped as one unit.
//! `check-config` builds it too, so it runs every check `run` runs before
//! it serves.
//!
//! What only a restart can change is listed, typed, in `Startup`; a reload
//! that changes one of those settings is refused with the key named. The
//! parts that outlive a reload (signing keys, the verified-token cache,
//! rate-limit buckets, metrics) are `Shared`.

use crate::proxy::regions::RegionLog;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::ProducesTickets;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::audit::{AuditError, AuditLog};
use crate::auth::Authenticator;
use crate::auth::claims::ClaimChecks;
use crate::auth::jwks::KeyStore;
use crate::auth::token_cache::TokenCache;
use crate::config::{Config, IdentityConfig, LogConfig};
use crate::egress::ca::CaError;
use crate::egress::{self, EgressState};
use crate::limit::{LimitStore, StoreError};
use crate::listener::{self, Endpoint};
use crate::metrics::Metrics;
use crate::proxy::{Gateway, GatewayError};
use crate::rfc3339;
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{key}: {0}", key = certificate_key(.0))]
    Certificate(#[source] TlsError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("{key}: {0}", key = egress_key(.0))]
    Egress(#[from] CaError),
    #[error("audit.path: {0}")]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Limits(#[from] StoreError),
}

impl BuildError {
    /// The configuration key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Certificate(e) => Some(certificate_key(e)),
            Self::Egress(e) => Some(egress_key(e)),
            Self::Audit(_) => Some("audit.path"),
            Self::Gateway(e) => Some(e.key()),
            Self::Limits(e) => Some(e.key()),
        }
    }
}

/// The key a listener TLS error is about: the private key's file when it
/// could not be read, else the certificate.
fn certificate_key(e: &TlsError) -> &'static str {
    match e {
        TlsError::Key { .. } => "server.tls_key",
        _ => "server.tls_cert",
    }
}

/// The key an interception CA error is about: the one it names (the CA's
/// key when that could not be read), else the certificate.
fn egress_key(e: &CaError) -> &'static str {
    match e {
        CaError::Load { key, .. } | CaError::SelfCheck { key, .. } => key,
        _ => "egress.ca_cert",
    }
}

/// What the serving state is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// To serve: the decision log is opened.
    Serve,
    /// To check a configuration (`check-config`): nothing is opened for
    /// writing, but every check runs.
    Check,
}

/// The parts that outlive every configuration the process serves.
pub struct Shared {
    pub keys: Arc<KeyStore>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<LimitStore>,
    /// Principals' recent compute regions (`compute_guard`), kept across reloads.
    pub regions: RegionLog,
    token_cache: Option<TokenCache>,
    /// The session ticket keys of every listener configuration.
    tickets: Arc<dyn ProducesTickets>,
}

impl Shared {
    /// Registers the metrics and builds the key store (nothing is fetched).
    pub fn new(config: &Config) -> Result<Self, SharedError> {
        let metrics = Arc::new(Metrics::new()?);
        let limits = Arc::new(LimitStore::register(metrics.registry())?);
        let keys = Arc::new(
            KeyStore::new(&config.identity, |name| metrics.jwks_source(name))
                .map_err(|e| SharedError::Keys(e.to_string()))?,
        );
        let token_cache = TokenCache::new(config.identity.token_cache_size, metrics.token_cache());
        let tickets = tls::ticketer()?;
        Ok(Self { keys, metrics, limits, regions: RegionLog::default(), token_cache, tickets })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("identity.jwks_ca: {0}")]
    Keys(String),
    #[error(transparent)]
    Tickets(#[from] TlsError),
}

/// Everything a reload replaces at once.
pub struct Serving {
    pub config: Arc<Config>,
    pub startup: Startup,
    pub gateway: Arc<Gateway>,
    pub endpoint: Arc<Endpoint>,
    pub egress: Option<Arc<EgressState>>,
    /// SHA-256 fingerprint of the served certificate.
    pub fingerprint: String,
    pub self_signed: bool,
    not_after: Option<i64>,
}

impl Serving {
    /// Builds the whole serving state from `config`; nothing is published
    /// (metrics, logs of what changed) until `activate`.
    pub fn build(config: Config, shared: &Shared, purpose: Purpose) -> Result<Self, BuildError> {
        let server_tls = tls::server(&config.server.tls, &shared.tickets).map_err(BuildError::Certificate)?;
        let checks = ClaimChecks {
            issuers: config.identity.issuers.clone(),
            tenants: config.identity.tenants.clone(),
            skew_secs: config.identity.clock_skew_secs as i64,
        };
        let auth = Authenticator::new(Arc::clone(&shared.keys), checks, config.identity.max_token_bytes)
            .with_token_cache(shared.token_cache.clone());
        let audit = match purpose {
            Purpose::Serve => AuditLog::open(&config.audit, shared.metrics.audit())?,
            Purpose::Check => {
                AuditLog::check(&config.audit)?;
                None
            }
        };
        let limits = match purpose {
            Purpose::Serve => shared.limits.limits(&config)?,
            Purpose::Check => shared.limits.limits_unconnected(&config),
        };
        let gateway = Gateway::build(&config, auth, &shared.metrics, audit)?
            .with_limits(limits)
            .with_regions(shared.regions.clone());
        let egress = match &config.egress {
            Some(e) => Some(Arc::new(EgressState::build(e, &config, shared.metrics.egress())?)),
            None => None,
        };
        Ok(Self {
            startup: Startup::of(&config),
            endpoint: Arc::new(Endpoint::new(&config.server, server_tls.config)),
            gateway: Arc::new(gateway),
            egress,
            fingerprint: server_tls.fingerprint,
            self_signed: server_tls.self_signed,
            not_after: server_tls.not_after,
            config: Arc::new(config),
        })
    }

    /// Publishes what this state serves: certificate expiry, routes,
    /// exemptions (and warns about expired ones).
    pub fn activate(&self, metrics: &Metrics) {
        metrics.tls_cert_not_after("gateway", self.not_after);
        metrics.describe_routes(&self.config.routes);
        let now = rfc3339::unix_now();
        for e in self.config.exemptions.iter().filter(|e| !e.is_active(now)) {
            warn!(reason = %e.reason, expired = %rfc3339::format(e.expires), "exemption has expired and no longer applies");
        }
        metrics.exemptions(self.config.exemptions.iter().map(|e| e.expires).collect());
        if self.self_signed {
            info!(sha256 = %self.fingerprint, days = tls::SELF_SIGNED_LIFETIME.as_secs() / 86_400, "no certificate configured: generated a self-signed one for localhost and 127.0.0.1");
        } else {
            info!(sha256 = %self.fingerprint, "serving the configured certificate");
        }
    }
}

/// The settings that take effect only at start: the sockets bound, the
/// runtime, logging, and the parts in `Shared` (key sources, the token
/// cache). Built by naming every field of every section, so a new setting
/// does not compile until it is classified here as start-only or reloadable.
#[derive(Debug, Clone, PartialEq)]
pub struct Startup {
    listen: std::net::SocketAddr,
    admin_listen: std::net::SocketAddr,
    workers: usize,
    log: LogConfig,
    key_sources: KeySources,
    egress_listen: Option<std::net::SocketAddr>,
}

/// `[identity]`'s start-only part: where keys come from and the token cache.
#[derive(Debug, Clone, PartialEq)]
struct KeySources {
    sources: Vec<crate::config::KeySourceConfig>,
    jwks_ca: Option<std::path::PathBuf>,
    fetch: crate::config::identity::FetchLimits,
    state_dir: Option<std::path::PathBuf>,
    token_cache_size: u64,
}

impl Startup {
    pub fn of(config: &Config) -> Self {
        let Config { server, identity, log, audit: _, limits: _, routes: _, exemptions: _, egress, effective: _ } =
            config;
        let crate::config::ServerConfig {
            listen,
            admin_listen,
            workers,
            // Reloadable: read per connection or request from the serving state.
            // Each part is reloadable as a whole; a part added later is
            // classified here.
            tls: _,
            http: _,
            load: _,
            upstream: _,
            discard: _,
            drain: _,
            watch_interval: _,
        } = server;
        let IdentityConfig {
            sources,
            jwks_ca,
            fetch,
            state_dir,
            token_cache_size,
            // Reloadable: the claim checks are part of the serving state.
            issuers: _,
            clock_skew_secs: _,
            tenants: _,
            max_token_bytes: _,
        } = identity;
        Self {
            listen: *listen,
            admin_listen: *admin_listen,
            workers: *workers,
            log: log.clone(),
            key_sources: KeySources {
                sources: sources.clone(),
                jwks_ca: jwks_ca.clone(),
                fetch: *fetch,
                state_dir: state_dir.clone(),
                token_cache_size: *token_cache_size,
            },
            // The rest of `[egress]` is reloadable (`EgressState`).
            egress_listen: egress.as_ref().map(|e| e.listen),
        }
    }

    /// The first start-only setting `next` changes, as a configuration key;
    /// `[identity]` keys are named as written in `running` and `candidate`.
    pub fn changed_key(&self, next: &Startup, running: &Config, candidate: &Config) -> Option<String> {
        let plain = [
            (self.listen != next.listen, "server.listen"),
            (self.admin_listen != next.admin_listen, "server.admin_listen"),
            (self.workers != next.workers, "server.workers"),
            (self.log.json != next.log.json, "log.format"),
            (self.log.level != next.log.level, "log.level"),
            (self.egress_listen != next.egress_listen, "egress.listen"),
        ];
        if let Some((_, key)) = plain.into_iter().find(|(changed, _)| *changed) {
            return Some(key.to_string());
        }
        if self.key_sources == next.key_sources {
            return None;
        }
        // Name the `[identity]` key that differs, as written.
        let raw = |c: &Config| serde_json::to_value(&c.effective.identity).unwrap_or_default();
        let (old, new) = (raw(running), raw(candidate));
        let reloadable = ["issuers", "tenants", "clock_skew_secs", "max_token_bytes"];
        let mut names: Vec<&String> = old.as_object().into_iter().flat_map(|o| o.keys()).collect();
        names.extend(new.as_object().into_iter().flat_map(|o| o.keys()));
        let named = names.into_iter().find(|n| !reloadable.contains(&n.as_str()) && old.get(n) != new.get(n));
        Some(format!("identity.{}", named.map_or("sources", |n| n.as_str())))
    }
}

/// The serving state being served now, and a signal for every change.
pub struct Current {
    state: ArcSwap<Serving>,
    generation: watch::Sender<u64>,
}

impl Current {
    pub fn new(serving: Serving) -> Self {
        Self { state: ArcSwap::from_pointee(serving), generation: watch::Sender::new(0) }
    }

    pub fn load(&self) -> Arc<Serving> {
        self.state.load_full()
    }

    /// Swaps in `serving`; requests in flight keep the state they started with.
    pub fn store(&self, serving: Serving) {
        self.state.store(Arc::new(serving));
        self.generation.send_modify(|g| *g += 1);
    }
}

impl listener::LiveGateway for Current {
    type Pipeline = Gateway;

    fn gateway(&self) -> (Arc<Endpoint>, Arc<Gateway>) {
        let state = self.state.load();
        (Arc::clone(&state.endpoint), Arc::clone(&state.gateway))
    }
}

impl egress::LiveEgress for Current {
    fn egress(&self) -> Option<(Arc<Gateway>, Arc<EgressState>)> {
        let state = self.state.load();
        Some((Arc::clone(&state.gateway), Arc::clone(state.egress.as_ref()?)))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}
