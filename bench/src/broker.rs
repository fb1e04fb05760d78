//! The broker a distributed bench runs on (librdkafka's mock cluster, or tansu) and the extra
//! librdkafka properties it gives every client, processes and harness alike.

use anyhow::Context;
use threds_testkit::deployment::Infrastructure;

/// The broker options of `cluster` and `latency`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run on a tansu broker instead of librdkafka's mock cluster.
    #[arg(long)]
    tansu: bool,
    /// More librdkafka properties (`name=value,...`) for the processes and the harness alike.
    #[arg(long)]
    properties: Option<String>,
}

/// A started broker with Redis, and the properties its clients use.
pub struct Broker {
    /// Kafka (mock or tansu) and Redis.
    pub infra: Infrastructure,
    /// The broker's own client properties followed by `--properties`.
    pub properties: String,
}

impl Args {
    /// Starts the broker with an events topic of `partitions` partitions, and Redis.
    pub fn start(&self, partitions: u32) -> anyhow::Result<Broker> {
        let infra = if self.tansu {
            Infrastructure::on_tansu(partitions).context("starting tansu and Redis")?
        } else {
            Infrastructure::start(partitions).context("starting the mock cluster and Redis")?
        };
        let properties = [infra.properties(), self.properties.as_deref().unwrap_or("")]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Broker { infra, properties })
    }
}

impl Broker {
    /// What the broker is, for reports.
    pub fn name(&self) -> &'static str {
        if self.infra.properties().is_empty() {
            "tansu broker"
        } else {
            "mock cluster"
        }
    }

    /// The environment of a process named `node`: the deployment's, with these properties and
    /// no rate limits or quotas.
    pub fn env(&self, node: &str) -> Vec<(&'static str, String)> {
        let mut env = self.infra.env(node);
        env.retain(|(k, _)| *k != "THREDS_KAFKA_PROPERTIES");
        env.push(("THREDS_KAFKA_PROPERTIES", self.properties.clone()));
        env.extend(crate::unlimited());
        env
    }
}
