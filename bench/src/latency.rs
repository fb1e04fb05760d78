//! `threds-bench latency`: one `threds engine`'s latency as another system sees it. A plain
//! librdkafka producer writes bound echo events to `threds.events` at a steady rate, each carrying
//! its send time, and a plain librdkafka consumer reads the messages back from the engine's
//! answer partition of `threds.sessions`; nothing of Threds' own bus is on the measured path.
//! The reader registers as a session node first (a delivery slot and a session for its
//! participant), as any system reading messages must (ADR 0008).
//!
//! Runs on librdkafka's mock cluster (hosted here) or, with `--tansu`, on a tansu broker; a
//! `redis-server` is started here either way.

use crate::report::{load_average, percentile};
use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use threds_runtime::bus::partition_for;
use threds_runtime::topology::Topology;
use threds_testkit::rig::Launcher;

/// Partitions of the events topic in the run.
const PARTITIONS: u32 = 4;
/// The participant the echoes go to.
const READER: &str = "harness";
/// How long one Kafka request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `threds-bench latency`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rates to measure, events per second, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "200,1000")]
    rates: Vec<u64>,
    /// Seconds measured at each rate (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Live echo threds the events go to.
    #[arg(long, default_value_t = 1_000)]
    echo_threds: usize,
    #[command(flatten)]
    broker: crate::broker::Args,
}

/// Measures each rate on fresh infrastructure and one engine; prints p50, p99 and max.
pub fn run(launcher: &Launcher, args: &Args) -> anyhow::Result<()> {
    let started = args.broker.start(PARTITIONS)?;
    let (infra, properties, broker) = (&started.infra, &started.properties, started.name());
    let env = started.env("bench-engine");
    let engine = launcher
        .clone()
        .config("/nonexistent/threds.toml")
        .start(
            "engine",
            &["--patterns", "config/patterns/echo.pattern.json"],
            &env,
        )
        .context("starting the engine")?;
    let runtime = crate::runtime()?;
    let slot = runtime.block_on(infra.register("latency-harness", &[READER]))?;
    let client = Client::new(&infra.bootstrap(), properties);
    let topology = infra.topology().clone();
    let reader = Reader::start(&client, &topology, slot)?;
    let producer = client.producer()?;
    let harness = Harness {
        producer,
        topology,
        slot,
        epoch: Instant::now(),
    };
    let threds = runtime.block_on(harness.start_threds(&reader, args.echo_threds.max(1)))?;
    println!(
        "latency harness on the {broker}, properties `{properties}`, {} echo threds; produced -> message read, plain librdkafka clients",
        threds.len()
    );
    let said = |e: anyhow::Error| {
        let metrics = threds_testkit::http::get(engine.addr(), "/metrics")
            .map(|r| r.body)
            .unwrap_or_default();
        let counts: Vec<&str> = metrics
            .lines()
            .filter(|l| !l.starts_with('#') && (l.contains("_total") || l.contains("lag")))
            .collect();
        e.context(format!("the engine's counters:\n{}", counts.join("\n")))
    };
    for rate in &args.rates {
        let rate = (*rate).max(1);
        for (path, what) in [
            (Path::Broker, "broker alone"),
            (Path::Engine, "through the engine"),
        ] {
            runtime
                .block_on(harness.paced(&reader, &threds, (rate, 1), path))
                .map_err(said)?;
            let lat = runtime
                .block_on(harness.paced(&reader, &threds, (rate, args.seconds), path))
                .map_err(said)?;
            println!(
                "  {rate} events/s, {what}: {} messages, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; load average {}",
                lat.len(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                percentile(&lat, 1.0),
                load_average()
            );
        }
    }
    reader.stop();
    Ok(())
}

/// librdkafka settings shared by the producer and the reader.
struct Client {
    bootstrap: String,
    properties: Vec<(String, String)>,
}

impl Client {
    fn new(bootstrap: &str, properties: &str) -> Client {
        Client {
            bootstrap: bootstrap.to_owned(),
            properties: properties
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        }
    }

    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }

    /// A producer that sends at once (librdkafka's default `linger.ms` is 5 ms).
    fn producer(&self) -> anyhow::Result<FutureProducer> {
        let mut config = self.config();
        config.set("linger.ms", "0");
        config.create().context("creating the producer")
    }
}

/// The reader of the harness's slot: a thread polling a consumer assigned to the partition at its
/// end offset, passing each message's payload and arrival time on.
struct Reader {
    messages: mpsc::Receiver<(Value, Instant)>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Reader {
    fn start(client: &Client, topology: &Topology, slot: u32) -> anyhow::Result<Reader> {
        let mut config = client.config();
        config
            .set("group.id", "latency-harness")
            .set("enable.auto.commit", "false");
        let consumer: BaseConsumer = config.create().context("creating the reader")?;
        let topic = topology.sessions();
        let partition = i32::try_from(slot)?;
        let (_, end) = consumer
            .fetch_watermarks(topic, partition, TIMEOUT)
            .context("reading the slot's end offset")?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, partition, Offset::Offset(end))?;
        consumer.assign(&assignment)?;
        let (tx, messages) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) else {
                    continue;
                };
                let at = Instant::now();
                let payload = m.payload().unwrap_or_default();
                let value = serde_json::from_slice(payload).unwrap_or(Value::Null);
                if tx.send((value, at)).is_err() {
                    return;
                }
            }
        });
        Ok(Reader {
            messages,
            stop,
            thread,
        })
    }

    /// The messages that arrive until `want` did or nothing came for `idle`.
    fn read(&self, want: usize, idle: Duration) -> Vec<(Value, Instant)> {
        let mut got = Vec::with_capacity(want);
        while got.len() < want {
            match self.messages.recv_timeout(idle) {
                Ok(m) => got.push(m),
                Err(_) => break,
            }
        }
        got
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// The producing side.
struct Harness {
    producer: FutureProducer,
    topology: Topology,
    /// The reader's partition of the sessions topic.
    slot: u32,
    epoch: Instant,
}

/// What a paced run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Events to the engine, its messages read back.
    Engine,
    /// Records straight to the reader's partition: the broker's own floor.
    Broker,
}

impl Harness {
    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// Sends `event` keyed by `key` to the partition Threds' partitioner (Kafka's murmur2) gives
    /// it, without waiting for the delivery report.
    fn send(&self, key: &str, event: &Value) -> anyhow::Result<DeliveryFuture> {
        self.send_to(
            self.topology.events(),
            partition_for(key, PARTITIONS),
            key,
            event,
        )
    }

    /// Sends `event` to `topic`/`partition`, without waiting for the delivery report.
    fn send_to(
        &self,
        topic: &str,
        partition: u32,
        key: &str,
        event: &Value,
    ) -> anyhow::Result<DeliveryFuture> {
        let payload = event.to_string();
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(&payload)
            .partition(i32::try_from(partition)?);
        self.producer
            .send_result(record)
            .map_err(|(e, _)| anyhow::anyhow!("producing an event: {e}"))
    }

    /// Starts `n` echo threds (one unbound event each) and answers their ids.
    async fn start_threds(&self, reader: &Reader, n: usize) -> anyhow::Result<Vec<String>> {
        let mut sent = Vec::with_capacity(n);
        for i in 0..n {
            let source = format!("{READER}{i}");
            let event = json!({"id": format!("start-{i}"), "type": "org.wt.echo", "source": {"id": source},
                "data": {"content": {"values": {"echoTo": [READER], "echoTitle": "start", "echoContent": 0}}}});
            sent.push(self.send(&source, &event)?);
        }
        for delivery in sent {
            if !matches!(delivery.await, Ok(Ok(_))) {
                bail!("a start event was not delivered to the broker");
            }
        }
        let messages = reader.read(n, Duration::from_secs(30));
        let threds: Vec<String> = messages
            .iter()
            .filter_map(|(m, _)| m["event"]["thredId"].as_str().map(String::from))
            .collect();
        if threds.len() < n {
            bail!("only {} of {n} echo threds started", threds.len());
        }
        Ok(threds)
    }

    /// Sends bound echo events (or, on [`Path::Broker`], records shaped like their messages
    /// straight to the reader's partition) at `rate` per second for `seconds`, each carrying its
    /// send time; answers the send → read latencies, µs, sorted.
    async fn paced(
        &self,
        reader: &Reader,
        threds: &[String],
        (rate, seconds): (u64, u64),
        path: Path,
    ) -> anyhow::Result<Vec<u64>> {
        let total = usize::try_from(rate * seconds)?;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut deliveries = Vec::with_capacity(total);
        for n in 0..total {
            tick.tick().await;
            let thred = &threds[n % threds.len()];
            let now = self.micros(Instant::now());
            deliveries.push(match path {
                Path::Engine => {
                    let event = json!({"id": format!("paced-{rate}-{n}"), "type": "org.wt.echo", "thredId": thred,
                        "source": {"id": READER},
                        "data": {"content": {"values": {"echoTo": [READER], "echoTitle": "p", "echoContent": now}}}});
                    self.send(thred, &event)?
                }
                Path::Broker => {
                    let message = json!({"event": {"data": {"content": {"values": {"echo": now}}}}});
                    self.send_to(self.topology.sessions(), self.slot, READER, &message)?
                }
            });
        }
        for delivery in deliveries {
            if !matches!(delivery.await, Ok(Ok(_))) {
                bail!("an event was not delivered to the broker");
            }
        }
        let mut latencies: Vec<u64> = reader
            .read(total, Duration::from_secs(10))
            .into_iter()
            .filter_map(|(m, at)| {
                let sent = m["event"]["data"]["content"]["values"]["echo"].as_u64()?;
                Some(self.micros(at).saturating_sub(sent))
            })
            .collect();
        if latencies.len() < total {
            bail!("{} of {total} messages arrived", latencies.len());
        }
        latencies.sort_unstable();
        Ok(latencies)
    }
}
