//! `mfagate demo`: a newcomer's first minute. In one process: a local
//! identity provider (a key made at start, its key set served on
//! loopback), an echo upstream standing in for Partner Center, and the
//! gateway itself on the usual ports with a certificate from a demo CA.
//! It prints curl commands with four tokens (compliant, no MFA, public
//! client, app-only) and the answer each gets, then serves until Ctrl-C.

mod idp;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::cli::DemoArgs;
use crate::config::{Config, HttpSettings};
use crate::{listener, shutdown, telemetry};
use idp::Idp;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Idp(#[from] idp::IdpError),
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] crate::app::StartupError),
}

pub fn run(args: &DemoArgs) -> ExitCode {
    let (dir, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => (std::env::temp_dir().join(format!("mfagate-demo-{}", std::process::id())), true),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(args, &dir));
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &DemoArgs, dir: &Path) -> Result<(), DemoError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DemoError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let ca = write_pki(dir)?;
    let idp = Arc::new(Idp::generate()?);
    let stop = CancellationToken::new();
    let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let bind = |what: &'static str| async move {
        TcpListener::bind(loopback).await.map_err(|source| DemoError::Io { path: what.into(), source })
    };
    let (idp_listener, echo_listener) = (bind("identity provider").await?, bind("echo upstream").await?);
    let idp_addr = idp_listener.local_addr().map_err(io(Path::new("identity provider")))?;
    let echo_addr = echo_listener.local_addr().map_err(io(Path::new("echo upstream")))?;
    let keys = Arc::clone(&idp);
    let grace = Duration::from_secs(1);
    let idp_task = tokio::spawn(listener::serve_plain(
        idp_listener,
        move |_req: Request<Incoming>| {
            let jwks = Bytes::from(keys.jwks.clone());
            async move { json(jwks) }
        },
        HttpSettings::default(),
        stop.clone(),
        grace,
    ));
    let echo_handler = |req| async move { echo(&req) };
    let echo_task =
        tokio::spawn(listener::serve_plain(echo_listener, echo_handler, HttpSettings::default(), stop.clone(), grace));

    let audit = dir.join("audit.jsonl");
    let config = Config::from_toml(&config_toml(args, dir, idp_addr, echo_addr, &audit))?;
    let _log = telemetry::init(&config.log);
    let app = App::build(config).await?;
    print!("{}", instructions(&idp, &ca, app.local_addr(), app.admin_addr(), idp_addr, echo_addr, &audit)?);
    app.run(shutdown::signal()).await;
    stop.cancel();
    let _ = tokio::join!(idp_task, echo_task);
    println!("demo stopped; the decision log was {}", audit.display());
    Ok(())
}

fn config_toml(args: &DemoArgs, dir: &Path, idp: SocketAddr, echo: SocketAddr, audit: &Path) -> String {
    let path = |p: PathBuf| format!("{:?}", p.display().to_string());
    format!(
        r#"
[server]
listen = "{listen}"
admin_listen = "{admin}"
tls_cert = {cert}
tls_key = {key}
drain_grace = "2s"

[identity]
jwks_uri = "http://{idp}/common/discovery/keys"
state_dir = ""

[log]
level = "warn,mfagate::decision=info"

[audit]
sink = "file"
path = {audit}

[[routes]]
name = "partner-center"
upstream = "http://{echo}"
audiences = ["{audience}"]
"#,
        listen = args.listen,
        admin = args.admin_listen,
        cert = path(dir.join("gateway.pem")),
        key = path(dir.join("gateway.key")),
        audit = path(audit.to_path_buf()),
        audience = idp::AUDIENCE,
    )
}

/// A demo CA (`ca.pem`, for curl's `--cacert`) and the gateway's certificate
/// for localhost and 127.0.0.1, signed by it. Returns the CA's path.
fn write_pki(dir: &Path) -> Result<PathBuf, DemoError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, "mfagate demo CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| DemoError::Io { path: path.clone(), source }).map(|()| path)
    };
    write("gateway.pem", leaf_cert.pem())?;
    write("gateway.key", leaf_key.serialize_pem())?;
    write("ca.pem", ca_cert.pem())
}

/// The echo upstream: says what it received, never the credentials.
fn echo(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let body = serde_json::json!({
        "upstream": "echo",
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "authorization_forwarded": req.headers().contains_key(http::header::AUTHORIZATION),
        "x_forwarded_for": header("x-forwarded-for"),
        "ms_correlationid": header("ms-correlationid"),
    });
    json(Bytes::from(body.to_string()))
}

fn json(body: Bytes) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(body));
    rsp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    rsp
}

/// What to paste, and what each command answers.
fn instructions(
    idp: &Idp,
    ca: &Path,
    gateway: SocketAddr,
    admin: SocketAddr,
    idp_addr: SocketAddr,
    echo_addr: SocketAddr,
    audit: &Path,
) -> Result<String, DemoError> {
    let host = |a: SocketAddr| {
        if a.ip().is_unspecified() { SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port()) } else { a }
    };
    let (gateway, admin) = (host(gateway), host(admin));
    let url = format!("https://{gateway}/v1/customers");
    let cases = [
        (
            "A compliant call: app+user token, MFA done (amr = pwd, mfa), confidential client",
            idp.compliant()?,
            "200 allow (forwarded; the echo upstream answers)",
        ),
        ("A user who signed in without MFA (amr = pwd)", idp.without_mfa()?, "401 mfa_required (code 900421)"),
        (
            "MFA done, but from a public client (appidacr = 0, the Azure CLI's app id)",
            idp.public_client()?,
            "403 public_client",
        ),
        ("An app-only token (client credentials, no user)", idp.app_only()?, "403 app_only_not_allowed"),
    ];
    let mut out = String::new();
    let _ = writeln!(out, "mfagate demo: an identity provider, an echo upstream and the gateway, all on this machine.");
    let _ = writeln!(out);
    let _ = writeln!(out, "  gateway       https://{gateway} (certificate from the demo CA {})", ca.display());
    let _ = writeln!(out, "  admin         http://{admin}/metrics  /healthz  /readyz");
    let _ = writeln!(out, "  identity      http://{idp_addr}/common/discovery/keys (a P-256 key made just now)");
    let _ = writeln!(out, "  upstream      http://{echo_addr} (stands in for Partner Center; echoes the request)");
    let _ = writeln!(out, "  decision log  {}", audit.display());
    for (i, (title, token, expect)) in cases.iter().enumerate() {
        let claims = idp::claims_of(token).unwrap_or_default();
        let _ = writeln!(out);
        let _ = writeln!(out, "{}. {title}", i + 1);
        let _ = writeln!(
            out,
            "   claims: appid={} appidacr={} amr={}",
            claims["appid"],
            claims["appidacr"],
            claims.get("amr").map_or("(none: app-only)".to_string(), Value::to_string)
        );
        let _ = writeln!(
            out,
            "curl -sS -i --cacert {} {url} -H 'Authorization: Bearer {token}'",
            shell_quote(&ca.display().to_string())
        );
        let _ = writeln!(out, "   expect: {expect}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Then: curl -s http://{admin}/metrics | grep mfagate_requests_total");
    let _ = writeln!(out, "      mfagate report {}", shell_quote(&audit.display().to_string()));
    let _ = writeln!(out, "Tokens are valid for {} hours. Ctrl-C stops the demo.", idp::LIFETIME_SECS / 3600);
    Ok(out)
}

/// Single-quoted for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-:".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
