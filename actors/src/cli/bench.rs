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
}

const SECRET: &str = "threds-bench-secret";

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("locating the threds binary")?;
        let mut child = Command::new(exe)
            .args([
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--patterns",
                "config/patterns",
            ])
            .env("THREDS_JWT_SECRET", SECRET)
            .env("THREDS_LOG", "warn,threds::node=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting threds dev")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                bail!("threds dev exited before listening")
            };
            let line = line?;
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        std::thread::sleep(Duration::from_millis(300));
        Ok(Server { child, addr })
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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str, participant: &str) -> anyhow::Result<Socket> {
    let secret =
        crate::auth::Secret::from_bytes(SECRET.as_bytes(), crate::auth::SecretSource::Environment);
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
    let server = Server::start()?;
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
        let (rate, lat) = load(&server.addr, args.clients, args.window, None, args.seconds).await?;
        println!("throughput: {} clients x {} in flight, {} s: {:.0} events/s delivered (p50 {:.2} ms, p99 {:.2} ms under saturation); load average {}",
            args.clients, args.window, args.seconds, rate, percentile(&lat, 0.5), percentile(&lat, 0.99), load_now());
        // Let the server finish the throughput run's tail before measuring latency.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (got, lat) = load(&server.addr, 10, 1, Some(args.rate), args.seconds).await?;
        println!("latency at {} events/s (10 clients): delivered {:.0}/s, publish->delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; load average {}",
            args.rate, got, percentile(&lat, 0.5), percentile(&lat, 0.99), percentile(&lat, 1.0), load_now());
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
