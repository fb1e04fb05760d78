//! A batch of events runs as one unit with the same result as its records run one by one: later
//! steps see the earlier steps' writes, every write raises the thred's version once, and the
//! messages go out in order.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::machine::Machine;
use threds_patterns::model::Event;
use threds_patterns::pattern::PatternSet;
use threds_runtime::bus::memory::MemoryBus;
use threds_runtime::bus::{Bus, Position, Record};
use threds_runtime::engine::{Incoming, MachineHandle, Processor};
use threds_runtime::topology::Topology;

use threds_runtime::store::memory::MemoryStore;
use threds_runtime::store::Threds;
use threds_runtime::trace::TraceParent;

/// The names of the deployment under test.
const T: Topology = Topology::new(1);

const ECHO: &str = include_str!("../../config/patterns/echo.pattern.json");

struct Host {
    processor: Processor,
    store: Arc<MemoryStore>,
    bus: Arc<dyn Bus>,
}

async fn host() -> Host {
    let pattern = threds_patterns::load::pattern("echo", ECHO).unwrap().value;
    let mut set = PatternSet::new();
    set.insert(Arc::new(pattern));
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    bus.create_topic(T.events(), 1).await.unwrap();
    bus.create_topic(T.sessions(), 1).await.unwrap();
    let clock = Arc::new(|| 1_000_000i64);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let processor = Processor::new(
        MachineHandle::new(Machine::new(set, Default::default(), Default::default())),
        store.clone(),
        store.clone(),
        bus.clone(),
        Topology::new(1),
        clock,
    );
    Host {
        processor,
        store,
        bus,
    }
}

/// Echo events at offsets 0.. : the first starts a thred, the others continue it (its id is
/// derived from the first record's position).
fn records(n: u64) -> Vec<Record> {
    (0..n)
        .map(|offset| {
            let mut event = json!({"id": format!("e{offset}"), "type": "org.wt.echo",
                "source": {"id": "alice"},
                "data": {"content": {"values": {"echoTo": ["bob"], "echoTitle": "t", "echoContent": offset}}}});
            if offset > 0 {
                event["thredId"] = json!("echo_0-0-1");
            }
            Record {
                position: Position {
                    topic: T.events().into(),
                    partition: 0,
                    offset,
                },
                key: Some("alice".into()),
                payload: event.to_string().into_bytes(),
                headers: Vec::new(),
                timestamp: 0,
            }
        })
        .collect()
}

/// The events of `records`, sorted out by `processor` (all must be events).
fn events_of(
    processor: &Processor,
    records: &[Record],
) -> Vec<(Position, Event, Option<TraceParent>)> {
    records
        .iter()
        .map(|r| match processor.sort(r, None) {
            Incoming::Event(e) => (r.position.clone(), e, None),
            other => panic!("{other:?}"),
        })
        .collect()
}

async fn messages(bus: &Arc<dyn Bus>) -> Vec<Value> {
    let mut reader = bus.join("check", &[T.sessions()], "reader").await.unwrap();
    let mut out = Vec::new();
    for _ in 0..3 {
        for r in reader
            .poll(100, Duration::from_millis(30))
            .await
            .unwrap()
            .records
        {
            out.push(serde_json::from_slice(&r.payload).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn a_batch_has_the_effect_of_its_records_one_by_one() {
    let records = records(6);

    let single = host().await;
    let mut applied = None;
    for record in &records {
        single
            .processor
            .record(record, applied, None)
            .await
            .unwrap();
        applied = Some(record.position.offset);
    }

    let batched = host().await;
    let outcomes = batched
        .processor
        .events(events_of(&batched.processor, &records), None)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 6);

    let id = "echo_0-0-1".to_string();
    let one = single.store.load(std::slice::from_ref(&id)).await.unwrap();
    let all = batched.store.load(&[id]).await.unwrap();
    let (one, all) = (one[0].as_ref().unwrap(), all[0].as_ref().unwrap());
    assert_eq!(all.state, one.state, "same final state");
    assert_eq!(one.version, 6, "six commits of one step each");
    assert_eq!(
        all.version, 1,
        "one commit, which writes the thred once for its six steps"
    );
    assert_eq!(
        batched.store.applied(T.events(), 0).await.unwrap(),
        Some(5),
        "the batch's last offset is applied"
    );

    let (one, all) = (messages(&single.bus).await, messages(&batched.bus).await);
    assert_eq!(all.len(), 6);
    assert_eq!(all, one, "same messages, same ids, same order");
    let titles: Vec<&str> = all
        .iter()
        .map(|m| m["event"]["data"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["t 1", "t 2", "t 3", "t 4", "t 5", "t 6"]);
}

#[tokio::test]
async fn a_batch_run_again_after_its_commit_is_recognised_as_applied() {
    let host = host().await;
    let records = records(3);
    host.processor
        .events(events_of(&host.processor, &records), None)
        .await
        .unwrap();
    let applied = host.store.applied(T.events(), 0).await.unwrap();
    for record in &records {
        assert!(matches!(
            host.processor.sort(record, applied),
            Incoming::Duplicate
        ));
    }
}

#[tokio::test]
async fn messages_carry_a_child_of_their_records_trace_context() {
    let host = host().await;
    let mut records = records(2);
    let parent =
        TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    records[0].headers = vec![parent.to_header()];
    let mut applied = None;
    for record in &records {
        host.processor.record(record, applied, None).await.unwrap();
        applied = Some(record.position.offset);
    }
    let mut reader = host
        .bus
        .join("trace", &[T.sessions()], "reader")
        .await
        .unwrap();
    let mut out = Vec::new();
    while out.len() < 2 {
        out.extend(
            reader
                .poll(10, Duration::from_millis(30))
                .await
                .unwrap()
                .records,
        );
    }
    let first = TraceParent::of_headers(&out[0].headers).unwrap();
    assert_eq!(first.trace_id, parent.trace_id, "the record's trace");
    assert_ne!(first.span_id, parent.span_id, "a span of its own");
    let second = TraceParent::of_headers(&out[1].headers).unwrap();
    assert_ne!(
        second.trace_id, parent.trace_id,
        "a record without context starts a trace"
    );
}

/// Records of `n` unbound echo events from `n` participants: each starts a thred of its own.
fn starts(n: u64) -> Vec<Record> {
    (0..n)
        .map(|offset| {
            let source = format!("p{offset}");
            let event = json!({"id": format!("s{offset}"), "type": "org.wt.echo",
                "source": {"id": source},
                "data": {"content": {"values": {"echoTo": ["bob"], "echoTitle": "t", "echoContent": offset}}}});
            Record {
                position: Position {
                    topic: T.events().into(),
                    partition: 0,
                    offset,
                },
                key: Some(source),
                payload: event.to_string().into_bytes(),
                headers: Vec::new(),
                timestamp: 0,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threds_started_for_many_participants_in_one_batch_read_the_store_together() {
    if !threds_testkit::redis::available("engine batch round trips") {
        return;
    }
    let server =
        threds_testkit::redis::RedisServer::start().unwrap_or_else(|e| panic!("redis-server: {e}"));
    let clock = Arc::new(|| 1_000_000i64);
    let config = threds_runtime::store::redis::Config::new(vec![server.url()]);
    let store = Arc::new(
        threds_runtime::store::redis::RedisStore::with_clock(config, clock.clone()).unwrap(),
    );
    let pattern = threds_patterns::load::pattern("echo", ECHO).unwrap().value;
    let mut set = PatternSet::new();
    set.insert(Arc::new(pattern));
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    bus.create_topic(T.sessions(), 1).await.unwrap();
    let processor = Processor::new(
        MachineHandle::new(Machine::new(set, Default::default(), Default::default())),
        store.clone(),
        store.clone(),
        bus,
        T,
        clock,
    );

    // Each step counts its thred against its starter: 40 participants' counters, none read yet.
    let n = 40;
    let records = starts(n);
    let before = store.round_trips().unwrap();
    let outcomes = processor
        .events(events_of(&processor, &records), None)
        .await
        .unwrap();
    let trips = store.round_trips().unwrap() - before;
    let started: usize = outcomes.iter().map(|o| o.threds.len()).sum();
    assert_eq!(started, n as usize, "every event started a thred");
    assert_eq!(store.thred_ids().await.unwrap().len(), n as usize);
    // Unbound listeners, then what the steps asked for (their threds, the pattern's and the
    // participants' counters) gathered over the batch, the commit and the publishing: not one
    // read per step.
    assert!(
        trips <= 10,
        "{trips} Redis round trips for a batch of {n} new threds"
    );
}
