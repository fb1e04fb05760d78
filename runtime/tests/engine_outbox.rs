//! A step's messages go out if and only if its state is committed: a publish that fails after the
//! commit is recovered by the outbox relay, exactly once.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::machine::Engine;
use threds_patterns::pattern::PatternSet;
use threds_runtime::bus::memory::MemoryBus;
use threds_runtime::bus::{self, Bus, Consumer, Position, Record};
use threds_runtime::engine::{Done, EngineHandle, Processor, Topics};
use threds_runtime::store::memory::MemoryStore;

/// A bus whose appends to one topic fail while `broken` is set.
struct Flaky {
    inner: MemoryBus,
    topic: &'static str,
    broken: AtomicBool,
}

#[async_trait]
impl Bus for Flaky {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), bus::Error> {
        self.inner.create_topic(topic, partitions).await
    }
    async fn partitions(&self, topic: &str) -> Result<u32, bus::Error> {
        self.inner.partitions(topic).await
    }
    async fn append(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&str>,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<Position, bus::Error> {
        if topic == self.topic && self.broken.load(Ordering::SeqCst) {
            return Err(bus::Error::Backend("network partition".into()));
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
    let flaky = Arc::new(Flaky {
        inner: MemoryBus::new(),
        topic: "threds.sessions",
        broken: AtomicBool::new(true),
    });
    let bus: Arc<dyn Bus> = flaky.clone();
    bus.create_topic("threds.events", 1).await.unwrap();
    bus.create_topic("threds.sessions", 1).await.unwrap();
    let now = Arc::new(AtomicI64::new(1_000_000));
    let clock_now = now.clone();
    let clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let processor = Processor::new(
        EngineHandle::new(Engine::new(set, Default::default(), Default::default())),
        store,
        bus.clone(),
        Topics::default(),
        1,
        clock,
    );
    let record = Record {
        position: Position {
            topic: "threds.events".into(),
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

    // The state commits, then publishing fails: the record is not acknowledged.
    assert!(matches!(
        processor.record(&record, None, None).await,
        Err(threds_runtime::engine::Error::Bus(_))
    ));
    // Redelivered, it is a duplicate (already applied): without the outbox its message would be lost.
    assert!(matches!(
        processor.record(&record, Some(0), None).await.unwrap(),
        Done::Duplicate
    ));
    // Too recent for the relay (its own step may still be publishing it).
    flaky.broken.store(false, Ordering::SeqCst);
    assert_eq!(processor.relay(5_000, 100).await.unwrap(), 0);
    now.fetch_add(6_000, Ordering::SeqCst);
    assert_eq!(processor.relay(5_000, 100).await.unwrap(), 1);
    assert_eq!(
        processor.relay(5_000, 100).await.unwrap(),
        0,
        "acknowledged: relayed once"
    );

    let mut reader = bus
        .join("check", &["threds.sessions"], "reader")
        .await
        .unwrap();
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
