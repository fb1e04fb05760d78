//! One `threds` child process: started and made ready by [`Process::start`], stopped (SIGTERM),
//! killed (SIGKILL) or restarted by its owner, killed when dropped.

use super::{log, Launcher};
use crate::client::Client;
use crate::{http, Error};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a process may take to exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// The log line that tells where a process listens.
const LISTENING: &str = "listening on http://";

/// A running `threds` process.
#[derive(Debug)]
pub struct Process {
    launcher: Launcher,
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    addr: String,
    lines: mpsc::Receiver<String>,
    log_path: Option<PathBuf>,
}

impl Process {
    /// Starts `threds <command>` as `launcher` says and waits until it is ready.
    pub(super) fn start(
        launcher: Launcher,
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Result<Process, Error> {
        let (_, lines) = mpsc::sync_channel(0);
        let mut process = Process {
            launcher,
            command,
            args,
            env,
            child: None,
            addr: String::new(),
            lines,
            log_path: None,
        };
        process.launch()?;
        Ok(process)
    }

    /// `host:port` it listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Its process id (0 once killed or stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The file its log goes to (with [`super::Output::Files`]).
    pub fn log_path(&self) -> Option<&Path> {
        self.log_path.as_deref()
    }

    /// Its label: the `THREDS_NODE` it was given, else its subcommand.
    pub fn node(&self) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == "THREDS_NODE")
            .map_or(self.command.as_str(), |(_, v)| v.as_str())
    }

    /// A token for `participant` with `roles`, signed with the process's secret.
    pub fn token(&self, participant: &str, roles: &[&str]) -> Result<String, Error> {
        self.launcher.secret().mint(participant, roles)
    }

    /// A WebSocket client connected to the process as `participant` with `roles`.
    pub async fn connect(&self, participant: &str, roles: &[&str]) -> Result<Client, Error> {
        Client::connect(&self.addr, &self.token(participant, roles)?).await
    }

    /// Its resident set size in KiB (from `/proc`), `None` when not running or not on Linux.
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory it has had since it started, KiB (from `/proc`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// A KiB figure of `/proc/<pid>/status`.
    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    /// The log lines that arrived since it started listening, or since the previous call.
    pub fn take_log(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Whether a log line arrived since the previous call (or start) containing `needle`; the
    /// lines looked at are taken.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.take_log().iter().any(|l| l.contains(needle))
    }

    /// Whether it is still running (it has not exited).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills it at once (SIGKILL), as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for its exit status.
    pub fn stop(&mut self) -> Result<ExitStatus, Error> {
        let process = self.describe();
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| Error::NotRunning(process.clone()))?;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(Error::io(format!("sending SIGTERM to {process}")))?;
        if !status.success() {
            return Err(Error::Io {
                what: format!("sending SIGTERM to {process}"),
                source: std::io::Error::other(format!("kill exited with {status}")),
            });
        }
        let deadline = Instant::now() + STOP_WITHIN;
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(Error::io(format!("waiting for {process}")))?
            {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(Error::NotStopped {
                    process,
                    within: STOP_WITHIN,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again with the same command, arguments and environment (killing it first if it
    /// still runs); it listens on a new port.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill();
        self.launch()
    }

    /// `threds <command>` (and its node) for messages.
    fn describe(&self) -> String {
        format!("threds {} [{}]", self.command, self.node())
    }

    /// Spawns the child, reads its address, waits until it is ready.
    fn launch(&mut self) -> Result<(), Error> {
        let launcher = &self.launcher;
        let mut command = Command::new(launcher.binary());
        command.arg(&self.command).args(["--listen", "127.0.0.1:0"]);
        if let Some(config) = &launcher.config {
            if !self.args.iter().any(|a| a == "--config") {
                command.args(["--config", config]);
            }
        }
        command
            .args(&self.args)
            .env("THREDS_JWT_SECRET", launcher.secret().as_str())
            .env("THREDS_LOG", &launcher.log_filter)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(dir) = &launcher.dir {
            command.current_dir(dir);
        }
        let process = self.describe();
        let mut child = command.spawn().map_err(Error::io(format!(
            "starting {process} ({})",
            launcher.binary().display()
        )))?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::NotRunning(format!("{process} without stderr")));
        };
        let (lines, log_path) =
            log::follow(stderr, &launcher.output, self.node().to_owned(), child.id());
        self.child = Some(child);
        self.lines = lines;
        self.log_path = log_path;
        self.addr = self.listening(&process)?;
        self.wait_ready(&process)
    }

    /// Reads the log until the listening line; answers the address.
    fn listening(&self, process: &str) -> Result<String, Error> {
        let within = self.launcher.listen_within;
        let deadline = Instant::now() + within;
        let mut said = Vec::new();
        loop {
            let line = match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(Error::NotListening {
                        process: process.to_owned(),
                        within,
                        said: said.join("\n"),
                    })
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Exited {
                        process: process.to_owned(),
                        said: said.join("\n"),
                    })
                }
            };
            if let Some(addr) = line
                .split(LISTENING)
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
            {
                return Ok(addr.to_owned());
            }
            said.push(line);
        }
    }

    /// Polls `/readyz` until it answers 200.
    fn wait_ready(&self, process: &str) -> Result<(), Error> {
        let within = self.launcher.ready_within;
        let deadline = Instant::now() + within;
        loop {
            let last = match http::get(&self.addr, "/readyz") {
                Ok(answer) if answer.status == 200 => return Ok(()),
                Ok(answer) => format!("{} {}", answer.status, answer.body),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    process: process.to_owned(),
                    addr: self.addr.clone(),
                    within,
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
