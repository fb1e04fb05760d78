//! The embedded bus for `threds dev`: per-partition append-only logs with dense offsets, consumer
//! groups that share partitions among members (range assignment, cooperative hand-over,
//! session-timeout eviction), and committed offsets. [`MemoryBus::new`] keeps everything in
//! memory; [`MemoryBus::open`] keeps it in a redb file with group-committed, durable appends.

mod assign;
mod codec;
mod consumer;
mod durable;
mod state;
mod tail;
#[cfg(test)]
mod tests;

use self::consumer::MemoryConsumer;
use self::durable::Durable;
use self::state::{lock, Entry, State, Topic, MAX_PARTITIONS};
use self::tail::MemoryTail;
use super::{partition_for, Bus, Consumer, Error, Lag, Position};
use async_trait::async_trait;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The embedded event bus (cheap to clone; clones share the same bus).
#[derive(Debug, Clone)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

/// What the bus handle and its consumers share.
struct Shared {
    state: Arc<Mutex<State>>,
    durable: Option<Durable>,
}

impl std::fmt::Debug for Shared {
    // Not derived: the state holds the whole log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("MemoryBus");
        if let Ok(state) = self.state.try_lock() {
            out.field("topics", &state.topics.len())
                .field("groups", &state.groups.len());
        }
        out.field("durable", &self.durable).finish()
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBus {
    /// A bus that lives in memory only.
    pub fn new() -> Self {
        MemoryBus {
            shared: Arc::new(Shared {
                state: Arc::new(Mutex::new(State::new())),
                durable: None,
            }),
        }
    }

    /// A durable bus stored in `dir/bus.redb` (created if missing): topics, records and committed
    /// offsets survive a restart, and an append is on disk when it returns.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let (durable, state) = Durable::open(dir)?;
        Ok(MemoryBus {
            shared: Arc::new(Shared {
                state,
                durable: Some(durable),
            }),
        })
    }

    /// Sets how long a member may go without polling before it is evicted (default 10 s).
    pub fn with_session_timeout(self, timeout: Duration) -> Self {
        lock(&self.shared.state).session_timeout = timeout;
        self
    }

    /// Keeps at most `records` records per partition: older ones are removed as new ones arrive,
    /// like Kafka's size-based retention (consumers behind the oldest kept record skip ahead to
    /// it, with a warning). Without it every record is kept.
    pub fn with_retention(self, records: u64) -> Self {
        lock(&self.shared.state).retain.records = Some(records.max(1));
        self
    }

    /// Also keeps at most `bytes` bytes of records per partition, in memory (payloads, keys,
    /// headers and a small overhead each; the newest record is always kept). A durable bus keeps
    /// its records on disk and bounds them by count only.
    pub fn with_retention_bytes(self, bytes: u64) -> Self {
        lock(&self.shared.state).retain.bytes = Some(bytes.max(1));
        self
    }

    /// How many write transactions the durable store has committed (0 in memory).
    pub fn durable_commits(&self) -> u64 {
        self.shared.durable.as_ref().map_or(0, Durable::commits)
    }
}

/// Now, in epoch milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[async_trait]
impl Bus for MemoryBus {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), Error> {
        if partitions == 0 {
            return Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition: 0,
            });
        }
        if partitions > MAX_PARTITIONS {
            return Err(Error::Backend(format!(
                "{partitions} partitions requested; the embedded bus allows at most {MAX_PARTITIONS}"
            )));
        }
        {
            let mut state = lock(&self.shared.state);
            if let Some(existing) = state.topics.get(topic).map(Topic::count) {
                return if existing == partitions {
                    Ok(())
                } else {
                    Err(Error::PartitionMismatch {
                        topic: topic.to_owned(),
                        existing,
                        requested: partitions,
                    })
                };
            }
            if self.shared.durable.is_none() {
                state
                    .topics
                    .insert(topic.to_owned(), Topic::new(partitions));
                return Ok(());
            }
        }
        match &self.shared.durable {
            Some(durable) => durable.create_topic(topic, partitions).await,
            None => Ok(()),
        }
    }

    async fn partitions(&self, topic: &str) -> Result<u32, Error> {
        lock(&self.shared.state).topic(topic).map(Topic::count)
    }

    async fn topic_ready(&self, topic: &str) -> Result<(), Error> {
        lock(&self.shared.state).topic(topic).map(|_| ())
    }

    async fn lag(&self, group: &str, topic: &str) -> Result<Vec<Lag>, Error> {
        let state = lock(&self.shared.state);
        let logs = &state.topic(topic)?.partitions;
        let committed = state.groups.get(group).map(|g| &g.committed);
        let memory = self.shared.durable.is_none();
        let mut lags = Vec::with_capacity(logs.len());
        for (partition, log) in (0u32..).zip(logs) {
            let from = committed
                .and_then(|c| c.get(&(topic.to_owned(), partition)).copied())
                .unwrap_or(log.start)
                .max(log.start);
            lags.push(Lag {
                partition,
                records: log.end.saturating_sub(from),
                end: log.end,
                bytes: memory.then(|| log.bytes_from(from)),
            });
        }
        Ok(lags)
    }

    async fn append(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&str>,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<Position, Error> {
        let entry = Entry {
            key: key.map(Box::from),
            payload: payload.into_boxed_slice(),
            headers: headers.into_boxed_slice(),
            timestamp: now_ms(),
        };
        let partition = {
            let mut guard = lock(&self.shared.state);
            let count = guard.topic(topic)?.count();
            let partition = partition.unwrap_or_else(|| key.map_or(0, |k| partition_for(k, count)));
            guard.check(topic, partition)?;
            if self.shared.durable.is_none() {
                let state = &mut *guard;
                let log = state
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.partitions.get_mut(partition as usize))
                    .ok_or_else(|| Error::UnknownPartition {
                        topic: topic.to_owned(),
                        partition,
                    })?;
                let offset = log.push(entry, state.retain);
                state.wake_readers(topic, partition);
                return Ok(Position {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                });
            }
            partition
        };
        let Some(durable) = &self.shared.durable else {
            return Err(Error::Closed);
        };
        let offset = durable
            .append(topic, partition, codec::encode(&entry)?)
            .await?;
        Ok(Position {
            topic: topic.to_owned(),
            partition,
            offset,
        })
    }

    async fn join(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, Error> {
        let consumer = MemoryConsumer::join(self.shared.clone(), group, topics, member, false)?;
        Ok(Box::new(consumer))
    }

    async fn join_from_end(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, Error> {
        let consumer = MemoryConsumer::join(self.shared.clone(), group, topics, member, true)?;
        Ok(Box::new(consumer))
    }

    async fn tail(&self, topic: &str, partition: u32) -> Result<Box<dyn Consumer>, Error> {
        let reader = MemoryTail::open(self.shared.clone(), topic, partition)?;
        Ok(crate::bus::tail::Tail::boxed(topic, partition, reader))
    }
}
