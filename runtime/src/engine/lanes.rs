//! The engine's consumer of the events topic (a [`Handler`] of the consumer driver): one lane per
//! assigned partition, each with a worker that runs its batches.
//!
//! Partitions run independently: each has at most one batch at its worker, and the records polled
//! meanwhile wait in its queue, so a slow partition holds back only itself while polling and
//! committing go on. A partition's offset is committed once its worker has applied (or
//! dead-lettered) the records below it. A failed batch goes back to the front of its queue and
//! the partition rests a while; a worker that is gone (it panicked, or its mailbox closed) is
//! started again — the lanes supervise the workers. The outbox relay runs between batches.

use super::partition;
use super::Processor;
use crate::bus::driver::{Fatal, Handler, TopicPartition};
use crate::bus::{Position, Record};
use async_trait::async_trait;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often unacknowledged outbox records are looked for.
const RELAY_EVERY: Duration = Duration::from_secs(1);
/// How old an unacknowledged outbox record must be before the relay republishes it (its own
/// step normally acknowledges it within milliseconds).
const RELAY_GRACE_MS: i64 = 5_000;
/// Most records taken from the consumer and not yet applied: polling pauses beyond it.
const MAX_BUFFERED: usize = 8_192;
/// Most payload bytes taken from the consumer and not yet applied: polling pauses beyond it
/// (with events of up to `[engine] max_event_bytes`, records alone would not bound memory).
const MAX_BUFFERED_BYTES: usize = crate::config::ENGINE_BUFFER_BYTES as usize;
/// How long a partition waits after a failed batch before its records are tried again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// Why a worker did not answer a batch.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The batch failed; the worker is still there.
    #[error(transparent)]
    Failed(#[from] partition::Error),
    /// The worker is gone (it panicked, or stopped): it must be started again.
    #[error("the worker of partition {partition} is gone")]
    Gone {
        /// The partition.
        partition: u32,
    },
}

/// Where the partitions' batches run: the engine process gives each partition an actor.
pub trait Workers {
    /// A running worker.
    type Worker: Clone + 'static;

    /// Starts the worker of `partition`.
    fn start(&mut self, partition: u32) -> Self::Worker;

    /// Runs a batch of the worker's partition; answers the last offset handled.
    fn apply(
        &self,
        worker: &Self::Worker,
        records: Vec<Record>,
    ) -> LocalBoxFuture<'static, Result<Option<u64>, WorkerError>>;

    /// Stops a worker after its work in progress; it gives its partition's lease up.
    fn retire(&mut self, worker: Self::Worker);
}

/// A partition's batch finished by its worker: the partition, the records, what happened.
type Finished = (u32, Vec<Record>, Result<Option<u64>, WorkerError>);

/// The lanes of one engine (see the module docs).
pub struct Lanes<W: Workers> {
    workers: W,
    processor: Arc<Processor>,
    topic: String,
    batch: usize,
    ready: Arc<AtomicBool>,
    restarts: Arc<AtomicU64>,
    /// The worker of each assigned partition.
    running_on: HashMap<u32, W::Worker>,
    /// Records polled and not yet handed to their worker, per partition, in offset order.
    queued: HashMap<u32, VecDeque<Record>>,
    /// Partitions not to be handed records before the given time (after a failed batch).
    resting: HashMap<u32, Instant>,
    /// Partitions whose worker has a batch.
    busy: HashSet<u32>,
    running: FuturesUnordered<LocalBoxFuture<'static, Finished>>,
    last_relay: Instant,
    /// Shutting down: no new batches.
    draining: bool,
}

impl<W: Workers> Lanes<W> {
    /// Lanes whose batches (at most `batch` records) run on `workers`; `ready` is set once
    /// partitions are assigned, and `restarts` counts workers started again.
    pub fn new(
        workers: W,
        processor: Arc<Processor>,
        batch: usize,
        ready: Arc<AtomicBool>,
        restarts: Arc<AtomicU64>,
    ) -> Lanes<W> {
        let topic = processor.topology().events().to_owned();
        Lanes {
            workers,
            processor,
            topic,
            batch: batch.max(1),
            ready,
            restarts,
            running_on: HashMap::new(),
            queued: HashMap::new(),
            resting: HashMap::new(),
            busy: HashSet::new(),
            running: FuturesUnordered::new(),
            last_relay: Instant::now() - RELAY_EVERY,
            draining: false,
        }
    }

    /// Hands every idle partition its queued records.
    fn dispatch(&mut self) {
        if self.draining {
            return;
        }
        let now = Instant::now();
        self.resting.retain(|_, until| *until > now);
        for (partition, records) in self.queued.iter_mut() {
            if records.is_empty()
                || self.busy.contains(partition)
                || self.resting.contains_key(partition)
            {
                continue;
            }
            let Some(worker) = self.running_on.get(partition) else {
                continue;
            };
            let take: Vec<Record> = records.drain(..records.len().min(self.batch)).collect();
            let p = *partition;
            self.busy.insert(p);
            let applying = self.workers.apply(worker, take.clone());
            self.running
                .push(Box::pin(async move { (p, take, applying.await) }));
        }
    }

    /// Takes finished batches: answers the offsets to commit; a failed batch's records go back
    /// to the front of their partition's queue (if the partition is still this member's), which
    /// rests a while before it is tried again; a worker that is gone is started again.
    fn settle(&mut self, finished: Vec<Finished>) -> Vec<Position> {
        let mut commits = Vec::new();
        for (partition, records, result) in finished {
            self.busy.remove(&partition);
            if !self.running_on.contains_key(&partition) {
                continue; // revoked meanwhile
            }
            let error = match result {
                Ok(Some(last)) => {
                    commits.push(Position {
                        topic: self.topic.clone(),
                        partition,
                        offset: last + 1,
                    });
                    continue;
                }
                Ok(None) => continue,
                Err(e) => e,
            };
            let (code, restart) = match &error {
                WorkerError::Failed(e) => (e.code(), e.is_fatal()),
                WorkerError::Gone { .. } => (crate::codes::RESTARTED, true),
            };
            let why = crate::codes::chain(&error);
            if restart {
                // The worker stopped (it failed, or is gone): a new one starts afresh — it takes
                // the lease again and re-reads what was applied.
                let restarts = self.restarts.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(code, partition, restarts, error = %why, records = records.len(), "engine: partition worker failed; restarting it and retrying the batch");
                let worker = self.workers.start(partition);
                self.running_on.insert(partition, worker);
            } else {
                tracing::warn!(code, partition, error = %why, records = records.len(), "engine: batch not applied; retrying it");
            }
            let queue = self.queued.entry(partition).or_default();
            for record in records.into_iter().rev() {
                queue.push_front(record);
            }
            self.resting.insert(partition, Instant::now() + RETRY_AFTER);
        }
        self.dispatch();
        commits
    }

    /// When the next resting partition may run again, if any rests.
    fn next_wake(&self) -> Option<Instant> {
        self.resting.values().min().copied()
    }

    async fn relay(&mut self) {
        self.last_relay = Instant::now();
        if let Err(e) = self.processor.relay(RELAY_GRACE_MS, 256).await {
            tracing::warn!(code = crate::codes::UNPUBLISHED, error = %e, "engine: outbox relay failed; will retry");
        }
    }
}

#[async_trait(?Send)]
impl<W: Workers> Handler for Lanes<W> {
    fn assigned(&mut self, partitions: &[TopicPartition]) {
        for (topic, partition) in partitions {
            if *topic == self.topic && !self.running_on.contains_key(partition) {
                let worker = self.workers.start(*partition);
                self.running_on.insert(*partition, worker);
            }
        }
        if !self.running_on.is_empty() {
            self.ready.store(true, Ordering::Release);
        }
    }

    fn revoked(&mut self, partitions: &[TopicPartition]) {
        for (topic, partition) in partitions {
            if *topic == self.topic {
                self.queued.remove(partition);
                self.resting.remove(partition);
                if let Some(worker) = self.running_on.remove(partition) {
                    // Stops after the work in progress and releases the lease; nothing of this
                    // partition is committed any more.
                    self.workers.retire(worker);
                }
            }
        }
    }

    async fn handle(&mut self, records: Vec<Record>) -> Result<Vec<Position>, Fatal> {
        for record in records {
            self.queued
                .entry(record.position.partition)
                .or_default()
                .push_back(record);
        }
        self.dispatch();
        Ok(Vec::new())
    }

    /// Cancel-safe, as the driver drops it whenever a poll answers first: the relay (which may be
    /// cut short and is simply run again later) comes before any finished batch is taken, and
    /// once one is taken nothing awaits before it is settled — a batch taken and then dropped
    /// would leave its partition busy for ever.
    async fn progress(&mut self) -> Result<Vec<Position>, Fatal> {
        if self.last_relay.elapsed() >= RELAY_EVERY {
            self.relay().await;
        }
        let relay_at = self.last_relay + RELAY_EVERY;
        let wake = self.next_wake().map_or(relay_at, |w| w.min(relay_at));
        let mut finished = Vec::new();
        tokio::select! {
            Some(done) = self.running.next(), if !self.running.is_empty() => finished.push(done),
            () = tokio::time::sleep_until(wake.into()) => {}
        }
        // Collect whatever else finished meanwhile.
        while let Some(Some(done)) = futures_util::FutureExt::now_or_never(self.running.next()) {
            finished.push(done);
        }
        Ok(self.settle(finished))
    }

    fn wants_records(&self) -> bool {
        let (records, bytes) = self
            .queued
            .values()
            .flatten()
            .fold((0, 0), |(n, b), r| (n + 1, b + r.payload.len()));
        records < MAX_BUFFERED && bytes < MAX_BUFFERED_BYTES
    }

    fn busy(&self) -> bool {
        !self.running.is_empty() || self.queued.values().any(|q| !q.is_empty())
    }

    async fn drain(&mut self) -> Vec<Position> {
        // Let the batches in flight finish and commit what they applied; the queued records wait
        // for the next owner.
        self.draining = true;
        let mut finished = Vec::new();
        while let Some(done) = self.running.next().await {
            finished.push(done);
        }
        self.queued.clear();
        let commits = self.settle(finished);
        for (_, worker) in self.running_on.drain() {
            self.workers.retire(worker);
        }
        commits
    }
}
