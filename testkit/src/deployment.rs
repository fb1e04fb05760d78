//! The distributed deployment's infrastructure, for tests and benchmarks: librdkafka's mock Kafka
//! cluster hosted in this process with every topic a deployment uses (the mock cannot create
//! topics on request), a `redis-server`, the environment of each `threds` process on them, and
//! their configuration file.

use crate::kafka::{MockKafka, MOCK_PROPERTIES};
use crate::redis::RedisServer;
use crate::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use threds_runtime::topology::Topology;

/// A mock Kafka cluster (one broker) with every topic of `topology`.
pub fn mock_kafka(topology: &Topology) -> Result<MockKafka, Error> {
    let kafka = MockKafka::start(1)?;
    for topic in topology.topics() {
        kafka.create_topic(&topic.name, topic.partitions)?;
    }
    Ok(kafka)
}

/// The infrastructure of one deployment: the mock Kafka cluster and a `redis-server`.
#[derive(Debug)]
pub struct Infrastructure {
    topology: Topology,
    kafka: Arc<MockKafka>,
    redis: RedisServer,
}

impl Infrastructure {
    /// Starts a mock Kafka cluster with every topic of a deployment whose events topic has
    /// `partitions` partitions, and a `redis-server`.
    pub fn start(partitions: u32) -> Result<Infrastructure, Error> {
        let topology = Topology::new(partitions);
        let kafka = Arc::new(mock_kafka(&topology)?);
        let redis = RedisServer::start().map_err(Error::io(
            "starting redis-server (install it with scripts/install/redis.sh)",
        ))?;
        Ok(Infrastructure {
            topology,
            kafka,
            redis,
        })
    }

    /// The deployment's names.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The mock Kafka cluster.
    pub fn kafka(&self) -> &Arc<MockKafka> {
        &self.kafka
    }

    /// The `redis-server`.
    pub fn redis(&self) -> &RedisServer {
        &self.redis
    }

    /// The environment of process `node` of the deployment: the brokers with the mock's client
    /// properties, Redis, history and agent documents in the process's memory (MongoDB is not
    /// under test), the events topic's partitions, and the node name.
    pub fn env(&self, node: &str) -> Vec<(&'static str, String)> {
        vec![
            ("THREDS_KAFKA_BROKERS", self.kafka.bootstrap().to_owned()),
            ("THREDS_KAFKA_PROPERTIES", MOCK_PROPERTIES.to_owned()),
            ("THREDS_REDIS_URLS", self.redis.url()),
            ("THREDS_DOCUMENTS", "memory".to_owned()),
            ("THREDS_PARTITIONS", self.topology.partitions().to_string()),
            ("THREDS_NODE", node.to_owned()),
        ]
    }
}

/// Writes `threds.toml` into `dir` (short partition leases and group session timeouts, plus the
/// `[engine]` keys in `engine`, one `key = value` a line) and answers its path.
pub fn config_file(dir: &Path, engine: &str) -> Result<PathBuf, Error> {
    let path = dir.join("threds.toml");
    std::fs::write(
        &path,
        format!("[engine]\nlease_ms = 3000\n{engine}\n\n[bus]\nsession_timeout_ms = 6000\n"),
    )
    .map_err(Error::io(format!("writing {}", path.display())))?;
    Ok(path)
}
