//! The decision log: one JSON line per decision, to stdout or a file.
//! It records the policy-relevant claims (so that `mfagate replay` can
//! re-run a decision under another configuration), never the token: `uti`
//! and the user's name are kept only as SHA-256 fingerprints.
//!
//! Lines are written by a thread of their own (`spool`), so the request path
//! never waits on I/O; when the writer falls `BACKLOG` bytes behind, lines
//! are dropped and counted. Dropping the log flushes and closes it.

pub use crate::fingerprint::{sha256_hex, user_fingerprint};
use std::cell::RefCell;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{AuditConfig, AuditSink};
use crate::spool::{Spool, SpoolMetrics};

/// Bytes waiting for the writer before new lines are dropped (some ten
/// thousand lines).
const BACKLOG: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot open the decision log {path}: {source}")]
pub struct AuditError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Counters for decision log lines.
pub type AuditMetrics = SpoolMetrics;

/// One decision. Optional fields are left out when empty. Read as owned
/// strings (the default parameters); written from borrowed ones
/// (`AuditRecord<&str, &[String]>`), so that the request path copies nothing
/// to log a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "S: Serialize + AsRef<str>, L: Serialize"))]
pub struct AuditRecord<S = String, L = Vec<String>> {
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: S,
    /// The replica that wrote it (`server.instance`, else its host name).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub instance: S,
    pub route: S,
    /// `allow`, `deny`, `would_deny` or `exempt`.
    pub decision: S,
    /// A reason code; `none` for `allow`.
    pub reason: S,
    /// The request check that refused a `bad_request` (`dot_segment`,
    /// `stray_access_token`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<S>,
    /// The route's mode at that instant (`enforce` or `report-only`).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub mode: S,
    /// Whether the token's signature was verified (absent: no claims).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_tenant: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<S>,
    /// `public`, `secret`, `certificate` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<S>,
    /// `app_user` or `app_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<S>,
    /// `1.0`, `2.0` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wids: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_cc: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acrs: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uti_sha256: Option<S>,
    /// Of the lower-cased `upn` (or `unique_name`, `preferred_username`, or
    /// a password grant's `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn_sha256: Option<S>,
    /// Partner Center's `{customer-id}` from the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<S>,
    /// The `Authorization` scheme (`bearer`, `basic`, `none`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<S>,
    /// Rule failures found in the request itself, before any token
    /// (`legacy_auth`, `password_grant`), comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<S>,
    /// The reason the main token failed its checks, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_error: Option<S>,
    /// ARM's auxiliary tokens (`x-ms-authorization-auxiliary`), each as
    /// checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auxiliary: Option<Vec<AuxiliaryRecord<S, L>>>,
    /// A token request's grant type (login routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<S>,
    /// The reason of the exemption that let the request through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemption: Option<S>,
    /// The reason of an exemption that matched but had expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_exemption: Option<S>,
    pub correlation_id: S,
    #[serde(default)]
    pub request_id: S,
    /// The status the client got.
    pub status: u16,
    /// The upstream's status, when the request was forwarded and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_error: Option<S>,
    /// From forwarding to the upstream's response headers (or its failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_latency_us: Option<u64>,
    /// To the response headers sent to the client.
    pub latency_us: u64,
    /// `client_closed`: the client went away before the response headers
    /// (the upstream may have acted on the request; `status` is 499).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<S>,
    /// `compute_guard`: what flagged an ARM compute request (`gpu`, `hpc`,
    /// `vcpus`, `regions`, `quota`, `uninspectable`), comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_kind: Option<S>,
    /// What was only recorded (`uninspectable` under `uninspectable = "flag"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_noted: Option<S>,
    /// The flagged resource's type, size as written, vCPUs of one instance,
    /// instances, region and subscription; never the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_resource_type: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_size: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_vcpus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_instances: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_region: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_subscription: Option<S>,
    // The sign-in review (token requests on login routes); the client is
    // `appid`, the grant `grant_type`, the token endpoint's answer
    // `upstream_status`. No secret, code, assertion, refresh token or
    // password is ever recorded.
    /// The tenant the token request's path names (a GUID, a domain,
    /// `common`, `organizations`, `consumers`; `other` for anything else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signin_tenant: Option<S>,
    /// How the client authenticated: `none`, `secret` or `assertion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<S>,
    /// The requested `scope` and `resource` (printable ASCII up to 512
    /// characters, else `other`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<S>,
}

/// One auxiliary token of a decision: its claims that the rules read, or
/// the reason it failed its checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "S: Serialize + AsRef<str>, L: Serialize"))]
pub struct AuxiliaryRecord<S = String, L = Vec<String>> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_error: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wids: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_cc: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acrs: Option<L>,
}

fn is_empty<S: AsRef<str>>(s: &S) -> bool {
    s.as_ref().is_empty()
}

/// The decision log's writer.
pub struct AuditLog {
    spool: Spool,
    instance: String,
}

impl AuditLog {
    /// Opens the configured sink; `None` when the log is off.
    pub fn open(config: &AuditConfig, metrics: AuditMetrics) -> Result<Option<Self>, AuditError> {
        let out: Box<dyn Write + Send> = match &config.sink {
            AuditSink::Off => return Ok(None),
            AuditSink::Stdout => Box::new(std::io::stdout()),
            AuditSink::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| AuditError { path: path.clone(), source })?,
            ),
        };
        let spool = Spool::start("mfagate-audit", out, BACKLOG, metrics)
            .map_err(|source| AuditError { path: PathBuf::from("(writer thread)"), source })?;
        Ok(Some(Self { spool, instance: config.instance.clone() }))
    }

    /// Checks, without creating or writing anything, that the configured
    /// sink could be opened: an existing file must open for appending, a
    /// new one needs an existing directory.
    pub fn check(config: &AuditConfig) -> Result<(), AuditError> {
        let AuditSink::File(path) = &config.sink else { return Ok(()) };
        let fail = |source| AuditError { path: path.clone(), source };
        if path.exists() {
            return OpenOptions::new().append(true).open(path).map(drop).map_err(fail);
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(fail(std::io::Error::other("the parent is not a directory"))),
            Err(e) => Err(fail(e)),
        }
    }

    /// The name this log's records carry.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Queues one record; never blocks.
    pub fn write<S: Serialize + AsRef<str>, L: Serialize>(&self, record: &AuditRecord<S, L>) {
        thread_local! {
            static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            if serde_json::to_writer(&mut *line, record).is_ok() {
                line.push(b'\n');
                self.spool.push(line);
            }
            line.shrink_to(64 * 1024);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_left_out_and_read_back() {
        let record = AuditRecord {
            timestamp: "2026-04-01T00:00:00.000Z".into(),
            route: "pc".into(),
            decision: "deny".into(),
            reason: "mfa_required".into(),
            amr: Some(vec!["pwd".into()]),
            correlation_id: "c".into(),
            status: 401,
            ..AuditRecord::default()
        };
        let line = serde_json::to_string(&record).unwrap();
        assert!(!line.contains("tid") && !line.contains("null"), "{line}");
        assert_eq!(serde_json::from_str::<AuditRecord>(&line).unwrap(), record);
    }
}
