//! The distributed deployment under test: `threds mock-kafka` (librdkafka's mock cluster) with the
//! topics a deployment needs, and the environment and configuration file of every process.

use super::SECRET;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use threds_runtime::testing::redis::RedisServer;
use threds_runtime::topology::Topology;

/// Partitions of the events topic.
pub const PARTITIONS: u32 = 4;

/// The names of the deployment under test.
pub const TOPOLOGY: Topology = Topology::new(PARTITIONS);

/// `threds mock-kafka` as a child process, with the topics a deployment needs (the mock cluster
/// cannot create topics on request).
pub struct MockKafka {
    child: Child,
    /// `host:port` of the mock cluster.
    pub bootstrap: String,
}

impl MockKafka {
    /// Starts the mock cluster with every topic of a deployment ([`TOPOLOGY`]).
    pub fn start() -> MockKafka {
        let mut command = Command::new(env!("CARGO_BIN_EXE_threds"));
        command.args(["mock-kafka", "--deployment", &PARTITIONS.to_string()]);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start threds mock-kafka");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let bootstrap = first
            .trim()
            .strip_prefix("bootstrap=")
            .unwrap_or_else(|| panic!("first line of threds mock-kafka: {first:?}"))
            .to_string();
        MockKafka { child, bootstrap }
    }
}

impl Drop for MockKafka {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment of process `node` of the deployment on `kafka` and `redis`.
pub fn deployment_env(
    kafka: &MockKafka,
    redis: &RedisServer,
    node: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("THREDS_KAFKA_BROKERS", kafka.bootstrap.clone()),
        (
            "THREDS_KAFKA_PROPERTIES",
            threds_runtime::testing::kafka::MOCK_PROPERTIES.to_string(),
        ),
        ("THREDS_REDIS_URLS", redis.url()),
        // History and agent documents in each process's memory: MongoDB is not under test here.
        ("THREDS_DOCUMENTS", "memory".to_string()),
        ("THREDS_PARTITIONS", PARTITIONS.to_string()),
        ("THREDS_NODE", node.to_string()),
        ("THREDS_JWT_SECRET", SECRET.to_string()),
    ]
}

/// Writes `threds.toml` into `dir` (short partition leases and group session timeouts, plus the
/// `[engine]` keys in `engine`, one `key = value` a line) and answers its path.
pub fn config_file(dir: &Path, engine: &str) -> String {
    let path = dir.join("threds.toml");
    std::fs::write(
        &path,
        format!("[engine]\nlease_ms = 3000\n{engine}\n\n[bus]\nsession_timeout_ms = 6000\n"),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}
