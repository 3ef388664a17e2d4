//! rustls configuration: the downstream listener's certificate (from files, or
//! generated for `localhost` when none is configured), its session tickets,
//! and the client side used for upstreams and key sets (public web roots
//! plus optional extra roots).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::ProducesTickets;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::TlsSource;

mod validity;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    /// The listener's private key (`server.tls_key`).
    #[error("{path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{path}: no certificate found")]
    NoCertificate { path: PathBuf },
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("generating the self-signed certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("no random bytes for the session ticket keys: {0}")]
    Tickets(#[source] rustls::Error),
}

/// How long the built-in self-signed certificate is valid, from the start
/// that made it.
pub const SELF_SIGNED_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
/// Its subject's common name: what it is, for whoever inspects it.
pub const SELF_SIGNED_NAME: &str = "mfagate self-signed certificate (made at start; set server.tls_cert)";

/// The crypto provider used everywhere, set explicitly so that the process
/// never depends on which provider another crate might have enabled.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The listener's TLS configuration and a description of its certificate.
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate (DER), as colon-separated hex.
    pub fingerprint: String,
    pub self_signed: bool,
    /// Unix time at which the leaf certificate expires.
    pub not_after: Option<i64>,
}

/// The keys that seal session tickets (RFC 8446 §4.6.1; RFC 5077 for TLS
/// 1.2): random, replaced every 6 hours, a ticket valid for at most 12.
/// Made once per process and given to every listener configuration built
/// from it, so that a reload does not end the sessions clients hold.
pub fn ticketer() -> Result<Arc<dyn ProducesTickets>, TlsError> {
    rustls::crypto::aws_lc_rs::Ticketer::new().map_err(TlsError::Tickets)
}

/// The listener's configuration: its certificate and `tickets`, so that a
/// client reconnecting resumes its session (no certificate, no signature)
/// instead of a full handshake. Early data (0-RTT) stays off: it could be
/// replayed.
pub fn server(source: &TlsSource, tickets: &Arc<dyn ProducesTickets>) -> Result<ServerTls, TlsError> {
    let (chain, key, self_signed) = match source {
        TlsSource::Files { cert, key } => (load_certs(cert)?, load_key(key)?, false),
        TlsSource::SelfSigned => {
            let (cert, key) = self_signed_now()?;
            (vec![cert], key, true)
        }
    };
    let fingerprint = fingerprint(&chain[0]);
    let not_after = validity::not_after(&chain[0]);
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = Arc::clone(tickets);
    Ok(ServerTls { config: Arc::new(config), fingerprint, self_signed, not_after })
}

/// A certificate for `localhost` and `127.0.0.1`, valid from a minute ago
/// (clocks differ) for `SELF_SIGNED_LIFETIME`, its subject saying what it is.
fn self_signed_now() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, SELF_SIGNED_NAME);
    name.push(rcgen::DnType::OrganizationName, "mfagate");
    params.distinguished_name = name;
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    params.not_after = params.not_before + SELF_SIGNED_LIFETIME;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key))
}

/// Client configuration trusting the public web roots plus `extra_ca`. ALPN
/// is left to the connector, which offers what its client can speak.
pub fn client(extra_ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra_ca {
        for cert in load_certs(path)? {
            roots.add(cert).map_err(|e| TlsError::Pem { path: path.to_path_buf(), reason: e.to_string() })?;
        }
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |e: rustls_pki_types::pem::Error| TlsError::Pem { path: path.to_path_buf(), reason: e.to_string() };
    let certs =
        CertificateDer::pem_file_iter(path).map_err(pem_err)?.collect::<Result<Vec<_>, _>>().map_err(pem_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key { path: path.to_path_buf(), reason: e.to_string() })
}

pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.as_ref());
    let mut out = String::with_capacity(95);
    for (i, b) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_self_signed_certificate_lives_about_90_days_from_now() {
        let (cert, _) = self_signed_now().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let not_after = validity::not_after(&cert).unwrap();
        let lifetime = SELF_SIGNED_LIFETIME.as_secs() as i64;
        assert!((not_after - now - lifetime).abs() < 120, "{not_after} vs {now}");
        // The subject says what it is: the name is in the DER as written.
        assert!(cert.windows(SELF_SIGNED_NAME.len()).any(|w| w == SELF_SIGNED_NAME.as_bytes()));
    }

    #[test]
    fn a_listener_configuration_sends_tickets_sealed_by_the_shared_keys() {
        let tickets = ticketer().unwrap();
        let tls = server(&TlsSource::SelfSigned, &tickets).unwrap();
        assert!(tls.config.ticketer.enabled());
        assert!(tls.config.send_tls13_tickets > 0);
        assert_eq!(tls.config.max_early_data_size, 0);
        assert!(Arc::ptr_eq(&tls.config.ticketer, &tickets));
    }
}
