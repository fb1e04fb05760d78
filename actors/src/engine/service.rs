//! The engine service: a member of the engine consumer group on the events topic. It starts a
//! [`PartitionWorker`] per assigned partition, hands each its records, and commits a partition's
//! offset only after its worker has applied (or dead-lettered) the records.

use super::worker::{LeaseSpec, PartitionWorker, Process, Retire};
use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use threds_runtime::bus::{Bus, Consumer, Position, Record};
use threds_runtime::engine::Processor;
use threds_runtime::store::ThredStore;
use tokio_util::sync::CancellationToken;

/// How often unacknowledged outbox records are looked for.
const RELAY_EVERY: Duration = Duration::from_secs(1);
/// How old an unacknowledged outbox record must be before the relay republishes it (its own
/// step normally acknowledges it within milliseconds).
const RELAY_GRACE_MS: i64 = 5_000;

/// What the engine service needs.
pub struct EngineOptions {
    /// Runs the steps.
    pub processor: Arc<Processor>,
    /// Answers control events.
    pub admin: Arc<threds_runtime::engine::admin::Admin>,
    /// The thred store.
    pub store: Arc<dyn ThredStore>,
    /// The bus (dead letters).
    pub bus: Arc<dyn Bus>,
    /// Attempts before dead-lettering.
    pub max_attempts: u32,
    /// Largest batch per poll.
    pub batch: usize,
    /// Arbiters workers are spread over (parallelism).
    pub arbiters: Vec<ArbiterHandle>,
    /// Set once partitions are assigned.
    pub ready: Arc<AtomicBool>,
    /// This engine's name (owner of its partition leases).
    pub node: String,
    /// How long a partition lease lasts unless renewed.
    pub lease_ttl: Duration,
}

/// Most records taken from the consumer and not yet applied: polling pauses beyond it.
const MAX_BUFFERED: usize = 8_192;
/// How long a partition waits after a failed batch before its records are tried again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// A partition's batch finished by its worker: the partition, the records, and what happened.
type Finished = (
    u32,
    Vec<Record>,
    Result<Result<Option<u64>, String>, MailboxError>,
);

/// Runs the member loop until `shutdown`, then finishes the batches in flight, commits and leaves.
///
/// Partitions run independently: each has at most one batch at its worker, and the records
/// polled meanwhile wait in its queue, so a slow partition holds back only itself while polling
/// and committing go on. A partition's offset is committed once its worker has applied (or
/// dead-lettered) the records below it.
pub async fn run(
    mut consumer: Box<dyn Consumer>,
    options: EngineOptions,
    shutdown: CancellationToken,
) {
    let topic = options.processor.topology().events().to_owned();
    let mut lanes = Lanes::default();
    let mut next_arbiter = 0usize;
    let mut last_relay = Instant::now() - RELAY_EVERY;
    let mut running: FuturesUnordered<LocalBoxFuture<'static, Finished>> = FuturesUnordered::new();
    let batch = options.batch.max(1);
    loop {
        if last_relay.elapsed() >= RELAY_EVERY {
            last_relay = Instant::now();
            if let Err(e) = options.processor.relay(RELAY_GRACE_MS, 256).await {
                tracing::warn!(error = %e, "engine: outbox relay failed; will retry");
            }
        }
        // Hand every idle partition its queued records.
        let now = Instant::now();
        lanes.resting.retain(|_, until| *until > now);
        for (partition, records) in lanes.queued.iter_mut() {
            if records.is_empty()
                || lanes.busy.contains(partition)
                || lanes.resting.contains_key(partition)
            {
                continue;
            }
            let Some(worker) = lanes.workers.get(partition).cloned() else {
                continue;
            };
            let take: Vec<Record> = records.drain(..records.len().min(batch)).collect();
            let p = *partition;
            lanes.busy.insert(p);
            running.push(Box::pin(async move {
                let kept = take.clone();
                (p, kept, worker.send(Process(take)).await)
            }));
        }
        let buffered: usize = lanes.queued.values().map(VecDeque::len).sum();
        let wait = if running.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(20)
        };
        let mut finished = Vec::new();
        tokio::select! {
            () = shutdown.cancelled() => break,
            polled = consumer.poll(batch * 4, wait), if buffered < MAX_BUFFERED => {
                match polled {
                    Ok(polled) => {
                        for (t, partition) in &polled.revoked {
                            if *t == topic {
                                lanes.queued.remove(partition);
                                lanes.resting.remove(partition);
                                if let Some(worker) = lanes.workers.remove(partition) {
                                    // Stops after the work in progress and releases the lease;
                                    // nothing of this partition is committed any more.
                                    worker.do_send(Retire);
                                }
                            }
                        }
                        for (t, partition) in &polled.assigned {
                            if *t == topic && !lanes.workers.contains_key(partition) {
                                let worker = start_worker(&options, *partition, next_arbiter);
                                next_arbiter += 1;
                                lanes.workers.insert(*partition, worker);
                            }
                        }
                        if !consumer.assignment().is_empty() {
                            options.ready.store(true, Ordering::Release);
                        }
                        for record in polled.records {
                            lanes.queued.entry(record.position.partition).or_default().push_back(record);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "engine: poll failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            Some(done) = running.next(), if !running.is_empty() => finished.push(done),
            // Nothing to poll for (the queues are full) and nothing running: a partition is
            // resting after a failure.
            () = tokio::time::sleep(wait), if running.is_empty() && buffered >= MAX_BUFFERED => {}
        }
        // Collect whatever else finished meanwhile, then commit.
        while let Some(Some(done)) = running.next().now_or_never() {
            finished.push(done);
        }
        let commits = lanes.settle(finished, &topic);
        commit(consumer.as_mut(), &commits).await;
    }
    // Shutting down: let the batches in flight finish, commit what they applied, and leave.
    let mut finished = Vec::new();
    while let Some(done) = running.next().await {
        finished.push(done);
    }
    let commits = lanes.settle(finished, &topic);
    commit(consumer.as_mut(), &commits).await;
    for (_, worker) in lanes.workers.drain() {
        worker.do_send(Retire);
    }
    if let Err(e) = consumer.leave().await {
        tracing::warn!(error = %e, "engine: leaving the group failed");
    }
}

/// The partitions of this member and their records.
#[derive(Default)]
struct Lanes {
    /// The worker of each assigned partition.
    workers: HashMap<u32, Addr<PartitionWorker>>,
    /// Records polled and not yet handed to their worker, per partition, in offset order.
    queued: HashMap<u32, VecDeque<Record>>,
    /// Partitions not to be handed records before the given time (after a failed batch).
    resting: HashMap<u32, Instant>,
    /// Partitions whose worker has a batch.
    busy: HashSet<u32>,
}

/// Starts the worker of `partition` on the `n`th arbiter (round robin).
fn start_worker(options: &EngineOptions, partition: u32, n: usize) -> Addr<PartitionWorker> {
    let (processor, admin, store, bus, attempts) = (
        options.processor.clone(),
        options.admin.clone(),
        options.store.clone(),
        options.bus.clone(),
        options.max_attempts,
    );
    let lease = LeaseSpec {
        owner: options.node.clone(),
        ttl: options.lease_ttl,
    };
    let make = move |_: &mut Context<PartitionWorker>| {
        PartitionWorker::new(partition, processor, admin, store, bus, attempts, lease)
    };
    match options.arbiters.get(n % options.arbiters.len().max(1)) {
        Some(arbiter) => PartitionWorker::start_in_arbiter(arbiter, make),
        None => PartitionWorker::create(make),
    }
}

impl Lanes {
    /// Takes finished batches: answers the offsets to commit; a failed batch's records go back to
    /// the front of their partition's queue (if the partition is still this member's), which rests
    /// a while before it is tried again.
    fn settle(&mut self, finished: Vec<Finished>, topic: &str) -> Vec<Position> {
        let Lanes {
            workers,
            queued,
            resting,
            busy,
        } = self;
        let mut commits = Vec::new();
        for (partition, records, result) in finished {
            busy.remove(&partition);
            if !workers.contains_key(&partition) {
                continue; // revoked meanwhile
            }
            let error = match result {
                Ok(Ok(Some(last))) => {
                    commits.push(Position {
                        topic: topic.to_owned(),
                        partition,
                        offset: last + 1,
                    });
                    continue;
                }
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => e,
                Err(e) => format!("worker unavailable: {e}"),
            };
            tracing::warn!(partition, error = %error, records = records.len(), "engine: batch not applied; retrying it");
            let queue = queued.entry(partition).or_default();
            for record in records.into_iter().rev() {
                queue.push_front(record);
            }
            resting.insert(partition, Instant::now() + RETRY_AFTER);
        }
        commits
    }
}

/// Commits offsets (a failure only means records may be redelivered; they are deduplicated).
async fn commit(consumer: &mut dyn Consumer, offsets: &[Position]) {
    if offsets.is_empty() {
        return;
    }
    if let Err(e) = consumer.commit(offsets).await {
        tracing::warn!(error = %e, "engine: offset commit failed; records may be redelivered (they are deduplicated)");
    }
}
