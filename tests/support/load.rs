//! A request load for reload and drain tests: `concurrency` workers share
//! `total` requests, half over HTTP/1.1 and half over HTTP/2, and every
//! outcome is kept with the time it completed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Outcome {
    pub done: Instant,
    /// The status, or the client's error (connection refused, closed…).
    pub result: Result<u16, String>,
}

pub struct Load {
    pub sent: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Outcome>>>,
}

impl Load {
    /// Starts the workers against `url` with `token`. A worker stops at its
    /// first error when `stop_on_error` (the listener is gone).
    pub fn start(
        ca_pem: &str,
        url: String,
        token: String,
        total: usize,
        concurrency: usize,
        stop_on_error: bool,
    ) -> Self {
        let sent = Arc::new(AtomicUsize::new(0));
        let h1 = super::client(ca_pem, true);
        let h2 = super::client(ca_pem, false);
        let tasks = (0..concurrency)
            .map(|i| {
                let client = if i % 2 == 0 { h1.clone() } else { h2.clone() };
                let (url, token, sent) = (url.clone(), token.clone(), Arc::clone(&sent));
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    while sent.fetch_add(1, Ordering::SeqCst) < total {
                        let result = match client.get(&url).bearer_auth(&token).send().await {
                            Ok(rsp) => {
                                let status = rsp.status().as_u16();
                                match rsp.bytes().await {
                                    Ok(_) => Ok(status),
                                    Err(e) => Err(format!("body: {e:?}")),
                                }
                            }
                            Err(e) => Err(format!("{e:?}")),
                        };
                        let failed = result.is_err();
                        outcomes.push(Outcome { done: Instant::now(), result });
                        if failed && stop_on_error {
                            break;
                        }
                    }
                    outcomes
                })
            })
            .collect();
        Self { sent, tasks }
    }

    pub async fn finish(self) -> Vec<Outcome> {
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await.unwrap());
        }
        all
    }
}
