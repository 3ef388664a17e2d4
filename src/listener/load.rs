//! Load accounting: connections and requests counted against
//! `max_connections` and `max_in_flight`, one count per quantity, which is
//! also the gauge operators see. Guards count while they live; a response
//! body carries its request's guards until the last byte is sent (or the
//! body dropped), so a streaming response counts as in flight, both for
//! the limit and for `mfagate_requests_in_flight`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One listener's counts and their metrics.
pub struct Load {
    /// Connections served normally: what `max_connections` limits.
    open: IntGauge,
    /// Connections over it, served only to be told 503.
    overflow: AtomicUsize,
    /// Requests admitted: what `max_in_flight` limits.
    in_flight: IntGauge,
    accepted: IntCounter,
    /// HTTP/1.1 connections idle with no HTTP state (`park`).
    parked: IntGauge,
    shed_connections: IntCounter,
    shed_requests: IntCounter,
    dropped: IntCounter,
    handshake_timeout: IntCounter,
    handshake_error: IntCounter,
}

impl Load {
    /// The counts of the listener called `listener` (a fixed name).
    pub fn register(registry: &Registry, listener: &str) -> Result<Self, prometheus::Error> {
        let open = IntGaugeVec::new(
            Opts::new(
                "mfagate_connections_open",
                "Client connections open now (TLS handshake included), counted against max_connections, by listener.",
            ),
            &["listener"],
        )?;
        let accepted = IntCounterVec::new(
            Opts::new("mfagate_connections_accepted_total", "Client connections accepted, by listener."),
            &["listener"],
        )?;
        let parked = IntGaugeVec::new(
            Opts::new(
                "mfagate_connections_parked",
                "Idle HTTP/1.1 connections holding no HTTP buffers until the client sends again, by listener.",
            ),
            &["listener"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "mfagate_requests_in_flight",
                "Requests being answered now, until their response body ends, counted against max_in_flight, by listener.",
            ),
            &["listener"],
        )?;
        let shed = IntCounterVec::new(
            Opts::new("mfagate_overload_total", "Requests answered 503 overloaded, by the limit that was reached."),
            &["limit"],
        )?;
        let dropped = IntCounter::new(
            "mfagate_connections_dropped_total",
            "Connections closed at once, without an answer, because even the overload allowance was used up.",
        )?;
        let handshakes = IntCounterVec::new(
            Opts::new("mfagate_tls_handshake_failures_total", "TLS handshakes that failed, by kind (error, timeout)."),
            &["kind"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(parked.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(handshakes.clone()))?;
        Ok(Self {
            open: open.with_label_values(&[listener]),
            overflow: AtomicUsize::new(0),
            in_flight: in_flight.with_label_values(&[listener]),
            accepted: accepted.with_label_values(&[listener]),
            parked: parked.with_label_values(&[listener]),
            shed_connections: shed.with_label_values(&["max_connections"]),
            shed_requests: shed.with_label_values(&["max_in_flight"]),
            dropped,
            handshake_timeout: handshakes.with_label_values(&["timeout"]),
            handshake_error: handshakes.with_label_values(&["error"]),
        })
    }

    /// Counts a new connection: `Normal` below `max`, `Overflow` (served only
    /// to be told 503) within the allowance above it, `None` beyond that.
    pub(super) fn connect(self: &Arc<Self>, max: usize) -> Option<(Lane, ConnGuard)> {
        self.accepted.inc();
        if take(&self.open, max) {
            return Some((Lane::Normal, ConnGuard { load: Arc::clone(self), overflow: false }));
        }
        let allowance = max / 8 + 16;
        if self.overflow.fetch_add(1, Ordering::AcqRel) < allowance {
            return Some((Lane::Overflow, ConnGuard { load: Arc::clone(self), overflow: true }));
        }
        self.overflow.fetch_sub(1, Ordering::AcqRel);
        self.dropped.inc();
        None
    }

    /// Counts a parked connection until the guard is dropped.
    pub(super) fn park(&self) -> Parked<'_> {
        self.parked.inc();
        Parked { load: self }
    }

    /// Admits a request below `max` in flight.
    pub(super) fn enter(self: &Arc<Self>, max: usize) -> Option<InFlight> {
        take(&self.in_flight, max).then(|| InFlight { load: Arc::clone(self) })
    }

    /// Counts a request answered 503 because of the limit of `lane`.
    pub(super) fn shed(&self, lane: Lane) {
        match lane {
            Lane::Overflow => self.shed_connections.inc(),
            Lane::Normal => self.shed_requests.inc(),
        }
    }

    pub(super) fn handshake_failed(&self, timed_out: bool) {
        if timed_out { &self.handshake_timeout } else { &self.handshake_error }.inc();
    }

    /// Connections open now (normal lane).
    pub fn open_connections(&self) -> usize {
        usize::try_from(self.open.get()).unwrap_or(0)
    }
}

/// Takes one unit of `count` if that leaves it at most `max`. Counting
/// first and checking after means two racing takers may both be refused,
/// never both admitted past `max`.
fn take(count: &IntGauge, max: usize) -> bool {
    count.inc();
    if usize::try_from(count.get()).is_ok_and(|n| n <= max) {
        return true;
    }
    count.dec();
    false
}

/// Which way a connection is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    Normal,
    /// Over `max_connections`: every request is answered 503, then the connection closes.
    Overflow,
}

pub(super) struct ConnGuard {
    load: Arc<Load>,
    overflow: bool,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if self.overflow {
            self.load.overflow.fetch_sub(1, Ordering::AcqRel);
        } else {
            self.load.open.dec();
        }
    }
}

pub(super) struct Parked<'a> {
    load: &'a Load,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.load.parked.dec();
    }
}

pub(super) struct InFlight {
    load: Arc<Load>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.load.in_flight.dec();
    }
}

/// Requests in flight on one connection, to close it when idle.
pub(super) struct ConnActivity {
    active: AtomicUsize,
    served: AtomicUsize,
    changed: Notify,
    /// When the connection started: the origin of `rested_at`.
    born: Instant,
    /// When the last request in flight ended, in nanoseconds after `born`.
    rested_at: AtomicU64,
}

impl Default for ConnActivity {
    fn default() -> Self {
        let born = Instant::now();
        Self {
            active: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            changed: Notify::new(),
            born,
            rested_at: AtomicU64::new(0),
        }
    }
}

impl ConnActivity {
    /// Since when no request has been in flight; none while one is.
    pub fn idle_since(&self) -> Option<Instant> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.born + Duration::from_nanos(self.rested_at.load(Ordering::Acquire)))
    }

    /// How many requests have been answered.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Acquire)
    }

    pub fn enter(self: &Arc<Self>) -> Active {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        Active { conn: Arc::clone(self) }
    }

    /// Resolves once no request has been in flight for `timeout`.
    pub async fn idle(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.active.load(Ordering::Acquire) == 0 {
                tokio::select! {
                    () = tokio::time::sleep(timeout) => return,
                    () = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }

    /// Resolves once a request was answered and none is in flight.
    pub async fn served_one(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.served.load(Ordering::Acquire) > 0 && self.active.load(Ordering::Acquire) == 0 {
                return;
            }
            changed.await;
        }
    }
}

pub(super) struct Active {
    conn: Arc<ConnActivity>,
}

impl Drop for Active {
    fn drop(&mut self) {
        let conn = &self.conn;
        let rested = u64::try_from(conn.born.elapsed().as_nanos()).unwrap_or(u64::MAX);
        conn.rested_at.store(rested, Ordering::Release);
        conn.served.fetch_add(1, Ordering::AcqRel);
        conn.active.fetch_sub(1, Ordering::AcqRel);
        conn.changed.notify_waiters();
    }
}

/// A response body that holds its request's guards until it ends.
pub struct Tracked<B> {
    inner: B,
    guards: Option<(Active, Option<InFlight>)>,
}

impl<B> Tracked<B> {
    pub(super) fn new(inner: B, active: Active, in_flight: Option<InFlight>) -> Self {
        Self { inner, guards: Some((active, in_flight)) }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.guards = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
