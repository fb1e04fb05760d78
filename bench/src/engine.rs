//! `threds-bench engine`: the throughput of one `threds engine` process. A mock Kafka cluster
//! and a `redis-server` are started here; events are produced straight to the events topic (as
//! other systems do, no session process in the way) and the messages read back from the sessions
//! topic, so the figure is the engine's: events stepped, committed and published per second, and
//! Redis round trips per event.

mod traffic;
mod workload;

use crate::report::{load_average, percentile};
use crate::stats;
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};
use threds_testkit::deployment::Infrastructure;
use threds_testkit::otlp::Receiver;
use threds_testkit::rig::{Launcher, Process};
use workload::Workload;

/// Partitions of the events topic in the run.
const PARTITIONS: u32 = 4;

/// Arguments of `threds-bench engine`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Events per workload.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Live echo threds the events go to.
    #[arg(long, default_value_t = 1_000)]
    echo_threds: usize,
    /// Events per second for the engine's latency (echo, history on).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// The reference system's directory, for the downtime workload (skipped when absent).
    #[arg(long, default_value = "../shared/reference/srvthreds")]
    reference: PathBuf,
    /// Instead: the cost of traces. Echo (history off) with spans off, exported at 1% sampling
    /// and at 100%, to an OTLP receiver in this process; `--repeat` rounds, interleaved.
    #[arg(long)]
    tracing: bool,
    /// Instead: the cost of history. Echo with history on (its records to `threds.history`)
    /// and off, `--repeat` rounds, interleaved.
    #[arg(long, conflicts_with = "tracing")]
    history: bool,
    /// Rounds of `--tracing` or `--history`.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

/// Trace export settings of `--tracing`: a name and the `OTEL_*` variables (none: off).
const TRACING: [(&str, Option<&str>); 3] = [
    ("off", None),
    ("1% sampled", Some("0.01")),
    ("100% sampled", Some("1.0")),
];

/// Measures echo with history on (and the latency) and off, then the downtime pattern (or,
/// with `--tracing`, the cost of exporting spans).
pub fn run(launcher: &Launcher, args: &Args) -> anyhow::Result<()> {
    let echo = Workload::Echo {
        threds: args.echo_threds.max(1),
    };
    if args.tracing {
        return tracing_cost(launcher, &echo, args);
    }
    if args.history {
        return history_cost(launcher, &echo, args);
    }
    measure(launcher, &echo, args.events, true, Some(args.rate), &[])?;
    measure(launcher, &echo, args.events, false, None, &[])?;
    if args.reference.is_dir() {
        let downtime = Workload::Downtime {
            reference: args.reference.clone(),
        };
        measure(launcher, &downtime, args.events, true, None, &[])?;
    } else {
        println!(
            "engine, downtime: skipped ({} not found; --reference names the srvthreds directory)",
            args.reference.display()
        );
    }
    Ok(())
}

/// The infrastructure and the engine process of one measurement.
struct Rig {
    // Dropped in this order: the process before the infrastructure it uses.
    engine: Process,
    infra: Infrastructure,
}

/// Echo with history off, `--repeat` rounds of each [`TRACING`] setting; prints each run and the
/// median events/s of each setting against off.
fn tracing_cost(launcher: &Launcher, echo: &Workload, args: &Args) -> anyhow::Result<()> {
    let receiver = Receiver::counting().context("starting the OTLP receiver")?;
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); TRACING.len()];
    for round in 1..=args.repeat.max(1) {
        for ((name, ratio), rates) in TRACING.iter().zip(&mut rates) {
            let env: Vec<(&'static str, String)> = match ratio {
                None => Vec::new(),
                Some(ratio) => vec![
                    (
                        "OTEL_EXPORTER_OTLP_ENDPOINT",
                        receiver.endpoint().to_owned(),
                    ),
                    ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".to_owned()),
                    ("OTEL_TRACES_SAMPLER_ARG", (*ratio).to_owned()),
                ],
            };
            let spans = receiver.count();
            println!("round {round}, spans {name}:");
            rates.push(measure(launcher, echo, args.events, false, None, &env)?);
            println!("  spans received: {}", receiver.count() - spans);
        }
    }
    let off = median(&rates[0]);
    for ((name, _), rates) in TRACING.iter().zip(&rates) {
        let m = median(rates);
        println!(
            "engine, echo, history off, spans {name}: median {m:.0} events/s over {} runs = {:.3} of off",
            rates.len(),
            m / off
        );
    }
    Ok(())
}

/// Echo with history on and off, `--repeat` interleaved rounds; prints each run and the median
/// events/s of each, on against off.
fn history_cost(launcher: &Launcher, echo: &Workload, args: &Args) -> anyhow::Result<()> {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 1..=args.repeat.max(1) {
        println!("round {round}:");
        on.push(measure(launcher, echo, args.events, true, None, &[])?);
        off.push(measure(launcher, echo, args.events, false, None, &[])?);
    }
    let (m_on, m_off) = (median(&on), median(&off));
    println!(
        "engine, echo: history on median {m_on:.0} events/s, off {m_off:.0} events/s over {} runs each: on = {:.3} of off",
        on.len(),
        m_on / m_off
    );
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Rig {
    fn start(
        launcher: &Launcher,
        workload: &Workload,
        history: bool,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Rig> {
        let infra = Infrastructure::start(PARTITIONS).context("starting Kafka and Redis")?;
        let mut env = infra.env("bench-engine");
        env.push(("THREDS_HISTORY", history.to_string()));
        env.extend(crate::unlimited());
        env.extend(extra.iter().cloned());
        let model = workload.model()?;
        let args: Vec<&str> = model.iter().map(String::as_str).collect();
        let engine = launcher
            .clone()
            .config("/nonexistent/threds.toml")
            .start("engine", &args, &env)?;
        Ok(Rig { engine, infra })
    }

    /// Redis work so far.
    fn counts(&self) -> (Option<stats::Calls>, Option<stats::Engine>) {
        (
            stats::redis_calls(self.infra.redis()),
            stats::engine(self.engine.addr()),
        )
    }
}

/// Measures `events` events of `workload` (with the engine recording history or not, `env` added
/// to its environment); prints the results and answers the events/s; with `latency_rate`, also
/// the engine's latency at that many events per second.
fn measure(
    launcher: &Launcher,
    workload: &Workload,
    events: usize,
    history: bool,
    latency_rate: Option<u64>,
    env: &[(&'static str, String)],
) -> anyhow::Result<f64> {
    let rig = Rig::start(launcher, workload, history, env)?;
    let topology = rig.infra.topology().clone();
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let bus = rig.infra.bus()?;
        // The workload's messages reach the session node holding their recipients: a stand-in
        // for one.
        let recipients = workload.recipients();
        let mut reader = rig.infra.listen("bench-reader", recipients).await?.reader;
        while reader.poll(1, Duration::from_millis(100)).await?.assigned.is_empty() {}
        // Warm-up, and what one event publishes.
        let (threds, per_event) = match workload {
            Workload::Echo { threds } => {
                (traffic::start_threds(&bus, &topology, &mut reader, *threds).await?, 1)
            }
            Workload::Downtime { .. } => {
                let unlimited = AtomicUsize::new(usize::MAX / 2);
                traffic::produce(&bus, &topology, workload, 0..10, &[], (&unlimited, 1)).await?;
                let idle = Duration::from_secs(3);
                let (got, _) = traffic::read(&mut reader, usize::MAX, idle, &unlimited).await?;
                if got.is_empty() {
                    bail!("the downtime pattern published nothing");
                }
                (Vec::new(), got.len() / 10)
            }
        };
        let before = rig.counts();
        let started = Instant::now();
        let answered = AtomicUsize::new(0);
        let producing = traffic::produce(
            &bus,
            &topology,
            workload,
            10..10 + events,
            &threds,
            (&answered, per_event),
        );
        let idle = Duration::from_secs(30);
        let reading = traffic::read(&mut reader, events * per_event, idle, &answered);
        let (produced, read) = tokio::join!(producing, reading);
        produced?;
        let (got, last) = read?;
        let seconds = last.duration_since(started).as_secs_f64();
        let stepped = got.len() / per_event.max(1);
        println!(
            "engine, {}, history {}: {stepped} of {events} events stepped in {seconds:.2} s = {:.0} events/s ({per_event} messages each); load average {}",
            workload.name(),
            if history { "on (to threds.history)" } else { "off" },
            stepped as f64 / seconds,
            load_average()
        );
        if let Some(line) = stats::per_event(before, rig.counts(), stepped as f64) {
            println!("  {line}");
        }
        if let (Some(rate), Workload::Echo { .. }) = (latency_rate, workload) {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let lat = traffic::paced(&bus, &topology, &mut reader, &threds, rate, 5).await?;
            println!(
                "  latency at {rate} events/s, produced to the events topic -> read from the sessions topic: {} messages, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; load average {}",
                lat.len(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                percentile(&lat, 1.0),
                load_average()
            );
        }
        if stepped < events {
            let log = rig
                .engine
                .log_path()
                .map_or_else(|| "not kept".to_owned(), |p| p.display().to_string());
            bail!("only {stepped} of {events} events came out (the engine's log: {log})");
        }
        Ok(stepped as f64 / seconds)
    })
}
