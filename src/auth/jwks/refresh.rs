//! The background refresh of one source: every `refresh_interval`
//! (jittered) while fetches succeed; after a failure, retries from 1 s
//! doubling up to a minute (or the refresh interval, if shorter).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::source::KeySource;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Runs until `stop` is cancelled. The first fetch is the store's `load`.
pub async fn run(source: Arc<KeySource>, stop: CancellationToken) {
    let interval = source.config.timing.refresh_interval;
    let max_retry = MAX_RETRY.min(interval);
    let mut retry = FIRST_RETRY.min(max_retry);
    let mut ok = source.last_ok();
    loop {
        let delay = if ok {
            retry = FIRST_RETRY.min(max_retry);
            jitter(interval)
        } else {
            let d = retry;
            retry = (retry * 2).min(max_retry);
            d
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        // A fetch in flight does not hold up shutdown.
        tokio::select! {
            () = stop.cancelled() => return,
            result = source.refresh() => ok = result.is_ok(),
        }
    }
}

/// Spreads the refreshes of many gateways over ±10 % of the interval.
pub fn jitter(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    let frac = f64::from(nanos % 2001) / 10_000.0 - 0.1;
    d.mul_f64(1.0 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(3600));
            assert!(j >= Duration::from_secs(3240) && j <= Duration::from_secs(3960), "{j:?}");
        }
    }
}
