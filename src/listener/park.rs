//! Idle HTTP/1 connections hold no HTTP state. While it waits for the next
//! request, hyper keeps a read buffer reserved and the write buffer it grew
//! for the last answer: about 16 KiB a connection, most of what an idle
//! keep-alive connection costs. Once a connection has been idle for
//! `PARK_AFTER`, with nothing of a next request sent, its hyper connection
//! is taken down without closing the stream (`without_shutdown`); the bytes
//! hyper had read but not parsed are kept in front of the stream (`Resumed`),
//! and a new hyper connection is built when the client next sends a byte.
//! A parked connection is a socket, its TLS state and a task waiting for
//! readability, with no buffer of hyper's.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long an HTTP/1 connection is idle before it is parked. Short enough
/// that connections a client pools between calls hold nothing; long enough
/// that a busy connection is never parked between its requests.
pub const PARK_AFTER: Duration = Duration::from_secs(1);

/// Whether everything written to a stream has been flushed: hyper keeps
/// what it could not write yet in a buffer of its own, which is lost when
/// its connection is taken down, so a connection is parked only when its
/// last write was flushed.
#[derive(Debug, Clone)]
pub struct Flushed(Arc<AtomicBool>);

impl Flushed {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, flushed: bool) {
        self.0.store(flushed, Ordering::Relaxed);
    }
}

/// A stream with bytes already read from it put back in front.
pub struct Resumed<T> {
    unread: Bytes,
    inner: T,
    flushed: Flushed,
}

impl<T> Resumed<T> {
    pub fn new(inner: T) -> Self {
        Self { unread: Bytes::new(), inner, flushed: Flushed(Arc::new(AtomicBool::new(true))) }
    }

    /// Whether the last write was flushed, as the stream's owner sees it.
    pub fn flushed(&self) -> Flushed {
        self.flushed.clone()
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Puts `bytes` back, to be read before anything not read yet.
    pub fn unread(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.unread = if self.unread.is_empty() {
            bytes
        } else {
            let mut joined = BytesMut::with_capacity(bytes.len() + self.unread.len());
            joined.extend_from_slice(&bytes);
            joined.extend_from_slice(&self.unread);
            joined.freeze()
        };
    }

    /// Whether bytes put back are waiting to be read.
    pub fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Resumed<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.unread.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(&self.unread[..n]);
        self.unread.advance(n);
        if self.unread.is_empty() {
            // Nothing of the old buffer stays alive.
            self.unread = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Resumed<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.flushed.set(false);
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        self.flushed.set(matches!(flushed, Poll::Ready(Ok(()))));
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.flushed.set(false);
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn bytes_put_back_are_read_first_in_order() {
        let mut io = Resumed::new(&b" world"[..]);
        io.unread(Bytes::from_static(b"lo"));
        io.unread(Bytes::from_static(b"hel"));
        assert!(io.has_unread());
        let mut got = String::new();
        io.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello world");
        assert!(!io.has_unread());
    }

    #[tokio::test]
    async fn a_write_is_flushed_only_once_flush_returns() {
        use tokio::io::AsyncWriteExt;
        let mut io = Resumed::new(Vec::new());
        let flushed = io.flushed();
        assert!(flushed.get());
        io.write_all(b"answer").await.unwrap();
        assert!(!flushed.get());
        io.flush().await.unwrap();
        assert!(flushed.get());
    }

    #[tokio::test]
    async fn a_small_read_leaves_the_rest_put_back() {
        let mut io = Resumed::new(&b"!"[..]);
        io.unread(Bytes::from_static(b"abc"));
        let mut two = [0u8; 2];
        io.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"ab");
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"c!");
    }
}
