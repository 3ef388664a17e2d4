//! Logging: tracing to stderr, as text or JSON lines. `RUST_LOG` overrides
//! `log.level`. Lines go through a `spool`, so that logging a request never
//! waits on a write to stderr; when stderr falls `BACKLOG` bytes behind,
//! lines are dropped. Every event is one line in either format: journald,
//! container runtimes and log shippers read a line as an event, so a line
//! break inside a message or field is written as `\n`.

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
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
        Some(spool) => BoxMakeWriter::new(OneLine(spool.handle(), ansi)),
        None => BoxMakeWriter::new(OneLine(std::io::stderr, ansi)),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = if log.json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
    LogGuard { _writer: spool }
}

/// Writes each event on one line. The formatter hands over one whole event
/// per write, ending in a newline; a line break before that end (a
/// multi-line error, say) becomes `\n` (`\r` likewise). So do the other
/// characters that break a line for some reader (a vertical tab, a form
/// feed, the file, group and record separators, NEL, U+2028 and U+2029) and
/// the other C0 controls (an escape sequence would drive the terminal that
/// shows the log): each becomes `\u` and four hex digits, which JSON reads
/// back as the character. The JSON encoder escapes C0 controls already, not
/// NEL, U+2028 or U+2029. With `ansi` (stderr is a terminal) the escape
/// character stays: the formatter colours with it.
struct OneLine<M>(M, bool);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter(self.0.make_writer(), self.1)
    }
}

struct OneLineWriter<W>(W, bool);

/// The length of the character at the start of `bytes` that must be
/// escaped, and the character; None when it may stay.
fn to_escape(bytes: &[u8], ansi: bool) -> Option<(usize, u32)> {
    match bytes {
        [b'\t', ..] => None,
        [0x1b, ..] if ansi => None,
        [b, ..] if *b < 0x20 || *b == 0x7f => Some((1, u32::from(*b))),
        [0xc2, 0x85, ..] => Some((2, 0x85)),
        [0xe2, 0x80, b @ (0xa8 | 0xa9), ..] => Some((3, 0x2000 | u32::from(*b & 0x3f))),
        _ => None,
    }
}

impl<W: Write> Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        if !(0..body.len()).any(|i| to_escape(&body[i..], self.1).is_some()) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut line = Vec::with_capacity(buf.len() + 16);
        let mut i = 0;
        while i < body.len() {
            match to_escape(&body[i..], self.1) {
                Some((_, 0x0a)) => line.extend_from_slice(b"\\n"),
                Some((_, 0x0d)) => line.extend_from_slice(b"\\r"),
                Some((len, c)) => {
                    line.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                    i += len;
                    continue;
                }
                None => line.push(body[i]),
            }
            i += 1;
        }
        if body.len() < buf.len() {
            line.push(b'\n');
        }
        self.0.write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `event` writes through `OneLine` in text (or JSON) format.
    fn logged(json: bool, event: impl FnOnce()) -> String {
        let sink = Sink::default();
        let out = sink.clone();
        let writer = OneLine(move || sink.clone(), false);
        let builder = tracing_subscriber::fmt().with_writer(writer).with_ansi(false);
        let dispatch = if json {
            tracing::Dispatch::new(builder.json().flatten_event(true).finish())
        } else {
            tracing::Dispatch::new(builder.finish())
        };
        tracing::dispatcher::with_default(&dispatch, event);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_multi_line_error_is_one_line_in_text_and_json() {
        let error = "TOML parse error at line 2, column 22\n  |\n2 | listen = \"127.0.0.1:0\n  |                      ^\r\ninvalid basic string";
        let text = logged(false, || tracing::error!(%error, "configuration reload rejected\nsecond line"));
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with('\n') && !text.contains('\r'), "{text:?}");
        assert!(text.contains(r"reload rejected\nsecond line") && text.contains(r"column 22\n  |"), "{text}");
        let json = logged(true, || tracing::error!(%error, "configuration reload rejected"));
        assert_eq!(json.matches('\n').count(), 1, "{json}");
        let event: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(event["error"], error, "JSON keeps the text exactly");
    }

    #[test]
    fn single_line_events_pass_unchanged() {
        let text = logged(false, || tracing::info!(listen = "127.0.0.1:8443", "mfagate started"));
        assert!(text.ends_with("mfagate started listen=\"127.0.0.1:8443\"\n"), "{text}");
    }
}
