//! Shared helpers for end-to-end tests: start `threds dev` as a subprocess, mint tokens, talk to it
//! over WebSocket and HTTP; [`cluster`] hosts the distributed deployment's infrastructure.

#![allow(dead_code, clippy::unwrap_used)]

pub mod cluster;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The secret every test server and token uses.
pub const SECRET: &str = "e2e-test-secret";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared reference material, when present.
pub fn reference() -> Option<PathBuf> {
    let p = repo().join("../shared/reference/srvthreds");
    p.is_dir().then_some(p)
}

/// A running `threds dev`.
pub struct Server {
    child: Child,
    /// `host:port`.
    pub addr: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `threds dev` with `args` (plus `--listen 127.0.0.1:0`) and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        Server::spawn("dev", args, &[])
    }

    /// Starts `threds <command>` with `args` (plus `--listen 127.0.0.1:0`) and `env`, and waits
    /// until it listens and is ready; its log lines are echoed with the command as prefix.
    #[allow(
        clippy::zombie_processes,
        reason = "the Server owns the child and reaps it on drop"
    )]
    pub fn spawn(command: &str, args: &[&str], env: &[(&str, String)]) -> Server {
        let prefix = format!(
            "[{}]",
            env.iter()
                .find(|(k, _)| *k == "THREDS_NODE")
                .map_or(command, |(_, v)| v.as_str())
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_threds"))
            .arg(command)
            .args(["--listen", "127.0.0.1:0"])
            .args(if args.contains(&"--config") {
                &[][..]
            } else {
                &["--config", "/nonexistent/threds.toml"][..]
            })
            .args(args)
            .env("THREDS_JWT_SECRET", SECRET)
            .env(
                "THREDS_LOG",
                std::env::var("E2E_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(repo())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start threds {command}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{prefix} {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("threds {command} did not start"));
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().to_string();
                let server = Server {
                    child,
                    addr,
                    lines: rx,
                };
                server.wait_ready();
                return server;
            }
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(&self.addr) {
                use std::io::{Read, Write};
                let _ = write!(s, "GET /readyz HTTP/1.0\r\n\r\n");
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("threds {} never became ready", self.addr);
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "threds dev did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log lines received since start-up (after the "listening" line) or the previous call.
    pub fn take_log(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Log lines seen so far containing `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.lines.try_iter().any(|l| l.contains(needle))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token for `participant` with `roles`, minted by `threds token`.
pub fn token(participant: &str, roles: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_threds"));
    cmd.args([
        "token",
        "--participant",
        participant,
        "--config",
        "/nonexistent/threds.toml",
    ])
    .env("THREDS_JWT_SECRET", SECRET);
    for r in roles {
        cmd.args(["--role", r]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "threds token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A WebSocket client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames received but not yet taken.
    pub inbox: Vec<Value>,
}

impl Client {
    /// Connects as `participant`.
    pub async fn connect(server: &Server, participant: &str, roles: &[&str]) -> Client {
        Client::connect_addr(&server.addr, participant, roles).await
    }

    /// Connects to the server at `addr` (`host:port`) as `participant`.
    pub async fn connect_addr(addr: &str, participant: &str, roles: &[&str]) -> Client {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", token(participant, roles))
                .parse()
                .unwrap(),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        Client {
            ws,
            inbox: Vec::new(),
        }
    }

    /// Connects with a raw URL (e.g. `?token=`), for refusal tests.
    pub async fn connect_url(url: &str) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }

    /// Sends `{"event": event}` and waits for its ack.
    pub async fn send(&mut self, event: Value) {
        let id = event["id"].as_str().unwrap_or_default().to_string();
        self.ws
            .send(Message::text(json!({ "event": event }).to_string()))
            .await
            .unwrap();
        self.frame(|f| f["ack"]["id"] == id.as_str(), Duration::from_secs(5))
            .await;
    }

    /// The underlying socket (for close-frame checks).
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.ws
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_string())).await.unwrap();
    }

    /// Waits for a frame satisfying `pred` (earlier non-matching frames stay in the inbox).
    /// The frames received but not yet asked for, each cut to 300 characters.
    fn inbox_summary(&self) -> String {
        let frames: Vec<String> = self
            .inbox
            .iter()
            .map(|v| v.to_string().chars().take(300).collect())
            .collect();
        format!("{} frame(s): {frames:?}", frames.len())
    }

    pub async fn frame(&mut self, pred: impl Fn(&Value) -> bool, within: Duration) -> Value {
        if let Some(i) = self.inbox.iter().position(&pred) {
            return self.inbox.remove(i);
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await;
            let msg = match next {
                Ok(Some(Ok(m))) => m,
                Ok(other) => panic!(
                    "connection ended while waiting: {other:?}; inbox: {}",
                    self.inbox_summary()
                ),
                Err(_) => panic!(
                    "no matching frame within {within:?}; inbox: {}",
                    self.inbox_summary()
                ),
            };
            if let Message::Text(text) = msg {
                let v: Value = serde_json::from_str(&text).unwrap();
                if pred(&v) {
                    return v;
                }
                self.inbox.push(v);
            }
        }
    }

    /// Waits for a message whose event title is `title`.
    pub async fn message(&mut self, title: &str) -> Value {
        self.message_within(title, Duration::from_secs(10)).await
    }

    /// The message titled `title`, waiting up to `within`.
    pub async fn message_within(&mut self, title: &str, within: Duration) -> Value {
        let t = title.to_string();
        self.frame(
            move |f| f["message"]["event"]["data"]["title"] == t.as_str(),
            within,
        )
        .await["message"]
            .clone()
    }

    /// Collects every message frame arriving within `window`.
    pub async fn drain(&mut self, window: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            if let Message::Text(text) = m {
                self.inbox.push(serde_json::from_str(&text).unwrap());
            }
        }
        std::mem::take(&mut self.inbox)
            .into_iter()
            .filter(|f| f.get("message").is_some())
            .collect()
    }
}

/// POSTs an event as `participant`; returns the status and body.
pub async fn post_event(
    server: &Server,
    participant: &str,
    roles: &[&str],
    event: Value,
) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}/events", server.addr))
        .bearer_auth(token(participant, roles))
        .json(&event)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A temporary directory of patterns for one test.
pub fn pattern_dir(patterns: &[(&str, Value)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, p) in patterns {
        std::fs::write(
            dir.path().join(format!("{name}.pattern.json")),
            p.to_string(),
        )
        .unwrap();
    }
    dir
}
