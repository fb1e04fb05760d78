//! End-to-end tests of the distributed deployment: separate `threds engine`, `threds session` and
//! `threds persistence` processes on a real Kafka-protocol broker (librdkafka's mock cluster,
//! hosted in the test process) and a real `redis-server`.
//!
//! Needs `redis-server` (scripts/install/redis.sh): without it the tests print SKIPPED, unless
//! `THREDS_REQUIRE_SERVICES=1` (set by `scripts/test`), where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::TOPOLOGY;
use threds_runtime::bus::kafka::KafkaBus;
use threds_runtime::bus::Bus;
use threds_runtime::store::redis::{Config as RedisConfig, RedisStore};
use threds_runtime::store::Threds;
use threds_testkit::client::Client;
use threds_testkit::deployment::{config_file, Broker, Infrastructure};
use threds_testkit::rig::Process;
use threds_testkit::{redis, tansu};

/// One participant: a WebSocket client that starts `threds` echo threds and then advances them in
/// lock step, sending odd steps over its socket and even steps straight to Kafka (acks and messages
/// awaited up to a minute: a broker outage holds them).
async fn participant(
    server_addr: String,
    token: String,
    me: String,
    threds: usize,
    steps: usize,
    kafka: Arc<KafkaBus>,
    delivered: Arc<AtomicUsize>,
) -> (Vec<String>, Vec<Value>) {
    let mut client = Client::connect(&server_addr, &token).await.unwrap();
    let mut ids = Vec::new();
    for t in 0..threds {
        let title = format!("{me}-t{t}");
        client
            .send_within(json!({"id": format!("{title}-1"), "type": "org.wt.echo",
                "data": {"content": {"values": {"echoTo": [me], "echoTitle": title, "echoContent": 1}}}}), Duration::from_secs(60))
            .await.unwrap();
    }
    let mut seen = Vec::new();
    for t in 0..threds {
        let m = client
            .message_within(&format!("{me}-t{t} 1"), Duration::from_secs(60))
            .await
            .unwrap();
        ids.push(m["event"]["thredId"].as_str().unwrap().to_string());
        seen.push(m);
        delivered.fetch_add(1, Ordering::SeqCst);
    }
    for step in 2..=steps {
        for (t, thred) in ids.iter().enumerate() {
            let title = format!("{me}-t{t}");
            let event = json!({"id": format!("{title}-{step}"), "type": "org.wt.echo", "thredId": thred,
                "data": {"content": {"values": {"echoTo": [me], "echoTitle": title, "echoContent": step}}}});
            if step % 2 == 1 {
                client
                    .send_within(event, Duration::from_secs(60))
                    .await
                    .unwrap();
            } else {
                let mut event = event;
                event["source"] = json!({"id": me});
                kafka
                    .append(
                        TOPOLOGY.events(),
                        None,
                        Some(thred),
                        serde_json::to_vec(&event).unwrap(),
                        Vec::new(),
                    )
                    .await
                    .expect("produce to the events topic");
            }
        }
        for t in 0..threds {
            let m = client
                .message_within(&format!("{me}-t{t} {step}"), Duration::from_secs(60))
                .await
                .unwrap();
            seen.push(m);
            delivered.fetch_add(1, Ordering::SeqCst);
        }
    }
    // Anything still arriving now is a duplicate.
    seen.extend(
        client
            .drain(Duration::from_secs(3))
            .await
            .into_iter()
            .map(|f| f["message"].clone()),
    );
    (ids, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_one_killed_mid_stream_lose_and_duplicate_nothing() {
    if !redis::available("two_engines_one_killed_mid_stream_lose_and_duplicate_nothing") {
        return;
    }
    one_engine_killed_mid_stream(support::infrastructure()).await;
}

/// The same on a real broker (tansu), with the shipped consumer settings (dynamic membership,
/// range assignment: every rebalance revokes and regains the survivor's partitions).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_real_broker_two_engines_one_killed_mid_stream_lose_and_duplicate_nothing() {
    let name = "on_a_real_broker_two_engines_one_killed_mid_stream_lose_and_duplicate_nothing";
    if !redis::available(name) || !tansu::available(name) {
        return;
    }
    one_engine_killed_mid_stream(Infrastructure::on_tansu(support::PARTITIONS).unwrap()).await;
}

/// A running [`participant`]: its threds and the messages it got, once done.
type Participant = tokio::task::JoinHandle<(Vec<String>, Vec<Value>)>;

/// Waits for the participants' tasks; asserts the `total` messages they expected each arrived
/// exactly once; answers their threds.
async fn delivered_exactly_once(tasks: Vec<Participant>, total: usize) -> Vec<String> {
    let mut all_ids = Vec::new();
    let mut titles: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks {
        let (ids, seen) = task.await.unwrap();
        all_ids.extend(ids);
        for m in seen {
            let title = m["event"]["data"]["title"].as_str().unwrap().to_string();
            *titles.entry(title).or_default() += 1;
        }
    }
    let duplicates: Vec<_> = titles.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "messages delivered more than once: {duplicates:?}"
    );
    assert_eq!(
        titles.len(),
        total,
        "every expected message arrives exactly once"
    );
    all_ids
}

/// Starts `participants` participants on `session`, each advancing `threds` echo threds through
/// `steps` steps; answers their tasks and the count of messages delivered so far.
fn start_participants(
    session: &Process,
    producer: &Arc<KafkaBus>,
    (participants, threds, steps): (usize, usize, usize),
) -> (Vec<Participant>, Arc<AtomicUsize>) {
    let delivered = Arc::new(AtomicUsize::new(0));
    let tasks = (0..participants)
        .map(|p| {
            let me = format!("p{p}");
            tokio::spawn(participant(
                session.addr().to_owned(),
                session.token(&me, &[]).unwrap(),
                me,
                threds,
                steps,
                producer.clone(),
                delivered.clone(),
            ))
        })
        .collect();
    (tasks, delivered)
}

/// The broker unreachable for 5 s mid-stream, its data kept (librdkafka's mock cluster; tansu
/// here stores in memory and comes back empty): an engine, a session and a persistence process
/// carry on once it is back, and every message arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_down_for_5_s_mid_stream_loses_and_duplicates_nothing() {
    if !redis::available("a_broker_down_for_5_s_mid_stream_loses_and_duplicates_nothing") {
        return;
    }
    let infra = support::infrastructure();
    let Broker::Mock(kafka) = infra.broker() else {
        unreachable!("support::infrastructure runs the mock cluster")
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "").unwrap();
    let config = config.to_str().unwrap();
    let args = ["--config", config, "--patterns", "config/patterns"];
    let engine = support::node(&infra, "engine", "engine-1", &args);
    let session = support::node(&infra, "session", "session-1", &args);
    let persistence = support::node(&infra, "persistence", "persistence-1", &args);
    let producer = Arc::new(KafkaBus::new(infra.kafka_config()).unwrap());
    let shape = (20usize, 5usize, 6usize);
    let total = shape.0 * shape.1 * shape.2;
    let (tasks, delivered) = start_participants(&session, &producer, shape);
    while delivered.load(Ordering::SeqCst) < total / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at = delivered.load(Ordering::SeqCst);
    kafka.set_broker(1, false).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = delivered.load(Ordering::SeqCst);
    kafka.set_broker(1, true).unwrap();
    eprintln!("broker down after {at} messages, back after {during}");
    delivered_exactly_once(tasks, total).await;
    drop((engine, session, persistence));
}

/// Two engines, a session and a persistence process on `infra`; 50 participants advance 10 echo
/// threds each through 10 steps while one engine is killed: every message arrives exactly once,
/// both engines owned partitions, and the survivor took the killed one's over within 30 s.
async fn one_engine_killed_mid_stream(infra: Infrastructure) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "").unwrap();
    let config = config.to_str().unwrap();
    let args = ["--config", config, "--patterns", "config/patterns"];
    let engine_a = support::node(&infra, "engine", "engine-a", &args);
    let mut engine_b = support::node(&infra, "engine", "engine-b", &args);
    let session = support::node(&infra, "session", "session-1", &args);
    let persistence = support::node(&infra, "persistence", "persistence-1", &args);

    let producer = Arc::new(KafkaBus::new(infra.kafka_config()).unwrap());
    let shape = (50usize, 10usize, 10usize);
    let (steps, total) = (shape.2, shape.0 * shape.1 * shape.2);
    let (tasks, delivered) = start_participants(&session, &producer, shape);
    // Kill one engine once about a third of the messages are through.
    while delivered.load(Ordering::SeqCst) < total / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leases: BTreeMap<u32, (String, u64)> = (0..support::PARTITIONS)
        .filter_map(|p| Some((p, support::lease_of(infra.redis(), p)?)))
        .collect();
    let owners: std::collections::BTreeSet<&String> = leases.values().map(|(o, _)| o).collect();
    assert!(
        owners.contains(&"engine-a".to_owned()) && owners.contains(&"engine-b".to_owned()),
        "both engines own partitions before the kill: {owners:?}"
    );
    eprintln!(
        "killing engine-b after {} messages",
        delivered.load(Ordering::SeqCst)
    );
    engine_b.kill();
    // The longest time without a delivery from now on: the participants advance in lock step,
    // so they wait for the killed engine's partitions until another engine takes them over.
    let stalled = {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            let (mut last, mut since, mut longest) = (0, Instant::now(), Duration::ZERO);
            while delivered.load(Ordering::SeqCst) < total {
                let now = delivered.load(Ordering::SeqCst);
                if now != last {
                    (last, since) = (now, Instant::now());
                }
                longest = longest.max(since.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            longest
        })
    };

    let all_ids = delivered_exactly_once(tasks, total).await;

    // Every thred is where its ten events put it, written ten times, each under a lease.
    let store = RedisStore::new(RedisConfig::new(vec![infra.redis().url()])).unwrap();
    let stored = store.load(&all_ids).await.unwrap();
    let mut tokens: HashMap<u64, usize> = HashMap::new();
    for (id, s) in all_ids.iter().zip(&stored) {
        let s = s
            .as_ref()
            .unwrap_or_else(|| panic!("thred {id} is missing"));
        let times = s.state.thred_context.scope.get("echoTimes");
        assert_eq!(times, Some(&json!(steps)), "thred {id}: {:?}", s.state);
        assert_eq!(
            s.version, steps as u64,
            "thred {id} was written {} times",
            s.version
        );
        assert!(s.token > 0, "thred {id} was written without a lease");
        *tokens.entry(s.token).or_default() += 1;
    }
    eprintln!("final writes per lease token: {tokens:?}");
    for (p, (owner, token)) in leases.iter().filter(|(_, (o, _))| o == "engine-b") {
        let now = support::lease_of(infra.redis(), *p);
        assert!(
            matches!(&now, Some((o, t)) if o == "engine-a" && t > token),
            "partition {p}, held by {owner} under token {token} before the kill, is taken over \
             by engine-a under a newer token: {now:?}"
        );
    }
    let takeover = stalled.await.unwrap();
    eprintln!("longest time without a delivery after the kill (the takeover): {takeover:?}");
    assert!(
        takeover <= Duration::from_secs(30),
        "the killed engine's partitions were taken over within 30 s ({takeover:?})"
    );
    drop((engine_a, session, persistence));
}

/// `watchThreds` on a deployment of two engines: the watcher hears of the threds every engine
/// steps, not only those of the engine that took its request (the registration is announced on
/// the control topic).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watcher_hears_of_threds_stepped_on_every_engine() {
    if !redis::available("a_watcher_hears_of_threds_stepped_on_every_engine") {
        return;
    }
    let infra = support::infrastructure();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "").unwrap();
    let config = config.to_str().unwrap();
    let args = ["--config", config, "--patterns", "config/patterns"];
    let engine_a = support::node(&infra, "engine", "engine-a", &args);
    let engine_b = support::node(&infra, "engine", "engine-b", &args);
    let session = support::node(&infra, "session", "session-1", &args);
    // Both engines hold partitions before the watch starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let owners: std::collections::BTreeSet<String> = (0..support::PARTITIONS)
            .filter_map(|p| support::owner_of(infra.redis(), p))
            .collect();
        if owners.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both engines hold partitions: {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The session node serves the console; only `threds dev` mints its tokens.
    let page = threds_testkit::http::get(session.addr(), "/console").unwrap();
    assert_eq!(page.status, 200);
    let minted = threds_testkit::http::post_json(
        session.addr(),
        "/console/api/dev/token",
        None,
        &json!({"participant": "root"}),
    )
    .unwrap();
    assert_eq!(minted.status, 404, "{}", minted.body);
    let mut admin = session.connect("root", &["admin"]).await.unwrap();
    let watch = support::control(
        "watch-1",
        "org.wt.control.sysControl",
        json!({"op": "watchThreds"}),
    );
    admin.send(watch).await.unwrap();
    let answer = support::reply(&mut admin, "watch-1").await;
    assert_eq!(
        answer["data"]["content"]["values"]["status"], "OK",
        "{answer}"
    );
    // New threds are keyed by their sender: 24 senders spread them over every partition.
    let mut started = std::collections::BTreeSet::new();
    for n in 0..24 {
        let me = format!("p{n}");
        let mut client = session.connect(&me, &[]).await.unwrap();
        client
            .send(json!({"id": format!("{me}-1"), "type": "org.wt.echo",
                "data": {"content": {"values": {"echoTo": [me], "echoTitle": me, "echoContent": 1}}}}))
            .await
            .unwrap();
        let m = client
            .message_within(&format!("{me} 1"), Duration::from_secs(30))
            .await
            .unwrap();
        started.insert(m["event"]["thredId"].as_str().unwrap().to_string());
    }
    let mut heard = std::collections::BTreeSet::new();
    while !started.is_subset(&heard) {
        let frame = admin
            .frame(
                |f| f["message"]["event"]["re"] == "watch-1",
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|e| {
                panic!("the watcher heard of {heard:?} but not all of {started:?}: {e}")
            });
        for t in frame["message"]["event"]["data"]["content"]["values"]["threds"]
            .as_array()
            .unwrap()
        {
            heard.insert(t["id"].as_str().unwrap().to_string());
        }
    }
    drop((engine_a, engine_b, session));
}
