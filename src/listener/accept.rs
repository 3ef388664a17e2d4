//! The one accept loop of every listener, and the `Drain` each connection
//! is handed: told when the listener stops, and when the grace period ends.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::{TaskTracker, task_tracker::TaskTrackerToken};
use tracing::warn;

/// What a connection is told of its listener's end: `stop` when the
/// listener closes (finish what is in flight, close gracefully), `abort`
/// when the grace period is over (close now). Every task a connection
/// starts that must be waited for (a tunnel) holds a clone: the drain waits
/// until the last clone is dropped.
#[derive(Clone)]
pub struct Drain {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
    _counted: TaskTrackerToken,
}

/// Accepts until `stop`, starting the task `on_connection` returns for each
/// connection (none: the connection is dropped), then lets the tasks and
/// every `Drain` handed out finish for `grace()` (read when the listener
/// stops, so that a reload can change it) before aborting them.
pub async fn accept<G, F, Fut>(listener: TcpListener, stop: CancellationToken, grace: G, mut on_connection: F)
where
    G: FnOnce() -> Duration,
    F: FnMut(TcpStream, SocketAddr, Drain) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tracker = TaskTracker::new();
    let abort = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let drain = Drain { stop: stop.clone(), abort: abort.clone(), _counted: tracker.token() };
                if let Some(task) = on_connection(tcp, peer, drain) {
                    tracker.spawn(task);
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, never exit.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    tracker.close();
    let grace = grace();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!(?grace, open = tracker.len(), "grace period over; closing connections still open");
        abort.cancel();
        tracker.wait().await;
    }
}
