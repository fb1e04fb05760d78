//! One partition of the events topic as its owner runs it: under the partition's lease, records
//! are applied in offset order (consecutive events as one batch), due timers fired between
//! batches, a failing record retried and then dead-lettered so the partition keeps flowing.
//!
//! A [`Partition`] holds no I/O of its own beyond the ports it is given, and no mailbox: the engine
//! process gives each one to an actor, which serialises calls to it.

use super::admin::Admin;
use super::{Done, Incoming, Processor};
use crate::bus::{self, Bus, Record};
use crate::metrics::{metrics, PartitionLabels, StepOutcome};
use crate::store::{self, Lease, Leases};
use crate::topology::Topology;
use crate::trace::TraceParent;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use threds_patterns::model::Event;

/// How often a partition's pending timers are counted (one store read).
const TIMERS_COUNTED_EVERY: Duration = Duration::from_secs(5);

/// Why a batch or a timer round could not be completed; the records stay unapplied (and are
/// offered again), and the partition re-reads its state before the next batch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another engine holds the partition's lease.
    #[error("lease {resource} is held by another engine")]
    LeaseHeld {
        /// The lease resource.
        resource: String,
    },
    /// A newer lease of the partition was granted: this engine no longer owns it.
    #[error("fenced off partition {partition}")]
    Fenced {
        /// The partition.
        partition: u32,
        /// The store's refusal.
        #[source]
        source: store::Error,
    },
    /// The thred store failed (reading the applied offset, taking the lease).
    #[error("thred store unavailable for partition {partition}")]
    Store {
        /// The partition.
        partition: u32,
        /// The store's error.
        #[source]
        source: store::Error,
    },
    /// A record that failed every attempt could not be dead-lettered either.
    #[error("could not dead-letter {topic}/{partition}/{offset}")]
    DeadLetter {
        /// The record's topic.
        topic: String,
        /// Its partition.
        partition: u32,
        /// Its offset.
        offset: u64,
        /// The bus's error.
        #[source]
        source: bus::Error,
    },
    /// Applying panicked outside a step (a step's own panic is a failed attempt of its record).
    #[error("partition {partition} panicked: {message}")]
    Panicked {
        /// The partition.
        partition: u32,
        /// What the panic said.
        message: String,
    },
    /// Firing timers failed.
    #[error("firing timers of partition {partition} failed")]
    Timers {
        /// The partition.
        partition: u32,
        /// Why.
        #[source]
        source: super::Error,
    },
}

impl Error {
    /// The stable code of this failure (see `docs/errors.md`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::LeaseHeld { .. } => crate::codes::LEASE_HELD,
            Error::Fenced { .. } => crate::codes::FENCED,
            Error::Store { .. } | Error::Timers { .. } => crate::codes::BACKEND_UNAVAILABLE,
            Error::DeadLetter { .. } => crate::codes::DEAD_LETTER_FAILED,
            Error::Panicked { .. } => crate::codes::RESTARTED,
        }
    }

    /// Whether the partition's worker must start afresh (its state may be stale or its lease
    /// lost), rather than only try the batch again.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Error::LeaseHeld { .. } | Error::Timers { .. })
    }
}

/// How long a lease lasts and who holds it.
#[derive(Debug, Clone)]
pub struct LeaseSpec {
    /// The lease owner (this engine's node name).
    pub owner: String,
    /// How long a grant lasts unless renewed.
    pub ttl: Duration,
}

/// What a partition needs.
#[derive(Clone)]
pub struct Shared {
    /// Runs the steps.
    pub processor: Arc<Processor>,
    /// Answers control events.
    pub admin: Arc<Admin>,
    /// Partition leases (of the same adapter as the processor's thred state).
    pub leases: Arc<dyn Leases>,
    /// Dead letters.
    pub bus: Arc<dyn Bus>,
    /// Attempts at a failing record before it is dead-lettered.
    pub max_attempts: u32,
    /// The partition lease.
    pub lease: LeaseSpec,
}

/// One owned partition (see the module docs).
pub struct Partition {
    partition: u32,
    shared: Shared,
    lease: Option<Lease>,
    /// The applied watermark, once read from the store.
    applied: Option<Option<u64>>,
    /// When the pending timers were last counted (for the metric).
    timers_counted: Option<Instant>,
}

impl Partition {
    /// Partition `partition` of an engine sharing `shared`.
    pub fn new(partition: u32, shared: Shared) -> Partition {
        Partition {
            partition,
            shared,
            lease: None,
            applied: None,
            timers_counted: None,
        }
    }

    /// The partition's index.
    pub fn index(&self) -> u32 {
        self.partition
    }

    fn topology(&self) -> &Topology {
        self.shared.processor.topology()
    }

    /// Forgets what it read and the lease it held: the next call starts afresh (after a failure
    /// or a restart).
    pub fn reset(&mut self) {
        self.lease = None;
        self.applied = None;
    }

    /// Applies `records` (all of this partition, in offset order); answers the last offset
    /// handled — applied, skipped as a duplicate, or dead-lettered — which may be committed.
    /// On error nothing is committed and the partition starts afresh next time.
    pub async fn apply(&mut self, records: &[Record]) -> Result<Option<u64>, Error> {
        let result = self.apply_all(records).await;
        if result.is_err() {
            self.reset();
        }
        result
    }

    async fn apply_all(&mut self, records: &[Record]) -> Result<Option<u64>, Error> {
        let lease = self.ensure_lease(true).await?;
        let mut applied = match self.applied {
            Some(applied) => applied,
            None => self.stored_watermark().await?,
        };
        let work = Work {
            shared: &self.shared,
            lease: &lease,
            partition: self.partition,
        };
        // Consecutive events go as one batch; a control event or a record that is not an event
        // goes on its own, in its place.
        let mut run: Vec<(&Record, Event)> = Vec::new();
        for record in records {
            match self.shared.processor.sort(record, applied) {
                Incoming::Event(event) => run.push((record, event)),
                Incoming::Duplicate => {}
                Incoming::Control(_) | Incoming::Invalid(_) | Incoming::Oversized { .. } => {
                    applied = work.batch(std::mem::take(&mut run), applied).await?;
                    work.record(record, applied).await?;
                    applied = raised(applied, record);
                }
            }
        }
        applied = work.batch(run, applied).await?;
        self.applied = Some(applied);
        Ok(records.last().map(|r| r.position.offset))
    }

    /// Fires due timers under the partition's lease (taken or renewed here between batches);
    /// without the lease (another engine has it) nothing fires.
    pub async fn fire_timers(&mut self) -> Result<(), Error> {
        let lease = match self.ensure_lease(false).await {
            Ok(lease) => lease,
            Err(Error::LeaseHeld { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let partition = self.partition;
        match AssertUnwindSafe(self.shared.processor.timers(partition, Some(&lease), 64))
            .catch_unwind()
            .await
        {
            Ok(Ok(_)) => {
                self.count_timers().await;
                Ok(())
            }
            Ok(Err(super::Error::Store(source @ store::Error::Fenced { .. }))) => {
                self.reset();
                Err(fenced(partition, source))
            }
            Ok(Err(source)) => Err(Error::Timers { partition, source }),
            Err(panic) => {
                tracing::error!(
                    partition,
                    panic = panic_text(panic.as_ref()),
                    "firing timers panicked; will retry"
                );
                Ok(())
            }
        }
    }

    /// Sets the pending-timers gauge of the partition, at most every [`TIMERS_COUNTED_EVERY`].
    async fn count_timers(&mut self) {
        if self
            .timers_counted
            .is_some_and(|at| at.elapsed() < TIMERS_COUNTED_EVERY)
        {
            return;
        }
        self.timers_counted = Some(Instant::now());
        let threds = self.shared.processor.threds();
        match threds.pending_timers(self.partition).await {
            Ok(n) => {
                metrics()
                    .timers_pending
                    .get_or_create(&PartitionLabels {
                        topic: self.topology().events().to_owned(),
                        partition: self.partition,
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            Err(e) => {
                tracing::debug!(partition = self.partition, error = %e, "could not count pending timers")
            }
        }
    }

    /// Gives the lease up (the partition moved away or the engine stops), so the next owner
    /// need not wait for it to lapse.
    pub async fn release(&mut self) {
        metrics().timers_pending.remove(&PartitionLabels {
            topic: self.topology().events().to_owned(),
            partition: self.partition,
        });
        self.timers_counted = None;
        if let Some(lease) = self.lease.take() {
            if let Err(e) = self.shared.leases.release(&lease).await {
                tracing::debug!(resource = %lease.resource, error = %e, "lease release failed; it will lapse");
            }
        }
    }

    async fn stored_watermark(&self) -> Result<Option<u64>, Error> {
        let events = self.topology().events();
        self.shared
            .processor
            .threds()
            .applied(events, self.partition)
            .await
            .map_err(|source| Error::Store {
                partition: self.partition,
                source,
            })
    }

    /// A lease valid for at least two thirds of its ttl: the held one, renewed, or a new grant —
    /// when `patient`, waiting (up to twice the ttl) for a previous owner's lease to lapse.
    async fn ensure_lease(&mut self, patient: bool) -> Result<Lease, Error> {
        let spec = &self.shared.lease;
        let ttl_ms = i64::try_from(spec.ttl.as_millis()).unwrap_or(i64::MAX);
        if let Some(lease) = &self.lease {
            if lease.expires_at - self.shared.processor.now() > ttl_ms * 2 / 3 {
                return Ok(lease.clone());
            }
        }
        let resource = self.topology().partition_lease(self.partition);
        let give_up = Instant::now() + spec.ttl * 2;
        loop {
            match self
                .shared
                .leases
                .acquire(&resource, &spec.owner, spec.ttl)
                .await
            {
                Ok(Some(lease)) => {
                    metrics().lease_grants.inc();
                    self.lease = Some(lease.clone());
                    return Ok(lease);
                }
                Ok(None) if patient && Instant::now() < give_up => {}
                Ok(None) => {
                    self.lease = None;
                    return Err(Error::LeaseHeld { resource });
                }
                Err(source) => {
                    self.lease = None;
                    return Err(Error::Store {
                        partition: self.partition,
                        source,
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The applied watermark once `record` is applied.
fn raised(applied: Option<u64>, record: &Record) -> Option<u64> {
    let offset = record.position.offset;
    Some(applied.map_or(offset, |a| a.max(offset)))
}

/// What applying one partition's records needs.
struct Work<'a> {
    shared: &'a Shared,
    lease: &'a Lease,
    partition: u32,
}

impl Work<'_> {
    /// Applies consecutive events as one batch; if the batch fails (a poison event among them,
    /// the store failing, a panic), applies them record by record, each with its retries and
    /// dead letter. Answers the raised watermark.
    async fn batch(
        &self,
        run: Vec<(&Record, Event)>,
        applied: Option<u64>,
    ) -> Result<Option<u64>, Error> {
        let Some((last, _)) = run.last() else {
            return Ok(applied);
        };
        let last = raised(applied, last);
        let records: Vec<&Record> = run.iter().map(|(r, _)| *r).collect();
        let events = run
            .into_iter()
            .map(|(r, e)| (r.position.clone(), e, TraceParent::of_headers(&r.headers)))
            .collect();
        let processor = &self.shared.processor;
        let error = match AssertUnwindSafe(processor.events(events, Some(self.lease)))
            .catch_unwind()
            .await
        {
            Ok(Ok(_)) => return Ok(last),
            Ok(Err(super::Error::Store(source @ store::Error::Fenced { .. }))) => {
                return Err(fenced(self.partition, source))
            }
            Ok(Err(e)) => e.to_string(),
            Err(panic) => format!("panicked: {}", panic_text(panic.as_ref())),
        };
        tracing::warn!(partition = self.partition, records = records.len(), error = %error, "batch failed; applying its records one by one");
        // The failed batch may still have committed (a reply lost after the store applied it):
        // the stored watermark says so.
        let mut applied = applied;
        if let Some(first) = records.first() {
            let p = &first.position;
            let stored = processor
                .threds()
                .applied(&p.topic, p.partition)
                .await
                .map_err(|source| Error::Store {
                    partition: self.partition,
                    source,
                })?;
            applied = applied.max(stored);
        }
        for record in records {
            self.record(record, applied).await?;
            applied = raised(applied, record);
        }
        Ok(applied)
    }

    /// Applies one record on its own, retrying up to the attempts allowed (a panic counts as a
    /// failed attempt), then dead-letters it with the error so the partition keeps flowing.
    async fn record(&self, record: &Record, applied: Option<u64>) -> Result<(), Error> {
        let processor = &self.shared.processor;
        let max_attempts = self.shared.max_attempts.max(1);
        let mut error = String::new();
        let mut applied = applied;
        let mut attempts = 0;
        for attempt in 1..=max_attempts {
            attempts = attempt;
            if attempt > 1 {
                // A failed attempt may still have committed (e.g. a reply lost after the store
                // applied the write): re-read the watermark so the retry recognises its commit.
                let p = &record.position;
                if let Ok(stored) = processor.threds().applied(&p.topic, p.partition).await {
                    applied = applied.max(stored);
                }
            }
            match AssertUnwindSafe(processor.record(record, applied, Some(self.lease)))
                .catch_unwind()
                .await
            {
                Ok(Ok(Done::Applied(_) | Done::Duplicate)) => return Ok(()),
                Ok(Ok(Done::Control(event))) => {
                    match self.shared.admin.handle(&event, &record.position).await {
                        Ok(()) => return Ok(()),
                        Err(e) => error = e.to_string(),
                    }
                }
                Ok(Ok(Done::Invalid(reason))) => {
                    error = reason;
                    break;
                }
                Ok(Err(super::Error::Store(source @ store::Error::Fenced { .. }))) => {
                    return Err(fenced(self.partition, source));
                }
                Ok(Err(e)) => error = e.to_string(),
                Err(panic) => error = format!("panicked: {}", panic_text(panic.as_ref())),
            }
            tracing::warn!(position = ?record.position, trace_id = TraceParent::trace_id_of(&record.headers), attempt, error = %error, "record failed");
            tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
        }
        self.dead_letter(record, &error, attempts).await
    }

    /// Appends `record` to its topic's dead letters with why and where it failed.
    async fn dead_letter(&self, record: &Record, error: &str, attempts: u32) -> Result<(), Error> {
        let p = &record.position;
        let topology = self.shared.processor.topology();
        bus::dead_letter(self.shared.bus.as_ref(), topology, record, error, attempts)
            .await
            .map(|()| metrics().step("", StepOutcome::refused))
            .map_err(|source| Error::DeadLetter {
                topic: p.topic.clone(),
                partition: p.partition,
                offset: p.offset,
                source,
            })
    }
}

/// The partition's write was refused under a superseded lease (counted).
fn fenced(partition: u32, source: store::Error) -> Error {
    metrics().fencing_refusals.inc();
    Error::Fenced { partition, source }
}

/// What a panic said.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests;
