//! Recovery of the distributed deployment: poison events and restarts with timers pending.
//!
//! Separate `threds engine`, `threds session` and `threds persistence` processes on librdkafka's
//! mock cluster (hosted in the test process) and a real `redis-server`. Needs `redis-server`
//! (scripts/install/redis.sh): without it the tests print SKIPPED, unless
//! `THREDS_REQUIRE_SERVICES=1` (set by `scripts/test`), where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use support::{now_ms, owner_of, PARTITIONS, TOPOLOGY};
use threds_runtime::bus::kafka::KafkaBus;
use threds_runtime::bus::{Bus, Record};
use threds_runtime::store::redis::{Config as RedisConfig, RedisStore};
use threds_runtime::store::Threds;
use threds_runtime::topology::headers;
use threds_testkit::client::Client;
use threds_testkit::deployment::{config_file, Infrastructure};
use threds_testkit::redis::{self, RedisServer};
use threds_testkit::rig::Process;

/// The tests of this file run one at a time: the restart test measures timings.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The engine, session and persistence processes of one deployment.
struct Deployment {
    engine: Process,
    session: Process,
    persistence: Process,
}

impl Deployment {
    /// Starts the three processes (node names `engine-1`, `session-1`, `persistence-1`) side by
    /// side and waits until each is ready.
    fn start(infra: &Infrastructure, args: &[&str]) -> Deployment {
        std::thread::scope(|s| {
            let begun = Instant::now();
            let spawn = |command: &'static str, node: &'static str| {
                s.spawn(move || {
                    let server = support::node(infra, command, node, args);
                    eprintln!("{node} ready after {:?}", begun.elapsed());
                    server
                })
            };
            let engine = spawn("engine", "engine-1");
            let persistence = spawn("persistence", "persistence-1");
            let session = spawn("session", "session-1");
            Deployment {
                engine: engine.join().unwrap(),
                session: session.join().unwrap(),
                persistence: persistence.join().unwrap(),
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A poison event.

/// Attempts per record before it is dead-lettered (not the default of 3, to see the setting used).
const MAX_ATTEMPTS: u32 = 4;

/// An agent the resolver names but whose topic (`TOPOLOGY.agent(REPORTS)`) this deployment
/// never made: every reply to it fails to publish.
const REPORTS: &str = "org.wt.reports";

/// A deployment whose resolver names the reports agent, with [`MAX_ATTEMPTS`] attempts per record.
struct ReportsSetup {
    // Dropped in this order: the processes before the infrastructure they use.
    deployment: Deployment,
    bus: KafkaBus,
    infra: Infrastructure,
    _dir: tempfile::TempDir,
}

impl ReportsSetup {
    /// Test `name`'s turn, its setup, and alice connected to it; `None` (the test skips) without
    /// `redis-server`.
    async fn begin(
        name: &str,
    ) -> Option<(tokio::sync::MutexGuard<'static, ()>, ReportsSetup, Client)> {
        if !redis::available(name) {
            return None;
        }
        let serial = SERIAL.lock().await;
        let setup = ReportsSetup::start();
        let alice = setup
            .deployment
            .session
            .connect("alice", &[])
            .await
            .unwrap();
        Some((serial, setup, alice))
    }

    fn start() -> ReportsSetup {
        let infra = support::infrastructure();
        let dir = tempfile::tempdir().unwrap();
        let config = config_file(dir.path(), &format!("max_attempts = {MAX_ATTEMPTS}")).unwrap();
        let config = config.to_string_lossy().into_owned();
        let resolver = dir.path().join("resolver.json");
        std::fs::write(
            &resolver,
            json!({"agents": [
                {"name": "Persistence Agent", "nodeType": "org.wt.persistence",
                 "nodeId": "org.wt.persistence1", "configName": "persistence_agent"},
                {"name": "Reports Agent", "nodeType": REPORTS}
            ]})
            .to_string(),
        )
        .unwrap();
        let resolver = resolver.to_string_lossy().into_owned();
        let args = [
            "--config",
            config.as_str(),
            "--patterns",
            "config/patterns",
            "--resolver",
            resolver.as_str(),
        ];
        let deployment = Deployment::start(&infra, &args);
        let bus = KafkaBus::new(infra.kafka_config()).unwrap();
        ReportsSetup {
            deployment,
            bus,
            infra,
            _dir: dir,
        }
    }
}

/// Reads `n` records of `topic` from its beginning, as a member of a fresh consumer group.
async fn read_topic(bus: &KafkaBus, topic: &str, n: usize) -> Vec<Record> {
    let group = format!("inspect-{}", now_ms());
    let mut consumer = bus.join(&group, &[topic], "inspector").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut records = Vec::new();
    while records.len() < n {
        assert!(
            Instant::now() < deadline,
            "{topic}: {} of {n} record(s) within 30 s: {records:?}",
            records.len()
        );
        records.extend(
            consumer
                .poll(n, Duration::from_millis(200))
                .await
                .unwrap()
                .records,
        );
    }
    consumer.leave().await.unwrap();
    records
}

fn header<'r>(record: &'r Record, name: &str) -> Option<&'r str> {
    record
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An echo event from the reports agent to `alice`, as that agent would produce it.
fn echo(id: &str, title: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": id, "type": "org.wt.echo", "source": {"id": REPORTS},
        "data": {"content": {"values": {"echoTo": ["alice"], "echoTitle": title, "echoContent": 1}}}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_event_is_dead_lettered_after_its_attempts_and_its_partition_keeps_flowing() {
    let name = "a_poison_event_is_dead_lettered_after_its_attempts_and_its_partition_keeps_flowing";
    let Some((_serial, setup, mut alice)) = ReportsSetup::begin(name).await else {
        return;
    };
    let deployment = &setup.deployment;
    let bus = &setup.bus;

    // The poison: a valid userControl request from the reports agent. The admin service answers
    // it, and publishing the answer to the agent's topic fails, every time.
    let poison = serde_json::to_vec(&json!({"id": "poison-1",
        "type": "org.wt.control.userControl", "thredId": "SYSTEM", "source": {"id": REPORTS},
        "data": {"content": {"values": {"op": "getThreds"}}}}))
    .unwrap();
    let sent = Instant::now();
    let at = bus
        .append(
            TOPOLOGY.events(),
            None,
            Some(REPORTS),
            poison.clone(),
            Vec::new(),
        )
        .await
        .unwrap();
    // Queued behind it, with the same key: the same partition.
    let behind = bus
        .append(
            TOPOLOGY.events(),
            None,
            Some(REPORTS),
            echo("after-1", "behind the poison"),
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(behind.partition, at.partition);
    assert!(behind.offset > at.offset);
    eprintln!("poison at {at:?}, next event at {behind:?}");

    let m = alice
        .message_within("behind the poison 1", Duration::from_secs(30))
        .await
        .unwrap();
    eprintln!(
        "the event behind the poison was delivered {:?} after the poison was sent",
        sent.elapsed()
    );
    assert_eq!(m["to"], json!(["alice"]), "{m}");

    // The dead letter: the original record with its error and origin.
    let dead = read_topic(bus, &TOPOLOGY.dead_letter(TOPOLOGY.events()), 1).await;
    let letter = &dead[0];
    eprintln!(
        "dead letter: key {:?}, headers {:?}",
        letter.key, letter.headers
    );
    assert_eq!(letter.payload, poison, "the original record");
    assert_eq!(letter.key.as_deref(), Some(REPORTS));
    let error = header(letter, headers::ERROR).expect("an error header");
    assert!(
        error.contains(&TOPOLOGY.agent(REPORTS)) && error.contains("does not exist"),
        "the error says why: {error}"
    );
    assert_eq!(
        header(letter, headers::ORIGIN),
        Some(format!("{}/{}/{}", TOPOLOGY.events(), at.partition, at.offset).as_str())
    );

    // It was tried MAX_ATTEMPTS times (the setting is used), and dead-lettered once (the
    // dead-letter topic holds one record, checked again below).
    assert_eq!(
        header(letter, headers::ATTEMPTS),
        Some(MAX_ATTEMPTS.to_string().as_str()),
        "tried max_attempts times"
    );
    assert_eq!(dead.len(), 1, "dead-lettered once");
    // What the engine logged up to the dead letter (code R3001) is about the poison; what
    // follows must not fail.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut logged = Vec::new();
    while Instant::now() < deadline && !logged.iter().any(|l: &String| l.contains("R3001")) {
        logged.extend(deployment.engine.take_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // And the partition still flows for events sent after the dead letter.
    let later = bus
        .append(
            TOPOLOGY.events(),
            None,
            Some(REPORTS),
            echo("after-2", "after the dead letter"),
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(later.partition, at.partition);
    let sent = Instant::now();
    alice
        .message_within("after the dead letter 1", Duration::from_secs(30))
        .await
        .unwrap();
    eprintln!(
        "an event sent after the dead letter was delivered in {:?}",
        sent.elapsed()
    );
    let more = deployment.engine.take_log();
    assert!(
        !more.iter().any(|l| l.contains("record failed")),
        "nothing else failed: {more:?}"
    );
    assert_eq!(
        read_topic(bus, &TOPOLOGY.dead_letter(TOPOLOGY.events()), 1)
            .await
            .len(),
        1,
        "one dead letter"
    );
}

/// Reads `topic` from its beginning for `window`, as a member of a fresh consumer group.
async fn read_topic_for(bus: &KafkaBus, topic: &str, window: Duration) -> Vec<Record> {
    let group = format!("inspect-{}", now_ms());
    let mut consumer = bus.join(&group, &[topic], "inspector").await.unwrap();
    let until = Instant::now() + window;
    let mut records = Vec::new();
    while Instant::now() < until {
        records.extend(
            consumer
                .poll(100, Duration::from_millis(200))
                .await
                .unwrap()
                .records,
        );
    }
    consumer.leave().await.unwrap();
    records
}

/// An echo event from `alice` on her thred `thred` (or a new one), echoed to `to`.
fn alice_echo(id: &str, thred: Option<&str>, to: &[&str], title: &str) -> Vec<u8> {
    let mut event = json!({"id": id, "type": "org.wt.echo", "source": {"id": "alice"},
        "data": {"content": {"values": {"echoTo": to, "echoTitle": title, "echoContent": 1}}}});
    if let Some(t) = thred {
        event["thredId"] = json!(t);
    }
    serde_json::to_vec(&event).unwrap()
}

/// Not a poison event: the step commits, and only one of its messages cannot be published. The
/// record is applied once (not retried on top of its own commit, not dead-lettered), the messages
/// that can go out do, and the other stays in the outbox for the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_with_an_unpublishable_message_is_applied_once_and_its_other_messages_go_out() {
    let name = "a_step_with_an_unpublishable_message_is_applied_once_and_its_other_messages_go_out";
    let Some((_serial, setup, mut alice)) = ReportsSetup::begin(name).await else {
        return;
    };
    let deployment = &setup.deployment;
    let bus = &setup.bus;
    let append = |payload: Vec<u8>, key: String| async move {
        bus.append(TOPOLOGY.events(), None, Some(&key), payload, Vec::new())
            .await
            .unwrap()
    };

    append(alice_echo("e-1", None, &["alice"], "start"), "alice".into()).await;
    let m = alice
        .message_within("start 1", Duration::from_secs(30))
        .await
        .unwrap();
    let thred = m["event"]["thredId"].as_str().unwrap().to_string();

    // The second step echoes to alice and to the reports agent, whose topic does not exist.
    let sent = Instant::now();
    let at = append(
        alice_echo("e-2", Some(&thred), &["alice", REPORTS], "both"),
        thred.clone(),
    )
    .await;
    alice
        .message_within("both 2", Duration::from_secs(30))
        .await
        .unwrap();
    eprintln!(
        "alice's copy of the step at {at:?} arrived after {:?}",
        sent.elapsed()
    );
    append(
        alice_echo("e-3", Some(&thred), &["alice"], "after"),
        thred.clone(),
    )
    .await;
    alice
        .message_within("after 3", Duration::from_secs(30))
        .await
        .unwrap();

    // Three events, three changes of the thred: the second was applied once.
    let store = RedisStore::new(RedisConfig::new(vec![setup.infra.redis().url()])).unwrap();
    let stored = store.load(std::slice::from_ref(&thred)).await.unwrap();
    let stored = stored[0].as_ref().expect("the thred");
    assert_eq!(stored.version, 3, "written once per event");
    assert_eq!(
        stored.state.thred_context.scope.get("echoTimes"),
        Some(&json!(3))
    );
    // The reports agent's message is kept for the relay, not lost and not dead-lettered.
    let pending = store.outbox(i64::MAX, 100).await.unwrap();
    let topics: Vec<&str> = pending.iter().map(|p| p.record.topic.as_str()).collect();
    assert_eq!(topics, [TOPOLOGY.agent(REPORTS)], "{pending:?}");
    let dead = read_topic_for(
        bus,
        &TOPOLOGY.dead_letter(TOPOLOGY.events()),
        Duration::from_secs(3),
    )
    .await;
    assert!(dead.is_empty(), "nothing was dead-lettered: {dead:?}");
    let log = deployment.engine.take_log();
    assert!(
        !log.iter().any(|l| l.contains("record failed")),
        "no record failed: {log:?}"
    );
    // Alice got each message once, even after the relay had its turns.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let extra = alice.drain(Duration::from_secs(1)).await;
    assert!(extra.is_empty(), "no duplicates: {extra:?}");
}

// ---------------------------------------------------------------------------------------------
// 2. A restart of every process with timers pending.

/// The expiry interval: long enough for a restart of every process to finish before it. An engine
/// rejoining the consumer group of librdkafka's mock cluster takes 3–5 s (the mock waits
/// `session_timeout_ms` − 1 s for the members of a non-empty group) and now and then twice that.
const INTERVAL_MS: i64 = 15_000;
/// How far from its due time an expiry message may arrive.
const ON_TIME_MS: i64 = 1_000;
/// Participants per round, and threds each starts.
const PARTICIPANTS: usize = 4;
const THREDS_EACH: usize = 5;

/// A pattern that waits `INTERVAL_MS` in `waiting` and, on expiry, replays its start event into
/// `expired`, which tells the participant and terminates.
fn expiry_pattern() -> Value {
    json!({
        "name": "Expiry Test",
        "id": "expiry-test",
        "reactions": [
            {
                "name": "start",
                "condition": {
                    "type": "filter",
                    "xpr": "$event.type = 'test.expiry.start'",
                    "onTrue": { "xpr": "$setLocal('start', $event)" },
                    "transform": { "eventDataTemplate": {
                        "title": "$xpr( 'started ' & $valueNamed('tag') )" } },
                    "publish": { "to": ["$xpr( $event.source.id )"] }
                }
            },
            {
                "name": "waiting",
                "condition": {
                    "type": "filter",
                    "xpr": "$event.type = 'test.expiry.stop'",
                    "transition": { "name": "$terminate" }
                },
                "expiry": { "interval": INTERVAL_MS,
                    "transition": { "name": "expired", "input": "local", "localName": "start" } }
            },
            {
                "name": "expired",
                "condition": {
                    "type": "filter",
                    "xpr": "$event.type = 'test.expiry.start'",
                    "transform": { "eventDataTemplate": {
                        "title": "$xpr( 'expired ' & $valueNamed('tag') )" } },
                    "publish": { "to": ["$thred"] },
                    "transition": { "name": "$terminate" }
                }
            }
        ]
    })
}

/// One pending expiry.
#[derive(Debug, Clone)]
struct Pending {
    thred: String,
    /// When its thred entered `waiting` (the engine's step time), epoch ms.
    started: i64,
}

/// Waits for the `expired` messages of `tags` on `client` until `deadline` (epoch ms), then keeps
/// listening for `linger`; answers every `expired` message with its arrival time (epoch ms).
async fn expiries(
    mut client: Client,
    tags: Vec<String>,
    deadline: i64,
    linger: Duration,
) -> Vec<(String, i64, Value)> {
    let is_expiry = |f: &Value| {
        f["message"]["event"]["data"]["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("expired "))
    };
    let mut got = Vec::new();
    while got.len() < tags.len() {
        let left = u64::try_from(deadline - now_ms()).unwrap_or(0).max(1);
        let f = client
            .frame(is_expiry, Duration::from_millis(left))
            .await
            .unwrap();
        let at = now_ms();
        let title = f["message"]["event"]["data"]["title"].as_str().unwrap();
        got.push((
            title["expired ".len()..].to_string(),
            at,
            f["message"].clone(),
        ));
    }
    // Anything arriving now is a duplicate.
    for f in client.drain(linger).await {
        if is_expiry(&f) {
            let title = f["message"]["event"]["data"]["title"].as_str().unwrap();
            got.push((
                title["expired ".len()..].to_string(),
                now_ms(),
                f["message"].clone(),
            ));
        }
    }
    got
}

/// How a round stops the processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM to each.
    Graceful,
    /// SIGKILL to the engine (a crash), SIGTERM to the others.
    CrashEngine,
}

/// Starts `PARTICIPANTS * THREDS_EACH` threds, stops every process while their timers are
/// pending, starts them again, reconnects, and checks every expiry arrives once and on time.
async fn round(
    round: &str,
    stop: Stop,
    deployment: Deployment,
    start: impl Fn() -> Deployment,
    store: &RedisStore,
) -> Deployment {
    let names: Vec<String> = (0..PARTICIPANTS).map(|p| format!("{round}-p{p}")).collect();
    let mut clients = Vec::new();
    for name in &names {
        clients.push(deployment.session.connect(name, &[]).await.unwrap());
    }
    for (client, name) in clients.iter_mut().zip(&names) {
        for i in 0..THREDS_EACH {
            let tag = format!("{name}-{i}");
            client
                .send(
                    json!({"id": format!("start-{tag}"), "type": "test.expiry.start",
                    "data": {"content": {"values": {"tag": tag}}}}),
                )
                .await
                .unwrap();
        }
    }
    let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
    let mut latency = Vec::new();
    for (client, name) in clients.iter_mut().zip(&names) {
        for i in 0..THREDS_EACH {
            let tag = format!("{name}-{i}");
            let m = client
                .message_within(&format!("started {tag}"), Duration::from_secs(30))
                .await
                .unwrap();
            latency.push(now_ms() - m["event"]["time"].as_i64().unwrap());
            pending.insert(
                tag,
                Pending {
                    thred: m["event"]["thredId"].as_str().unwrap().to_string(),
                    started: m["event"]["time"].as_i64().unwrap(),
                },
            );
        }
    }
    let first_due = pending.values().map(|p| p.started).min().unwrap() + INTERVAL_MS;
    let last_due = pending.values().map(|p| p.started).max().unwrap() + INTERVAL_MS;
    eprintln!(
        "[{round}] {} threds started (step to delivery: {} to {} ms); due from {} ms to {} ms from now",
        pending.len(),
        latency.iter().min().unwrap(),
        latency.iter().max().unwrap(),
        first_due - now_ms(),
        last_due - now_ms()
    );

    // Every process goes away while the timers are pending.
    let stopping = Instant::now();
    drop(clients);
    let Deployment {
        mut engine,
        mut session,
        mut persistence,
    } = deployment;
    // Side by side, as a host going down would.
    let (engine, session, persistence) = std::thread::scope(|s| {
        let engine = s.spawn(move || match stop {
            Stop::Graceful => Some(engine.stop().unwrap()),
            Stop::CrashEngine => {
                engine.kill();
                None
            }
        });
        let session = s.spawn(move || session.stop().unwrap());
        let persistence = s.spawn(move || persistence.stop().unwrap());
        (
            engine.join().unwrap(),
            session.join().unwrap(),
            persistence.join().unwrap(),
        )
    });
    eprintln!(
        "[{round}] engine {}, session {session}, persistence {persistence}",
        engine.map_or("killed (SIGKILL)".to_string(), |s| format!("{s}"))
    );
    for status in engine.iter().chain([&session, &persistence]) {
        assert!(
            status.success(),
            "a process stopped by SIGTERM exits cleanly: {status}"
        );
    }
    let stopped_at = now_ms();
    eprintln!(
        "[{round}] every process stopped in {:?}; first timer due in {} ms",
        stopping.elapsed(),
        first_due - stopped_at
    );
    assert!(
        stopped_at < first_due,
        "the processes were stopped before the timers were due"
    );
    // Nothing fires while nothing runs: the threds are still waiting.
    let ids: Vec<String> = pending.values().map(|p| p.thred.clone()).collect();
    let stored = store.load(&ids).await.unwrap();
    assert!(
        stored.iter().all(Option::is_some),
        "every thred is still pending while the deployment is down"
    );

    let restarting = Instant::now();
    let deployment = start();
    let mut clients = Vec::new();
    for name in &names {
        clients.push(deployment.session.connect(name, &[]).await.unwrap());
    }
    let reconnected = now_ms();
    eprintln!(
        "[{round}] restarted and reconnected in {:?}; first timer due in {} ms",
        restarting.elapsed(),
        first_due - reconnected
    );
    assert!(
        reconnected < first_due,
        "the restart ({:?}) must finish before the first timer is due ({} ms after it began); \
         raise INTERVAL_MS",
        restarting.elapsed(),
        first_due - (reconnected - i64::try_from(restarting.elapsed().as_millis()).unwrap())
    );

    let deadline = last_due + 10_000;
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(&names)
        .map(|(client, name)| {
            let tags: Vec<String> = (0..THREDS_EACH).map(|i| format!("{name}-{i}")).collect();
            tokio::spawn(expiries(client, tags, deadline, Duration::from_secs(3)))
        })
        .collect();
    let mut arrivals: HashMap<String, Vec<i64>> = HashMap::new();
    for task in tasks {
        for (tag, at, message) in task.await.unwrap() {
            let p = pending
                .get(&tag)
                .unwrap_or_else(|| panic!("an expiry for an unknown thred: {message}"));
            assert_eq!(message["event"]["thredId"], json!(p.thred), "{message}");
            arrivals.entry(tag).or_default().push(at);
        }
    }
    let mut deltas = Vec::new();
    for (tag, p) in &pending {
        let at = arrivals
            .get(tag)
            .unwrap_or_else(|| panic!("no expiry message for {tag}"));
        assert_eq!(at.len(), 1, "{tag}: expiry delivered {} times", at.len());
        deltas.push((tag.clone(), at[0] - (p.started + INTERVAL_MS)));
    }
    let (min, max) = (
        deltas.iter().map(|d| d.1).min().unwrap(),
        deltas.iter().map(|d| d.1).max().unwrap(),
    );
    eprintln!(
        "[{round}] {} expiries, each once; arrival - due: min {min} ms, max {max} ms; {deltas:?}",
        deltas.len()
    );
    let late: Vec<_> = deltas
        .iter()
        .filter(|(_, d)| d.abs() > ON_TIME_MS)
        .collect();
    assert!(
        late.is_empty(),
        "expiries off their due time by more than {ON_TIME_MS} ms: {late:?}"
    );
    // The expired threds terminated, their timers with them.
    assert!(
        store.load(&ids).await.unwrap().iter().all(Option::is_none),
        "every thred terminated"
    );
    deployment
}

/// Waits until both engines own partitions (their leases, in Redis), sending some traffic
/// through `session` meanwhile (it makes the engines take their partitions' leases).
async fn both_engines_own_partitions(redis: &RedisServer, session: &Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let owners: std::collections::BTreeSet<String> =
            (0..PARTITIONS).filter_map(|p| owner_of(redis, p)).collect();
        if owners.contains("engine-a") && owners.contains("engine-b") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "both engines own partitions: {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut c = session.connect("warmup", &[]).await.unwrap();
        for p in 0..8 {
            c.send(json!({"id": format!("w{p}-{}", now_ms()), "type": "org.wt.nothing"}))
                .await
                .unwrap();
        }
    }
}

/// `(partition, sender)`: a sender whose unbound events (and so their threds) land in each
/// partition.
fn one_sender_per_partition() -> Vec<(u32, String)> {
    let mut senders: Vec<(u32, String)> = Vec::new();
    for n in 0.. {
        let sender = format!("sender{n}");
        let p = threds_runtime::bus::partition_for(&sender, PARTITIONS);
        if senders.iter().all(|(q, _)| *q != p) {
            senders.push((p, sender));
        }
        if senders.len() == PARTITIONS as usize {
            break;
        }
    }
    senders
}

/// What a test of a whole deployment starts from: its turn, Redis, the mock cluster, and a
/// directory with the deployment's `threds.toml` (`config`).
struct Infra {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    infra: Infrastructure,
    _dir: tempfile::TempDir,
    config: String,
}

/// The [`Infra`] of test `name`, or `None` (the test skips) without `redis-server`.
async fn infra(name: &str) -> Option<Infra> {
    if !redis::available(name) {
        return None;
    }
    let serial = SERIAL.lock().await;
    let infra = support::infrastructure();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    Some(Infra {
        _serial: serial,
        infra,
        _dir: dir,
        config,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pending_timers_fire_once_and_on_time_across_a_restart_of_every_process() {
    let name = "pending_timers_fire_once_and_on_time_across_a_restart_of_every_process";
    let Some(infra) = infra(name).await else {
        return;
    };
    let config = &infra.config;
    let pattern_dir = support::pattern_dir(&[("expiry_test", expiry_pattern())]);
    let patterns = pattern_dir.path().to_string_lossy().into_owned();
    let args = ["--config", config.as_str(), "--patterns", patterns.as_str()];
    let start = || Deployment::start(&infra.infra, &args);
    let store = RedisStore::new(RedisConfig::new(vec![infra.infra.redis().url()])).unwrap();
    let deployment = start();
    let deployment = round("sigterm", Stop::Graceful, deployment, start, &store).await;
    let deployment = round("sigkill", Stop::CrashEngine, deployment, start, &store).await;
    drop(deployment);
}

// ---------------------------------------------------------------------------------------------
// 4. A pattern reload reaches every engine.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pattern_reload_sent_to_one_engine_reaches_every_engine() {
    let name = "a_pattern_reload_sent_to_one_engine_reaches_every_engine";
    let Some(infra) = infra(name).await else {
        return;
    };
    let (redis, config) = (infra.infra.redis(), &infra.config);
    let echo = |prefix: &str| {
        let mut p: Value =
            serde_json::from_str(include_str!("../config/patterns/echo.pattern.json")).unwrap();
        p["reactions"][0]["condition"]["transform"]["eventDataTemplate"]["title"] =
            json!(format!("$xpr( '{prefix} ' & $local('echoTimes') )"));
        p
    };
    // Each engine reads pattern files of its own: only the engine that handles the reload will
    // see the change on disk; the other can learn it only from the pattern registry.
    let dirs = [
        support::pattern_dir(&[("echo", echo("before"))]),
        support::pattern_dir(&[("echo", echo("before"))]),
    ];
    let dir_args: Vec<String> = dirs
        .iter()
        .map(|d| d.path().to_string_lossy().into_owned())
        .collect();
    let args_of = |dir: &str| {
        vec![
            "--config".to_string(),
            config.clone(),
            "--patterns".to_string(),
            dir.to_string(),
        ]
    };
    let (engines, session) = std::thread::scope(|s| {
        let spawn = |command: &'static str, node: &'static str, args: Vec<String>| {
            let infra = &infra.infra;
            s.spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                support::node(infra, command, node, &args)
            })
        };
        let a = spawn("engine", "engine-a", args_of(&dir_args[0]));
        let b = spawn("engine", "engine-b", args_of(&dir_args[1]));
        let session = spawn("session", "session-1", args_of(&dir_args[0]));
        (
            [a.join().unwrap(), b.join().unwrap()],
            session.join().unwrap(),
        )
    });
    both_engines_own_partitions(redis, &session).await;

    // One thred per partition (an unbound event's thred lives in the partition of its sender).
    let mut alice = session.connect("alice", &[]).await.unwrap();
    let senders = one_sender_per_partition();
    let mut threds = Vec::new();
    for (p, sender) in &senders {
        let mut client = session.connect(sender, &[]).await.unwrap();
        let values = json!({"echoTo": ["alice"], "echoTitle": "x", "echoContent": p});
        client
            .send(json!({"id": format!("start-{p}"), "type": "org.wt.echo",
                "data": {"content": {"values": values}}}))
            .await
            .unwrap();
        let message = alice
            .message_within("before 1", Duration::from_secs(20))
            .await
            .unwrap();
        threds.push(message["event"]["thredId"].as_str().unwrap().to_string());
    }

    // The pattern changes on the disk of the engine that owns the partition of the admin's
    // request (thred id SYSTEM); the admin asks it to reload.
    let system = threds_runtime::bus::partition_for("SYSTEM", PARTITIONS);
    let owner = owner_of(redis, system).unwrap();
    let handler = if owner == "engine-a" { 0 } else { 1 };
    let pattern_file = dirs[handler].path().join("echo.pattern.json");
    std::fs::write(&pattern_file, echo("after").to_string()).unwrap();
    let mut admin = session.connect("root", &["admin"]).await.unwrap();
    admin
        .send(
            json!({"id": "reload-1", "type": "org.wt.control.sysControl", "thredId": "SYSTEM",
            "data": {"content": {"values": {"op": "reloadPattern", "patternId": "echo"}}}}),
        )
        .await
        .unwrap();
    let reply = admin
        .frame(
            |f| f["message"]["event"]["re"] == "reload-1",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(
        reply["message"]["event"]["data"]["content"]["values"]["status"], "OK",
        "{reply}"
    );
    // The other engine hears of it on the control topic; the announcing one skips its own.
    let mut logs = [Vec::new(), Vec::new()];
    let applied = |logs: &[Vec<String>; 2]| {
        logs.iter()
            .filter(|l| l.iter().any(|line| line.contains("control: applied")))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while applied(&logs) == 0 {
        assert!(
            Instant::now() < deadline,
            "no engine applied the announced reload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (log, engine) in logs.iter_mut().zip(&engines) {
            log.extend(engine.take_log());
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (log, engine) in logs.iter_mut().zip(&engines) {
        log.extend(engine.take_log());
    }
    assert_eq!(
        applied(&logs),
        1,
        "one engine applied it from the control topic"
    );

    // Every thred, whichever engine owns it, now runs the new pattern.
    for thred in &threds {
        let values = json!({"echoTo": ["alice"], "echoTitle": "x", "echoContent": 0});
        alice
            .send(
                json!({"id": format!("again-{thred}"), "type": "org.wt.echo", "thredId": thred,
                "data": {"content": {"values": values}}}),
            )
            .await
            .unwrap();
        let message = alice
            .message_within("after 2", Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(message["event"]["thredId"], json!(thred));
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Pattern versions across engines.

/// Sends `ty` as `client` (to thred `thred`, when given) and answers the thred of the reply
/// titled `title`.
async fn flow_step(client: &mut Client, ty: &str, thred: Option<&str>, title: &str) -> String {
    let mut event = json!({"id": format!("{ty}-{}", now_ms()), "type": ty});
    if let Some(t) = thred {
        event["thredId"] = json!(t);
    }
    client.send(event).await.unwrap();
    let m = client
        .message_within(title, Duration::from_secs(60))
        .await
        .unwrap();
    m["event"]["thredId"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pushed_version_runs_on_every_engine_and_a_moved_thred_keeps_its_own() {
    let name = "a_pushed_version_runs_on_every_engine_and_a_moved_thred_keeps_its_own";
    let Some(infra) = infra(name).await else {
        return;
    };
    let (redis, config) = (infra.infra.redis(), infra.config.as_str());
    let dir = support::pattern_dir(&[("flow", support::flow("v1"))]);
    let patterns = dir.path().to_string_lossy().into_owned();
    let args = ["--config", config, "--patterns", patterns.as_str()];
    let (mut engines, session) = std::thread::scope(|s| {
        let spawn = |command: &'static str, node: &'static str| {
            let infra = &infra.infra;
            s.spawn(move || support::node(infra, command, node, &args))
        };
        let a = spawn("engine", "engine-a");
        let b = spawn("engine", "engine-b");
        let session = spawn("session", "session-1");
        (
            [a.join().unwrap(), b.join().unwrap()],
            session.join().unwrap(),
        )
    });
    both_engines_own_partitions(redis, &session).await;

    // A v1 thred in every partition, waiting at `wait`.
    let senders = one_sender_per_partition();
    let mut clients = Vec::new();
    let mut v1 = Vec::new();
    for (_, sender) in &senders {
        let mut client = session.connect(sender, &[]).await.unwrap();
        v1.push(flow_step(&mut client, "f.start", None, "v1 started").await);
        clients.push(client);
    }

    // v2 (which renames `wait`) pushed through the engine that owns the admin's partition.
    let mut admin = session.connect("root", &["admin"]).await.unwrap();
    admin
        .send(json!({"id": "push-1", "type": "org.wt.control.sysControl", "thredId": "SYSTEM",
            "data": {"content": {"values": {"op": "pushPatterns", "patterns": [support::flow("v2")]}}}}))
        .await
        .unwrap();
    let reply = admin
        .frame(
            |f| f["message"]["event"]["re"] == "push-1",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let pushed = &reply["message"]["event"]["data"]["content"]["values"]["pushed"][0];
    assert_eq!(
        (&pushed["version"], &pushed["active"]),
        (&json!(2), &json!(true)),
        "{reply}"
    );

    // New threds start on v2 in every partition, whichever engine owns it (the other engine
    // runs v2 once it has read the announcement: a start before that is still v1).
    let owners: Vec<String> = senders
        .iter()
        .map(|(p, _)| owner_of(redis, *p).unwrap())
        .collect();
    assert!(owners.iter().any(|o| o == "engine-a") && owners.iter().any(|o| o == "engine-b"));
    let mut v2 = Vec::new();
    for client in &mut clients {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let event = json!({"id": format!("s2-{}", now_ms()), "type": "f.start"});
            client.send(event).await.unwrap();
            let m = client
                .frame(
                    |f| {
                        f["message"]["event"]["data"]["title"]
                            .as_str()
                            .is_some_and(|t| t.ends_with("started"))
                    },
                    Duration::from_secs(20),
                )
                .await
                .unwrap();
            let event = &m["message"]["event"];
            if event["data"]["title"] == "v2 started" {
                v2.push(event["thredId"].as_str().unwrap().to_string());
                break;
            }
            assert!(Instant::now() < deadline, "v2 never became active: {m}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // engine-b crashes: its partitions move to engine-a, with their threds mid-life.
    engines[1].kill();
    for (i, client) in clients.iter_mut().enumerate() {
        // Each thred runs the version it started on, wherever it now runs.
        flow_step(client, "f.next", Some(&v1[i]), "v1 waited").await;
        flow_step(client, "f.next", Some(&v2[i]), "v2 waited").await;
    }
    for (p, _) in &senders {
        assert_eq!(
            owner_of(redis, *p).as_deref(),
            Some("engine-a"),
            "partition {p} moved"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. A session node under a new name reads live traffic only.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_node_started_under_a_new_name_delivers_no_old_message() {
    let name = "a_session_node_started_under_a_new_name_delivers_no_old_message";
    let Some(infra) = infra(name).await else {
        return;
    };
    let config = infra.config.as_str();
    let args = ["--config", config, "--patterns", "config/patterns"];
    let (_engine, first) = std::thread::scope(|s| {
        let spawn = |command: &'static str, node: &'static str| {
            let infra = &infra.infra;
            s.spawn(move || support::node(infra, command, node, &args))
        };
        let engine = spawn("engine", "engine-a");
        let first = spawn("session", "session-1");
        (engine.join().unwrap(), first.join().unwrap())
    });
    // Messages to alice and bob while bob is connected nowhere: they are in the sessions topic
    // (alice, on session-1, receives each).
    let mut alice = first.connect("alice", &[]).await.unwrap();
    for i in 0..5 {
        let values =
            json!({"echoTo": ["alice", "bob"], "echoTitle": format!("old-{i}"), "echoContent": i});
        alice
            .send(json!({"id": format!("old-{i}"), "type": "org.wt.echo", "data": {"content": {"values": values}}}))
            .await
            .unwrap();
        alice
            .message_within(&format!("old-{i} 1"), Duration::from_secs(30))
            .await
            .unwrap();
    }
    // A session node under a name the deployment has not seen (a recreated pod): once ready, it
    // delivers what comes next, and nothing from before it started.
    let second = support::node(&infra.infra, "session", "session-2", &args);
    let mut bob = second.connect("bob", &[]).await.unwrap();
    let values = json!({"echoTo": ["alice", "bob"], "echoTitle": "fresh", "echoContent": 0});
    alice
        .send(
            json!({"id": "fresh", "type": "org.wt.echo", "data": {"content": {"values": values}}}),
        )
        .await
        .unwrap();
    bob.message_within("fresh 1", Duration::from_secs(30))
        .await
        .unwrap();
    let later = bob.drain(Duration::from_secs(2)).await;
    assert!(
        later.is_empty(),
        "bob got messages sent before session-2 started: {later:?}"
    );
}
