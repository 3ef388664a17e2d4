//! The regions each principal created compute in during the last hour, for
//! `compute_guard.max_regions_per_hour`. Keyed on the verified `oid` only
//! (a claim nobody verified could spend another principal's budget), held
//! in memory with a bound on principals and on regions per principal, and
//! kept across configuration reloads (it lives with the shared state). On a
//! fleet each replica counts what it sees.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Principals remembered; the least recently seen go first.
const MAX_PRINCIPALS: u64 = 100_000;
/// Regions remembered per principal (Azure has some 60).
const MAX_REGIONS: usize = 128;

type Seen = Arc<Mutex<Vec<(String, Instant)>>>;

#[derive(Clone)]
pub struct RegionLog {
    principals: Cache<String, Seen>,
}

impl Default for RegionLog {
    fn default() -> Self {
        Self { principals: Cache::builder().max_capacity(MAX_PRINCIPALS).time_to_idle(WINDOW).build() }
    }
}

impl RegionLog {
    /// The distinct regions `oid` created compute in during the window before `now`.
    pub fn recent(&self, oid: &str, now: Instant) -> Vec<String> {
        let Some(seen) = self.principals.get(oid) else { return Vec::new() };
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|(_, at)| now.saturating_duration_since(*at) < WINDOW);
        seen.iter().map(|(r, _)| r.clone()).collect()
    }

    /// Notes that `oid` created compute in `regions` at `now`.
    pub fn note(&self, oid: &str, regions: &[String], now: Instant) {
        if regions.is_empty() {
            return;
        }
        let seen = self.principals.get_with(oid.to_string(), Seen::default);
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|(_, at)| now.saturating_duration_since(*at) < WINDOW);
        for region in regions {
            if let Some(entry) = seen.iter_mut().find(|(r, _)| r == region) {
                entry.1 = now;
            } else if seen.len() < MAX_REGIONS {
                seen.push((region.clone(), now));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sliding_hour_per_principal() {
        let log = RegionLog::default();
        let t0 = Instant::now();
        log.note("a", &["eastus".into(), "westus".into()], t0);
        log.note("a", &["eastus".into()], t0 + Duration::from_secs(1800));
        assert_eq!(log.recent("a", t0 + Duration::from_secs(60)), vec!["eastus", "westus"]);
        assert!(log.recent("b", t0).is_empty());
        assert_eq!(log.recent("a", t0 + Duration::from_secs(3601)), vec!["eastus"]);
        assert!(log.recent("a", t0 + Duration::from_secs(1800 + 3601)).is_empty());
    }
}
