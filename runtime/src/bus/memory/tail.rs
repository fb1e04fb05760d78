//! A reader of one partition outside any group ([`crate::bus::Bus::tail`]) on the embedded bus:
//! a cursor that starts at the partition's end and is woken by appends to it.

use super::state::lock;
use super::Shared;
use crate::bus::tail::PartitionReader;
use crate::bus::{Error, Record};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a look at the partition found past the cursor.
enum Found {
    /// Nothing new.
    Nothing,
    /// These records (memory mode).
    Records(Vec<Record>),
    /// `count` records from offset `from`, to read from disk.
    OnDisk { from: u64, count: u64 },
}

/// A tail reader on a [`super::MemoryBus`].
#[derive(Debug)]
pub(super) struct MemoryTail {
    shared: Arc<Shared>,
    topic: String,
    partition: u32,
    /// The next offset to read.
    next: u64,
    notify: Arc<Notify>,
}

impl MemoryTail {
    /// A reader of `topic`/`partition` positioned at its end now.
    pub(super) fn open(shared: Arc<Shared>, topic: &str, partition: u32) -> Result<Self, Error> {
        let notify = Arc::new(Notify::new());
        let next = {
            let mut state = lock(&shared.state);
            state.check(topic, partition)?;
            let end = state
                .topic(topic)?
                .partitions
                .get(partition as usize)
                .map_or(0, |log| log.end);
            state
                .tails
                .entry((topic.to_owned(), partition))
                .or_default()
                .push(Arc::downgrade(&notify));
            end
        };
        Ok(MemoryTail {
            shared,
            topic: topic.to_owned(),
            partition,
            next,
            notify,
        })
    }

    /// The records from the cursor, at most `max`, read under the lock (memory mode), or the
    /// range to read from disk.
    fn look(&mut self, max: u64) -> Result<Found, Error> {
        let state = lock(&self.shared.state);
        let log = state
            .topic(&self.topic)?
            .partitions
            .get(self.partition as usize)
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.topic.clone(),
                partition: self.partition,
            })?;
        if self.next < log.start {
            tracing::warn!(topic = %self.topic, partition = self.partition, from = self.next, to = log.start, "bus retention removed records a tail reader had not read; skipping ahead");
            self.next = log.start;
        }
        if self.next >= log.end {
            return Ok(Found::Nothing);
        }
        let count = (log.end - self.next).min(max);
        if self.shared.durable.is_some() {
            return Ok(Found::OnDisk {
                from: self.next,
                count,
            });
        }
        let entries = log.slice(self.next, count).ok_or_else(|| {
            Error::Backend(format!(
                "records of {}/{} from offset {} are missing",
                self.topic, self.partition, self.next
            ))
        })?;
        let records: Vec<Record> = (self.next..)
            .zip(entries)
            .map(|(offset, e)| e.to_record(&self.topic, self.partition, offset))
            .collect();
        Ok(Found::Records(records))
    }
}

#[async_trait]
impl PartitionReader for MemoryTail {
    async fn read(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>, Error> {
        let max = u64::try_from(max.max(1)).unwrap_or(u64::MAX);
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let records = match self.look(max)? {
                Found::Records(records) => records,
                Found::OnDisk { from, count } => {
                    let Some(durable) = &self.shared.durable else {
                        return Err(Error::Closed);
                    };
                    durable.read(&self.topic, self.partition, from, count)?
                }
                Found::Nothing => {
                    let wait = self.notify.notified();
                    match deadline {
                        Some(deadline) if Instant::now() >= deadline => return Ok(Vec::new()),
                        Some(deadline) => {
                            tokio::select! {
                                () = wait => {}
                                () = tokio::time::sleep_until(deadline) => {}
                            }
                        }
                        None => wait.await,
                    }
                    continue;
                }
            };
            if let Some(last) = records.last() {
                self.next = last.position.offset.saturating_add(1);
            }
            return Ok(records);
        }
    }
}
