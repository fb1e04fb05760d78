//! The engine service with faults injected into its thred store: partition workers fail and
//! panic, the lanes restart them, and every event is applied exactly once.

#![allow(clippy::unwrap_used)]

use super::service::{self, EngineOptions};
use async_trait::async_trait;
use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use threds_patterns::machine::Machine;
use threds_patterns::pattern::PatternSet;
use threds_runtime::bus::driver::Handler as _;
use threds_runtime::bus::memory::MemoryBus;
use threds_runtime::bus::{Bus, Position, Record};
use threds_runtime::documents::memory::MemoryDocuments;
use threds_runtime::engine::admin::Admin;
use threds_runtime::engine::lanes::{Lanes, WorkerError, Workers};
use threds_runtime::engine::partition::{LeaseSpec, Shared};
use threds_runtime::engine::{MachineHandle, Processor};
use threds_runtime::store::memory::MemoryStore;
use threds_runtime::store::{self, Commit, Lease, Stored, StoredCounter, Threds};
use threds_runtime::topology::Topology;
use tokio_util::sync::CancellationToken;

const ECHO: &str = include_str!("../../../config/patterns/echo.pattern.json");
const T: Topology = Topology::new(1);
const EVENTS: usize = 30;

/// Thred state whose `applied` fails twice, then panics once, then works; while `stalled`, its
/// outbox never answers.
struct Faulty {
    inner: Arc<MemoryStore>,
    applied_calls: AtomicU32,
    stalled: AtomicBool,
}

#[async_trait]
impl Threds for Faulty {
    async fn load(&self, ids: &[String]) -> Result<Vec<Option<Stored>>, store::Error> {
        self.inner.load(ids).await
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
        match self.applied_calls.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Err(store::Error::Backend("connection reset".into())),
            2 => panic!("injected panic in the thred store"),
            _ => self.inner.applied(topic, partition).await,
        }
    }
    async fn commit(
        &self,
        lease: Option<&Lease>,
        commit: Commit,
    ) -> Result<Vec<u64>, store::Error> {
        self.inner.commit(lease, commit).await
    }
    async fn outbox(&self, before: i64, limit: usize) -> Result<Vec<store::Pending>, store::Error> {
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
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

/// Everything on the sessions topic so far.
async fn messages(bus: &Arc<dyn Bus>, want: usize) -> Vec<Value> {
    let mut reader = bus.join("check", &[T.sessions()], "reader").await.unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < want && Instant::now() < deadline {
        for r in reader
            .poll(100, Duration::from_millis(50))
            .await
            .unwrap()
            .records
        {
            out.push(serde_json::from_slice(&r.payload).unwrap());
        }
    }
    reader.leave().await.unwrap();
    out
}

#[actix_rt::test]
async fn failing_and_panicking_partition_workers_are_restarted_and_nothing_is_lost_or_duplicated() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    for topic in T.topics() {
        bus.create_topic(&topic.name, topic.partitions)
            .await
            .unwrap();
    }
    // The other ports come from the adapter the faulty thred state wraps (leases must).
    let adapter = Arc::new(MemoryStore::new());
    let faulty = Arc::new(Faulty {
        inner: adapter.clone(),
        applied_calls: AtomicU32::new(0),
        stalled: AtomicBool::new(false),
    });
    let threds: Arc<dyn Threds> = faulty.clone();
    let pattern = threds_patterns::load::pattern("echo", ECHO).unwrap().value;
    let mut set = PatternSet::new();
    set.insert(Arc::new(pattern));
    let processor = Arc::new(Processor::new(
        MachineHandle::new(Machine::new(set, Default::default(), Default::default())),
        threds,
        adapter.clone(),
        bus.clone(),
        T,
        Arc::new(|| 1_700_000_000_000),
    ));
    let admin = Arc::new(Admin::new(
        processor.clone(),
        adapter.clone(),
        Arc::new(MemoryDocuments::new()),
        Arc::new(|_| Err(threds_runtime::engine::reload::Error::Files(Vec::new()))),
    ));
    // One thred: the first event starts it, the others continue it.
    for n in 0..EVENTS {
        let mut event = json!({"id": format!("e{n}"), "type": "org.wt.echo", "source": {"id": "alice"},
            "data": {"content": {"values": {"echoTo": ["bob"], "echoTitle": "t", "echoContent": n}}}});
        if n > 0 {
            event["thredId"] = json!("echo_0-0-1");
        }
        bus.append(
            T.events(),
            Some(0),
            Some("alice"),
            event.to_string().into_bytes(),
            Vec::new(),
        )
        .await
        .unwrap();
    }
    let restarts = Arc::new(AtomicU64::new(0));
    let options = EngineOptions {
        shared: Shared {
            processor: processor.clone(),
            admin,
            leases: adapter.clone(),
            bus: bus.clone(),
            max_attempts: 3,
            lease: LeaseSpec {
                owner: "engine-1".into(),
                ttl: Duration::from_secs(10),
            },
        },
        batch: 8,
        arbiters: Vec::new(),
        ready: Arc::new(AtomicBool::new(false)),
        restarts: restarts.clone(),
    };
    let shutdown = CancellationToken::new();
    let consumer = bus
        .join(&T.engine_group(), &[T.events()], "engine-1")
        .await
        .unwrap();
    let engine = actix_rt::spawn(service::run(consumer, options, shutdown.clone()));

    let messages = messages(&bus, EVENTS).await;
    shutdown.cancel();
    engine.await.unwrap().unwrap();

    assert_eq!(
        restarts.load(Ordering::SeqCst),
        3,
        "two failures and a panic, each a restart"
    );
    let ids: BTreeSet<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), EVENTS, "no message twice: {ids:?}");
    // Message ids derive from the record that caused them: `evt-<partition>-<offset>-<n>_0`.
    let offsets: BTreeSet<u64> = ids
        .iter()
        .map(|id| id.split('-').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        offsets,
        (0..EVENTS as u64).collect(),
        "every event's message, once"
    );
    let stored = faulty
        .inner
        .load(&["echo_0-0-1".to_string()])
        .await
        .unwrap();
    let state = &stored[0].as_ref().unwrap().state;
    assert_eq!(
        state.thred_context.scope.get("echoTimes"),
        Some(&json!(EVENTS)),
        "each event applied once (the echo pattern counts them)"
    );
    assert_eq!(
        faulty.inner.applied(T.events(), 0).await.unwrap(),
        Some(EVENTS as u64 - 1)
    );
    let mut dead = bus
        .join("dead", &[T.dead_letter(T.events()).as_str()], "reader")
        .await
        .unwrap();
    assert!(
        dead.poll(10, Duration::from_millis(100))
            .await
            .unwrap()
            .records
            .is_empty(),
        "nothing dead-lettered"
    );
}

/// Workers that apply every batch at once (nothing is stepped).
struct Instant0;

impl Workers for Instant0 {
    type Worker = ();

    fn start(&mut self, _partition: u32) {}

    fn apply(
        &self,
        _worker: &(),
        records: Vec<Record>,
    ) -> LocalBoxFuture<'static, Result<Option<u64>, WorkerError>> {
        let last = records.last().map(|r| r.position.offset);
        Box::pin(async move { Ok(last) })
    }

    fn retire(&mut self, _worker: ()) {}
}

/// The consumer driver drops `progress` whenever a poll answers first; a drop while the outbox
/// relay runs must not lose a batch that had finished (its partition would stay busy for ever:
/// the stall `threds-bench cluster` found after a saturated run).
#[actix_rt::test]
async fn a_finished_batch_survives_progress_being_dropped_during_the_relay() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let adapter = Arc::new(MemoryStore::new());
    let faulty = Arc::new(Faulty {
        inner: adapter.clone(),
        applied_calls: AtomicU32::new(3),
        stalled: AtomicBool::new(true),
    });
    let processor = Arc::new(Processor::new(
        MachineHandle::new(Machine::new(
            PatternSet::new(),
            Default::default(),
            Default::default(),
        )),
        faulty.clone(),
        adapter,
        bus,
        T,
        Arc::new(|| 1_700_000_000_000),
    ));
    let mut lanes = Lanes::new(
        Instant0,
        processor,
        16,
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let events = T.events().to_owned();
    lanes.assigned(&[(events.clone(), 0)]);
    let record = Record {
        position: Position {
            topic: events.clone(),
            partition: 0,
            offset: 41,
        },
        key: None,
        payload: b"{}".to_vec(),
        headers: Vec::new(),
        timestamp: 0,
    };
    assert!(lanes.handle(vec![record]).await.unwrap().is_empty());
    // The relay is due and its store never answers: the driver gives up on this progress.
    let cut = tokio::time::timeout(Duration::from_millis(50), lanes.progress()).await;
    assert!(cut.is_err(), "the stalled relay holds progress up");
    // The next progress reports the batch (the relay is not due again for a second).
    let next = tokio::time::timeout(Duration::from_millis(200), lanes.progress())
        .await
        .expect("the finished batch is reported")
        .unwrap();
    assert_eq!(
        next,
        vec![Position {
            topic: events,
            partition: 0,
            offset: 42
        }]
    );
}
