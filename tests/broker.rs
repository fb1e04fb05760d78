//! Faults of a real Kafka-protocol broker (tansu, in-memory storage): a broker that comes back
//! empty. Needs `redis-server` and tansu (scripts/install/): without them the test prints
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

/// Without the outage guard (`runtime/src/bus/kafka/outage.rs`) the engine and session processes
/// died with SIGSEGV here, in librdkafka 2.12.1's leader-discovery metadata update
/// (`rd_kafka_metadata_update_op`, upstream issue confluentinc/librdkafka#5280).
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
    // still alive a while later (the crash came seconds after the consumers met the new topics).
    infra.create_topics().unwrap();
    let processes = [&engine, &session, &persistence];
    all_answer(&processes, 200, Duration::from_secs(60), "ready again").await;
    let watch_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < watch_until {
        for p in [&mut engine, &mut session, &mut persistence] {
            assert!(p.running(), "{} is alive", p.node());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Events are not sent again here: tansu answers every append of the processes' idempotent
    // producers with UNKNOWN_PRODUCER_ID (it lost their producer ids and will not take a bumped
    // epoch), and librdkafka bumps and retries without end; docs/bus.md ("A broker that comes
    // back empty").
}
