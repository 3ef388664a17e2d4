//! How a gateway connection lives once its TLS handshake is done: closed
//! when idle for the keep-alive timeout, closed gracefully when the
//! listener stops, and, for HTTP/1.1, parked between requests (`park`).
//!
//! One timer per connection keeps the idle deadlines. It is re-armed only
//! when it fires, from the time the last request ended, so that a request
//! costs no timer and no wake-up of the connection's task.

use std::convert::Infallible;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Connection;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};
use tokio_rustls::server::TlsStream;
use tracing::debug;

use super::accept::Drain;
use super::http::Http;
use super::inspect::{AtRest, Inspected, Inspector};
use super::load::{ConnActivity, Load, Tracked};
use super::park::{Flushed, PARK_AFTER, Resumed};
use crate::upstream::Body;

/// How long a closing connection may stay idle before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The shortest header timeout a resumed connection is given: it woke with
/// its time all but spent.
const MIN_HEAD_WITHIN: Duration = Duration::from_millis(10);

/// The TLS stream is boxed: it is handed from one hyper connection to the
/// next, and a connection's task should not hold room for it twice.
type Tls = Box<TlsStream<TcpStream>>;
type Stream = Resumed<Inspected<Tls>>;

/// What is due on an idle connection when its timer fires.
enum Due {
    /// Nothing yet: look again then.
    Later(Instant),
    /// Idle for the keep-alive timeout.
    Close,
    /// Idle for `PARK_AFTER`.
    Park,
}

/// What ended one hyper connection on a parking stream.
enum Round {
    /// The connection is over.
    Ended,
    /// Taken down while idle; the stream is handed back.
    Parked(Stream),
}

/// What woke a parked connection.
enum Wake {
    Readable,
    Close,
    Abort,
}

/// A connection's part in the listener: its drain, its requests and its
/// keep-alive timeout.
pub(super) struct Conn<'a> {
    pub peer: SocketAddr,
    pub load: &'a Load,
    pub drain: &'a Drain,
    pub activity: &'a Arc<ConnActivity>,
    pub keep_alive: Duration,
    /// How long the client may take to send a request head, counted from
    /// the end of the last answer: it bounds the wait for the next request.
    pub header_read: Duration,
}

impl Conn<'_> {
    fn due(&self, park: bool) -> Due {
        let now = Instant::now();
        let Some(since) = self.activity.idle_since() else {
            // A request is in flight: the earliest it can be due.
            return Due::Later(now + self.keep_alive.min(PARK_AFTER));
        };
        let close_at = since + self.keep_alive;
        if close_at <= now {
            return Due::Close;
        }
        if !park {
            return Due::Later(close_at);
        }
        let park_at = since + PARK_AFTER;
        if park_at <= now { Due::Park } else { Due::Later(park_at.min(close_at)) }
    }

    /// Serves a connection hyper keeps to its end: HTTP/2, and the one
    /// answer of an overflow connection (`overflow`: how long it may take).
    pub async fn serve_whole<S>(
        &self,
        conn: Connection<'_, TokioIo<Inspected<Tls>>, S, TokioExecutor>,
        h2: bool,
        overflow: Option<Duration>,
    ) where
        S: Service<Request<Incoming>, Response = Response<Tracked<Body>>, Error = Infallible> + Send + 'static,
        S::Future: Send + 'static,
    {
        tokio::pin!(conn);
        let clock = sleep_until(Instant::now() + self.keep_alive);
        tokio::pin!(clock);
        // An overflow connection lives for one answer, and no longer than a request head may take.
        let overflow_deadline = sleep_until(Instant::now() + overflow.unwrap_or(Duration::MAX / 4));
        tokio::pin!(overflow_deadline);
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = self.drain.abort.cancelled() => return,
                // A client that does not take part in the graceful close
                // (HTTP/2 waits for a PING answer) is dropped once idle again.
                () = self.activity.idle(CLOSE_GRACE), if closing => return,
                // HTTP/1: hyper marks the answer in progress `Connection:
                // close` and closes after it; HTTP/2: GOAWAY.
                () = self.drain.stop.cancelled(), if !closing => closing = true,
                () = &mut clock, if !closing => match self.due(false) {
                    Due::Later(at) => clock.as_mut().reset(at),
                    Due::Close | Due::Park => closing = true,
                },
                // HTTP/1 needs no nudge: its answer says `Connection: close`,
                // and hyper closes once the request body is discarded.
                () = self.activity.served_one(), if !closing && overflow.is_some() && h2 => closing = true,
                () = &mut overflow_deadline, if overflow.is_some() => return,
            }
            if closing {
                conn.as_mut().graceful_shutdown();
            }
        }
    }

    /// Serves HTTP/1.1, one hyper connection after another on the same
    /// stream: each is taken down once the connection is idle and the
    /// client has sent nothing of a next request, and the next is built
    /// when the client sends again.
    pub async fn serve_parking<S>(&self, tls: Tls, inspector: Inspector, builder: &Http, service: S)
    where
        S: Service<Request<Incoming>, Response = Response<Tracked<Body>>, Error = Infallible>
            + Clone
            + Unpin
            + Send
            + 'static,
        S::Future: Unpin + Send + 'static,
    {
        let at_rest = inspector.at_rest();
        let mut io = Resumed::new(Inspected::new(tls, Some(inspector)));
        let flushed = io.flushed();
        loop {
            // hyper's header timeout counts from the end of the last answer,
            // as it does on a connection it keeps: what the connection spent
            // parked counts too.
            let since = self.activity.idle_since().unwrap_or_else(Instant::now);
            let head_within = (since + self.header_read).saturating_duration_since(Instant::now());
            let conn = builder.serve_h1(TokioIo::new(io), service.clone(), head_within.max(MIN_HEAD_WITHIN));
            // Boxed, as the hyper connection in it: a parked connection's
            // task holds none of it.
            io = match Box::pin(self.round(conn, &at_rest, &flushed)).await {
                Round::Ended => return,
                Round::Parked(io) => io,
            };
            io.get_mut().release();
            let (_, tls) = io.get_ref().get_ref().get_ref();
            // Bytes hyper had read, or plaintext rustls holds: serve them now.
            if io.has_unread() || !tls.wants_read() {
                continue;
            }
            // TLS records rustls has not written yet go out before it waits.
            if tls.wants_write() && !matches!(tokio::time::timeout(CLOSE_GRACE, io.flush()).await, Ok(Ok(()))) {
                return;
            }
            match self.parked(&io).await {
                Wake::Readable => {}
                Wake::Close => return close(io).await,
                Wake::Abort => return,
            }
        }
    }

    /// Serves one hyper connection until it ends or is parked.
    async fn round<S>(
        &self,
        mut conn: http1::Connection<TokioIo<Stream>, S>,
        at_rest: &AtRest,
        flushed: &Flushed,
    ) -> Round
    where
        S: Service<Request<Incoming>, Response = Response<Tracked<Body>>, Error = Infallible> + Unpin + Send + 'static,
        S::Future: Unpin + Send + 'static,
    {
        let clock = sleep_until(Instant::now() + self.keep_alive.min(PARK_AFTER));
        tokio::pin!(clock);
        let mut closing = false;
        // The requests answered when parking began.
        let mut parking: Option<usize> = None;
        loop {
            tokio::select! {
                result = poll_fn(|cx| match parking {
                    Some(_) => conn.poll_without_shutdown(cx),
                    None => Pin::new(&mut conn).poll(cx),
                }) => {
                    if let Err(e) = result {
                        debug!(peer = %self.peer, error = %e, "connection ended with an error");
                        return Round::Ended;
                    }
                    let Some(served) = parking else { return Round::Ended };
                    let parts = conn.into_parts();
                    let mut io = parts.io.into_inner();
                    // What hyper read and did not parse: the start of a next
                    // request. Empty lines before one (RFC 9112 §2.2) are
                    // skipped, as hyper skips them: `Inspected` drops those
                    // a read begins with, not those read with a body's end.
                    if !parts.read_buf.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                        io.unread(parts.read_buf);
                    }
                    if !closing && served == self.activity.served() && self.activity.idle_since().is_some() {
                        return Round::Parked(io);
                    }
                    // The listener stops, or a request came in as the
                    // connection was taken down: hyper answered it
                    // `Connection: close`.
                    close(io).await;
                    return Round::Ended;
                }
                () = self.drain.abort.cancelled() => return Round::Ended,
                () = self.activity.idle(CLOSE_GRACE), if closing => return Round::Ended,
                () = self.drain.stop.cancelled(), if !closing => closing = true,
                () = &mut clock, if !closing && parking.is_none() => match self.due(true) {
                    Due::Later(at) => clock.as_mut().reset(at),
                    Due::Close => closing = true,
                    // hyper closes an idle connection at once; a next request
                    // under way (a slow head) is hyper's header timeout's.
                    Due::Park if at_rest.get() && flushed.get() => {
                        parking = Some(self.activity.served());
                        Pin::new(&mut conn).graceful_shutdown();
                    }
                    Due::Park => clock.as_mut().reset(Instant::now() + PARK_AFTER),
                },
            }
            if closing {
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    }

    /// Waits, holding no buffer, until the client sends something or the
    /// connection is to close.
    async fn parked(&self, io: &Stream) -> Wake {
        let (tcp, _) = io.get_ref().get_ref().get_ref();
        let _parked = self.load.park();
        let wait = self.keep_alive.min(self.header_read);
        let close_at = self.activity.idle_since().map_or_else(Instant::now, |since| since + wait);
        tokio::select! {
            _ = tcp.readable() => Wake::Readable,
            () = self.drain.stop.cancelled() => Wake::Close,
            () = self.drain.abort.cancelled() => Wake::Abort,
            () = sleep_until(close_at) => Wake::Close,
        }
    }
}

/// Closes the stream as hyper closes an idle connection: TLS close_notify,
/// then the write side of the socket.
async fn close(mut io: Stream) {
    let _ = tokio::time::timeout(CLOSE_GRACE, io.shutdown()).await;
}
