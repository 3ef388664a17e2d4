//! The container image with each shipped ConfigMap, as the container
//! runtime starts it: the image's environment, entrypoint and the pod's
//! arguments. Environment overrides win over the configuration file, so a
//! `MFAGATE__` variable in the image silently changes every mounted
//! configuration: what `check-config` reports as effective must be what the
//! ConfigMap says, and the sidecar must listen on loopback only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use crate::pod::{self, Pod};
use crate::{BIN, ROOT, SHIPPED, deploy, find, manifest, pod_and_container};

/// What the Dockerfile's last stage gives the container.
pub struct Image {
    pub env: Vec<(String, String)>,
    /// `USER uid:gid`.
    pub user: (u32, u32),
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `COPY` instructions reading the build context: (source, destination).
    pub copies: Vec<(String, String)>,
}

/// `deploy/docker/Dockerfile`, read as the builder reads its instructions.
pub fn image() -> Image {
    let text = std::fs::read_to_string(deploy("docker/Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let instructions: Vec<&str> =
        joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let last = instructions.iter().rposition(|l| l.starts_with("FROM ")).expect("a FROM");
    let mut image =
        Image { env: Vec::new(), user: (0, 0), entrypoint: Vec::new(), cmd: Vec::new(), copies: Vec::new() };
    for line in &instructions[last + 1..] {
        let (op, rest) = line.split_once(' ').unwrap_or((line, ""));
        match op {
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("ENV {pair}: use KEY=VALUE"));
                    image.env.push((k.to_string(), v.trim_matches('"').to_string()));
                }
            }
            "USER" => {
                let (u, g) = rest.split_once(':').unwrap_or((rest, rest));
                image.user = (u.parse().expect("a numeric USER"), g.parse().expect("a numeric group"));
            }
            "ENTRYPOINT" => image.entrypoint = serde_json::from_str(rest).expect("ENTRYPOINT in exec form"),
            "CMD" => image.cmd = serde_json::from_str(rest).expect("CMD in exec form"),
            "COPY" if !rest.contains("--from") => {
                let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
                if let [src, dst] = words[..] {
                    image.copies.push((src.to_string(), dst.to_string()));
                }
            }
            _ => {}
        }
    }
    image
}

impl Image {
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The command line the runtime starts: the entrypoint, then the pod's
/// `args` (which replace `CMD`), with `check-config` in place of `run`.
fn check_config_command(image: &Image, container: &serde_json::Value, pod: &Pod) -> Vec<String> {
    let args: Vec<String> = match container["args"].as_array() {
        Some(args) => args.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        None => image.cmd.clone(),
    };
    let mut args: Vec<String> = args.into_iter().filter(|a| a != "run").map(|a| pod.path_of(&a)).collect();
    args.insert(0, "check-config".into());
    assert_eq!(image.entrypoint, ["/usr/local/bin/mfagate"], "the entrypoint is the gateway");
    args
}

/// `mfagate check-config` with exactly `env` (paths moved under the pod's
/// root) and the effective configuration it prints, flattened to keys.
async fn effective(args: &[String], env: &[(String, String)], pod: &Pod) -> BTreeMap<String, String> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, pod.path_of(v));
    }
    let out = cmd.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "check-config {args:?}: {stderr}");
    let value: toml::Value = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let mut keys = BTreeMap::new();
    flatten("", &value, &mut keys);
    keys
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
            }
        }
        toml::Value::Array(a) if a.iter().all(|v| v.is_table()) && !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        v => {
            out.insert(prefix.to_string(), v.to_string());
        }
    }
}

/// The pod's environment for `container`: the image's, then the manifest's
/// `env` (but values from Secrets, which the operator provides: the
/// configuration's stand-ins are used instead).
fn pod_env(image: &Image, container: &serde_json::Value) -> Vec<(String, String)> {
    let mut env = image.env.clone();
    for var in container["env"].as_array().into_iter().flatten() {
        if var["valueFrom"]["secretKeyRef"].is_object() {
            continue;
        }
        env.push((var["name"].as_str().unwrap().into(), var["value"].as_str().unwrap_or_default().into()));
    }
    env
}

#[tokio::test]
async fn the_image_environment_changes_nothing_a_configmap_sets_and_the_sidecar_listens_on_loopback() {
    let image = image();
    for shipped in SHIPPED {
        let docs = manifest(&deploy(shipped.file)).await;
        let (pod_spec, container) = pod_and_container(find(&docs, "Deployment", shipped.deployment), "mfagate");
        let dir = tempfile::tempdir().unwrap();
        let pod = pod::mount(&docs, pod_spec, container, image.user, dir.path(), |text| text.to_string());
        let args = check_config_command(&image, container, &pod);
        let with_image = effective(&args, &pod_env(&image, container), &pod).await;
        let manifest_only: Vec<(String, String)> =
            pod_env(&image, container).into_iter().filter(|(k, _)| image.env(k).is_none()).collect();
        let configmap_only = effective(&args, &manifest_only, &pod).await;
        let changed: Vec<String> = with_image
            .iter()
            .filter(|(k, v)| configmap_only.get(*k) != Some(v))
            .map(|(k, v)| format!("{k} = {v} (the ConfigMap says {})", configmap_only.get(k).map_or("nothing", |v| v)))
            .collect();
        assert!(changed.is_empty(), "{}: the image's environment overrides {changed:?}", shipped.file);
        if shipped.deployment == "partner-automation" {
            let listen: SocketAddr = with_image["server.listen"].trim_matches('"').parse().unwrap();
            assert!(listen.ip().is_loopback(), "the sidecar's TLS listener is open to the pod network: {listen}");
        }
    }

    // Without a mounted configuration the image runs its own, reachable
    // through `docker run -p`: the file MFAGATE_CONFIG names is copied in.
    let config = image.env("MFAGATE_CONFIG").expect("the image names its configuration");
    let (source, _) =
        image.copies.iter().find(|(_, dst)| dst == config).expect("the image's configuration is copied in");
    let out = tokio::process::Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(Path::new(ROOT).join(source))
        .env_clear()
        .envs(image.env.iter().filter(|(k, _)| k.starts_with("MFAGATE__")).map(|(k, v)| (k, v)))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let effective: toml::Value = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(effective["server"]["listen"].as_str(), Some("0.0.0.0:8443"), "{source}");
    assert_eq!(effective["server"]["admin_listen"].as_str(), Some("0.0.0.0:9090"), "{source}");
    assert_eq!(effective["identity"]["state_dir"].as_str(), Some("/var/lib/mfagate"), "{source}");
}
