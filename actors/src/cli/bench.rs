//! `threds bench`: load-tests a `threds dev` it starts itself (on a free port, in memory) with the
//! echo pattern, over WebSocket, and reports throughput, latency and resident memory.

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Arguments of `threds bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// WebSocket clients in the throughput test.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Events each client keeps in flight.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events per second for the latency test.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Live threds for the memory test.
    #[arg(long, default_value_t = 10_000)]
    threds: usize,
    /// Open connections for the memory test.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    /// Only the memory test.
    #[arg(long)]
    memory_only: bool,
    /// Measure the distributed deployment instead: one `threds engine` and one `threds session`
    /// process on a mock Kafka cluster (hosted here) and a `redis-server` started here; also
    /// reports Redis commands per event.
    #[arg(long)]
    cluster: bool,
    /// Measure one `threds engine` process alone instead: events produced straight to Kafka
    /// (mock cluster and `redis-server` started here), for the echo pattern and the reference
    /// `downtime` pattern's first step.
    #[arg(long)]
    engine: bool,
    /// Events per workload of `--engine`.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Live echo threds the events of `--engine` go to.
    #[arg(long, default_value_t = 1_000)]
    echo_threds: usize,
    /// The reference system's directory, for `--engine`'s downtime workload (skipped when absent).
    #[arg(long, default_value = "../shared/reference/srvthreds")]
    reference: std::path::PathBuf,
}

const SECRET: &str = "threds-bench-secret";

struct Server {
    child: Child,
    addr: String,
    /// The other processes and services of a cluster run (kept alive with the server).
    cluster: Option<Cluster>,
}

/// The pieces of `--cluster`: broker, Redis, and the engine process (the session process is the
/// [`Server`]).
struct Cluster {
    engine: Child,
    /// The engine's HTTP address (`/metrics`).
    engine_addr: String,
    redis: threds_runtime::testing::redis::RedisServer,
    _kafka: threds_runtime::testing::kafka::MockKafka,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(cluster) = &mut self.cluster {
            let _ = cluster.engine.kill();
            let _ = cluster.engine.wait();
        }
    }
}

/// Reads `child`'s log until its listening line; answers `host:port` and keeps draining the log
/// (so the process never blocks on a full pipe) into `threds-bench-<pid>.log` in the temporary
/// directory.
pub(super) fn listen_address(child: &mut Child) -> anyhow::Result<String> {
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let mut said = Vec::new();
    let addr = loop {
        let Some(line) = lines.next() else {
            bail!(
                "the threds process exited before listening; it said:\n{}",
                said.join("\n")
            )
        };
        let line = line?;
        said.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    // The rest of the log goes to a file (for a run that goes wrong), named after the process.
    let path = std::env::temp_dir().join(format!("threds-bench-{}.log", child.id()));
    let mut log = std::fs::File::create(&path).ok();
    std::thread::spawn(move || {
        use std::io::Write;
        for line in lines.map_while(Result::ok) {
            if let Some(file) = log.as_mut() {
                let _ = writeln!(file, "{line}");
            }
        }
    });
    Ok(addr)
}

/// Spawns `threds <args>` with `env`, logging at warn (plus the start-up line).
pub(super) fn spawn(args: &[&str], env: &[(&str, String)]) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating the threds binary")?;
    Command::new(exe)
        .args(args)
        .env("THREDS_JWT_SECRET", SECRET)
        .env("THREDS_LOG", "warn,threds::node=info")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting threds {}", args.join(" ")))
}

impl Server {
    fn start(cluster: bool) -> anyhow::Result<Server> {
        if cluster {
            return Server::start_cluster();
        }
        let child = spawn(
            &[
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--patterns",
                "config/patterns",
            ],
            &[],
        )?;
        Server::listening(child, None)
    }

    /// Mock Kafka and redis-server here, then `threds engine` and `threds session`.
    fn start_cluster() -> anyhow::Result<Server> {
        use threds_runtime::testing::{kafka::MockKafka, redis::RedisServer};
        let kafka = MockKafka::start(1).context("starting the mock Kafka cluster")?;
        for topic in threds_runtime::topology::Topology::new(4).topics() {
            kafka
                .create_topic(&topic.name, topic.partitions)
                .with_context(|| format!("creating {}", topic.name))?;
        }
        let redis =
            RedisServer::start().context("starting redis-server (scripts/install/redis.sh)")?;
        let env = |node: &str| {
            vec![
                ("THREDS_KAFKA_BROKERS", kafka.bootstrap().to_string()),
                (
                    "THREDS_KAFKA_PROPERTIES",
                    threds_runtime::testing::kafka::MOCK_PROPERTIES.to_string(),
                ),
                ("THREDS_REDIS_URLS", redis.url()),
                ("THREDS_DOCUMENTS", "memory".to_string()),
                ("THREDS_NODE", node.to_string()),
            ]
        };
        let common = [
            "--listen",
            "127.0.0.1:0",
            "--patterns",
            "config/patterns",
            "--config",
            "/nonexistent/threds.toml",
        ];
        let mut engine = spawn(
            &[&["engine"][..], &common[..]].concat(),
            &env("bench-engine"),
        )?;
        let engine_addr = listen_address(&mut engine)?;
        let session = spawn(
            &[&["session"][..], &common[..]].concat(),
            &env("bench-session"),
        )?;
        let cluster = Cluster {
            engine,
            engine_addr,
            redis,
            _kafka: kafka,
        };
        let server = Server::listening(session, Some(cluster))?;
        server.wait_ready(Duration::from_secs(60))?;
        Ok(server)
    }

    /// Waits for the process's listening line; answers the server.
    fn listening(mut child: Child, cluster: Option<Cluster>) -> anyhow::Result<Server> {
        let addr = listen_address(&mut child)?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(Server {
            child,
            addr,
            cluster,
        })
    }

    /// Waits until the session process says it is ready and the engine has its partitions.
    fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(&self.addr) {
                use std::io::{Read, Write};
                let _ = write!(s, "GET /readyz HTTP/1.0\r\n\r\n");
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200") {
                    // The engine's readiness is not visible from here: give the group a moment.
                    std::thread::sleep(Duration::from_secs(5));
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the session process never became ready")
    }

    /// The engine's count of Redis round trips (its `/metrics`).
    fn engine_round_trips(&self) -> Option<u64> {
        let cluster = self.cluster.as_ref()?;
        http_get(&cluster.engine_addr, "/metrics")?
            .lines()
            .find_map(|l| l.strip_prefix("threds_store_round_trips_total "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// See [`redis_calls`].
    fn redis_calls(&self) -> Option<(u64, u64)> {
        redis_calls(&self.cluster.as_ref()?.redis)
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// The whole HTTP/1.0 answer (status line, headers, body) of `GET path` at `addr`.
pub(super) fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// Redis commands executed so far (every command, including those run inside scripts) and
/// script calls (EVALSHA/EVAL), from `INFO commandstats`.
pub(super) fn redis_calls(
    redis: &threds_runtime::testing::redis::RedisServer,
) -> Option<(u64, u64)> {
    let stats = redis.command("INFO commandstats").ok()?;
    let (mut all, mut scripts) = (0u64, 0u64);
    for line in stats.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let calls: u64 = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if name == "info" {
            continue;
        }
        all += calls;
        if name == "evalsha" || name == "eval" {
            scripts += calls;
        }
    }
    Some((all, scripts))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str, participant: &str) -> anyhow::Result<Socket> {
    let secret =
        crate::auth::Secret::from_bytes(SECRET.as_bytes(), crate::auth::SecretSource::Configured);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let token = secret.mint(participant, &[], now, 3600)?;
    let mut req = format!("ws://{addr}/ws").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    // Small frames both ways: disable Nagle, as latency-sensitive clients do.
    Ok(
        tokio_tungstenite::connect_async_with_config(req, None, true)
            .await?
            .0,
    )
}

fn echo(id: String, participant: &str, thred: Option<&str>, sent_us: u64) -> Message {
    let mut event = json!({"id": id, "type": "org.wt.echo", "data": {"content": {"values": {
        "echoTo": [participant], "echoTitle": "b", "echoContent": sent_us}}}});
    if let Some(t) = thred {
        event["thredId"] = json!(t);
    }
    Message::text(json!({ "event": event }).to_string())
}

fn micros(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Runs one client: starts its thred, then keeps `window` events in flight (or paces at `interval`)
/// until `deadline`; answers (delivered messages, latencies in µs).
async fn client(
    addr: String,
    n: usize,
    window: usize,
    interval: Option<Duration>,
    epoch: Instant,
    deadline: Instant,
) -> anyhow::Result<(u64, Vec<u64>)> {
    let me = format!("bench{n}");
    let mut ws = connect(&addr, &me).await?;
    ws.send(echo(format!("{me}-start"), &me, None, micros(epoch)))
        .await?;
    let thred = loop {
        let Some(frame) = ws.next().await else {
            bail!("closed")
        };
        if let Message::Text(t) = frame? {
            let v: Value = serde_json::from_str(&t)?;
            if let Some(id) = v["message"]["event"]["thredId"].as_str() {
                break id.to_string();
            }
        }
    };
    if let Some(period) = interval {
        return paced(ws, me, thred, period, epoch, deadline).await;
    }
    let (mut sent, mut delivered, mut in_flight) = (0u64, 0u64, 0usize);
    let mut latencies = Vec::new();
    let mut tick = interval.map(tokio::time::interval);
    while Instant::now() < deadline {
        let can_send = match &tick {
            Some(_) => false,
            None => in_flight < window,
        };
        if can_send {
            ws.send(echo(
                format!("{me}-{sent}"),
                &me,
                Some(&thred),
                micros(epoch),
            ))
            .await?;
            sent += 1;
            in_flight += 1;
            continue;
        }
        tokio::select! {
            _ = async { match tick.as_mut() { Some(t) => { t.tick().await; } None => std::future::pending().await } } => {
                ws.send(echo(format!("{me}-{sent}"), &me, Some(&thred), micros(epoch))).await?;
                sent += 1;
            }
            frame = ws.next() => {
                let Some(frame) = frame else { break };
                if let Message::Text(t) = frame? {
                    let v: Value = serde_json::from_str(&t)?;
                    if let Some(at) = v["message"]["event"]["data"]["content"]["values"]["echo"].as_u64() {
                        delivered += 1;
                        in_flight = in_flight.saturating_sub(1);
                        latencies.push(micros(epoch).saturating_sub(at));
                    }
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => break,
        }
    }
    Ok((delivered, latencies))
}

/// A paced client: one task sends every `period`, another reads, so reading never waits on sending.
async fn paced(
    ws: Socket,
    me: String,
    thred: String,
    period: Duration,
    epoch: Instant,
    deadline: Instant,
) -> anyhow::Result<(u64, Vec<u64>)> {
    let (mut tx, mut rx) = ws.split();
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        let mut sent = 0u64;
        while Instant::now() < deadline {
            tick.tick().await;
            if tx
                .send(echo(
                    format!("{me}-{sent}"),
                    &me,
                    Some(&thred),
                    micros(epoch),
                ))
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        tx
    });
    let mut latencies = Vec::new();
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline.into(), rx.next()).await {
        if let Message::Text(t) = frame? {
            let v: Value = serde_json::from_str(&t)?;
            if let Some(at) = v["message"]["event"]["data"]["content"]["values"]["echo"].as_u64() {
                latencies.push(micros(epoch).saturating_sub(at));
            }
        }
    }
    let _ = writer.await;
    Ok((latencies.len() as u64, latencies))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn load(
    addr: &str,
    clients: usize,
    window: usize,
    rate: Option<u64>,
    seconds: u64,
) -> anyhow::Result<(f64, Vec<u64>)> {
    let epoch = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(seconds) + Duration::from_millis(500);
    let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r.max(1) as f64));
    let tasks: Vec<_> = (0..clients)
        .map(|n| {
            tokio::spawn(client(
                addr.to_string(),
                n,
                window,
                interval,
                epoch,
                deadline,
            ))
        })
        .collect();
    let (mut total, mut all) = (0u64, Vec::new());
    for t in tasks {
        let (d, l) = t.await??;
        total += d;
        all.extend(l);
    }
    all.sort_unstable();
    Ok((total as f64 / seconds as f64, all))
}

/// Runs the three measurements and prints a report.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.engine {
        use super::bench_engine::{measure, Workload};
        let echo = Workload::Echo {
            threds: args.echo_threds.max(1),
        };
        measure(&echo, args.events, true, Some(args.rate))?;
        measure(&echo, args.events, false, None)?;
        if args.reference.is_dir() {
            let downtime = Workload::Downtime {
                reference: args.reference.clone(),
            };
            measure(&downtime, args.events, true, None)?;
        } else {
            println!(
                "engine, downtime: skipped ({} not found; --reference names the srvthreds directory)",
                args.reference.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let server = Server::start(args.cluster)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let load_now = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_string()
    };
    println!(
        "threds bench: server {} (pid {}), idle RSS {} KiB, load average {}",
        server.addr,
        server.child.id(),
        server.rss_kib(),
        load_now()
    );
    runtime.block_on(async {
        if !args.memory_only {
        let before = server.redis_calls();
        let trips_before = server.engine_round_trips();
        let (rate, lat) = load(&server.addr, args.clients, args.window, None, args.seconds).await?;
        let after = server.redis_calls();
        let trips_after = server.engine_round_trips();
        println!("throughput: {} clients x {} in flight, {} s: {:.0} events/s delivered (p50 {:.2} ms, p99 {:.2} ms under saturation); load average {}",
            args.clients, args.window, args.seconds, rate, percentile(&lat, 0.5), percentile(&lat, 0.99), load_now());
        if let (Some((a0, s0)), Some((a1, s1))) = (before, after) {
            let events = (rate * args.seconds as f64).max(1.0);
            println!("redis (INFO commandstats): {:.2} script calls (EVALSHA) and {:.2} commands in all (including those run inside scripts) per event",
                (s1 - s0) as f64 / events, (a1 - a0) as f64 / events);
            if let (Some(t0), Some(t1)) = (trips_before, trips_after) {
                println!("redis round trips per event (engine's count): {:.2}", (t1 - t0) as f64 / events);
            }
        }
        // Let the server finish the throughput run's tail before measuring latency.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (got, lat) = load(&server.addr, 10, 1, Some(args.rate), args.seconds).await?;
        println!("latency at {} events/s (10 clients): delivered {:.0}/s, publish->delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; load average {}",
            args.rate, got, percentile(&lat, 0.5), percentile(&lat, 0.99), percentile(&lat, 1.0), load_now());
        }
        if args.cluster {
            return Ok(());
        }
        // Memory with many live threds: each unbound echo starts one (echo never terminates).
        let mut ws = connect(&server.addr, "filler").await?;
        for chunk in (0..args.threds).collect::<Vec<_>>().chunks(200) {
            for i in chunk {
                ws.send(echo(format!("fill-{i}"), "nobody", None, 0)).await?;
            }
            let mut acks = 0usize;
            while acks < chunk.len() {
                let Some(frame) = ws.next().await else { bail!("closed") };
                if let Message::Text(t) = frame? {
                    if t.contains("\"ack\"") {
                        acks += 1;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("memory: {} live threds (plus the benchmark's): RSS {} KiB", args.threds, server.rss_kib());
        let mut open = Vec::with_capacity(args.connections);
        for i in 0..args.connections {
            open.push(connect(&server.addr, &format!("idle{i}")).await?);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("memory: {} open connections added: RSS {} KiB", args.connections, server.rss_kib());
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
