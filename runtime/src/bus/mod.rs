//! The event bus port: named topics split into partitions, keyed appends, consumer groups that
//! share a topic's partitions among members, and committed offsets (Kafka's model).
//!
//! Guarantees every adapter MUST keep (checked by `threds_testkit::contract::bus`):
//! - records of one partition are delivered in offset order; offsets are dense and start at 0;
//! - a group delivers each partition to exactly one member at a time; when members join or leave,
//!   partitions move and the new owner starts at the group's committed offset (at-least-once);
//! - a committed offset survives the member, the group and (for durable adapters) the process.

pub mod driver;
pub mod kafka;
pub mod memory;
mod partition;
mod tail;

pub use partition::partition_for;

use async_trait::async_trait;
use std::time::Duration;

/// Appends `record` to its topic's dead letters (of `topology`) with why (`error`), where, and
/// after how many `attempts` it was given up; counts it and logs it.
pub async fn dead_letter(
    bus: &dyn Bus,
    topology: &crate::topology::Topology,
    record: &Record,
    error: &str,
    attempts: u32,
) -> Result<(), Error> {
    use crate::topology::headers;
    let p = &record.position;
    let topic = topology.dead_letter(&p.topic);
    let mut headers = record.headers.clone();
    headers.push((headers::ERROR.into(), error.to_string()));
    headers.push((
        headers::ORIGIN.into(),
        format!("{}/{}/{}", p.topic, p.partition, p.offset),
    ));
    headers.push((headers::ATTEMPTS.into(), attempts.to_string()));
    let trace_id = crate::trace::TraceParent::trace_id_of(&record.headers);
    tracing::error!(code = crate::codes::DEAD_LETTERED, position = ?p, trace_id, error, "dead-lettered to {topic}");
    bus.append(
        &topic,
        Some(0),
        record.key.as_deref(),
        record.payload.clone(),
        headers,
    )
    .await?;
    crate::metrics::metrics()
        .dead_letters
        .get_or_create(&crate::metrics::TopicLabel {
            topic: p.topic.clone(),
        })
        .inc();
    Ok(())
}

/// A place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: u64,
}

/// One record read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where it is.
    pub position: Position,
    /// The key it was appended with.
    pub key: Option<String>,
    /// The payload (JSON text for events and messages).
    pub payload: Vec<u8>,
    /// Headers (trace context, error details on dead-letter topics).
    pub headers: Vec<(String, String)>,
    /// Append time, epoch ms.
    pub timestamp: i64,
}

/// What one poll returned: records, and partitions that moved since the previous poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polled {
    /// Partitions taken away from this member (stop working on them; do not commit them).
    pub revoked: Vec<(String, u32)>,
    /// Partitions given to this member (read from their committed offsets).
    pub assigned: Vec<(String, u32)>,
    /// Records, in offset order per partition.
    pub records: Vec<Record>,
}

/// A record to append (see [`Bus::append`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// Topic.
    pub topic: String,
    /// Partition, or `None` for [`partition_for`] of the key (partition 0 without a key).
    pub partition: Option<u32>,
    /// Key.
    pub key: Option<String>,
    /// Payload.
    pub payload: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, String)>,
}

/// Bus errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topic does not exist.
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    /// The partition does not exist.
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
    },
    /// The topic exists with another partition count.
    #[error("topic {topic} exists with {existing} partitions, not {requested}")]
    PartitionMismatch {
        /// Topic.
        topic: String,
        /// Its partition count.
        existing: u32,
        /// The count asked for.
        requested: u32,
    },
    /// A commit for a partition this member does not own (it moved in a rebalance).
    #[error("partition {topic}/{partition} is not assigned to this member")]
    NotAssigned {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
    },
    /// The bus was shut down.
    #[error("the bus is closed")]
    Closed,
    /// The adapter's backend failed.
    #[error("bus backend: {0}")]
    Backend(String),
    /// The adapter's backend did not answer or failed (with its error).
    #[error("{what}")]
    Unavailable {
        /// What was being done, and where.
        what: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// The backend `what` failed with `source`.
    pub fn unavailable(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Unavailable {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// The stable code of this failure (see `docs/errors.md`).
    pub fn code(&self) -> &'static str {
        crate::codes::BACKEND_UNAVAILABLE
    }
}

/// How far a consumer group is behind on one partition: what was appended after its committed
/// offset (all of the partition's kept records when it has committed none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// The partition.
    pub partition: u32,
    /// Records not yet committed by the group.
    pub records: u64,
    /// The partition's end offset (the next record appended lands here); the group's committed
    /// position is `end - records`.
    pub end: u64,
    /// Their bytes, where the adapter knows them (the in-memory bus; `None` otherwise).
    pub bytes: Option<u64>,
}

/// The bus: topics, appends and consumer groups.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Creates `topic` with `partitions` partitions; succeeds if it already exists with that count.
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), Error>;

    /// The partition count of `topic`.
    async fn partitions(&self, topic: &str) -> Result<u32, Error>;

    /// Whether `topic` exists with every partition led, asked of the backend now (no cache):
    /// [`Error::UnknownTopic`] when it is gone (for readiness checks). Required of every bus, so
    /// that no wrapper answers from a cache instead.
    async fn topic_ready(&self, topic: &str) -> Result<(), Error>;

    /// Appends a record. `partition: None` picks [`partition_for`] of the key (or partition 0
    /// without a key). Returns where it landed once it is durable in the adapter's sense.
    async fn append(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&str>,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<Position, Error>;

    /// How far `group` is behind on each partition of `topic`.
    async fn lag(&self, group: &str, topic: &str) -> Result<Vec<Lag>, Error>;

    /// Appends `records` in order, pipelined where the adapter can: records of one partition
    /// land in the order given, except that after one fails, later ones may still land. Answers
    /// each record's position or error, in order.
    async fn append_all(&self, records: Vec<Append>) -> Vec<Result<Position, Error>> {
        let mut results = Vec::with_capacity(records.len());
        for r in records {
            let key = r.key.as_deref();
            results.push(
                self.append(&r.topic, r.partition, key, r.payload, r.headers)
                    .await,
            );
        }
        results
    }

    /// Joins consumer group `group` on `topics` as `member` (a stable name: rejoining with the
    /// same name replaces the previous membership).
    async fn join(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, Error>;

    /// Joins like [`Bus::join`], except that a partition on which `group` has committed nothing
    /// is read from its end: records appended before it was assigned are skipped (a new reader
    /// of live traffic, such as a session node under a new name, does not replay the past).
    async fn join_from_end(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, Error>;

    /// Reads partition `partition` of `topic` outside any group, from its end when called: only
    /// records appended after this returns are read. The reader's first poll reports the
    /// partition as assigned; it commits nothing (`commit` succeeds and does nothing,
    /// `committed` answers `None`), and dropping it ends it.
    async fn tail(&self, topic: &str, partition: u32) -> Result<Box<dyn Consumer>, Error>;
}

/// A member of a consumer group.
#[async_trait]
pub trait Consumer: Send {
    /// Waits up to `timeout` for records of the partitions assigned to this member (at most `max`),
    /// reporting assignment changes first.
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Polled, Error>;

    /// Commits, per partition, the offset of the next record to read (last processed + 1).
    async fn commit(&mut self, offsets: &[Position]) -> Result<(), Error>;

    /// Like [`Consumer::commit`], without waiting for the group coordinator where the adapter can:
    /// an error answers what is known at once, and a failure found later is logged and counted
    /// (`threds_consumer_failures_total{stage="commit"}`); the next commit, of later offsets,
    /// covers it. The default commits and waits.
    async fn commit_soon(&mut self, offsets: &[Position]) -> Result<(), Error> {
        self.commit(offsets).await
    }

    /// The group's committed offset for a partition (the next record to read), if any.
    async fn committed(&self, topic: &str, partition: u32) -> Result<Option<u64>, Error>;

    /// The partitions assigned to this member now.
    fn assignment(&self) -> Vec<(String, u32)>;

    /// Leaves the group; its partitions move to the remaining members.
    async fn leave(self: Box<Self>) -> Result<(), Error>;
}
