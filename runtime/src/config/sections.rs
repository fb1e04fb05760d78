//! The sections of the settings tree that belong to the processes rather than to one adapter.
//! (The adapters' sections are their own settings types: [`KafkaConfig`], [`RedisConfig`],
//! [`MongoConfig`].)

use super::Backend;
use crate::bus::kafka::KafkaConfig;
use crate::documents::mongo::MongoConfig;
use crate::store::redis::Config as RedisConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[model]`: pattern, sessions and resolver files.
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

/// `[server]`: the HTTP/WebSocket server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port` to listen on.
    pub listen: String,
    /// Largest accepted WebSocket frame or HTTP body, bytes.
    pub max_frame_bytes: usize,
    /// Messages queued per connection before a slow client is disconnected.
    pub connection_queue: usize,
    /// Bytes of messages queued per connection before a slow client is disconnected.
    pub connection_queue_bytes: usize,
    /// Time a client has to send a request's head (line and headers), ms; then 408.
    pub header_timeout_ms: u64,
    /// Time a client has to send a `POST /events` body, ms; then 408.
    pub body_timeout_ms: u64,
    /// How long an idle keep-alive HTTP connection stays open, seconds.
    pub keep_alive_secs: u64,
    /// Open connections (HTTP and WebSocket) the process accepts in all; more wait in the
    /// listen backlog.
    pub max_connections: usize,
    /// WebSockets and `POST /events` requests open at once from one client address (0: no
    /// limit); more are refused with 429 (code 4292).
    pub max_connections_per_address: usize,
    /// `POST /events` requests in flight at once in the process, each buffering a body of up to
    /// `max_frame_bytes` (0: no limit); more are refused with 503 (code 4293).
    pub max_requests_in_flight: usize,
    /// How often the server pings a WebSocket client, ms.
    pub ping_interval_ms: u64,
    /// How long a WebSocket client may stay silent (no frame, no pong) before it is closed as
    /// dead, ms.
    pub ping_timeout_ms: u64,
    /// Events a WebSocket connection may send per second, on average (0: unlimited).
    pub rate_events_per_sec: u32,
    /// Events a WebSocket connection may send at once above that rate.
    pub rate_events_burst: u32,
    /// Bytes a WebSocket connection may send per second, on average, in bursts of twice that
    /// (0: unlimited).
    pub rate_bytes_per_sec: u64,
    /// Records the engines may lag behind on an events partition before events for it wait (0:
    /// no limit by records).
    pub backpressure_lag_records: u64,
    /// Bytes the engines may lag behind on an events partition before events for it wait; the
    /// embedded bus knows bytes, Kafka only records (0: no limit by bytes). Keep it well under
    /// `[storage] bus_retention_bytes`.
    pub backpressure_lag_bytes: u64,
    /// How often the lag is read, ms (on Kafka a read is a committed-offsets request and one
    /// watermark request per partition of each watched topic).
    pub backpressure_check_ms: u64,
    /// How long an event waits for its partition to catch up before it is refused (code 4293),
    /// ms.
    pub backpressure_max_wait_ms: u64,
    /// Events one participant may send per second, on average, over all its WebSocket
    /// connections and `POST /events`, on every session node (0: unlimited). Held in the store.
    pub participant_events_per_sec: u64,
    /// Events one participant may send at once above that rate.
    pub participant_events_burst: u64,
    /// Bytes one participant may send per second, on average, in bursts of twice that, over all
    /// its connections and requests on every session node (0: unlimited).
    pub participant_bytes_per_sec: u64,
    /// Browser origins (`scheme://host[:port]`) allowed to open `/ws` or `POST /events`; empty
    /// allows any (bearer tokens are not cookies, so another site cannot borrow a user's). A
    /// request without an `Origin` header (not from a browser) is always allowed.
    pub allowed_origins: Vec<String>,
    /// Partitions of `threds.sessions`: the delivery slots, one per session node, so the most
    /// session nodes that can run at once (ADR 0008). Fixed when the topic is created.
    pub session_slots: u32,
    /// How long a session node's slot lasts unless renewed (every third of it), ms; a node that
    /// dies stops receiving messages this long after, and its participants' messages go to the
    /// nodes they reconnect to.
    pub session_slot_ttl_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_frame_bytes: 64 * 1024,
            connection_queue: 1024,
            connection_queue_bytes: 4 * 1024 * 1024,
            header_timeout_ms: 5_000,
            body_timeout_ms: 10_000,
            keep_alive_secs: 30,
            max_connections: 10_000,
            max_connections_per_address: 256,
            max_requests_in_flight: 1024,
            ping_interval_ms: 15_000,
            ping_timeout_ms: 45_000,
            rate_events_per_sec: 1_000,
            rate_events_burst: 2_000,
            rate_bytes_per_sec: 4 * 1024 * 1024,
            backpressure_lag_records: 100_000,
            backpressure_lag_bytes: 4 * 1024 * 1024,
            backpressure_check_ms: 50,
            backpressure_max_wait_ms: 5_000,
            participant_events_per_sec: 4_000,
            participant_events_burst: 8_000,
            participant_bytes_per_sec: 16 * 1024 * 1024,
            allowed_origins: Vec::new(),
            session_slots: crate::topology::DEFAULT_SESSION_SLOTS,
            session_slot_ttl_ms: 10_000,
        }
    }
}

/// `[auth]`: authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 secret (`THREDS_JWT_SECRET`).
    pub jwt_secret: Option<String>,
    /// Lifetime of tokens minted by `threds token`, seconds.
    pub token_ttl_secs: u64,
    /// How far a token's `nbf` (not before) and `iat` (issued at) may lie in the future, seconds
    /// (clocks differ a little between machines); `exp` has no leeway.
    pub clock_leeway_secs: u64,
    /// `http(s)` URL of the identity provider's JSON Web Key Set: RS256 and ES256 tokens are
    /// verified against its keys (unset: only HS256 tokens, against `jwt_secret`).
    pub jwks_url: Option<String>,
    /// When set, a token's `iss` must equal it.
    pub issuer: Option<String>,
    /// When set, a token's `aud` must contain it.
    pub audience: Option<String>,
    /// How often the key set is fetched again, seconds.
    pub jwks_refresh_secs: u64,
    /// The least time between two fetches, seconds: a token with an unknown key id fetches the
    /// set at most this often (and a failed fetch is retried this often).
    pub jwks_min_refresh_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            token_ttl_secs: 24 * 3600,
            clock_leeway_secs: 30,
            jwks_url: None,
            issuer: None,
            audience: None,
            jwks_refresh_secs: 300,
            jwks_min_refresh_secs: 10,
        }
    }
}

/// `[engine]`: the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Partitions of the events topic (at least 1).
    pub partitions: u32,
    /// Attempts at a failing record before it is dead-lettered.
    pub max_attempts: u32,
    /// Largest batch one poll takes.
    pub batch: usize,
    /// How long a partition lease lasts unless renewed (it is renewed every third of that).
    pub lease_ms: u64,
    /// Record every step's history (`EventRecord`, `ThredLogRecord`, `ThredRecord`) in the
    /// documents store. Without it, `getThreds` still answers from the thred store, but thred
    /// event logs and archived threds are not kept.
    pub history: bool,
    /// Largest event record the engine steps, bytes; a larger one (whoever produced it) is
    /// dead-lettered with the reason.
    pub max_event_bytes: usize,
    /// How long an append to one topic may take before the engine stops waiting for it, ms; the
    /// topic's breaker then opens (its records wait in the outbox).
    pub publish_timeout_ms: u64,
    /// How long a topic whose append stalled is left alone before one publish tries it again, ms.
    pub breaker_open_ms: u64,
    /// Versions of each pattern the registry keeps beyond the active one and those live threds
    /// run (which are never removed).
    pub pattern_versions_kept: usize,
    /// Live threds of a pattern that sets no `maxInstances` (0: no limit).
    pub default_max_instances: u64,
    /// Live threds one participant's events may have started (0: no limit).
    pub max_threds_per_participant: u64,
    /// Bytes of one thred's stored state (0: no limit).
    pub max_state_bytes: u64,
    /// Most members of a sequence one expression evaluation may build.
    pub expression_max_sequence: usize,
    /// Longest string one expression evaluation may build, bytes.
    pub expression_max_string_bytes: usize,
    /// Bytes of values one expression evaluation may build in all.
    pub expression_max_bytes: usize,
}

impl EngineConfig {
    /// The quotas the engine's machine enforces.
    pub fn quotas(&self) -> threds_patterns::machine::Quotas {
        threds_patterns::machine::Quotas {
            default_max_instances: self.default_max_instances,
            max_threds_per_participant: self.max_threds_per_participant,
            max_state_bytes: self.max_state_bytes,
            expression: threds_patterns::expr::Limits {
                max_sequence_len: self.expression_max_sequence,
                max_string_bytes: self.expression_max_string_bytes,
                max_bytes: self.expression_max_bytes,
                ..threds_patterns::expr::Limits::default()
            },
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            partitions: 4,
            max_attempts: 3,
            batch: 256,
            lease_ms: 10_000,
            history: true,
            max_event_bytes: 1024 * 1024,
            publish_timeout_ms: 5_000,
            breaker_open_ms: 10_000,
            pattern_versions_kept: 5,
            default_max_instances: 100_000,
            max_threds_per_participant: 1_000,
            max_state_bytes: 1024 * 1024,
            expression_max_sequence: threds_patterns::expr::DEFAULT_MAX_SEQUENCE_LEN,
            expression_max_string_bytes: threds_patterns::expr::DEFAULT_MAX_STRING_BYTES,
            expression_max_bytes: threds_patterns::expr::DEFAULT_MAX_BYTES,
        }
    }
}

/// `[storage]`: the embedded adapters' storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Keep state, timers, offsets, history and documents here (none: in memory only).
    pub data_dir: Option<PathBuf>,
    /// Records each bus partition keeps (older ones are removed, as Kafka's retention does).
    pub bus_retention: u64,
    /// Bytes each in-memory bus partition keeps (older records are removed first).
    pub bus_retention_bytes: u64,
    /// Event records and thred log records the in-memory history keeps (the newest; a data
    /// directory keeps all).
    pub history_retention: usize,
    /// Bytes of event records, and of thred log records, the in-memory history keeps.
    pub history_retention_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: None,
            bus_retention: 20_000,
            bus_retention_bytes: 16 * 1024 * 1024,
            history_retention: 20_000,
            history_retention_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[bus]`: the event bus port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `memory` or `kafka` (unset: the command's default).
    pub backend: Option<Backend>,
    /// `[bus.kafka]`: the Kafka adapter.
    pub kafka: KafkaConfig,
}

/// `[store]`: the thred store port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory` or `redis` (unset: the command's default).
    pub backend: Option<Backend>,
    /// `[store.redis]`: the Redis adapter.
    pub redis: RedisConfig,
}

/// `[documents]`: the documents port (history and persistence agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsConfig {
    /// `memory` or `mongodb` (unset: the command's default).
    pub backend: Option<Backend>,
    /// `[documents.mongodb]`: the MongoDB adapter.
    pub mongodb: MongoConfig,
}

/// `[node]`: this process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Its name (default: `dev` for `threds dev`, else the host name): group member name and
    /// lease owner.
    pub name: Option<String>,
}

/// `[telemetry]`: logs (traces are configured by the standard `OTEL_*` variables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log line format on stderr: `text` (default) or `json` (one object per line, with the
    /// current span's fields, trace id included).
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}
