//! One actor per assigned partition of the events topic: applies its records in order, fires its
//! timers between batches, retries failing records and dead-letters them after bounded attempts.

use actix::prelude::*;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::model::Event;
use threds_runtime::bus::{Bus, Record};
use threds_runtime::engine::admin::Admin;
use threds_runtime::engine::{Done, Intake, Processor};
use threds_runtime::store::{Lease, ThredStore};
use threds_runtime::topology::{self, Topology};
use threds_runtime::trace::TraceParent;

/// Applies one partition's records and timers.
pub struct PartitionWorker {
    partition: u32,
    processor: Arc<Processor>,
    admin: Arc<Admin>,
    store: Arc<dyn ThredStore>,
    bus: Arc<dyn Bus>,
    lease: Option<Lease>,
    owner: String,
    lease_ttl: Duration,
    applied: Option<u64>,
    loaded: bool,
    max_attempts: u32,
}

/// Where a worker's partition lease comes from.
#[derive(Debug, Clone)]
pub struct LeaseSpec {
    /// The lease owner (this engine's node name).
    pub owner: String,
    /// How long a grant lasts unless renewed.
    pub ttl: Duration,
}

/// A lease on the partition valid for at least two thirds of its ttl: the held one, renewed, or a
/// new grant — when `patient`, waiting (up to twice the ttl) for a previous owner's lease to lapse.
async fn ensure_lease(
    store: &Arc<dyn ThredStore>,
    resource: &str,
    spec: &LeaseSpec,
    held: Option<Lease>,
    patient: bool,
) -> Result<Lease, String> {
    let ttl_ms = i64::try_from(spec.ttl.as_millis()).unwrap_or(i64::MAX);
    if let Some(lease) = held {
        if lease.expires_at - crate::node::now_ms() > ttl_ms * 2 / 3 {
            return Ok(lease);
        }
    }
    let give_up = std::time::Instant::now() + spec.ttl * 2;
    loop {
        match store.acquire(resource, &spec.owner, spec.ttl).await {
            Ok(Some(lease)) => return Ok(lease),
            Ok(None) if patient && std::time::Instant::now() < give_up => {}
            Ok(None) => return Err(format!("lease {resource} is held by another engine")),
            Err(e) => return Err(format!("acquiring lease {resource}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
        lease: LeaseSpec,
    ) -> Self {
        PartitionWorker {
            partition,
            processor,
            admin,
            store,
            bus,
            lease: None,
            owner: lease.owner,
            lease_ttl: lease.ttl,
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

    fn stopped(&mut self, _: &mut Context<Self>) {
        // Handing the partition over: let the next owner start without waiting for the lapse.
        if let Some(lease) = self.lease.take() {
            let store = self.store.clone();
            actix::spawn(async move {
                if let Err(e) = store.release(&lease).await {
                    tracing::debug!(resource = %lease.resource, error = %e, "lease release failed; it will lapse");
                }
            });
        }
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
    type Result = AtomicResponse<Self, Result<Option<u64>, String>>;

    fn handle(&mut self, msg: Process, _: &mut Context<Self>) -> Self::Result {
        let processor = self.processor.clone();
        let admin = self.admin.clone();
        let store = self.store.clone();
        let bus = self.bus.clone();
        let held = self.lease.clone();
        let spec = LeaseSpec {
            owner: self.owner.clone(),
            ttl: self.lease_ttl,
        };
        let (partition, max_attempts, loaded) = (self.partition, self.max_attempts, self.loaded);
        let mut applied = self.applied;
        let work = async move {
            let topology = processor.topology();
            let topic = topology.events();
            let lease = ensure_lease(
                &store,
                &topology.partition_lease(partition),
                &spec,
                held,
                true,
            )
            .await?;
            let lease = Some(lease);
            if !loaded {
                applied = store
                    .applied(topic, partition)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let work = Work {
                processor: &processor,
                admin: &admin,
                bus: &bus,
                lease: lease.as_ref(),
                max_attempts,
            };
            // Consecutive events go as one batch; a control event or a record that is not an
            // event goes on its own, in its place.
            let mut run: Vec<(&Record, Event)> = Vec::new();
            for record in &msg.0 {
                match processor.intake(record, applied) {
                    Intake::Event(event) => run.push((record, event)),
                    Intake::Duplicate => {}
                    Intake::Control(_) | Intake::Invalid(_) => {
                        applied = work.batch(std::mem::take(&mut run), applied).await?;
                        work.record(record, applied).await?;
                        applied = raised(applied, record);
                    }
                }
            }
            applied = work.batch(run, applied).await?;
            let last = msg.0.last().map(|r| r.position.offset);
            Ok::<_, String>((last, applied, lease))
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |result, act, _| match result {
                Ok((last, applied, lease)) => {
                    act.applied = applied;
                    act.loaded = true;
                    act.lease = lease;
                    Ok(last)
                }
                Err(e) => {
                    // Whatever went wrong, the next batch re-reads what was applied.
                    act.loaded = false;
                    act.lease = None;
                    Err(e)
                }
            },
        )))
    }
}

impl Handler<Tick> for PartitionWorker {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        let processor = self.processor.clone();
        let store = self.store.clone();
        let held = self.lease.clone();
        let spec = LeaseSpec {
            owner: self.owner.clone(),
            ttl: self.lease_ttl,
        };
        let partition = self.partition;
        let work = async move {
            // Timers are fired only under a valid lease (renewed here between batches).
            let resource = processor.topology().partition_lease(partition);
            let lease = match ensure_lease(&store, &resource, &spec, held, false).await {
                Ok(lease) => lease,
                Err(e) => {
                    tracing::debug!(partition, error = %e, "timers wait for the partition lease");
                    return None;
                }
            };
            match AssertUnwindSafe(processor.timers(partition, Some(&lease), 64))
                .catch_unwind()
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(partition, error = %e, "firing timers failed; will retry")
                }
                Err(_) => tracing::error!(partition, "firing timers panicked; will retry"),
            }
            Some(lease)
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(|lease, act, _| {
            act.lease = lease;
        })))
    }
}

/// The applied watermark once `record` is applied.
fn raised(applied: Option<u64>, record: &Record) -> Option<u64> {
    let offset = record.position.offset;
    Some(applied.map_or(offset, |a| a.max(offset)))
}

/// What applying one partition's records needs.
struct Work<'a> {
    processor: &'a Processor,
    admin: &'a Admin,
    bus: &'a Arc<dyn Bus>,
    lease: Option<&'a Lease>,
    max_attempts: u32,
}

impl Work<'_> {
    /// Applies consecutive events as one batch; if the batch fails (a poison event among them,
    /// the store failing, a panic), applies them record by record, each with its retries and
    /// dead letter. Answers the raised watermark.
    async fn batch(
        &self,
        run: Vec<(&Record, Event)>,
        applied: Option<u64>,
    ) -> Result<Option<u64>, String> {
        let Some((last, _)) = run.last() else {
            return Ok(applied);
        };
        let last = raised(applied, last);
        let records: Vec<&Record> = run.iter().map(|(r, _)| *r).collect();
        let events = run
            .into_iter()
            .map(|(r, e)| (r.position.clone(), e, TraceParent::of_headers(&r.headers)))
            .collect();
        let error = match AssertUnwindSafe(self.processor.events(events, self.lease))
            .catch_unwind()
            .await
        {
            Ok(Ok(_)) => return Ok(last),
            Ok(Err(threds_runtime::engine::Error::Store(
                e @ threds_runtime::store::Error::Fenced { .. },
            ))) => return Err(e.to_string()),
            Ok(Err(e)) => e.to_string(),
            Err(panic) => format!("panicked: {}", panic_text(&panic)),
        };
        tracing::warn!(records = records.len(), error = %error, "batch failed; applying its records one by one");
        // The failed batch may still have committed (a reply lost after the store applied it):
        // the stored watermark says so.
        let mut applied = applied;
        if let Some(first) = records.first() {
            let p = &first.position;
            let stored = self
                .processor
                .store()
                .applied(&p.topic, p.partition)
                .await
                .map_err(|e| e.to_string())?;
            applied = applied.max(stored);
        }
        for record in records {
            self.record(record, applied).await?;
            applied = raised(applied, record);
        }
        Ok(applied)
    }

    /// Applies one record on its own (with retries, then the dead letter).
    async fn record(&self, record: &Record, applied: Option<u64>) -> Result<(), String> {
        handle_record(
            self.processor,
            self.admin,
            self.bus,
            record,
            applied,
            self.lease,
            self.max_attempts,
        )
        .await
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
    let mut applied = applied;
    for attempt in 1..=max_attempts.max(1) {
        if attempt > 1 {
            // A failed attempt may still have committed (e.g. a reply lost after the store applied
            // the write): re-read the watermark so the retry recognises its own commit.
            let p = &record.position;
            if let Ok(stored) = processor.store().applied(&p.topic, p.partition).await {
                applied = applied.max(stored);
            }
        }
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
    let topic = Topology::default().dead_letter(&p.topic);
    let mut headers = record.headers.clone();
    headers.push((topology::headers::ERROR.into(), error.to_string()));
    headers.push((
        topology::headers::ORIGIN.into(),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicU32, Ordering};
    use threds_runtime::bus::memory::MemoryBus;
    use threds_runtime::bus::Position;
    use threds_runtime::documents::memory::MemoryDocuments;
    use threds_runtime::engine::EngineHandle;
    use threds_runtime::store::memory::MemoryStore;
    use threds_runtime::store::{self, Commit, Lease, Session, Stored, StoredCounter};

    /// A store whose `load` panics or fails on every call (a poison step), counting attempts.
    struct Poisoned {
        inner: MemoryStore,
        panic: bool,
        loads: AtomicU32,
    }

    #[async_trait]
    impl ThredStore for Poisoned {
        async fn load(&self, ids: &[String]) -> Result<Vec<Option<Stored>>, store::Error> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            if self.panic {
                panic!("poison: load of {ids:?}");
            }
            Err(store::Error::Backend("disk on fire".into()))
        }
        async fn thred_ids(&self) -> Result<Vec<String>, store::Error> {
            self.inner.thred_ids().await
        }
        async fn unbound_listeners(&self) -> Result<Vec<String>, store::Error> {
            self.inner.unbound_listeners().await
        }
        async fn counters(&self, ids: &[String]) -> Result<Vec<StoredCounter>, store::Error> {
            self.inner.counters(ids).await
        }
        async fn applied(&self, topic: &str, partition: u32) -> Result<Option<u64>, store::Error> {
            self.inner.applied(topic, partition).await
        }
        async fn commit(
            &self,
            lease: Option<&Lease>,
            commit: Commit,
        ) -> Result<Vec<u64>, store::Error> {
            self.inner.commit(lease, commit).await
        }
        async fn outbox(
            &self,
            before: i64,
            limit: usize,
        ) -> Result<Vec<store::Pending>, store::Error> {
            self.inner.outbox(before, limit).await
        }
        async fn ack_outbox(&self, seqs: &[u64]) -> Result<(), store::Error> {
            self.inner.ack_outbox(seqs).await
        }
        async fn due_timers(
            &self,
            p: u32,
            now: i64,
            limit: usize,
        ) -> Result<Vec<threds_patterns::thred::Timer>, store::Error> {
            self.inner.due_timers(p, now, limit).await
        }
        async fn acquire(
            &self,
            r: &str,
            o: &str,
            ttl: Duration,
        ) -> Result<Option<Lease>, store::Error> {
            self.inner.acquire(r, o, ttl).await
        }
        async fn release(&self, lease: &Lease) -> Result<(), store::Error> {
            self.inner.release(lease).await
        }
        async fn add_session(&self, s: Session) -> Result<(), store::Error> {
            self.inner.add_session(s).await
        }
        async fn remove_session(&self, id: &str) -> Result<(), store::Error> {
            self.inner.remove_session(id).await
        }
        async fn sessions_of(&self, p: &str) -> Result<Vec<Session>, store::Error> {
            self.inner.sessions_of(p).await
        }
        async fn participants(&self) -> Result<Vec<String>, store::Error> {
            self.inner.participants().await
        }
        async fn register_patterns(&self, p: Vec<(String, String)>) -> Result<u64, store::Error> {
            self.inner.register_patterns(p).await
        }
        async fn registered_patterns(&self) -> Result<store::Registry, store::Error> {
            self.inner.registered_patterns().await
        }
    }

    async fn run_poisoned(panic: bool, payload: &[u8]) -> (u32, Vec<Record>) {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let topology = Topology::new(1);
        let dead_letters = topology.dead_letter(topology.events());
        bus.create_topic(topology.events(), 1).await.unwrap();
        bus.create_topic(&dead_letters, 1).await.unwrap();
        let poisoned = Arc::new(Poisoned {
            inner: MemoryStore::new(),
            panic,
            loads: AtomicU32::new(0),
        });
        let store: Arc<dyn ThredStore> = poisoned.clone();
        let engine = threds_patterns::machine::Engine::default();
        let processor = Arc::new(Processor::new(
            EngineHandle::new(engine),
            store.clone(),
            bus.clone(),
            topology.clone(),
            Arc::new(|| 0),
        ));
        let admin = Admin::new(
            processor.clone(),
            store,
            Arc::new(MemoryDocuments::new()),
            Arc::new(|_| Ok(Vec::new())),
        );
        let record = Record {
            position: Position {
                topic: topology.events().into(),
                partition: 0,
                offset: 7,
            },
            key: Some("t_1".into()),
            payload: payload.to_vec(),
            headers: Vec::new(),
            timestamp: 0,
        };
        handle_record(&processor, &admin, &bus, &record, None, None, 3)
            .await
            .unwrap();
        let mut dlq = bus
            .join("inspect", &[dead_letters.as_str()], "inspector")
            .await
            .unwrap();
        let mut records = Vec::new();
        for _ in 0..10 {
            records.extend(
                dlq.poll(10, Duration::from_millis(100))
                    .await
                    .unwrap()
                    .records,
            );
            if !records.is_empty() {
                break;
            }
        }
        (poisoned.loads.load(Ordering::SeqCst), records)
    }

    fn header<'r>(r: &'r Record, name: &str) -> &'r str {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    const BOUND: &[u8] = br#"{"id": "e1", "type": "t", "source": {"id": "p"}, "thredId": "t_1"}"#;

    #[actix_rt::test]
    async fn a_panicking_step_is_retried_then_dead_lettered_with_its_error() {
        let (attempts, dlq) = run_poisoned(true, BOUND).await;
        assert_eq!(attempts, 3, "retried up to max_attempts");
        assert_eq!(dlq.len(), 1);
        assert_eq!(dlq[0].payload, BOUND, "the original record");
        assert!(
            header(&dlq[0], topology::headers::ERROR).contains("panicked: poison"),
            "{:?}",
            dlq[0].headers
        );
        assert_eq!(
            header(&dlq[0], topology::headers::ORIGIN),
            format!("{}/0/7", Topology::default().events())
        );
    }

    #[actix_rt::test]
    async fn a_failing_step_is_retried_then_dead_lettered() {
        let (attempts, dlq) = run_poisoned(false, BOUND).await;
        assert_eq!(attempts, 3);
        assert!(header(&dlq[0], topology::headers::ERROR).contains("disk on fire"));
    }

    #[actix_rt::test]
    async fn a_record_that_is_not_an_event_is_dead_lettered_at_once() {
        let (attempts, dlq) = run_poisoned(false, b"{not json").await;
        assert_eq!(attempts, 0);
        assert!(header(&dlq[0], topology::headers::ERROR).contains("not JSON"));
    }
}
