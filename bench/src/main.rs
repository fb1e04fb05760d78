//! `threds-bench`: load tests of `threds` processes it starts itself, and a host for librdkafka's
//! mock Kafka cluster. Test tooling, kept out of the `threds` binary; it runs the `threds` built
//! beside it (`cargo build --release --bin threds`) or the one `--threds` names.

mod broker;
mod cluster;
mod dev;
mod engine;
mod latency;
mod load;
mod memory;
mod mock_kafka;
mod report;
mod stats;

use anyhow::{ensure, Context};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use threds_testkit::rig::{self, Launcher, Output};
use threds_testkit::token::Secret;

/// The secret of the processes the bench starts and of its clients' tokens.
const SECRET: &str = "threds-bench-secret";

/// Benchmarks of Threds processes, and a mock Kafka cluster host.
#[derive(Debug, Parser)]
#[command(name = "threds-bench", version, about)]
struct Cli {
    /// The `threds` binary to run (default: the one beside this executable).
    #[arg(long, global = true, value_name = "PATH")]
    threds: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load-test a `threds dev` (in memory) over WebSocket: throughput, latency, memory.
    Dev(dev::Args),
    /// Load-test one `threds engine` and one `threds session` process on a mock Kafka cluster and a
    /// `redis-server` started here: throughput, latency, Redis calls per event.
    Cluster(cluster::Args),
    /// Measure one `threds engine` process alone: events produced straight to Kafka (mock cluster
    /// and `redis-server` started here), for the echo pattern and the reference `downtime` pattern.
    Engine(engine::Args),
    /// One `threds engine`'s latency as another system sees it: plain librdkafka clients produce
    /// bound echo events at steady rates and read the messages back (mock cluster, or tansu).
    Latency(latency::Args),
    /// Peak resident memory of a `threds dev` under the worst-case steady load (maximum-size
    /// events), with the default byte bounds and with record-count bounds only.
    Memory(memory::Args),
    /// Host a mock Kafka cluster (librdkafka's) on 127.0.0.1 until SIGINT/SIGTERM; prints
    /// `bootstrap=HOST:PORT` first.
    MockKafka(mock_kafka::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs the parsed command line.
fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev(args) => dev::run(&launcher(cli.threds)?, &args),
        Command::Cluster(args) => cluster::run(&launcher(cli.threds)?, &args),
        Command::Engine(args) => engine::run(&launcher(cli.threds)?, &args),
        Command::Latency(args) => latency::run(&launcher(cli.threds)?, &args),
        Command::Memory(args) => memory::run(&launcher(cli.threds)?, &args),
        Command::MockKafka(args) => mock_kafka::run(&args),
    }
}

/// The multi-threaded runtime the load generators and readers run on.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// How the bench starts `threds`: the binary found, logging at warn (plus the start-up line) to a
/// file per process in the temporary directory.
/// The settings of a measured server: no per-connection or per-participant rate limit, no
/// per-address connection cap and no thred quotas, as the load generator drives its participants
/// from one address as hard as they go, each starting many threds (the limits are tested in
/// tests/limits.rs).
fn unlimited() -> Vec<(&'static str, String)> {
    vec![
        ("THREDS_SERVER_RATE_EVENTS_PER_SEC", "0".to_owned()),
        ("THREDS_SERVER_RATE_BYTES_PER_SEC", "0".to_owned()),
        ("THREDS_SERVER_PARTICIPANT_EVENTS_PER_SEC", "0".to_owned()),
        ("THREDS_SERVER_PARTICIPANT_BYTES_PER_SEC", "0".to_owned()),
        ("THREDS_SERVER_MAX_CONNECTIONS_PER_ADDRESS", "0".to_owned()),
        ("THREDS_ENGINE_MAX_THREDS_PER_PARTICIPANT", "0".to_owned()),
        ("THREDS_ENGINE_DEFAULT_MAX_INSTANCES", "0".to_owned()),
    ]
}

fn launcher(threds: Option<PathBuf>) -> anyhow::Result<Launcher> {
    let binary = match threds {
        Some(path) => path,
        None => rig::beside_current_exe("threds").context("locating the threds binary")?,
    };
    ensure!(
        binary.is_file(),
        "no threds binary at {}: build it (cargo build --release --bin threds) or pass --threds PATH",
        binary.display()
    );
    Ok(Launcher::new(binary, Secret::new(SECRET))
        .log_filter(
            std::env::var("THREDS_BENCH_LOG").unwrap_or_else(|_| "warn,threds::node=info".into()),
        )
        .output(Output::Files(std::env::temp_dir())))
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
