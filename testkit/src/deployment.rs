//! The distributed deployment's infrastructure, for tests and benchmarks: a Kafka-protocol broker —
//! librdkafka's mock Kafka cluster hosted in this process with every topic a deployment uses (the
//! mock cannot create topics on request), or a tansu broker process — a `redis-server`, the environment of each `threds` process on them, and
//! their configuration file.

use crate::kafka::{MockKafka, MOCK_PROPERTIES, TEST_SESSION_TIMEOUT};
use crate::redis::RedisServer;
use crate::tansu::TansuServer;
use crate::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::kafka::{KafkaBus, KafkaConfig};
use threds_runtime::bus::{Bus, Consumer};
use threds_runtime::store::redis::{Config as RedisConfig, RedisStore};
use threds_runtime::store::{Session, SessionDirectory};
use threds_runtime::topology::Topology;

/// A mock Kafka cluster (one broker) with every topic of `topology`.
pub fn mock_kafka(topology: &Topology) -> Result<MockKafka, Error> {
    let kafka = MockKafka::start(1)?;
    for topic in topology.topics() {
        kafka.create_topic(&topic.name, topic.partitions)?;
    }
    Ok(kafka)
}

/// The Kafka-protocol broker of a deployment under test.
#[derive(Debug)]
pub enum Broker {
    /// librdkafka's mock cluster, hosted in this process (its topics made up front).
    Mock(Arc<MockKafka>),
    /// A tansu broker process (topics made through CreateTopics, groups run as a broker does).
    Tansu(TansuServer),
}

/// The infrastructure of one deployment: a Kafka-protocol broker and a `redis-server`.
#[derive(Debug)]
pub struct Infrastructure {
    topology: Topology,
    broker: Broker,
    redis: RedisServer,
}

impl Infrastructure {
    /// Starts a mock Kafka cluster with every topic of a deployment whose events topic has
    /// `partitions` partitions, and a `redis-server`.
    pub fn start(partitions: u32) -> Result<Infrastructure, Error> {
        let topology = Topology::new(partitions);
        let kafka = Arc::new(mock_kafka(&topology)?);
        Infrastructure::with(topology, Broker::Mock(kafka))
    }

    /// Starts a tansu broker with every topic of a deployment whose events topic has
    /// `partitions` partitions (created through CreateTopics), and a `redis-server`.
    pub fn on_tansu(partitions: u32) -> Result<Infrastructure, Error> {
        let topology = Topology::new(partitions);
        let tansu = TansuServer::start()?;
        let infra = Infrastructure::with(topology, Broker::Tansu(tansu))?;
        infra.create_topics()?;
        Ok(infra)
    }

    fn with(topology: Topology, broker: Broker) -> Result<Infrastructure, Error> {
        let redis = RedisServer::start().map_err(Error::io(
            "starting redis-server (install it with scripts/install/redis.sh)",
        ))?;
        Ok(Infrastructure {
            topology,
            broker,
            redis,
        })
    }

    /// Creates every topic of the deployment (a tansu broker restarted empty needs them again;
    /// on the mock they exist from the start).
    pub fn create_topics(&self) -> Result<(), Error> {
        let bus = self.bus()?;
        let topics = self.topology.topics();
        // From a thread of its own: the caller may be inside an async runtime.
        std::thread::scope(|s| {
            s.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(Error::io("starting a runtime to create topics"))?;
                runtime.block_on(async {
                    for topic in &topics {
                        bus.create_topic(&topic.name, topic.partitions).await?;
                    }
                    Ok(())
                })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Error::io("creating topics")(std::io::Error::other(
                    "the thread creating them panicked",
                )))
            })
        })
    }

    /// The deployment's names.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The broker, to stop or restart it.
    pub fn broker_mut(&mut self) -> &mut Broker {
        &mut self.broker
    }

    /// The broker's bootstrap address.
    pub fn bootstrap(&self) -> String {
        match &self.broker {
            Broker::Mock(kafka) => kafka.bootstrap().to_owned(),
            Broker::Tansu(tansu) => tansu.bootstrap(),
        }
    }

    /// The librdkafka properties clients of this broker add (`name=value,...`).
    pub fn properties(&self) -> &'static str {
        match &self.broker {
            Broker::Mock(_) => MOCK_PROPERTIES,
            Broker::Tansu(_) => "",
        }
    }

    /// Bus settings for the test's own clients of this broker: dynamic membership, the short
    /// [`TEST_SESSION_TIMEOUT`], [`Infrastructure::properties`].
    pub fn kafka_config(&self) -> KafkaConfig {
        KafkaConfig {
            client_id: "threds-test".to_owned(),
            static_membership: false,
            session_timeout: TEST_SESSION_TIMEOUT,
            properties: self
                .properties()
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..KafkaConfig::new(self.bootstrap())
        }
    }

    /// A bus on the broker for the test's own use ([`Infrastructure::kafka_config`]; on the mock,
    /// `create_topic` creates topics in the mock).
    pub fn bus(&self) -> Result<KafkaBus, Error> {
        match &self.broker {
            Broker::Mock(kafka) => Ok(kafka.bus()?),
            Broker::Tansu(_) => Ok(KafkaBus::new(self.kafka_config())?),
        }
    }

    /// The `redis-server`.
    pub fn redis(&self) -> &RedisServer {
        &self.redis
    }

    /// The environment of process `node` of the deployment: the brokers with their client
    /// properties, Redis, history and agent documents in the process's memory (MongoDB is not
    /// under test), the events topic's partitions, and the node name.
    pub fn env(&self, node: &str) -> Vec<(&'static str, String)> {
        vec![
            ("THREDS_KAFKA_BROKERS", self.bootstrap()),
            ("THREDS_KAFKA_PROPERTIES", self.properties().to_owned()),
            ("THREDS_REDIS_URLS", self.redis.url()),
            ("THREDS_DOCUMENTS", "memory".to_owned()),
            ("THREDS_PARTITIONS", self.topology.partitions().to_string()),
            ("THREDS_NODE", node.to_owned()),
        ]
    }
}

/// How long a [`Listener`]'s delivery slot is held: longer than any run, so it never lapses.
const LISTENER_SLOT_TTL: Duration = Duration::from_secs(3600);

/// A stand-in session node: it holds a delivery slot in Redis, lists its participants as
/// connected to it, and reads its slot's partition of the sessions topic — so the engine routes
/// their messages to it as to a `threds session` process.
pub struct Listener {
    /// The reader of the slot's partition (from its end when the listener started).
    pub reader: Box<dyn Consumer>,
    /// The slot held.
    pub slot: u32,
}

impl Infrastructure {
    /// Starts a [`Listener`] named `node` for `participants`, reading from its first poll on.
    pub async fn listen(&self, node: &str, participants: &[&str]) -> Result<Listener, Error> {
        let slot = self.register(node, participants).await?;
        let reader = self.bus()?.tail(self.topology.sessions(), slot).await?;
        Ok(Listener { reader, slot })
    }

    /// Registers `node` as a session node holding `participants`' connections, as a
    /// [`Listener`] does; answers its slot, the partition of the sessions topic to read.
    pub async fn register(&self, node: &str, participants: &[&str]) -> Result<u32, Error> {
        let store = RedisStore::new(RedisConfig::new(vec![self.redis.url()]))?;
        let slots = self.topology.session_slots();
        let claim = store.claim_slot(node, slots, LISTENER_SLOT_TTL).await?;
        let Some(claim) = claim else {
            return Err(Error::NoSlot(slots));
        };
        for participant in participants {
            store
                .add_session(Session {
                    id: format!("{node}-{participant}"),
                    participant: (*participant).to_owned(),
                    node: node.to_owned(),
                })
                .await?;
        }
        Ok(claim.slot)
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
