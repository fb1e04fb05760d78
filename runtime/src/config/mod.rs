//! Settings: one tree of serde sections read from `threds.toml`, overlaid with `THREDS_*`
//! environment variables by one rule, then with command-line flags (applied by the binary).
//!
//! Each adapter's settings type is its section ([`KafkaConfig`](crate::bus::kafka::KafkaConfig)
//! is `[bus.kafka]`, the Redis [`Config`](crate::store::redis::Config) `[store.redis]`,
//! [`MongoConfig`](crate::documents::mongo::MongoConfig) `[documents.mongodb]`); every setting has
//! one default, in its type's `Default`, so an empty file is a valid configuration. The setting at
//! `section.sub.key` is also read from `THREDS_SECTION_SUB_KEY` ([`variable`]), and a few settings
//! from the shorter names in [`ALIASES`]. [`schema`] reads the tree's shape from the types, so the
//! overlay, [`Config::to_masked_toml`] and the tests cover a new setting without being told.

mod env;
mod file;
mod mask;
mod memory;
pub use self::memory::{BASE_BYTES, ENGINE_BUFFER_BYTES};
pub mod schema;
mod sections;
#[cfg(test)]
mod tests;

pub use self::env::{variable, ALIASES};
pub use self::file::LEGACY;
pub use self::mask::{redact, MASK};
pub use self::schema::{Kind, Leaf};
pub use self::sections::{
    AuthConfig, BusConfig, DocumentsConfig, EngineConfig, LogFormat, ModelConfig, NodeConfig,
    ServerConfig, StorageConfig, StoreConfig, TelemetryConfig,
};

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The development secret `threds dev` falls back to (never accepted by the production processes).
pub const DEV_JWT_SECRET: &str = "threds-dev-secret-do-not-use-in-production";

/// The whole settings tree.
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
    /// The event bus port and its Kafka adapter.
    pub bus: BusConfig,
    /// The thred store port and its Redis adapter.
    pub store: StoreConfig,
    /// The documents port (history and persistence agent) and its MongoDB adapter.
    pub documents: DocumentsConfig,
    /// This process.
    pub node: NodeConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
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
    #[error("environment variable {name} ({setting}): {message}")]
    Env {
        /// The variable.
        name: String,
        /// The setting it sets (dotted path).
        setting: String,
        /// What was expected.
        message: String,
    },
    /// A setting has a value of the right type that is still not allowed.
    #[error("setting {setting} ({variable}): {message}")]
    Invalid {
        /// The setting (dotted path).
        setting: String,
        /// Its environment variable.
        variable: String,
        /// What is wrong.
        message: String,
    },
    /// The settings types could not be walked or converted (a bug, not a user error).
    #[error("settings tree: {0}")]
    Tree(String),
}

impl Config {
    /// Parses TOML text (`source` names it in errors); keys of earlier releases ([`LEGACY`]) are
    /// accepted.
    pub fn parse(source: &str, text: &str) -> Result<Config, Error> {
        file::parse(source, text)
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&path.display().to_string(), &text)
    }

    /// Overlays the `THREDS_*` variables read through `var` (so tests need not touch the process
    /// environment): each setting's [`variable`] and its [`ALIASES`] (the long name wins).
    pub fn with_env(self, var: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let mut tree = self.tree()?;
        env::overlay(&mut tree, &Config::settings()?, &var)?;
        serde_json::from_value(tree).map_err(|e| Error::Tree(e.to_string()))
    }

    /// The names of the deployment this configuration describes: its topics' partition counts.
    pub fn topology(&self) -> crate::topology::Topology {
        crate::topology::Topology::new(self.engine.partitions)
            .with_session_slots(self.server.session_slots)
    }

    /// Checks what the types cannot say (e.g. at least one partition).
    pub fn check(&self) -> Result<(), Error> {
        let invalid = |path: &[&str], message: &str| Error::Invalid {
            setting: path.join("."),
            variable: variable(path),
            message: message.into(),
        };
        let e = &self.engine;
        let at_least_one = [
            ("partitions", u64::from(e.partitions)),
            ("expression_max_sequence", e.expression_max_sequence as u64),
            (
                "expression_max_string_bytes",
                e.expression_max_string_bytes as u64,
            ),
            ("expression_max_bytes", e.expression_max_bytes as u64),
        ];
        if let Some((name, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(&["engine", name], "must be at least 1"));
        }
        if self.server.session_slots == 0 {
            return Err(invalid(&["server", "session_slots"], "must be at least 1"));
        }
        if self.server.session_slot_ttl_ms < 300 {
            return Err(invalid(
                &["server", "session_slot_ttl_ms"],
                "must be at least 300 (ms; the slot is renewed every third of it)",
            ));
        }
        let auth = &self.auth;
        if let Some(url) = &auth.jwks_url {
            if !valid_http_url(url) {
                return Err(invalid(
                    &["auth", "jwks_url"],
                    &format!("'{url}' is not an http:// or https:// URL with a host"),
                ));
            }
        }
        for (key, value) in [
            ("jwks_refresh_secs", auth.jwks_refresh_secs),
            ("jwks_min_refresh_secs", auth.jwks_min_refresh_secs),
        ] {
            if value == 0 {
                return Err(invalid(&["auth", key], "must be at least 1 (seconds)"));
            }
        }
        for (key, value) in [("issuer", &auth.issuer), ("audience", &auth.audience)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(
                    &["auth", key],
                    "must not be empty (unset it instead)",
                ));
            }
        }
        Ok(())
    }

    /// Every setting of the tree, in declaration order.
    pub fn settings() -> Result<Vec<Leaf>, Error> {
        schema::kind_of::<Config>()
            .map(|kind| schema::leaves(&kind))
            .map_err(Error::Tree)
    }

    /// The tree as JSON: sections are objects, unset options `null`.
    pub fn tree(&self) -> Result<serde_json::Value, Error> {
        serde_json::to_value(self).map_err(|e| Error::Tree(e.to_string()))
    }

    /// The settings as `threds.toml` text with secrets replaced by [`MASK`]: `jwt_secret`, any
    /// setting or property whose name says password, secret or key material, and passwords in
    /// URLs. Unset optional settings are shown as comments.
    pub fn to_masked_toml(&self) -> Result<String, Error> {
        let mut tree = self.tree()?;
        mask::mask(&mut tree);
        mask::render(&tree)
    }
}

/// Whether `url` is `http://` or `https://` followed by a host (and nothing that cannot be in
/// a URL: spaces, control characters).
fn valid_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    !host.is_empty()
        && !host.starts_with(':')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}
