//! A look at the raw bytes of HTTP/1 requests before hyper parses them, for
//! faults that parsing hides: bare LF line endings, a folded header line,
//! a bare CR, ambiguous framing (hyper drops `Content-Length` when
//! `Transfer-Encoding` is present, so only the raw head still shows both),
//! overlong chunk-size lines and chunk extensions (RFC 9112 §7.1.1 asks
//! servers to bound them). The inspector follows the framing (heads,
//! `Content-Length` bodies, chunked bodies, trailers) so that body bytes are
//! never mistaken for a head. A fault is recorded once; the gateway then
//! refuses the request with 400 and closes the connection. When a head
//! exceeds the limit (hyper answers 431), the inspector stops looking.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::reason::RequestRule;

/// Longest chunk-size line (size plus extensions) accepted.
const MAX_CHUNK_LINE: usize = 1024;
/// Most bytes of chunk extensions accepted in one request body.
const MAX_CHUNK_EXTENSIONS: usize = 1024;

/// The first fault found on a connection, shared with its request handler.
#[derive(Debug, Default, Clone)]
pub struct Fault(Arc<OnceLock<RequestRule>>);

impl Fault {
    pub fn get(&self) -> Option<RequestRule> {
        self.0.get().copied()
    }

    fn set(&self, reason: RequestRule) {
        let _ = self.0.set(reason);
    }
}

/// Whether everything the client has sent so far is whole requests: no
/// part of a next head or of a body is pending. Shared with the connection,
/// which parks an idle connection only then.
#[derive(Debug, Clone)]
pub struct AtRest(Arc<AtomicBool>);

impl AtRest {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, rest: bool) {
        self.0.store(rest, Ordering::Relaxed);
    }
}

#[derive(Debug)]
enum State {
    /// Reading a request head into `head`.
    Head,
    /// Skipping a body of known length.
    Body(u64),
    /// Reading a chunk-size line into `line`.
    ChunkSize,
    /// Skipping chunk data, then its CRLF.
    ChunkData(u64),
    ChunkDataCr,
    ChunkDataLf,
    /// Reading trailer lines into `line` until an empty one.
    Trailers,
    /// Not looking any more.
    Done,
}

/// Follows the request framing of one HTTP/1 connection.
#[derive(Debug)]
pub struct Inspector {
    state: State,
    head: Vec<u8>,
    line: Vec<u8>,
    extensions: usize,
    max_head: usize,
    fault: Fault,
    rest: AtRest,
}

impl Inspector {
    pub fn new(max_head: usize, fault: Fault) -> Self {
        let rest = AtRest(Arc::new(AtomicBool::new(true)));
        Self { state: State::Head, head: Vec::new(), line: Vec::new(), extensions: 0, max_head, fault, rest }
    }

    /// Whether the client's bytes so far end where a request ends.
    pub fn at_rest(&self) -> AtRest {
        self.rest.clone()
    }

    /// How many of `bytes` are empty lines before a next request: CR and LF
    /// while between requests, none otherwise.
    fn empty_lines(&self, bytes: &[u8]) -> usize {
        if !matches!(self.state, State::Head) || !self.head.is_empty() {
            return 0;
        }
        bytes.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count()
    }

    /// Gives back the buffers a head or chunk line that came in pieces grew,
    /// between requests.
    fn release(&mut self) {
        if matches!(self.state, State::Head) && self.head.is_empty() {
            self.head = Vec::new();
            self.line = Vec::new();
        }
    }

    /// Looks at the next bytes the client sent.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let used = match self.state {
                State::Done => return,
                State::Head => self.head_bytes(bytes),
                State::Body(left) => {
                    let n = left.min(bytes.len() as u64);
                    self.state = if n == left { State::Head } else { State::Body(left - n) };
                    n as usize
                }
                State::ChunkSize => self.chunk_size_bytes(bytes),
                State::ChunkData(left) => {
                    let n = left.min(bytes.len() as u64);
                    self.state = if n == left { State::ChunkDataCr } else { State::ChunkData(left - n) };
                    n as usize
                }
                State::ChunkDataCr => self.expect(bytes[0], b'\r', State::ChunkDataLf),
                State::ChunkDataLf => self.expect(bytes[0], b'\n', State::ChunkSize),
                State::Trailers => self.trailer_bytes(bytes),
            };
            bytes = &bytes[used..];
        }
        self.rest.set(matches!(self.state, State::Head) && self.head.is_empty());
    }

    fn fail(&mut self, reason: RequestRule) -> usize {
        self.fault.set(reason);
        self.stop()
    }

    fn stop(&mut self) -> usize {
        self.rest.set(false);
        self.state = State::Done;
        self.head = Vec::new();
        self.line = Vec::new();
        0
    }

    fn expect(&mut self, got: u8, want: u8, next: State) -> usize {
        if got != want {
            return self.fail(RequestRule::BadChunkEnd);
        }
        self.state = next;
        1
    }

    fn head_bytes(&mut self, bytes: &[u8]) -> usize {
        // Empty lines before a request line are allowed (RFC 9112 §2.2).
        let mut skipped = 0;
        if self.head.is_empty() {
            skipped = bytes.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
            // The usual case: a whole head in one read, looked at in place.
            let rest = &bytes[skipped..];
            if let Some(end) = head_end(rest, 0).filter(|&end| end <= self.max_head) {
                self.head_done(&rest[..end]);
                return skipped + end;
            }
        }
        let bytes = &bytes[skipped..];
        let start = self.head.len();
        let take = bytes.len().min(self.max_head + 1 - start.min(self.max_head + 1));
        self.head.extend_from_slice(&bytes[..take]);
        let Some(end) = head_end(&self.head, start.saturating_sub(2)) else {
            if self.head.len() > self.max_head {
                return skipped + take + self.stop();
            }
            return skipped + take;
        };
        let used = skipped + (end - start);
        let head = std::mem::take(&mut self.head);
        self.head_done(&head[..end]);
        self.head = head;
        self.head.clear();
        used
    }

    fn head_done(&mut self, head: &[u8]) {
        for i in memchr::memchr2_iter(b'\r', b'\n', head) {
            if head[i] == b'\r' {
                if head.get(i + 1) != Some(&b'\n') {
                    self.fail(RequestRule::BareCr);
                    return;
                }
                continue;
            }
            if i == 0 || head[i - 1] != b'\r' {
                self.fail(RequestRule::BareLf);
                return;
            }
            // A line starting with whitespace, other than the final empty line.
            if matches!(head.get(i + 1), Some(b' ' | b'\t')) && i + 3 < head.len() {
                self.fail(RequestRule::FoldedHeader);
                return;
            }
        }
        let mut line_start = 0;
        let mut lines = memchr::memchr_iter(b'\n', head).map(|end| {
            let line = &head[line_start..end];
            line_start = end + 1;
            line
        });
        let request_line = lines.next().unwrap_or_default();
        let (mut te, mut cl) = (0, 0);
        let mut chunked = false;
        let mut length: Option<u64> = None;
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = memchr::memchr(b':', line) else { continue };
            let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
            if name.last().is_some_and(|b| matches!(b, b' ' | b'\t')) {
                // RFC 9112 §5.1: a server must refuse it.
                self.fail(RequestRule::SpaceBeforeColon);
                return;
            }
            if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te += 1;
                chunked = value.eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case(b"content-length") {
                cl += 1;
                length = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse().ok());
            }
        }
        let fault = match (te, cl) {
            (0, 0) => None,
            (0, 1) if length.is_none() => Some(RequestRule::BadContentLength),
            (0, 1) => None,
            (1, 0) if !chunked => Some(RequestRule::TeNotChunked),
            (1, 0) if !request_line.trim_ascii_end().ends_with(b"HTTP/1.1") => Some(RequestRule::TeOutsideHttp11),
            (1, 0) => None,
            (0, _) => Some(RequestRule::RepeatedContentLength),
            (_, 0) => Some(RequestRule::TeNotChunked),
            _ => Some(RequestRule::TeAndContentLength),
        };
        if let Some(fault) = fault {
            self.fail(fault);
            return;
        }
        self.extensions = 0;
        self.state = match (chunked, length) {
            (true, _) => State::ChunkSize,
            (false, None | Some(0)) => State::Head,
            (false, Some(n)) => State::Body(n),
        };
    }

    /// Appends to `line` up to and including LF; returns the bytes used and
    /// whether the line is complete. Lines longer than `max` fail.
    fn line_bytes(&mut self, bytes: &[u8], max: usize, too_long: RequestRule) -> Option<(usize, bool)> {
        let (used, complete) = match bytes.iter().position(|&b| b == b'\n') {
            Some(p) => (p + 1, true),
            None => (bytes.len(), false),
        };
        if self.line.len() + used > max {
            self.fail(too_long);
            return None;
        }
        self.line.extend_from_slice(&bytes[..used]);
        if complete && !self.line.ends_with(b"\r\n") {
            self.fail(RequestRule::BareLf);
            return None;
        }
        Some((used, complete))
    }

    fn chunk_size_bytes(&mut self, bytes: &[u8]) -> usize {
        let Some((used, complete)) = self.line_bytes(bytes, MAX_CHUNK_LINE, RequestRule::ChunkLineTooLong) else {
            return 0;
        };
        if !complete {
            return used;
        }
        let line = std::mem::take(&mut self.line);
        let line = &line[..line.len() - 2];
        let (size, ext) = match line.iter().position(|&b| b == b';') {
            Some(p) => (&line[..p], &line[p..]),
            None => (line, &[][..]),
        };
        self.extensions += ext.len();
        if self.extensions > MAX_CHUNK_EXTENSIONS {
            return self.fail(RequestRule::ChunkExtensionsTooLong);
        }
        // RFC 9112 §7.1: `chunk-size = 1*HEXDIG`, then optional whitespace
        // before an extension. Nothing before the digits, no sign: what hyper
        // would refuse mid-body must be refused here, as the client's fault.
        let digits = size.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let parsed = (digits > 0 && digits <= 15 && trim(&size[digits..]).is_empty())
            .then(|| std::str::from_utf8(&size[..digits]).ok())
            .flatten()
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        match parsed {
            None => return self.fail(RequestRule::BadChunkSize),
            Some(0) => self.state = State::Trailers,
            Some(n) => self.state = State::ChunkData(n),
        }
        used
    }

    fn trailer_bytes(&mut self, bytes: &[u8]) -> usize {
        let Some((used, complete)) = self.line_bytes(bytes, self.max_head, RequestRule::TrailersTooLong) else {
            return 0;
        };
        if complete {
            if self.line == b"\r\n" {
                self.state = State::Head;
            }
            self.line.clear();
        }
        used
    }
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The client's stream, with every byte read shown to the inspector first.
pub struct Inspected<T> {
    inner: T,
    inspector: Option<Inspector>,
}

impl<T> Inspected<T> {
    pub fn new(inner: T, inspector: Option<Inspector>) -> Self {
        Self { inner, inspector }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Gives back the inspector's buffers, between requests.
    pub fn release(&mut self) {
        if let Some(inspector) = self.inspector.as_mut() {
            inspector.release();
        }
    }
}

/// Reads of nothing but empty lines between requests taken in one poll
/// before the task yields.
const MAX_EMPTY_READS: usize = 16;

impl<T: AsyncRead + Unpin> AsyncRead for Inspected<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let Some(inspector) = this.inspector.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        for _ in 0..MAX_EMPTY_READS {
            let ready = Pin::new(&mut this.inner).poll_read(cx, buf);
            if !matches!(ready, Poll::Ready(Ok(()))) || buf.filled().len() == before {
                return ready;
            }
            // Empty lines between requests (RFC 9112 §2.2) are dropped here
            // rather than skipped by hyper, so that a connection they reach
            // between requests is still between requests for hyper too.
            let skip = inspector.empty_lines(&buf.filled()[before..]);
            if skip > 0 {
                let end = buf.filled().len();
                buf.filled_mut().copy_within(before + skip..end, before);
                buf.set_filled(end - skip);
            }
            if buf.filled().len() > before {
                inspector.feed(&buf.filled()[before..]);
                return ready;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Inspected<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Where the head in `buf` ends (just past its empty line, with CRLF or
/// bare LF endings), looking from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    memchr::memchr_iter(b'\n', &buf[from..]).find_map(|p| {
        let at = from + p;
        match (buf.get(at + 1), buf.get(at + 2)) {
            (Some(b'\n'), _) => Some(at + 2),
            (Some(b'\r'), Some(b'\n')) => Some(at + 3),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests;
