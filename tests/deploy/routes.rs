//! Every shipped route configuration (`config/*.toml` and each ConfigMap)
//! against recording upstreams, one per Microsoft API. A client of a route
//! sends the API's own paths (below the route's `path_prefix` when the
//! prefix is not one of the API's own), and the upstream of that API must
//! receive exactly the API's path: a route that forwards `/graph/v1.0/me`
//! to Graph is caught here. Routes with a `host` are also tried through the
//! egress proxy when the configuration has one.

use std::net::SocketAddr;

use mfagate::app::App;
use mfagate::config::Config;
use mfagate::proxy::route::path_matches;

use crate::support::upstream::Upstream;
use crate::support::{GRAPH_HOST, Idp, JwksMode, PC_HOST, Pki, client, pki};
use crate::{ROOT, SHIPPED, deploy, find, manifest};

const ARM_HOST: &str = "management.azure.com";
const LOGIN_HOST: &str = "login.microsoftonline.com";

/// Paths each API serves, as its clients send them.
const APIS: &[(&str, &[&str])] = &[
    (PC_HOST, &["/v1/customers", "/v1/invoices?size=10"]),
    (GRAPH_HOST, &["/v1.0/me", "/beta/users?$top=1"]),
    (
        ARM_HOST,
        &[
            "/subscriptions?api-version=2022-12-01",
            "/providers/Microsoft.Resources/operations?api-version=2022-12-01",
            "/tenants?api-version=2022-12-01",
            "/batch?api-version=2020-06-01",
        ],
    ),
    (LOGIN_HOST, &["/organizations/oauth2/v2.0/token"]),
];

/// The configurations shipped: every file in `config/`, and each ConfigMap.
async fn shipped() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(std::path::Path::new(ROOT).join("config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for file in files {
        let name = file.strip_prefix(ROOT).unwrap().display().to_string();
        out.push((name, std::fs::read_to_string(&file).unwrap()));
    }
    for shipped in SHIPPED {
        let docs = manifest(&deploy(shipped.file)).await;
        let text = find(&docs, "ConfigMap", shipped.configmap)["data"]["mfagate.toml"].as_str().unwrap().to_string();
        out.push((format!("deploy/{} ConfigMap {}", shipped.file, shipped.configmap), text));
    }
    out
}

/// A route as shipped.
struct Route {
    name: String,
    prefix: String,
    host: Option<String>,
    api: &'static str,
    audience: Option<String>,
}

/// What a client of `route` sends for the API path `path`, if it is one the
/// route serves: the path itself under a prefix of the API's own, else the
/// path below the route's prefix.
fn client_paths(route: &Route) -> Vec<(String, &'static str)> {
    let paths = APIS.iter().find(|(h, _)| *h == route.api).unwrap().1;
    let bare = |p: &str| p.split('?').next().unwrap().to_string();
    let own: Vec<_> =
        paths.iter().filter(|p| path_matches(&route.prefix, &bare(p))).map(|p| (p.to_string(), *p)).collect();
    if !own.is_empty() {
        return own;
    }
    paths.iter().map(|p| (format!("{}{p}", route.prefix.trim_end_matches('/')), *p)).collect()
}

struct Started {
    addr: SocketAddr,
    egress: Option<(SocketAddr, String)>,
    routes: Vec<Route>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The shipped configuration `text` with its upstreams, key source,
/// certificate and interception CA replaced by the test's, started.
async fn start(
    text: &str,
    upstreams: &[(&'static str, Upstream)],
    pki: &Pki,
    idp: &Idp,
    dir: &std::path::Path,
) -> Started {
    let mut config: toml::Table = toml::from_str(text).unwrap();
    let leaf = pki.leaf(dir, "gateway", &["localhost", "127.0.0.1"]);
    let server = config.entry("server").or_insert(toml::Table::new().into()).as_table_mut().unwrap();
    server.insert("listen".into(), "127.0.0.1:0".into());
    server.insert("admin_listen".into(), "127.0.0.1:0".into());
    server.insert("tls_cert".into(), leaf.cert_path.display().to_string().into());
    server.insert("tls_key".into(), leaf.key_path.display().to_string().into());
    let state = dir.join("state").display().to_string();
    config.insert("identity".into(), toml::toml! { jwks_uri = (idp.url.clone()) state_dir = state }.into());
    config.insert("audit".into(), toml::toml! { sink = "off" }.into());
    let mut routes = Vec::new();
    for route in config["routes"].as_array_mut().unwrap() {
        let route = route.as_table_mut().unwrap();
        let upstream: http::Uri = route["upstream"].as_str().unwrap().parse().unwrap();
        let real = route.get("host").and_then(|h| h.as_str()).unwrap_or(upstream.host().unwrap()).to_string();
        let (api, recording) = upstreams.iter().find(|(h, _)| *h == real).unwrap_or_else(|| panic!("no API {real}"));
        // The kind a login route infers from its upstream's host is kept.
        if real == LOGIN_HOST && !route.contains_key("kind") {
            route.insert("kind".into(), "login".into());
        }
        // The base path stays: the upstream gets it in front of the request's.
        let base = upstream.path();
        route.insert("upstream".into(), format!("https://127.0.0.1:{}{base}", recording.addr.port()).into());
        route.insert("upstream_ca".into(), pki.ca_path.display().to_string().into());
        routes.push(Route {
            name: route["name"].as_str().unwrap().into(),
            prefix: route.get("path_prefix").and_then(|p| p.as_str()).unwrap_or("/").into(),
            host: route.get("host").and_then(|h| h.as_str()).map(String::from),
            api,
            audience: route.get("audiences").and_then(|a| a.as_array()?.first()?.as_str().map(String::from)),
        });
    }
    let mut egress_ca = None;
    if let Some(egress) = config.get_mut("egress").and_then(|e| e.as_table_mut()) {
        let ca = mfagate::egress::ca::init(&dir.join("egress-ca"), &Default::default()).unwrap();
        egress.insert("listen".into(), "127.0.0.1:0".into());
        egress.insert("ca_cert".into(), ca.cert.display().to_string().into());
        egress.insert("ca_key".into(), ca.key.display().to_string().into());
        egress.remove("proxy_auth");
        let mut resolve = toml::Table::new();
        for (host, recording) in upstreams {
            resolve.insert(host.to_string(), recording.addr.to_string().into());
        }
        egress.insert("resolve".into(), resolve.into());
        egress_ca = Some(std::fs::read_to_string(&ca.cert).unwrap());
    }
    let text = toml::to_string(&config).unwrap();
    let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let app = App::build(config).await.unwrap();
    let (addr, egress) = (app.local_addr(), app.egress_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    Started { addr, egress: egress.zip(egress_ca), routes, _stop: stop }
}

/// One request of a client of `route`; the status it got.
async fn send(client: &reqwest::Client, url: &str, host: Option<&str>, route: &Route, idp: &Idp) -> u16 {
    let req = if route.api == LOGIN_HOST {
        let form = "grant_type=client_credentials&client_id=23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21&client_secret=s&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";
        client.post(url).header("content-type", "application/x-www-form-urlencoded").body(form)
    } else {
        let audience = route.audience.clone().unwrap();
        let token = if route.api == PC_HOST { idp.delegated() } else { idp.aobo() };
        client.get(url).bearer_auth(token.claim("aud", audience).mint())
    };
    let req = match host {
        Some(h) => req.header("host", h),
        None => req,
    };
    match req.send().await {
        Ok(rsp) => rsp.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[tokio::test]
async fn every_shipped_route_forwards_the_path_its_api_serves() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let names: Vec<&str> = ["localhost", "127.0.0.1"].into_iter().chain(APIS.iter().map(|(h, _)| *h)).collect();
    let leaf = pki.leaf(dir.path(), "apis", &names);
    let mut upstreams = Vec::new();
    for (host, _) in APIS {
        upstreams.push((*host, Upstream::start(pki::server_config(&leaf)).await));
    }
    let idp = Idp::start(JwksMode::Serve).await;
    let reverse = client(&pki.ca_pem, true);
    let mut wrong = Vec::new();
    let mut tried = 0;
    for (name, text) in shipped().await {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        let started = start(&text, &upstreams, &pki, &idp, sub.path()).await;
        let proxied = started.egress.as_ref().map(|(addr, ca)| {
            let proxy = reqwest::Proxy::all(format!("http://{addr}")).unwrap();
            let ca = reqwest::Certificate::from_pem(ca.as_bytes()).unwrap();
            reqwest::Client::builder().tls_certs_only([ca]).proxy(proxy).build().unwrap()
        });
        for route in &started.routes {
            let recording = &upstreams.iter().find(|(h, _)| *h == route.api).unwrap().1;
            for (sent, expected) in client_paths(route) {
                let mut ways =
                    vec![(format!("https://localhost:{}{sent}", started.addr.port()), &reverse, route.host.as_deref())];
                if let (Some(client), Some(host)) = (&proxied, &route.host) {
                    ways.push((format!("https://{host}{sent}"), client, None));
                }
                for (url, client, host) in ways {
                    tried += 1;
                    let before = recording.hits();
                    let status = send(client, &url, host, route, &idp).await;
                    let got = (recording.hits() > before).then(|| recording.last().path_and_query);
                    if status != 200 || got.as_deref() != Some(expected) {
                        wrong.push(format!(
                            "{name}, route {:?}: {url} answered {status}; {} received {got:?}, not {expected:?}",
                            route.name, route.api
                        ));
                    }
                }
            }
        }
    }
    assert!(tried >= 20, "{tried} requests");
    assert!(wrong.is_empty(), "{wrong:#?}");
}
