//! `compute_guard` on the request path: the bounded read of an ARM compute
//! request's body (only `PUT`, `PATCH` and `POST` to the types the rule
//! reads; every other body streams untouched), the rule's judgement, and
//! what is forwarded: the bytes read, byte for byte, or, when the body was
//! larger than the limit and the rule only reports, the bytes read followed
//! by the rest of the stream.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};

use super::regions::RegionLog;
use crate::error::{Reject, RequestRule};
use crate::policy::compute::arm::{self, Target};
use crate::policy::compute::guard::{self, ComputeGuard, Flag, Judgement, Summary};

/// What goes upstream after an inspection.
pub enum Forward {
    /// The whole body, read.
    Whole(Bytes),
    /// The bytes read, then the rest of the client's stream.
    Prefixed(Bytes),
}

/// The inspection of one request.
pub struct Inspection {
    pub judgement: Judgement,
    pub forward: Forward,
    /// Larger than `inspect_body_limit`: not read whole.
    pub too_large: bool,
}

/// The target, when the rule reads this request.
pub fn target(guard: Option<&ComputeGuard>, method: &http::Method, path: &str) -> Option<Target> {
    guard?;
    if !arm::inspects_method(method.as_str()) {
        return None;
    }
    arm::target(path)
}

/// Reads and judges the body; the principal's recent regions come from `regions`.
pub async fn inspect(
    guard: &ComputeGuard,
    target: &Target,
    body: &mut Incoming,
    headers: &HeaderMap,
    oid: Option<&str>,
    regions: &RegionLog,
) -> Result<Inspection, Reject> {
    let read = read(body, headers, guard).await?;
    let Some(bytes) = read else {
        let mut judgement = Judgement { violations: vec![Flag::Uninspectable], ..Judgement::default() };
        judgement.summary = Some(summary_of(target));
        return Ok(Inspection { judgement, forward: Forward::Prefixed(Bytes::new()), too_large: true });
    };
    let (bytes, too_large) = bytes;
    if too_large {
        let mut judgement = Judgement { violations: vec![Flag::Uninspectable], ..Judgement::default() };
        judgement.summary = Some(summary_of(target));
        return Ok(Inspection { judgement, forward: Forward::Prefixed(bytes), too_large: true });
    }
    // A compressed body hides what it asks for.
    let encoded = headers.get_all(CONTENT_ENCODING).iter().any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    let units = guard::inspect(target, (!encoded).then_some(&bytes[..]));
    let recent = oid.map(|o| regions.recent(o, Instant::now())).unwrap_or_default();
    let mut judgement = guard::judge(guard, &units, &recent);
    if oid.is_none() {
        // Regions are counted per verified principal only.
        judgement.regions.clear();
    }
    if judgement.is_flagged() && judgement.summary.is_none() {
        judgement.summary = Some(summary_of(target));
    }
    Ok(Inspection { judgement, forward: Forward::Whole(bytes), too_large: false })
}

fn summary_of(target: &Target) -> Summary {
    match target {
        Target::Resource { kind, subscription } => {
            Summary { resource_type: Some(kind.as_str()), subscription: subscription.clone(), ..Summary::default() }
        }
        Target::Batch => Summary { resource_type: Some("batch"), ..Summary::default() },
    }
}

/// The body, read up to the limit: `None` when its declared length is over
/// the limit (nothing read); the bytes and whether the limit was passed.
/// A body that stalls or breaks off is refused: the upstream sees nothing.
async fn read(body: &mut Incoming, headers: &HeaderMap, guard: &ComputeGuard) -> Result<Option<(Bytes, bool)>, Reject> {
    if body.is_end_stream() {
        return Ok(Some((Bytes::new(), false)));
    }
    let limit = guard.inspect_body_limit;
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let reading = async {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Reject::BadRequest(RequestRule::ComputeBodyUnreadable))?;
            // Trailers are not forwarded on an inspected request.
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    return Ok((buf.freeze(), true));
                }
            }
        }
        Ok((buf.freeze(), false))
    };
    match tokio::time::timeout(guard.inspect_body_timeout, reading).await {
        Ok(read) => read.map(Some),
        Err(_) => Err(Reject::BadRequest(RequestRule::ComputeBodyTimeout)),
    }
}
