//! The staged close of an HTTP/1 connection whose request was answered
//! before its body was read (RFC 9112 §9.6): the answer says
//! `Connection: close`, and the rest of the body is read and thrown away,
//! for at most `server.discard_body_limit` bytes and
//! `server.discard_body_timeout`, before the connection closes. Closing at
//! once would leave the client's unread bytes in the socket, and the
//! kernel answers those with a reset that destroys the answer before a
//! client still uploading (Python `requests`, Node's fetch) reads it.
//!
//! HTTP/2 needs none of this: the stream is answered and reset with
//! `NO_ERROR` (hyper does so when the request body is dropped), and the
//! connection lives on.

use std::time::Duration;

use http::header::{CONNECTION, EXPECT, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Response, Version};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use tracing::debug;

use crate::config::DiscardSettings;
use crate::listener::Refusal;

/// How much of an unread request body is discarded after an early answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Discard {
    limit: u64,
    timeout: Duration,
}

impl Discard {
    pub fn of(settings: &DiscardSettings) -> Self {
        Self { limit: settings.limit, timeout: settings.timeout }
    }

    /// Called with an answer that was given before the request's body was
    /// read; `body` is what is left of it (`None` once it was handed on).
    /// Over HTTP/1 with bytes still to come, the answer gets
    /// `Connection: close` and the body is read and discarded in a task of
    /// its own while hyper sends the answer; hyper closes the connection
    /// once the body has ended, or once the task gives up and drops it.
    pub fn early_answer<B>(&self, rsp: &mut Response<B>, head: &Head, body: Option<Incoming>) {
        let Some(body) = body else { return };
        if head.version >= Version::HTTP_2 || body.is_end_stream() {
            return;
        }
        say_close(rsp, head.version);
        // A client that asked for 100 (Continue) waits for it before it
        // sends the body; reading the body now would make hyper send it.
        if head.expects_continue {
            return;
        }
        // A body announced larger than the limit would be cut off anyway.
        if self.timeout.is_zero() || body.size_hint().exact().is_some_and(|n| n > self.limit) {
            return;
        }
        tokio::spawn(discard(body, *self));
    }
}

/// Marks `rsp`, the answer to an HTTP/1 request of `version`, as the last
/// one of its connection: `Connection: close`, and nothing else. An answer
/// to HTTP/1.0 is marked HTTP/1.0 as well: hyper adds `keep-alive` to the
/// `Connection` of an HTTP/1.1 answer given to an HTTP/1.0 keep-alive
/// request, and a client or proxy that reads that token would send its next
/// request on a connection being closed.
pub(super) fn say_close<B>(rsp: &mut Response<B>, version: Version) {
    rsp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    if version < Version::HTTP_11 {
        *rsp.version_mut() = version;
    }
}

/// What an answer needs to know of the request it answers, taken before
/// the request is consumed.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    pub(super) version: Version,
    expects_continue: bool,
    /// The listener marked the request refused (malformed framing, or over
    /// a limit): the connection closes after the answer.
    pub(super) refused_by_listener: bool,
}

impl Head {
    pub fn of(parts: &Parts) -> Self {
        Self::new(parts.version, &parts.headers, parts.extensions.get::<Refusal>().is_some())
    }

    fn new(version: Version, headers: &HeaderMap, refused_by_listener: bool) -> Self {
        let expects_continue =
            headers.get_all(EXPECT).iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        Self { version, expects_continue, refused_by_listener }
    }
}

async fn discard(mut body: Incoming, Discard { limit, timeout }: Discard) {
    let read = async {
        let mut seen: u64 = 0;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return "broken" };
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.len() as u64);
                if seen > limit {
                    return "over discard_body_limit";
                }
            }
        }
        "read"
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(outcome) => debug!(outcome, "request body after an early answer"),
        Err(_) => debug!(outcome = "over discard_body_timeout", "request body after an early answer"),
    }
}
