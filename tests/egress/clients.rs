//! The egress tests' clients and peers: curl through the proxy, a CONNECT
//! sent with hyper's client (to read the proxy's own answer, which curl does
//! not show), a TLS server with a CA of its own (a blind tunnel's target)
//! and a plain HTTP server (absolute-form forwarding).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::support::{Pki, TestEnv, pki, serve};

/// Proxy-related variables of this machine's environment that would change
/// what the clients do; every client here gets them removed.
pub const PROXY_ENV: [&str; 10] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
];

/// What curl reported.
#[derive(Debug)]
pub struct Curl {
    /// The final response's status (0 when there was none).
    pub code: u16,
    /// The proxy's answer to CONNECT (0 when none was sent).
    pub connect: u16,
    /// `1.1` or `2`.
    pub version: String,
    pub body: String,
    pub stderr: String,
    pub exit: i32,
}

impl Curl {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// `curl --proxy http://EGRESS args...`, as a process.
pub async fn curl(env: &TestEnv, args: &[&str]) -> Curl {
    let proxy = format!("http://{}", env.egress.expect("egress proxy configured"));
    let body = tempfile::NamedTempFile::new_in(env.dir.path()).unwrap();
    let mut cmd = tokio::process::Command::new(crate::support::setup::program("curl"));
    cmd.args(["-sS", "--max-time", "30", "--proxy", &proxy, "-o"])
        .arg(body.path())
        .args(["-w", "%{http_code} %{http_connect} %{http_version}"])
        .args(args);
    for var in PROXY_ENV {
        cmd.env_remove(var);
    }
    let out = cmd.output().await.expect("curl runs");
    let written = String::from_utf8(out.stdout).unwrap();
    let mut fields = written.split(' ');
    let mut next = || fields.next().unwrap_or_default().to_string();
    let (code, connect, version) = (next(), next(), next());
    Curl {
        code: code.parse().unwrap_or(0),
        connect: connect.parse().unwrap_or(0),
        version,
        body: std::fs::read_to_string(body.path()).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        exit: out.status.code().unwrap_or(-1),
    }
}

/// The interception CA's PEM file, for `--cacert`.
pub fn egress_ca(env: &TestEnv) -> String {
    env.egress_ca.as_ref().expect("egress proxy configured").display().to_string()
}

pub fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// The proxy's answer to `CONNECT target`: status, headers, body.
pub async fn connect(env: &TestEnv, target: &str, credentials: Option<&str>) -> (u16, HeaderMap, Bytes) {
    let tcp = tokio::net::TcpStream::connect(env.egress.unwrap()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn.with_upgrades());
    let mut req = Request::builder().method("CONNECT").uri(target).header("host", target);
    if let Some(c) = credentials {
        let encoded = base64::engine::general_purpose::STANDARD.encode(c);
        req = req.header("proxy-authorization", format!("Basic {encoded}"));
    }
    let rsp = sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    let status = rsp.status().as_u16();
    let headers = rsp.headers().clone();
    let body = if status == 200 { Bytes::new() } else { rsp.into_body().collect().await.unwrap().to_bytes() };
    (status, headers, body)
}

/// A tunnel through the proxy, held open: the upgraded connection after `CONNECT target` got 200.
pub async fn open_tunnel(env: &TestEnv, target: &str) -> TokioIo<hyper::upgrade::Upgraded> {
    let tcp = tokio::net::TcpStream::connect(env.egress.unwrap()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn.with_upgrades());
    let req = Request::builder().method("CONNECT").uri(target).header("host", target);
    let rsp = sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    assert_eq!(rsp.status(), 200, "CONNECT {target}");
    TokioIo::new(hyper::upgrade::on(rsp).await.unwrap())
}

/// A TLS server whose certificate comes from a CA of its own.
pub struct TlsPeer {
    pub addr: SocketAddr,
    pub ca_path: PathBuf,
    pub ca_pem: String,
    /// The server's own leaf certificate (DER).
    pub leaf_der: Vec<u8>,
    hits: Arc<AtomicUsize>,
}

impl TlsPeer {
    pub async fn start(dir: &Path, name: &str) -> Self {
        let dir = dir.join(format!("peer-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki::new(&dir);
        let leaf = pki.leaf(&dir, "peer", &[name]);
        let leaf_der = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap().to_vec();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        let addr = serve::http(Some(pki::server_config(&leaf)), move |_req: Request<hyper::body::Incoming>| {
            h.fetch_add(1, Ordering::SeqCst);
            async { Response::new(Full::new(Bytes::from_static(b"served by the tunnel's own target"))) }
        })
        .await;
        Self { addr, ca_path: pki.ca_path.clone(), ca_pem: pki.ca_pem.clone(), leaf_der, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A plain HTTP server that records what it received.
#[derive(Clone)]
pub struct PlainPeer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

impl PlainPeer {
    pub async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let addr = serve::http(None, move |req: Request<hyper::body::Incoming>| {
            let target = req.uri().to_string();
            s.lock().unwrap().push((target, req.headers().clone()));
            async { Response::new(Full::new(Bytes::from_static(b"plain peer"))) }
        })
        .await;
        Self { addr, seen }
    }

    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The request target and headers of the last request.
    pub fn last(&self) -> (String, HeaderMap) {
        self.seen.lock().unwrap().last().cloned().expect("plain peer saw no request")
    }
}

/// A plain TCP connection to the proxy after `CONNECT target` got 200: the
/// tunnel as raw bytes, for first flights no TLS client would send.
pub async fn raw_tunnel(env: &TestEnv, target: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(env.egress.unwrap()).await.unwrap();
    tcp.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes()).await.unwrap();
    // Byte by byte: nothing after the answer's head may be consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "the proxy closed during CONNECT {target}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "CONNECT {target}: {head}");
    tcp
}

/// The first flight of a rustls client for `server_name` (a DNS name, or
/// an IP address, for which no server name is sent).
pub fn client_hello(server_name: &str) -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(mfagate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// Reads until the far end closes (`true`) or 5 s pass with it still open
/// (`false`); what was read comes back too.
pub async fn read_until_closed(io: &mut (impl tokio::io::AsyncRead + Unpin)) -> (bool, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (true, seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (false, seen),
        }
    }
}

/// A TCP relay in front of `to` that counts the bytes it passes on: how much
/// of a tunnel's traffic reached its target.
pub struct CountingRelay {
    pub addr: SocketAddr,
    received: Arc<AtomicUsize>,
}

impl CountingRelay {
    pub async fn start(to: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((from, _)) = listener.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let Ok(target) = tokio::net::TcpStream::connect(to).await else { return };
                    let (mut from_read, mut from_write) = from.into_split();
                    let (mut to_read, mut to_write) = target.into_split();
                    let upstream = async {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = [0u8; 4096];
                        while let Ok(n @ 1..) = from_read.read(&mut buf).await {
                            count.fetch_add(n, Ordering::SeqCst);
                            if to_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut to_write).await;
                    };
                    let downstream = async {
                        let _ = tokio::io::copy(&mut to_read, &mut from_write).await;
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut from_write).await;
                    };
                    tokio::join!(upstream, downstream);
                });
            }
        });
        Self { addr, received }
    }

    /// Bytes passed on to the target so far, over every connection.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}
