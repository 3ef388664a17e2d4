//! Per-listener series: open connections and requests in flight, kept by
//! guards that decrement when the connection or the request ends, however
//! it ends. `listener` takes fixed names (`gateway`, `egress`).

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub struct ListenerFamilies {
    open: IntGaugeVec,
    accepted: IntCounterVec,
    in_flight: IntGaugeVec,
}

impl ListenerFamilies {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let open = IntGaugeVec::new(
            Opts::new("mfagate_connections_open", "Client connections open now (TLS handshake included), by listener."),
            &["listener"],
        )?;
        let accepted = IntCounterVec::new(
            Opts::new("mfagate_connections_accepted_total", "Client connections accepted, by listener."),
            &["listener"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new("mfagate_requests_in_flight", "Requests being answered now, by listener."),
            &["listener"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(Self { open, accepted, in_flight })
    }

    pub fn listener(&self, name: &str) -> ListenerMetrics {
        ListenerMetrics {
            open: self.open.with_label_values(&[name]),
            accepted: self.accepted.with_label_values(&[name]),
            in_flight: self.in_flight.with_label_values(&[name]),
        }
    }
}

/// One listener's series.
#[derive(Clone)]
pub struct ListenerMetrics {
    open: IntGauge,
    accepted: IntCounter,
    in_flight: IntGauge,
}

impl ListenerMetrics {
    /// Counts a connection until the guard is dropped.
    pub fn connection(&self) -> InFlight {
        self.accepted.inc();
        InFlight::new(&self.open)
    }

    /// Counts a request until the guard is dropped.
    pub fn request(&self) -> InFlight {
        InFlight::new(&self.in_flight)
    }
}

/// Holds one unit of a gauge.
#[must_use = "the gauge is decremented when this is dropped"]
pub struct InFlight(IntGauge);

impl InFlight {
    fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_until_dropped() {
        let registry = Registry::new();
        let families = ListenerFamilies::register(&registry).unwrap();
        let m = families.listener("gateway");
        let c = m.connection();
        let r1 = m.request();
        let r2 = m.request();
        assert_eq!((m.open.get(), m.in_flight.get(), m.accepted.get()), (1, 2, 1));
        drop(r1);
        drop(c);
        assert_eq!((m.open.get(), m.in_flight.get(), m.accepted.get()), (0, 1, 1));
        drop(r2);
        assert_eq!(m.in_flight.get(), 0);
    }
}
