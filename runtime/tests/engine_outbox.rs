//! A step's messages go out if and only if its state is committed: a publish that fails after the
//! commit is recovered by the outbox relay, exactly once; a record that cannot be published holds
//! back only the later records of its own topic.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use serde_json::json;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use threds_patterns::machine::Machine;
use threds_patterns::pattern::PatternSet;
use threds_runtime::bus::memory::MemoryBus;
use threds_runtime::bus::{self, Bus, Consumer, Position, Record};
use threds_runtime::engine::{Done, MachineHandle, Processor};
use threds_runtime::topology::Topology;

use threds_runtime::store::memory::MemoryStore;

/// The names of the deployment under test.
const T: Topology = Topology::new(1);

/// A bus whose appends to the `broken` topics fail and to the `stalled` topics never answer.
struct Flaky {
    inner: MemoryBus,
    broken: Mutex<Vec<String>>,
    stalled: Mutex<Vec<String>>,
    /// Appends tried on stalled topics.
    stalls: AtomicI64,
}

impl Flaky {
    fn new(broken: &[&str]) -> Flaky {
        Flaky {
            inner: MemoryBus::new(),
            broken: Mutex::new(broken.iter().map(|t| t.to_string()).collect()),
            stalled: Mutex::new(Vec::new()),
            stalls: AtomicI64::new(0),
        }
    }

    fn stall_only(&self, topics: &[&str]) {
        *self.stalled.lock().unwrap() = topics.iter().map(|t| t.to_string()).collect();
    }

    fn break_only(&self, topics: &[&str]) {
        *self.broken.lock().unwrap() = topics.iter().map(|t| t.to_string()).collect();
    }
}

#[async_trait]
impl Bus for Flaky {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), bus::Error> {
        self.inner.create_topic(topic, partitions).await
    }
    async fn partitions(&self, topic: &str) -> Result<u32, bus::Error> {
        self.inner.partitions(topic).await
    }
    async fn topic_ready(&self, topic: &str) -> Result<(), bus::Error> {
        self.inner.topic_ready(topic).await
    }

    async fn lag(&self, group: &str, topic: &str) -> Result<Vec<bus::Lag>, bus::Error> {
        self.inner.lag(group, topic).await
    }
    async fn append(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&str>,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<Position, bus::Error> {
        if self.broken.lock().unwrap().iter().any(|t| t == topic) {
            return Err(bus::Error::Backend("network partition".into()));
        }
        if self.stalled.lock().unwrap().iter().any(|t| t == topic) {
            self.stalls.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        self.inner
            .append(topic, partition, key, payload, headers)
            .await
    }
    async fn join(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, bus::Error> {
        self.inner.join(group, topics, member).await
    }
    async fn join_from_end(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, bus::Error> {
        self.inner.join_from_end(group, topics, member).await
    }

    async fn tail(&self, topic: &str, partition: u32) -> Result<Box<dyn Consumer>, bus::Error> {
        self.inner.tail(topic, partition).await
    }
}

#[tokio::test]
async fn a_failed_publish_is_relayed_once_after_the_commit() {
    let pattern = threds_patterns::load::pattern(
        "echo",
        &json!({"name": "Echo", "reactions": [{"name": "echo", "condition": {"type": "filter", "xpr": "true",
            "transform": {"eventDataTemplate": {"title": "echoed"}}, "publish": {"to": ["bob"]},
            "transition": {"name": "echo"}}}]})
        .to_string(),
    )
    .unwrap()
    .value;
    let mut set = PatternSet::new();
    set.insert(Arc::new(pattern));
    let flaky = Arc::new(Flaky::new(&[T.sessions()]));
    let bus: Arc<dyn Bus> = flaky.clone();
    bus.create_topic(T.events(), 1).await.unwrap();
    bus.create_topic(T.sessions(), 1).await.unwrap();
    let now = Arc::new(AtomicI64::new(1_000_000));
    let clock_now = now.clone();
    let clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let processor = Processor::new(
        MachineHandle::new(Machine::new(set, Default::default(), Default::default())),
        store.clone(),
        store,
        bus.clone(),
        Topology::new(1),
        clock,
    );
    let record = Record {
        position: Position {
            topic: T.events().into(),
            partition: 0,
            offset: 0,
        },
        key: Some("alice".into()),
        payload: json!({"id": "e1", "type": "go", "source": {"id": "alice"}})
            .to_string()
            .into_bytes(),
        headers: Vec::new(),
        timestamp: 0,
    };

    // The state commits, then publishing fails: the record is applied (running it again would
    // apply it twice) and its message waits in the outbox.
    assert!(matches!(
        processor.record(&record, None, None).await.unwrap(),
        Done::Applied(_)
    ));
    // Redelivered, it is a duplicate (already applied): without the outbox its message would be lost.
    assert!(matches!(
        processor.record(&record, Some(0), None).await.unwrap(),
        Done::Duplicate
    ));
    // Too recent for the relay (its own step may still be publishing it).
    flaky.break_only(&[]);
    assert_eq!(processor.relay(5_000, 100).await.unwrap(), 0);
    now.fetch_add(6_000, Ordering::SeqCst);
    assert_eq!(processor.relay(5_000, 100).await.unwrap(), 1);
    assert_eq!(
        processor.relay(5_000, 100).await.unwrap(),
        0,
        "acknowledged: relayed once"
    );

    let mut reader = bus.join("check", &[T.sessions()], "reader").await.unwrap();
    let mut records = Vec::new();
    for _ in 0..5 {
        records.extend(
            reader
                .poll(100, Duration::from_millis(50))
                .await
                .unwrap()
                .records,
        );
    }
    assert_eq!(records.len(), 1, "exactly one message");
    let message: serde_json::Value = serde_json::from_slice(&records[0].payload).unwrap();
    assert_eq!(message["to"], json!(["bob"]));
    assert_eq!(message["event"]["data"]["title"], "echoed");
}

/// Every record on `topic` so far, as `o<offset of the input record>_<recipient suffix>` from its
/// message id (`evt-<partition>-<offset>-<n>_0` for participants, `..._agent_<i>` for agents).
async fn message_ids(bus: &Arc<dyn Bus>, topic: &str) -> Vec<String> {
    static READERS: AtomicI64 = AtomicI64::new(0);
    let group = format!("check-{}", READERS.fetch_add(1, Ordering::SeqCst));
    let mut reader = bus.join(&group, &[topic], "reader").await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        for record in reader
            .poll(100, Duration::from_millis(50))
            .await
            .unwrap()
            .records
        {
            let message: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
            let id = message["id"].as_str().unwrap();
            let (event, suffix) = id.split_once('_').unwrap();
            ids.push(format!("o{}_{suffix}", event.split('-').nth(2).unwrap()));
        }
    }
    ids
}

/// An echo pattern that publishes each event to bob and to the `reports` agent, run over `flaky`
/// with a clock the test sets: the processor, the bus and the clock.
async fn bob_and_reports(flaky: Arc<Flaky>) -> (Processor, Arc<dyn Bus>, Arc<AtomicI64>) {
    let pattern = threds_patterns::load::pattern(
        "echo",
        &json!({"name": "Echo", "reactions": [{"name": "echo", "condition": {"type": "filter", "xpr": "true",
            "transform": {"eventDataTemplate": {"title": "echoed"}}, "publish": {"to": ["bob", "reports"]},
            "transition": {"name": "echo"}}}]})
        .to_string(),
    )
    .unwrap()
    .value;
    let mut set = PatternSet::new();
    set.insert(Arc::new(pattern));
    let resolver = serde_json::from_value(json!({"agents": [{"nodeType": "reports"}]})).unwrap();
    let bus: Arc<dyn Bus> = flaky;
    for topic in [T.events(), T.sessions(), T.agent("reports").as_str()] {
        bus.create_topic(topic, 1).await.unwrap();
    }
    let now = Arc::new(AtomicI64::new(1_000_000));
    let clock_now = now.clone();
    let clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let processor = Processor::new(
        MachineHandle::new(Machine::new(set, Default::default(), resolver)),
        store.clone(),
        store,
        bus.clone(),
        Topology::new(1),
        clock,
    );
    (processor, bus, now)
}

/// Event `id` from alice at `offset` of the events topic.
fn go(offset: u64, id: &str) -> Record {
    Record {
        position: Position {
            topic: T.events().into(),
            partition: 0,
            offset,
        },
        key: Some("alice".into()),
        payload: json!({"id": id, "type": "go", "source": {"id": "alice"}})
            .to_string()
            .into_bytes(),
        headers: Vec::new(),
        timestamp: 0,
    }
}

#[tokio::test]
async fn an_unpublishable_record_holds_back_only_the_records_of_its_topic() {
    let agent = T.agent("reports");
    let agent = agent.as_str();
    let flaky = Arc::new(Flaky::new(&[agent, T.sessions()]));
    let (processor, bus, now) = bob_and_reports(flaky.clone()).await;
    let record = go;

    // Nothing can be published: both messages of the applied step wait in the outbox.
    assert!(matches!(
        processor
            .record(&record(0, "e1"), None, None)
            .await
            .unwrap(),
        Done::Applied(_)
    ));
    assert!(message_ids(&bus, T.sessions()).await.is_empty());

    // The sessions topic is back, the agent's is not: the relay is not stuck behind the agent's
    // record (which comes first), it publishes bob's.
    flaky.break_only(&[agent]);
    now.fetch_add(6_000, Ordering::SeqCst);
    assert!(
        processor.relay(5_000, 100).await.is_err(),
        "the agent's record failed"
    );
    assert_eq!(message_ids(&bus, T.sessions()).await, ["o0_0"]);

    // A new step publishes bob's message at once, past the agent's failing record.
    assert!(matches!(
        processor
            .record(&record(1, "e2"), Some(0), None)
            .await
            .unwrap(),
        Done::Applied(_)
    ));
    assert_eq!(message_ids(&bus, T.sessions()).await, ["o0_0", "o1_0"]);
    now.fetch_add(6_000, Ordering::SeqCst);
    assert!(processor.relay(5_000, 100).await.is_err());
    assert_eq!(
        message_ids(&bus, T.sessions()).await,
        ["o0_0", "o1_0"],
        "acknowledged messages are not republished"
    );

    // The agent's topic is back: its records go out, once and in order.
    flaky.break_only(&[]);
    assert_eq!(processor.relay(5_000, 100).await.unwrap(), 2);
    assert_eq!(processor.relay(5_000, 100).await.unwrap(), 0);
    assert_eq!(message_ids(&bus, agent).await, ["o0_agent_0", "o1_agent_0"]);
}

/// An agent topic whose appends stall (a partition without a leader, say) is given up on after
/// the publish timeout and then left alone: steps do not wait behind it, its records wait in the
/// outbox, and once it answers again they go out, once.
#[tokio::test]
async fn a_stalled_topic_is_circuit_broken_and_nothing_waits_behind_it() {
    let agent = T.agent("reports");
    let agent = agent.as_str();
    let flaky = Arc::new(Flaky::new(&[]));
    flaky.stall_only(&[agent]);
    let (processor, bus, now) = bob_and_reports(flaky.clone()).await;
    let processor =
        processor.with_publish_breakers(Duration::from_millis(100), Duration::from_millis(300));
    let record = go;

    // The first step waits for the agent's topic only up to the timeout; bob's message goes out.
    assert!(matches!(
        processor
            .record(&record(0, "e1"), None, None)
            .await
            .unwrap(),
        Done::Applied(_)
    ));
    assert_eq!(message_ids(&bus, T.sessions()).await, ["o0_0"]);
    assert_eq!(flaky.stalls.load(Ordering::SeqCst), 1);
    // The breaker is open: the next steps do not try the agent's topic at all.
    for offset in 1..4 {
        let id = format!("e{}", offset + 1);
        processor
            .record(&record(offset, &id), Some(offset - 1), None)
            .await
            .unwrap();
    }
    assert_eq!(message_ids(&bus, T.sessions()).await.len(), 4);
    assert_eq!(
        flaky.stalls.load(Ordering::SeqCst),
        1,
        "not tried while open"
    );

    // The topic answers again: once the breaker lets a try through, the relay publishes the
    // agent's records, once and in order.
    flaky.stall_only(&[]);
    now.fetch_add(6_000, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut relayed = 0;
    while relayed < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "relayed {relayed} of 4"
        );
        relayed += processor.relay(5_000, 100).await.unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        message_ids(&bus, agent).await,
        ["o0_agent_0", "o1_agent_0", "o2_agent_0", "o3_agent_0"]
    );
    assert_eq!(
        message_ids(&bus, T.sessions()).await.len(),
        4,
        "bob's not republished"
    );
}
