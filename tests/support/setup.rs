//! What the tests run besides the gateway, installed on first use so that
//! `cargo test` alone works on a fresh Debian machine: Debian packages
//! (curl, openssl, promtool, redis-server, ...), Python virtual environments made from
//! pinned requirement files, and npm trees made from lock files.
//!
//! Test binaries run one after another, but their threads in parallel and
//! `cargo test` may be started twice: every install happens under one file
//! lock (`target/test-setup.lock`). A virtual environment or npm tree keeps
//! a stamp, the SHA-256 of the files it was made from; while the stamp
//! matches, nothing is run, so a second run costs a few file reads. What is
//! installed is said on stderr (written past the test harness's capture, so
//! cargo shows it).
//!
//! To add a dependency: a command to `DEBIAN`, a requirement file to an
//! entry of `VENVS` (or a new entry), a package tree to `NPM_TREES`; the
//! tests then ask for it by name (`venv("sdk")`, `npm_tree("sdk")`).
//!
//! `MFAGATE_TEST_PYTHON` names an interpreter to use instead of the `tests`
//! virtual environment (nothing is installed for it); `MFAGATE_OPS_TOOLS`
//! moves the deploy checks' directory from `target/ops-tools`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Commands the tests run, and the Debian package that provides each.
const DEBIAN: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("openssl", "openssl"),
    ("promtool", "prometheus"),
    ("systemd-analyze", "systemd"),
    ("slowhttptest", "slowhttptest"),
    ("setpriv", "util-linux"),
    ("kill", "procps"),
    ("python3", "python3"),
    ("node", "nodejs"),
    ("npm", "npm"),
    ("chromium", "chromium"),
    ("redis-server", "redis-server"),
];

/// Where a virtual environment or npm tree lives.
#[derive(Clone, Copy)]
enum Place {
    /// Under `target/`.
    Target(&'static str),
    /// Under `$MFAGATE_OPS_TOOLS` (default `target/ops-tools`).
    OpsTools(&'static str),
}

impl Place {
    fn path(self) -> PathBuf {
        match self {
            Self::Target(dir) => Path::new(ROOT).join("target").join(dir),
            Self::OpsTools(dir) => ops_tools_dir().join(dir),
        }
    }
}

/// A Python virtual environment and the requirement files installed into it.
struct Venv {
    name: &'static str,
    place: Place,
    requirements: &'static [&'static str],
}

const VENVS: &[Venv] = &[
    // The scripts in tests/py/, Python `requests` through the egress proxy,
    // and Microsoft's client libraries (tests/clients.rs).
    Venv {
        name: "tests",
        place: Place::Target("py-venv"),
        requirements: &["tests/py/requirements.txt", "tests/py/clients-requirements.txt"],
    },
    // kubernetes-validate and hadolint for tests/deploy.rs.
    Venv { name: "ops", place: Place::OpsTools("venv"), requirements: &["tests/tools/requirements.txt"] },
];

/// A directory of the repository with `package.json` and
/// `package-lock.json`, installed with `npm ci`; `scripts` are copied next
/// to its `node_modules` so that their imports resolve.
struct NpmTree {
    name: &'static str,
    place: Place,
    source: &'static str,
    scripts: &'static [&'static str],
}

const NPM_TREES: &[NpmTree] = &[
    NpmTree {
        name: "ops",
        place: Place::OpsTools("npm"),
        source: "tests/tools",
        scripts: &["servicemonitor-check.mjs"],
    },
    // undici for Node's fetch through the egress proxy (tests/clients.rs).
    NpmTree { name: "node", place: Place::Target("node-clients"), source: "tests/node", scripts: &[] },
];

fn ops_tools_dir() -> PathBuf {
    std::env::var_os("MFAGATE_OPS_TOOLS").map_or_else(|| Path::new(ROOT).join("target/ops-tools"), PathBuf::from)
}

/// `name`, a command from `DEBIAN`, after making sure every command there
/// is installed.
pub fn program(name: &'static str) -> &'static str {
    assert!(DEBIAN.iter().any(|(c, _)| *c == name), "{name} is not in setup::DEBIAN");
    debian();
    name
}

/// The Python interpreter for the scripts in `tests/py/`:
/// `$MFAGATE_TEST_PYTHON`, else the `tests` virtual environment.
pub fn python() -> PathBuf {
    match std::env::var_os("MFAGATE_TEST_PYTHON") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(path.exists(), "MFAGATE_TEST_PYTHON={} does not exist", path.display());
            path
        }
        None => venv("tests").join("bin/python"),
    }
}

/// A tool of the deploy checks, `relative` to `$MFAGATE_OPS_TOOLS`
/// (its virtual environment and npm tree are made first).
pub fn ops_tool(relative: &str) -> PathBuf {
    venv("ops");
    npm_tree("ops");
    ops_tools_dir().join(relative)
}

/// Installs whatever of `DEBIAN` is missing, once per process.
pub fn debian() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let missing: Vec<&str> = DEBIAN.iter().filter(|(c, _)| !on_path(c)).map(|(_, p)| *p).collect();
        if missing.is_empty() {
            return;
        }
        let _lock = lock();
        // Another process may have installed them while this one waited.
        let missing: Vec<&str> = DEBIAN.iter().filter(|(c, _)| !on_path(c)).map(|(_, p)| *p).collect();
        if !missing.is_empty() {
            apt_install(&missing);
        }
    });
}

/// The directory of the virtual environment `name` of `VENVS`, made or
/// remade when its requirement files changed.
pub fn venv(name: &str) -> PathBuf {
    let venv = VENVS.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no virtual environment {name:?}"));
    once(name, || {
        debian();
        let dir = venv.place.path();
        let files: Vec<PathBuf> = venv.requirements.iter().map(|r| Path::new(ROOT).join(r)).collect();
        ensure(&dir, &files, || {
            say(&format!(
                "making the Python virtual environment {} from {}",
                shown(&dir),
                venv.requirements.join(", ")
            ));
            make_venv(&dir);
            let mut pip = Command::new(dir.join("bin/python"));
            pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
            for file in &files {
                pip.arg("-r").arg(file);
            }
            run(&mut pip, "pip install");
        });
        dir
    })
}

/// The directory of the npm tree `name` of `NPM_TREES`, installed with
/// `npm ci` (again when its lock file changed), with its scripts copied in.
pub fn npm_tree(name: &str) -> PathBuf {
    let tree = NPM_TREES.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no npm tree {name:?}"));
    once(&format!("npm:{name}"), || {
        debian();
        let dir = tree.place.path();
        let source = Path::new(ROOT).join(tree.source);
        let files = [source.join("package.json"), source.join("package-lock.json")];
        ensure(&dir, &files, || {
            say(&format!("installing the npm packages of {} into {} (npm ci)", tree.source, shown(&dir)));
            std::fs::create_dir_all(&dir).unwrap();
            for file in &files {
                std::fs::copy(file, dir.join(file.file_name().unwrap())).unwrap();
            }
            let mut npm = Command::new("npm");
            npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir);
            run(&mut npm, "npm ci");
        });
        for script in tree.scripts {
            let (from, to) = (source.join(script), dir.join(script));
            let text = std::fs::read(&from).unwrap();
            if std::fs::read(&to).ok().as_ref() != Some(&text) {
                std::fs::write(&to, text).unwrap();
            }
        }
        dir
    })
}

/// Runs `make` once per process for `key`; other threads asking for the
/// same key wait for the first.
fn once(key: &str, make: impl FnOnce() -> PathBuf) -> PathBuf {
    static DONE: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = done.get_or_insert_with(HashMap::new).get(key) {
        return path.clone();
    }
    let path = make();
    done.get_or_insert_with(HashMap::new).insert(key.to_string(), path.clone());
    path
}

/// Makes `dir` with `make` unless its stamp records the content of `inputs`.
fn ensure(dir: &Path, inputs: &[PathBuf], make: impl FnOnce()) {
    let stamp = stamp(inputs);
    let stamp_file = dir.join(".mfagate-setup-stamp");
    let current = || std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp);
    if current() {
        return;
    }
    let _lock = lock();
    if current() {
        return;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
    }
    make();
    // Written last: an install that broke off is redone next time.
    std::fs::write(&stamp_file, stamp).unwrap();
}

/// SHA-256 over each input's name and content, as hex.
fn stamp(inputs: &[PathBuf]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for input in inputs {
        let text = std::fs::read(input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        ctx.update(input.strip_prefix(ROOT).unwrap_or(input).to_string_lossy().as_bytes());
        ctx.update(&(text.len() as u64).to_le_bytes());
        ctx.update(&text);
    }
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The setup lock, held until the returned file is dropped.
fn lock() -> File {
    let dir = Path::new(ROOT).join("target");
    std::fs::create_dir_all(&dir).unwrap();
    let file = File::create(dir.join("test-setup.lock")).unwrap();
    file.lock().expect("the test setup lock");
    file
}

fn make_venv(dir: &Path) {
    let venv = || Command::new("python3").arg("-m").arg("venv").arg(dir).output();
    if venv().is_ok_and(|o| o.status.success()) {
        return;
    }
    // Debian's python3 makes virtual environments only with python3-venv.
    let _ = std::fs::remove_dir_all(dir);
    apt_install(&["python3-venv"]);
    let mut retry = Command::new("python3");
    run(retry.arg("-m").arg("venv").arg(dir), "python3 -m venv");
}

fn apt_install(packages: &[&str]) {
    let list = packages.join(" ");
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    assert!(root, "the tests need these Debian packages: apt-get install {list} (as root)");
    say(&format!("installing Debian packages: {list}"));
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(&mut apt(&["update", "-qq"]), "apt-get update");
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    run(install.args(packages), "apt-get install");
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed ({status})");
}

fn on_path(command: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| {
        let file = dir.join(command);
        std::fs::metadata(&file)
            .is_ok_and(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
    })
}

fn shown(path: &Path) -> String {
    path.strip_prefix(ROOT).unwrap_or(path).display().to_string()
}

/// A line on the real stderr: the test harness captures `eprintln!`, not this.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "mfagate test setup: {text}");
}
