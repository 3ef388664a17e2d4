//! The ids of one exchange (Partner Center's `MS-CorrelationId` and
//! `MS-RequestId`, Graph's `client-request-id`): the client's when usable,
//! else new ones; given back in every answer and passed upstream.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

pub static MS_CORRELATION_ID: HeaderName = HeaderName::from_static("ms-correlationid");
pub static MS_REQUEST_ID: HeaderName = HeaderName::from_static("ms-requestid");
static CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");

/// The request and correlation ids of one exchange: the client's when it sent
/// usable ones, otherwise new UUIDs.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub correlation_id: HeaderValue,
    pub request_id: HeaderValue,
    /// The client's `client-request-id` (Graph's SDKs send one), when
    /// usable: Graph's error contract gives it back.
    pub client_request_id: Option<HeaderValue>,
}

impl Correlation {
    pub fn of(headers: &HeaderMap) -> Self {
        Self {
            correlation_id: id_or_new(headers, &MS_CORRELATION_ID),
            request_id: id_or_new(headers, &MS_REQUEST_ID),
            client_request_id: usable(headers, &CLIENT_REQUEST_ID).cloned(),
        }
    }

    pub fn request_str(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    pub fn client_request_str(&self) -> Option<&str> {
        self.client_request_id.as_ref().and_then(|v| v.to_str().ok())
    }

    pub fn correlation_str(&self) -> &str {
        // Always visible ASCII: checked in `usable_id` or generated.
        self.correlation_id.to_str().unwrap_or_default()
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(MS_CORRELATION_ID.clone(), self.correlation_id.clone());
        headers.insert(MS_REQUEST_ID.clone(), self.request_id.clone());
    }
}

fn id_or_new(headers: &HeaderMap, name: &HeaderName) -> HeaderValue {
    usable(headers, name).cloned().unwrap_or_else(new_id)
}

/// The one value of `name`, when it is a usable id.
fn usable<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) if usable_id(v.as_bytes()) => Some(v),
        _ => None,
    }
}

/// Ids are echoed into logs and responses, so only a short, plain charset is kept.
fn usable_id(v: &[u8]) -> bool {
    (1..=128).contains(&v.len())
        && v.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A version 4 UUID: 122 bits of a keyed hash (SipHash, random keys per
/// thread) of a per-thread counter. Ids only need to be unique and carry no
/// secret, so they cost no call to the system's or a cryptographic
/// generator.
fn new_id() -> HeaderValue {
    thread_local! {
        static IDS: (RandomState, Cell<u64>) = (RandomState::new(), Cell::new(0));
    }
    let bytes = IDS.with(|(keys, counter)| {
        let n = counter.get();
        counter.set(n.wrapping_add(1));
        let half = |lane: u64| keys.hash_one((n, lane)).to_le_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&half(0));
        bytes[8..].copy_from_slice(&half(1));
        bytes
    });
    let mut buf = uuid::Uuid::encode_buffer();
    let s = uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("00000000-0000-0000-0000-000000000000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn correlation_ids_are_kept_when_plain_and_replaced_otherwise() {
        let ids = Correlation::of(&map(&[("ms-correlationid", "abc-123"), ("ms-requestid", "r1")]));
        assert_eq!(ids.correlation_id, "abc-123");
        assert_eq!(ids.request_id, "r1");
        let ids = Correlation::of(&map(&[("ms-correlationid", "a b\"c")]));
        let id = uuid::Uuid::parse_str(ids.correlation_id.to_str().unwrap()).unwrap();
        assert_eq!(id.get_version(), Some(uuid::Version::Random));
        assert_ne!(ids.correlation_id, ids.request_id);
        let many: std::collections::HashSet<_> = (0..10_000).map(|_| new_id()).collect();
        assert_eq!(many.len(), 10_000);
        let ids = Correlation::of(&map(&[("ms-correlationid", "a"), ("ms-correlationid", "b")]));
        assert_eq!(ids.correlation_id.len(), 36);
    }
}
