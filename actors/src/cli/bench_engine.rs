//! `threds bench --engine`: the throughput of one `threds engine` process. A mock Kafka cluster
//! and a `redis-server` are started here; events are produced straight to `threds.events` (as
//! other systems do, no session process in the way) and the messages read back from
//! `threds.sessions`, so the figure is the engine's: events stepped, committed and published per
//! second, and Redis round trips per event.

use super::bench::{http_get, listen_address, redis_calls, spawn};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use threds_runtime::bus::{Append, Bus, Consumer};
use threds_runtime::testing::kafka::MockKafka;
use threds_runtime::testing::redis::RedisServer;

/// Partitions of the events topic in the run.
const PARTITIONS: u32 = 4;
/// The deployment's names.
const TOPOLOGY: threds_runtime::topology::Topology =
    threds_runtime::topology::Topology::new(PARTITIONS);
/// Events produced per `append_all`.
const CHUNK: usize = 2_000;
/// Most events produced and not yet answered: the producer is far faster than any engine, and
/// the mock cluster keeps only the newest records of a partition (an engine further behind would
/// find its records gone).
const MAX_LAG: usize = 20_000;

/// What one measurement runs.
pub enum Workload {
    /// `config/patterns/echo.pattern.json`: `threds` threds, each event continuing one of them.
    Echo {
        /// Live threds the events go to.
        threds: usize,
    },
    /// The reference `downtime` pattern's first step: every event starts a thred (its tasks for
    /// the ERP agent and its question to the operator are the messages).
    Downtime {
        /// The reference system's directory (`srvthreds/`).
        reference: PathBuf,
    },
}

impl Workload {
    fn name(&self) -> &'static str {
        match self {
            Workload::Echo { .. } => "echo",
            Workload::Downtime { .. } => "downtime (first step)",
        }
    }

    /// The engine's `--patterns`, `--sessions` and `--resolver` arguments.
    fn model(&self) -> anyhow::Result<Vec<String>> {
        let text = |p: &Path| p.display().to_string();
        Ok(match self {
            Workload::Echo { .. } => vec![
                "--patterns".into(),
                "config/patterns/echo.pattern.json".into(),
            ],
            Workload::Downtime { reference } => {
                let config = reference.join("src/test/config");
                let pattern = config.join("patterns/downtime.pattern.json");
                if !pattern.is_file() {
                    bail!("{} not found (--reference names the srvthreds directory of ../shared/reference)", pattern.display());
                }
                vec![
                    "--patterns".into(),
                    text(&pattern),
                    "--sessions".into(),
                    text(&config.join("sessions/simple_test_sessions_model.json")),
                    "--resolver".into(),
                    text(&config.join("simple_test_resolver_config.json")),
                ]
            }
        })
    }

    /// Event `n` of the run; `threds` are the echo threds to continue.
    fn event(&self, n: usize, threds: &[String]) -> (Option<String>, Value) {
        match self {
            Workload::Echo { .. } => {
                let thred = &threds[n % threds.len()];
                let event = json!({"id": format!("bench-{n}"), "type": "org.wt.echo",
                    "thredId": thred, "source": {"id": "bench"},
                    "data": {"content": {"values": {"echoTo": ["bench"], "echoTitle": "b", "echoContent": n}}}});
                (Some(thred.clone()), event)
            }
            Workload::Downtime { .. } => {
                let source = format!("assembly-{}", n % 1000);
                let event = json!({"id": format!("downtime-{n}"), "type": "wonkaInc.downtime",
                    "source": {"id": source, "name": format!("Gobstopper Assembly {}", n % 1000)},
                    "data": {"description": "Widget Jam", "content": {"values": {"errorCode": "EC_1034"}}}});
                (Some(source), event)
            }
        }
    }
}

/// The services and the engine process of one measurement.
struct Rig {
    engine: Child,
    engine_addr: String,
    redis: RedisServer,
    kafka: Arc<MockKafka>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.engine.kill();
        let _ = self.engine.wait();
    }
}

impl Rig {
    fn start(workload: &Workload, history: bool) -> anyhow::Result<Rig> {
        let kafka = Arc::new(MockKafka::start(1).context("starting the mock Kafka cluster")?);
        for spec in TOPOLOGY.topics() {
            let (topic, partitions) = (spec.name, spec.partitions);
            kafka
                .create_topic(&topic, partitions)
                .with_context(|| format!("creating {topic}"))?;
        }
        let redis =
            RedisServer::start().context("starting redis-server (scripts/install/redis.sh)")?;
        let env = [
            ("THREDS_KAFKA_BROKERS", kafka.bootstrap().to_string()),
            (
                "THREDS_KAFKA_PROPERTIES",
                threds_runtime::testing::kafka::MOCK_PROPERTIES.to_string(),
            ),
            ("THREDS_REDIS_URLS", redis.url()),
            ("THREDS_DOCUMENTS", "memory".to_string()),
            ("THREDS_NODE", "bench-engine".to_string()),
            ("THREDS_HISTORY", history.to_string()),
            ("THREDS_PARTITIONS", PARTITIONS.to_string()),
        ];
        let mut args = vec![
            "engine".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--config".into(),
            "/nonexistent/threds.toml".into(),
        ];
        args.extend(workload.model()?);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut engine = spawn(&args, &env)?;
        let engine_addr = listen_address(&mut engine)?;
        let rig = Rig {
            engine,
            engine_addr,
            redis,
            kafka,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = http_get(&rig.engine_addr, "/readyz").unwrap_or_default();
            if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
                break;
            }
            if Instant::now() > deadline {
                bail!("the engine never became ready: {answer}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(rig)
    }

    /// The engine's count of Redis round trips (its `/metrics`).
    fn round_trips(&self) -> Option<u64> {
        http_get(&self.engine_addr, "/metrics")?
            .lines()
            .find_map(|l| l.strip_prefix("threds_store_round_trips_total "))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// Reads `threds.sessions` until `want` records arrived or nothing came for `idle`, counting them
/// in `count`; answers the records' payloads and when the last arrived.
async fn read(
    reader: &mut Box<dyn Consumer>,
    want: usize,
    idle: Duration,
    count: &AtomicUsize,
) -> anyhow::Result<(Vec<Value>, Instant)> {
    let (mut got, mut last, mut quiet) = (Vec::new(), Instant::now(), Instant::now());
    while got.len() < want && quiet.elapsed() < idle {
        let polled = reader.poll(10_000, Duration::from_millis(100)).await?;
        if polled.records.is_empty() {
            continue;
        }
        quiet = Instant::now();
        last = Instant::now();
        for r in polled.records {
            got.push(serde_json::from_slice(&r.payload).unwrap_or(Value::Null));
        }
        count.store(got.len(), Ordering::Relaxed);
    }
    Ok((got, last))
}

/// Produces events `range`, never more than [`MAX_LAG`] ahead of the `answered` messages (of
/// which each event makes `per_event`).
async fn produce(
    bus: &dyn Bus,
    workload: &Workload,
    range: std::ops::Range<usize>,
    threds: &[String],
    answered: (&AtomicUsize, usize),
) -> anyhow::Result<()> {
    let events: Vec<usize> = range.collect();
    let (answered, per_event) = answered;
    for (i, chunk) in events.chunks(CHUNK).enumerate() {
        while i * CHUNK > answered.load(Ordering::Relaxed) / per_event.max(1) + MAX_LAG {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let appends = chunk
            .iter()
            .map(|n| {
                let (key, event) = workload.event(*n, threds);
                Append {
                    topic: TOPOLOGY.events().into(),
                    partition: None,
                    key,
                    payload: event.to_string().into_bytes(),
                    headers: Vec::new(),
                }
            })
            .collect();
        for result in bus.append_all(appends).await {
            result.context("producing an event")?;
        }
    }
    Ok(())
}

/// Starts the echo threds: one unbound event each; answers their ids.
async fn start_threds(
    bus: &dyn Bus,
    reader: &mut Box<dyn Consumer>,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let appends = (0..n)
        .map(|i| {
            let event = json!({"id": format!("start-{i}"), "type": "org.wt.echo", "source": {"id": format!("bench{i}")},
                "data": {"content": {"values": {"echoTo": ["bench"], "echoTitle": "start", "echoContent": i}}}});
            Append {
                topic: TOPOLOGY.events().into(),
                partition: None,
                key: Some(format!("bench{i}")),
                payload: event.to_string().into_bytes(),
                headers: Vec::new(),
            }
        })
        .collect();
    for result in bus.append_all(appends).await {
        result.context("producing an event")?;
    }
    let (messages, _) = read(reader, n, Duration::from_secs(30), &AtomicUsize::new(0)).await?;
    let threds: Vec<String> = messages
        .iter()
        .filter_map(|m| m["event"]["thredId"].as_str().map(String::from))
        .collect();
    if threds.len() < n {
        bail!("only {} of {n} echo threds started", threds.len());
    }
    Ok(threds)
}

/// Sends echo events to `threds` at `rate` per second for `seconds` (each carrying its send time)
/// and answers the produce → message latencies, µs, sorted.
async fn paced(
    bus: &dyn Bus,
    reader: &mut Box<dyn Consumer>,
    threds: &[String],
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Vec<u64>> {
    let epoch = Instant::now();
    let micros = move || u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
    let total = usize::try_from(rate * seconds).unwrap_or(usize::MAX);
    let sending = async {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
        for n in 0..total {
            tick.tick().await;
            let thred = &threds[n % threds.len()];
            let event = json!({"id": format!("paced-{n}"), "type": "org.wt.echo", "thredId": thred,
                "source": {"id": "bench"},
                "data": {"content": {"values": {"echoTo": ["bench"], "echoTitle": "p", "echoContent": micros()}}}});
            bus.append(
                TOPOLOGY.events(),
                None,
                Some(thred),
                event.to_string().into_bytes(),
                Vec::new(),
            )
            .await
            .context("producing an event")?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let receiving = async {
        let mut latencies = Vec::with_capacity(total);
        let deadline = Instant::now() + Duration::from_secs(seconds + 10);
        while latencies.len() < total && Instant::now() < deadline {
            for r in reader.poll(1_000, Duration::from_millis(50)).await?.records {
                let m: Value = serde_json::from_slice(&r.payload).unwrap_or(Value::Null);
                if let Some(sent) = m["event"]["data"]["content"]["values"]["echo"].as_u64() {
                    latencies.push(micros().saturating_sub(sent));
                }
            }
        }
        Ok::<_, anyhow::Error>(latencies)
    };
    let (sent, latencies) = tokio::join!(sending, receiving);
    sent?;
    let mut latencies = latencies?;
    latencies.sort_unstable();
    Ok(latencies)
}

/// Measures `events` events of `workload` (with the engine recording history or not); prints
/// the results; with `latency_rate`, also the engine's latency at that many events per second.
pub fn measure(
    workload: &Workload,
    events: usize,
    history: bool,
    latency_rate: Option<u64>,
) -> anyhow::Result<()> {
    let rig = Rig::start(workload, history)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let bus = rig.kafka.bus()?;
        let mut reader = bus.join("bench-reader", &[TOPOLOGY.sessions()], "reader").await?;
        while reader.assignment().is_empty() {
            reader.poll(1, Duration::from_millis(100)).await?;
        }
        // Warm-up, and what one event publishes.
        let (threds, per_event) = match workload {
            Workload::Echo { threds } => (start_threds(&bus, &mut reader, *threds).await?, 1),
            Workload::Downtime { .. } => {
                let unlimited = AtomicUsize::new(usize::MAX / 2);
                produce(&bus, workload, 0..10, &[], (&unlimited, 1)).await?;
                let idle = Duration::from_secs(3);
                let (got, _) = read(&mut reader, usize::MAX, idle, &unlimited).await?;
                if got.is_empty() {
                    bail!("the downtime pattern published nothing");
                }
                (Vec::new(), got.len() / 10)
            }
        };
        let calls_before = redis_calls(&rig.redis);
        let trips_before = rig.round_trips();
        let started = Instant::now();
        let range = 10..10 + events;
        let answered = AtomicUsize::new(0);
        let producing = produce(&bus, workload, range, &threds, (&answered, per_event));
        let reading = read(
            &mut reader,
            events * per_event,
            Duration::from_secs(30),
            &answered,
        );
        let (produced, read) = tokio::join!(producing, reading);
        produced?;
        let (got, last) = read?;
        let seconds = last.duration_since(started).as_secs_f64();
        let stepped = got.len() / per_event.max(1);
        let rate = stepped as f64 / seconds;
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "engine, {}, history {}: {stepped} of {events} events stepped in {seconds:.2} s = {rate:.0} events/s ({} messages each); load average {}",
            workload.name(),
            if history { "on (in-memory documents)" } else { "off" },
            per_event,
            load.split_whitespace().next().unwrap_or("?")
        );
        if let (Some((a0, s0)), Some((a1, s1))) = (calls_before, redis_calls(&rig.redis)) {
            let n = stepped.max(1) as f64;
            let trips = match (trips_before, rig.round_trips()) {
                (Some(t0), Some(t1)) => format!("{:.3}", (t1 - t0) as f64 / n),
                _ => "?".into(),
            };
            println!(
                "  redis per event: {trips} round trips (engine's count), {:.3} script calls (EVALSHA), {:.2} commands in all (INFO commandstats, including those inside scripts)",
                (s1 - s0) as f64 / n,
                (a1 - a0) as f64 / n
            );
        }
        if let (Some(rate), Workload::Echo { .. }) = (latency_rate, workload) {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let lat = paced(&bus, &mut reader, &threds, rate, 5).await?;
            let at = |p: f64| {
                let i = ((lat.len().max(1) - 1) as f64 * p).round() as usize;
                lat.get(i).map_or(f64::NAN, |us| *us as f64 / 1000.0)
            };
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            println!(
                "  latency at {rate} events/s, produced to the events topic -> read from the sessions topic: {} messages, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; load average {}",
                lat.len(),
                at(0.5),
                at(0.99),
                at(1.0),
                load.split_whitespace().next().unwrap_or("?")
            );
        }
        if stepped < events {
            bail!(
                "only {stepped} of {events} events came out (the engine's log: {})",
                std::env::temp_dir()
                    .join(format!("threds-bench-{}.log", rig.engine.id()))
                    .display()
            );
        }
        Ok(())
    })
}
