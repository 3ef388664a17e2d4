//! The gateway binary as a child process, for what only a process has:
//! signals (SIGHUP, SIGTERM) and its exit code. Logs are read as JSON lines.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub struct Gateway {
    child: Child,
    lines: mpsc::UnboundedReceiver<serde_json::Value>,
    /// Every log line so far.
    pub seen: Vec<serde_json::Value>,
    pub listen: String,
    pub admin: String,
}

impl Gateway {
    /// Starts `mfagate run --config PATH` and waits until it listens.
    pub async fn start(config: &std::path::Path) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mfagate"));
        cmd.args(["run", "--config"]).arg(config).env_remove("MFAGATE_CONFIG").env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("MFAGATE__") {
                cmd.env_remove(k);
            }
        }
        Self::spawn(cmd, &config.display().to_string()).await
    }

    /// Starts `cmd` (the gateway, logging JSON lines to stderr, perhaps
    /// through a wrapper) and waits until it listens; `what` names it in
    /// failures.
    pub async fn spawn(mut cmd: Command, what: &str) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let v = serde_json::from_str(&line).unwrap_or_else(|_| serde_json::json!({ "message": line }));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut gw = Self { child, lines, seen: Vec::new(), listen: String::new(), admin: String::new() };
        let started = gw.wait_for("mfagate started").await;
        gw.listen = started["listen"].as_str().unwrap().to_string();
        gw.admin = started["admin"].as_str().unwrap().to_string();
        gw
    }

    /// The next log line whose message is `message` (at most 30 s away).
    pub async fn wait_for(&mut self, message: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no log line {message:?}; seen: {:#?}", self.seen))
                .unwrap_or_else(|| panic!("mfagate exited before logging {message:?}; seen: {:#?}", self.seen));
            self.seen.push(line.clone());
            if line["message"] == message {
                return line;
            }
        }
    }

    /// Every log line, once the process has exited and its stderr closed.
    pub async fn all_lines(&mut self) -> Vec<serde_json::Value> {
        while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(30), self.lines.recv()).await {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    pub async fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status =
            Command::new(super::setup::program("kill")).args([&format!("-{name}"), &pid]).status().await.unwrap();
        assert!(status.success(), "kill -{name} {pid}");
    }

    pub fn url(&self, path: &str) -> String {
        let port = self.listen.rsplit(':').next().unwrap();
        format!("https://localhost:{port}{path}")
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub async fn metric(&self, series: &str) -> f64 {
        let scrape = reqwest::get(self.admin_url("/metrics")).await.unwrap().text().await.unwrap();
        super::sample(&scrape, series)
    }

    /// Waits for the process to exit (at most `within`).
    pub async fn exit(&mut self, within: Duration) -> ExitStatus {
        tokio::time::timeout(within, self.child.wait()).await.expect("mfagate exits in time").unwrap()
    }
}
