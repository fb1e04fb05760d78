//! A MongoDB-protocol server for tests: briskdb (PyPI `briskdb[pymongo]`, a SQLite-backed
//! server speaking a subset of MongoDB's wire protocol, wire version 8 = MongoDB 4.2), started
//! from the Python virtual environment `scripts/install/mongo.sh` creates.
//!
//! [`MongoServer::start`] runs briskdb on a fresh data directory with its Mongo listener on a
//! port the system picks (read back from the server, so no port race), waits until it answers
//! `ping`, and kills it (and removes the directory) on drop. The Python interpreter is
//! `$THREDS_BRISKDB_PYTHON`, else `/opt/threds-venv/bin/python`. briskdb accepts about eight
//! sockets and writes some 40 documents a second: keep pools small and tests short.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mongodb::bson::doc;
use mongodb::Client;

use threds_runtime::documents::MongoConfig;

/// The environment variable naming the Python interpreter that has briskdb installed.
pub const PYTHON_VAR: &str = "THREDS_BRISKDB_PYTHON";

/// The interpreter used when [`PYTHON_VAR`] is unset (the install script's virtual environment).
pub const DEFAULT_PYTHON: &str = "/opt/threds-venv/bin/python";

/// How long the server may take to start listening and to answer `ping`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The launcher: opens a document database in `argv[1]`, serves it over the Mongo protocol at
/// `argv[2]` (`127.0.0.1:0`: a loopback port the system picks), prints that address, and runs
/// until its standard input closes (so it also ends when the test process dies).
const LAUNCHER: &str = r#"
import sys
import briskdb
with briskdb.open(sys.argv[1], shards=2, documents=True) as db:
    with db.serve(mongo=sys.argv[2], admin=None) as server:
        print(server.mongo_address, flush=True)
        sys.stdin.read()
"#;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// briskdb (or its Python) is not installed.
    #[error("briskdb is not installed ({0})")]
    Missing(String),
    /// It is installed but did not come up.
    #[error("briskdb did not start: {0}")]
    Failed(String),
}

/// A running briskdb server; killed on drop.
#[derive(Debug)]
pub struct MongoServer {
    child: Child,
    address: String,
    dir: PathBuf,
}

/// The Python interpreter to run briskdb with.
pub fn python() -> PathBuf {
    std::env::var_os(PYTHON_VAR)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_PYTHON), PathBuf::from)
}

/// A fresh, unique directory for one server's data.
fn data_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("threds-briskdb-{}-{n}-{nanos}", std::process::id()))
}

impl MongoServer {
    /// Starts a server on a port the system picks and waits until it answers `ping`.
    pub async fn start() -> Result<MongoServer, StartError> {
        MongoServer::start_at("127.0.0.1:0").await
    }

    /// Starts a server listening at `address` (`host:port`) and waits until it answers `ping`.
    pub async fn start_at(address: &str) -> Result<MongoServer, StartError> {
        let dir = data_dir();
        let (child, address) = match spawn(&dir, address).await {
            Ok(started) => started,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let server = MongoServer {
            child,
            address,
            dir,
        };
        server.wait_for_ping().await?;
        Ok(server)
    }

    /// Kills the server, as a crash would, keeping its data for [`MongoServer::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again (after [`MongoServer::kill`]) at the same address, on the same
    /// data, and waits until it answers `ping`.
    pub async fn restart(&mut self) -> Result<(), StartError> {
        self.kill();
        let (child, _) = spawn(&self.dir, &self.address).await?;
        self.child = child;
        self.wait_for_ping().await
    }

    /// `host:port` of the Mongo listener.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A connection string for the server.
    pub fn uri(&self) -> String {
        format!("mongodb://{}/?directConnection=true", self.address)
    }

    /// A documents configuration for `database` on this server, with a pool small enough for
    /// briskdb's socket limit.
    pub fn config(&self, database: &str) -> MongoConfig {
        MongoConfig {
            uri: self.uri(),
            database: database.to_owned(),
            max_pool_size: Some(2),
            ..MongoConfig::default()
        }
    }

    async fn wait_for_ping(&self) -> Result<(), StartError> {
        let failed = |e: mongodb::error::Error| StartError::Failed(format!("ping: {e}"));
        let client = Client::with_uri_str(format!(
            "{}&maxPoolSize=1&serverSelectionTimeoutMS=1000",
            self.uri()
        ))
        .await
        .map_err(failed)?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match client.database("admin").run_command(doc! {"ping": 1}).await {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => return Err(failed(e)),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        client.shutdown().await;
        Ok(())
    }
}

/// Runs the launcher on data directory `dir` at `address`; answers the child and the address it
/// listens at.
async fn spawn(dir: &Path, address: &str) -> Result<(Child, String), StartError> {
    let python = python();
    if !python.exists() {
        return Err(StartError::Missing(format!(
            "no Python interpreter at {} (set {PYTHON_VAR})",
            python.display()
        )));
    }
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(LAUNCHER)
        .arg(dir)
        .arg(address)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| StartError::Failed(format!("cannot run {}: {e}", python.display())))?;
    match read_address(&mut child).await {
        Ok(address) => Ok((child, address)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Reads the address the launcher prints (its first line), or why it did not print one.
async fn read_address(child: &mut Child) -> Result<String, StartError> {
    let stdout = child.stdout.take();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        if let Some(stdout) = stdout {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let _ = tx.send(line);
    });
    let line = match tokio::time::timeout(START_TIMEOUT, rx).await {
        Ok(Ok(line)) => line,
        _ => String::new(),
    };
    let address = line.trim();
    if !address.is_empty() {
        // Keep draining what the server writes to stderr, so that a full pipe never blocks it.
        if let Some(mut err) = child.stderr.take() {
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        }
        return Ok(address.to_owned());
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let last = stderr.lines().last().unwrap_or("no output").to_owned();
    if stderr.contains("ModuleNotFoundError") {
        Err(StartError::Missing(last))
    } else {
        Err(StartError::Failed(last))
    }
}

/// Ends the server and removes its data.
fn stop(child: &mut Child, dir: &Path) {
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        stop(&mut self.child, &self.dir);
    }
}

/// Starts a server for a test, or returns `None` after printing `SKIPPED: …` when briskdb is not
/// installed.
///
/// # Panics
/// When briskdb is installed but does not start, or is missing while `THREDS_REQUIRE_SERVICES=1`.
pub async fn server_or_skip() -> Option<MongoServer> {
    match MongoServer::start().await {
        Ok(server) => Some(server),
        Err(StartError::Missing(why)) if !crate::services_required() => {
            println!(
                "SKIPPED: briskdb is not installed ({why}), install with scripts/install/mongo.sh"
            );
            None
        }
        Err(e) => panic!("{e} (install with scripts/install/mongo.sh)"),
    }
}
