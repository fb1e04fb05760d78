//! End-to-end tests of what the distributed deployment tells its operators: traces exported over
//! OTLP (to a receiver in this process) following an event across the session node that took
//! it, the engine and the session node that delivers its message (and an agent task), and the
//! Prometheus counters of a scripted run.
//!
//! Needs `redis-server` (scripts/install/redis.sh): without it the tests print SKIPPED, unless
//! `THREDS_REQUIRE_SERVICES=1` (set by `scripts/test`), where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use support::TOPOLOGY;
use threds_runtime::bus::kafka::KafkaBus;
use threds_runtime::bus::Bus;
use threds_testkit::client::Client;
use threds_testkit::deployment::{config_file, Infrastructure};
use threds_testkit::http::{self, sample};
use threds_testkit::otlp::{Receiver, Span};
use threds_testkit::redis;
use threds_testkit::rig::Process;

/// A node of the deployment exporting its spans to `receiver` as `service`.
fn traced_node(
    infra: &Infrastructure,
    command: &str,
    node: &str,
    service: &str,
    receiver: &Receiver,
    args: &[&str],
) -> Process {
    let mut env = infra.env(node);
    env.extend([
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            receiver.endpoint().to_owned(),
        ),
        ("OTEL_SERVICE_NAME", service.to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]);
    support::threds().start(command, args, &env).unwrap()
}

/// The deployment's infrastructure and its `threds.toml` (in the directory answered, kept as long
/// as the processes run).
fn deployment() -> (Infrastructure, tempfile::TempDir, String) {
    let infra = support::infrastructure();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "").unwrap();
    let config = config.to_string_lossy().into_owned();
    (infra, dir, config)
}

fn producer(infra: &Infrastructure) -> KafkaBus {
    KafkaBus::new(infra.kafka_config()).unwrap()
}

fn echo(id: &str, to: &str, title: &str) -> Value {
    json!({"id": id, "type": "org.wt.echo",
        "data": {"content": {"values": {"echoTo": [to], "echoTitle": title, "echoContent": "hi"}}}})
}

/// The span of `trace` from `service` named `name`, or a failure listing what the trace has.
fn find<'s>(spans: &'s [Span], trace: &str, service: &str, name: &str) -> &'s Span {
    spans
        .iter()
        .find(|s| s.trace_id == trace && s.service == service && s.name == name)
        .unwrap_or_else(|| {
            let seen: Vec<_> = spans
                .iter()
                .filter(|s| s.trace_id == trace)
                .map(|s| format!("{}:{} (parent {})", s.service, s.name, s.parent_span_id))
                .collect();
            panic!("no span {service}:{name} in trace {trace}; it has {seen:?}")
        })
}

/// Whether every span [`check_path`] looks for in `trace` has arrived (each process exports on
/// its own schedule).
fn complete(spans: &[Span], trace: &str) -> bool {
    let sessions = TOPOLOGY.sessions();
    let wanted = [
        ("engine", format!("process {}", TOPOLOGY.events())),
        ("engine", "threds.store.commit".to_owned()),
        ("engine", format!("send {sessions}")),
        ("session-out", format!("process {sessions}")),
    ];
    wanted.iter().all(|(service, name)| {
        spans
            .iter()
            .any(|s| s.trace_id == trace && s.service == *service && s.name == *name)
    })
}

/// Checks the engine's part of `trace`: its `process` span is a child of `parent` and names
/// the step, the store commit and the publish are its children, and the delivering session's
/// span is a child of that publish. Answers the delivery span.
fn check_path<'s>(spans: &'s [Span], trace: &str, parent: &str, to: &str) -> &'s Span {
    let events = TOPOLOGY.events();
    let sessions = TOPOLOGY.sessions();
    let process = find(spans, trace, "engine", &format!("process {events}"));
    assert_eq!(
        process.parent_span_id, parent,
        "the engine continues the record's context"
    );
    assert_eq!(process.kind, "consumer");
    assert_eq!(process.attribute("messaging.system"), Some("kafka"));
    assert_eq!(
        process.attribute("messaging.destination.name"),
        Some(events)
    );
    assert_eq!(
        process.attribute("messaging.operation.type"),
        Some("process")
    );
    assert!(process.attribute("messaging.kafka.offset").is_some());
    assert!(process
        .attribute("messaging.destination.partition.id")
        .is_some());
    assert_eq!(process.attribute("threds.pattern"), Some("echo"));
    assert_eq!(process.attribute("threds.reaction"), Some("echo"));
    assert_eq!(process.attribute("threds.outcome"), Some("matched"));
    assert!(process
        .attribute("threds.thred_id")
        .is_some_and(|t| !t.is_empty()));
    let commit = find(spans, trace, "engine", "threds.store.commit");
    assert_eq!(commit.parent_span_id, process.span_id);
    let publish = find(spans, trace, "engine", &format!("send {sessions}"));
    assert_eq!(publish.parent_span_id, process.span_id);
    assert_eq!(publish.kind, "producer");
    let deliver = find(spans, trace, "session-out", &format!("process {sessions}"));
    assert_eq!(
        deliver.parent_span_id, publish.span_id,
        "delivery follows the publish"
    );
    assert_eq!(deliver.attribute("threds.participant"), Some(to));
    assert_eq!(
        deliver.attribute("network.protocol.name"),
        Some("websocket")
    );
    assert!(
        !spans.iter().any(|s| s.trace_id == trace
            && s.service == "session-in"
            && s.name.starts_with("process")),
        "the node without the recipient's connection delivers nothing"
    );
    deliver
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_an_event_from_either_entry_through_the_engine_to_the_delivering_session()
{
    if !redis::available(
        "one_trace_follows_an_event_from_either_entry_through_the_engine_to_the_delivering_session",
    ) {
        return;
    }
    let receiver = Receiver::start().unwrap();
    let (infra, _dir, config) = deployment();
    let args = ["--config", &config, "--patterns", "config/patterns"];
    let _engine = traced_node(&infra, "engine", "engine-1", "engine", &receiver, &args);
    let session_in = traced_node(
        &infra,
        "session",
        "session-1",
        "session-in",
        &receiver,
        &args,
    );
    let _persistence = traced_node(
        &infra,
        "persistence",
        "persistence-1",
        "persistence",
        &receiver,
        &args,
    );
    let session_out = traced_node(
        &infra,
        "session",
        "session-2",
        "session-out",
        &receiver,
        &args,
    );

    let mut alice = Client::connect(session_in.addr(), &session_in.token("alice", &[]).unwrap())
        .await
        .unwrap();
    let mut bob = Client::connect(session_out.addr(), &session_out.token("bob", &[]).unwrap())
        .await
        .unwrap();

    // 1. Over a WebSocket: the session starts the trace.
    alice.send(echo("ws-1", "bob", "over ws")).await.unwrap();
    bob.message_within("over ws 1", Duration::from_secs(30))
        .await
        .unwrap();
    let ws_trace = |spans: &[Span]| {
        spans
            .iter()
            .find(|s| s.attribute("messaging.message.id") == Some("ws-1"))
            .map(|s| s.trace_id.clone())
    };
    // The session that took the frame exports its span on its own schedule: wait for it too.
    let spans = receiver.wait_for(Duration::from_secs(30), |spans| {
        ws_trace(spans).is_some_and(|trace| {
            complete(spans, &trace)
                && spans
                    .iter()
                    .any(|s| s.trace_id == trace && s.service == "session-in")
        })
    });
    let send = spans
        .iter()
        .find(|s| s.service == "session-in" && s.attribute("messaging.message.id") == Some("ws-1"))
        .unwrap_or_else(|| panic!("no span for ws-1 from session-in in {spans:#?}"));
    assert_eq!(send.name, format!("send {}", TOPOLOGY.events()));
    assert_eq!(send.kind, "producer");
    assert_eq!(send.attribute("threds.channel"), Some("websocket"));
    assert_eq!(send.parent_span_id, "", "a WebSocket frame starts a trace");
    let trace = send.trace_id.clone();
    check_path(&spans, &trace, &send.span_id, "bob");

    // 2. Straight to Kafka, with the producer's `traceparent`.
    let (trace, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let mut event = echo("kafka-1", "bob", "over kafka");
    event["source"] = json!({"id": "alice"});
    producer(&infra)
        .append(
            TOPOLOGY.events(),
            None,
            Some("alice"),
            serde_json::to_vec(&event).unwrap(),
            vec![("traceparent".into(), format!("00-{trace}-{parent}-01"))],
        )
        .await
        .unwrap();
    bob.message_within("over kafka 1", Duration::from_secs(30))
        .await
        .unwrap();
    let spans = receiver.wait_for(Duration::from_secs(30), |spans| complete(spans, trace));
    check_path(&spans, trace, parent, "bob");

    // 3. An agent task (as a pattern would send it) continues its message's trace, and so does
    // the agent's reply to the engine.
    let (trace, parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let agent_topic = TOPOLOGY.agent("org.wt.persistence");
    let message = json!({"id": "task-1", "to": ["org.wt.persistence"],
        "event": {"id": "task-1", "type": "org.wt.persistence", "source": {"id": "alice"},
            "data": {"content": {"tasks": []}}}});
    producer(&infra)
        .append(
            &agent_topic,
            None,
            Some("alice"),
            serde_json::to_vec(&message).unwrap(),
            vec![("traceparent".into(), format!("00-{trace}-{parent}-01"))],
        )
        .await
        .unwrap();
    let spans = receiver.wait_for(Duration::from_secs(30), |spans| {
        ["persistence", "engine"].iter().all(|service| {
            spans
                .iter()
                .any(|s| s.trace_id == trace && s.service == *service)
        })
    });
    let task = find(
        &spans,
        trace,
        "persistence",
        &format!("process {agent_topic}"),
    );
    assert_eq!(task.parent_span_id, parent);
    assert_eq!(task.kind, "consumer");
    assert_eq!(task.attribute("threds.agent"), Some("org.wt.persistence"));
    assert_eq!(task.attribute("messaging.message.id"), Some("task-1"));
    let reply = find(
        &spans,
        trace,
        "engine",
        &format!("process {}", TOPOLOGY.events()),
    );
    assert_eq!(
        reply.parent_span_id, task.span_id,
        "the reply continues the task's trace"
    );
    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
}

/// The trace of the record the scripted run dead-letters.
const JUNK_TRACE: &str = "5b8efff798038103d269b633813fc60c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_scripted_run_count_what_was_sent() {
    if !redis::available("metrics_after_a_scripted_run_count_what_was_sent") {
        return;
    }
    let (infra, _dir, config) = deployment();
    let args = ["--config", &config, "--patterns", "config/patterns"];
    // The engine logs JSON lines.
    let mut env = infra.env("engine-1");
    env.push(("THREDS_TELEMETRY_LOG_FORMAT", "json".to_owned()));
    let engine = support::threds().start("engine", &args, &env).unwrap();
    let session = support::node(&infra, "session", "session-1", &args);
    let mut alice = Client::connect(session.addr(), &session.token("alice", &[]).unwrap())
        .await
        .unwrap();

    // Three echo threds started over the WebSocket, each stepped once more straight on Kafka,
    // and one record that is not an event.
    let kafka = producer(&infra);
    let mut threds = Vec::new();
    for n in 0..3 {
        alice
            .send(echo(&format!("start-{n}"), "alice", &format!("t{n}")))
            .await
            .unwrap();
        let m = alice
            .message_within(&format!("t{n} 1"), Duration::from_secs(30))
            .await
            .unwrap();
        threds.push(m["event"]["thredId"].as_str().unwrap().to_owned());
    }
    for (n, thred) in threds.iter().enumerate() {
        let mut event = echo(&format!("step-{n}"), "alice", &format!("t{n}"));
        event["thredId"] = json!(thred);
        event["source"] = json!({"id": "alice"});
        let payload = serde_json::to_vec(&event).unwrap();
        kafka
            .append(TOPOLOGY.events(), None, Some(thred), payload, Vec::new())
            .await
            .unwrap();
        alice
            .message_within(&format!("t{n} 2"), Duration::from_secs(30))
            .await
            .unwrap();
    }
    kafka
        .append(
            TOPOLOGY.events(),
            None,
            Some("junk"),
            b"not json".to_vec(),
            vec![(
                "traceparent".into(),
                format!("00-{JUNK_TRACE}-00f067aa0ba902b7-01"),
            )],
        )
        .await
        .unwrap();

    let events = TOPOLOGY.events();
    let sessions = TOPOLOGY.sessions();
    let consumed = format!("threds_events_consumed_total{{topic=\"{events}\"}}");
    let dead = format!("threds_dead_letters_total{{topic=\"{events}\"}}");
    // The junk record is the last one: once it is dead-lettered, everything before it counted.
    let mut body = String::new();
    for _ in 0..300 {
        body = http::get(engine.addr(), "/metrics").unwrap().body;
        if sample(&body, &dead) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expect: HashMap<String, f64> = [
        (consumed, 7.0),
        (dead, 1.0),
        (
            format!("threds_messages_published_total{{topic=\"{sessions}\"}}"),
            6.0,
        ),
        ("threds_live_threds{pattern=\"echo\"}".to_owned(), 3.0),
        (
            "threds_steps_total{pattern=\"echo\",outcome=\"matched\"}".to_owned(),
            6.0,
        ),
        (
            "threds_steps_total{pattern=\"\",outcome=\"refused\"}".to_owned(),
            1.0,
        ),
    ]
    .into();
    for partition in 0..support::PARTITIONS {
        let name = format!("threds_timers_pending{{topic=\"{events}\",partition=\"{partition}\"}}");
        assert_eq!(
            sample(&body, &name),
            Some(0.0),
            "echo sets no timers: {name} in\n{body}"
        );
    }
    for (name, value) in &expect {
        assert_eq!(sample(&body, name), Some(*value), "{name} in\n{body}");
    }
    let session_body = http::get(session.addr(), "/metrics").unwrap().body;
    assert_eq!(
        sample(&session_body, "threds_websocket_connections"),
        Some(1.0),
        "{session_body}"
    );
    assert_eq!(
        sample(
            &session_body,
            &format!("threds_events_consumed_total{{topic=\"{sessions}\"}}")
        ),
        Some(6.0),
        "{session_body}"
    );
    assert_eq!(
        sample(
            &session_body,
            &format!("threds_messages_published_total{{topic=\"{events}\"}}")
        ),
        Some(3.0),
        "the session appended the three WebSocket events: {session_body}"
    );

    // Its log line, JSON, names the record's trace.
    let lines: Vec<Value> = engine
        .take_log()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let dead_lettered = lines
        .iter()
        .find(|l| l["fields"]["code"] == "R3001")
        .unwrap_or_else(|| panic!("no dead-letter line in {lines:#?}"));
    assert_eq!(dead_lettered["level"], "ERROR");
    assert_eq!(dead_lettered["fields"]["trace_id"], JUNK_TRACE);
}
