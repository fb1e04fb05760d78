//! End-to-end tests of the limits that keep hostile or careless clients from hurting the server
//! or other clients: stalled request bodies, silent (dead) WebSocket peers, fragmented messages
//! over the size limit. Each runs a real `threds dev` and talks to it over TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use threds_testkit::client::Client;
use threds_testkit::http;
use threds_testkit::rig::Process;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// A `threds dev` with the example patterns and `env` on top.
fn dev(env: &[(&'static str, &str)]) -> Process {
    let env: Vec<(&'static str, String)> = env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    support::threds()
        .start("dev", &["--patterns", "config/patterns"], &env)
        .unwrap()
}

/// The value of the sample `name` in the server's `/metrics`.
fn sample(server: &Process, name: &str) -> Option<f64> {
    http::metric(server.addr(), name).unwrap()
}

/// Opens a `POST /events` announcing a body of `length` bytes and sends none of it.
fn stalled_post(addr: &str, token: Option<&str>, length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST /events HTTP/1.1\r\nHost: threds\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// The status line of the answer on `stream`, waiting at most `within`.
fn status_line(stream: &mut TcpStream, within: Duration) -> String {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no answer within {within:?}: {e}"),
        }
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Held by the tests that measure latency and by the one that loads the machine most, so that
/// none of them runs beside another (the test harness runs a binary's tests in parallel).
static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Raises this process's open-files limit so that it can hold `sockets` client sockets.
fn room_for(sockets: u64) {
    let wanted = sockets + 512;
    let mut limit = rlimit::increase_nofile_limit(wanted).unwrap();
    if limit < wanted {
        // The hard limit is lower: a privileged process (CI runs as root) may raise it.
        let _ = rlimit::Resource::NOFILE.set(wanted, wanted);
        limit = rlimit::increase_nofile_limit(wanted).unwrap();
    }
    assert!(
        limit >= wanted,
        "the open files limit ({limit}) is too low for {sockets} sockets"
    );
}

/// The times of `n` round trips of `client` (participant `me`): an echo event to itself, until
/// its message arrives; sorted, shortest first. `tag` tells the runs apart; `pace` is the pause
/// between two (to stay within a rate limit).
async fn round_trips(
    client: &mut Client,
    me: &str,
    tag: &str,
    n: usize,
    pace: Duration,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep(pace).await;
        let title = format!("{tag}-rt{i}");
        let started = Instant::now();
        client.submit(&echo(&title, me, &title)).await.unwrap();
        client.message(&format!("{title} 1")).await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times
}

/// The `q` quantile (0..=1) of sorted `times`.
fn quantile(times: &[Duration], q: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
    times[i]
}

/// 2,000 sockets open `POST /events` and never send the body: the first
/// `[server] max_requests_in_flight` wait (until the body timeout answers 408), the rest are
/// refused at once (503, code 4293); meanwhile `/livez` answers and a WebSocket client's echo
/// round trips go on, all of them before the stalled requests time out (their p50 and p99 are
/// printed: a figure, not a timed assertion; on an idle 2-core machine p99 stays under 50 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_cut_off_and_others_are_served_meanwhile() {
    let _alone = EXCLUSIVE.lock().await;
    const SOCKETS: usize = 2_000;
    const IN_FLIGHT: usize = 1_000;
    room_for(SOCKETS as u64);
    // Long enough for the round trips below on a busy machine.
    let body_timeout = Duration::from_secs(20);
    // Every client here shares the loopback address: no per-address cap (tested below).
    let server = dev(&[
        ("THREDS_SERVER_BODY_TIMEOUT_MS", "20000"),
        ("THREDS_SERVER_MAX_CONNECTIONS_PER_ADDRESS", "0"),
        ("THREDS_SERVER_MAX_REQUESTS_IN_FLIGHT", "1000"),
    ]);
    let token = server.token("mallory", &[]).unwrap();
    let mut alice = server.connect("alice", &[]).await.unwrap();
    // Requests whose bodies never come.
    let opened = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..SOCKETS)
        .map(|_| stalled_post(server.addr(), Some(&token), 1000))
        .collect();

    // Meanwhile the server answers probes and serves another participant.
    let times = round_trips(&mut alice, "alice", "alice", 200, Duration::ZERO).await;
    for _ in 0..5 {
        assert_eq!(http::get(server.addr(), "/livez").unwrap().status, 200);
    }
    let (p50, p99) = (quantile(&times, 0.5), quantile(&times, 0.99));
    eprintln!("with {SOCKETS} stalled bodies: echo round trip p50 {p50:?}, p99 {p99:?}");
    assert!(
        opened.elapsed() < body_timeout,
        "served while the bodies were still stalled ({:?})",
        opened.elapsed()
    );

    // Those in flight are answered 408 once the body timeout passes; the others were refused.
    let (mut timed_out, mut busy) = (0, 0);
    for stream in &mut stalled {
        let status = status_line(stream, Duration::from_secs(30));
        if status.starts_with("HTTP/1.1 408") {
            timed_out += 1;
        } else if status.starts_with("HTTP/1.1 503") {
            busy += 1;
        } else {
            panic!("{status}");
        }
    }
    assert_eq!((timed_out, busy), (IN_FLIGHT, SOCKETS - IN_FLIGHT));
    assert!(opened.elapsed() >= body_timeout);
    assert_eq!(
        sample(&server, "threds_busy_requests_total"),
        Some((SOCKETS - IN_FLIGHT) as f64)
    );

    // Without a valid token, nothing of the body is waited for.
    let started = Instant::now();
    let mut anonymous = stalled_post(server.addr(), None, 1000);
    let status = status_line(&mut anonymous, Duration::from_secs(20));
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert!(
        started.elapsed() < body_timeout,
        "refused before the body timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_websocket_peer_is_closed_and_a_live_one_is_not() {
    let server = dev(&[
        ("THREDS_SERVER_PING_INTERVAL_MS", "100"),
        ("THREDS_SERVER_PING_TIMEOUT_MS", "800"),
    ]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    // A peer that completed the handshake and then went away without a word: never read, so it
    // never answers a ping.
    let url = format!(
        "ws://{}/ws?token={}",
        server.addr(),
        server.token("ghost", &[]).unwrap()
    );
    let mut ghost = Client::connect_url(&url).await.unwrap();
    let gauge = "threds_websocket_connections";
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_both = false;
    loop {
        // Alice reads (and so answers pings) while the ghost stays silent.
        alice.drain(Duration::from_millis(200)).await;
        let open = sample(&server, gauge).unwrap_or_default();
        saw_both |= open >= 2.0;
        if saw_both && open <= 1.0 {
            assert!(open >= 1.0, "alice's connection stays");
            break;
        }
        assert!(Instant::now() < deadline, "the silent peer was not closed");
    }
    // The ghost was told why, had it listened.
    let close = loop {
        match ghost.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(4409));
    // Alice, who answered every ping, is still served.
    let values = json!({"echoTo": ["alice"], "echoTitle": "alive", "echoContent": 1});
    alice
        .send(json!({"id": "e1", "type": "org.wt.echo", "data": {"content": {"values": values}}}))
        .await
        .unwrap();
    alice.message("alive 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragmented_message_over_the_limit_is_closed_with_1009() {
    let server = dev(&[("THREDS_SERVER_MAX_FRAME_BYTES", "65536")]);
    let url = format!(
        "ws://{}/ws?token={}",
        server.addr(),
        server.token("alice", &[]).unwrap()
    );
    let mut socket = Client::connect_url(&url).await.unwrap();
    // Two fragments of 40 KiB: each within the limit, the message over it.
    let part = "x".repeat(40 * 1024);
    socket
        .send(Message::Frame(Frame::message(
            part.clone(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await
        .unwrap();
    socket
        .send(Message::Frame(Frame::message(
            part,
            OpCode::Data(Data::Continue),
            true,
        )))
        .await
        .unwrap();
    let close = loop {
        match socket.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1009));
}

/// A connection that sends as fast as it can is held to its rate: every event it sends is
/// answered, accepted (ack) or refused (4290), never dropped silently; meanwhile another
/// participant's echo round trips stay within twice their idle latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_connection_is_rate_limited_and_others_are_served() {
    let _alone = EXCLUSIVE.lock().await;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    // Bob's round trips, one per `PACE`, stay within the limit every connection has.
    const PACE: Duration = Duration::from_millis(15);
    let server = dev(&[
        ("THREDS_SERVER_RATE_EVENTS_PER_SEC", "100"),
        ("THREDS_SERVER_RATE_EVENTS_BURST", "20"),
    ]);
    let mut bob = server.connect("bob", &[]).await.unwrap();
    round_trips(&mut bob, "bob", "warm", 20, PACE).await;
    let idle = round_trips(&mut bob, "bob", "idle", 100, PACE).await;

    // Mallory writes without pause while reading every answer.
    let (mut to_server, mut from_server) = server.connect("mallory", &[]).await.unwrap().split();
    let flooding = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let writer = tokio::spawn({
        let (flooding, sent) = (flooding.clone(), sent.clone());
        async move {
            while flooding.load(Ordering::Relaxed) {
                let n = sent.load(Ordering::Relaxed);
                let event = json!({"id": format!("f{n}"), "type": "org.noise"});
                if to_server.submit(&event).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            to_server
        }
    });
    // Counts the answers until the writer has stopped and each of its events is answered.
    let written = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn({
        let (sent, written) = (sent.clone(), written.clone());
        async move {
            let (mut acks, mut limited) = (0usize, 0usize);
            let mut quiet = 0;
            loop {
                let done = written.load(Ordering::Relaxed);
                if done && acks + limited == sent.load(Ordering::Relaxed) {
                    break (acks, limited);
                }
                let next =
                    tokio::time::timeout(Duration::from_secs(1), from_server.next_frame()).await;
                match next {
                    Ok(Ok(Some(frame))) if frame.get("ack").is_some() => acks += 1,
                    Ok(Ok(Some(frame))) => {
                        assert_eq!(frame["error"]["code"], 4290, "{frame}");
                        assert!(frame["error"]["ref"]
                            .as_str()
                            .is_some_and(|r| r.starts_with('f')));
                        limited += 1;
                    }
                    Ok(other) => panic!("mallory's connection ended: {other:?}"),
                    Err(_) if done => {
                        quiet += 1;
                        if quiet >= 10 {
                            break (acks, limited);
                        }
                    }
                    Err(_) => {}
                }
            }
        }
    });
    let flood = round_trips(&mut bob, "bob", "flood", 100, PACE).await;
    flooding.store(false, Ordering::Relaxed);
    let _writer = writer.await.unwrap();
    written.store(true, Ordering::Relaxed);
    let (acks, limited) = reader.await.unwrap();
    // Until the last answer: the server goes on admitting what it had read as time passes.
    let elapsed = started.elapsed().as_secs_f64();
    let sent = sent.load(Ordering::Relaxed);

    let (idle_p50, flood_p50) = (quantile(&idle, 0.5), quantile(&flood, 0.5));
    eprintln!(
        "mallory sent {sent} in {elapsed:.2} s: {acks} accepted, {limited} refused; bob's echo p50 idle {idle_p50:?}, during the flood {flood_p50:?} (p95 {:?} / {:?})",
        quantile(&idle, 0.95),
        quantile(&flood, 0.95)
    );
    assert_eq!(acks + limited, sent, "every event is answered");
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let allowed = 20 + (100.0 * elapsed).ceil() as usize;
    assert!(
        acks <= allowed,
        "{acks} accepted in {elapsed:.2} s; at most {allowed}"
    );
    assert!(limited >= 1000, "a flood, refused: {limited} of {sent}");
    assert_eq!(
        sample(&server, "threds_rate_limited_frames_total"),
        Some(limited as f64)
    );
    assert!(
        flood_p50 <= idle_p50 * 2,
        "bob's p50 during the flood {flood_p50:?}, idle {idle_p50:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_faster_than_the_limit_gets_429_with_retry_after() {
    let server = dev(&[
        ("THREDS_SERVER_PARTICIPANT_EVENTS_PER_SEC", "1"),
        ("THREDS_SERVER_PARTICIPANT_EVENTS_BURST", "5"),
    ]);
    let token = server.token("mallory", &[]).unwrap();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for n in 0..20 {
        let event = json!({"id": format!("h{n}"), "type": "org.noise"});
        let answer = http::post_json(server.addr(), "/events", Some(&token), &event).unwrap();
        if answer.status == 429 {
            assert_eq!(answer.json()["error"]["code"], 4290, "{}", answer.body);
            retry_after = answer.header("retry-after").map(str::to_owned);
        }
        statuses.push(answer.status);
    }
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert!((5..=7).contains(&accepted), "{statuses:?}");
    assert_eq!(
        accepted + statuses.iter().filter(|s| **s == 429).count(),
        20
    );
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
    // Another participant has its own budget.
    let bob = server.token("bob", &[]).unwrap();
    let event = json!({"id": "b1", "type": "org.noise"});
    let answer = http::post_json(server.addr(), "/events", Some(&bob), &event).unwrap();
    assert_eq!(answer.status, 202, "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_browser_origins_may_connect() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = dev(&[("THREDS_SERVER_ALLOWED_ORIGINS", "https://app.example")]);
    let url = format!(
        "ws://{}/ws?token={}",
        server.addr(),
        server.token("alice", &[]).unwrap()
    );
    let with_origin = |origin: &str| {
        let mut request = url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
        request
    };
    match tokio_tungstenite::connect_async(with_origin("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => {
            assert_eq!(answer.status(), 403);
        }
        other => panic!("expected 403, got {:?}", other.map(|(_, r)| r.status())),
    }
    let (_ws, answer) = tokio_tungstenite::connect_async(with_origin("https://app.example"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 101);
    // Not a browser (no Origin): allowed.
    server.connect("bob", &[]).await.unwrap();
}

/// A control request of `kind` with `values`.
fn control(id: &str, kind: &str, values: serde_json::Value) -> serde_json::Value {
    json!({"id": id, "type": kind, "thredId": "SYSTEM", "data": {"content": {"values": values}}})
}

/// The event answering request `id` (a reply or an error notification).
async fn answer(client: &mut Client, id: &str) -> serde_json::Value {
    let id = id.to_string();
    let within = Duration::from_secs(10);
    let frame = client.frame(move |f| f["message"]["event"]["re"] == id.as_str(), within);
    frame.await.unwrap()["message"]["event"].clone()
}

/// An echo event from its sender to `to`, titled `title`.
fn echo(id: &str, to: &str, title: &str) -> serde_json::Value {
    let values = json!({"echoTo": [to], "echoTitle": title, "echoContent": 1});
    json!({"id": id, "type": "org.wt.echo", "data": {"content": {"values": values}}})
}

/// Settings of the memory test: small retentions, so the bound is tight, and no rate limits, so
/// one participant sends as fast as the server takes its events.
const MEMORY_SETTINGS: &[(&str, &str)] = &[
    ("THREDS_STORAGE_BUS_RETENTION_BYTES", "4194304"),
    ("THREDS_STORAGE_HISTORY_RETENTION_BYTES", "8388608"),
    ("THREDS_SERVER_MAX_REQUESTS_IN_FLIGHT", "16"),
    ("THREDS_SERVER_BACKPRESSURE_LAG_BYTES", "2097152"),
    ("THREDS_SERVER_RATE_EVENTS_PER_SEC", "0"),
    ("THREDS_SERVER_RATE_BYTES_PER_SEC", "0"),
    ("THREDS_SERVER_PARTICIPANT_EVENTS_PER_SEC", "0"),
    ("THREDS_SERVER_PARTICIPANT_BYTES_PER_SEC", "0"),
];

/// One participant sends 100,000 events of the largest size a frame allows (`E2E_MAX_SIZE_EVENTS`
/// overrides the count), each advancing one of ten echo threds, which echo it to a second
/// participant: every event is accepted and echoed, and the server's peak resident memory stays
/// under the bound its settings give for two connections (`Config::memory_bound`,
/// docs/operations.md "Memory").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_size_events_from_one_participant_stay_within_the_memory_bound() {
    let _alone = EXCLUSIVE.lock().await;
    let events: usize = std::env::var("E2E_MAX_SIZE_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let server = dev(MEMORY_SETTINGS);
    let config = threds_runtime::config::Config::default()
        .with_env(|name| {
            MEMORY_SETTINGS
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
    let bound_kib = config.memory_bound(2) / 1024;
    let idle_kib = server.peak_rss_kib().unwrap();
    let content = config.server.max_frame_bytes - 1024;
    let flooded = threds_testkit::flood::max_size_echoes(&server, events, content)
        .await
        .unwrap();
    let peak_kib = server.peak_rss_kib().unwrap();
    eprintln!(
        "{events} events of {} KiB in {:.1} s: peak RSS {peak_kib} KiB (idle {idle_kib} KiB), bound {bound_kib} KiB; {} delayed by backpressure",
        config.server.max_frame_bytes / 1024,
        flooded.elapsed.as_secs_f64(),
        sample(&server, "threds_backpressure_delayed_total").unwrap_or_default()
    );
    assert!(
        peak_kib < bound_kib,
        "peak RSS {peak_kib} KiB over the bound {bound_kib} KiB"
    );
}

/// An event larger than `[engine] max_event_bytes` reaches the engine (the session's frame limit
/// is larger here, as a producer writing straight to Kafka has none): it is refused, and its
/// sender gets error 4291 naming the limit; smaller events go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_engines_size_limit_is_refused_to_its_sender() {
    let server = dev(&[("THREDS_ENGINE_MAX_EVENT_BYTES", "4096")]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let values =
        json!({"echoTo": ["alice"], "echoTitle": "big", "echoContent": "x".repeat(10_000)});
    let big = json!({"id": "big1", "type": "org.wt.echo", "data": {"content": {"values": values}}});
    alice.send(big).await.unwrap();
    let refusal = answer(&mut alice, "big1").await;
    let error = &refusal["data"]["content"]["error"];
    assert_eq!(error["code"], 4291, "{refusal}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_event_bytes")),
        "{refusal}"
    );
    alice.send(echo("small", "alice", "small")).await.unwrap();
    alice.message("small 1").await.unwrap();
}

/// A participant over its quota of live threds gets error 4291 for each thred it would start
/// more, and others are unaffected; an admin pages through the live threds (no answer holds them
/// all), and a participant's `getThreds` lists its own threds from the participant index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_over_its_thred_quota_is_refused_and_others_are_not() {
    let server = dev(&[("THREDS_ENGINE_MAX_THREDS_PER_PARTICIPANT", "5")]);
    let mut mallory = server.connect("mallory", &[]).await.unwrap();
    for n in 0..5 {
        let id = format!("m{n}");
        mallory.send(echo(&id, "mallory", &id)).await.unwrap();
        mallory.message(&format!("{id} 1")).await.unwrap();
    }
    for n in 5..8 {
        let id = format!("m{n}");
        mallory.send(echo(&id, "mallory", &id)).await.unwrap();
        let refusal = answer(&mut mallory, &id).await;
        let error = &refusal["data"]["content"]["error"];
        assert_eq!(error["code"], 4291, "{refusal}");
        assert!(error["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_threds_per_participant = 5")));
    }
    let mut bob = server.connect("bob", &[]).await.unwrap();
    bob.send(echo("b0", "bob", "b0")).await.unwrap();
    bob.message("b0 1").await.unwrap();

    // Admin: pages of two, each pointing at the next, covering the six live threds once.
    let mut admin = server.connect("root", &["admin"]).await.unwrap();
    let sys = "org.wt.control.sysControl";
    let (mut seen, mut after, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let id = format!("page{pages}");
        let values = json!({"op": "getThreds", "limit": 2, "after": after});
        admin.send(control(&id, sys, values)).await.unwrap();
        let reply = answer(&mut admin, &id).await;
        let values = &reply["data"]["content"]["values"];
        let threds = values["threds"].as_array().unwrap();
        assert!(threds.len() <= 2, "{reply}");
        seen.extend(threds.iter().map(|t| t["id"].as_str().unwrap().to_string()));
        pages += 1;
        match values["next"]["after"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique, seen, "pages are in id order, without repeats");
    assert!(pages >= 3);
    let bad = control("bad", sys, json!({"op": "getThreds", "limit": 100_000}));
    admin.send(bad).await.unwrap();
    assert_eq!(
        answer(&mut admin, "bad").await["data"]["content"]["error"]["code"],
        4200
    );

    // A participant's own threds, from the index.
    let user = "org.wt.control.userControl";
    bob.send(control("mine", user, json!({"op": "getThreds"})))
        .await
        .unwrap();
    let mine = answer(&mut bob, "mine").await;
    let results = mine["data"]["content"]["values"]["results"]
        .as_array()
        .unwrap();
    assert_eq!(results.len(), 1, "{mine}");
    assert!(results[0]["thred"]["id"].is_string());
}

/// One client address holds at most `[server] max_connections_per_address` connections at once
/// (WebSockets and requests in flight): the next is refused with 429, code 4292, and a place is
/// free again once a connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_connections() {
    let server = dev(&[("THREDS_SERVER_MAX_CONNECTIONS_PER_ADDRESS", "3")]);
    let mut open = Vec::new();
    for p in ["a", "b", "c"] {
        open.push(server.connect(p, &[]).await.unwrap());
    }
    let token = server.token("d", &[]).unwrap();
    let event = json!({"id": "x", "type": "org.noise"});
    let answer = http::post_json(server.addr(), "/events", Some(&token), &event).unwrap();
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], 4292, "{}", answer.body);
    assert!(answer.header("retry-after").is_some());
    assert!(
        server.connect("d", &[]).await.is_err(),
        "a fourth WebSocket is refused"
    );

    // Closing a connection frees its place (the server notices the close on its own time).
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = http::post_json(server.addr(), "/events", Some(&token), &event).unwrap();
        if answer.status == 202 {
            break;
        }
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert!(Instant::now() < deadline, "no place freed within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `n` events with ids `{prefix}{i}` as fast as it can and waits for the answer to every
/// one; answers the acks and the refusals, each by the participant's rate limit (4290, naming the
/// event).
async fn flood(mut client: Client, prefix: String, n: usize) -> (usize, usize) {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for id in &ids {
        client
            .submit(&json!({"id": id, "type": "org.noise"}))
            .await
            .unwrap();
    }
    let answers = client.answers(&ids, Duration::from_secs(30)).await.unwrap();
    let acks = answers.iter().filter(|a| a.get("ack").is_some()).count();
    for refusal in answers.iter().filter(|a| a.get("ack").is_none()) {
        assert_eq!(refusal["error"]["code"], 4290, "{refusal}");
        let message = refusal["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("this participant"), "{refusal}");
    }
    (acks, n - acks)
}

/// Floods from `clients` at once (`n` events each, ids prefixed by the connection's number);
/// answers the acks and refusals in all, and how long it took.
async fn flood_all(clients: Vec<Client>, n: usize) -> (usize, usize, f64) {
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, client)| tokio::spawn(flood(client, format!("c{c}-"), n)))
        .collect();
    let (mut acks, mut limited) = (0, 0);
    for task in tasks {
        let (a, l) = task.await.unwrap();
        acks += a;
        limited += l;
    }
    (acks, limited, started.elapsed().as_secs_f64())
}

/// A participant limit of 1 event a second in bursts of 20 (chunks of 2).
const LOW_PARTICIPANT_LIMIT: [(&str, &str); 2] = [
    ("THREDS_SERVER_PARTICIPANT_EVENTS_PER_SEC", "1"),
    ("THREDS_SERVER_PARTICIPANT_EVENTS_BURST", "20"),
];

/// Floods from connections of one participant at once (on `nodes` session nodes), 30 events
/// each, and checks that together they got its budget ([`LOW_PARTICIPANT_LIMIT`]) once: every
/// event answered, and the acks within a chunk per node of what the budget allowed meanwhile.
async fn share_the_budget(clients: Vec<Client>, nodes: usize) {
    let sent = clients.len() * 30;
    let (acks, limited, elapsed) = flood_all(clients, 30).await;
    assert_eq!(acks + limited, sent, "every event answered");
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let refilled = elapsed.ceil() as usize;
    let (least, most) = (20 - 2 * nodes, 20 + refilled + 2 * nodes);
    eprintln!("{nodes} node(s): {acks} acks, {limited} refusals of {sent} in {elapsed:.2} s");
    assert!(
        (least..=most).contains(&acks),
        "{acks} accepted of {sent} in {elapsed:.2} s on {nodes} node(s); the budget allows {least} to {most}"
    );
}

/// Checks that `client`'s participant is not limited by another's flood: 15 events, all acked.
async fn unlimited(client: Client) {
    let (acks, limited, _) = flood_all(vec![client], 15).await;
    assert_eq!((acks, limited), (15, 0), "limited by another participant");
}

/// A participant's rate limit holds over all its connections and `POST /events` together: two
/// WebSockets of one participant, each far within its connection's limit (1,000/s), share the
/// participant's budget (every event answered, acked or refused with 4290), requests then get
/// 429, and another participant is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participants_connections_share_its_rate_limit_and_others_are_served() {
    let server = dev(&LOW_PARTICIPANT_LIMIT);
    let clients = vec![
        server.connect("mallory", &[]).await.unwrap(),
        server.connect("mallory", &[]).await.unwrap(),
    ];
    share_the_budget(clients, 1).await;

    // The same budget for requests: of five in a row, at most what refilled meanwhile (1/s) is
    // accepted.
    let token = server.token("mallory", &[]).unwrap();
    let mut refused = 0;
    for n in 0..5 {
        let event = json!({"id": format!("h{n}"), "type": "org.noise"});
        let answer = http::post_json(server.addr(), "/events", Some(&token), &event).unwrap();
        if answer.status == 202 {
            continue;
        }
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert_eq!(answer.json()["error"]["code"], 4290, "{}", answer.body);
        assert!(answer
            .header("retry-after")
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
        refused += 1;
    }
    assert!(refused >= 2, "{refused} of 5 requests refused");

    unlimited(server.connect("bob", &[]).await.unwrap()).await;
}

/// Two session nodes on one Redis share a participant's budget: connections of one participant to
/// each node, flooding together, get the participant's budget once (within a chunk per node), not
/// once per node (which would be 40).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_nodes_share_a_participants_rate_limit_through_the_store() {
    if !threds_testkit::redis::available("session_nodes_share_a_participants_rate_limit") {
        return;
    }
    let infra = support::infrastructure();
    let args = ["--patterns", "config/patterns"];
    let node = |name: &str| {
        let mut env = infra.env(name);
        env.extend(LOW_PARTICIPANT_LIMIT.map(|(k, v)| (k, v.to_owned())));
        support::threds().start("session", &args, &env).unwrap()
    };
    let (one, two) = (node("session-1"), node("session-2"));
    let clients = vec![
        one.connect("mallory", &[]).await.unwrap(),
        two.connect("mallory", &[]).await.unwrap(),
    ];
    share_the_budget(clients, 2).await;
    unlimited(two.connect("bob", &[]).await.unwrap()).await;
    drop((one, two, infra));
}
