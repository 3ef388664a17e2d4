//! Reading a token request's body on a login route, so that its grant type
//! can be checked before it leaves. Bounded in size and time; every other
//! request body is streamed and never read by the gateway.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};

use crate::auth::credentials;
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

/// The client id of HTTP Basic client authentication (RFC 6749 §2.3.1:
/// `base64(urlencode(client_id) ":" urlencode(secret))`) in every Basic
/// element of every `Authorization` value, read by the credentials
/// parser every check uses; empty when the credentials do not decode, so
/// that they still count as a secret. The secret itself is never kept. A
/// value that cannot be read is refused: what it carries cannot be checked.
pub fn basic_client(headers: &HeaderMap) -> Result<Option<String>, Reject> {
    use base64::Engine;
    let mut found = None;
    for value in headers.get_all(http::header::AUTHORIZATION) {
        let encoded =
            credentials::basic(value).map_err(|_| Reject::BadRequest(RequestRule::TokenRequestAuthorization))?;
        for encoded in encoded {
            let id = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|creds| creds.split_once(':').map(|(id, _)| id.replace('+', " ")))
                .map(|id| {
                    crate::policy::legacy::client_id(
                        percent_encoding::percent_decode_str(&id).decode_utf8_lossy().into_owned(),
                    )
                })
                .unwrap_or_default();
            // A second set of credentials (in another header or later in
            // the same list) naming another client is kept as one that
            // matches none.
            found = match found {
                None => Some(id),
                Some(first) if first == id => Some(first),
                Some(_) => Some(String::new()),
            };
        }
    }
    Ok(found)
}

/// A path to a token endpoint: its last segment is `token`, in any case
/// (`/{tenant}/oauth2/token`, `/{tenant}/oauth2/v2.0/token`).
pub fn is_token_endpoint(path: &str) -> bool {
    path.trim_end_matches('/').rsplit('/').next().is_some_and(|last| {
        // Read as a server may: percent-decoded, without path parameters or
        // a trailing dot or space (`%74oken`, `token;x`, `token.`).
        let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy();
        let name = decoded.split(';').next().unwrap_or_default().trim_end_matches(['.', ' ']);
        name.eq_ignore_ascii_case("token")
    })
}

/// The tenant a sign-in path names in its first segment
/// (`/{tenant}/oauth2/v2.0/token`): a GUID (lower-cased), a domain name,
/// `common`, `organizations` or `consumers`; `other` for anything else,
/// so that the log shows no text of the client's choosing.
pub fn path_tenant(path: &str) -> Option<String> {
    let first = path.trim_start_matches('/').split('/').next().filter(|s| !s.is_empty())?;
    let decoded = percent_encoding::percent_decode_str(first).decode_utf8_lossy();
    let t = decoded.trim();
    if crate::entra::is_guid(t) || ["common", "organizations", "consumers"].iter().any(|w| t.eq_ignore_ascii_case(w)) {
        return Some(t.to_ascii_lowercase());
    }
    match crate::host::normalize(t) {
        Ok(name) if name.contains('.') => Some(name),
        _ => Some("other".into()),
    }
}
