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

/// Who asks, for the regions count: the verified `oid`, or a verified
/// token without one, or nothing verified.
#[derive(Debug, Clone, Copy)]
pub enum Principal<'a> {
    Oid(&'a str),
    /// A verified token without `oid`: its compute cannot be counted, so a
    /// request creating compute in a region is flagged `regions`.
    Uncountable,
    /// Nothing verified (`verify_signature = false`): not counted.
    Unverified,
}

/// Reads and judges the body; the principal's recent regions come from `regions`.
pub async fn inspect(
    guard: &ComputeGuard,
    target: &Target,
    body: &mut Incoming,
    headers: &HeaderMap,
    principal: Principal<'_>,
    regions: &RegionLog,
) -> Result<Inspection, Reject> {
    let oid = match principal {
        Principal::Oid(oid) => Some(oid),
        _ => None,
    };
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
    // Judging is CPU work bounded by the body's size: off the async
    // workers, so that other requests and the admin listener never wait on it.
    let (owned, read) = (target.clone(), bytes.clone());
    let units =
        tokio::task::spawn_blocking(move || guard::inspect(&owned, (!encoded).then_some(&read[..]), &normalized))
            .await
            .unwrap_or_else(|_| vec![guard::Unit { unreadable: true, ..guard::Unit::default() }]);
    let recent = oid.map(|o| regions.recent(o, Instant::now())).unwrap_or_default();
    let mut judgement = guard::judge(guard, &units, &recent);
    if oid.is_none() {
        // Regions are counted per verified principal only; a verified token
        // that names none cannot be counted, and fails closed.
        if matches!(principal, Principal::Uncountable)
            && !judgement.regions.is_empty()
            && !judgement.violations.contains(&Flag::Regions)
        {
            judgement.violations.push(Flag::Regions);
        }
        judgement.regions.clear();
    }
    if judgement.is_flagged() && judgement.summary.is_none() {
        judgement.summary = Some(summary_of(target));
    }
    Ok(Inspection { judgement, forward: Forward::Whole(bytes), too_large: false })
}

/// A wrapped request's path as the request checks normalise a request's
/// own (`None`: they refuse it).
fn normalized(path: &str) -> Option<String> {
    super::hygiene::normalize_path(path).ok().map(|n| n.unwrap_or_else(|| path.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Wrapped urls are read as the request's own path is: normalised, and
    /// refused (the batch unreadable) where a request sent alone would be.
    #[test]
    fn wrapped_urls_are_normalised_as_requests_are() {
        let vm = r#"{"location":"eastus","properties":{"hardwareProfile":{"vmSize":"Standard_ND96asr_v4"}}}"#;
        let base = "/subscriptions/s/resourceGroups/rg/providers/";
        let judged = |url: &str| {
            let body = format!(r#"{{"requests":[{{"httpMethod":"PUT","url":"{url}","content":{vm}}}]}}"#);
            let units = guard::inspect(&Target::Batch, Some(body.as_bytes()), &normalized);
            guard::judge(&ComputeGuard::default(), &units, &[]).violations
        };
        let table: &[(String, Flag)] = &[
            (format!("{base}Microsoft.Compute/virtualMachines/vm1?api-version=1"), Flag::Gpu),
            (format!("{base}Microsoft.Compute/virtual%4Dachines/vm1"), Flag::Gpu),
            (
                "/subscriptions/s/resourceGroups/rg/pro%76iders/Microsoft.Compute/virtualMachines/vm1".to_string(),
                Flag::Gpu,
            ),
            (format!("{base}Microsoft.Compute//virtualMachines/vm1"), Flag::Gpu),
            (format!("{base}Microsoft.Compute/x/../virtualMachines/vm1"), Flag::Uninspectable),
            (format!("{base}Microsoft.Compute%2FvirtualMachines/vm1"), Flag::Uninspectable),
            (format!("{base}Microsoft.Compute\\\\virtualMachines\\\\vm1"), Flag::Uninspectable),
            (format!("{base}Microsoft.Compute/virtualMachines%252e/vm1"), Flag::Uninspectable),
            ("/%62atch?api-version=2020-06-01".to_string(), Flag::Uninspectable),
        ];
        for (url, flag) in table {
            assert!(judged(url).contains(flag), "{url}: {:?}", judged(url));
        }
        assert_eq!(judged(&format!("{base}Microsoft.Storage/storageAccounts/st1")), vec![]);
    }
}
