//! Lines for a slow sink (a file, stderr), written by a thread of their own.
//!
//! Request tasks append whole lines to a shared buffer under a mutex held for
//! a copy; they never wait on I/O and rarely wake the writer: it is woken by
//! the first line after it went idle, then lingers `LINGER` to write what
//! accumulated in one batch (sooner once `EAGER_BYTES` are pending). When
//! `limit` bytes are pending, new lines are dropped and counted. Dropping the
//! `Spool` writes what is pending, flushes and stops the writer.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus::IntCounter;

/// How long the writer lets lines accumulate before writing them.
const LINGER: Duration = Duration::from_millis(10);
/// Pending bytes that make the writer write without waiting out `LINGER`.
const EAGER_BYTES: usize = 256 * 1024;
/// Buffer capacity kept between batches; more is given back after a burst.
const KEEP_CAPACITY: usize = 1024 * 1024;

/// Counters of lines, by what became of them.
#[derive(Clone)]
pub struct SpoolMetrics {
    pub written: IntCounter,
    pub dropped: IntCounter,
    pub failed: IntCounter,
}

impl SpoolMetrics {
    /// Counters registered nowhere, for a spool whose counts are not exported.
    pub fn detached() -> Self {
        let counter = |name: &str| IntCounter::new(name, name).expect("a valid metric name");
        Self { written: counter("written"), dropped: counter("dropped"), failed: counter("failed") }
    }
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: u64,
    /// The writer waits for a line, not for `LINGER`: the next line wakes it.
    idle: bool,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    limit: usize,
    metrics: SpoolMetrics,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves whole lines behind: carry on.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Appends lines; cheap to clone.
#[derive(Clone)]
pub struct SpoolHandle {
    shared: Arc<Shared>,
}

impl SpoolHandle {
    /// Queues `line` (which should end with a newline); false when it was
    /// dropped because `limit` bytes are already pending.
    pub fn push(&self, line: &[u8]) -> bool {
        let mut pending = self.shared.lock();
        if pending.closed || pending.bytes.len() + line.len() > self.shared.limit {
            drop(pending);
            self.shared.metrics.dropped.inc();
            return false;
        }
        let before = pending.bytes.len();
        pending.bytes.extend_from_slice(line);
        pending.lines += 1;
        let wake = pending.idle || (before < EAGER_BYTES && pending.bytes.len() >= EAGER_BYTES);
        pending.idle = false;
        drop(pending);
        if wake {
            self.shared.wake.notify_one();
        }
        true
    }
}

/// A `Write` for one line at a time (what `tracing_subscriber` hands each event).
impl Write for SpoolHandle {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SpoolHandle {
    type Writer = SpoolHandle;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Owns the writer thread.
pub struct Spool {
    handle: SpoolHandle,
    writer: Option<JoinHandle<()>>,
}

impl Spool {
    /// Starts a thread named `name` writing to `out`, at most `limit` bytes pending.
    pub fn start(name: &str, out: Box<dyn Write + Send>, limit: usize, metrics: SpoolMetrics) -> std::io::Result<Self> {
        let shared = Arc::new(Shared { pending: Mutex::new(Pending::default()), wake: Condvar::new(), limit, metrics });
        let for_writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new().name(name.into()).spawn(move || write_batches(&for_writer, out))?;
        Ok(Self { handle: SpoolHandle { shared }, writer: Some(writer) })
    }

    pub fn handle(&self) -> SpoolHandle {
        self.handle.clone()
    }

    pub fn push(&self, line: &[u8]) -> bool {
        self.handle.push(line)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.handle.shared.lock().closed = true;
        self.handle.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer: waits for lines, lets them accumulate, writes them in one go.
fn write_batches(shared: &Shared, mut out: Box<dyn Write + Send>) {
    let mut batch = Vec::new();
    let mut healthy = true;
    loop {
        let mut pending = shared.lock();
        while pending.bytes.is_empty() && !pending.closed {
            pending.idle = true;
            pending = shared.wake.wait(pending).unwrap_or_else(PoisonError::into_inner);
        }
        if !pending.closed && pending.bytes.len() < EAGER_BYTES {
            pending = shared.wake.wait_timeout(pending, LINGER).unwrap_or_else(PoisonError::into_inner).0;
        }
        let closed = pending.closed;
        std::mem::swap(&mut pending.bytes, &mut batch);
        let lines = std::mem::take(&mut pending.lines);
        pending.idle = false;
        drop(pending);
        if lines > 0 {
            match out.write_all(&batch).and_then(|()| out.flush()) {
                Ok(()) => {
                    shared.metrics.written.inc_by(lines);
                    healthy = true;
                }
                Err(e) => {
                    shared.metrics.failed.inc_by(lines);
                    if healthy {
                        // Not through tracing: the log itself may be what fails.
                        eprintln!("mfagate: cannot write a log: {e}");
                    }
                    healthy = false;
                }
            }
        }
        batch.clear();
        batch.shrink_to(KEEP_CAPACITY);
        if closed {
            let _ = out.flush();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read, and make fail.
    #[derive(Clone, Default)]
    struct Sink {
        data: Arc<Mutex<Vec<u8>>>,
        fail: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::other("disk full"));
            }
            self.data.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn metrics() -> SpoolMetrics {
        SpoolMetrics::detached()
    }

    #[test]
    fn lines_arrive_whole_and_in_order_and_drop_flushes() {
        let sink = Sink::default();
        let m = metrics();
        let spool = Spool::start("test-spool", Box::new(sink.clone()), 1 << 20, m.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = spool.handle();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        assert!(h.push(format!("t{t} {i}\n").as_bytes()));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(spool);
        let text = String::from_utf8(sink.data.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 4000);
        for t in 0..4 {
            let mine: Vec<usize> =
                text.lines().filter_map(|l| l.strip_prefix(&format!("t{t} "))).map(|n| n.parse().unwrap()).collect();
            assert_eq!(mine, (0..1000).collect::<Vec<_>>());
        }
        assert_eq!((m.written.get(), m.dropped.get(), m.failed.get()), (4000, 0, 0));
    }

    #[test]
    fn a_lone_line_is_written_without_waiting_for_more() {
        let sink = Sink::default();
        let spool = Spool::start("test-spool", Box::new(sink.clone()), 1 << 20, metrics()).unwrap();
        spool.push(b"one\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.data.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&*sink.data.lock().unwrap(), b"one\n");
    }

    #[test]
    fn beyond_the_limit_lines_are_dropped_and_counted() {
        let sink = Sink::default();
        sink.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let m = metrics();
        let spool = Spool::start("test-spool", Box::new(sink.clone()), 10, m.clone()).unwrap();
        // Whatever the writer took is failed; what did not fit is dropped.
        let accepted = (0..5).filter(|_| spool.push(b"12345\n")).count() as u64;
        drop(spool);
        assert!(accepted >= 1);
        assert_eq!(m.dropped.get(), 5 - accepted);
        assert_eq!(m.failed.get(), accepted);
        assert_eq!(m.written.get(), 0);
    }
}
