//! An upstream that misbehaves on purpose, over TLS and HTTP/1.1, written
//! byte by byte. The request path picks the fault:
//!
//! - `/ok`: a proper 200 with a 5-byte body;
//! - `/never`: reads the request and never answers;
//! - `/late`: answers after 30 s (past any test's `upstream_timeout`);
//! - `/garbage`: answers bytes that are not HTTP;
//! - `/reset`: resets the connection (RST) before answering;
//! - `/reset-mid-body`: sends headers and part of the body, then resets;
//! - `/stall-mid-body`: sends headers and part of the body, then goes quiet.
//!
//! It counts the connections open on its side, to show none leaks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct Faulty {
    pub addr: SocketAddr,
    open: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Faulty {
    pub async fn start(tls: Arc<rustls::ServerConfig>) -> Self {
        let mut tls = (*tls).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (o, r) = (Arc::clone(&open), Arc::clone(&requests));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                o.fetch_add(1, Ordering::SeqCst);
                let guard = Open(Arc::clone(&o));
                let (acceptor, r) = (acceptor.clone(), Arc::clone(&r));
                tokio::spawn(async move {
                    let _guard = guard;
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    loop {
                        let Some(path) = read_head(&mut tls).await else { return };
                        r.fetch_add(1, Ordering::SeqCst);
                        let reset = |tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>| {
                            let (tcp, _) = tls.into_inner();
                            #[allow(deprecated)]
                            let _ = tcp.set_linger(Some(Duration::ZERO));
                            drop(tcp);
                        };
                        match path.as_str() {
                            "/ok" => {
                                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfine!").await;
                            }
                            "/never" => return hold(&mut tls).await,
                            "/late" => {
                                tokio::select! {
                                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                                    () = hold(&mut tls) => return,
                                }
                                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate").await;
                            }
                            "/garbage" => {
                                let _ = tls.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02 not http\r\n\r\n").await;
                                let _ = tls.shutdown().await;
                                return;
                            }
                            "/reset" => return reset(tls),
                            "/reset-mid-body" => {
                                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n").await;
                                let _ = tls.write_all(&[b'x'; 1000]).await;
                                let _ = tls.flush().await;
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                return reset(tls);
                            }
                            "/stall-mid-body" => {
                                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n").await;
                                let _ = tls.write_all(&[b'x'; 1000]).await;
                                let _ = tls.flush().await;
                                return hold(&mut tls).await;
                            }
                            _ => {
                                let _ = tls.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
                            }
                        }
                    }
                });
            }
        });
        Self { addr, open, requests }
    }

    /// Connections open on the upstream's side now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request head (bodies are not expected) and returns its path.
async fn read_head<S: AsyncReadExt + Unpin>(s: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head).lines().next()?.to_string();
    line.split(' ').nth(1).map(str::to_string)
}

/// Keeps the connection open, silent, until the peer closes it.
async fn hold<S: AsyncReadExt + Unpin>(s: &mut S) {
    let mut buf = [0u8; 1024];
    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
}
