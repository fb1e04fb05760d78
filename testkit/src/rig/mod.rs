//! The process rig: starts `threds` subcommands as child processes on `--listen 127.0.0.1:0`,
//! reads the address from their "listening on http://ADDR" log line, waits until `/readyz`
//! answers 200, and keeps their log lines. A [`Launcher`] holds what every process of a run
//! shares (binary, secret, log filter, working directory); [`Launcher::start`] starts one
//! [`Process`].
//!
//! The binary is a parameter: tests pass `env!("CARGO_BIN_EXE_threds")`, the benchmark the
//! `threds` next to its own executable.

mod log;
mod process;

pub use process::Process;

use crate::token::Secret;
use crate::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a process's log lines go besides [`Process::take_log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// To this process's stderr, each prefixed with `[node]` (its `THREDS_NODE`, else the
    /// subcommand): what tests want to see when they fail.
    Echo,
    /// To a file `threds-<node>-<pid>.log` in this directory (see [`Process::log_path`]).
    Files(PathBuf),
}

/// How to start `threds` processes.
#[derive(Debug, Clone)]
pub struct Launcher {
    binary: PathBuf,
    dir: Option<PathBuf>,
    secret: Secret,
    log_filter: String,
    config: Option<String>,
    output: Output,
    listen_within: Duration,
    ready_within: Duration,
}

impl Launcher {
    /// Starts `binary` with `THREDS_JWT_SECRET` = `secret`, `THREDS_LOG=info`, echoing logs, in
    /// the current directory; 30 s to listen and 60 s more to be ready.
    pub fn new(binary: impl Into<PathBuf>, secret: Secret) -> Launcher {
        Launcher {
            binary: binary.into(),
            dir: None,
            secret,
            log_filter: "info".to_owned(),
            config: None,
            output: Output::Echo,
            listen_within: Duration::from_secs(30),
            ready_within: Duration::from_secs(60),
        }
    }

    /// Runs the processes in `dir` (relative paths in their arguments are relative to it).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Launcher {
        self.dir = Some(dir.into());
        self
    }

    /// Their `THREDS_LOG` filter.
    pub fn log_filter(mut self, filter: impl Into<String>) -> Launcher {
        self.log_filter = filter.into();
        self
    }

    /// A `--config` file passed to every process whose arguments name none.
    pub fn config(mut self, path: impl Into<String>) -> Launcher {
        self.config = Some(path.into());
        self
    }

    /// Where their log lines go.
    pub fn output(mut self, output: Output) -> Launcher {
        self.output = output;
        self
    }

    /// How long a process may take to become ready after it listens.
    pub fn ready_within(mut self, within: Duration) -> Launcher {
        self.ready_within = within;
        self
    }

    /// The binary started.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The secret the processes verify tokens with.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Starts `threds <command> --listen 127.0.0.1:0 [--config …] <args>` with `env` added to the
    /// environment, and waits until it is ready.
    pub fn start(
        &self,
        command: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Result<Process, Error> {
        Process::start(
            self.clone(),
            command.to_owned(),
            args.iter().map(|a| (*a).to_owned()).collect(),
            env.iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }
}

/// The directory next to the running executable: where cargo puts the workspace's binaries
/// (`target/<profile>/`), so a tool finds `threds` built beside it.
pub fn beside_current_exe(name: &str) -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(Error::io("locating the running executable"))?;
    match exe.parent() {
        Some(dir) => Ok(dir.join(name)),
        None => Err(Error::Io {
            what: format!("locating {name} beside {}", exe.display()),
            source: std::io::Error::other("the executable has no directory"),
        }),
    }
}
