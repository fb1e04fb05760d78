#![allow(clippy::unwrap_used)]
use super::*;
use crate::bus::memory::MemoryBus;
use crate::bus::Position;
use crate::documents::memory::MemoryDocuments;
use crate::engine::admin::Admin;
use crate::engine::MachineHandle;
use crate::store::memory::MemoryStore;
use crate::store::{self, Commit, Stored, StoredCounter, Threds};
use crate::topology;
use async_trait::async_trait;
use std::sync::atomic::{AtomicU32, Ordering};

/// Thred state whose `load` panics or fails on every call (a poison step), counting attempts.
struct Poisoned {
    inner: Arc<MemoryStore>,
    panic: bool,
    loads: AtomicU32,
}

#[async_trait]
impl Threds for Poisoned {
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
    async fn thred_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, store::Error> {
        self.inner.thred_page(after, limit).await
    }
    async fn threds_of(&self, participant: &str) -> Result<Vec<String>, store::Error> {
        self.inner.threds_of(participant).await
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
    async fn outbox(&self, before: i64, limit: usize) -> Result<Vec<store::Pending>, store::Error> {
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
    async fn pending_timers(&self, p: u32) -> Result<u64, store::Error> {
        self.inner.pending_timers(p).await
    }
}

async fn run_poisoned(panic: bool, payload: &[u8]) -> (u32, Vec<Record>) {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let topology = Topology::new(1);
    let dead_letters = topology.dead_letter(topology.events());
    bus.create_topic(topology.events(), 1).await.unwrap();
    bus.create_topic(&dead_letters, 1).await.unwrap();
    // The other ports come from the adapter the poisoned thred state wraps (leases must).
    let adapter = Arc::new(MemoryStore::new());
    let poisoned = Arc::new(Poisoned {
        inner: adapter.clone(),
        panic,
        loads: AtomicU32::new(0),
    });
    let threds: Arc<dyn Threds> = poisoned.clone();
    let engine = threds_patterns::machine::Machine::default();
    let processor = Arc::new(
        Processor::new(
            MachineHandle::new(engine),
            threds,
            adapter.clone(),
            bus.clone(),
            topology.clone(),
            Arc::new(|| 0),
        )
        .with_max_event_bytes(1024),
    );
    let admin = Admin::new(
        processor.clone(),
        adapter.clone(),
        Arc::new(MemoryDocuments::new()),
        Arc::new(|_| Err(crate::engine::reload::Error::Files(Vec::new()))),
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
    let shared = Shared {
        processor: processor.clone(),
        admin: Arc::new(admin),
        leases: adapter.clone(),
        bus: bus.clone(),
        max_attempts: 3,
        lease: LeaseSpec {
            owner: "e1".into(),
            ttl: Duration::from_secs(10),
        },
    };
    let lease = adapter
        .acquire(&topology.partition_lease(0), "e1", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    let work = Work {
        shared: &shared,
        lease: &lease,
        partition: 0,
    };
    work.record(&record, None).await.unwrap();
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

#[tokio::test]
async fn a_panicking_step_is_retried_then_dead_lettered_with_its_error() {
    let (attempts, dlq) = run_poisoned(true, BOUND).await;
    assert_eq!(attempts, 3, "retried up to max_attempts");
    assert_eq!(dlq.len(), 1);
    assert_eq!(header(&dlq[0], topology::headers::ATTEMPTS), "3");
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

#[tokio::test]
async fn a_failing_step_is_retried_then_dead_lettered() {
    let (attempts, dlq) = run_poisoned(false, BOUND).await;
    assert_eq!(attempts, 3);
    assert!(header(&dlq[0], topology::headers::ERROR).contains("disk on fire"));
}

#[tokio::test]
async fn a_record_that_is_not_an_event_is_dead_lettered_at_once() {
    let (attempts, dlq) = run_poisoned(false, b"{not json").await;
    assert_eq!(attempts, 0);
    assert!(header(&dlq[0], topology::headers::ERROR).contains("not JSON"));
    assert_eq!(header(&dlq[0], topology::headers::ATTEMPTS), "1");
}

#[tokio::test]
async fn an_event_over_the_size_limit_without_an_envelope_is_dead_lettered_at_once() {
    // Too large, and no id or type to tell its sender by (one with them is refused: the sender is
    // told, see `oversized` in runtime/tests).
    let big = format!(r#"{{"data": {{"pad": "{}"}}}}"#, "x".repeat(2000));
    let (attempts, dlq) = run_poisoned(false, big.as_bytes()).await;
    assert_eq!(attempts, 0, "no step ran");
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].payload, big.as_bytes(), "the original record");
    let error = header(&dlq[0], topology::headers::ERROR);
    assert!(
        error.contains("max_event_bytes") && error.contains("envelope"),
        "{:?}",
        dlq[0].headers
    );
}
