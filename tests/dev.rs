//! End-to-end tests of `threds dev`, driven only through WebSocket and HTTP clients.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{control, pattern_dir, reply};
use threds_testkit::client::Client;
use threds_testkit::http;
use threds_testkit::rig::Process;

fn filter(name: &str, ty: &str, title: Value, to: Value, extra: Value) -> Value {
    let mut condition = json!({"type": "filter", "xpr": format!("$event.type = '{ty}'"),
        "transform": {"eventDataTemplate": {"title": title}}, "publish": {"to": to}});
    if let Value::Object(e) = extra {
        for (k, v) in e {
            condition[k] = v;
        }
    }
    json!({"name": name, "condition": condition})
}

/// POSTs `event` to `/events` as `participant` with `roles`; answers the status and the body.
fn post_event(server: &Process, participant: &str, roles: &[&str], event: Value) -> (u16, Value) {
    let token = server.token(participant, roles).unwrap();
    let answer = http::post_json(server.addr(), "/events", Some(&token), &event).unwrap();
    (answer.status, answer.json())
}

fn sessions_file(dir: &std::path::Path) -> String {
    let path = dir.join("sessions.json");
    std::fs::write(
        &path,
        json!({"groups": [{"name": "team", "participants": [
        {"participantId": "p1"}, {"participantId": "p2"}]}]})
        .to_string(),
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_pattern_answers_over_websocket() {
    let mut server = support::dev(&["--patterns", "config/patterns"]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let mut bob = server.connect("bob", &[]).await.unwrap();
    let values = json!({"echoTo": ["bob"], "echoTitle": "hello", "echoContent": "there"});
    alice
        .send(json!({"id": "e1", "type": "org.wt.echo", "data": {"content": {"values": values}}}))
        .await
        .unwrap();
    let m = bob.message("hello 1").await.unwrap();
    assert_eq!(m["to"], json!(["bob"]));
    assert_eq!(m["event"]["data"]["content"]["values"]["echo"], "there");
    let thred = m["event"]["thredId"].as_str().unwrap().to_string();
    alice.send(json!({"id": "e2", "type": "org.wt.echo", "thredId": thred, "data": {"content": {"values": values}}})).await.unwrap();
    bob.message("hello 2").await.unwrap();
    assert!(
        server.stop().unwrap().success(),
        "graceful shutdown exits 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_restarts_of_every_supervised_service() {
    let server = support::dev(&["--patterns", "config/patterns"]);
    let metrics = http::get(server.addr(), "/metrics").unwrap();
    assert_eq!(metrics.status, 200);
    for service in ["engine", "control", "persistence", "sessions", "partition"] {
        let line = format!("threds_service_restarts_total{{service=\"{service}\"}} 0");
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} in {}",
            metrics.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_publish_reaches_every_member_and_every_connection() {
    let dir = pattern_dir(&[(
        "group",
        json!({"name": "Group", "reactions": [
        filter("tell", "g.start", json!("to the team"), json!(["$team"]), json!({}))]}),
    )]);
    let sessions = sessions_file(dir.path());
    let server = support::dev(&[
        "--patterns",
        dir.path().to_str().unwrap(),
        "--sessions",
        &sessions,
    ]);
    let mut p1a = server.connect("p1", &[]).await.unwrap();
    let mut p1b = server.connect("p1", &[]).await.unwrap();
    let mut p2 = server.connect("p2", &[]).await.unwrap();
    let mut sender = server.connect("s", &[]).await.unwrap();
    sender
        .send(json!({"id": "g1", "type": "g.start"}))
        .await
        .unwrap();
    for client in [&mut p1a, &mut p1b, &mut p2] {
        let m = client.message("to the team").await.unwrap();
        assert_eq!(m["to"], json!(["p1", "p2"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_fires_without_another_event() {
    let dir = pattern_dir(&[(
        "timeout",
        json!({"name": "Timeout", "reactions": [
            filter("start", "t.start", json!("started"), json!(["$xpr( $event.source.id )"]),
                json!({"onTrue": {"xpr": "$setLocal('start', $event)"}})),
            {"name": "wait", "condition": {"type": "filter", "xpr": "$event.type = 'never'"},
             "expiry": {"interval": 1000, "transition": {"name": "late", "input": "local", "localName": "start"}}},
            filter("late", "t.start", json!("timed out"), json!(["$thred"]), json!({"transition": {"name": "$terminate"}}))
        ]}),
    )]);
    let server = support::dev(&["--patterns", dir.path().to_str().unwrap()]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let started = std::time::Instant::now();
    alice
        .send(json!({"id": "t1", "type": "t.start"}))
        .await
        .unwrap();
    alice.message("started").await.unwrap();
    alice.message("timed out").await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "fired too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "fired too late: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_source_is_replaced_by_the_authenticated_participant() {
    let dir = pattern_dir(&[(
        "whoami",
        json!({"name": "Whoami", "reactions": [
        filter("who", "who", json!("$xpr( 'you are ' & $event.source.id )"), json!(["$xpr( $event.source.id )"]), json!({}))]}),
    )]);
    let server = support::dev(&["--patterns", dir.path().to_str().unwrap()]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let mut bob = server.connect("bob", &[]).await.unwrap();
    alice
        .send(json!({"id": "w1", "type": "who", "source": {"id": "bob", "name": "Bob"}}))
        .await
        .unwrap();
    let m = alice.message("you are alice").await.unwrap();
    assert_eq!(m["to"], json!(["alice"]));
    assert!(
        bob.drain(Duration::from_millis(500)).await.is_empty(),
        "bob must receive nothing"
    );
    // HTTP intake stamps the source the same way.
    let (status, body) = post_event(
        &server,
        "carol",
        &[],
        json!({"id": "w2", "type": "who", "source": {"id": "bob"}}),
    );
    assert_eq!(status, 202, "{body}");
    assert!(bob.drain(Duration::from_millis(500)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_gets_an_error_frame_and_the_session_keeps_working() {
    let server = support::dev(&["--patterns", "config/patterns"]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    alice.send_text("{not json").await.unwrap();
    let e = alice
        .frame(|f| f.get("error").is_some(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e["error"]["code"], 4000);
    alice
        .send_text(&json!({"event": {"id": "x1", "type": 42}}).to_string())
        .await
        .unwrap();
    let e = alice
        .frame(|f| f.get("error").is_some(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e["error"]["code"], 4200);
    assert_eq!(e["error"]["ref"], "x1");
    let values = json!({"echoTo": ["alice"], "echoTitle": "still", "echoContent": 1});
    alice
        .send(json!({"id": "e1", "type": "org.wt.echo", "data": {"content": {"values": values}}}))
        .await
        .unwrap();
    alice.message("still 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_are_closed_with_a_reason() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = support::dev(&["--patterns", "config/patterns"]);
    let secret = threds_testkit::token::Secret::new(support::SECRET);
    let now = threds_testkit::token::now_secs();
    let token = |claims: Value| secret.sign(&claims).unwrap();
    let future = token(json!({"sub": "alice", "iat": now, "nbf": now + 600, "exp": now + 900}));
    let issued_later = token(json!({"sub": "alice", "iat": now + 600, "exp": now + 900}));
    let reserved = token(json!({"sub": "SYSTEM", "iat": now, "exp": now + 900}));
    let traversal = token(json!({"sub": "../x", "iat": now, "exp": now + 900}));
    let other = threds_testkit::token::Secret::new("another secret")
        .mint("alice", &[])
        .unwrap();
    for (query, reason) in [
        (String::new(), "no bearer token"),
        ("?token=garbage".to_owned(), "invalid token: malformed"),
        (format!("?token={other}"), "invalid token: bad signature"),
        (format!("?token={future}"), "the token is not valid yet"),
        (
            format!("?token={issued_later}"),
            "the token is not valid yet",
        ),
        (
            format!("?token={reserved}"),
            "the token's subject is not a valid participant id",
        ),
        (
            format!("?token={traversal}"),
            "the token's subject is not a valid participant id",
        ),
    ] {
        let url = format!("ws://{}/ws{query}", server.addr());
        let mut ws = Client::connect_url(&url).await.unwrap();
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4401, "{url}");
                assert!(frame.reason.starts_with(reason), "{url}: {}", frame.reason);
                assert!(frame.reason.len() < 80, "a short reason: {}", frame.reason);
            }
            other => panic!("expected a close frame for {url}, got {other:?}"),
        }
    }
    // Within the leeway (30 s), a token from a slightly fast clock is accepted.
    let fast_clock =
        token(json!({"sub": "alice", "iat": now + 10, "nbf": now + 10, "exp": now + 900}));
    let mut alice = Client::connect(server.addr(), &fast_clock).await.unwrap();
    let values = json!({"echoTo": ["alice"], "echoTitle": "leeway", "echoContent": 1});
    alice
        .send(json!({"id": "e1", "type": "org.wt.echo", "data": {"content": {"values": values}}}))
        .await
        .unwrap();
    alice.message("leeway 1").await.unwrap();
    let answer = http::post_json(
        server.addr(),
        "/events",
        None,
        &json!({"id": "1", "type": "t"}),
    )
    .unwrap();
    assert_eq!(answer.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_data_dir_continues_threds_and_fires_pending_expiry_once() {
    let dir = pattern_dir(&[(
        "steps",
        json!({"name": "Steps", "reactions": [
            filter("one", "s.start", json!("step 1"), json!(["$xpr( $event.source.id )"]),
                json!({"onTrue": {"xpr": "$setLocal('start', $event)"}})),
            filter("two", "s.next", json!("step 2"), json!(["$thred"]), json!({})),
            {"name": "three", "condition": {"type": "filter", "xpr": "$event.type = 'never'"},
             "expiry": {"interval": 4000, "transition": {"name": "late", "input": "local", "localName": "start"}}},
            filter("late", "s.start", json!("expired"), json!(["$thred"]), json!({"transition": {"name": "$terminate"}}))
        ]}),
    )]);
    let data = tempfile::tempdir().unwrap();
    let args = [
        "--patterns",
        dir.path().to_str().unwrap(),
        "--data-dir",
        data.path().to_str().unwrap(),
    ];

    let mut server = support::dev(&args);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    alice
        .send(json!({"id": "s1", "type": "s.start"}))
        .await
        .unwrap();
    let thred = alice.message("step 1").await.unwrap()["event"]["thredId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(server.stop().unwrap().success());

    server.restart().unwrap();
    let mut alice = server.connect("alice", &[]).await.unwrap();
    alice
        .send(json!({"id": "s2", "type": "s.next", "thredId": thred}))
        .await
        .unwrap();
    assert_eq!(
        alice.message("step 2").await.unwrap()["event"]["thredId"],
        thred.as_str(),
        "continued where it was"
    );
    assert!(server.stop().unwrap().success());

    server.restart().unwrap();
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let all = alice.drain(Duration::from_millis(7000)).await;
    let expired: Vec<&Value> = all
        .iter()
        .filter(|m| m["message"]["event"]["data"]["title"] == "expired")
        .collect();
    assert_eq!(
        expired.len(),
        1,
        "the pending expiry fires exactly once: {all:?}"
    );
}

/// `threds token` mints what the server accepts, roles included (the other tests mint their
/// tokens in process, with the test kit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_threds_token_is_accepted_with_its_roles() {
    let server = support::dev(&["--patterns", "config/patterns"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_threds"))
        .args(["token", "--participant", "root", "--role", "admin"])
        .args(["--config", "/nonexistent/threds.toml"])
        .env("THREDS_JWT_SECRET", support::SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "threds token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut admin = Client::connect(server.addr(), &token).await.unwrap();
    admin
        .send(control(
            "t1",
            "org.wt.control.sysControl",
            json!({"op": "getThreds"}),
        ))
        .await
        .unwrap();
    let listed = reply(&mut admin, "t1").await;
    assert!(
        listed["data"]["content"]["values"]["threds"].is_array(),
        "an admin's request is answered: {listed}"
    );
}

/// Reply ids come from the request's record, not from its client-chosen id: a request id used
/// before, by someone else or by the same client, still gets its own reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_request_id_gets_every_reply() {
    let server = support::dev(&["--patterns", "config/patterns"]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let mut admin = server.connect("root", &["admin"]).await.unwrap();
    let sys = "org.wt.control.sysControl";
    alice
        .send(control("same", sys, json!({"op": "getThreds"})))
        .await
        .unwrap();
    let refused = reply(&mut alice, "same").await;
    assert_eq!(
        refused["data"]["content"]["error"]["code"], 4101,
        "{refused}"
    );
    admin
        .send(control("same", sys, json!({"op": "getThreds"})))
        .await
        .unwrap();
    let listed = reply(&mut admin, "same").await;
    assert!(
        listed["data"]["content"]["values"]["threds"].is_array(),
        "the admin's request is answered although alice used its id first: {listed}"
    );
    assert_ne!(listed["id"], refused["id"]);
    alice
        .send(control("same", sys, json!({"op": "getThreds"})))
        .await
        .unwrap();
    let again = reply(&mut alice, "same").await;
    assert_eq!(again["data"]["content"]["error"]["code"], 4101, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_lists_and_terminates_threds_and_roles_are_checked() {
    let server = support::dev(&["--patterns", "config/patterns"]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let mut admin = server.connect("root", &["admin"]).await.unwrap();
    let values = json!({"echoTo": ["alice"], "echoTitle": "hi", "echoContent": 1});
    alice
        .send(json!({"id": "e1", "type": "org.wt.echo", "data": {"content": {"values": values}}}))
        .await
        .unwrap();
    let thred = alice.message("hi 1").await.unwrap()["event"]["thredId"]
        .as_str()
        .unwrap()
        .to_string();

    alice
        .send(control(
            "nope",
            "org.wt.control.sysControl",
            json!({"op": "getThreds"}),
        ))
        .await
        .unwrap();
    assert_eq!(
        reply(&mut alice, "nope").await["data"]["content"]["error"]["code"],
        4101,
        "not an admin"
    );

    admin
        .send(control(
            "a1",
            "org.wt.control.sysControl",
            json!({"op": "getThreds"}),
        ))
        .await
        .unwrap();
    let listed = reply(&mut admin, "a1").await;
    let threds = listed["data"]["content"]["values"]["threds"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        threds
            .iter()
            .any(|t| t["id"] == thred.as_str() && t["status"] == "a"),
        "{listed}"
    );

    admin
        .send(control(
            "a2",
            "org.wt.control.sysControl",
            json!({"op": "terminateThred", "thredId": thred}),
        ))
        .await
        .unwrap();
    let done = reply(&mut admin, "a2").await;
    assert_eq!(
        done["data"]["content"]["values"],
        json!({"status": "OK", "op": "terminateThred", "thredId": thred})
    );

    alice.send(json!({"id": "e2", "type": "org.wt.echo", "thredId": thred, "data": {"content": {"values": values}}})).await.unwrap();
    let error = reply(&mut alice, "e2").await;
    assert_eq!(error["data"]["content"]["error"]["code"], 5203, "{error}");

    admin
        .send(control(
            "a3",
            "org.wt.control.sysControl",
            json!({"op": "getThreds", "status": "terminated"}),
        ))
        .await
        .unwrap();
    let archived = reply(&mut admin, "a3").await;
    let threds = archived["data"]["content"]["values"]["threds"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        threds
            .iter()
            .any(|t| t["id"] == thred.as_str() && t["status"] == "t"),
        "{archived}"
    );

    alice
        .send(control(
            "u1",
            "org.wt.control.userControl",
            json!({"op": "getEvents", "thredId": thred}),
        ))
        .await
        .unwrap();
    let events = reply(&mut alice, "u1").await["data"]["content"]["values"]["events"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        events.iter().any(|e| e["id"] == "e1"),
        "alice sees her own event: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_system_test_pattern_gets_its_answer_from_the_persistence_agent() {
    let Some(reference) = support::reference() else {
        eprintln!("SKIPPED: reference patterns not found beside the repository");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        reference.join("src/test/config/patterns/system_test.pattern.json"),
        dir.path().join("system_test.pattern.json"),
    )
    .unwrap();
    let server = support::dev(&["--patterns", dir.path().to_str().unwrap()]);
    let mut admin = server.connect("root", &["admin"]).await.unwrap();
    let mut participant1 = server.connect("participant1", &[]).await.unwrap();
    let put = json!({"op": "put", "params": {"type": "TestObject",
        "values": {"id": "loc100", "locationId": "100", "participantId": "participant1"}}});
    admin
        .send(
            json!({"id": "d1", "type": "org.wt.control.dataControl", "thredId": "SYSTEM",
            "data": {"content": {"tasks": [put]}}}),
        )
        .await
        .unwrap();
    assert_eq!(
        reply(&mut admin, "d1").await["data"]["content"]["values"]["result"],
        json!(["loc100"])
    );

    let event = json!({"id": "loc-1", "type": "org.location.event",
        "data": {"title": "Location Event Detected", "content": {"values": {"latitude": 34.05, "longitude": -118.24, "locationId": "100"}}}});
    let (status, body) = post_event(&server, "location_agent0", &[], event);
    assert_eq!(status, 202, "{body}");
    let m = participant1
        .message("Location Event Detected")
        .await
        .unwrap();
    assert_eq!(m["to"], json!(["participant1"]));
    assert_eq!(
        m["event"]["data"]["content"]["values"],
        json!({"locationId": "100", "latitude": 34.05, "longitude": -118.24})
    );
}

/// `dataControl` may not touch the engine's history, nor name a system or malformed collection;
/// the refusal is a coded reply and the service goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_control_refuses_history_and_system_collections() {
    let server = support::dev(&["--patterns", "config/patterns"]);
    let mut admin = server.connect("root", &["admin"]).await.unwrap();
    let data = |id: &str, tasks: Value| {
        json!({"id": id, "type": "org.wt.control.dataControl", "thredId": "SYSTEM",
            "data": {"content": {"tasks": tasks}}})
    };
    let delete =
        |collection: &str| json!({"op": "delete", "params": {"type": collection, "matcher": {}}});
    let cases = [
        ("h1", json!([delete("ThredRecord")]), 4101, "history"),
        (
            "h2",
            json!([[delete("Notes"), delete("EventRecord")]]),
            4101,
            "history",
        ),
        ("s1", json!([delete("system.users")]), 5200, "params.type"),
        ("s2", json!([delete("$cmd")]), 5200, "params.type"),
        ("s3", json!([delete("../x")]), 5200, "params.type"),
    ];
    for (id, tasks, code, says) in cases {
        admin.send(data(id, tasks)).await.unwrap();
        let error = reply(&mut admin, id).await["data"]["content"]["error"].clone();
        assert_eq!(error["code"], code, "{id}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{id}: {error}"
        );
    }
    let put = json!({"op": "put", "params": {"type": "Notes", "values": {"id": "n1"}}});
    admin.send(data("ok", json!([put]))).await.unwrap();
    assert_eq!(
        reply(&mut admin, "ok").await["data"]["content"]["values"]["result"],
        json!(["n1"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_threds_notifies_the_watcher_of_changes() {
    let server = support::dev(&["--patterns", "config/patterns"]);
    let mut admin = server.connect("root", &["admin"]).await.unwrap();
    let mut alice = server.connect("alice", &[]).await.unwrap();
    admin
        .send(control(
            "w1",
            "org.wt.control.sysControl",
            json!({"op": "watchThreds"}),
        ))
        .await
        .unwrap();
    assert_eq!(
        reply(&mut admin, "w1").await["data"]["content"]["values"]["status"],
        "OK"
    );

    let values = json!({"echoTo": ["alice"], "echoTitle": "watched", "echoContent": 1});
    alice
        .send(json!({"id": "e1", "type": "org.wt.echo", "data": {"content": {"values": values}}}))
        .await
        .unwrap();
    let thred = alice.message("watched 1").await.unwrap()["event"]["thredId"]
        .as_str()
        .unwrap()
        .to_string();
    let note = reply(&mut admin, "w1").await;
    let listed = &note["data"]["content"]["values"]["threds"][0];
    assert_eq!(listed["id"], thred.as_str());
    assert_eq!(listed["status"], "a");
    assert_eq!(listed["patternId"], "echo");

    admin
        .send(control(
            "w2",
            "org.wt.control.sysControl",
            json!({"op": "watchThreds", "directive": "renew"}),
        ))
        .await
        .unwrap();
    assert_eq!(
        reply(&mut admin, "w2").await["data"]["content"]["values"]["directive"],
        "renew"
    );
    admin
        .send(control(
            "w3",
            "org.wt.control.sysControl",
            json!({"op": "watchThreds", "directive": "stop"}),
        ))
        .await
        .unwrap();
    assert_eq!(
        reply(&mut admin, "w3").await["data"]["content"]["values"]["directive"],
        "stop"
    );
    alice.send(json!({"id": "e2", "type": "org.wt.echo", "thredId": thred, "data": {"content": {"values": values}}})).await.unwrap();
    alice.message("watched 2").await.unwrap();
    let later = admin.drain(Duration::from_millis(500)).await;
    assert!(
        later.iter().all(|m| m["message"]["event"]["re"] != "w1"),
        "no notifications after stop: {later:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_the_connection_with_1009() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = support::dev(&["--patterns", "config/patterns"]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let big = "x".repeat(70 * 1024);
    alice
        .send_text(
            &json!({"event": {"id": "big", "type": "t", "data": {"title": big}}}).to_string(),
        )
        .await
        .unwrap();
    let mut ws = alice.into_inner();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = ws.next().await {
            if let Ok(Message::Close(Some(f))) = frame {
                return Some(u16::from(f.code));
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(closed, Some(1009));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_disconnected_without_delaying_others() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("threds.toml");
    // Room for a reader that is merely busy (the machine may be loaded), none for one that never reads.
    // The engine delivers in bursts (a batch of steps at once), so the queue must hold a burst.
    // The sender pushes 24 MB as fast as it can: no rate limit here (tests/limits.rs has those).
    std::fs::write(
        &config,
        "[server]\nconnection_queue = 256\nrate_events_per_sec = 0\nrate_bytes_per_sec = 0\n",
    )
    .unwrap();
    let server = support::dev(&[
        "--patterns",
        "config/patterns",
        "--config",
        config.to_str().unwrap(),
    ]);
    let slow = server.connect("slowpoke", &[]).await.unwrap(); // never reads
    let mut fast = server.connect("fast", &[]).await.unwrap();
    let values = json!({"echoTo": ["slowpoke", "fast"], "echoTitle": "burst", "echoContent": "y".repeat(30_000)});
    fast.send(json!({"id": "b0", "type": "org.wt.echo", "data": {"content": {"values": values}}}))
        .await
        .unwrap();
    let thred = fast.message("burst 1").await.unwrap()["event"]["thredId"]
        .as_str()
        .unwrap()
        .to_string();
    // 24 MB for a client that never reads: more than its socket buffers and queue can hold.
    let total = 800;
    for i in 1..total {
        fast.send(
            json!({"id": format!("b{i}"), "type": "org.wt.echo", "thredId": thred,
            "data": {"content": {"values": values}}}),
        )
        .await
        .unwrap();
    }
    let last = format!("burst {total}");
    fast.message(&last).await.unwrap();
    // The slow client was cut off with a reason (or, if its socket was already reset, just closed).
    let mut ws = slow.into_inner();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(f)))) => return format!("close {}", u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return format!("error {e}"),
                None => return "ended".to_string(),
            }
        }
    })
    .await
    .unwrap();
    assert!(
        outcome == "close 4408" || outcome.starts_with("error") || outcome == "ended",
        "{outcome}"
    );
}

/// The console: its page and assets under a strict content security policy, and in `threds dev`
/// one-click tokens for the sessions model's participants, checked on the way in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_and_threds_dev_mints_its_tokens() {
    let server = support::dev(&["--patterns", "config/patterns"]);
    let addr = server.addr();
    let page = http::get(addr, "/console").unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let policy = page.header("content-security-policy").unwrap();
    assert!(
        policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
        "{policy}"
    );
    assert!(page.body.contains("/console/console.js"));
    for asset in [
        "/console/console.js",
        "/console/graph.js",
        "/console/console.css",
    ] {
        let answer = http::get(addr, asset).unwrap();
        assert_eq!(answer.status, 200, "{asset}");
        assert!(!answer.body.is_empty(), "{asset}");
    }
    let listed = http::get(addr, "/console/api/dev/participants")
        .unwrap()
        .json();
    assert!(
        listed["participants"]
            .as_array()
            .unwrap()
            .contains(&json!({"participant": "admin", "roles": ["admin"]})),
        "{listed}"
    );
    let minted = http::post_json(
        addr,
        "/console/api/dev/token",
        None,
        &json!({"participant": "admin"}),
    )
    .unwrap();
    assert_eq!(minted.status, 200, "{}", minted.body);
    let token = minted.json()["token"].as_str().unwrap().to_string();
    let me = http::get_with_token(addr, "/console/api/whoami", &token)
        .unwrap()
        .json();
    assert_eq!(me["participant"], "admin");
    assert_eq!(
        me["admin"], true,
        "the sessions model makes admin an admin: {me}"
    );
    assert_eq!(me["minting"], true);
    let bad = http::post_json(
        addr,
        "/console/api/dev/token",
        None,
        &json!({"participant": "$x"}),
    )
    .unwrap();
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("participant"),
        "{}",
        bad.body
    );
    let unknown =
        http::post_json(addr, "/console/api/dev/token", None, &json!({"who": "x"})).unwrap();
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    let anonymous = http::get(addr, "/console/api/whoami").unwrap();
    assert_eq!(anonymous.status, 401);
}
