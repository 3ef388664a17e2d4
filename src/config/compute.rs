//! `[routes.compute_guard]`, checked into `policy::compute::guard`. The
//! rule reads ARM request bodies, so only a route that fronts ARM may have it.

use std::time::Duration;

use super::error::ConfigError;
use super::raw;
use super::server::byte_size;
use super::values::duration;
use crate::policy::compute::guard::{ComputeGuard, Uninspectable};

/// The largest `inspect_body_limit`: ARM itself refuses request bodies over 4 MiB.
const MAX_INSPECT_BYTES: u64 = 4 << 20;
/// The longest `inspect_body_timeout`.
const MAX_INSPECT_TIMEOUT: Duration = Duration::from_secs(60);

/// The rule of route `i`; `arm`: whether the route fronts ARM.
pub(super) fn compute_guard(i: usize, raw: &raw::ComputeGuard, arm: bool) -> Result<ComputeGuard, ConfigError> {
    let key = |field: &str| format!("routes[{i}].compute_guard.{field}");
    if !arm {
        return Err(ConfigError::invalid(
            format!("routes[{i}].compute_guard"),
            "only on an aobo route whose host, upstream or audience is Azure Resource Manager",
        ));
    }
    let defaults = ComputeGuard::default();
    let families = match &raw.families {
        None => defaults.families,
        Some(list) => {
            let mut out = Vec::new();
            for (j, f) in list.iter().enumerate() {
                if !(1..=3).contains(&f.len()) || !f.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(ConfigError::invalid(
                        format!("{}[{j}]", key("families")),
                        "a VM size family: 1-3 letters such as \"NC\"",
                    ));
                }
                out.push(f.to_ascii_uppercase());
            }
            out
        }
    };
    let max_vcpus = raw.max_vcpus.unwrap_or(defaults.max_vcpus);
    if max_vcpus == 0 {
        return Err(ConfigError::invalid(key("max_vcpus"), "at least 1"));
    }
    let max_regions_per_hour = raw.max_regions_per_hour.unwrap_or(defaults.max_regions_per_hour);
    if !(1..=64).contains(&max_regions_per_hour) {
        return Err(ConfigError::invalid(key("max_regions_per_hour"), "between 1 and 64"));
    }
    let uninspectable = match raw.uninspectable.as_deref() {
        None => defaults.uninspectable,
        Some("allow") => Uninspectable::Allow,
        Some("flag") => Uninspectable::Flag,
        Some("deny") => Uninspectable::Deny,
        Some(_) => return Err(ConfigError::invalid(key("uninspectable"), "expected \"allow\", \"flag\" or \"deny\"")),
    };
    let inspect_body_limit = match &raw.inspect_body_limit {
        None => defaults.inspect_body_limit,
        Some(size) => byte_size(&key("inspect_body_limit"), size, MAX_INSPECT_BYTES)? as usize,
    };
    if inspect_body_limit == 0 {
        return Err(ConfigError::invalid(key("inspect_body_limit"), "at least 1 byte"));
    }
    let inspect_body_timeout = match &raw.inspect_body_timeout {
        None => defaults.inspect_body_timeout,
        Some(t) => duration(&key("inspect_body_timeout"), t)?,
    };
    if inspect_body_timeout.is_zero() || inspect_body_timeout > MAX_INSPECT_TIMEOUT {
        return Err(ConfigError::invalid(key("inspect_body_timeout"), "between 1ms and 60s"));
    }
    Ok(ComputeGuard {
        families,
        max_vcpus,
        max_regions_per_hour,
        quota_requests: raw.quota_requests.unwrap_or(defaults.quota_requests),
        uninspectable,
        inspect_body_limit,
        inspect_body_timeout,
    })
}
