//! The engine service: a member of the engine consumer group on the events topic. It starts a
//! [`PartitionWorker`] per assigned partition, hands each its records, and commits a partition's
//! offset only after its worker has applied (or dead-lettered) the records.

use super::worker::{LeaseSpec, PartitionWorker, Process, Retire};
use actix::prelude::*;
use futures_util::future::join_all;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
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

/// Runs the member loop until `shutdown`, then finishes the batch in flight, commits and leaves.
pub async fn run(
    mut consumer: Box<dyn Consumer>,
    options: EngineOptions,
    shutdown: CancellationToken,
) {
    let mut workers: HashMap<u32, Addr<PartitionWorker>> = HashMap::new();
    let topic = options.processor.topics().events.clone();
    let mut next_arbiter = 0usize;
    let mut last_relay = std::time::Instant::now() - RELAY_EVERY;
    let mut retry: HashMap<u32, Vec<Record>> = HashMap::new();
    loop {
        if last_relay.elapsed() >= RELAY_EVERY {
            last_relay = std::time::Instant::now();
            if let Err(e) = options.processor.relay(RELAY_GRACE_MS, 256).await {
                tracing::warn!(error = %e, "engine: outbox relay failed; will retry");
            }
        }
        let polled = tokio::select! {
            p = consumer.poll(options.batch, Duration::from_millis(100)) => p,
            () = shutdown.cancelled() => break,
        };
        let polled = match polled {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "engine: poll failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        for (t, partition) in &polled.revoked {
            if *t == topic {
                retry.remove(partition);
                if let Some(worker) = workers.remove(partition) {
                    // Stops after the work in progress and releases the lease; nothing of this
                    // partition is committed any more.
                    worker.do_send(Retire);
                }
            }
        }
        for (t, partition) in &polled.assigned {
            if *t != topic || workers.contains_key(partition) {
                continue;
            }
            let (processor, admin, store, bus, attempts, p) = (
                options.processor.clone(),
                options.admin.clone(),
                options.store.clone(),
                options.bus.clone(),
                options.max_attempts,
                *partition,
            );
            let lease = LeaseSpec {
                owner: options.node.clone(),
                ttl: options.lease_ttl,
            };
            let make = move |_: &mut Context<PartitionWorker>| {
                PartitionWorker::new(p, processor, admin, store, bus, attempts, lease)
            };
            let worker = match options
                .arbiters
                .get(next_arbiter % options.arbiters.len().max(1))
            {
                Some(arbiter) => PartitionWorker::start_in_arbiter(arbiter, make),
                None => PartitionWorker::create(make),
            };
            next_arbiter += 1;
            workers.insert(*partition, worker);
        }
        if !consumer.assignment().is_empty() {
            options.ready.store(true, Ordering::Release);
        }
        // A batch that failed (e.g. the lease was still held by the previous owner) goes first.
        let mut batches: HashMap<u32, Vec<Record>> = std::mem::take(&mut retry);
        for record in polled.records {
            batches
                .entry(record.position.partition)
                .or_default()
                .push(record);
        }
        let sends = batches.into_iter().filter_map(|(partition, records)| {
            let worker = workers.get(&partition)?.clone();
            Some(async move {
                let kept = records.clone();
                (partition, kept, worker.send(Process(records)).await)
            })
        });
        let mut commits = Vec::new();
        for (partition, records, result) in join_all(sends).await {
            match result {
                Ok(Ok(Some(last))) => commits.push(Position {
                    topic: topic.clone(),
                    partition,
                    offset: last + 1,
                }),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(partition, error = %e, records = records.len(), "engine: batch not applied; retrying it");
                    retry.insert(partition, records);
                }
                Err(e) => {
                    tracing::error!(partition, error = %e, "engine: worker unavailable; retrying its batch");
                    retry.insert(partition, records);
                }
            }
        }
        if !commits.is_empty() {
            if let Err(e) = consumer.commit(&commits).await {
                tracing::warn!(error = %e, "engine: offset commit failed; records may be redelivered (they are deduplicated)");
            }
        }
    }
    for (_, worker) in workers.drain() {
        worker.do_send(Retire);
    }
    if let Err(e) = consumer.leave().await {
        tracing::warn!(error = %e, "engine: leaving the group failed");
    }
}
