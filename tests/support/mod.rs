//! Everything an end-to-end test needs, on 127.0.0.1 with ephemeral ports:
//! a test CA, an identity provider serving a JWK Set over HTTP (and a fake
//! Entra authority for Microsoft's client libraries), a recording
//! TLS upstream, the gateway itself (TLS) and an HTTP client that trusts it.
#![allow(dead_code)]

pub mod authority;
pub mod browser;
pub mod faulty;
pub mod idp;
pub mod load;
pub mod pki;
pub mod process;
pub mod py;
pub mod raw;
pub mod redis;
pub mod serve;
pub mod setup;
pub mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mfagate::app::App;
use mfagate::config::{Config, Source};
use mfagate::reload::Reloader;
use tokio::sync::oneshot;

pub use idp::{Idp, JwksMode};
pub use pki::Pki;
pub use upstream::Upstream;

/// The Microsoft hosts an egress test reaches by name; `[egress.resolve]`
/// sends them to the recording upstream, whose certificate names them.
pub const PC_HOST: &str = "api.partnercenter.microsoft.com";
pub const GRAPH_HOST: &str = "graph.microsoft.com";
pub const ARM_HOST: &str = "management.azure.com";
/// Entra's sign-in hosts, which tenant restrictions intercept: resolved to
/// the recording upstream too unless a test resolves them elsewhere.
pub const SIGN_IN_HOSTS: [&str; 4] = mfagate::entra::SIGN_IN_HOSTS;

/// Extra TOML for each section of the generated configuration.
#[derive(Default, Clone)]
pub struct Setup {
    pub server: String,
    pub identity: String,
    pub route: String,
    pub limits: String,
    /// Whole `[[routes]]` tables appended after the main route.
    pub more_routes: String,
    pub jwks: Option<JwksMode>,
    /// `[[identity.sources]]` tables replacing the `jwks_uri` shorthand;
    /// `@IDP@` becomes the identity provider's base URL, `@DIR@` the test's directory.
    pub sources: Option<String>,
    /// An identity provider to use instead of starting one.
    pub idp: Option<Idp>,
    /// Serve the key set over HTTPS; `true` also sets `jwks_ca` to the test CA.
    pub idp_https: Option<bool>,
    /// Extra `[egress]` keys; `Some` turns the egress proxy on, with an
    /// interception CA made for the test and the Microsoft hosts resolved
    /// to the recording upstream.
    pub egress: Option<String>,
    /// More `[egress.resolve]` entries.
    pub resolve: Vec<(String, SocketAddr)>,
}

impl Setup {
    pub fn route(mut self, toml: &str) -> Self {
        self.route.push_str(toml);
        self.route.push('\n');
        self
    }

    pub fn identity(mut self, toml: &str) -> Self {
        self.identity.push_str(toml);
        self.identity.push('\n');
        self
    }

    pub fn server(mut self, toml: &str) -> Self {
        self.server.push_str(toml);
        self.server.push('\n');
        self
    }

    pub fn more_routes(mut self, toml: &str) -> Self {
        self.more_routes.push_str(toml);
        self.more_routes.push('\n');
        self
    }

    pub fn limits(mut self, toml: &str) -> Self {
        self.limits.push_str(toml);
        self.limits.push('\n');
        self
    }

    pub fn jwks(mut self, mode: JwksMode) -> Self {
        self.jwks = Some(mode);
        self
    }

    pub fn sources(mut self, toml: &str) -> Self {
        self.sources.get_or_insert_with(String::new).push_str(toml);
        self
    }

    pub fn idp(mut self, idp: Idp) -> Self {
        self.idp = Some(idp);
        self
    }

    pub fn idp_https(mut self, trust_ca: bool) -> Self {
        self.idp_https = Some(trust_ca);
        self
    }

    pub fn egress(mut self, toml: &str) -> Self {
        let section = self.egress.get_or_insert_with(String::new);
        section.push_str(toml);
        section.push('\n');
        self
    }

    pub fn resolve(mut self, host: &str, addr: SocketAddr) -> Self {
        self.resolve.push((host.to_string(), addr));
        self
    }

    pub async fn start(self) -> TestEnv {
        TestEnv::start(self).await
    }
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub idp: Idp,
    pub upstream: Upstream,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub fingerprint: String,
    /// The egress proxy and its interception CA (PEM file), when configured.
    pub egress: Option<SocketAddr>,
    pub egress_ca: Option<std::path::PathBuf>,
    pub client: reqwest::Client,
    pub config_toml: String,
    /// The configuration file the gateway reloads from.
    pub config_path: PathBuf,
    pub reloader: Arc<Reloader>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestEnv {
    pub fn setup() -> Setup {
        Setup::default()
    }

    pub async fn start(setup: Setup) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let upstream_leaf = pki.leaf(
            dir.path(),
            "upstream",
            &[&["localhost", "127.0.0.1", PC_HOST, GRAPH_HOST, ARM_HOST][..], &SIGN_IN_HOSTS].concat(),
        );
        let gateway_leaf = pki.leaf(dir.path(), "gateway", &["localhost", "127.0.0.1"]);
        let upstream = Upstream::start(pki::server_config(&upstream_leaf)).await;
        let mode = setup.jwks.unwrap_or(JwksMode::Serve);
        let mut identity = setup.identity.clone();
        let idp = match (setup.idp.clone(), setup.idp_https) {
            (Some(idp), _) => idp,
            (None, Some(trust_ca)) => {
                let leaf = pki.leaf(dir.path(), "idp", &["localhost"]);
                if trust_ca {
                    identity.push_str(&format!("jwks_ca = {}\n", toml_str(&pki.ca_path)));
                }
                Idp::start_tls(mode, pki::server_config(&leaf)).await
            }
            (None, None) => Idp::start(mode).await,
        };
        let jwks_line = match &setup.sources {
            Some(_) => String::new(),
            None => format!("jwks_uri = \"{}\"\n", idp.url),
        };
        let sources = setup
            .sources
            .as_deref()
            .unwrap_or("")
            .replace("@IDP@", &idp.base)
            .replace("@DIR@", &dir.path().display().to_string());
        let egress_ca = setup.egress.as_ref().map(|_| {
            let options = mfagate::egress::ca::CaOptions::default();
            mfagate::egress::ca::init(&dir.path().join("egress-ca"), &options).unwrap().cert
        });
        let egress = match (&setup.egress, &egress_ca) {
            (Some(extra), Some(ca)) => {
                let mut section = format!(
                    "[egress]\nlisten = \"127.0.0.1:0\"\nca_cert = {}\nca_key = {}\n{extra}\n[egress.resolve]\n",
                    toml_str(ca),
                    toml_str(&ca.with_file_name("ca.key")),
                );
                let mapped = [PC_HOST, GRAPH_HOST, ARM_HOST]
                    .into_iter()
                    .chain(SIGN_IN_HOSTS)
                    .filter(|h| !setup.resolve.iter().any(|(r, _)| r == h))
                    .map(|h| (h.to_string(), upstream.addr))
                    .collect::<Vec<_>>();
                for (host, addr) in mapped.iter().chain(setup.resolve.iter()) {
                    section.push_str(&format!("\"{host}\" = \"{addr}\"\n"));
                }
                section
            }
            _ => String::new(),
        };
        let config_toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
tls_cert = "{cert}"
tls_key = "{key}"
{server}
[identity]
{jwks_line}{identity}
[limits]
{limits}
{sources}[[routes]]
name = "partner-center"
upstream = "https://127.0.0.1:{uport}"
upstream_ca = "{ca}"
audiences = ["https://api.partnercenter.microsoft.com", "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd"]
{route}
{more_routes}
{egress}
"#,
            cert = gateway_leaf.cert_path.display(),
            key = gateway_leaf.key_path.display(),
            server = with_defaults(&setup.server, &[("upstream_timeout", "\"2s\""), ("drain_grace", "\"2s\"")]),
            identity = with_defaults(&identity, &[("state_dir", &toml_str(&dir.path().join("state")))]),
            limits = setup.limits,
            uport = upstream.addr.port(),
            ca = pki.ca_path.display(),
            route = setup.route,
            more_routes = setup
                .more_routes
                .replace("@UPSTREAM@", &format!("https://127.0.0.1:{}", upstream.addr.port()))
                .replace("@CA@", &pki.ca_path.display().to_string()),
        );
        let config = Config::from_toml(&config_toml).unwrap_or_else(|e| panic!("test config: {e}\n{config_toml}"));
        let config_path = write(dir.path(), "mfagate.toml", &config_toml);
        let app = App::build(config).await.expect("gateway starts").with_source(Source::File(config_path.clone()));
        let (addr, admin, fingerprint) = (app.local_addr(), app.admin_addr(), app.fingerprint().to_string());
        let egress_addr = app.egress_addr();
        let reloader = app.reloader();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        let client = client(&pki.ca_pem, false);
        Self {
            dir,
            pki,
            idp,
            upstream,
            addr,
            admin,
            fingerprint,
            egress: egress_addr,
            egress_ca,
            client,
            config_toml,
            config_path,
            reloader,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `https://localhost:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("gateway answers")
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.admin_url("/metrics")).await.unwrap().text().await.unwrap()
    }

    /// The value of the sample `name{labels}` in the current scrape (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        sample(&self.metrics().await, series)
    }

    /// Stops the gateway and waits for it to drain.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Polls `check` every 50 ms until it holds, for at most 20 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `section` plus each default whose key it does not set.
fn with_defaults(section: &str, defaults: &[(&str, &str)]) -> String {
    let mut out = section.to_string();
    for (key, value) in defaults {
        if !section.lines().any(|l| l.trim_start().starts_with(key)) {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
    out
}

/// `path` as a TOML basic string.
pub fn toml_str(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

pub fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// A client trusting only `ca_pem`; `http1_only` pins HTTP/1.1.
pub fn client(ca_pem: &str, http1_only: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let mut b = reqwest::Client::builder().tls_certs_only([ca]).no_proxy();
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

/// Asserts a gateway rejection: status, the body's code, reason, source and
/// description in whichever error format the route answers in, the
/// correlation headers, and returns the `WWW-Authenticate` value.
pub async fn assert_rejected(rsp: reqwest::Response, status: u16, reason: &str) -> Option<String> {
    assert_eq!(rsp.status().as_u16(), status, "status for {reason}");
    let challenge = rsp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    let correlation = rsp.headers().get("ms-correlationid").expect("MS-CorrelationId").to_str().unwrap().to_string();
    let request_id = rsp.headers().get("ms-requestid").expect("MS-RequestId").to_str().unwrap().to_string();
    assert!(rsp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: serde_json::Value = rsp.json().await.expect("JSON body");
    let code = if matches!(reason, "mfa_required" | "mfa_unprovable_v2") { "900421" } else { reason };
    match &body["error"] {
        // ARM and Graph: everything inside `error`.
        serde_json::Value::Object(error) => {
            assert_eq!(error["code"], code, "{body}");
            assert_eq!(error["reason"], reason, "{body}");
            assert_eq!(error["correlationId"], correlation.as_str(), "{body}");
            assert!(error["message"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
            if let Some(inner) = error.get("innerError") {
                assert_eq!(inner["request-id"], request_id.as_str(), "{body}");
                assert!(inner["date"].as_str().is_some_and(|d| d.ends_with('Z')), "{body}");
            }
        }
        // OAuth (RFC 6749 §5.2).
        serde_json::Value::String(_) => {
            assert_eq!(body["reason"], reason, "{body}");
            assert_eq!(body["correlation_id"], correlation.as_str(), "{body}");
            assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
        }
        _ => {
            assert_eq!(body["code"], code, "{body}");
            assert_eq!(body["reason"], reason, "{body}");
            assert_eq!(body["source"], "mfagate");
            assert_eq!(body["data"], serde_json::json!([]));
            assert_eq!(body["correlationId"], correlation.as_str());
            assert!(body["description"].as_str().is_some_and(|d| !d.is_empty()));
        }
    }
    challenge
}

/// The stable reason of an answer, in any error format.
pub fn reason_of(body: &serde_json::Value) -> &str {
    body["reason"].as_str().or_else(|| body["error"]["reason"].as_str()).unwrap_or_else(|| panic!("no reason: {body}"))
}

/// The human-readable text of an answer, in any error format.
pub fn description_of(body: &serde_json::Value) -> &str {
    body["description"]
        .as_str()
        .or_else(|| body["error"]["message"].as_str())
        .or_else(|| body["error_description"].as_str())
        .unwrap_or_else(|| panic!("no description: {body}"))
}

pub fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Reads the decision log at `path` until it holds `n` lines (the writer is
/// a thread of its own; nothing signals a flushed line): its text and lines.
pub async fn audit_lines(path: &std::path::Path, n: usize) -> (String, Vec<serde_json::Value>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= n {
            assert_eq!(lines.len(), n, "{text}");
            return (text, lines);
        }
        assert!(std::time::Instant::now() < deadline, "the decision log has {} of {n} lines", lines.len());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
