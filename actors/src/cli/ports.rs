//! Building a process's ports from the configuration: each port's `backend`, or the profile's
//! default (embedded for `threds dev`, production for the separate processes).

use crate::node::{Ports, Roles};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::memory::MemoryBus;
use threds_runtime::bus::{Bus, Error as BusError};
use threds_runtime::config::{redact, Backend, Config};
use threds_runtime::documents::memory::MemoryDocuments;
use threds_runtime::documents::Documents;
use threds_runtime::history;
use threds_runtime::store::memory::MemoryStore;
use threds_runtime::store::Stores;
use threds_runtime::topology::Topology;
use tokio_util::sync::CancellationToken;

/// Which defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `threds dev`: embedded adapters unless configured otherwise.
    Dev,
    /// `threds engine|session|persistence`: Kafka, Redis, MongoDB unless configured otherwise.
    Production,
}

/// The ports and a line saying where data lives; `None` when `stop` was cancelled while a backend
/// was still being waited for (Redis and MongoDB are tried again, with backoff, until they answer).
pub async fn build(
    config: &Config,
    roles: Roles,
    profile: Profile,
    stop: &CancellationToken,
) -> anyhow::Result<Option<(Ports, String)>> {
    let pick = |set: Option<Backend>, production: Backend| {
        set.unwrap_or(match profile {
            Profile::Dev => Backend::Memory,
            Profile::Production => production,
        })
    };
    let bus_backend = pick(config.bus.backend, Backend::Kafka);
    let store_backend = pick(config.store.backend, Backend::Redis);
    let docs_backend = pick(config.documents.backend, Backend::Mongodb);
    if profile == Profile::Production && Backend::Memory == bus_backend {
        anyhow::bail!("bus backend 'memory' lives inside one process: separate processes need kafka (unset [bus] backend / THREDS_BUS)");
    }
    if let Some(dir) = &config.storage.data_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let storage = &config.storage;
    let mut places = Vec::new();
    let bus: Arc<dyn Bus> = match bus_backend {
        Backend::Memory => {
            let bus = match &storage.data_dir {
                Some(dir) => MemoryBus::open(dir).context("opening the bus log")?,
                None => MemoryBus::new(),
            };
            Arc::new(
                bus.with_retention(storage.bus_retention)
                    .with_retention_bytes(storage.bus_retention_bytes),
            )
        }
        Backend::Kafka => {
            places.push(format!("kafka {}", config.bus.kafka.brokers));
            let bus = kafka_bus(config, roles).await?;
            let what = format!("Kafka at {}", config.bus.kafka.brokers);
            let topology = config.topology();
            match wait_for(&what, stop, || topics_made(bus.as_ref(), &topology)).await? {
                Some(()) => bus,
                None => return Ok(None),
            }
        }
        other => anyhow::bail!("[bus] backend {other:?} is not a bus (memory or kafka)"),
    };
    let stores = match store_backend {
        Backend::Memory => match &storage.data_dir {
            Some(dir) => Stores::of(MemoryStore::open(dir).context("opening the thred store")?),
            None => Stores::of(MemoryStore::new()),
        },
        Backend::Redis => {
            places.push(format!("redis {}", redacted(&config.store.redis.urls)));
            let what = format!("Redis at {}", redacted(&config.store.redis.urls));
            match wait_for(&what, stop, || redis_store(config)).await? {
                Some(stores) => stores,
                None => return Ok(None),
            }
        }
        other => anyhow::bail!("[store] backend {other:?} is not a thred store (memory or redis)"),
    };
    let documents: Arc<dyn Documents> = match docs_backend {
        Backend::Memory => match &storage.data_dir {
            Some(dir) => {
                Arc::new(MemoryDocuments::open(dir).context("opening the documents store")?)
            }
            None => Arc::new(
                MemoryDocuments::new()
                    .capped(
                        history::EVENTS,
                        storage.history_retention,
                        storage.history_retention_bytes,
                    )
                    .capped(
                        history::THRED_LOG,
                        storage.history_retention,
                        storage.history_retention_bytes,
                    ),
            ),
        },
        Backend::Mongodb => {
            places.push(format!(
                "mongodb database {}",
                config.documents.mongodb.database
            ));
            let what = format!(
                "MongoDB at {}",
                redact(&config.documents.mongodb.connection_string())
            );
            match wait_for(&what, stop, || mongo_documents(config)).await? {
                Some(documents) => documents,
                None => return Ok(None),
            }
        }
        other => {
            anyhow::bail!(
                "[documents] backend {other:?} is not a documents store (memory or mongodb)"
            )
        }
    };
    let embedded = [bus_backend, store_backend, docs_backend].contains(&Backend::Memory);
    if embedded {
        places.push(match &storage.data_dir {
            Some(dir) => format!("embedded data in {}", dir.display()),
            None => "embedded data in memory (use --data-dir to keep it)".into(),
        });
    }
    Ok(Some((
        Ports {
            bus: Arc::new(threds_runtime::telemetry::MeteredBus(bus)),
            stores,
            documents,
        },
        places.join(", "),
    )))
}

/// First wait between attempts to reach a backend; it doubles up to [`MOST_BETWEEN_ATTEMPTS`].
const FIRST_WAIT: Duration = Duration::from_millis(200);
/// Longest wait between attempts to reach a backend.
const MOST_BETWEEN_ATTEMPTS: Duration = Duration::from_secs(5);

/// Runs `connect` until it succeeds, waiting longer after each failure (saying why), so that a
/// process started before its backend answers becomes ready when it does; `None` once `stop` is
/// cancelled. Configuration errors are not retried: they cannot heal.
async fn wait_for<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    mut connect: F,
) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Unreachable>>,
{
    let mut wait = FIRST_WAIT;
    let mut attempts = 0u32;
    loop {
        match connect().await {
            Ok(value) => {
                if attempts > 0 {
                    tracing::info!(attempts = attempts + 1, "{what} answers");
                }
                return Ok(Some(value));
            }
            Err(Unreachable::Config(e)) => return Err(e),
            Err(Unreachable::Down(e)) => {
                attempts += 1;
                tracing::warn!(
                    code = threds_runtime::codes::BACKEND_UNAVAILABLE,
                    attempts,
                    retry_in_ms = wait.as_millis() as u64,
                    error = format!("{e:#}"),
                    "{what} does not answer yet; not ready meanwhile"
                );
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(MOST_BETWEEN_ATTEMPTS);
    }
}

/// Why a backend could not be used: its configuration is wrong (fatal), or it is down (retried).
enum Unreachable {
    /// The settings are wrong.
    Config(anyhow::Error),
    /// It did not answer.
    Down(anyhow::Error),
}

/// Makes the deployment's topics exist (a partition-count mismatch is a configuration error, not
/// retried).
async fn topics_made(bus: &dyn Bus, topology: &Topology) -> Result<(), Unreachable> {
    for topic in topology.topics() {
        if let Err(e) = bus.create_topic(&topic.name, topic.partitions).await {
            let failed = anyhow::Error::new(e).context(format!(
                "creating topic {} with {} partition(s)",
                topic.name, topic.partitions
            ));
            return Err(match failed.downcast_ref::<BusError>() {
                Some(BusError::PartitionMismatch { .. }) => Unreachable::Config(failed),
                _ => Unreachable::Down(failed),
            });
        }
    }
    Ok(())
}

async fn kafka_bus(config: &Config, roles: Roles) -> anyhow::Result<Arc<dyn Bus>> {
    use threds_runtime::bus::kafka::{KafkaBus, SESSION_LINGER_MS};
    let mut settings = config.bus.kafka.clone();
    if roles.sessions {
        settings.linger_ms.get_or_insert(SESSION_LINGER_MS);
    }
    let brokers = settings.brokers.clone();
    let bus = KafkaBus::new(settings).with_context(|| format!("configuring Kafka at {brokers}"))?;
    Ok(Arc::new(bus))
}

async fn redis_store(config: &Config) -> Result<Stores, Unreachable> {
    use threds_runtime::store::redis::RedisStore;
    let settings = &config.store.redis;
    let store = RedisStore::new(settings.clone())
        .context("configuring the Redis thred store")
        .map_err(Unreachable::Config)?;
    store
        .ping()
        .await
        .with_context(|| format!("reaching Redis at {}", redacted(&settings.urls)))
        .map_err(Unreachable::Down)?;
    Ok(Stores::of(store))
}

async fn mongo_documents(config: &Config) -> Result<Arc<dyn Documents>, Unreachable> {
    use threds_runtime::documents::mongo::MongoDocuments;
    let settings = &config.documents.mongodb;
    let documents = MongoDocuments::connect(settings)
        .await
        .with_context(|| {
            format!(
                "connecting to MongoDB at {}",
                redact(&settings.connection_string())
            )
        })
        .map_err(Unreachable::Down)?;
    documents
        .ensure_indexes()
        .await
        .context("creating the history indexes")
        .map_err(Unreachable::Down)?;
    Ok(Arc::new(documents))
}

/// URLs for a message, passwords masked.
fn redacted(urls: &[String]) -> String {
    urls.iter()
        .map(|u| redact(u))
        .collect::<Vec<_>>()
        .join(", ")
}
