//! The decision log: one JSON line per decision, to stdout or a file.
//! It records the policy-relevant claims (so that `mfagate replay` can
//! re-run a decision under another configuration), never the token: `uti`
//! and the user's name are kept only as SHA-256 fingerprints.
//!
//! Lines are written by a thread of their own through a bounded queue, so
//! the request path never waits on I/O; when the queue is full a line is
//! dropped and counted. Dropping the log flushes and closes it.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use prometheus::IntCounter;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::{AuditConfig, AuditSink};

/// Lines waiting for the writer before new ones are dropped.
const QUEUE: usize = 8192;

#[derive(Debug, thiserror::Error)]
#[error("cannot open the decision log {path}: {source}")]
pub struct AuditError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Counters for decision log lines.
#[derive(Clone)]
pub struct AuditMetrics {
    pub written: IntCounter,
    pub dropped: IntCounter,
    pub failed: IntCounter,
}

/// One decision. Optional fields are left out when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    pub route: String,
    /// `allow`, `deny`, `would_deny` or `exempt`.
    pub decision: String,
    /// A reason code; `none` for `allow`.
    pub reason: String,
    /// The route's mode at that instant (`enforce` or `report-only`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// Whether the token's signature was verified (absent: no claims).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// `public`, `secret`, `certificate` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// `app_user` or `app_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// `1.0`, `2.0` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_cc: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acrs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uti_sha256: Option<String>,
    /// Of the lower-cased `upn` (or `unique_name`, `preferred_username`, or
    /// a password grant's `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn_sha256: Option<String>,
    /// Partner Center's `{customer-id}` from the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The `Authorization` scheme (`bearer`, `basic`, `none`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// A token request's grant type (login routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    /// The reason of the exemption that let the request through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemption: Option<String>,
    /// The reason of an exemption that matched but had expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_exemption: Option<String>,
    pub correlation_id: String,
    #[serde(default)]
    pub request_id: String,
    /// The status the client got.
    pub status: u16,
    /// The upstream's status, when the request was forwarded and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_error: Option<String>,
    /// From forwarding to the upstream's response headers (or its failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_latency_us: Option<u64>,
    /// To the response headers sent to the client.
    pub latency_us: u64,
}

/// Lower-case hexadecimal SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A user name's fingerprint: names are case-insensitive, so lower-cased first.
pub fn user_fingerprint(name: &str) -> String {
    sha256_hex(name.to_lowercase().as_bytes())
}

/// The decision log's writer.
pub struct AuditLog {
    queue: Option<SyncSender<Vec<u8>>>,
    writer: Option<JoinHandle<()>>,
    metrics: AuditMetrics,
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
        let (queue, lines) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let counters = metrics.clone();
        let writer = std::thread::Builder::new()
            .name("mfagate-audit".into())
            .spawn(move || write_lines(BufWriter::new(out), lines, counters))
            .map_err(|source| AuditError { path: PathBuf::from("(writer thread)"), source })?;
        Ok(Some(Self { queue: Some(queue), writer: Some(writer), metrics }))
    }

    /// Queues one record; never blocks.
    pub fn write(&self, record: &AuditRecord) {
        let Some(queue) = &self.queue else { return };
        let Ok(mut line) = serde_json::to_vec(record) else { return };
        line.push(b'\n');
        match queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.metrics.dropped.inc(),
        }
    }
}

impl Drop for AuditLog {
    /// Lets the writer drain the queue and flush before the process goes on.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Writes until every sender is gone, flushing whenever the queue is empty.
fn write_lines(mut out: BufWriter<Box<dyn Write + Send>>, lines: mpsc::Receiver<Vec<u8>>, metrics: AuditMetrics) {
    let mut healthy = true;
    while let Ok(first) = lines.recv() {
        let mut batch = vec![first];
        batch.extend(std::iter::from_fn(|| lines.try_recv().ok()).take(QUEUE));
        let n = batch.len() as u64;
        match batch.iter().try_for_each(|line| out.write_all(line)).and_then(|()| out.flush()) {
            Ok(()) => {
                metrics.written.inc_by(n);
                healthy = true;
            }
            Err(e) => {
                metrics.failed.inc_by(n);
                if healthy {
                    warn!(error = %e, "cannot write the decision log");
                }
                healthy = false;
            }
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            user_fingerprint("Admin@Contoso.onmicrosoft.com"),
            user_fingerprint("admin@contoso.onmicrosoft.com")
        );
    }

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
