//! TLS handshakes with the gateway's own listener configuration
//! (`mfagate::tls::server`, session tickets included): client and server in
//! one thread, their bytes passed in memory, so the figure is the CPU both
//! ends spend. A full TLS 1.3 handshake against a resumed one (a ticket from
//! the previous connection), for the built-in self-signed certificate
//! (ECDSA P-256) and an RSA-2048 one, as most corporate CAs issue.
//!
//!     cargo bench --bench tls_handshake

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mfagate::config::TlsSource;
use rustls::client::Resumption;
use rustls::{ClientConfig, ClientConnection, Connection, HandshakeKind, RootCertStore, ServerConnection};
use rustls_pki_types::CertificateDer;

/// Passes what `from` has to send to `to`, and lets `to` process it.
fn pass(from: &mut Connection, to: &mut Connection) {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).unwrap();
    }
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).unwrap();
    }
    to.process_new_packets().unwrap();
}

/// One handshake, until the client holds the server's tickets.
fn handshake(client: &Arc<ClientConfig>, server: &Arc<rustls::ServerConfig>) -> HandshakeKind {
    let name = "localhost".try_into().unwrap();
    let mut c = Connection::Client(ClientConnection::new(Arc::clone(client), name).unwrap());
    let mut s = Connection::Server(ServerConnection::new(Arc::clone(server)).unwrap());
    while c.is_handshaking() || s.is_handshaking() || s.wants_write() || c.wants_write() {
        pass(&mut c, &mut s);
        pass(&mut s, &mut c);
    }
    match c {
        Connection::Client(c) => c.handshake_kind().unwrap(),
        Connection::Server(_) => unreachable!(),
    }
}

fn client(root: CertificateDer<'static>, resume: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root).unwrap();
    let mut config = ClientConfig::builder_with_provider(mfagate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

/// A certificate for `localhost` with a key of `alg`, written as PEM files.
fn source(
    dir: &std::path::Path,
    name: &str,
    alg: &'static rcgen::SignatureAlgorithm,
) -> (TlsSource, CertificateDer<'static>) {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (TlsSource::Files { cert: cert_path, key: key_path }, cert.der().clone())
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let tickets = mfagate::tls::ticketer().unwrap();
    let mut group = c.benchmark_group("tls13_handshake");
    // ECDSA P-256 is also what the built-in self-signed certificate uses.
    for (name, alg) in [("ecdsa_p256", &rcgen::PKCS_ECDSA_P256_SHA256), ("rsa_2048", &rcgen::PKCS_RSA_SHA256)] {
        let (source, root) = source(dir.path(), name, alg);
        let server = mfagate::tls::server(&source, &tickets).unwrap().config;
        let full = client(root.clone(), false);
        assert_eq!(handshake(&full, &server), HandshakeKind::Full);
        group.bench_function(format!("{name}/full"), |b| b.iter(|| handshake(&full, &server)));
        let resuming = client(root, true);
        handshake(&resuming, &server);
        assert_eq!(handshake(&resuming, &server), HandshakeKind::Resumed);
        group.bench_function(format!("{name}/resumed"), |b| {
            b.iter(|| assert_eq!(handshake(&resuming, &server), HandshakeKind::Resumed))
        });
    }
    group.finish();
}

criterion_group!(tls_handshake, benches);
criterion_main!(tls_handshake);
