//! The one place a rejection becomes the answer a client gets, on every
//! listener: the body in the route's error format, the challenge and
//! `Retry-After` (`Reject::into_response`), the correlation headers, and
//! whether the connection closes after it — nothing else decides
//! `Connection: close` (a stopping listener is closed by hyper, which marks
//! the answer in progress itself).
//!
//! An HTTP/1 connection closes after the answer when
//! - the request was malformed (`bad_request`): what follows it on the
//!   connection cannot be framed with confidence;
//! - the listener refused it (a framing fault it saw in the raw bytes, or
//!   a connection or in-flight limit);
//! - its body was not read: the rest is discarded, then the connection
//!   closes (the staged close of `discard`).
//!
//! HTTP/2 streams are answered and reset; the connection lives on.

mod discard;

use http::{Response, Version};
use hyper::body::Incoming;

pub use self::discard::Head;
use self::discard::{Discard, say_close};
use crate::config::DiscardSettings;
use crate::correlation::Correlation;
use crate::error::{ErrorFormat, Reason, Reject};
use crate::upstream::Body;

/// Builds refusals under one configuration's `discard_body_*` settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Responder {
    discard: Discard,
}

impl Responder {
    pub fn new(settings: &DiscardSettings) -> Self {
        Self { discard: Discard::of(settings) }
    }

    /// The answer to the request of `head` refused with `reject`, its body
    /// in `format`. `body` is what is left of the request's body (`None`
    /// once it was read or handed on).
    pub fn refuse(
        &self,
        reject: Reject,
        ids: &Correlation,
        format: ErrorFormat,
        head: &Head,
        body: Option<Incoming>,
    ) -> Response<Body> {
        let closes = head.refused_by_listener || closes_connection(&reject);
        let mut rsp = reject.into_response(ids, format);
        ids.apply(rsp.headers_mut());
        if closes && head.version < Version::HTTP_2 {
            say_close(&mut rsp, head.version);
        }
        self.discard.early_answer(&mut rsp, head, body);
        rsp
    }
}

/// Whether nothing more may be read from an HTTP/1 connection after
/// `reject`: its request broke the framing or was ambiguous.
fn closes_connection(reject: &Reject) -> bool {
    reject.reason() == Reason::BadRequest
}
