//! The engine service: a member of the engine consumer group on the events topic. The consumer
//! driver polls and commits; the [`Lanes`] hand each assigned partition's records to its
//! [`PartitionWorker`] actor (spread over arbiters) and restart a worker that failed.

use super::worker::{PartitionWorker, Process, Retire};
use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::driver::{self, Fatal};
use threds_runtime::bus::{Consumer, Record};
use threds_runtime::engine::lanes::{Lanes, WorkerError, Workers};
use threds_runtime::engine::partition::{Partition, Shared};
use threds_runtime::telemetry::Metered;
use tokio_util::sync::CancellationToken;

/// How often the engine commits its consumer offsets at most while batches are in hand (once none
/// is, what was applied is committed at once): exactly once rests on the applied offsets each
/// batch writes with its state, not on these (a record handled and not committed yet is skipped
/// when redelivered), so under load one commit request per interval is enough.
const COMMIT_EVERY: Duration = Duration::from_millis(20);

/// What the engine service needs.
pub struct EngineOptions {
    /// What every partition needs (processor, admin, leases, bus, attempts, lease).
    pub shared: Shared,
    /// Largest batch per partition.
    pub batch: usize,
    /// Arbiters workers are spread over (parallelism).
    pub arbiters: Vec<ArbiterHandle>,
    /// Set once partitions are assigned.
    pub ready: Arc<AtomicBool>,
    /// Counts partition workers started again after a failure.
    pub restarts: Arc<AtomicU64>,
}

/// Partition workers as actors, round robin over arbiters.
pub struct ActorWorkers {
    shared: Shared,
    arbiters: Vec<ArbiterHandle>,
    next: usize,
}

impl Workers for ActorWorkers {
    type Worker = (u32, Addr<PartitionWorker>);

    fn start(&mut self, partition: u32) -> Self::Worker {
        let shared = self.shared.clone();
        let make = move |_: &mut Context<PartitionWorker>| {
            PartitionWorker::new(Partition::new(partition, shared))
        };
        let n = self.next;
        self.next += 1;
        let addr = match self.arbiters.get(n % self.arbiters.len().max(1)) {
            Some(arbiter) => PartitionWorker::start_in_arbiter(arbiter, make),
            None => PartitionWorker::create(make),
        };
        (partition, addr)
    }

    fn apply(
        &self,
        worker: &Self::Worker,
        records: Vec<Record>,
    ) -> LocalBoxFuture<'static, Result<Option<u64>, WorkerError>> {
        let (partition, addr) = worker;
        let partition = *partition;
        let sent = addr.send(Process(records));
        async move {
            match sent.await {
                Ok(result) => result.map_err(WorkerError::from),
                Err(_) => Err(WorkerError::Gone { partition }),
            }
        }
        .boxed_local()
    }

    fn retire(&mut self, worker: Self::Worker) {
        worker.1.do_send(Retire);
    }
}

/// Runs the member loop until `shutdown`, then finishes the batches in flight, commits and leaves.
pub async fn run(
    consumer: Box<dyn Consumer>,
    options: EngineOptions,
    shutdown: CancellationToken,
) -> Result<(), Fatal> {
    let batch = options.batch.max(1);
    let processor = options.shared.processor.clone();
    let workers = ActorWorkers {
        shared: options.shared,
        arbiters: options.arbiters,
        next: 0,
    };
    let mut lanes = Lanes::new(workers, processor, batch, options.ready, options.restarts);
    let driver_options = driver::Options::new("engine")
        .max_records(batch * 4)
        .commit_every(COMMIT_EVERY);
    driver::run(consumer, &mut lanes, &driver_options, &Metered, &shutdown).await
}
