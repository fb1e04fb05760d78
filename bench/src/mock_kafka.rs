//! `threds-bench mock-kafka [--brokers N] [--partitions N] [--deployment N] [--topic
//! NAME[:PARTITIONS]]...`: hosts librdkafka's mock Kafka cluster on 127.0.0.1 until SIGINT or
//! SIGTERM, for local runs that connect from other processes.
//!
//! The first line on stdout is `bootstrap=HOST:PORT[,HOST:PORT...]`, printed once the listed
//! topics exist. The mock cluster cannot create topics on request (it has no CreateTopics), so
//! every topic the clients need is named here.

use anyhow::Context;
use std::io::Write;
use threds_runtime::topology::Topology;
use threds_testkit::kafka::{MockKafka, MOCK_PROPERTIES};

/// Arguments of `threds-bench mock-kafka`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of brokers.
    #[arg(long, default_value_t = 1)]
    brokers: u32,
    /// Partition count of each `--topic` given without one.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// A topic to create before printing the bootstrap line, `NAME` or `NAME:PARTITIONS`
    /// (repeatable).
    #[arg(long = "topic", value_name = "NAME[:PARTITIONS]")]
    topics: Vec<String>,
    /// Also create every topic a deployment uses (as `threds engine|session|persistence` would
    /// on a real cluster), the events topic with this many partitions.
    #[arg(long, value_name = "PARTITIONS")]
    deployment: Option<u32>,
}

/// Starts the cluster, creates the topics, prints the bootstrap line, waits for a signal.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut topics = args
        .topics
        .iter()
        .map(|t| topic(t, args.partitions))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(partitions) = args.deployment {
        let deployment = Topology::new(partitions);
        topics.extend(
            deployment
                .topics()
                .into_iter()
                .map(|t| (t.name, t.partitions)),
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mock = MockKafka::start(args.brokers).context("starting the mock Kafka cluster")?;
    for (name, partitions) in &topics {
        mock.create_topic(name, *partitions)
            .with_context(|| format!("creating topic {name}"))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "bootstrap={}", mock.bootstrap())?;
    out.flush()?;
    drop(out);
    eprintln!(
        "mock Kafka cluster with {} broker(s) and {} topic(s) at {}; SIGINT or SIGTERM stops it",
        mock.brokers(),
        topics.len(),
        mock.bootstrap()
    );
    eprintln!(
        "it holds every empty fetch for the client's fetch.wait.max.ms: for low latency, run threds with THREDS_KAFKA_PROPERTIES={MOCK_PROPERTIES}"
    );
    runtime.block_on(stopped())?;
    drop(mock);
    Ok(())
}

/// `NAME` or `NAME:PARTITIONS`.
fn topic(spec: &str, default: u32) -> anyhow::Result<(String, u32)> {
    let (name, partitions) = match spec.rsplit_once(':') {
        Some((name, count)) => (
            name,
            count
                .parse()
                .with_context(|| format!("bad partition count in --topic {spec}"))?,
        ),
        None => (spec, default),
    };
    anyhow::ensure!(!name.is_empty(), "--topic {spec} has no name");
    anyhow::ensure!(
        partitions > 0,
        "--topic {spec} needs at least one partition"
    );
    Ok((name.to_owned(), partitions))
}

/// Resolves on SIGINT or SIGTERM.
async fn stopped() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::topic;

    #[test]
    fn topic_specs() {
        assert_eq!(topic("events:8", 1).unwrap(), ("events".into(), 8));
        assert_eq!(topic("sessions", 3).unwrap(), ("sessions".into(), 3));
        assert!(topic("x:none", 1).is_err());
        assert!(topic("x:0", 1).is_err());
        assert!(topic(":2", 1).is_err());
    }
}
