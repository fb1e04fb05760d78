//! The WebSocket load: clients that each start an echo thred and then keep events in flight (for
//! throughput) or send at a fixed pace (for latency); a message's latency is its delivery time
//! less the send time the event carried.

use crate::report::{load_average, percentile};
use crate::stats;
use anyhow::bail;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use threds_testkit::client::{Client, Receiver, Sender};
use threds_testkit::redis::RedisServer;
use threds_testkit::rig::Process;

/// The load's options (of `dev` and `cluster`).
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
}

/// Where Redis work is counted (the distributed deployment): the server and the engine process.
pub struct Counted<'a> {
    /// The deployment's `redis-server`.
    pub redis: &'a RedisServer,
    /// The engine process (its `/metrics`).
    pub engine: &'a Process,
}

/// Measures saturated throughput, then latency at a paced rate, and prints both.
pub async fn measure(
    server: &Process,
    args: &Args,
    counted: Option<Counted<'_>>,
) -> anyhow::Result<()> {
    let snapshot = || {
        counted
            .as_ref()
            .map(|c| (stats::redis_calls(c.redis), stats::engine(c.engine.addr())))
    };
    let before = snapshot();
    let load = run(server, args.clients, args.window, None, args.seconds).await?;
    let after = snapshot();
    println!(
        "throughput: {} clients x {} in flight, {} s: {:.0} events/s delivered (p50 {:.2} ms, p99 {:.2} ms under saturation); load average {}",
        args.clients,
        args.window,
        args.seconds,
        load.rate,
        percentile(&load.latencies, 0.5),
        percentile(&load.latencies, 0.99),
        load_average()
    );
    if let (Some(before), Some(after)) = (before, after) {
        let events = load.rate * args.seconds as f64;
        if let Some(line) = stats::per_event(before, after, events) {
            println!("{line}");
        }
    }
    // Let the server finish the throughput run's tail before measuring latency.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let paced = run(server, 10, 1, Some(args.rate), args.seconds).await?;
    println!(
        "latency at {} events/s (10 clients): delivered {:.0}/s, publish->delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; load average {}",
        args.rate,
        paced.rate,
        percentile(&paced.latencies, 0.5),
        percentile(&paced.latencies, 0.99),
        percentile(&paced.latencies, 1.0),
        load_average()
    );
    Ok(())
}

/// What one load run measured.
pub struct Load {
    /// Messages delivered per second.
    pub rate: f64,
    /// Send → delivery latencies, µs, sorted.
    pub latencies: Vec<u64>,
}

/// An echo event `id` telling `participant` the send time `sent_us`, continuing `thred` if given.
pub fn echo(id: String, participant: &str, thred: Option<&str>, sent_us: u64) -> Value {
    let mut event = json!({"id": id, "type": "org.wt.echo", "data": {"content": {"values": {
        "echoTo": [participant], "echoTitle": "b", "echoContent": sent_us}}}});
    if let Some(t) = thred {
        event["thredId"] = json!(t);
    }
    event
}

/// Microseconds since `epoch`.
fn micros(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The send time an echo message carries back, µs since the run's epoch.
fn echoed(frame: &Value) -> Option<u64> {
    frame["message"]["event"]["data"]["content"]["values"]["echo"].as_u64()
}

/// How long a client waits for the answer that starts its thred.
const START_WITHIN: Duration = Duration::from_secs(20);

/// Load runs so far in this process: event ids carry it, as session nodes drop messages whose
/// ids they have just seen (a later run reusing ids would lose its answers).
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Runs `clients` clients against `server` for `seconds`: each keeps `window` events in flight,
/// or, with `rate`, they send that many events per second together.
async fn run(
    server: &Process,
    clients: usize,
    window: usize,
    rate: Option<u64>,
    seconds: u64,
) -> anyhow::Result<Load> {
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs(seconds) + Duration::from_millis(500);
    let period = rate.map(|r| Duration::from_secs_f64(clients as f64 / r.max(1) as f64));
    let mut tasks = Vec::with_capacity(clients);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    for n in 0..clients {
        let me = format!("bench{n}");
        let tag = format!("{me}.r{run}");
        let (addr, token) = (server.addr().to_owned(), server.token(&me, &[])?);
        tasks.push(tokio::spawn(async move {
            let client = Client::connect(&addr, &token).await?;
            one(client, (me, tag), window, period, epoch, deadline).await
        }));
    }
    let (mut delivered, mut latencies) = (0u64, Vec::new());
    for task in tasks {
        let (d, l) = task.await??;
        delivered += d;
        latencies.extend(l);
    }
    latencies.sort_unstable();
    Ok(Load {
        rate: delivered as f64 / seconds.max(1) as f64,
        latencies,
    })
}

/// One client: starts its thred, then runs windowed or paced until `deadline`; answers (messages
/// delivered, latencies in µs).
async fn one(
    mut client: Client,
    (me, tag): (String, String),
    window: usize,
    period: Option<Duration>,
    epoch: Instant,
    deadline: Instant,
) -> anyhow::Result<(u64, Vec<u64>)> {
    client
        .submit(&echo(format!("{tag}-start"), &me, None, micros(epoch)))
        .await?;
    let started = async {
        loop {
            let Some(frame) = client.next_frame().await? else {
                bail!("{me}: the connection closed before the thred started")
            };
            if let Some(id) = frame["message"]["event"]["thredId"].as_str() {
                return Ok(id.to_owned());
            }
            if frame.get("error").is_some() {
                bail!("{me}: the start event was refused: {frame}");
            }
        }
    };
    let thred = tokio::time::timeout(START_WITHIN, started)
        .await
        .map_err(|_| {
            anyhow::anyhow!("{me}: no answer to the start event within {START_WITHIN:?}")
        })??;
    if let Some(period) = period {
        let (sender, receiver) = client.split();
        return paced(sender, receiver, (me, tag), thred, period, epoch, deadline).await;
    }
    let (mut sent, mut in_flight) = (0u64, 0usize);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        if in_flight < window {
            let event = echo(format!("{tag}-{sent}"), &me, Some(&thred), micros(epoch));
            client.submit(&event).await?;
            sent += 1;
            in_flight += 1;
            continue;
        }
        tokio::select! {
            frame = client.next_frame() => {
                let Some(frame) = frame? else { break };
                if let Some(at) = echoed(&frame) {
                    in_flight = in_flight.saturating_sub(1);
                    latencies.push(micros(epoch).saturating_sub(at));
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => break,
        }
    }
    Ok((latencies.len() as u64, latencies))
}

/// A paced client: one task sends every `period`, this one reads, so reading never waits on
/// sending.
async fn paced(
    mut sender: Sender,
    mut receiver: Receiver,
    (me, tag): (String, String),
    thred: String,
    period: Duration,
    epoch: Instant,
    deadline: Instant,
) -> anyhow::Result<(u64, Vec<u64>)> {
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        let mut sent = 0u64;
        while Instant::now() < deadline {
            tick.tick().await;
            let event = echo(format!("{tag}-{sent}"), &me, Some(&thred), micros(epoch));
            if sender.submit(&event).await.is_err() {
                break;
            }
            sent += 1;
        }
    });
    let mut latencies = Vec::new();
    while let Ok(frame) = tokio::time::timeout_at(deadline.into(), receiver.next_frame()).await {
        let Some(frame) = frame? else { break };
        if let Some(at) = echoed(&frame) {
            latencies.push(micros(epoch).saturating_sub(at));
        }
    }
    let _ = writer.await;
    Ok((latencies.len() as u64, latencies))
}
