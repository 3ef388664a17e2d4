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
    let mut cmd = tokio::process::Command::new("curl");
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
