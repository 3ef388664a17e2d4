//! A blind tunnel to a host no route guards: bytes are copied both ways and
//! counted, never decrypted. Only the client's first TLS record is read, to
//! refuse a ClientHello whose server name is a guarded host (reaching a
//! guarded service through another name's tunnel would skip its policy).
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

use super::hosts::Verdict;
use super::{Conn, Egress, EgressState, Target};

/// A ClientHello fits in one TLS record (16 KiB) plus its header; a client
/// that has sent more without completing one is not speaking TLS.
const MAX_FIRST_FLIGHT: usize = 16 * 1024 + 5;

/// What the client's first bytes were.
#[derive(Debug, PartialEq, Eq)]
enum FirstFlight {
    /// A ClientHello naming this server (lower-case).
    Sni(String),
    /// A ClientHello without a server name, or no TLS at all: passed on as is.
    Other,
}

pub(super) async fn serve(
    egress: &Egress,
    state: &EgressState,
    client: TokioIo<Upgraded>,
    upstream: TcpStream,
    target: &Target,
    conn: &Conn,
) {
    let _watch = Arc::clone(&conn.watcher);
    let activity = Arc::new(Activity::new());
    let mut client =
        Counted { inner: client, counter: egress.metrics.bytes_upstream.clone(), activity: Arc::clone(&activity) };
    let mut buffered = Vec::new();
    let first = tokio::select! {
        first = tokio::time::timeout(state.settings.tls_handshake_timeout, first_flight(&mut client, &mut buffered)) => first,
        () = conn.kill.cancelled() => return,
    };
    // No bytes in time: a protocol where the server speaks first; nothing to check.
    let first = first.unwrap_or(Ok(FirstFlight::Other));
    let server_name = match first {
        Err(e) => return debug!(peer = %conn.peer, error = %e, "tunnel closed before the first bytes"),
        Ok(FirstFlight::Sni(name)) if state.rules.is_guarded(&name) => {
            egress.metrics.denied.inc();
            info!(
                target: "mfagate::egress",
                peer = %conn.peer.ip(),
                connect = true,
                host = %target.host,
                port = target.port,
                outcome = "denied",
                reason = "egress_denied",
                guarded_server_name = %name,
                "egress"
            );
            return;
        }
        Ok(FirstFlight::Sni(name)) => Some(name),
        Ok(FirstFlight::Other) => None,
    };
    let mut upstream =
        Counted { inner: upstream, counter: egress.metrics.bytes_downstream.clone(), activity: Arc::clone(&activity) };
    let copied = async {
        upstream.inner.write_all(&buffered).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await
    };
    let mut changes = egress.live.changes();
    tokio::select! {
        result = copied => if let Err(e) = result {
            debug!(peer = %conn.peer, host = %target.host, error = %e, "tunnel ended with an error");
        },
        () = activity.idle_for(state.tunnel_idle_timeout) => {
            debug!(peer = %conn.peer, host = %target.host, "tunnel idle; closed");
        },
        () = disallowed_by_reload(egress, &mut changes, target, server_name.as_deref()) => {
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
        () = conn.kill.cancelled() => {}
    }
}

/// Returns once a reload makes the tunnel one the proxy would not open now:
/// its target (or the server name its client asked for) became guarded or
/// denied. A tunnel opened under an old configuration must not outlive it.
async fn disallowed_by_reload(
    egress: &Egress,
    changes: &mut watch::Receiver<u64>,
    target: &Target,
    server_name: Option<&str>,
) {
    loop {
        if changes.changed().await.is_err() {
            // No more reloads: nothing can disallow the tunnel.
            return std::future::pending().await;
        }
        let Some((_, state)) = egress.live.egress() else { return };
        let allowed = state.rules.connect(&target.host, target.port) == Verdict::Pass
            && server_name.is_none_or(|name| !state.rules.is_guarded(name));
        if !allowed {
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
/// read in `buffered`), or until the bytes cannot be TLS.
async fn first_flight<R: AsyncRead + Unpin>(client: &mut R, buffered: &mut Vec<u8>) -> std::io::Result<FirstFlight> {
    let mut acceptor = Acceptor::default();
    let mut chunk = [0u8; 4096];
    loop {
        if buffered.len() >= MAX_FIRST_FLIGHT {
            return Ok(FirstFlight::Other);
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffered.extend_from_slice(&chunk[..n]);
        let mut fresh = &chunk[..n];
        while !fresh.is_empty() {
            if acceptor.read_tls(&mut fresh).is_err() {
                return Ok(FirstFlight::Other);
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let name = accepted.client_hello().server_name().map(|s| s.trim_end_matches('.').to_ascii_lowercase());
                return Ok(name.map_or(FirstFlight::Other, FirstFlight::Sni));
            }
            Ok(None) => {}
            Err(_) => return Ok(FirstFlight::Other),
        }
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
mod tests {
    use super::*;

    fn client_hello(server_name: &str) -> Vec<u8> {
        let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(server_name.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    async fn flight(bytes: &[u8]) -> (FirstFlight, Vec<u8>) {
        let (mut tx, mut rx) = tokio::io::duplex(64);
        let bytes = bytes.to_vec();
        // Written in small pieces: the hello arrives over several reads.
        let writer = tokio::spawn(async move {
            for piece in bytes.chunks(50) {
                tx.write_all(piece).await.unwrap();
            }
            tx
        });
        let mut buffered = Vec::new();
        let first = first_flight(&mut rx, &mut buffered).await.unwrap();
        drop(writer);
        (first, buffered)
    }

    #[tokio::test]
    async fn reads_the_server_name_and_keeps_every_byte() {
        let hello = client_hello("API.PartnerCenter.microsoft.com");
        let (first, buffered) = flight(&hello).await;
        assert_eq!(first, FirstFlight::Sni("api.partnercenter.microsoft.com".into()));
        assert_eq!(buffered, hello);
    }

    #[tokio::test]
    async fn anything_else_passes_unread() {
        let (first, buffered) = flight(b"GET / HTTP/1.1\r\nHost: files.example.net\r\n\r\n").await;
        assert_eq!(first, FirstFlight::Other);
        assert!(buffered.starts_with(b"GET / "));
    }
}
