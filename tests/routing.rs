//! Messages reach the session node holding the connection (ADR 0008), end to end: one
//! `threds engine` and three `threds session` processes on a Kafka-protocol broker and a real
//! `redis-server`, 300 participants spread over the session nodes.
//!
//! Each node reads only its own delivery slot: the records it consumes from the sessions topic
//! are exactly the messages addressed to its participants, and each participant gets each message
//! once. When a node is killed, its participants reconnect to the others and receive what is sent
//! to them next.
//!
//! Needs `redis-server` (scripts/install/redis.sh), and tansu for the real-broker variant: without
//! them the tests print SKIPPED, unless `THREDS_REQUIRE_SERVICES=1` (set by `scripts/test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::future::join_all;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::TOPOLOGY;
use threds_testkit::client::Client;
use threds_testkit::deployment::{config_file, Infrastructure};
use threds_testkit::rig::Process;
use threds_testkit::{http, redis, tansu};

/// Participants, spread over the session nodes.
const PARTICIPANTS: usize = 300;
/// Session nodes at the start.
const NODES: usize = 3;
/// How long a message may take to arrive.
const WITHIN: Duration = Duration::from_secs(60);
/// How long a participant keeps listening for a duplicate once its messages arrived.
const QUIET: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_session_node_reads_only_its_participants_messages() {
    if !redis::available("each_session_node_reads_only_its_participants_messages") {
        return;
    }
    routed_to_the_holding_node(support::infrastructure()).await;
}

/// The same on a real broker (tansu).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_real_broker_each_session_node_reads_only_its_participants_messages() {
    let name = "on_a_real_broker_each_session_node_reads_only_its_participants_messages";
    if !redis::available(name) || !tansu::available(name) {
        return;
    }
    routed_to_the_holding_node(Infrastructure::on_tansu(support::PARTITIONS).unwrap()).await;
}

/// Participant `p`'s name.
fn name(p: usize) -> String {
    format!("p{p}")
}

/// The participant after `p` (who also gets `p`'s echo).
fn next(p: usize) -> usize {
    (p + 1) % PARTICIPANTS
}

/// The participant before `p`.
fn previous(p: usize) -> usize {
    (p + PARTICIPANTS - 1) % PARTICIPANTS
}

/// Records the session node `node` has read from the sessions topic.
fn consumed(node: &Process) -> f64 {
    let name = format!(
        "threds_events_consumed_total{{topic=\"{}\"}}",
        TOPOLOGY.sessions()
    );
    http::metric(node.addr(), &name).unwrap().unwrap_or(0.0)
}

/// Connects participant `p` to `node`.
async fn connect(node: &Process, p: usize) -> Client {
    Client::connect(node.addr(), &node.token(&name(p), &[]).unwrap())
        .await
        .unwrap()
}

/// One round: every participant sends an echo to itself and the next one, then waits for its
/// own and the previous one's; answers, per participant, the titles of every message it got
/// (those arriving within [`QUIET`] after the expected ones included).
async fn round(clients: &mut [Client], tag: &str) -> Vec<Vec<String>> {
    for (p, client) in clients.iter_mut().enumerate() {
        let title = format!("{}-{tag}", name(p));
        client
            .send(
                json!({"id": title, "type": "org.wt.echo", "data": {"content": {"values":
                {"echoTo": [name(p), name(next(p))], "echoTitle": title, "echoContent": 1}}}}),
            )
            .await
            .unwrap();
    }
    join_all(
        clients
            .iter_mut()
            .enumerate()
            .map(|(p, client)| async move {
                let mut titles = Vec::new();
                for from in [p, previous(p)] {
                    let title = format!("{}-{tag} 1", name(from));
                    let m = client.message_within(&title, WITHIN).await.unwrap();
                    titles.push(m["event"]["data"]["title"].as_str().unwrap().to_owned());
                }
                for m in client.drain(QUIET).await {
                    titles.push(
                        m["event"]["data"]["title"]
                            .as_str()
                            .unwrap_or("?")
                            .to_owned(),
                    );
                }
                titles
            }),
    )
    .await
}

/// Asserts every participant got exactly its own and the previous one's message of `tag`.
fn exactly_once(got: &[Vec<String>], tag: &str) {
    for (p, titles) in got.iter().enumerate() {
        let expected: BTreeSet<String> = [p, previous(p)]
            .iter()
            .map(|from| format!("{}-{tag} 1", name(*from)))
            .collect();
        let unique: BTreeSet<String> = titles.iter().cloned().collect();
        assert!(
            titles.len() == 2 && unique == expected,
            "{} got {titles:?}, expected {expected:?} once each",
            name(p)
        );
    }
}

/// Records each node reads in a round: one per message with a recipient connected to it (a
/// message to two participants of one node is one record).
fn expected_records(on: &[usize], nodes: usize) -> Vec<f64> {
    let mut records = vec![0.0; nodes];
    for p in 0..PARTICIPANTS {
        let holders: BTreeSet<usize> = [on[p], on[next(p)]].into_iter().collect();
        for node in holders {
            records[node] += 1.0;
        }
    }
    records
}

/// Runs [`round`] `tag` with participant p connected to `nodes[on[p]]`: each gets its messages
/// exactly once, and each node reads exactly one record per message addressed to its participants.
async fn checked_round(nodes: &[Process], clients: &mut [Client], on: &[usize], tag: &str) {
    let before: Vec<f64> = nodes.iter().map(consumed).collect();
    let got = round(clients, tag).await;
    exactly_once(&got, tag);
    let read: Vec<f64> = nodes
        .iter()
        .zip(&before)
        .map(|(n, b)| consumed(n) - b)
        .collect();
    let expected = expected_records(on, nodes.len());
    eprintln!("{tag}: records read per session node {read:?}, messages addressed to its participants {expected:?}");
    assert_eq!(
        read, expected,
        "{tag}: each node reads exactly the messages addressed to its participants"
    );
}

/// Three session nodes and 300 participants: a round of echoes, each node's reads checked against
/// its participants' messages; one node killed, its participants reconnected to the others, and
/// a second round checked the same way on the survivors.
async fn routed_to_the_holding_node(infra: Infrastructure) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "").unwrap();
    let config = config.to_str().unwrap();
    let args = ["--config", config, "--patterns", "config/patterns"];
    let _engine = support::node(&infra, "engine", "engine-1", &args);
    let mut nodes: Vec<Process> = (1..=NODES)
        .map(|n| {
            let mut env = infra.env(&format!("session-{n}"));
            env.push(("THREDS_SERVER_SESSION_SLOT_TTL_MS", "3000".to_owned()));
            support::threds().start("session", &args, &env).unwrap()
        })
        .collect();

    // Participant p on node p % 3: its echo goes to itself and to p + 1, on another node.
    let mut on: Vec<usize> = (0..PARTICIPANTS).map(|p| p % NODES).collect();
    let mut clients = Vec::new();
    for p in 0..PARTICIPANTS {
        clients.push(connect(&nodes[on[p]], p).await);
    }
    checked_round(&nodes, &mut clients, &on, "r1").await;

    // Kill the third node; its participants reconnect to the first two, alternately.
    let mut killed = nodes.pop().unwrap();
    killed.kill();
    let mut moved = BTreeMap::new();
    let orphaned: Vec<usize> = (0..PARTICIPANTS).filter(|p| on[*p] == NODES - 1).collect();
    for p in orphaned {
        on[p] = (p / NODES) % (NODES - 1);
        *moved.entry(on[p]).or_insert(0) += 1;
        clients[p] = connect(&nodes[on[p]], p).await;
    }
    eprintln!("killed session-{NODES}; its participants reconnected: {moved:?} (by node index)");
    checked_round(&nodes, &mut clients, &on, "r2").await;
}
