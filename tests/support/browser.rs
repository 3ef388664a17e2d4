//! Headless Chromium (Debian's `chromium`) for tests that open a page the
//! gateway wrote: the DOM as the browser parsed it, what it wrote to its
//! console, and a screenshot. Chromium is installed when it is missing
//! (`setup`).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// `$MFAGATE_CHROMIUM`, else Debian's `chromium`, installed by the test
/// setup when it is missing.
pub fn chromium() -> PathBuf {
    match std::env::var_os("MFAGATE_CHROMIUM") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(super::setup::program("chromium")),
    }
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
