//! Raw TLS sockets to the gateway: bytes written exactly as given, answers
//! read back as bytes, for requests no HTTP client would send.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A TLS connection trusting `ca_pem`, offering `alpn`.
pub async fn connect(addr: SocketAddr, ca_pem: &str, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    handshake(TcpStream::connect(addr).await.unwrap(), ca_pem, alpn).await
}

/// The TLS handshake for `localhost` on `tcp`, trusting `ca_pem`, offering `alpn`.
pub async fn handshake(tcp: TcpStream, ca_pem: &str, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    handshake_as(tcp, "localhost", ca_pem, alpn).await
}

/// The TLS handshake for `name` on any stream (a tunnel, say), trusting
/// `ca_pem`, offering `alpn`.
pub async fn handshake_as<S>(io: S, name: &str, ca_pem: &str, alpn: &[&[u8]]) -> TlsStream<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(mfagate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(name.to_string()).unwrap();
    TlsConnector::from(Arc::new(config)).connect(name, io).await.unwrap()
}

/// What came back on a raw connection.
#[derive(Debug)]
pub struct Answer {
    pub bytes: Vec<u8>,
    /// The server closed the connection (rather than the read timing out).
    pub closed: bool,
}

impl Answer {
    /// The status codes of every response in the bytes, in order.
    pub fn statuses(&self) -> Vec<u16> {
        let text = String::from_utf8_lossy(&self.bytes);
        text.match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| text.get(i + 9..i + 12).and_then(|s| s.parse().ok()))
            .collect()
    }

    pub fn status(&self) -> Option<u16> {
        self.statuses().first().copied()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The JSON body of the first response, when it has one.
    pub fn json(&self) -> Option<serde_json::Value> {
        let text = self.text();
        let start = text.find("\r\n\r\n")? + 4;
        let end = text[start..].find("\r\n\r\n").map_or(text.len(), |e| start + e);
        serde_json::from_str(text[start..end].trim()).ok()
    }
}

/// Writes `request` on a fresh HTTP/1.1 connection and reads until the
/// server closes it or `quiet` passes without a byte.
pub async fn send(addr: SocketAddr, ca_pem: &str, request: &[u8], quiet: Duration) -> Answer {
    let mut tls = connect(addr, ca_pem, &[b"http/1.1"]).await;
    tls.write_all(request).await.unwrap();
    tls.flush().await.unwrap();
    read_until_closed(&mut tls, quiet).await
}

pub async fn read_until_closed<S: AsyncReadExt + Unpin>(stream: &mut S, quiet: Duration) -> Answer {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(quiet, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Answer { bytes, closed: true },
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => return Answer { bytes, closed: false },
        }
    }
}

/// Reads until a response head has arrived (for at most 20 s); the
/// connection stays open.
pub async fn read_head<S: AsyncReadExt + Unpin>(stream: &mut S) -> Answer {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Answer { bytes, closed: true },
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    Answer { bytes, closed: false }
}
