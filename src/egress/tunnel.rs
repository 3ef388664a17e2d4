//! A blind tunnel to a host no route guards: bytes are copied both ways and
//! counted, never decrypted. Nothing is copied before the client's first
//! flight has been read and `admit`ted: a complete TLS ClientHello, within
//! `server.tls_handshake_timeout`, that names no server or the CONNECT
//! target itself. Naming a guarded host would skip its route's policy;
//! naming any other host would front it around the host lists. A client
//! that sends something else, or nothing, or too slowly, is closed: what
//! was never read cannot have been checked.
//! A tunnel with no byte in either direction for `egress.tunnel_idle_timeout`
//! is closed.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use prometheus::IntCounter;
use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info};

use super::hosts::TargetAction;
use super::{Egress, EgressState, ProxyConn, Target};
use crate::error::Reason;

/// A ClientHello may span several records (RFC 8446 §5.1) and outgrow one
/// (16 KiB): large PSK identities (§4.2.11, up to 2^16-1 bytes each),
/// several post-quantum key shares (1216 bytes for X25519MLKEM768 alone).
/// rustls joins one from up to 64 KiB of records and refuses more; this
/// backstop leaves a record's room above that, so that it never cuts short
/// a hello rustls would read.
const MAX_FIRST_FLIGHT: usize = 64 * 1024 + 16 * 1024 + 5;

/// What the client's first bytes were.
#[derive(Debug, PartialEq, Eq)]
enum FirstFlight {
    /// A complete ClientHello, with its server name when it sends one.
    Hello(Option<String>),
    /// A complete ClientHello that seals its real server name (Encrypted
    /// Client Hello, or its draft ESNI): the name it shows is not the one it
    /// goes to, so it cannot be checked.
    Sealed,
    /// Bytes that are not a TLS handshake, or a ClientHello rustls cannot read.
    NotTls,
    /// `MAX_FIRST_FLIGHT` bytes without a complete ClientHello.
    TooLong,
    /// No complete ClientHello within the handshake timeout.
    Timeout,
}

impl FirstFlight {
    /// The log's word for it.
    fn as_str(&self) -> &'static str {
        match self {
            Self::Hello(_) => "client_hello",
            Self::Sealed => "encrypted_client_hello",
            Self::NotTls => "not_tls",
            Self::TooLong => "too_long",
            Self::Timeout => "timeout",
        }
    }

    fn server_name(&self) -> &str {
        match self {
            Self::Hello(Some(name)) => name,
            _ => "",
        }
    }
}

/// Whether a blind tunnel to `target` may carry what its client sent first:
/// only a complete ClientHello naming no server, or `target` (compared as
/// DNS names are: case-insensitively, a final dot ignored). `is_guarded`
/// takes a lower-case name without a final dot. No I/O: the tunnel calls it
/// once, with the first flight `first_flight` read.
fn admit(first: &FirstFlight, target: &Target, is_guarded: impl Fn(&str) -> bool) -> Result<(), Reason> {
    let name = match first {
        FirstFlight::Hello(None) => return Ok(()),
        FirstFlight::Hello(Some(name)) => name,
        FirstFlight::Sealed | FirstFlight::NotTls | FirstFlight::TooLong | FirstFlight::Timeout => {
            return Err(Reason::EgressDenied);
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if is_guarded(&name) {
        // Checked first: were the target itself guarded, its policy would be skipped.
        Err(Reason::EgressDenied)
    } else if name == target.host {
        Ok(())
    } else {
        Err(Reason::MisdirectedRequest)
    }
}

/// `changes` was subscribed when the CONNECT arrived: a reload while the
/// target was dialled or the hello awaited is not missed.
pub(super) async fn serve(
    egress: &Egress,
    state: &EgressState,
    mut changes: watch::Receiver<u64>,
    client: TokioIo<Upgraded>,
    upstream: TcpStream,
    target: &Target,
    conn: &ProxyConn,
) {
    let _drain = conn.drain.clone();
    let activity = Arc::new(Activity::new());
    let mut client =
        Counted { inner: client, counter: egress.metrics.bytes_upstream.clone(), activity: Arc::clone(&activity) };
    let mut buffered = Vec::new();
    let first = tokio::select! {
        first = first_flight(&mut client, &mut buffered, state.http.tls_handshake_timeout) => first,
        () = conn.drain.abort.cancelled() => return,
    };
    let first = match first {
        Ok(first) => first,
        Err(e) => return debug!(peer = %conn.peer, error = %e, "tunnel closed before the first bytes"),
    };
    // Judged under the rules current now, not those of the CONNECT: the
    // hello may have come after a reload. Any reload from here on is seen.
    changes.borrow_and_update();
    let Some((_, current)) = egress.live.egress() else { return };
    let allowed = match current.rules.connect(&target.host, target.port) {
        TargetAction::Pass => admit(&first, target, |name| current.rules.is_guarded(name)),
        TargetAction::Intercept | TargetAction::Deny(_) => Err(Reason::EgressDenied),
    };
    if let Err(reason) = allowed {
        egress.metrics.denied.inc();
        info!(
            target: "mfagate::egress",
            peer = %conn.peer.ip(),
            connect = true,
            host = %target.host,
            port = target.port,
            outcome = "denied",
            reason = reason.as_str(),
            first_flight = first.as_str(),
            server_name = first.server_name(),
            "egress"
        );
        return;
    }
    let mut upstream =
        Counted { inner: upstream, counter: egress.metrics.bytes_downstream.clone(), activity: Arc::clone(&activity) };
    let copied = async {
        upstream.inner.write_all(&buffered).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await
    };
    tokio::select! {
        result = copied => if let Err(e) = result {
            debug!(peer = %conn.peer, host = %target.host, error = %e, "tunnel ended with an error");
        },
        () = activity.idle_for(current.tunnel_idle_timeout) => {
            debug!(peer = %conn.peer, host = %target.host, "tunnel idle; closed");
        },
        () = disallowed_by_reload(egress, &mut changes, target) => {
            egress.metrics.denied.inc();
            info!(
                target: "mfagate::egress",
                peer = %conn.peer.ip(),
                connect = true,
                host = %target.host,
                port = target.port,
                outcome = "denied",
                reason = "egress_denied",
                "egress: a reload no longer allows this blind tunnel; closed"
            );
        },
        () = conn.drain.abort.cancelled() => {}
    }
}

/// Returns once a reload makes the tunnel one the proxy would not open now:
/// its target became guarded or denied (the server name its client asked
/// for, when it named one, is the target: `admit`). A tunnel opened under an
/// old configuration must not outlive it.
async fn disallowed_by_reload(egress: &Egress, changes: &mut watch::Receiver<u64>, target: &Target) {
    loop {
        if changes.changed().await.is_err() {
            // No more reloads: nothing can disallow the tunnel.
            return std::future::pending().await;
        }
        let Some((_, state)) = egress.live.egress() else { return };
        if state.rules.connect(&target.host, target.port) != TargetAction::Pass {
            return;
        }
    }
}

/// When bytes last moved through a tunnel, in either direction.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last read that returned bytes.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { start: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Returns once no bytes have moved for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let deadline = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Reads until the first TLS ClientHello is complete (keeping every byte
/// read in `buffered`), until the bytes cannot be one, or until `timeout`.
async fn first_flight<R: AsyncRead + Unpin>(
    client: &mut R,
    buffered: &mut Vec<u8>,
    timeout: Duration,
) -> std::io::Result<FirstFlight> {
    tokio::time::timeout(timeout, client_hello(client, buffered)).await.unwrap_or(Ok(FirstFlight::Timeout))
}

async fn client_hello<R: AsyncRead + Unpin>(client: &mut R, buffered: &mut Vec<u8>) -> std::io::Result<FirstFlight> {
    let mut acceptor = Acceptor::default();
    let mut chunk = [0u8; 4096];
    loop {
        let room = MAX_FIRST_FLIGHT.saturating_sub(buffered.len()).min(chunk.len());
        if room == 0 {
            return Ok(FirstFlight::TooLong);
        }
        let n = client.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffered.extend_from_slice(&chunk[..n]);
        let mut fresh = &chunk[..n];
        while !fresh.is_empty() {
            // `read_tls` takes what rustls has room for; `accept` makes room.
            if !matches!(acceptor.read_tls(&mut fresh), Ok(1..)) {
                return Ok(FirstFlight::NotTls);
            }
            match acceptor.accept() {
                Ok(Some(accepted)) => {
                    return Ok(match hello_extensions(buffered) {
                        Some(types) if types.iter().any(|t| SEALING_EXTENSIONS.contains(t)) => FirstFlight::Sealed,
                        Some(_) => FirstFlight::Hello(accepted.client_hello().server_name().map(str::to_string)),
                        // rustls read a hello we cannot: nothing to admit on.
                        None => FirstFlight::NotTls,
                    });
                }
                Ok(None) => {}
                Err(_) => return Ok(FirstFlight::NotTls),
            }
        }
    }
}

/// Extensions that hide the server name a hello is really for:
/// `encrypted_client_hello` (RFC 9849 draft codepoint 0xfe0d) and the older
/// `encrypted_server_name` (0xffce).
const SEALING_EXTENSIONS: [u16; 2] = [0xfe0d, 0xffce];

/// The extension types of the ClientHello at the start of `flight` (TLS
/// records of type handshake, RFC 8446 §4.1.2), or `None` when it does not
/// read as one.
fn hello_extensions(flight: &[u8]) -> Option<Vec<u16>> {
    let mut handshake = Vec::new();
    let mut rest = flight;
    while let [22, _, _, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        handshake.extend_from_slice(tail.get(..len)?);
        rest = &tail[len..];
    }
    let [1, a, b, c, body @ ..] = handshake.as_slice() else { return None };
    let body = body.get(..usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c))?;
    let mut r = Reader(body);
    r.skip(2 + 32)?; // legacy_version, random
    let n = usize::from(r.u8()?);
    r.skip(n)?; // legacy_session_id
    let n = usize::from(r.u16()?);
    r.skip(n)?; // cipher_suites
    let n = usize::from(r.u8()?);
    r.skip(n)?; // legacy_compression_methods
    let n = usize::from(r.u16()?);
    let mut extensions = Reader(r.take(n)?);
    let mut types = Vec::new();
    while !extensions.0.is_empty() {
        types.push(extensions.u16()?);
        let n = usize::from(extensions.u16()?);
        extensions.skip(n)?;
    }
    Some(types)
}

/// Reads big-endian fields off a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, &self.0[n..]);
        self.0 = tail;
        Some(head)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(drop)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

/// A stream whose reads are added to a counter, and mark the tunnel
/// active, as they happen.
struct Counted<T> {
    inner: T,
    counter: IntCounter,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.counter.inc_by(read as u64);
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
