//! Test support: `redis-server` child processes on free loopback ports.
//!
//! [`RedisServer::start`] runs a throw-away server (no RDB snapshots, no AOF) in a fresh working
//! directory, waits until it answers `PING`, and kills it (SIGKILL) when dropped.
//! [`RedisServer::start_with`] adds server options (e.g. `--appendonly yes` for a test that
//! restarts the server); [`RedisServer::kill`] kills it mid-test and [`RedisServer::restart`]
//! starts it again on the same port and directory.
//!
//! [`available`] tells a test whether it can run: when `redis-server` is missing it fails the test
//! if `THREDS_REQUIRE_SERVICES=1`, and otherwise prints `SKIPPED: …` and answers `false`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The server binary looked up on the `PATH`.
const BINARY: &str = "redis-server";

/// How long a server may take to answer its first `PING`.
const STARTUP: Duration = Duration::from_secs(10);

/// Numbers the working directories of the servers this process starts.
static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// Whether `redis-server` can be run here; see the module docs for what happens when it cannot.
pub fn available(test: &str) -> bool {
    if crate::runs(BINARY) {
        return true;
    }
    crate::skipped(
        &format!("{test}: {BINARY} not found on the PATH"),
        "scripts/install/redis.sh",
    )
}

/// A `redis-server` child process on `127.0.0.1`.
#[derive(Debug)]
pub struct RedisServer {
    /// The running process (`None` once killed).
    child: Option<Child>,
    /// Its port.
    port: u16,
    /// Its working directory (removed on drop).
    dir: PathBuf,
    /// The extra server options it was started with.
    options: Vec<String>,
}

impl RedisServer {
    /// Starts a server without persistence (`--save '' --appendonly no`).
    pub fn start() -> std::io::Result<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra options (they override the defaults, e.g. `["--appendonly",
    /// "yes"]`).
    pub fn start_with(options: &[&str]) -> std::io::Result<RedisServer> {
        let dir = std::env::temp_dir().join(format!(
            "threds-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        // The port is free when picked, but another process may take it before the server binds
        // it: try a few ports.
        let mut last = None;
        for _ in 0..5 {
            server.port = free_port()?;
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("redis-server did not start")))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its working directory (where an AOF or RDB file goes).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether it is running (not killed, not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills it at once (SIGKILL, no shutdown save) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (after [`RedisServer::kill`]) on the same port, directory and options.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Sends one command (inline protocol) and answers the raw reply, for checks in tests.
    pub fn command(&self, line: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("{line}\r\n").as_bytes())?;
        read_reply(&mut stream)
    }

    /// Spawns the process and waits until it answers `PING`.
    fn spawn(&mut self) -> std::io::Result<()> {
        let mut command = Command::new(BINARY);
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .args(&self.options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        loop {
            if !self.is_running() {
                self.child = None;
                return Err(std::io::Error::other(format!(
                    "redis-server exited at startup on port {} (see {})",
                    self.port,
                    self.dir.join("redis.log").display()
                )));
            }
            if self.command("PING").is_ok_and(|r| r.starts_with("+PONG")) && self.answers_itself() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(std::io::Error::other(format!(
                    "redis-server on port {} did not answer PING within {STARTUP:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    /// Whether the server answering on the port is this child (not another process that took
    /// the port first).
    fn answers_itself(&self) -> bool {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return false;
        };
        self.command("INFO server").is_ok_and(|info| {
            info.lines()
                .any(|l| l.trim() == format!("process_id:{pid}"))
        })
    }
}

/// A port free on `127.0.0.1` right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Reads one reply: a line, or for a bulk string the line and its body.
fn read_reply(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        reply.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&reply).into_owned();
    if let Some(len) = head
        .strip_prefix('$')
        .and_then(|l| l.trim().parse::<usize>().ok())
    {
        let mut body = vec![0u8; len + 2];
        stream.read_exact(&mut body)?;
        body.truncate(len);
        return Ok(String::from_utf8_lossy(&body).into_owned());
    }
    Ok(head)
}
