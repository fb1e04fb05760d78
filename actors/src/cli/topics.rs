//! `threds topics create`: creates the Kafka topics of the deployment the settings describe
//! (`runtime::topology`: the events topic with `[engine] partitions`, the sessions, control and
//! persistence-agent topics and their dead-letter topics), with a chosen replication factor,
//! before any process starts. Idempotent: a topic that exists with the right partition count is
//! left alone; one with another count is an error naming it (keys would move between partitions).
//! The Helm chart runs it from a pre-install/pre-upgrade hook.

use super::config::{load, Overrides};
use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use threds_runtime::bus::kafka::{KafkaBus, KafkaConfig};
use threds_runtime::bus::{Bus, Error as BusError};
use threds_runtime::config::Config;
use threds_runtime::topology::TopicSpec;

/// How long the cluster may take to answer one CreateTopics request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Arguments of `threds topics`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create the deployment's topics that are missing (idempotent); check the others' partitions.
    Create(CreateArgs),
}

/// Arguments of `threds topics create`.
#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Configuration file (optional; `THREDS_*` variables override it).
    #[arg(long, default_value = "config/threds.toml")]
    config: PathBuf,
    /// Replication factor of the topics created: -1 for the brokers' `default.replication.factor`.
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true,
          value_parser = replication_factor)]
    replication_factor: i32,
    /// Print the topics the settings call for and exit, without connecting.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `threds topics ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Create(args) => create(args),
    }
}

/// `--replication-factor`: -1 or at least 1.
fn replication_factor(text: &str) -> Result<i32, String> {
    match text.trim().parse::<i32>() {
        Ok(n) if n == -1 || n >= 1 => Ok(n),
        _ => Err(format!(
            "'{text}' is not a replication factor: -1 (the brokers' default) or a whole number from 1"
        )),
    }
}

/// The topics of the deployment `config` describes.
fn planned(config: &Config) -> Vec<TopicSpec> {
    config.topology().topics()
}

/// What was found or done for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// It existed with the right partition count.
    Exists,
    /// It was created now.
    Created,
}

fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config, Overrides::default(), |k| {
        std::env::var(k).ok()
    })?;
    let topics = planned(&config);
    if args.dry_run {
        for topic in &topics {
            println!("{} partitions={}", topic.name, topic.partitions);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let kafka = config.bus.kafka.clone();
    let outcomes = runtime.block_on(ensure(&kafka, &topics, args.replication_factor))?;
    for (topic, outcome) in topics.iter().zip(outcomes) {
        let what = match outcome {
            Outcome::Exists => "exists",
            Outcome::Created => "created",
        };
        println!("{} partitions={} {what}", topic.name, topic.partitions);
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes every topic of `topics` exist with its partition count on the cluster of `kafka`.
async fn ensure(
    kafka: &KafkaConfig,
    topics: &[TopicSpec],
    replication: i32,
) -> anyhow::Result<Vec<Outcome>> {
    let bus = KafkaBus::new(kafka.clone())
        .with_context(|| format!("configuring the Kafka client for {}", kafka.brokers))?;
    let mut outcomes = Vec::with_capacity(topics.len());
    let mut missing = Vec::new();
    for topic in topics {
        match bus.partitions(&topic.name).await {
            Ok(existing) if existing == topic.partitions => outcomes.push(Outcome::Exists),
            Ok(existing) => anyhow::bail!(
                "topic {} exists with {existing} partition(s) but the settings ([engine] partitions \
                 for the events topic) call for {}; a topic's partition count cannot change under a \
                 running deployment (keys would move): set the partitions to {existing}, or \
                 recreate the topic",
                topic.name,
                topic.partitions
            ),
            Err(BusError::UnknownTopic(_)) => {
                outcomes.push(Outcome::Created);
                missing.push(topic);
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "looking up topic {} on the Kafka cluster at {}",
                    topic.name, kafka.brokers
                )))
            }
        }
    }
    if !missing.is_empty() {
        request(kafka, &missing, replication).await?;
        for topic in missing {
            // Waits until metadata shows the topic with every partition led, and checks the count.
            bus.create_topic(&topic.name, topic.partitions)
                .await
                .with_context(|| format!("waiting for topic {} to be ready", topic.name))?;
        }
    }
    Ok(outcomes)
}

/// Sends one CreateTopics request for `topics`; a topic that already exists is fine.
async fn request(
    kafka: &KafkaConfig,
    topics: &[&TopicSpec],
    replication: i32,
) -> anyhow::Result<()> {
    let admin = admin_client(kafka)?;
    let settings: Vec<Vec<(&str, String)>> = topics
        .iter()
        .map(|t| kafka.topic_settings(&t.name))
        .collect();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&settings)
        .map(|(t, settings)| {
            let partitions = i32::try_from(t.partitions).context("partition count")?;
            let mut topic =
                NewTopic::new(&t.name, partitions, TopicReplication::Fixed(replication));
            for (key, value) in settings {
                topic = topic.set(key, value);
            }
            Ok(topic)
        })
        .collect::<anyhow::Result<_>>()?;
    let options = AdminOptions::new()
        .operation_timeout(Some(REQUEST_TIMEOUT))
        .request_timeout(Some(REQUEST_TIMEOUT));
    let names = topics
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let results = admin.create_topics(&new, &options).await.with_context(|| {
        format!(
            "creating topics {names} on the Kafka cluster at {} (a cluster without CreateTopics, \
             such as librdkafka's mock cluster, needs them made beforehand)",
            kafka.brokers
        )
    })?;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|result| match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => None,
            Err((topic, code)) => Some(format!("{topic}: {code}")),
        })
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "the Kafka cluster at {} refused to create {} (replication factor {})",
        kafka.brokers,
        failed.join("; "),
        describe_replication(replication)
    );
    Ok(())
}

/// `-1` as words.
fn describe_replication(replication: i32) -> String {
    if replication == -1 {
        "the brokers' default".to_owned()
    } else {
        replication.to_string()
    }
}

/// An admin client with the bus's connection settings (brokers, client id, TLS/SASL properties).
fn admin_client(kafka: &KafkaConfig) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    kafka
        .admin_client("topics")
        .create()
        .with_context(|| format!("configuring the Kafka admin client for {}", kafka.brokers))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn replication_factor_is_minus_one_or_positive() {
        assert_eq!(replication_factor("-1"), Ok(-1));
        assert_eq!(replication_factor("3"), Ok(3));
        for bad in ["0", "-2", "three", ""] {
            let err = replication_factor(bad).unwrap_err();
            assert!(err.contains("replication factor"), "{bad}: {err}");
        }
        let parsed = Cli::try_parse_from(["t", "create", "--replication-factor", "-1"]).unwrap();
        let Command::Create(args) = parsed.command;
        assert_eq!(args.replication_factor, -1);
        assert!(Cli::try_parse_from(["t", "create", "--replication-factor", "0"]).is_err());
    }

    #[test]
    fn the_plan_is_the_topology_of_the_configured_partitions() {
        let env = |k: &str| (k == "THREDS_ENGINE_PARTITIONS").then(|| "6".to_string());
        let config = load(
            std::path::Path::new("/nonexistent/threds.toml"),
            Overrides::default(),
            env,
        )
        .unwrap();
        let topics = planned(&config);
        assert_eq!(topics, threds_runtime::topology::Topology::new(6).topics());
        assert_eq!(topics[0].partitions, 6);
    }
}
