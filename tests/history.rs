//! History as a stream, end to end: `threds engine` and `threds persistence` processes on
//! librdkafka's mock cluster, a real `redis-server`, and briskdb (a MongoDB-protocol server) that
//! the test kills for 30 s mid-stream and starts again on the same data.
//!
//! The engine steps on while MongoDB is down (its history waits in the history topic), and once
//! MongoDB is back the history sink writes it: every event record and thred log record of the
//! run is stored exactly once. Needs `redis-server` and briskdb (scripts/install/): without them
//! the test prints SKIPPED, unless `THREDS_REQUIRE_SERVICES=1` (set by `scripts/test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{now_ms, TOPOLOGY};
use threds_runtime::bus::kafka::KafkaBus;
use threds_runtime::bus::{Bus, Consumer, Record};
use threds_runtime::documents::{Documents, MongoDocuments};
use threds_runtime::history::{EVENTS, THRED_LOG};
use threds_testkit::mongo;
use threds_testkit::redis;
use threds_testkit::rig::Process;

/// Events produced per second, in every phase.
const RATE: u64 = 40;
/// How long MongoDB is down.
const OUTAGE: Duration = Duration::from_secs(30);
/// How long the stream runs before the outage, and after MongoDB is back.
const CALM: Duration = Duration::from_secs(8);

/// An unbound echo event from `partner-<n % 8>`: it starts an echo thred that tells alice
/// `<id> 1`.
fn echo(id: &str, n: u64) -> (String, Vec<u8>) {
    let source = format!("partner-{}", n % 8);
    let event = json!({"id": id, "type": "org.wt.echo", "source": {"id": source},
        "data": {"content": {"values": {"echoTo": ["alice"], "echoTitle": id, "echoContent": n}}}});
    (source, serde_json::to_vec(&event).unwrap())
}

/// Every document of `collection`.
async fn all(docs: &MongoDocuments, collection: &str) -> Vec<Value> {
    let task = json!({"op": "get", "params": {"type": collection, "matcher": {}}});
    match docs.run(&task, now_ms()).await.unwrap() {
        Value::Array(items) => items,
        other => panic!("get answered {other}"),
    }
}

/// Produces events at [`RATE`] until `until`; answers each event's id and when it was produced.
async fn produce(bus: &KafkaBus, first: u64, until: Instant) -> Vec<(String, i64)> {
    let mut produced = Vec::new();
    let started = Instant::now();
    let mut n = first;
    while Instant::now() < until {
        let id = format!("h-{n}");
        let (key, payload) = echo(&id, n);
        bus.append(TOPOLOGY.events(), None, Some(&key), payload, Vec::new())
            .await
            .unwrap();
        produced.push((id, now_ms()));
        n += 1;
        let due = started + Duration::from_millis((n - first) * 1000 / RATE);
        tokio::time::sleep_until(due.into()).await;
    }
    produced
}

/// The messages to alice on her slot's partition of the sessions topic, by the event id their
/// title names, with when each was appended; reads until `expected` are there (at most 60 s).
async fn messages(reader: &mut Box<dyn Consumer>, expected: usize) -> HashMap<String, i64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: HashMap<String, i64> = HashMap::new();
    while seen.len() < expected && Instant::now() < deadline {
        let polled = reader
            .poll(1_000, Duration::from_millis(200))
            .await
            .unwrap();
        for r in polled.records {
            if let Some(title) = title(&r) {
                seen.entry(title).or_insert(r.timestamp);
            }
        }
    }
    seen
}

/// The event id a message to alice names (its title is `<id> 1`).
fn title(record: &Record) -> Option<String> {
    let message: Value = serde_json::from_slice(&record.payload).ok()?;
    let title = message["event"]["data"]["title"].as_str()?;
    Some(title.trim_end_matches(" 1").to_owned())
}

/// Waits until the history sink has written everything on the history topic (at most `within`).
async fn sink_caught_up(bus: &KafkaBus, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let lags = bus
            .lag(&TOPOLOGY.history_group(), TOPOLOGY.history())
            .await
            .unwrap();
        let behind: u64 = lags.iter().map(|l| l.records).sum();
        if behind == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the history sink caught up within {within:?} ({behind} record(s) behind)"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_written_while_mongodb_is_down_arrives_once_it_is_back_exactly_once() {
    let name = "history_written_while_mongodb_is_down_arrives_once_it_is_back_exactly_once";
    if !redis::available(name) {
        return;
    }
    let Some(mut mongo) = mongo::server_or_skip().await else {
        return;
    };
    let infra = support::infrastructure();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("threds.toml");
    // Short server selection: a write while MongoDB is down fails fast and is tried again.
    std::fs::write(
        &config,
        "[engine]\nlease_ms = 3000\n\n[bus]\nsession_timeout_ms = 6000\n\n\
         [documents.mongodb]\nserver_selection_timeout_ms = 500\nmax_pool_size = 2\n",
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let args = ["--config", config.as_str(), "--patterns", "config/patterns"];
    let env = |node: &str| {
        let mut env = infra.env(node);
        env.retain(|(k, _)| *k != "THREDS_DOCUMENTS");
        env.push(("THREDS_DOCUMENTS", "mongodb".to_owned()));
        env.push(("THREDS_MONGODB_URI", mongo.uri()));
        env
    };
    let (engine_env, persistence_env) = (env("engine-1"), env("persistence-1"));
    let (_engine, _persistence): (Process, Process) = std::thread::scope(|s| {
        let engine = s.spawn(|| support::threds().start("engine", &args, &engine_env));
        let persistence =
            s.spawn(|| support::threds().start("persistence", &args, &persistence_env));
        (
            engine.join().unwrap().unwrap(),
            persistence.join().unwrap().unwrap(),
        )
    });
    let bus = Arc::new(KafkaBus::new(infra.kafka_config()).unwrap());
    // Alice's messages reach the session node holding her connection: a stand-in for one.
    let mut alice = infra.listen("inspector", &["alice"]).await.unwrap().reader;
    while alice
        .poll(1, Duration::from_millis(100))
        .await
        .unwrap()
        .assigned
        .is_empty()
    {}

    // Before, during and after the outage, at one steady rate.
    let mut produced = produce(&bus, 0, Instant::now() + CALM).await;
    let down_at = now_ms();
    mongo.kill();
    let during = produce(&bus, produced.len() as u64, Instant::now() + OUTAGE).await;
    let up_at = now_ms();
    produced.extend(during.iter().cloned());
    mongo.restart().await.unwrap();
    let after = produce(&bus, produced.len() as u64, Instant::now() + CALM).await;
    produced.extend(after);

    // Every event was answered, and those of the outage while MongoDB was still down.
    let answered = messages(&mut alice, produced.len()).await;
    let missing: Vec<&String> = produced
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !answered.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "unanswered events: {missing:?}");
    let answered_during = during.iter().filter(|(id, _)| answered[id] < up_at).count();
    let rate = |count: usize, ms: i64| count as f64 * 1000.0 / ms as f64;
    let before_rate = rate(
        answered.values().filter(|t| **t < down_at).count(),
        CALM.as_millis() as i64,
    );
    let during_rate = rate(
        answered
            .values()
            .filter(|t| **t >= down_at && **t < up_at)
            .count(),
        up_at - down_at,
    );
    println!(
        "engine rate, messages appended per second: {before_rate:.1} before the outage, \
         {during_rate:.1} while MongoDB was down ({} events produced at {RATE}/s)",
        produced.len()
    );
    // The engine never waits for MongoDB: what was produced during the outage (bar its last
    // 2 s, still in flight) was answered before MongoDB came back.
    let settled = during.iter().filter(|(_, at)| *at < up_at - 2_000).count();
    assert!(
        answered_during >= settled,
        "{answered_during} of the outage's {} events answered while MongoDB was down, \
         expected at least {settled}",
        during.len()
    );

    // Then the sink catches up, and everything is stored exactly once.
    sink_caught_up(&bus, Duration::from_secs(120)).await;
    let docs = MongoDocuments::connect(&mongo.config("threds"))
        .await
        .unwrap();
    let events = all(&docs, EVENTS).await;
    let logs = all(&docs, THRED_LOG).await;
    let ids: HashSet<&str> = produced.iter().map(|(id, _)| id.as_str()).collect();
    // Per produced event: its inbound record, the message it caused, its log records.
    let mut inbound: BTreeMap<&str, usize> = BTreeMap::new();
    let mut outbound = 0usize;
    for record in &events {
        let event_id = record["eventId"].as_str().unwrap_or_default();
        if ids.contains(event_id) && record.get("to").is_none() {
            *inbound.entry(event_id).or_default() += 1;
        }
        if record["to"] == json!(["alice"]) {
            outbound += 1;
        }
    }
    let mut logged: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &logs {
        let event_id = record["eventId"].as_str().unwrap_or_default();
        if ids.contains(event_id) {
            *logged.entry(event_id).or_default() += 1;
        }
    }
    println!(
        "stored after the outage: {} event records ({outbound} messages), {} thred log records, \
         for {} events",
        events.len(),
        logs.len(),
        produced.len()
    );
    let not_once: Vec<_> = ids
        .iter()
        .filter(|id| inbound.get(*id) != Some(&1) || logged.get(*id) != Some(&1))
        .map(|id| (id, inbound.get(id), logged.get(id)))
        .collect();
    assert!(
        not_once.is_empty(),
        "events whose inbound record or log record is not stored exactly once \
         (id, inbound, log): {not_once:?}"
    );
    assert_eq!(outbound, produced.len(), "one message record per event");
}
