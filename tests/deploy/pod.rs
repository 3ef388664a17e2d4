//! The gateway's pod as a kubelet makes it: each volume the container
//! mounts is written under a directory of the test's own with the modes and
//! ownership a kubelet gives it (Secret and ConfigMap files owned by root
//! with `mode` or `defaultMode`, default 0644; with `fsGroup` their group is
//! the fsGroup and group read is added; an emptyDir is 0777), and the
//! binary runs as the pod's user and groups (`setpriv`), so a key the user
//! cannot read or a state directory it cannot write fails here as in the
//! cluster.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::container::image;
use crate::support::process::Gateway;
use crate::support::{Idp, JwksMode, Pki, setup};
use crate::{BIN, SHIPPED, deploy, find, manifest, pod_and_container};

/// A pod's files under `root`, and the identity its container runs with.
pub struct Pod {
    pub root: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Every file written, with the key it holds (`volume/key`).
    pub files: Vec<(String, PathBuf)>,
}

impl Pod {
    /// `path` as seen from the test: an absolute path moved under `root`.
    pub fn path_of(&self, path: &str) -> String {
        if path.starts_with('/') && !path.starts_with(self.root.to_str().unwrap()) {
            format!("{}{path}", self.root.display())
        } else {
            path.to_string()
        }
    }

    /// The file written for `key` of `volume`.
    pub fn file(&self, volume: &str, key: &str) -> &Path {
        let name = format!("{volume}/{key}");
        &self.files.iter().find(|(k, _)| *k == name).unwrap_or_else(|| panic!("{name} is not mounted")).1
    }
}

/// A certificate and key for the Secrets the manifests expect to be made
/// with `kubectl create secret tls`.
fn tls_secret(root: &Path) -> (Vec<u8>, Vec<u8>) {
    let pki = Pki::new(root);
    let leaf = pki.leaf(root, "pod-leaf", &["localhost", "127.0.0.1"]);
    (leaf.cert_pem.into_bytes(), leaf.key_pem.into_bytes())
}

/// Writes what `container` of `pod` mounts under `root` as a kubelet does.
/// ConfigMap text has its absolute paths moved under `root`, then `edit`ed.
pub fn mount(
    docs: &[Value],
    pod: &Value,
    container: &Value,
    image_user: (u32, u32),
    root: &Path,
    edit: impl Fn(&str) -> String,
) -> Pod {
    assert!(
        std::fs::metadata("/proc/self").unwrap().uid() == 0,
        "the pod's files are written as a kubelet writes them, owned by root: run the tests as root"
    );
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let context = &pod["securityContext"];
    let own = &container["securityContext"];
    let pick = |key: &str, default: u32| own[key].as_u64().or(context[key].as_u64()).map_or(default, |v| v as u32);
    let fs_group = context["fsGroup"].as_u64().map(|g| g as u32);
    let mut groups: Vec<u32> = fs_group.into_iter().collect();
    groups.extend(context["supplementalGroups"].as_array().into_iter().flatten().map(|g| g.as_u64().unwrap() as u32));
    let mut out = Pod {
        root: root.to_path_buf(),
        uid: pick("runAsUser", image_user.0),
        gid: pick("runAsGroup", image_user.1),
        groups,
        files: Vec::new(),
    };
    let (cert, key) = tls_secret(root);
    let rooted = |text: &str| {
        let r = root.display().to_string();
        edit(
            &text
                .replace("\"/etc/mfagate", &format!("\"{r}/etc/mfagate"))
                .replace("\"/var/lib/mfagate", &format!("\"{r}/var/lib/mfagate")),
        )
    };
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = mount["name"].as_str().unwrap();
        let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == name).expect("a volume");
        let target = PathBuf::from(out.path_of(mount["mountPath"].as_str().unwrap()));
        let (source, data): (&Value, Vec<(String, Vec<u8>)>) = if volume["secret"].is_object() {
            let secret = volume["secret"]["secretName"].as_str().unwrap();
            let keys = [("tls.crt", cert.clone()), ("tls.key", key.clone())];
            assert!(secret.ends_with("-tls"), "{secret}: a kubernetes.io/tls Secret");
            (&volume["secret"], keys.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        } else if volume["configMap"].is_object() {
            let map = find(docs, "ConfigMap", volume["configMap"]["name"].as_str().unwrap());
            let data = map["data"].as_object().unwrap();
            (
                &volume["configMap"],
                data.iter().map(|(k, v)| (k.clone(), rooted(v.as_str().unwrap()).into_bytes())).collect(),
            )
        } else if volume["emptyDir"].is_object() {
            std::fs::create_dir_all(&target).unwrap();
            chown(&target, 0, fs_group.unwrap_or(0));
            let mode = if fs_group.is_some() { 0o2777 } else { 0o777 };
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).unwrap();
            continue;
        } else {
            panic!("volume {name}: only Secret, ConfigMap and emptyDir volumes are emulated");
        };
        let default_mode = source["defaultMode"].as_u64().unwrap_or(0o644) as u32;
        // `items` choose keys and may set a mode each; without them every key is a file.
        let files: Vec<(String, String, u32)> = match source["items"].as_array() {
            Some(items) => items
                .iter()
                .map(|i| {
                    let mode = i["mode"].as_u64().map_or(default_mode, |m| m as u32);
                    (i["key"].as_str().unwrap().into(), i["path"].as_str().unwrap().into(), mode)
                })
                .collect(),
            None => data.iter().map(|(k, _)| (k.clone(), k.clone(), default_mode)).collect(),
        };
        for (key, path, mode) in files {
            let content = &data.iter().find(|(k, _)| *k == key).unwrap_or_else(|| panic!("{name} has no {key}")).1;
            let file = match mount["subPath"].as_str() {
                Some(sub) if sub == path => target.clone(),
                Some(_) => continue,
                None => target.join(&path),
            };
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, content).unwrap();
            // SetVolumeOwnership: the fsGroup's group, and group read added.
            chown(&file, 0, fs_group.unwrap_or(0));
            let mode = if fs_group.is_some() { mode | 0o440 } else { mode };
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            out.files.push((format!("{name}/{key}"), file));
        }
    }
    out
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// `setpriv` running `BIN args` as the pod's user, group and groups, with
/// no capabilities left (as for any non-root container user).
fn as_pod_user(pod: &Pod, args: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(setup::program("setpriv"));
    cmd.arg(format!("--reuid={}", pod.uid)).arg(format!("--regid={}", pod.gid));
    if pod.groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        cmd.arg(format!("--groups={}", pod.groups.iter().map(u32::to_string).collect::<Vec<_>>().join(",")));
    }
    cmd.arg("--").arg(BIN).args(args);
    cmd
}

#[tokio::test]
async fn the_gateway_starts_as_its_pod_user_on_the_files_a_kubelet_writes() {
    let image = image();
    let idp = Idp::start(JwksMode::Serve).await;
    for shipped in SHIPPED {
        let docs = manifest(&deploy(shipped.file)).await;
        let (pod_spec, container) = pod_and_container(find(&docs, "Deployment", shipped.deployment), "mfagate");
        let dir = tempfile::tempdir().unwrap();
        // The configuration as shipped, but for ephemeral ports and the
        // test's identity provider; the files and the user are the pod's.
        let pod = mount(&docs, pod_spec, container, image.user, dir.path(), |text| {
            let mut config: toml::Table = toml::from_str(text).unwrap();
            let server = config["server"].as_table_mut().unwrap();
            server.insert("listen".into(), "127.0.0.1:0".into());
            server.insert("admin_listen".into(), "127.0.0.1:0".into());
            let identity = config.entry("identity").or_insert(toml::Table::new().into()).as_table_mut().unwrap();
            identity.insert("jwks_uri".into(), idp.url.clone().into());
            config.insert("log".into(), toml::toml! { format = "json" }.into());
            toml::to_string(&config).unwrap()
        });
        assert_ne!(pod.uid, 0, "{}: the gateway does not run as root", shipped.file);

        // The private key is readable by the gateway's user and by no one else.
        let key = pod.file("tls", "tls.key");
        let meta = std::fs::metadata(key).unwrap();
        assert_eq!(meta.mode() & 0o007, 0, "{}: tls.key is readable by every user ({:o})", shipped.file, meta.mode());

        let args: Vec<String> =
            container["args"].as_array().unwrap().iter().map(|a| pod.path_of(a.as_str().unwrap())).collect();
        let mut cmd = as_pod_user(&pod, &args);
        cmd.env_clear()
            .envs(image.env.iter().filter(|(k, _)| !k.starts_with("MFAGATE__")).map(|(k, v)| (k, pod.path_of(v))));
        let mut gw =
            Gateway::spawn(cmd, &format!("{} as {}:{} {:?}", shipped.file, pod.uid, pod.gid, pod.groups)).await;
        let ready = reqwest::get(gw.admin_url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200, "{}: {}", shipped.file, ready.text().await.unwrap());
        // The last good key set was saved to the state emptyDir.
        let state = dir.path().join("var/lib/mfagate");
        crate::support::eventually("the key set is saved", || {
            let saved = std::fs::read_dir(&state).is_ok_and(|d| d.count() > 0);
            async move { saved }
        })
        .await;
        gw.signal("TERM").await;
        assert!(gw.exit(Duration::from_secs(30)).await.success(), "{}", shipped.file);
    }
}
