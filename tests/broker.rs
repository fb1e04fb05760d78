//! Faults of a real Kafka-protocol broker (tansu, in-memory storage): a broker that comes back
//! empty (ignored for now: it reproduces a librdkafka crash, see the test). Needs `redis-server` and tansu (scripts/install/): without them the test prints
//! SKIPPED, unless `THREDS_REQUIRE_SERVICES=1` (set by `scripts/test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use threds_testkit::deployment::{config_file, Broker, Infrastructure};
use threds_testkit::http;
use threds_testkit::rig::Process;
use threds_testkit::{redis, tansu};

/// The status of `GET /readyz`, or `None` while nothing answers.
fn ready(process: &Process) -> Option<u16> {
    http::get(process.addr(), "/readyz").ok().map(|a| a.status)
}

/// Waits until every process answers `/readyz` with `status` (at most `within`).
async fn all_answer(processes: &[&Process], status: u16, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let answers: Vec<Option<u16>> = processes.iter().map(|p| ready(p)).collect();
        if answers.iter().all(|a| *a == Some(status)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {within:?}: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Known to fail: the engine and session processes die with SIGSEGV a few seconds after the broker
/// comes back empty, in librdkafka 2.12.1's leader-discovery metadata update
/// (`rd_kafka_metadata_update_op` → `rd_kafka_metadata_cache_find`, a `strcmp` on a bad topic
/// name), reproduced under gdb; the persistence process survives. Run with `--ignored`.
#[ignore = "librdkafka 2.12.1 crashes (SIGSEGV in rd_kafka_metadata_update_op) when the broker comes back empty"]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_that_comes_back_empty_leaves_every_process_alive_and_not_ready_until_its_topics_are_back(
) {
    let name = "a_broker_that_comes_back_empty";
    if !redis::available(name) || !tansu::available(name) {
        return;
    }
    let mut infra = Infrastructure::on_tansu(support::PARTITIONS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "").unwrap();
    let config = config.to_str().unwrap();
    let args = ["--config", config, "--patterns", "config/patterns"];
    let mut engine = support::node(&infra, "engine", "engine-1", &args);
    let mut session = support::node(&infra, "session", "session-1", &args);
    let mut persistence = support::node(&infra, "persistence", "persistence-1", &args);
    let mut alice = session.connect("alice", &[]).await.unwrap();
    let echo = |id: &str| {
        json!({"id": id, "type": "org.wt.echo",
            "data": {"content": {"values": {"echoTo": ["alice"], "echoTitle": id, "echoContent": 1}}}})
    };
    alice.send(echo("before")).await.unwrap();
    alice
        .message_within("before 1", Duration::from_secs(30))
        .await
        .unwrap();

    // The broker dies and comes back without its topics.
    let Broker::Tansu(tansu) = infra.broker_mut() else {
        unreachable!("started on tansu");
    };
    tansu.restart().unwrap();
    let processes = [&engine, &session, &persistence];
    all_answer(&processes, 503, Duration::from_secs(30), "not ready").await;
    for p in [&mut engine, &mut session, &mut persistence] {
        assert!(p.running(), "{} is alive", p.node());
    }

    // The topics are made again (as the chart's hook or an operator would): ready again, and
    // events flow end to end.
    infra.create_topics().unwrap();
    let processes = [&engine, &session, &persistence];
    all_answer(&processes, 200, Duration::from_secs(60), "ready again").await;
    let mut alice = session.connect("alice", &[]).await.unwrap();
    alice.send(echo("after")).await.unwrap();
    alice
        .message_within("after 1", Duration::from_secs(60))
        .await
        .unwrap();
}
