//! Reading a token request's body on a login route, so that its grant type
//! can be checked before it leaves. Bounded in size and time; every other
//! request body is streamed and never read by the gateway.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};

use crate::error::{Reject, RequestRule};

/// Largest token request body read; Entra's token requests are a few KiB.
pub const MAX_BYTES: usize = 64 * 1024;
/// Time allowed for the whole body to arrive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The request's body, read whole (empty when it has none).
/// Whatever it could not read stays in `body` (discarded after the answer).
pub async fn read(body: &mut Incoming, headers: &HeaderMap) -> Result<Bytes, Reject> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    // A compressed body would hide its grant type.
    let encoded = headers.get_all(CONTENT_ENCODING).iter().any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return Err(Reject::BadRequest(RequestRule::TokenRequestEncoded));
    }
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BYTES as u64) {
        return Err(Reject::BadRequest(RequestRule::TokenRequestTooLarge));
    }
    match tokio::time::timeout(READ_TIMEOUT, Limited::new(body, MAX_BYTES).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(Reject::BadRequest(RequestRule::TokenRequestTooLarge))
        }
        Ok(Err(_)) => Err(Reject::BadRequest(RequestRule::TokenRequestUnreadable)),
        Err(_) => Err(Reject::BadRequest(RequestRule::TokenRequestTimeout)),
    }
}

/// The request's `Content-Type`, for reading its body: one value, and text.
/// Several, or bytes that are not text, could be read differently upstream.
pub fn content_type(headers: &HeaderMap) -> Result<Option<&str>, Reject> {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Reject::BadRequest(RequestRule::TokenRequestContentType));
    }
    first.map(|v| v.to_str().map_err(|_| Reject::BadRequest(RequestRule::TokenRequestContentType))).transpose()
}
