//! The interception CA: `mfagate ca init` makes one; the egress listener
//! loads it and issues a short-lived leaf certificate per guarded host.
//! At start every guarded host's leaf is checked against the CA with the
//! same verifier a client uses, so a key that does not match the
//! certificate, a certificate that is not a CA, or name constraints that
//! exclude a guarded host stop the gateway instead of failing every client.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, NameConstraints,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::rfc3339::unix_now;
use crate::tls;

/// Leaf certificates are valid for a week (an hour back, for clock skew)
/// and re-issued long before: see `intercept::LEAF_TTL`.
const LEAF_VALIDITY_SECS: i64 = 7 * 24 * 3600;
const BACKDATE_SECS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{key} ({path}): {reason}")]
    Load { key: &'static str, path: PathBuf, reason: String },
    #[error("{key}: a certificate issued for {host} does not verify against the CA: {reason}")]
    SelfCheck { key: &'static str, host: String, reason: String },
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("issuing a certificate failed: {0}")]
    Issue(#[from] rcgen::Error),
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("the system clock is out of the certificate date range")]
    Clock,
}

/// A loaded interception CA.
pub struct InterceptCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate and any certificates above it, sent after each leaf.
    chain: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for InterceptCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterceptCa").field("chain", &self.chain.len()).finish_non_exhaustive()
    }
}

impl InterceptCa {
    /// Loads `ca_cert` (the CA first, then optionally its own issuers) and
    /// `ca_key` (PKCS#8, SEC1 or PKCS#1 PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, CaError> {
        let cert_err = |reason: String| CaError::Load { key: "egress.ca_cert", path: cert.to_path_buf(), reason };
        let key_err = |reason: String| CaError::Load { key: "egress.ca_key", path: key.to_path_buf(), reason };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_err(e.to_string()))?;
        let Some(ca) = chain.first() else {
            return Err(cert_err("no certificate found".into()));
        };
        let key_pem = std::fs::read_to_string(key).map_err(|e| key_err(e.to_string()))?;
        let signing_key = KeyPair::from_pem(&key_pem).map_err(|e| key_err(format!("not a usable private key: {e}")))?;
        let issuer = Issuer::from_ca_cert_der(ca, signing_key).map_err(|e| cert_err(e.to_string()))?;
        Ok(Self { issuer, chain })
    }

    /// A leaf certificate for `host` and its private key, with the CA chain.
    pub fn issue(&self, host: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CaError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![host.to_string()])?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = unix_now();
        params.not_before = datetime(now - BACKDATE_SECS)?;
        params.not_after = datetime(now + LEAF_VALIDITY_SECS)?;
        let leaf = params.signed_by(&key, &self.issuer)?;
        let mut chain = Vec::with_capacity(self.chain.len() + 1);
        chain.push(leaf.der().clone());
        chain.extend(self.chain.iter().cloned());
        Ok((chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))))
    }

    /// The TLS server configuration presented to clients that CONNECT to `host`.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let (chain, key) = self.issue(host)?;
        let mut config = ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }

    /// Issues a leaf for `host` and verifies it as a client trusting only
    /// this CA would.
    pub fn self_check(&self, host: &str) -> Result<(), CaError> {
        let fail = |reason: String| CaError::SelfCheck { key: "egress.ca_cert", host: host.to_string(), reason };
        let (chain, _) = self.issue(host)?;
        let (anchor, intermediates) = match self.chain.split_last() {
            Some((anchor, above_leaf)) => (anchor.clone(), above_leaf),
            None => return Err(fail("no CA certificate".into())),
        };
        let mut roots = RootCertStore::empty();
        roots.add(anchor).map_err(|e| fail(e.to_string()))?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), tls::provider())
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let name = ServerName::try_from(host.to_string()).map_err(|e| fail(e.to_string()))?;
        verifier
            .verify_server_cert(&chain[0], intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| fail(e.to_string()))
    }
}

/// Options of `mfagate ca init`.
#[derive(Debug, Clone)]
pub struct CaOptions {
    /// DNS name constraints (RFC 5280 §4.2.1.10): the CA can only vouch for
    /// these names and the names below them. Empty: unconstrained.
    pub permit: Vec<String>,
    pub days: u32,
    pub common_name: String,
}

impl Default for CaOptions {
    fn default() -> Self {
        Self { permit: Vec::new(), days: 3650, common_name: "mfagate egress interception CA".into() }
    }
}

/// The files `ca init` wrote.
#[derive(Debug)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A new CA: its certificate and its private key (PKCS#8), both PEM.
pub fn generate(options: &CaOptions) -> Result<(String, String), CaError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, options.common_name.as_str());
    params.distinguished_name.push(DnType::OrganizationName, "mfagate");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    if !options.permit.is_empty() {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: options.permit.iter().map(|n| GeneralSubtree::DnsName(n.clone())).collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    let now = unix_now();
    params.not_before = datetime(now - BACKDATE_SECS)?;
    params.not_after = datetime(now + i64::from(options.days) * 24 * 3600)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `ca.pem` and `ca.key` (mode 0600) into `dir`, creating it (0700)
/// if needed. Never overwrites an existing file.
pub fn init(dir: &Path, options: &CaOptions) -> Result<CaFiles, CaError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CaError::Write { path, source }
    };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(write_err(dir))?;
    let files = CaFiles { cert: dir.join("ca.pem"), key: dir.join("ca.key") };
    for path in [&files.cert, &files.key] {
        if path.exists() {
            return Err(CaError::Write {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists; not overwritten"),
            });
        }
    }
    let (cert_pem, key_pem) = generate(options)?;
    write_new(&files.key, key_pem.as_bytes(), 0o600).map_err(write_err(&files.key))?;
    write_new(&files.cert, cert_pem.as_bytes(), 0o644).map_err(write_err(&files.cert))?;
    Ok(files)
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// How to make clients trust the CA at `cert`, printed by `ca init`.
pub fn trust_instructions(cert: &Path) -> String {
    let cert = cert.display();
    format!(
        r#"Trust this CA on the machines whose traffic goes through the egress proxy:

  Debian/Ubuntu:  sudo cp {cert} /usr/local/share/ca-certificates/mfagate-egress-ca.crt && sudo update-ca-certificates
  RHEL/Fedora:    sudo cp {cert} /etc/pki/ca-trust/source/anchors/mfagate-egress-ca.pem && sudo update-ca-trust
  macOS:          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {cert}
  Windows:        certutil -addstore -f Root ca.pem
                  (or PowerShell: Import-Certificate -FilePath ca.pem -CertStoreLocation Cert:\LocalMachine\Root)

Per runtime, when it does not read the system store:

  Python requests:  export REQUESTS_CA_BUNDLE=/path/to/bundle.pem   (the system bundle plus {cert}: it replaces, not adds)
  Node.js:          export NODE_EXTRA_CA_CERTS={cert}
  PowerShell 7 on Linux/macOS reads the system store; on Windows, PowerShell uses the Windows store above.

Then point the automation at the proxy:  HTTPS_PROXY=http://PROXY-HOST:3128
Keep the key private: anyone holding it can impersonate the hosts this CA may sign for.
"#
    )
}

fn datetime(unix: i64) -> Result<time::OffsetDateTime, CaError> {
    time::OffsetDateTime::from_unix_timestamp(unix).map_err(|_| CaError::Clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_generated(options: &CaOptions) -> (tempfile::TempDir, InterceptCa) {
        let dir = tempfile::tempdir().unwrap();
        let files = init(dir.path(), options).unwrap();
        let ca = InterceptCa::load(&files.cert, &files.key).unwrap();
        (dir, ca)
    }

    #[test]
    fn issued_leaves_verify_for_their_host() {
        let (_dir, ca) = load_generated(&CaOptions::default());
        ca.self_check("api.partnercenter.microsoft.com").unwrap();
        ca.self_check("graph.microsoft.com").unwrap();
    }

    #[test]
    fn name_constraints_are_honoured() {
        let options = CaOptions { permit: vec!["partnercenter.microsoft.com".into()], ..CaOptions::default() };
        let (_dir, ca) = load_generated(&options);
        ca.self_check("api.partnercenter.microsoft.com").unwrap();
        let err = ca.self_check("graph.microsoft.com").unwrap_err();
        assert!(err.to_string().contains("graph.microsoft.com"), "{err}");
    }

    #[test]
    fn a_key_that_does_not_match_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let a = init(&dir.path().join("a"), &CaOptions::default()).unwrap();
        let b = init(&dir.path().join("b"), &CaOptions::default()).unwrap();
        let ca = InterceptCa::load(&a.cert, &b.key).unwrap();
        assert!(matches!(ca.self_check("graph.microsoft.com"), Err(CaError::SelfCheck { .. })));
    }

    #[test]
    fn init_never_overwrites_and_keeps_the_key_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let files = init(dir.path(), &CaOptions::default()).unwrap();
        assert_eq!(std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777, 0o600);
        let before = std::fs::read(&files.key).unwrap();
        assert!(matches!(init(dir.path(), &CaOptions::default()), Err(CaError::Write { .. })));
        assert_eq!(std::fs::read(&files.key).unwrap(), before);
    }

    #[test]
    fn load_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = InterceptCa::load(&missing, &missing).unwrap_err();
        assert!(err.to_string().starts_with("egress.ca_cert"), "{err}");
        let files = init(dir.path(), &CaOptions::default()).unwrap();
        let err = InterceptCa::load(&files.cert, &files.cert).unwrap_err();
        assert!(err.to_string().starts_with("egress.ca_key"), "{err}");
    }
}
