//! The local store: governor's keyed GCRA buckets in this process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus::IntGauge;

use crate::config::Rate;

/// Addresses blocked at once at most; beyond this, new blocks are not
/// recorded (the per-address buckets still count).
const MAX_BLOCKED: usize = 65_536;

pub type Limiter = DefaultKeyedRateLimiter<u128>;

pub fn limiter(rate: Rate) -> Limiter {
    // `Rate` is validated: the interval is at least a nanosecond.
    let quota =
        Quota::with_period(rate.interval()).unwrap_or_else(|| Quota::per_second(rate.requests)).allow_burst(rate.burst);
    RateLimiter::keyed(quota)
}

/// Takes one request from `key`'s bucket, or says how long until it has one.
pub fn check(limiter: &Limiter, key: u128) -> Result<(), Duration> {
    limiter.check_key(&key).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// The addresses that spent their budget of denied requests, until when.
/// The local store also counts the budget here; with the shared store, this
/// remembers the blocks Redis reported, so that a blocked address costs no
/// round trip until its block ends.
pub struct Blocked {
    until: Mutex<HashMap<u128, Instant>>,
    gauge: IntGauge,
}

impl Blocked {
    pub fn new(gauge: IntGauge) -> Self {
        gauge.set(0);
        Self { until: Mutex::default(), gauge }
    }

    pub fn blocked_for(&self, key: u128) -> Option<Duration> {
        let blocked = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        let until = *blocked.get(&key)?;
        until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    pub fn block(&self, key: u128, wait: Duration) {
        let until = Instant::now() + wait.max(Duration::from_millis(1));
        let mut blocked = self.until.lock().unwrap_or_else(PoisonError::into_inner);
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

    pub fn cleanup(&self) {
        let now = Instant::now();
        let mut blocked = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        blocked.retain(|_, until| *until > now);
        blocked.shrink_to_fit();
        self.gauge.set(blocked.len() as i64);
    }
}
