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

use super::hosts::Verdict;
use super::{Conn, Egress, EgressState, Target};
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
    conn: &Conn,
) {
    let _watch = Arc::clone(&conn.watcher);
    let activity = Arc::new(Activity::new());
    let mut client =
        Counted { inner: client, counter: egress.metrics.bytes_upstream.clone(), activity: Arc::clone(&activity) };
    let mut buffered = Vec::new();
    let first = tokio::select! {
        first = first_flight(&mut client, &mut buffered, state.settings.tls_handshake_timeout) => first,
        () = conn.kill.cancelled() => return,
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
        Verdict::Pass => admit(&first, target, |name| current.rules.is_guarded(name)),
        Verdict::Intercept | Verdict::Deny(_) => Err(Reason::EgressDenied),
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
        () = conn.kill.cancelled() => {}
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
        if state.rules.connect(&target.host, target.port) != Verdict::Pass {
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
mod tests {
    use super::super::hosts::pattern_matches;
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

    /// `flight` (one ClientHello record) with an extension of type `ty` added.
    fn with_extension(flight: &[u8], ty: u16) -> Vec<u8> {
        let mut message = flight[5..].to_vec();
        let mut at = 4 + 2 + 32;
        at += 1 + usize::from(message[at]);
        at += 2 + usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
        at += 1 + usize::from(message[at]);
        let extensions = usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
        // For ECH, an outer ECHClientHello: HPKE suite, config id, `enc`, payload.
        let mut data = vec![0x00, 0x00, 0x01, 0x00, 0x01, 0x2a, 0x00, 0x20];
        data.extend_from_slice(&[0x11; 32]);
        data.extend_from_slice(&[0x00, 0x40]);
        data.extend_from_slice(&[0x22; 64]);
        let mut ext = ty.to_be_bytes().to_vec();
        ext.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        ext.extend_from_slice(&data);
        message[at..at + 2].copy_from_slice(&u16::try_from(extensions + ext.len()).unwrap().to_be_bytes());
        message.extend_from_slice(&ext);
        let body = u32::try_from(message.len() - 4).unwrap().to_be_bytes();
        message[1..4].copy_from_slice(&body[1..]);
        let mut out = vec![0x16, 0x03, 0x01];
        out.extend_from_slice(&u16::try_from(message.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&message);
        out
    }

    #[tokio::test]
    async fn a_hello_that_seals_its_server_name_is_not_admitted() {
        let hello = client_hello("files.example.net");
        let types = hello_extensions(&hello).unwrap();
        assert!(types.contains(&0) && !types.contains(&0xfe0d), "{types:?}");
        assert_eq!(hello_extensions(&reframe(&hello, 100)), Some(types), "split over records");
        for ty in SEALING_EXTENSIONS {
            let sealed = with_extension(&hello, ty);
            assert!(hello_extensions(&sealed).unwrap().contains(&ty));
            let first = flight(&sealed).await.0.unwrap();
            assert_eq!(first, FirstFlight::Sealed);
            let target = Target { host: "files.example.net".into(), port: 443 };
            assert_eq!(admit(&first, &target, |_| false), Err(Reason::EgressDenied));
        }
        let unknown = with_extension(&hello, 0x7777);
        assert_eq!(flight(&unknown).await.0.unwrap(), FirstFlight::Hello(Some("files.example.net".into())));
        assert_eq!(hello_extensions(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01"), None, "truncated");
    }

    /// The handshake messages of `flight` (one or more TLS records) framed
    /// anew in records of at most `size` bytes of payload each.
    fn reframe(flight: &[u8], size: usize) -> Vec<u8> {
        let mut payload = Vec::new();
        let mut rest = flight;
        while rest.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            payload.extend_from_slice(&rest[5..5 + len]);
            rest = &rest[5 + len..];
        }
        let mut out = Vec::new();
        for piece in payload.chunks(size) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&u16::try_from(piece.len()).unwrap().to_be_bytes());
            out.extend_from_slice(piece);
        }
        out
    }

    /// What `first_flight` makes of `bytes`, written in small pieces (so
    /// that they arrive over several reads), the writer then staying open.
    async fn flight(bytes: &[u8]) -> (std::io::Result<FirstFlight>, Vec<u8>) {
        let (mut tx, mut rx) = tokio::io::duplex(64);
        let bytes = bytes.to_vec();
        let writer = tokio::spawn(async move {
            for piece in bytes.chunks(50) {
                if tx.write_all(piece).await.is_err() {
                    break;
                }
            }
            tx
        });
        let mut buffered = Vec::new();
        let first = first_flight(&mut rx, &mut buffered, Duration::from_millis(300)).await;
        writer.abort();
        (first, buffered)
    }

    fn target() -> Target {
        Target { host: "files.example.net".into(), port: 443 }
    }

    fn guarded(name: &str) -> bool {
        name == "api.partnercenter.microsoft.com" || pattern_matches("*.graph.example", name)
    }

    fn admitted(first: FirstFlight) -> Result<(), &'static str> {
        admit(&first, &target(), guarded).map_err(Reason::as_str)
    }

    fn hello(name: &str) -> FirstFlight {
        FirstFlight::Hello(Some(name.into()))
    }

    #[test]
    fn only_a_hello_naming_no_server_or_the_target_is_admitted() {
        assert_eq!(admitted(FirstFlight::Hello(None)), Ok(()));
        for own in ["files.example.net", "FILES.Example.NET", "files.example.net."] {
            assert_eq!(admitted(hello(own)), Ok(()), "{own}");
        }
        for name in ["api.partnercenter.microsoft.com", "API.PartnerCenter.microsoft.com.", "v1.graph.example"] {
            assert_eq!(admitted(hello(name)), Err("egress_denied"), "guarded {name}");
        }
        for name in ["other.example.net", "sub.files.example.net", "files.example.net.evil", "xfiles.example.net", ""] {
            assert_eq!(admitted(hello(name)), Err("misdirected_request"), "another host {name:?}");
        }
        for first in [FirstFlight::NotTls, FirstFlight::TooLong, FirstFlight::Timeout] {
            assert_eq!(admitted(first), Err("egress_denied"));
        }
    }

    #[test]
    fn a_guarded_target_is_refused_even_by_its_own_name() {
        let target = Target { host: "api.partnercenter.microsoft.com".into(), port: 443 };
        let first = hello("api.partnercenter.microsoft.com");
        assert_eq!(admit(&first, &target, guarded), Err(Reason::EgressDenied));
    }

    #[tokio::test]
    async fn reads_the_server_name_and_keeps_every_byte() {
        let hello = client_hello("API.PartnerCenter.microsoft.com");
        let (first, buffered) = flight(&hello).await;
        assert_eq!(first.unwrap(), FirstFlight::Hello(Some("api.partnercenter.microsoft.com".into())));
        assert_eq!(buffered, hello);
        let (first, _) = flight(&client_hello("127.0.0.1")).await;
        assert_eq!(first.unwrap(), FirstFlight::Hello(None), "an address is not sent as a server name");
    }

    #[tokio::test]
    async fn a_hello_split_over_many_records_is_read_whole() {
        let hello = client_hello("files.example.net");
        for size in [1, 7, 100, 512] {
            let split = reframe(&hello, size);
            let (first, buffered) = flight(&split).await;
            assert_eq!(first.unwrap(), FirstFlight::Hello(Some("files.example.net".into())), "records of {size}");
            assert_eq!(buffered, split);
        }
    }

    #[tokio::test]
    async fn a_hello_larger_than_one_record_is_read_whole() {
        // A hello with a 20 000-byte extension (as a large PSK identity or
        // several post-quantum key shares make it), in full-size records.
        let hello = client_hello("files.example.net");
        let mut message = reframe(&hello, usize::MAX >> 1)[5..].to_vec();
        let filler = 20_000usize;
        grow_client_hello(&mut message, filler);
        let mut flight_bytes = Vec::new();
        for piece in message.chunks(16 * 1024) {
            flight_bytes.extend_from_slice(&[0x16, 0x03, 0x01]);
            flight_bytes.extend_from_slice(&u16::try_from(piece.len()).unwrap().to_be_bytes());
            flight_bytes.extend_from_slice(piece);
        }
        assert!(flight_bytes.len() > 16 * 1024 + 5);
        let (first, _) = flight(&flight_bytes).await;
        assert_eq!(first.unwrap(), FirstFlight::Hello(Some("files.example.net".into())));
    }

    /// Adds an unknown extension of `n` bytes of zeros to the ClientHello
    /// handshake `message` (header included), fixing up the lengths.
    fn grow_client_hello(message: &mut Vec<u8>, n: usize) {
        // Handshake header (4), version (2), random (32), session id, cipher
        // suites, compression methods, then the extensions' length.
        let mut at = 4 + 2 + 32;
        at += 1 + usize::from(message[at]);
        at += 2 + usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
        at += 1 + usize::from(message[at]);
        let extensions = usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
        let added = 4 + n;
        let new_extensions = u16::try_from(extensions + added).unwrap();
        message[at..at + 2].copy_from_slice(&new_extensions.to_be_bytes());
        // An unassigned extension type; servers ignore those (RFC 8446 §4.2).
        message.extend_from_slice(&0xfe77u16.to_be_bytes());
        message.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        message.resize(message.len() + n, 0);
        let body = u32::try_from(message.len() - 4).unwrap().to_be_bytes();
        message[1..4].copy_from_slice(&body[1..]);
    }

    #[tokio::test]
    async fn bytes_that_are_not_a_tls_handshake_are_not_tls() {
        let server_hello = {
            let mut h = reframe(&client_hello("files.example.net"), 16 * 1024);
            h[5] = 2; // handshake type: ServerHello
            h
        };
        let cases: [(&str, &[u8]); 6] = [
            ("plain HTTP", b"GET / HTTP/1.1\r\nHost: files.example.net\r\n\r\n"),
            ("SSH", b"SSH-2.0-OpenSSH_9.6\r\n"),
            ("application data", &[0x17, 0x03, 0x03, 0x00, 0x02, 0x00, 0x00]),
            ("an oversized record", &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01]),
            ("SSLv2 framing", &[0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15]),
            ("another handshake message", &server_hello),
        ];
        for (what, bytes) in cases {
            let (first, _) = flight(bytes).await;
            assert_eq!(first.unwrap(), FirstFlight::NotTls, "{what}");
        }
    }

    #[tokio::test]
    async fn silence_or_half_a_hello_times_out() {
        let (first, buffered) = flight(b"").await;
        assert_eq!(first.unwrap(), FirstFlight::Timeout, "nothing sent");
        assert!(buffered.is_empty());
        let hello = client_hello("files.example.net");
        let (first, buffered) = flight(&hello[..hello.len() / 2]).await;
        assert_eq!(first.unwrap(), FirstFlight::Timeout, "half a hello");
        assert_eq!(buffered.len(), hello.len() / 2);
        let (first, _) = flight(&hello[..3]).await;
        assert_eq!(first.unwrap(), FirstFlight::Timeout, "part of a record header");
    }

    #[tokio::test]
    async fn a_hello_that_never_ends_is_refused_in_bounded_memory() {
        // ClientHello headers announcing 0xffff and 0xffffff bytes, then
        // filler, one byte or a full record at a time.
        for (length, record) in [([0x00, 0xff, 0xff], 1), ([0x00, 0xff, 0xff], 16 * 1024), ([0xff, 0xff, 0xff], 1)] {
            let mut message = [&[0x01][..], &length[..]].concat();
            message.resize(4 + 0xffff, 0x00);
            let bytes = reframe_raw(&message[..message.len() - 1], record);
            let (first, buffered) = flight(&bytes).await;
            let first = first.unwrap();
            assert!(matches!(first, FirstFlight::NotTls | FirstFlight::TooLong), "{length:?} in {record}: {first:?}");
            assert!(buffered.len() <= MAX_FIRST_FLIGHT, "{} bytes read", buffered.len());
        }
    }

    /// `payload` as handshake records of `size` bytes each.
    fn reframe_raw(payload: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in payload.chunks(size) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&u16::try_from(piece.len()).unwrap().to_be_bytes());
            out.extend_from_slice(piece);
        }
        out
    }

    #[tokio::test]
    async fn a_closed_connection_before_a_hello_is_an_error() {
        let hello = client_hello("files.example.net");
        let (mut tx, mut rx) = tokio::io::duplex(64 * 1024);
        tx.write_all(&hello[..100]).await.unwrap();
        drop(tx);
        let mut buffered = Vec::new();
        let first = first_flight(&mut rx, &mut buffered, Duration::from_secs(5)).await;
        assert_eq!(first.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
