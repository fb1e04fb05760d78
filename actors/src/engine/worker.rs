//! One actor per assigned partition of the events topic: the mailbox around a
//! [`Partition`] — batches are applied one at a time, in the order sent, and due timers fire
//! between them.

use actix::prelude::*;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use threds_runtime::bus::Record;
use threds_runtime::engine::partition::{self, panic_text, Partition};

/// How often due timers are looked for.
const TIMERS_EVERY: Duration = Duration::from_millis(25);

/// Applies one partition's records and timers.
pub struct PartitionWorker {
    /// The partition; lent to the work in progress.
    partition: Option<Partition>,
    index: u32,
    /// Set when it stops because it failed: the lease is kept for its successor (the same
    /// engine) rather than given up.
    failed: bool,
}

impl PartitionWorker {
    /// A worker for `partition`.
    pub fn new(partition: Partition) -> Self {
        PartitionWorker {
            index: partition.index(),
            partition: Some(partition),
            failed: false,
        }
    }
}

impl Actor for PartitionWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(TIMERS_EVERY, |_, ctx| ctx.notify(Tick));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if self.failed {
            return;
        }
        // Handing the partition over: let the next owner start without waiting for the lapse.
        if let Some(mut partition) = self.partition.take() {
            actix::spawn(async move { partition.release().await });
        }
    }
}

/// Apply these records (all of this worker's partition, in offset order); answers the last offset
/// handled (applied, skipped as duplicate, or dead-lettered), which the caller commits. A worker
/// whose batch failed fatally stops after answering, for the engine to start a new one.
#[derive(Message)]
#[rtype(result = "Result<Option<u64>, partition::Error>")]
pub struct Process(pub Vec<Record>);

/// Fire due timers.
#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

/// Stop after the work in progress and give the partition lease up (the partition moved away,
/// or the engine is shutting down).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

impl Handler<Retire> for PartitionWorker {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Process> for PartitionWorker {
    type Result = AtomicResponse<Self, Result<Option<u64>, partition::Error>>;

    fn handle(&mut self, msg: Process, _: &mut Context<Self>) -> Self::Result {
        let index = self.index;
        let Some(mut partition) = self.partition.take() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(partition::Error::Panicked {
                partition: index,
                message: "the worker lost its partition in an earlier panic".into(),
            }))));
        };
        let work = async move {
            let result = AssertUnwindSafe(partition.apply(&msg.0))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    Err(partition::Error::Panicked {
                        partition: index,
                        message: panic_text(panic.as_ref()),
                    })
                });
            (partition, result)
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |(partition, result), act, ctx| {
                act.partition = Some(partition);
                if result.as_ref().is_err_and(partition::Error::is_fatal) {
                    act.failed = true;
                    ctx.stop();
                }
                result
            },
        )))
    }
}

impl Handler<Tick> for PartitionWorker {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        let Some(mut partition) = self.partition.take() else {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        let work = async move {
            let outcome = AssertUnwindSafe(partition.fire_timers())
                .catch_unwind()
                .await;
            (partition, outcome)
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |(partition, outcome), act, _| {
                act.partition = Some(partition);
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(code = e.code(), partition = act.index, error = %threds_runtime::codes::chain(&e), "firing timers failed; will retry")
                    }
                    Err(panic) => {
                        tracing::error!(partition = act.index, panic = panic_text(panic.as_ref()), "firing timers panicked; will retry")
                    }
                }
            },
        )))
    }
}
