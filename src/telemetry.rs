//! Logging: tracing to stderr, as text or JSON lines. `RUST_LOG` overrides
//! `log.level`. Lines go through a `spool`, so that logging a request never
//! waits on a write to stderr; when stderr falls `BACKLOG` bytes behind,
//! lines are dropped.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::LogConfig;
use crate::spool::{Spool, SpoolMetrics};

const BACKLOG: usize = 8 * 1024 * 1024;

/// Keeps the log writer; dropping it writes what is pending.
pub struct LogGuard {
    _writer: Option<Spool>,
}

/// Installs the subscriber. Keep the guard until the process ends.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(log: &LogConfig) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    // The log's own counts are not exported: it starts before the metrics do.
    let spool = Spool::start("mfagate-log", Box::new(std::io::stderr()), BACKLOG, SpoolMetrics::detached()).ok();
    let ansi = std::io::stderr().is_terminal();
    // Straight to stderr only if the writer thread could not start.
    let writer = match &spool {
        Some(spool) => BoxMakeWriter::new(spool.handle()),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = if log.json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
    LogGuard { _writer: spool }
}
