//! The automation next to the gateway must trust the gateway's certificate
//! without losing its own roots: it still verifies
//! `login.microsoftonline.com` to get its tokens. Variables such as
//! `SSL_CERT_FILE` and mounts over the system store replace the roots; the
//! safe ways add one CA, and are run here for Python (`ssl`, `requests`) and
//! Node against a real gateway, with a stand-in for a public server whose CA
//! plays the system store.

use std::path::Path;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use serde_json::Value;

use crate::container::image;
use crate::support::{Pki, TestEnv, pki, serve, setup};
use crate::{SHIPPED, deploy, find, manifest, pod_and_container};

/// Variables that make a client use one file or directory instead of its
/// trust store (OpenSSL and what builds on it: Python `ssl`, .NET and
/// PowerShell on Linux, curl, git; `requests`; the AWS SDKs; pip).
const REPLACING: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
    "PIP_CERT",
];

/// Where Debian, Ubuntu, RHEL and Alpine keep the system store.
const STORES: &[&str] = &["/etc/ssl", "/etc/pki", "/usr/lib/ssl", "/usr/share/ca-certificates", "/etc/ca-certificates"];

/// Every container of every pod template in `docs`.
fn containers(docs: &[Value]) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for doc in docs {
        let pod = if doc["kind"] == "Pod" { &doc["spec"] } else { &doc["spec"]["template"]["spec"] };
        for key in ["initContainers", "containers"] {
            for c in pod[key].as_array().into_iter().flatten() {
                out.push((format!("{}/{}", doc["metadata"]["name"].as_str().unwrap(), c["name"].as_str().unwrap()), c));
            }
        }
    }
    out
}

#[tokio::test]
async fn nothing_shipped_replaces_a_client_trust_store() {
    let mut replaced = Vec::new();
    for (name, _) in image().env.iter().filter(|(k, _)| REPLACING.contains(&k.as_str())) {
        replaced.push(format!("deploy/docker/Dockerfile: ENV {name}"));
    }
    for file in ["kubernetes/sidecar.yaml", "kubernetes/egress.yaml"] {
        let docs = manifest(&deploy(file)).await;
        for (container, spec) in containers(&docs) {
            for var in spec["env"].as_array().into_iter().flatten() {
                let name = var["name"].as_str().unwrap();
                if REPLACING.contains(&name) {
                    replaced.push(format!("{file}: {container} sets {name}"));
                }
            }
            for mount in spec["volumeMounts"].as_array().into_iter().flatten() {
                let path = mount["mountPath"].as_str().unwrap().trim_end_matches('/');
                if STORES.iter().any(|s| path == *s || path.starts_with(&format!("{s}/"))) {
                    replaced.push(format!("{file}: {container} mounts over {path}"));
                }
            }
        }
    }
    assert!(replaced.is_empty(), "these replace the client's trust store: {replaced:#?}");
}

#[tokio::test]
async fn the_automation_gets_the_certificate_and_never_the_key() {
    let shipped = &SHIPPED[0];
    let docs = manifest(&deploy(shipped.file)).await;
    let deployment = find(&docs, "Deployment", shipped.deployment);
    let (pod, automation) = pod_and_container(deployment, "automation");
    let volumes = pod["volumes"].as_array().unwrap();
    let mut certificate_at = None;
    for mount in automation["volumeMounts"].as_array().into_iter().flatten() {
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
        let Some(secret) = volume["secret"].as_object() else { continue };
        let keys: Vec<&str> = match secret.get("items").and_then(Value::as_array) {
            Some(items) => items.iter().map(|i| i["key"].as_str().unwrap()).collect(),
            None => vec!["tls.crt", "tls.key"],
        };
        assert!(!keys.contains(&"tls.key"), "the automation container mounts the gateway's private key");
        let item = secret["items"].as_array().and_then(|i| i.iter().find(|i| i["key"] == "tls.crt"));
        let path = item.map_or("tls.crt", |i| i["path"].as_str().unwrap());
        certificate_at = Some(format!("{}/{path}", mount["mountPath"].as_str().unwrap()));
    }
    let certificate_at = certificate_at.expect("the automation mounts the gateway's certificate");
    // Node adds NODE_EXTRA_CA_CERTS to its roots; the automation's own code
    // is told where the certificate is.
    let env: Vec<(&str, &str)> = automation["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["value"].as_str().unwrap_or_default()))
        .collect();
    assert!(env.contains(&("NODE_EXTRA_CA_CERTS", certificate_at.as_str())), "{env:?} vs {certificate_at}");
    assert!(env.contains(&("MFAGATE_CA_CERT", certificate_at.as_str())), "{env:?} vs {certificate_at}");
}

/// A TLS server for `localhost` under its own CA: a public server (Entra's
/// token endpoint, say) whose root is in the system store.
async fn public_server(dir: &Path) -> (String, std::path::PathBuf) {
    let roots = dir.join("public-root");
    std::fs::create_dir_all(&roots).unwrap();
    let public = Pki::named(&roots, "a public root");
    let leaf = public.leaf(dir, "login", &["localhost"]);
    let addr = serve::http(Some(pki::server_config(&leaf)), |_req| async {
        Response::new(Full::new(Bytes::from_static(b"{}")))
    })
    .await;
    (format!("https://localhost:{}/", addr.port()), public.ca_path.clone())
}

const PYTHON_ADDS_ONE_CA: &str = r#"
import json, os, ssl, sys, urllib.error, urllib.request
import requests

gateway, public = sys.argv[1], sys.argv[2]
ca = os.environ["MFAGATE_CA_CERT"]

def status(url, ctx):
    try:
        return urllib.request.urlopen(url, context=ctx, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code
    except urllib.error.URLError as e:
        return "refused: " + str(e.reason)

# ssl (urllib, http.client, aiohttp, httpx with verify=ctx): the system
# roots, plus the gateway's certificate.
ctx = ssl.create_default_context()
ctx.load_verify_locations(cafile=ca)
out = {"ssl_gateway": status(gateway, ctx), "ssl_public": status(public, ctx),
       "default_public": status(public, ssl.create_default_context())}
# requests: the session that calls the gateway verifies it with its
# certificate; every other session keeps its own roots.
session = requests.Session()
session.verify = ca
out["requests_gateway"] = session.get(gateway, timeout=10).status_code
print(json.dumps(out))
"#;

const NODE_ADDS_ONE_CA: &str = r#"
const tls = require("node:tls");
fetch(process.argv[1])
  .then((r) => console.log(JSON.stringify({ status: r.status, roots: tls.rootCertificates.length })))
  .catch((e) => console.log(JSON.stringify({ error: String(e.cause || e) })));
"#;

/// `program` with none of this machine's trust settings or proxies.
fn clean(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    for var in REPLACING.iter().chain(&["NODE_EXTRA_CA_CERTS", "NODE_OPTIONS", "HTTPS_PROXY", "https_proxy"]) {
        cmd.env_remove(var);
    }
    cmd
}

async fn json_of(mut cmd: tokio::process::Command) -> Value {
    let out = cmd.output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test]
async fn python_and_node_add_the_gateway_certificate_to_their_roots() {
    let env = TestEnv::setup().start().await;
    let dir = tempfile::tempdir().unwrap();
    let (public, system_store) = public_server(dir.path()).await;
    let gateway = env.url("/v1/customers");
    let gateway_ca = &env.pki.ca_path;

    // The system store holds the public server's root; the gateway's
    // certificate is added. Both verify (the gateway answers 401: no token).
    let python = || {
        let mut cmd = clean(setup::python());
        cmd.args(["-c", PYTHON_ADDS_ONE_CA, &gateway, &public]).env("MFAGATE_CA_CERT", gateway_ca);
        cmd
    };
    let mut cmd = python();
    cmd.env("SSL_CERT_FILE", &system_store);
    let added = json_of(cmd).await;
    assert_eq!(added["ssl_gateway"], 401, "{added}");
    assert_eq!(added["ssl_public"], 200, "{added}");
    assert_eq!(added["requests_gateway"], 401, "{added}");
    // As the manifest did: SSL_CERT_FILE naming the gateway's certificate
    // leaves no other root, and the public server is refused.
    let mut cmd = python();
    cmd.env("SSL_CERT_FILE", gateway_ca);
    let replaced = json_of(cmd).await;
    assert!(replaced["default_public"].as_str().is_some_and(|s| s.contains("CERTIFICATE_VERIFY_FAILED")), "{replaced}");

    let mut node = clean(setup::program("node"));
    node.args(["-e", NODE_ADDS_ONE_CA, &gateway]).env("NODE_EXTRA_CA_CERTS", gateway_ca);
    let node = json_of(node).await;
    assert_eq!(node["status"], 401, "{node}");
    assert!(node["roots"].as_u64().unwrap() > 100, "Node keeps its own roots: {node}");
}
