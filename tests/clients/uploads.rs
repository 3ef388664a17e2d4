//! A denied request with a body keeps its answer (RFC 9112 §9.6): the
//! gateway answers at once with `Connection: close`, reads and discards the
//! rest of the body, and only then closes, so a client still uploading sees
//! the 401 instead of a reset. Python `requests` (which sends the whole body
//! before it reads) and Node's fetch, through both listeners; the upstream
//! is never reached.

use serde_json::Value;

use crate::run::{self, BOTH, Via};
use crate::support::{PC_HOST, TestEnv};

const MIB: usize = 1024 * 1024;

fn url(env: &TestEnv, via: Via) -> String {
    format!("{}/v1/customers", via.base(env, PC_HOST))
}

fn assert_all_answered(out: &Value, count: usize, what: &str) {
    assert_eq!(out["answered"], count, "{what}: answers received: {out}");
    let statuses = out["statuses"].as_array().unwrap();
    assert!(statuses.iter().all(|s| s == 401), "{what}: {out}");
    assert!(out["reasons"].as_array().unwrap().iter().all(|r| r == "mfa_required"), "{what}: {out}");
    assert!(out["connection"].as_array().unwrap().iter().all(|c| c == "close"), "{what}: {out}");
}

#[tokio::test]
async fn python_requests_gets_the_401_of_a_denied_upload() {
    let env = crate::setup().start().await;
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    for via in BOTH {
        let mut vars = run::client_env(&env, via, "");
        vars.push(("TOKEN".into(), token.clone()));
        for size in [MIB, 16 * MIB] {
            let out = run::python("denied_upload.py", &[&url(&env, via), &size.to_string(), "20"], &vars).await;
            assert_all_answered(&out, 20, &format!("requests, {} MiB, {via:?}", size / MIB));
        }
        let out = run::python("denied_upload.py", &[&url(&env, via), &MIB.to_string(), "5", "chunked"], &vars).await;
        assert_all_answered(&out, 5, &format!("requests, 1 MiB chunked, {via:?}"));
    }
    assert_eq!(env.upstream.hits(), 0, "nothing reached the upstream");
}

#[tokio::test]
async fn node_fetch_gets_the_401_of_a_denied_upload() {
    let env = crate::setup().start().await;
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    for via in BOTH {
        let mut vars = run::client_env(&env, via, "");
        vars.push(("TOKEN".into(), token.clone()));
        let out = run::node("denied_upload.cjs", &[&url(&env, via), &(5 * MIB).to_string(), "20"], &vars).await;
        assert_all_answered(&out, 20, &format!("fetch, 5 MiB, {via:?}"));
    }
    assert_eq!(env.upstream.hits(), 0, "nothing reached the upstream");
}

/// What a raw HTTP/1.1 client saw while it uploaded.
#[derive(Debug)]
struct Upload {
    answer: String,
    /// The whole body was written.
    sent_all: bool,
    /// The connection ended with an orderly close (not a reset, not a timeout).
    clean_close: bool,
    elapsed: std::time::Duration,
}

impl Upload {
    fn status(&self) -> u16 {
        self.answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    fn closes(&self) -> bool {
        let head = self.answer.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
        head.contains("\r\nconnection: close\r\n")
    }

    fn reason(&self) -> Option<String> {
        let body = self.answer.split_once("\r\n\r\n")?.1;
        let json: Value = serde_json::from_str(body).ok()?;
        json["reason"].as_str().map(str::to_string)
    }
}

/// The body's framing and how it is sent.
#[derive(Clone, Copy)]
struct Sending {
    size: usize,
    chunked: bool,
    /// Stop after this many bytes and keep the connection open.
    stall_after: Option<usize>,
}

const fn sized(size: usize) -> Sending {
    Sending { size, chunked: false, stall_after: None }
}

/// Sends `head` (without its framing line) and a body as `sending` says on
/// `io`, reading while writing, the way a client that uploads before it
/// reads sees it.
async fn upload<S>(io: S, head: &str, sending: Sending) -> Upload
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let (mut read, mut write) = tokio::io::split(io);
    let Sending { size, chunked, stall_after } = sending;
    let framing = if chunked { "Transfer-Encoding: chunked".to_string() } else { format!("Content-Length: {size}") };
    let head = format!("{head}{framing}\r\n\r\n");
    let writer = async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        for i in 0..size / chunk.len() {
            if stall_after.is_some_and(|n| i * chunk.len() >= n) {
                // Holds the connection open until the gateway gives up on it.
                std::future::pending::<()>().await;
            }
            if chunked {
                write.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            }
            write.write_all(&chunk).await?;
            if chunked {
                write.write_all(b"\r\n").await?;
            }
        }
        if chunked {
            write.write_all(b"0\r\n\r\n").await?;
        }
        write.flush().await
    };
    let reader = async move {
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(20), read.read(&mut buf)).await {
                Ok(Ok(0)) => return (seen, true),
                Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
                Ok(Err(_)) | Err(_) => return (seen, false),
            }
        }
    };
    let mut writer = std::pin::pin!(writer);
    let mut reader = std::pin::pin!(reader);
    // The writer may stall for ever: the reader decides when it is over.
    let (mut writing, mut sent_all) = (true, false);
    let (seen, clean_close) = loop {
        tokio::select! {
            written = &mut writer, if writing => (writing, sent_all) = (false, written.is_ok()),
            read = &mut reader => break read,
        }
    };
    let answer = String::from_utf8_lossy(&seen).into_owned();
    Upload { answer, sent_all, clean_close, elapsed: started.elapsed() }
}

/// A raw TLS connection to the reverse listener.
async fn tls(env: &TestEnv) -> impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static {
    crate::support::raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await
}

fn post(path: &str, token: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n")
}

fn assert_staged_close(up: &Upload, status: u16, reason: &str, what: &str) {
    assert_eq!(up.status(), status, "{what}: {up:?}");
    assert_eq!(up.reason().as_deref(), Some(reason), "{what}: {up:?}");
    assert!(up.closes(), "{what}: the answer says Connection: close: {up:?}");
    assert!(up.sent_all, "{what}: the whole body was read, none of it refused");
    assert!(up.clean_close, "{what}: the connection ends with close_notify and FIN, not a reset");
}

#[tokio::test]
async fn a_denied_raw_upload_gets_its_401_then_a_staged_close() {
    let env = crate::setup().start().await;
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    let chunked = Sending { chunked: true, ..sized(4 * MIB) };
    for (sending, what) in [(sized(16 * MIB), "16 MiB"), (chunked, "4 MiB chunked")] {
        let up = upload(tls(&env).await, &post("/v1/customers", &token), sending).await;
        assert_staged_close(&up, 401, "mfa_required", what);
    }
    // Nothing to discard: the connection stays open for the next request.
    let rsp = env.client.post(env.url("/v1/customers")).bearer_auth(&token).body("").send().await.unwrap();
    assert_eq!(rsp.status(), 401);
    assert!(rsp.headers().get("connection").is_none(), "{:?}", rsp.headers());
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn every_early_answer_keeps_its_body() {
    let env = crate::setup().limits("denied_per_ip = { requests = 2, per = \"1h\" }").start().await;
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    let body = sized(4 * MIB);
    let up = upload(tls(&env).await, &post("/nowhere", &token), body).await;
    assert_staged_close(&up, 404, "no_route", "no route");
    let up = upload(tls(&env).await, &post("/v1/customers?access_token=x", &token), body).await;
    assert_staged_close(&up, 400, "bad_request", "a token in the query");
    let up = upload(tls(&env).await, &post("/v1/customers", &token), body).await;
    assert_staged_close(&up, 401, "mfa_required", "the last denial the budget allows");
    let up = upload(tls(&env).await, &post("/v1/customers", &token), body).await;
    assert_staged_close(&up, 429, "rate_limited", "over the budget of denied requests");
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn an_overloaded_answer_keeps_its_body() {
    let env = crate::setup().server("max_connections = 1").start().await;
    let token = env.idp.delegated().mint();
    // The one connection served, held open.
    let _held = tls(&env).await;
    let up = upload(tls(&env).await, &post("/v1/customers", &token), sized(4 * MIB)).await;
    assert_staged_close(&up, 503, "overloaded", "past max_connections");
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn discarding_is_bounded_in_size_and_time() {
    let env = crate::setup().server("discard_body_limit = \"1MiB\"\ndiscard_body_timeout = \"1s\"").start().await;
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    // Announced larger than the limit: closed at once, nothing read.
    let up = upload(tls(&env).await, &post("/v1/customers", &token), sized(64 * MIB)).await;
    assert!(up.closes() && !up.sent_all, "{up:?}");
    // Chunked past the limit: read up to it, then closed.
    let chunked = Sending { chunked: true, ..sized(64 * MIB) };
    let up = upload(tls(&env).await, &post("/v1/customers", &token), chunked).await;
    assert_eq!(up.status(), 401, "{up:?}");
    assert!(up.closes() && !up.sent_all, "{up:?}");
    // A client that stops sending is closed after discard_body_timeout.
    let stalled = Sending { stall_after: Some(MIB), ..sized(8 * MIB) };
    let up = upload(tls(&env).await, &post("/v1/customers", &token), stalled).await;
    assert_eq!(up.status(), 401, "{up:?}");
    assert!(up.elapsed < std::time::Duration::from_secs(10), "closed after the timeout: {up:?}");
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn http2_answers_and_resets_the_stream_with_no_error() {
    let env = crate::setup().start().await;
    let token = env.idp.delegated().amr(&["pwd"]).mint();
    let port = env.addr.port().to_string();
    let out = run::python("h2_early_answer.py", &[&port, &token, &(4 * MIB).to_string()], &[]).await;
    assert_eq!(out["status"], 401, "{out}");
    assert_eq!(out["reason"], "mfa_required", "{out}");
    assert_eq!(out["reset"], "NO_ERROR", "{out}");
    assert_eq!(out["second_status"], 401, "the connection serves on: {out}");
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn the_egress_proxys_own_answers_keep_their_body() {
    let env = crate::setup().egress("[egress.proxy_auth]\nusername = \"svc\"\npassword = \"s3cret\"").start().await;
    let proxy = env.egress.unwrap();
    let target = format!("POST http://{}/v1/customers HTTP/1.1\r\nHost: {}\r\n", PC_HOST, PC_HOST);
    let plain = || async { tokio::net::TcpStream::connect(proxy).await.unwrap() };
    let up = upload(plain().await, &target, sized(4 * MIB)).await;
    assert_staged_close(&up, 407, "proxy_auth_required", "no proxy credentials");
    let credentials = format!("{target}Proxy-Authorization: Basic c3ZjOnMzY3JldA==\r\n");
    let up = upload(plain().await, &credentials, sized(4 * MIB)).await;
    assert_staged_close(&up, 403, "tls_required", "plain http:// to a guarded host");
    assert_eq!(env.upstream.hits(), 0);
}
