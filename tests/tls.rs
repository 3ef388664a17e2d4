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

/// A listener key that every local user can read (mode 0644, what a plain
/// copy under the usual umask gives) is refused at start, as the egress
/// CA's key should be: whoever reads it impersonates the gateway to the
/// automation. The shipped manifests mount it 0440; nothing holds a host
/// install to that.
#[tokio::test]
#[ignore = "server.tls_key (and egress.ca_key) are loaded whatever their mode: a key readable or writable by other users (mode & 0o006) should fail the start with exit 78 naming the key, but the test support (tests/support/pki.rs and the suites that copy or write keys) and `mfagate demo` (src/tools/demo.rs) write keys with the default umask (0644), so they must first write them 0600"]
async fn a_listener_key_readable_by_other_users_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pki = support::Pki::new(dir.path());
    let leaf = pki.leaf(dir.path(), "server", &["localhost"]);
    std::fs::set_permissions(&leaf.key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/mfagate.toml")).unwrap();
    let config = shipped
        .replace("# tls_cert = \"certs/server.pem\"", &format!("tls_cert = {}", support::toml_str(&leaf.cert_path)))
        .replace("# tls_key = \"certs/server.key\"", &format!("tls_key = {}", support::toml_str(&leaf.key_path)))
        .replace("127.0.0.1:8443", "127.0.0.1:0")
        .replace("127.0.0.1:9090", "127.0.0.1:0");
    assert!(config.contains("tls_key = "), "the shipped configuration names the key as expected");
    let config = support::write(dir.path(), "mfagate.toml", &config);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mfagate"))
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
    let Ok(status) = status else {
        child.kill().await.unwrap();
        panic!("the gateway started with a key readable by every user");
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    assert_eq!(status.unwrap().code(), Some(78), "{stderr}");
    assert!(stderr.contains("server.tls_key"), "{stderr}");
}
