//! The Kafka adapter of the bus port, on librdkafka (the `rdkafka` crate, built from source).
//!
//! Topics, partitions, offsets, keys and headers are Kafka's own. Appends go through one
//! idempotent producer per bus (`acks=all`) and always name their partition, computed with
//! [`partition_for`] (Kafka's murmur2), so every client agrees where a key lives whatever its
//! own partitioner. Each [`Bus::join`] opens a consumer of its own in the group: range assignment
//! (a setting), no automatic commits, rebalance callbacks captured and reported by `poll`.
//! `docs/bus.md` describes the topic layout, the settings and the delivery guarantees.

mod consumer;
mod outage;
mod tail;
mod tracker;

pub use consumer::KafkaConsumer;

use self::consumer::Slot;
use crate::bus::{partition_for, Append, Bus, Consumer, Error, Lag, Position};
use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How long one metadata, admin, commit or offset request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// librdkafka's `socket.timeout.ms` for every client: how long a request in flight may go
/// unanswered before it fails and the connection is dropped (librdkafka's default is 60 s).
const SOCKET_TIMEOUT_MS: &str = "10000";

/// How long a created topic may take to show up, with all its partitions led, in metadata.
const CREATE_VISIBLE: Duration = Duration::from_secs(30);

/// How long an append may wait for room in the producer's local queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefixes of librdkafka properties that only consumers take.
const CONSUMER_ONLY: &[&str] = &[
    "fetch.",
    "group.",
    "auto.offset.reset",
    "enable.auto.",
    "auto.commit.",
    "isolation.level",
    "max.poll.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
    "queued.",
];

/// Connection and group settings of a [`KafkaBus`]: the `[bus.kafka]` section of `threds.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port` pairs separated by commas (librdkafka `bootstrap.servers`).
    pub brokers: String,
    /// Client id shown in broker logs and used for quotas (`client.id`); a consumer uses
    /// `<client_id>-<member>`.
    pub client_id: String,
    /// Static group membership: every consumer sets `group.instance.id` to its member name, so
    /// a member restarting under the same name within `session_timeout` takes its partitions
    /// back without a rebalance, and a crashed member's partitions wait for it that long. Member
    /// names must then be unique in their group across all processes. Off by default: tansu
    /// leaves a second static member without partitions.
    pub static_membership: bool,
    /// How a group's partitions are assigned among its members (`partition.assignment.strategy`):
    /// `range` (the default; eager: a rebalance stops every member, then hands the partitions
    /// out anew), `roundrobin`, or `cooperative-sticky` (incremental: only moving partitions
    /// stop; on tansu a membership change then takes two rounds).
    pub assignment_strategy: String,
    /// How long the group coordinator waits without a heartbeat before it declares a member dead
    /// and moves its partitions (`session.timeout.ms`; brokers accept 6 s to 30 min unless their
    /// `group.min/max.session.timeout.ms` say otherwise). Heartbeats go out every fifth of it
    /// (at most every 3 s). `session_timeout_ms` in `threds.toml`.
    #[serde(rename = "session_timeout_ms", with = "crate::millis")]
    pub session_timeout: Duration,
    /// More librdkafka properties for every client of the bus (producer, consumers, admin),
    /// applied last, so they override the adapter's own (e.g. `security.protocol`,
    /// `sasl.mechanisms`, `linger.ms`, `message.timeout.ms`).
    pub properties: BTreeMap<String, String>,
    /// How long `threds.history` keeps its records (`retention.ms`, set when this bus creates
    /// the topic): longer than the longest documents-store outage the history sink should ride
    /// out. `history_retention_ms` in `threds.toml`.
    #[serde(rename = "history_retention_ms", with = "crate::millis")]
    pub history_retention: Duration,
    /// How long `threds.sessions` keeps its records (`retention.ms`, set when this bus creates
    /// the topic): session nodes read only what arrives while they run, so this only bounds what
    /// the slots of nodes that died keep. `sessions_retention_ms` in `threds.toml`.
    #[serde(rename = "sessions_retention_ms", with = "crate::millis")]
    pub sessions_retention: Duration,
    /// How many milliseconds the producer waits to fill a batch before sending it (librdkafka
    /// `linger.ms`). Unset: [`SESSION_LINGER_MS`] in a process with the session role, whose
    /// appends are many clients' single events (batched, they cost the producer and the broker
    /// far fewer requests), 0 elsewhere (an engine appends a batch's messages together).
    /// `linger_ms` in `threds.toml`.
    pub linger_ms: Option<u64>,
}

/// The producer's `linger.ms` in a process with the session role unless `linger_ms` says
/// otherwise: measured in `docs/benchmarks.md` (the session process's producer thread spent
/// 4 times the CPU at 0, and the whole path delivered a third less).
pub const SESSION_LINGER_MS: u64 = 1;

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".to_owned(),
            client_id: "threds".to_owned(),
            static_membership: false,
            assignment_strategy: "range".to_owned(),
            session_timeout: Duration::from_secs(10),
            properties: BTreeMap::new(),
            history_retention: Duration::from_secs(7 * 24 * 3600),
            sessions_retention: Duration::from_secs(3600),
            linger_ms: None,
        }
    }
}

impl KafkaConfig {
    /// The defaults (client id `threds`, dynamic membership, range assignment, 10 s sessions, no
    /// extra properties)
    /// with these `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            ..KafkaConfig::default()
        }
    }

    /// The topic settings (`retention.ms`, ...) a topic gets when Threds creates it: the history
    /// topic keeps its records [`KafkaConfig::history_retention`], the sessions topic
    /// [`KafkaConfig::sessions_retention`].
    pub fn topic_settings(&self, topic: &str) -> Vec<(&'static str, String)> {
        let names = crate::topology::Topology::default();
        let retention = if topic == names.history() {
            self.history_retention
        } else if topic == names.sessions() {
            self.sessions_retention
        } else {
            return Vec::new();
        };
        vec![("retention.ms", retention.as_millis().to_string())]
    }

    /// The settings of an admin client of this cluster, its client id `<client_id>-<role>`: the
    /// connection, TLS and SASL properties, without the consumer-only ones.
    pub fn admin_client(&self, role: &str) -> ClientConfig {
        let mut config = self.client(&format!("{}-{role}", self.client_id));
        self.finish(&mut config, false);
        config
    }

    /// The properties every client of the bus starts from.
    fn client(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id)
            // Topics exist because `create_topic` made them, never because someone named one.
            .set("allow.auto.create.topics", "false")
            // Small requests go out at once: with Nagle's algorithm a produce or fetch request
            // can wait for the broker's delayed ACK of the previous one (tens of ms).
            .set("socket.nagle.disable", "true")
            // A broker that stops answering without closing its connections (a partition, a
            // hung host) fails the requests in flight after this, not librdkafka's 60 s: until
            // then a consumer's heartbeats and commits queue behind them and it cannot rejoin.
            .set("socket.timeout.ms", SOCKET_TIMEOUT_MS);
        config
    }

    /// Applies [`KafkaConfig::properties`] on top of `config`: all of it for a consumer; for the
    /// producer and the admin client, all but the consumer-only properties (which librdkafka
    /// would warn about there).
    fn finish(&self, config: &mut ClientConfig, consumer: bool) {
        for (key, value) in &self.properties {
            if consumer || !CONSUMER_ONLY.iter().any(|p| key.starts_with(p)) {
                config.set(key, value);
            }
        }
    }
}

/// Creates topics for a cluster that cannot create them over the protocol: librdkafka's mock
/// cluster has no CreateTopics, so tests hand the bus a hook into the mock instead.
pub trait TopicCreator: Send + Sync + 'static {
    /// Creates `topic` with `partitions` partitions (may block; it runs on a blocking thread).
    fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), Error>;
}

/// The bus on a Kafka cluster.
pub struct KafkaBus {
    config: KafkaConfig,
    /// The idempotent producer; replaced when it fails fatally (see [`KafkaBus::renew_if_fatal`]).
    producer: Mutex<Arc<FutureProducer>>,
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// Partition counts seen so far (the bus never changes a topic's count).
    partitions: Mutex<HashMap<String, u32>>,
    /// The live consumer of each (group, member) opened through this bus, so that joining again
    /// under a name replaces the earlier handle.
    members: Mutex<HashMap<(String, String), Weak<Slot>>>,
    creator: Option<Arc<dyn TopicCreator>>,
    /// A client per group whose lag is asked for (it reads the group's committed offsets
    /// without joining it).
    lag_readers: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

impl fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBus")
            .field("config", &self.config)
            .field("topic_creator", &self.creator.is_some())
            .finish_non_exhaustive()
    }
}

/// What metadata says about a topic.
enum Lookup {
    /// No such topic.
    Missing,
    /// The topic with its partition count.
    Ready(u32),
    /// The topic exists but is not usable yet (being created, leaderless), and why.
    NotReady(String),
}

impl KafkaBus {
    /// Connects to the cluster of `config` (lazily: clients connect on first use, so this only
    /// fails on invalid settings).
    pub fn new(config: KafkaConfig) -> Result<Self, Error> {
        let producer = Self::new_producer(&config)?;
        let mut admin = config.client(&format!("{}-admin", config.client_id));
        config.finish(&mut admin, false);
        let admin: AdminClient<DefaultClientContext> = admin.create().map_err(backend)?;
        Ok(KafkaBus {
            config,
            producer: Mutex::new(Arc::new(producer)),
            admin: Arc::new(admin),
            partitions: Mutex::new(HashMap::new()),
            members: Mutex::new(HashMap::new()),
            creator: None,
            lag_readers: Mutex::new(HashMap::new()),
        })
    }

    /// The idempotent producer of a bus on `config`.
    fn new_producer(config: &KafkaConfig) -> Result<FutureProducer, Error> {
        let mut producer = config.client(&config.client_id);
        producer
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", config.linger_ms.unwrap_or(0).to_string());
        config.finish(&mut producer, false);
        producer.create().map_err(backend)
    }

    /// The producer appends go through now.
    fn producer(&self) -> Arc<FutureProducer> {
        lock(&self.producer).clone()
    }

    /// Replaces `used` with a new producer if it failed fatally (an idempotent producer whose
    /// sequence the broker no longer knows, as after a broker lost its data, refuses every later
    /// append): the appends that failed report their errors, and later ones go through.
    fn renew_if_fatal(&self, used: &Arc<FutureProducer>) {
        let Some((code, reason)) = used.client().fatal_error() else {
            return;
        };
        let mut current = lock(&self.producer);
        if !Arc::ptr_eq(&current, used) {
            return;
        }
        match Self::new_producer(&self.config) {
            Ok(fresh) => {
                tracing::warn!(error = %code, reason, "kafka: the producer failed fatally; appends go through a new one");
                *current = Arc::new(fresh);
            }
            Err(e) => {
                tracing::warn!(error = %e, "kafka: the producer failed fatally and a new one could not be made")
            }
        }
    }

    /// Creates topics through `creator` instead of the cluster's CreateTopics (for clusters
    /// without it, such as librdkafka's mock cluster).
    pub fn with_topic_creator(mut self, creator: Arc<dyn TopicCreator>) -> Self {
        self.creator = Some(creator);
        self
    }

    /// The settings the bus was made with.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Asks the cluster about `topic`.
    async fn lookup(&self, topic: &str) -> Result<Lookup, Error> {
        let admin = self.admin.clone();
        let name = topic.to_owned();
        blocking(move || {
            let metadata = admin
                .inner()
                .fetch_metadata(Some(&name), REQUEST_TIMEOUT)
                .map_err(|e| Error::unavailable(format!("metadata of {name}"), e))?;
            let Some(found) = metadata.topics().iter().find(|t| t.name() == name) else {
                return Ok(Lookup::Missing);
            };
            match found.error().map(RDKafkaErrorCode::from) {
                Some(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                ) => Ok(Lookup::Missing),
                Some(other) => Ok(Lookup::NotReady(other.to_string())),
                None if found.partitions().is_empty() => {
                    Ok(Lookup::NotReady("no partitions yet".to_owned()))
                }
                None => match found.partitions().iter().find_map(|p| p.error()) {
                    Some(error) => Ok(Lookup::NotReady(RDKafkaErrorCode::from(error).to_string())),
                    None => u32::try_from(found.partitions().len())
                        .map(Lookup::Ready)
                        .map_err(backend),
                },
            }
        })
        .await?
    }

    /// The partition count of `topic`, from the cache or the cluster.
    /// The partition an append to `topic` goes to: `partition` if the topic has it, else the
    /// key's (partition 0 without a key).
    async fn target(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&str>,
    ) -> Result<u32, Error> {
        let count = self.partition_count(topic).await?;
        match partition {
            Some(p) if p >= count => Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition: p,
            }),
            Some(p) => Ok(p),
            None => Ok(key.map_or(0, |k| partition_for(k, count))),
        }
    }

    /// The position of a delivered append, or its error (forgetting the topic's partition count
    /// when the broker no longer knows the topic or partition).
    fn delivered(
        &self,
        topic: &str,
        partition: u32,
        result: rdkafka::producer::future_producer::OwnedDeliveryResult,
    ) -> Result<Position, Error> {
        match result {
            Ok(delivery) => Ok(Position {
                topic: topic.to_owned(),
                partition: u32::try_from(delivery.partition).map_err(backend)?,
                offset: u64::try_from(delivery.offset).map_err(backend)?,
            }),
            Err((e, _)) => {
                let error = match e.rdkafka_error_code() {
                    Some(
                        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                    ) => Error::UnknownTopic(topic.to_owned()),
                    Some(RDKafkaErrorCode::UnknownPartition) => Error::UnknownPartition {
                        topic: topic.to_owned(),
                        partition,
                    },
                    _ => Error::unavailable(format!("appending to {topic}/{partition}"), e),
                };
                if matches!(
                    error,
                    Error::UnknownTopic(_) | Error::UnknownPartition { .. }
                ) {
                    lock(&self.partitions).remove(topic);
                }
                Err(error)
            }
        }
    }

    /// The client that reads `group`'s committed offsets (made on first use).
    fn lag_reader(&self, group: &str) -> Result<Arc<BaseConsumer>, Error> {
        let mut readers = lock(&self.lag_readers);
        if let Some(reader) = readers.get(group) {
            return Ok(reader.clone());
        }
        let mut settings = self
            .config
            .client(&format!("{}-lag", self.config.client_id));
        settings
            .set("group.id", group)
            .set("enable.auto.commit", "false");
        self.config.finish(&mut settings, true);
        let reader: Arc<BaseConsumer> = Arc::new(settings.create().map_err(backend)?);
        readers.insert(group.to_owned(), reader.clone());
        Ok(reader)
    }

    /// Commits, for `group`, the end offset of every partition of `topics` it has committed
    /// nothing on: a member that joins next starts there, and reads everything appended from
    /// now on (`auto.offset.reset=latest` alone would look the end up only once the partition is
    /// assigned, skipping what came in between).
    async fn commit_ends(&self, group: &str, topics: &[&str]) -> Result<(), Error> {
        let mut all = Vec::new();
        for topic in topics {
            all.push(((*topic).to_owned(), self.partition_count(topic).await?));
        }
        let reader = self.lag_reader(group)?;
        blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for (topic, count) in &all {
                for p in 0..*count {
                    tpl.add_partition(topic, i32::try_from(p).map_err(backend)?);
                }
            }
            let committed = reader
                .committed_offsets(tpl.clone(), REQUEST_TIMEOUT)
                .map_err(|e| Error::unavailable("reading committed offsets", e))?;
            let mut ends = TopicPartitionList::new();
            for element in tpl.elements() {
                let (topic, index) = (element.topic(), element.partition());
                let done = committed
                    .find_partition(topic, index)
                    .is_some_and(|e| matches!(e.offset(), Offset::Offset(_)));
                if done {
                    continue;
                }
                let (_, high) = reader
                    .fetch_watermarks(topic, index, REQUEST_TIMEOUT)
                    .map_err(|e| Error::unavailable(format!("reading {topic}/{index}'s end"), e))?;
                ends.add_partition_offset(topic, index, Offset::Offset(high))
                    .map_err(backend)?;
            }
            if ends.count() > 0 {
                reader
                    .commit(&ends, rdkafka::consumer::CommitMode::Sync)
                    .map_err(|e| Error::unavailable("committing the start offsets", e))?;
            }
            Ok(())
        })
        .await?
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, Error> {
        if let Some(count) = lock(&self.partitions).get(topic) {
            return Ok(*count);
        }
        match self.lookup(topic).await? {
            Lookup::Ready(count) => {
                lock(&self.partitions).insert(topic.to_owned(), count);
                Ok(count)
            }
            Lookup::Missing => Err(Error::UnknownTopic(topic.to_owned())),
            Lookup::NotReady(why) => {
                Err(Error::Backend(format!("topic {topic} is not ready: {why}")))
            }
        }
    }

    /// Asks the cluster (or the [`TopicCreator`]) to create `topic`.
    async fn request_topic(&self, topic: &str, partitions: u32) -> Result<(), Error> {
        if let Some(creator) = &self.creator {
            let (creator, name) = (creator.clone(), topic.to_owned());
            return blocking(move || creator.create_topic(&name, partitions)).await?;
        }
        let count = i32::try_from(partitions).map_err(backend)?;
        // -1: the brokers' `default.replication.factor`.
        let mut new = NewTopic::new(topic, count, TopicReplication::Fixed(-1));
        let settings = self.config.topic_settings(topic);
        for (key, value) in &settings {
            new = new.set(key, value);
        }
        let options = AdminOptions::new()
            .operation_timeout(Some(REQUEST_TIMEOUT))
            .request_timeout(Some(REQUEST_TIMEOUT));
        match self.admin.create_topics([&new], &options).await {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((_, code)) => {
                            return Err(Error::Backend(format!("creating topic {topic}: {code}")))
                        }
                    }
                }
                Ok(())
            }
            // The mock cluster lists no CreateTopics and librdkafka waits for it to time out.
            Err(e) if unsupported(&e) => Err(Error::Backend(format!(
                "creating topic {topic}: {e}; a cluster without CreateTopics (such as librdkafka's \
                 mock cluster) needs its topics made beforehand, e.g. \
                 `threds-bench mock-kafka --topic {topic}:{partitions}`"
            ))),
            Err(e) => Err(Error::unavailable(format!("creating topic {topic}"), e)),
        }
    }

    /// Waits until metadata shows `topic` ready, and checks its partition count.
    async fn await_topic(&self, topic: &str, partitions: u32) -> Result<(), Error> {
        let give_up = Instant::now() + CREATE_VISIBLE;
        loop {
            match self.lookup(topic).await? {
                Lookup::Ready(existing) => {
                    lock(&self.partitions).insert(topic.to_owned(), existing);
                    return mismatch(topic, existing, partitions);
                }
                state if Instant::now() >= give_up => {
                    let why = match state {
                        Lookup::NotReady(why) => why,
                        _ => "it does not show up in metadata".to_owned(),
                    };
                    return Err(Error::Backend(format!(
                        "topic {topic} was created but is not ready after {CREATE_VISIBLE:?}: {why}"
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Takes the earlier handle of `member` in `group` opened through this bus, if it is alive.
    fn displaced(&self, group: &str, member: &str) -> Option<Arc<Slot>> {
        let mut members = lock(&self.members);
        members.retain(|_, slot| slot.strong_count() > 0);
        members
            .remove(&(group.to_owned(), member.to_owned()))
            .and_then(|slot| slot.upgrade())
    }
}

impl KafkaBus {
    /// Joins `group`; `from_end`: partitions without a committed offset start at their end
    /// (`auto.offset.reset=latest`), else at their start.
    async fn join_at(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
        from_end: bool,
    ) -> Result<Box<dyn Consumer>, Error> {
        for topic in topics {
            self.partition_count(topic).await?;
        }
        if let Some(earlier) = self.displaced(group, member) {
            // Joining again under a name replaces the earlier handle: it leaves the group (so its
            // partitions are free for the newcomer) and reports everything revoked.
            if let Some(old) = earlier.fence() {
                let static_member = self.config.static_membership;
                blocking(move || consumer::depart(&old, static_member)).await?;
            }
        }
        if from_end {
            // Without it the member still starts at the end, only later (see `commit_ends`).
            if let Err(e) = self.commit_ends(group, topics).await {
                tracing::warn!(code = e.code(), group, error = %e, "kafka: could not fix where a new group starts; it starts at the end once assigned");
            }
        }
        let consumer = KafkaConsumer::open(
            &self.config,
            self.admin.clone(),
            group,
            topics,
            member,
            from_end,
        )?;
        lock(&self.members).insert(
            (group.to_owned(), member.to_owned()),
            Arc::downgrade(consumer.slot()),
        );
        Ok(Box::new(consumer))
    }
}

#[async_trait]
impl Bus for KafkaBus {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), Error> {
        if partitions == 0 {
            return Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition: 0,
            });
        }
        match self.lookup(topic).await? {
            Lookup::Ready(existing) => {
                lock(&self.partitions).insert(topic.to_owned(), existing);
                mismatch(topic, existing, partitions)
            }
            Lookup::NotReady(_) => self.await_topic(topic, partitions).await,
            Lookup::Missing => {
                self.request_topic(topic, partitions).await?;
                self.await_topic(topic, partitions).await
            }
        }
    }

    async fn partitions(&self, topic: &str) -> Result<u32, Error> {
        self.partition_count(topic).await
    }

    async fn topic_ready(&self, topic: &str) -> Result<(), Error> {
        match self.lookup(topic).await? {
            Lookup::Ready(count) => {
                lock(&self.partitions).insert(topic.to_owned(), count);
                Ok(())
            }
            Lookup::Missing => {
                lock(&self.partitions).remove(topic);
                Err(Error::UnknownTopic(topic.to_owned()))
            }
            Lookup::NotReady(why) => {
                Err(Error::Backend(format!("topic {topic} is not ready: {why}")))
            }
        }
    }

    async fn append(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&str>,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<Position, Error> {
        let partition = self.target(topic, partition, key).await?;
        let record = outgoing(topic, partition, key, &payload, &headers)?;
        let producer = self.producer();
        let result = producer.send(record, QUEUE_TIMEOUT).await;
        if result.is_err() {
            self.renew_if_fatal(&producer);
        }
        self.delivered(topic, partition, result)
    }

    async fn append_all(&self, records: Vec<Append>) -> Vec<Result<Position, Error>> {
        // Every record is queued before any delivery is awaited, in order: the idempotent
        // producer keeps that order per partition, and the batch costs one round of the broker's
        // acknowledgements rather than one per record.
        let producer = self.producer();
        let mut queued = Vec::with_capacity(records.len());
        for r in &records {
            let partition = match self.target(&r.topic, r.partition, r.key.as_deref()).await {
                Ok(p) => p,
                Err(e) => {
                    queued.push(Queued::Failed(e));
                    continue;
                }
            };
            let record = match outgoing(
                &r.topic,
                partition,
                r.key.as_deref(),
                &r.payload,
                &r.headers,
            ) {
                Ok(record) => record,
                Err(e) => {
                    queued.push(Queued::Failed(e));
                    continue;
                }
            };
            match producer.send_result(record) {
                Ok(delivery) => queued.push(Queued::Sent(partition, delivery)),
                // The local queue is full: wait for room (and this record's delivery) in place,
                // which keeps the order.
                Err((_, record)) => {
                    let result = producer.send(record, QUEUE_TIMEOUT).await;
                    queued.push(Queued::Done(self.delivered(&r.topic, partition, result)));
                }
            }
        }
        let mut results = Vec::with_capacity(queued.len());
        for (r, q) in records.iter().zip(queued) {
            results.push(match q {
                Queued::Failed(e) => Err(e),
                Queued::Done(result) => result,
                Queued::Sent(partition, delivery) => match delivery.await {
                    Ok(result) => self.delivered(&r.topic, partition, result),
                    Err(_) => Err(Error::Backend(format!(
                        "appending to {}/{partition}: the producer went away",
                        r.topic
                    ))),
                },
            });
        }
        if results.iter().any(Result::is_err) {
            self.renew_if_fatal(&producer);
        }
        results
    }

    async fn lag(&self, group: &str, topic: &str) -> Result<Vec<Lag>, Error> {
        let count = self.partition_count(topic).await?;
        let reader = self.lag_reader(group)?;
        let topic = topic.to_owned();
        blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for p in 0..count {
                tpl.add_partition(&topic, i32::try_from(p).map_err(backend)?);
            }
            let committed = reader
                .committed_offsets(tpl, REQUEST_TIMEOUT)
                .map_err(|e| {
                    Error::unavailable(format!("reading {topic}'s committed offsets"), e)
                })?;
            let mut lags = Vec::with_capacity(count as usize);
            for partition in 0..count {
                let index = i32::try_from(partition).map_err(backend)?;
                let (low, high) = reader
                    .fetch_watermarks(&topic, index, REQUEST_TIMEOUT)
                    .map_err(|e| {
                        Error::unavailable(format!("reading {topic}/{partition}'s end offset"), e)
                    })?;
                let from = committed
                    .find_partition(&topic, index)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(n) => Some(n),
                        _ => None,
                    })
                    .unwrap_or(low)
                    .max(low);
                lags.push(Lag {
                    partition,
                    records: u64::try_from(high.saturating_sub(from)).unwrap_or(0),
                    end: u64::try_from(high).unwrap_or(0),
                    bytes: None,
                });
            }
            Ok(lags)
        })
        .await?
    }

    async fn join(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, Error> {
        self.join_at(group, topics, member, false).await
    }

    async fn join_from_end(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, Error> {
        self.join_at(group, topics, member, true).await
    }

    async fn tail(&self, topic: &str, partition: u32) -> Result<Box<dyn Consumer>, Error> {
        let count = self.partition_count(topic).await?;
        if partition >= count {
            return Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            });
        }
        let reader =
            tail::KafkaTail::open(&self.config, self.admin.clone(), topic, partition).await?;
        Ok(crate::bus::tail::Tail::boxed(topic, partition, reader))
    }
}

/// A record of [`Bus::append_all`] once handed to the producer.
enum Queued {
    /// Queued; its delivery report is awaited.
    Sent(u32, rdkafka::producer::DeliveryFuture),
    /// Already delivered (or refused) while waiting for room in the queue.
    Done(Result<Position, Error>),
    /// Not queued.
    Failed(Error),
}

/// The producer record of an append to `topic`/`partition`.
fn outgoing<'a>(
    topic: &'a str,
    partition: u32,
    key: Option<&'a str>,
    payload: &'a [u8],
    headers: &[(String, String)],
) -> Result<FutureRecord<'a, str, [u8]>, Error> {
    let mut kafka_headers = OwnedHeaders::new_with_capacity(headers.len());
    for (name, value) in headers {
        kafka_headers = kafka_headers.insert(Header {
            key: name,
            value: Some(value),
        });
    }
    let mut record = FutureRecord::to(topic)
        .partition(i32::try_from(partition).map_err(backend)?)
        .payload(payload)
        .headers(kafka_headers);
    if let Some(key) = key {
        record = record.key(key);
    }
    Ok(record)
}

/// `Ok` if a topic with `existing` partitions satisfies a request for `requested`.
fn mismatch(topic: &str, existing: u32, requested: u32) -> Result<(), Error> {
    if existing == requested {
        Ok(())
    } else {
        Err(Error::PartitionMismatch {
            topic: topic.to_owned(),
            existing,
            requested,
        })
    }
}

/// Whether an admin request failed as it does when the brokers do not offer the API: refused,
/// or never answered.
fn unsupported(e: &KafkaError) -> bool {
    let code = match e {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    matches!(
        code,
        Some(
            RDKafkaErrorCode::UnsupportedFeature
                | RDKafkaErrorCode::UnsupportedVersion
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
        )
    )
}

/// A backend error from anything displayable.
fn backend(e: impl fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// Runs a blocking librdkafka call on tokio's blocking threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(format!("kafka worker thread: {e}")))
}

/// Locks a mutex, ignoring poisoning (the guarded maps stay consistent at every step).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
