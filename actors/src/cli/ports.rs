//! Building a process's ports from the configuration: each port's `backend`, or the profile's
//! default (embedded for `threds dev`, production for the separate processes).

use crate::node::Ports;
use anyhow::Context;
use std::sync::Arc;
use threds_runtime::bus::memory::MemoryBus;
use threds_runtime::bus::Bus;
use threds_runtime::config::{redact, Backend, Config};
use threds_runtime::documents::memory::MemoryDocuments;
use threds_runtime::documents::Documents;
use threds_runtime::history;
use threds_runtime::store::memory::MemoryStore;
use threds_runtime::store::Stores;

/// Which defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `threds dev`: embedded adapters unless configured otherwise.
    Dev,
    /// `threds engine|session|persistence`: Kafka, Redis, MongoDB unless configured otherwise.
    Production,
}

/// The ports and a line saying where data lives.
pub async fn build(config: &Config, profile: Profile) -> anyhow::Result<(Ports, String)> {
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
            kafka_bus(config).await?
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
            redis_store(config).await?
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
            mongo_documents(config).await?
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
    Ok((
        Ports {
            bus: Arc::new(threds_runtime::telemetry::MeteredBus(bus)),
            stores,
            documents,
        },
        places.join(", "),
    ))
}

async fn kafka_bus(config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    use threds_runtime::bus::kafka::KafkaBus;
    let settings = &config.bus.kafka;
    let bus = KafkaBus::new(settings.clone())
        .with_context(|| format!("configuring Kafka at {}", settings.brokers))?;
    Ok(Arc::new(bus))
}

async fn redis_store(config: &Config) -> anyhow::Result<Stores> {
    use threds_runtime::store::redis::RedisStore;
    let settings = &config.store.redis;
    let store = RedisStore::new(settings.clone()).context("configuring the Redis thred store")?;
    store
        .ping()
        .await
        .with_context(|| format!("reaching Redis at {}", redacted(&settings.urls)))?;
    Ok(Stores::of(store))
}

async fn mongo_documents(config: &Config) -> anyhow::Result<Arc<dyn Documents>> {
    use threds_runtime::documents::mongo::MongoDocuments;
    let settings = &config.documents.mongodb;
    let documents = MongoDocuments::connect(settings).await.with_context(|| {
        format!(
            "connecting to MongoDB at {}",
            redact(&settings.connection_string())
        )
    })?;
    documents
        .ensure_indexes()
        .await
        .context("creating the history indexes")?;
    Ok(Arc::new(documents))
}

/// URLs for a message, passwords masked.
fn redacted(urls: &[String]) -> String {
    urls.iter()
        .map(|u| redact(u))
        .collect::<Vec<_>>()
        .join(", ")
}
