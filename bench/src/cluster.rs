//! `threds-bench cluster`: the distributed deployment under WebSocket load: one `threds engine`
//! and one `threds session` process on a mock Kafka cluster (hosted here) or tansu, and a
//! `redis-server` started here; also reports Redis work per event.

use crate::load::{self, Counted};
use crate::report::load_average;
use std::time::Duration;
use threds_testkit::rig::Launcher;

/// Partitions of the events topic.
const PARTITIONS: u32 = 4;

/// Arguments of `threds-bench cluster`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    load: load::Args,
    #[command(flatten)]
    broker: crate::broker::Args,
}

/// Starts the deployment, runs the measurements, prints the report.
pub fn run(launcher: &Launcher, args: &Args) -> anyhow::Result<()> {
    let broker = args.broker.start(PARTITIONS)?;
    let infra = &broker.infra;
    let launcher = launcher.clone().config("/nonexistent/threds.toml");
    let model = ["--patterns", "config/patterns"];
    let engine = launcher.start("engine", &model, &broker.env("bench-engine"))?;
    let session = launcher.start("session", &model, &broker.env("bench-session"))?;
    // The engine's consumer group settles after its readiness: give it a moment.
    std::thread::sleep(Duration::from_secs(5));
    println!(
        "threds-bench cluster on the {}, properties `{}`: session {} (pid {}), engine {} (pid {}), load average {}",
        broker.name(),
        broker.properties,
        session.addr(),
        session.pid(),
        engine.addr(),
        engine.pid(),
        load_average()
    );
    let runtime = crate::runtime()?;
    let counted = Counted {
        redis: infra.redis(),
        engine: &engine,
    };
    runtime.block_on(load::measure(&session, &args.load, Some(counted)))
}
