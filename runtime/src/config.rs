//! Configuration: `threds.toml`, then `THREDS_*` environment variables, then command-line flags
//! (applied by the binary). Every field has a default, so an empty file is a valid configuration.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The development secret `threds dev` falls back to (never accepted by the production processes).
pub const DEV_JWT_SECRET: &str = "threds-dev-secret-do-not-use-in-production";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where patterns, sessions model and resolver config come from.
    pub model: ModelConfig,
    /// HTTP/WebSocket server.
    pub server: ServerConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// The engine.
    pub engine: EngineConfig,
    /// Embedded storage.
    pub storage: StorageConfig,
    /// The event bus backend.
    pub bus: BusConfig,
    /// The thred store backend.
    pub store: StoreConfig,
    /// The documents (history and persistence agent) backend.
    pub documents: DocumentsConfig,
    /// This process.
    pub node: NodeConfig,
}

/// Which adapter serves a port. Unset: `threds dev` uses the embedded one, the production
/// processes (`threds engine|session|persistence`) the production one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded (in this process; `--data-dir` makes it durable).
    Memory,
    /// Kafka (bus).
    Kafka,
    /// Redis (thred store).
    Redis,
    /// MongoDB (documents).
    Mongodb,
}

/// The event bus backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `memory` or `kafka`.
    pub backend: Option<Backend>,
    /// Kafka bootstrap servers, comma-separated (`THREDS_KAFKA_BROKERS`).
    pub brokers: String,
    /// Use the node name as `group.instance.id` (static membership: a restart within the
    /// session timeout keeps the partitions without a rebalance).
    pub static_membership: bool,
    /// Consumer-group session timeout, ms.
    pub session_timeout_ms: u64,
    /// More librdkafka properties for every Kafka client, applied last (`security.protocol`,
    /// `sasl.*`, `fetch.wait.max.ms`, ...); `THREDS_KAFKA_PROPERTIES` adds `name=value` pairs
    /// separated by commas.
    pub properties: std::collections::BTreeMap<String, String>,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            backend: None,
            brokers: "127.0.0.1:9092".into(),
            static_membership: true,
            session_timeout_ms: 10_000,
            properties: Default::default(),
        }
    }
}

/// The thred store backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory` or `redis`.
    pub backend: Option<Backend>,
    /// Redis URLs (`THREDS_REDIS_URLS`, comma-separated): the first holds the state; more than
    /// one means leases by Redlock over these independent masters.
    pub redis_urls: Vec<String>,
    /// Prefix of every key.
    pub prefix: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: None,
            redis_urls: vec!["redis://127.0.0.1:6379".into()],
            prefix: "threds:".into(),
        }
    }
}

/// The documents backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsConfig {
    /// `memory` or `mongodb`.
    pub backend: Option<Backend>,
    /// MongoDB connection string (`THREDS_MONGODB_URI`).
    pub mongodb_uri: String,
    /// Database name.
    pub database: String,
    /// Most connections per server (the driver's default when unset).
    pub max_pool_size: Option<u32>,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig {
            backend: None,
            mongodb_uri: "mongodb://127.0.0.1:27017".into(),
            database: "threds".into(),
            max_pool_size: None,
        }
    }
}

/// This process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Its name (`THREDS_NODE`; default: the host name): group member name and lease owner.
    pub name: Option<String>,
}

/// Pattern, sessions and resolver files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// A pattern file or a directory of `*.pattern.json`.
    pub patterns: PathBuf,
    /// The sessions model.
    pub sessions: Option<PathBuf>,
    /// The resolver config.
    pub resolver: Option<PathBuf>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            patterns: PathBuf::from("config/patterns"),
            sessions: Some(PathBuf::from("config/sessions_model.json")),
            resolver: Some(PathBuf::from("config/resolver_config.json")),
        }
    }
}

/// The HTTP/WebSocket server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port` to listen on.
    pub listen: String,
    /// Largest accepted WebSocket frame or HTTP body, bytes.
    pub max_frame_bytes: usize,
    /// Messages queued per connection before a slow client is disconnected.
    pub connection_queue: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_frame_bytes: 64 * 1024,
            connection_queue: 1024,
        }
    }
}

/// Authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 secret; `THREDS_JWT_SECRET` overrides it.
    pub jwt_secret: Option<String>,
    /// Lifetime of tokens minted by `threds token`, seconds.
    pub token_ttl_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            token_ttl_secs: 24 * 3600,
        }
    }
}

/// The engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Partitions of the events topic.
    pub partitions: u32,
    /// Attempts at a failing record before it is dead-lettered.
    pub max_attempts: u32,
    /// Largest batch one poll takes.
    pub batch: usize,
    /// How long a partition lease lasts unless renewed (it is renewed every third of that).
    pub lease_ms: u64,
    /// Record every step's history (`EventRecord`, `ThredLogRecord`, `ThredRecord`) in the
    /// documents store (`THREDS_HISTORY=false` turns it off). Without it, `getThreds` still
    /// answers from the thred store, but thred event logs and archived threds are not kept.
    pub history: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            partitions: 4,
            max_attempts: 3,
            batch: 256,
            lease_ms: 10_000,
            history: true,
        }
    }
}

/// Embedded storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Keep state, timers, offsets, history and documents here (none: in memory only).
    pub data_dir: Option<PathBuf>,
    /// Records each bus partition keeps (older ones are removed, as Kafka's retention does).
    pub bus_retention: u64,
    /// Event records and thred log records the in-memory history keeps (the newest; a data
    /// directory keeps all).
    pub history_retention: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: None,
            bus_retention: 20_000,
            history_retention: 20_000,
        }
    }
}

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong and where.
        message: String,
    },
    /// An environment variable has a bad value.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Parses TOML text (`source` names it in errors).
    pub fn parse(source: &str, text: &str) -> Result<Config, Error> {
        toml::from_str(text).map_err(|e| Error::Parse {
            path: source.to_string(),
            message: e.to_string(),
        })
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&path.display().to_string(), &text)
    }

    /// Applies `THREDS_*` variables read through `var` (so tests need not touch the process environment).
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        if let Some(v) = var("THREDS_JWT_SECRET") {
            self.auth.jwt_secret = Some(v);
        }
        if let Some(v) = var("THREDS_LISTEN") {
            self.server.listen = v;
        }
        if let Some(v) = var("THREDS_PATTERNS") {
            self.model.patterns = PathBuf::from(v);
        }
        if let Some(v) = var("THREDS_SESSIONS") {
            self.model.sessions = Some(PathBuf::from(v));
        }
        if let Some(v) = var("THREDS_RESOLVER") {
            self.model.resolver = Some(PathBuf::from(v));
        }
        if let Some(v) = var("THREDS_DATA_DIR") {
            self.storage.data_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = var("THREDS_KAFKA_BROKERS") {
            self.bus.brokers = v;
        }
        if let Some(v) = var("THREDS_KAFKA_PROPERTIES") {
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((name, value)) = pair.split_once('=') else {
                    return Err(Error::Env {
                        name: "THREDS_KAFKA_PROPERTIES",
                        message: format!("'{pair}' is not name=value"),
                    });
                };
                self.bus
                    .properties
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
        if let Some(v) = var("THREDS_REDIS_URLS") {
            let urls: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(String::from)
                .collect();
            if urls.is_empty() {
                return Err(Error::Env {
                    name: "THREDS_REDIS_URLS",
                    message: "no URL given".into(),
                });
            }
            self.store.redis_urls = urls;
        }
        if let Some(v) = var("THREDS_MONGODB_URI") {
            self.documents.mongodb_uri = v;
        }
        if let Some(v) = var("THREDS_NODE") {
            self.node.name = Some(v);
        }
        for (name, slot) in [
            ("THREDS_BUS", &mut self.bus.backend),
            ("THREDS_STORE", &mut self.store.backend),
            ("THREDS_DOCUMENTS", &mut self.documents.backend),
        ] {
            if let Some(v) = var(name) {
                *slot = Some(
                    serde_json::from_value(serde_json::Value::String(v.clone())).map_err(|_| {
                        Error::Env {
                            name,
                            message: format!(
                                "'{v}' is not a backend (memory, kafka, redis, mongodb)"
                            ),
                        }
                    })?,
                );
            }
        }
        if let Some(v) = var("THREDS_HISTORY") {
            self.engine.history = match v.trim() {
                "true" | "1" | "on" => true,
                "false" | "0" | "off" => false,
                _ => {
                    return Err(Error::Env {
                        name: "THREDS_HISTORY",
                        message: format!("'{v}' is not true or false"),
                    })
                }
            };
        }
        if let Some(v) = var("THREDS_PARTITIONS") {
            self.engine.partitions = v.parse().ok().filter(|n| *n > 0).ok_or(Error::Env {
                name: "THREDS_PARTITIONS",
                message: format!("'{v}' is not a positive number"),
            })?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_file_gives_defaults_and_env_overrides() {
        let c = Config::parse("t.toml", "").unwrap();
        assert_eq!(c, Config::default());
        let env = |k: &str| match k {
            "THREDS_LISTEN" => Some("0.0.0.0:9000".to_string()),
            "THREDS_PARTITIONS" => Some("8".to_string()),
            _ => None,
        };
        let c = c.with_env(env).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.engine.partitions, 8);
        let bad =
            Config::default().with_env(|k| (k == "THREDS_PARTITIONS").then(|| "zero".to_string()));
        assert!(bad.unwrap_err().to_string().contains("THREDS_PARTITIONS"));
    }

    #[test]
    fn kafka_properties_come_from_the_file_and_the_environment() {
        let c = Config::parse(
            "t.toml",
            "[bus.properties]\n\"security.protocol\" = \"ssl\"\n\"fetch.wait.max.ms\" = \"50\"\n",
        )
        .unwrap();
        let c = c
            .with_env(|k| {
                (k == "THREDS_KAFKA_PROPERTIES").then(|| "fetch.wait.max.ms=10, linger.ms=5".into())
            })
            .unwrap();
        let props: Vec<(&str, &str)> = c
            .bus
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            props,
            [
                ("fetch.wait.max.ms", "10"),
                ("linger.ms", "5"),
                ("security.protocol", "ssl")
            ]
        );
        let bad = Config::default()
            .with_env(|k| (k == "THREDS_KAFKA_PROPERTIES").then(|| "linger.ms".into()));
        assert!(bad.unwrap_err().to_string().contains("name=value"));
    }

    #[test]
    fn unknown_keys_are_errors_with_their_place() {
        let err = Config::parse("t.toml", "[server]\nlisten = \"x\"\nlisen = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.toml") && err.contains("lisen"), "{err}");
    }
}
