//! Logging: tracing to stderr, as text or JSON lines. `RUST_LOG` overrides
//! `log.level`. Lines go through a `spool`, so that logging a request never
//! waits on a write to stderr; when stderr falls `BACKLOG` bytes behind,
//! lines are dropped.

use std::io::IsTerminal;

use prometheus::IntCounter;
use tracing_subscriber::EnvFilter;

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
    let counter = |name: &str| IntCounter::new(name, name).ok();
    let metrics = counter("log_written").zip(counter("log_dropped")).zip(counter("log_failed"));
    let spool = metrics.and_then(|((written, dropped), failed)| {
        let metrics = SpoolMetrics { written, dropped, failed };
        Spool::start("mfagate-log", Box::new(std::io::stderr()), BACKLOG, metrics).ok()
    });
    let ansi = std::io::stderr().is_terminal();
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match &spool {
        Some(spool) => {
            let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(spool.handle()).with_ansi(ansi);
            if log.json { builder.json().flatten_event(true).try_init() } else { builder.try_init() }
        }
        None => {
            let builder =
                tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
            if log.json { builder.json().flatten_event(true).try_init() } else { builder.try_init() }
        }
    };
    LogGuard { _writer: spool }
}
