//! Pattern versions across engines sharing one store: an engine that meets a thred pinned to a
//! version it does not hold yet (pushed through another engine, announcement not yet read)
//! reads the pattern registry and runs it; retention never removes a version live threds run.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::machine::{Input, Machine, Outcome};
use threds_patterns::model::Event;
use threds_runtime::bus::memory::MemoryBus;
use threds_runtime::bus::Bus;
use threds_runtime::engine::reload::{self, Push};
use threds_runtime::engine::{MachineHandle, Processor};
use threds_runtime::files::PatternSource;
use threds_runtime::store::memory::MemoryStore;
use threds_runtime::store::{Activation, PatternRegistry};
use threds_runtime::topology::Topology;

/// Pattern `flow` whose replies say `tag`: `start` → `wait` → end.
fn flow(tag: &str) -> PatternSource {
    let step = |name: &str, ty: &str, said: &str, transition: &str| {
        json!({"name": name, "condition": {"type": "filter", "xpr": format!("$event.type = '{ty}'"),
            "transform": {"eventDataTemplate": {"title": format!("{tag} {said}")}},
            "publish": {"to": ["$xpr( $event.source.id )"]},
            "transition": {"name": transition}}})
    };
    let pattern = json!({"id": "flow", "name": "Flow", "reactions": [
        step("start", "f.start", "started", "$next"),
        step("wait", "f.next", "waited", "$terminate"),
    ]});
    PatternSource {
        id: "flow".into(),
        text: pattern.to_string(),
        origin: format!("push:test:{tag}"),
    }
}

fn push_spec(kept: usize) -> Push {
    Push {
        activation: Activation::Always,
        retire_others: false,
        kept,
        now: 0,
    }
}

/// An engine on `store`: a processor running what the registry holds now.
async fn engine(store: &Arc<MemoryStore>) -> Processor {
    let handle = MachineHandle::new(Machine::default());
    reload::from_registry(store.as_ref(), &handle, 0)
        .await
        .unwrap();
    Processor::new(
        handle,
        store.clone(),
        store.clone(),
        Arc::new(MemoryBus::new()),
        Topology::new(1),
        Arc::new(|| 1_000),
    )
    .with_registry(store.clone())
}

async fn send(engine: &Processor, event: Value) -> Outcome {
    let event = Event::from_value(event).unwrap();
    let seed = event.id().to_string();
    engine.admin(Input::Event(event), &seed).await.unwrap()
}

fn title(outcome: &Outcome) -> Vec<String> {
    outcome
        .messages
        .iter()
        .filter_map(|m| {
            m.event.as_value()["data"]["title"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test]
async fn an_engine_reads_the_registry_when_it_meets_a_version_it_does_not_hold() {
    let store = Arc::new(MemoryStore::new());
    let threds = store.clone();
    reload::push(store.as_ref(), threds.as_ref(), &[flow("v1")], push_spec(5))
        .await
        .unwrap();
    let (a, b) = (engine(&store).await, engine(&store).await);

    // v2 is pushed through engine a; engine b has not heard of it.
    let (_, registry) = reload::push(store.as_ref(), threds.as_ref(), &[flow("v2")], push_spec(5))
        .await
        .unwrap();
    reload::run(&registry, a.engine(), None).unwrap();
    let started = send(
        &a,
        json!({"id": "e1", "type": "f.start", "source": {"id": "alice"}}),
    )
    .await;
    assert_eq!(title(&started), vec!["v2 started"]);
    let thred = started.messages[0].event.thred_id().unwrap().to_string();
    assert!(b.engine().current().patterns().version("flow", 2).is_none());

    // The thred's next event reaches engine b (its partition moved): b loads v2 and runs it.
    let next = send(
        &b,
        json!({"id": "e2", "type": "f.next", "source": {"id": "alice"}, "thredId": thred}),
    )
    .await;
    assert_eq!(title(&next), vec!["v2 waited"], "{:?}", next.failures);
    assert!(b.engine().current().patterns().version("flow", 2).is_some());
}

#[tokio::test]
async fn retention_keeps_versions_that_live_threds_run() {
    let store = Arc::new(MemoryStore::new());
    let threds = store.clone();
    reload::push(store.as_ref(), threds.as_ref(), &[flow("v1")], push_spec(1))
        .await
        .unwrap();
    let a = engine(&store).await;
    // A thred on v1 stays live (waiting at `wait`).
    send(
        &a,
        json!({"id": "e1", "type": "f.start", "source": {"id": "alice"}}),
    )
    .await;
    for tag in ["v2", "v3", "v4"] {
        reload::push(store.as_ref(), threds.as_ref(), &[flow(tag)], push_spec(1))
            .await
            .unwrap();
    }
    let registry = store.registry().await.unwrap();
    let kept: Vec<u32> = registry.patterns[0]
        .versions
        .iter()
        .map(|v| v.number)
        .collect();
    // v1: a live thred runs it; v4: active and newest; v2 and v3 went.
    assert_eq!(kept, vec![1, 4]);
    let in_use = reload::versions_in_use(store.as_ref(), threds.as_ref())
        .await
        .unwrap();
    assert_eq!(in_use, vec![("flow".to_string(), 1)]);
}

#[tokio::test]
async fn history_records_say_which_version_ran_each_step() {
    let store = Arc::new(MemoryStore::new());
    let threds = store.clone();
    reload::push(store.as_ref(), threds.as_ref(), &[flow("v1")], push_spec(5))
        .await
        .unwrap();
    let documents = Arc::new(threds_runtime::documents::memory::MemoryDocuments::new());
    let history = threds_runtime::history::History::new(documents);
    let bus = Arc::new(MemoryBus::new());
    let topology = Topology::new(1);
    for topic in topology.topics() {
        bus.create_topic(&topic.name, topic.partitions)
            .await
            .unwrap();
    }
    let handle = MachineHandle::new(Machine::default());
    reload::from_registry(store.as_ref(), &handle, 0)
        .await
        .unwrap();
    let a = Processor::new(
        handle,
        store.clone(),
        store.clone(),
        bus.clone(),
        topology.clone(),
        Arc::new(|| 1_000),
    )
    .with_registry(store.clone())
    .with_history(history.clone());
    let started = send(
        &a,
        json!({"id": "e1", "type": "f.start", "source": {"id": "alice"}}),
    )
    .await;
    // What the history sink does: the history topic's records into the documents store.
    let mut reader = bus
        .join("history-test", &[topology.history()], "t")
        .await
        .unwrap();
    let mut records = Vec::new();
    // The first poll may only report the assignment.
    for _ in 0..3 {
        records.extend(
            reader
                .poll(100, Duration::from_secs(1))
                .await
                .unwrap()
                .records,
        );
    }
    assert!(
        !records.is_empty(),
        "the step's history is on the history topic"
    );
    for record in &records {
        let entries = threds_runtime::history::decode(&record.payload).unwrap();
        history.write(&entries, 1_000).await.unwrap();
    }
    let thred = started.messages[0].event.thred_id().unwrap().to_string();
    let log = history.thred_log(&thred, 1_000).await.unwrap();
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|r| r["patternVersion"] == 1),
        "every record of the thred's steps names version 1: {log:?}"
    );
}
