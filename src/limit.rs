//! Rate limits (governor token buckets), checked by the gateway:
//!
//! - per route, on a claim of the verified token (`oid`, `app` or `tenant`)
//!   or on the client address (`peer`), after the policy allowed the
//!   request. Claims key a limit only when their signature verified (the
//!   `Subject` of the authorisation): a forged token naming another
//!   principal can never spend that principal's budget, and configurations
//!   that would key on unverified claims are refused at load;
//! - per client address on *denied* requests: an address that spends its
//!   budget of rejections is answered 429 before any token check until the
//!   budget refills, so a flood of bad tokens cannot burn the CPU on
//!   signature checks.
//!
//! The buckets live in a `LimitStore` that outlives configuration reloads: a
//! limit whose settings did not change keeps its counts.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Rate, RateKey};
use crate::error::Reject;
use crate::policy::Subject;

/// Addresses blocked at once at most; beyond this, new blocks are not
/// recorded (the per-address buckets still count).
const MAX_BLOCKED: usize = 65_536;
/// How often idle buckets and expired blocks are dropped.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

type Limiter = DefaultKeyedRateLimiter<u128>;

/// Buckets shared by every configuration the process runs.
pub struct LimitStore {
    routes: Mutex<HashMap<(String, RateKey, Rate), Arc<Limiter>>>,
    denied: Mutex<Option<Arc<DeniedLimiter>>>,
    rate_limited: IntCounterVec,
    blocked: IntGauge,
}

impl LimitStore {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "mfagate_rate_limited_total",
                "Requests answered 429, by route and limit key (oid, app, tenant, peer; denied_budget for the per-address budget of denied requests).",
            ),
            &["route", "key"],
        )?;
        let blocked = IntGauge::new(
            "mfagate_rate_limited_peers",
            "Client addresses currently answered 429 because they spent their budget of denied requests.",
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(blocked.clone()))?;
        Ok(Self { routes: Mutex::default(), denied: Mutex::default(), rate_limited, blocked })
    }

    /// The limits of `config`, reusing the buckets of limits whose settings
    /// did not change and forgetting those no longer configured.
    pub fn limits(&self, config: &Config) -> Limits {
        let mut store = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut kept = HashMap::new();
        let mut routes = HashMap::new();
        for route in &config.routes {
            let mut checks = Vec::with_capacity(route.rate_limits.len());
            for limit in &route.rate_limits {
                let id = (route.name.clone(), limit.key, limit.rate);
                let limiter =
                    store.get(&id).cloned().unwrap_or_else(|| Arc::new(RateLimiter::keyed(quota(limit.rate))));
                kept.insert(id, Arc::clone(&limiter));
                let counter = self.rate_limited.with_label_values(&[route.name.as_str(), limit.key.as_str()]);
                checks.push(RouteLimit { key: limit.key, limiter, counter });
            }
            let peer = self.rate_limited.with_label_values(&[route.name.as_str(), "denied_budget"]);
            routes.insert(route.name.clone(), RouteLimits { checks, peer });
        }
        *store = kept;
        drop(store);
        let mut denied = self.denied.lock().unwrap_or_else(PoisonError::into_inner);
        *denied = match (config.limits.denied_per_ip, denied.take()) {
            (Some(rate), Some(current)) if current.rate == rate => Some(current),
            (Some(rate), _) => Some(Arc::new(DeniedLimiter::new(rate, self.blocked.clone()))),
            (None, _) => None,
        };
        Limits { routes, denied: denied.clone() }
    }

    /// Drops idle buckets and expired blocks every minute until `stop`.
    pub async fn run_cleanup(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(CLEANUP_INTERVAL) => {}
            }
            let limiters: Vec<Arc<Limiter>> =
                self.routes.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
            for limiter in limiters {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            let denied = self.denied.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(denied) = denied {
                denied.cleanup();
            }
        }
    }
}

fn quota(rate: Rate) -> Quota {
    // `Rate` is validated: the interval is at least a nanosecond.
    Quota::with_period(rate.interval()).unwrap_or_else(|| Quota::per_second(rate.requests)).allow_burst(rate.burst)
}

struct RouteLimit {
    key: RateKey,
    limiter: Arc<Limiter>,
    counter: IntCounter,
}

struct RouteLimits {
    checks: Vec<RouteLimit>,
    peer: IntCounter,
}

/// The limits of one configuration.
#[derive(Default)]
pub struct Limits {
    routes: HashMap<String, RouteLimits>,
    denied: Option<Arc<DeniedLimiter>>,
}

impl Limits {
    /// Refuses a client address that spent its budget of denied requests.
    pub fn admit_peer(&self, route: &str, peer: IpAddr) -> Result<(), Reject> {
        let Some(denied) = &self.denied else { return Ok(()) };
        match denied.blocked_for(peer) {
            None => Ok(()),
            Some(wait) => {
                if let Some(r) = self.routes.get(route) {
                    r.peer.inc();
                }
                Err(Reject::RateLimited(wait))
            }
        }
    }

    /// Counts a denied request against its client address.
    pub fn note_denied(&self, peer: IpAddr) {
        if let Some(denied) = &self.denied {
            denied.note(peer);
        }
    }

    /// Checks the route's limits for the verified `subject` (none: the
    /// limits on claims do not apply) and the client address.
    pub fn admit(&self, route: &str, subject: Option<&Subject>, peer: IpAddr) -> Result<(), Reject> {
        let Some(limits) = self.routes.get(route) else { return Ok(()) };
        for limit in &limits.checks {
            let key = match (limit.key, subject) {
                (RateKey::Peer, _) => peer_key(peer),
                (RateKey::Oid, Some(s)) => claim_key(s.oid()),
                (RateKey::App, Some(s)) => claim_key(s.app()),
                (RateKey::Tenant, Some(s)) => claim_key(s.tenant()),
                (RateKey::Oid | RateKey::App | RateKey::Tenant, None) => continue,
            };
            if let Err(not_until) = limit.limiter.check_key(&key) {
                limit.counter.inc();
                return Err(Reject::RateLimited(not_until.wait_time_from(DefaultClock::default().now())));
            }
        }
        Ok(())
    }
}

/// A claim value as a bucket key: Entra's ids are GUIDs, which fit a `u128`
/// without allocating; anything else is hashed. A missing claim shares one bucket.
fn claim_key(value: Option<&str>) -> u128 {
    let Some(value) = value else { return 0 };
    match uuid::Uuid::try_parse(value) {
        Ok(id) => id.as_u128(),
        Err(_) => {
            let mut h = std::hash::DefaultHasher::new();
            value.hash(&mut h);
            u128::from(h.finish()) | (1 << 127)
        }
    }
}

/// The budget of denied requests per client address, and the addresses that
/// spent it.
struct DeniedLimiter {
    rate: Rate,
    limiter: Limiter,
    blocked: Mutex<HashMap<u128, Instant>>,
    gauge: IntGauge,
}

impl DeniedLimiter {
    fn new(rate: Rate, gauge: IntGauge) -> Self {
        gauge.set(0);
        Self { rate, limiter: RateLimiter::keyed(quota(rate)), blocked: Mutex::default(), gauge }
    }

    fn blocked_for(&self, peer: IpAddr) -> Option<Duration> {
        let key = peer_key(peer);
        let blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        let until = *blocked.get(&key)?;
        until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    fn note(&self, peer: IpAddr) {
        let key = peer_key(peer);
        let Err(not_until) = self.limiter.check_key(&key) else { return };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let until = Instant::now() + wait.max(Duration::from_millis(1));
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        if blocked.len() >= MAX_BLOCKED && !blocked.contains_key(&key) {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= MAX_BLOCKED {
                return;
            }
        }
        blocked.insert(key, until);
        self.gauge.set(blocked.len() as i64);
    }

    fn cleanup(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        blocked.retain(|_, until| *until > now);
        blocked.shrink_to_fit();
        self.gauge.set(blocked.len() as i64);
    }
}

/// IPv4 addresses count one by one; IPv6 addresses by their /64, which is
/// what one subscriber usually gets.
fn peer_key(ip: IpAddr) -> u128 {
    // IPv4 keys are even, IPv6 prefixes odd (their low 64 bits are masked off).
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 1,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)) << 1,
            None => (u128::from(v6) & (u128::MAX << 64)) | 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    use crate::config::TEST_ROUTE as BASE;

    fn store() -> LimitStore {
        LimitStore::register(&Registry::new()).unwrap()
    }

    fn claims(oid: &str, tid: &str) -> Subject {
        let claims =
            crate::auth::claims::Claims::parse(format!(r#"{{"oid":"{oid}","tid":"{tid}"}}"#).as_bytes()).unwrap();
        let token = crate::policy::Presented::Checked { claims: std::sync::Arc::new(claims), verified: true };
        crate::policy::Facts { token: Some(token), ..Default::default() }.subject().unwrap()
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));

    const A: &str = "aaaaaaaa-0000-0000-0000-000000000001";
    const B: &str = "bbbbbbbb-0000-0000-0000-000000000002";

    #[test]
    fn route_limits_count_per_claim_value() {
        let text = format!("{BASE}rate_limits = [{{ key = \"oid\", requests = 2, per = \"1h\" }}]\n");
        let config = Config::from_toml(&text).unwrap();
        let limits = store().limits(&config);
        assert!(limits.admit("pc", Some(&claims(A, B)), PEER).is_ok());
        assert!(limits.admit("pc", Some(&claims(A, B)), PEER).is_ok());
        let err = limits.admit("pc", Some(&claims(A, B)), PEER).unwrap_err();
        assert_eq!(err.reason(), Reason::RateLimited);
        let Reject::RateLimited(wait) = err else { unreachable!() };
        assert!(wait > Duration::from_secs(1700) && wait <= Duration::from_secs(1800), "{wait:?}");
        assert!(limits.admit("pc", Some(&claims(B, B)), PEER).is_ok(), "another principal has its own bucket");
        assert!(limits.admit("other", Some(&claims(A, B)), PEER).is_ok(), "unknown routes have no limits");
    }

    #[test]
    fn buckets_survive_a_reload_with_the_same_settings() {
        let store = store();
        let text = format!("{BASE}rate_limits = [{{ key = \"tenant\", requests = 1, per = \"1h\" }}]\n");
        let config = Config::from_toml(&text).unwrap();
        assert!(store.limits(&config).admit("pc", Some(&claims(A, B)), PEER).is_ok());
        assert!(store.limits(&config).admit("pc", Some(&claims(A, B)), PEER).is_err(), "same settings: same bucket");
        let changed = Config::from_toml(&text.replace("requests = 1", "requests = 2")).unwrap();
        assert!(store.limits(&changed).admit("pc", Some(&claims(A, B)), PEER).is_ok(), "new settings: new bucket");
    }

    #[test]
    fn denied_budget_blocks_the_address() {
        let text = format!("[limits]\ndenied_per_ip = {{ requests = 3, per = \"1h\" }}\n{BASE}");
        let limits = store().limits(&Config::from_toml(&text).unwrap());
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.admit_peer("pc", peer).is_ok());
            limits.note_denied(peer);
        }
        assert!(limits.admit_peer("pc", peer).is_ok(), "the budget is spent only when exceeded");
        limits.note_denied(peer);
        assert!(matches!(limits.admit_peer("pc", peer), Err(Reject::RateLimited(_))));
        assert!(limits.admit_peer("pc", "192.0.2.2".parse().unwrap()).is_ok());
        let off = store().limits(&Config::from_toml(&text.replace("requests = 3", "requests = 0")).unwrap());
        for _ in 0..10 {
            off.note_denied(peer);
        }
        assert!(off.admit_peer("pc", peer).is_ok());
    }

    #[test]
    fn ipv6_counts_by_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(c));
        assert_eq!(peer_key("::ffff:192.0.2.1".parse().unwrap()), peer_key("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn claim_keys() {
        assert_eq!(claim_key(Some(A)), claim_key(Some(&A.to_uppercase())));
        assert_ne!(claim_key(Some(A)), claim_key(Some(B)));
        assert_ne!(claim_key(Some("not-a-guid")), claim_key(None));
    }
}
