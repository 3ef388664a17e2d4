//! TLS on the gateway's listener: a client that reconnects resumes its
//! TLS 1.3 session (tickets, whose keys outlive a reload) instead of paying
//! for a full handshake each time; TLS 1.2 clients resume too.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::ClientConfig;
use rustls::{HandshakeKind, ProtocolVersion, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use support::TestEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client trusting `ca_pem` that keeps sessions (rustls' default store).
fn client(ca_pem: &str, version: &'static rustls::SupportedProtocolVersion) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let mut config = ClientConfig::builder_with_provider(mfagate::tls::provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One connection with one request; how its handshake went.
async fn connect(config: &Arc<ClientConfig>, addr: SocketAddr) -> (HandshakeKind, ProtocolVersion) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::clone(config)).connect(name, tcp).await.unwrap();
    let (_, conn) = tls.get_ref();
    let (kind, version) = (conn.handshake_kind().unwrap(), conn.protocol_version().unwrap());
    // TLS 1.3 tickets follow the handshake: reading the answer takes them in.
    tls.write_all(b"GET /v1/customers HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    assert!(answer.starts_with(b"HTTP/1.1 401"), "{}", String::from_utf8_lossy(&answer));
    (kind, version)
}

#[tokio::test]
async fn sessions_resume_and_survive_a_reload() {
    let env = TestEnv::setup().start().await;
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = client(&env.pki.ca_pem, version);
        let (first, negotiated) = connect(&config, env.addr).await;
        assert_eq!((first, negotiated), (HandshakeKind::Full, version.version));
        for i in 0..4 {
            assert_eq!(connect(&config, env.addr).await.0, HandshakeKind::Resumed, "{negotiated:?}, reconnect {i}");
        }
    }
    // A reload builds a new TLS configuration; the ticket keys stay.
    let config = client(&env.pki.ca_pem, &rustls::version::TLS13);
    assert_eq!(connect(&config, env.addr).await.0, HandshakeKind::Full);
    env.reloader.reload().await.unwrap();
    assert_eq!(connect(&config, env.addr).await.0, HandshakeKind::Resumed, "after a reload");
}
