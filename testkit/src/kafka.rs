//! A Kafka cluster for tests: librdkafka's mock cluster, which speaks the Kafka protocol on
//! 127.0.0.1 (produce, fetch, metadata, idempotent producers, consumer groups, offset commits).
//!
//! The mock has no CreateTopics, so topics are created through [`MockKafka::create_topic`]; the
//! buses [`MockKafka::bus`] makes do that for `Bus::create_topic`. Other processes connect to
//! [`MockKafka::bootstrap`] (`threds-bench mock-kafka` hosts one and prints it); they must find their
//! topics made beforehand.

use rdkafka::mocking::MockCluster;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use threds_runtime::bus::kafka::{KafkaBus, KafkaConfig, TopicCreator};
use threds_runtime::bus::Error;

/// librdkafka properties for clients of the mock cluster (`THREDS_KAFKA_PROPERTIES` syntax): the
/// mock holds every fetch that finds nothing for the whole `fetch.wait.max.ms` instead of
/// answering when a record arrives, so a short wait keeps latency low.
pub const MOCK_PROPERTIES: &str = "fetch.wait.max.ms=5";

/// [`MOCK_PROPERTIES`] as a map of names to values.
pub fn mock_properties() -> std::collections::BTreeMap<String, String> {
    MOCK_PROPERTIES
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The session timeout of test buses: short, because the mock cluster holds every rebalance for
/// the session timeout less one second before it assigns partitions.
pub const TEST_SESSION_TIMEOUT: Duration = Duration::from_secs(3);

/// What the thread owning the mock cluster does.
enum Command {
    /// Create a topic and answer.
    Create {
        topic: String,
        partitions: u32,
        answer: mpsc::Sender<Result<(), Error>>,
    },
    /// Take a broker down (connections cut, new ones refused; its data kept) or bring it up.
    Broker {
        id: i32,
        up: bool,
        answer: mpsc::Sender<Result<(), Error>>,
    },
}

/// A running mock cluster, stopped when dropped.
///
/// librdkafka's mock handle may not move between threads, so one thread owns it for its whole
/// life and takes requests over a channel.
#[derive(Debug)]
pub struct MockKafka {
    bootstrap: String,
    brokers: u32,
    commands: Option<mpsc::Sender<Command>>,
    owner: Option<JoinHandle<()>>,
}

impl MockKafka {
    /// Starts a mock cluster of `brokers` brokers (at least one) on 127.0.0.1.
    pub fn start(brokers: u32) -> Result<Self, Error> {
        let brokers = brokers.max(1);
        let count = i32::try_from(brokers).map_err(|e| Error::Backend(e.to_string()))?;
        let (commands, requests) = mpsc::channel::<Command>();
        let (ready, started) = mpsc::channel::<Result<String, Error>>();
        let owner = std::thread::Builder::new()
            .name("threds-mock-kafka".to_owned())
            .spawn(move || {
                let cluster = match MockCluster::new(count) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        let _ = ready.send(Err(Error::Backend(format!(
                            "starting the mock cluster: {e}"
                        ))));
                        return;
                    }
                };
                if ready.send(Ok(cluster.bootstrap_servers())).is_err() {
                    return;
                }
                let replication = count.min(3);
                // Serves requests until every sender is gone, then drops (stops) the cluster.
                for command in requests {
                    match command {
                        Command::Create {
                            topic,
                            partitions,
                            answer,
                        } => {
                            let created = i32::try_from(partitions)
                                .map_err(|e| Error::Backend(e.to_string()))
                                .and_then(|n| {
                                    cluster.create_topic(&topic, n, replication).map_err(|e| {
                                        Error::Backend(format!("creating topic {topic}: {e}"))
                                    })
                                });
                            let _ = answer.send(created);
                        }
                        Command::Broker { id, up, answer } => {
                            let done = if up {
                                cluster.broker_up(id)
                            } else {
                                cluster.broker_down(id)
                            };
                            let _ = answer.send(done.map_err(|e| {
                                Error::Backend(format!("setting mock broker {id} up={up}: {e}"))
                            }));
                        }
                    }
                }
            })
            .map_err(|e| Error::Backend(format!("starting the mock cluster thread: {e}")))?;
        let bootstrap = started
            .recv()
            .map_err(|_| Error::Backend("the mock cluster thread died".to_owned()))??;
        Ok(MockKafka {
            bootstrap,
            brokers,
            commands: Some(commands),
            owner: Some(owner),
        })
    }

    /// The bootstrap servers, `127.0.0.1:PORT[,127.0.0.1:PORT...]`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// How many brokers the cluster has.
    pub fn brokers(&self) -> u32 {
        self.brokers
    }

    /// Creates `topic` with `partitions` partitions (replicated on up to three brokers).
    pub fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), Error> {
        let commands = self.commands.as_ref().ok_or(Error::Closed)?;
        let (answer, answered) = mpsc::channel();
        commands
            .send(Command::Create {
                topic: topic.to_owned(),
                partitions,
                answer,
            })
            .map_err(|_| Error::Closed)?;
        answered.recv().map_err(|_| Error::Closed)?
    }

    /// Takes broker `id` (1 to [`MockKafka::brokers`]) down — its connections cut and new ones
    /// refused, its data kept — or, with `up`, brings it back.
    pub fn set_broker(&self, id: u32, up: bool) -> Result<(), Error> {
        let commands = self.commands.as_ref().ok_or(Error::Closed)?;
        let id = i32::try_from(id).map_err(|e| Error::Backend(e.to_string()))?;
        let (answer, answered) = mpsc::channel();
        commands
            .send(Command::Broker { id, up, answer })
            .map_err(|_| Error::Closed)?;
        answered.recv().map_err(|_| Error::Closed)?
    }

    /// Bus settings for this cluster: client id `threds-test`, dynamic membership, the short
    /// [`TEST_SESSION_TIMEOUT`], and [`MOCK_PROPERTIES`].
    pub fn config(&self) -> KafkaConfig {
        KafkaConfig {
            client_id: "threds-test".to_owned(),
            static_membership: false,
            session_timeout: TEST_SESSION_TIMEOUT,
            properties: mock_properties(),
            ..KafkaConfig::new(self.bootstrap.clone())
        }
    }

    /// A bus on this cluster with `config` whose `create_topic` creates topics in the mock.
    pub fn bus_with(self: &Arc<Self>, config: KafkaConfig) -> Result<KafkaBus, Error> {
        Ok(KafkaBus::new(config)?.with_topic_creator(self.clone()))
    }

    /// A bus on this cluster with [`MockKafka::config`].
    pub fn bus(self: &Arc<Self>) -> Result<KafkaBus, Error> {
        self.bus_with(self.config())
    }
}

impl TopicCreator for MockKafka {
    fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), Error> {
        MockKafka::create_topic(self, topic, partitions)
    }
}

impl Drop for MockKafka {
    fn drop(&mut self) {
        self.commands = None;
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }
}
