//! One actor per assigned partition of the events topic: applies its records in order, fires its
//! timers between batches, retries failing records and dead-letters them after bounded attempts.

use actix::prelude::*;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::{Bus, Record};
use threds_runtime::engine::admin::Admin;
use threds_runtime::engine::{Done, Processor};
use threds_runtime::store::{Lease, ThredStore};

/// The dead-letter topic of `topic`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}-dlt")
}

/// Applies one partition's records and timers.
pub struct PartitionWorker {
    partition: u32,
    processor: Arc<Processor>,
    admin: Arc<Admin>,
    store: Arc<dyn ThredStore>,
    bus: Arc<dyn Bus>,
    lease: Option<Lease>,
    applied: Option<u64>,
    loaded: bool,
    max_attempts: u32,
}

impl PartitionWorker {
    /// A worker for `partition`.
    pub fn new(
        partition: u32,
        processor: Arc<Processor>,
        admin: Arc<Admin>,
        store: Arc<dyn ThredStore>,
        bus: Arc<dyn Bus>,
        max_attempts: u32,
    ) -> Self {
        PartitionWorker {
            partition,
            processor,
            admin,
            store,
            bus,
            lease: None,
            applied: None,
            loaded: false,
            max_attempts,
        }
    }
}

impl Actor for PartitionWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_millis(25), |_, ctx| ctx.notify(Tick));
    }
}

/// Apply these records (all of this worker's partition, in offset order); answers the last offset
/// handled (applied, skipped as duplicate, or dead-lettered), which the caller commits.
#[derive(Message)]
#[rtype(result = "Result<Option<u64>, String>")]
pub struct Process(pub Vec<Record>);

/// Fire due timers.
#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

impl Handler<Process> for PartitionWorker {
    type Result = AtomicResponse<Self, Result<Option<u64>, String>>;

    fn handle(&mut self, msg: Process, _: &mut Context<Self>) -> Self::Result {
        let processor = self.processor.clone();
        let admin = self.admin.clone();
        let store = self.store.clone();
        let bus = self.bus.clone();
        let lease = self.lease.clone();
        let (partition, max_attempts, loaded) = (self.partition, self.max_attempts, self.loaded);
        let mut applied = self.applied;
        let work = async move {
            let topic = processor.topics().events.clone();
            if !loaded {
                applied = store
                    .applied(&topic, partition)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let mut last = None;
            for record in &msg.0 {
                handle_record(
                    &processor,
                    &admin,
                    &bus,
                    record,
                    applied,
                    lease.as_ref(),
                    max_attempts,
                )
                .await?;
                applied =
                    Some(applied.map_or(record.position.offset, |a| a.max(record.position.offset)));
                last = Some(record.position.offset);
            }
            Ok::<_, String>((last, applied))
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |result, act, _| match result {
                Ok((last, applied)) => {
                    act.applied = applied;
                    act.loaded = true;
                    Ok(last)
                }
                Err(e) => Err(e),
            },
        )))
    }
}

impl Handler<Tick> for PartitionWorker {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        let processor = self.processor.clone();
        let lease = self.lease.clone();
        let partition = self.partition;
        let work = async move {
            match AssertUnwindSafe(processor.timers(partition, lease.as_ref(), 64))
                .catch_unwind()
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(partition, error = %e, "firing timers failed; will retry")
                }
                Err(_) => tracing::error!(partition, "firing timers panicked; will retry"),
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self)))
    }
}

/// Applies one record, retrying up to `max_attempts` (a panic counts as a failed attempt), then
/// dead-letters it with the error so the partition keeps flowing.
async fn handle_record(
    processor: &Processor,
    admin: &Admin,
    bus: &Arc<dyn Bus>,
    record: &Record,
    applied: Option<u64>,
    lease: Option<&Lease>,
    max_attempts: u32,
) -> Result<(), String> {
    let mut error = String::new();
    for attempt in 1..=max_attempts.max(1) {
        match AssertUnwindSafe(processor.record(record, applied, lease))
            .catch_unwind()
            .await
        {
            Ok(Ok(Done::Applied(_) | Done::Duplicate)) => return Ok(()),
            Ok(Ok(Done::Control(event))) => match admin.handle(&event).await {
                Ok(()) => return Ok(()),
                Err(e) => error = e.to_string(),
            },
            Ok(Ok(Done::Invalid(reason))) => {
                error = reason;
                break;
            }
            Ok(Err(threds_runtime::engine::Error::Store(
                e @ threds_runtime::store::Error::Fenced { .. },
            ))) => {
                return Err(e.to_string());
            }
            Ok(Err(e)) => error = e.to_string(),
            Err(panic) => error = format!("panicked: {}", panic_text(&panic)),
        }
        tracing::warn!(position = ?record.position, attempt, error = %error, "record failed");
        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
    }
    dead_letter(bus, record, &error).await
}

async fn dead_letter(bus: &Arc<dyn Bus>, record: &Record, error: &str) -> Result<(), String> {
    let p = &record.position;
    let topic = dead_letter_topic(&p.topic);
    let mut headers = record.headers.clone();
    headers.push(("threds-error".into(), error.to_string()));
    headers.push((
        "threds-origin".into(),
        format!("{}/{}/{}", p.topic, p.partition, p.offset),
    ));
    tracing::error!(position = ?p, error, "dead-lettered to {topic}");
    bus.append(
        &topic,
        Some(0),
        record.key.as_deref(),
        record.payload.clone(),
        headers,
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("could not dead-letter {p:?}: {e}"))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
