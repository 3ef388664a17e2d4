//! A real `redis-server` (Debian's package, installed on first use) on a
//! free loopback port, one per test that needs it, with no persistence: it
//! can be killed and started again on the same port (empty), or stopped
//! with SIGSTOP so that it accepts connections but never answers.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Redis {
    pub async fn start() -> Self {
        Self::with_args(&[]).await
    }

    /// A server started with more `redis-server` arguments (`--requirepass x`, ...).
    pub async fn with_args(extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        redis.spawn().await;
        redis
    }

    async fn spawn(&mut self) {
        let server = super::setup::program("redis-server");
        let mut cmd = Command::new(server);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        self.child = Some(cmd.spawn().expect("redis-server starts"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not listen on {}", self.port);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).expect("redis-server runs")
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("redis-server runs");
        child.kill().await.unwrap();
        let _ = child.wait().await;
    }

    /// Starts the server again on the same port, empty.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        self.spawn().await;
    }

    /// SIGSTOP (`"STOP"`) or SIGCONT (`"CONT"`).
    pub async fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let status =
            Command::new(super::setup::program("kill")).args([&format!("-{name}"), &pid]).status().await.unwrap();
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// Runs one command (as the default user, or after `auth`) and returns its answer.
    pub async fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        self.cmd_as(None, args).await
    }

    pub async fn cmd_as<T: redis::FromRedisValue>(&self, auth: Option<(&str, &str)>, args: &[&str]) -> T {
        let url = match auth {
            None => self.url(),
            Some((user, password)) => {
                let enc =
                    |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
                format!("redis://{}:{}@127.0.0.1:{}/0", enc(user), enc(password), self.port)
            }
        };
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.expect("connects to redis-server");
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut conn).await.unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// A field of `INFO` (e.g. `total_connections_received`).
    pub async fn info(&self, field: &str) -> i64 {
        let info: String = self.cmd(&["INFO", "all"]).await;
        info.lines()
            .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
            .unwrap_or_else(|| panic!("no {field} in INFO"))
            .trim()
            .parse()
            .unwrap()
    }
}
