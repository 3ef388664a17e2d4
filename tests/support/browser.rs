//! Headless Chromium (Debian's `chromium`) for tests that open a page the
//! gateway wrote: the DOM as the browser parsed it, what it wrote to its
//! console, and a screenshot. Chromium is installed when it is missing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// `$MFAGATE_CHROMIUM`, else `chromium` on the `PATH`, installed first
/// when it is missing.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("MFAGATE_CHROMIUM") {
        return PathBuf::from(path);
    }
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED.get_or_init(|| install("chromium", "chromium")).clone()
}

/// `command` on the `PATH`, else Debian's `package` installed with apt (as
/// root, as `.ci/run` does). A lock file under target/ keeps test binaries
/// running at once from starting apt side by side.
pub fn install(command: &str, package: &str) -> PathBuf {
    if let Some(found) = on_path(command) {
        return found;
    }
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp is under target/");
    let lock = target.join(format!("install-{package}.lock"));
    let script = format!(
        "command -v {command} >/dev/null || {{ export DEBIAN_FRONTEND=noninteractive; \
         apt-get update -qq && apt-get install -y -qq --no-install-recommends {package}; }}"
    );
    let out = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sh", "-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run flock (util-linux) to install {package}: {e}"));
    let found = on_path(command).filter(|_| out.status.success());
    found.unwrap_or_else(|| {
        panic!(
            "{command} is missing, and still after `apt-get install -y {package}` ({}); install it as root, \
             or point MFAGATE_CHROMIUM at a Chromium binary:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn on_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(command)).find(|p| p.is_file())
}

/// What one headless run printed.
pub struct Run {
    pub stdout: String,
    /// The page's console messages (`CONSOLE` lines of Chromium's log):
    /// script errors, blocked resources, Content-Security-Policy violations.
    pub console: Vec<String>,
    pub stderr: String,
}

/// Opens `page` in a fresh headless Chromium with `args` (`--dump-dom`,
/// `--screenshot=...`), with a profile of its own and no network beyond
/// the page. The flags are those that work on a machine without network
/// access: Chromium's background connections would otherwise be refused at
/// every start.
pub async fn open(page: &Path, args: &[&str]) -> Run {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(&url)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("chromium finished within 2 minutes")
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed ({}): {stderr}", out.status);
    let console = stderr.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect();
    Run { stdout: String::from_utf8_lossy(&out.stdout).into_owned(), console, stderr }
}
