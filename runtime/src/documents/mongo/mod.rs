//! The MongoDB adapter of the documents port: each task of an entry becomes MongoDB operations
//! (spec §7's operator translation), on collections named by the tasks' `params.type`.
//!
//! Entries are validated by the embedded engine's parser first, so both adapters refuse the same
//! input with the same [`Error::Invalid`] before anything is written. An entry that writes runs
//! all or nothing: in a MongoDB transaction when the deployment supports them (a replica set or a
//! sharded cluster), otherwise with compensation: before each write the adapter records how to
//! undo it (the documents it will change, as they are), and a failure undoes the entry's writes,
//! newest first. Compensated entries of one [`MongoDocuments`] run one at a time; they are not
//! isolated from other processes writing the same documents.

mod convert;
mod error;
mod exec;
mod mul;
mod plan;
mod translate;
mod undo;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT;
use mongodb::options::ClientOptions;
use mongodb::{Client, ClientSession, Database, IndexModel};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use self::error::{backend, Failure};
use self::exec::Ctx;
use self::plan::{plan, Op};
use self::undo::rollback;
use super::task::Entry;
use super::{Documents, Error};
use crate::topology::collections::{EVENTS, THRED_LOG};

/// How often a transaction that failed with a transient error is run again.
const TRANSACTION_ATTEMPTS: usize = 3;

/// How often a commit whose outcome is unknown is tried again.
const COMMIT_ATTEMPTS: usize = 3;

/// Where the MongoDB documents store is (spec §7 `hostString`, `dbname`, `directConnection`): the
/// `[documents.mongodb]` section of `threds.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MongoConfig {
    /// A `mongodb://` or `mongodb+srv://` URL (used as it is), or `host[:port]`.
    pub uri: String,
    /// The database.
    pub database: String,
    /// With a `host[:port]`: connect to that one server (else to replica set `replica_set`).
    pub direct_connection: bool,
    /// With a `host[:port]` and no direct connection: the replica set's name.
    pub replica_set: String,
    /// Most connections per server (the driver's default when unset).
    pub max_pool_size: Option<u32>,
    /// How long to wait for a suitable server, milliseconds.
    pub server_selection_timeout_ms: u64,
    /// Run writing entries in transactions (`true`), with compensation (`false`), or decide from
    /// what the server says it supports (unset).
    pub transactions: Option<bool>,
}

impl Default for MongoConfig {
    fn default() -> Self {
        MongoConfig {
            uri: "mongodb://127.0.0.1:27017".into(),
            database: "threds".into(),
            direct_connection: false,
            replica_set: "rs0".into(),
            max_pool_size: None,
            server_selection_timeout_ms: 10_000,
            transactions: None,
        }
    }
}

impl MongoConfig {
    /// The connection string: `uri` when it is a URL, else built from it as the reference does.
    pub fn connection_string(&self) -> String {
        let host = self.uri.trim();
        if host.starts_with("mongodb://") || host.starts_with("mongodb+srv://") {
            host.to_owned()
        } else if self.direct_connection {
            format!("mongodb://{host}/?directConnection=true")
        } else {
            format!("mongodb://{host}/?replicaSet={}", self.replica_set)
        }
    }
}

/// The documents store on a MongoDB database.
#[derive(Debug, Clone)]
pub struct MongoDocuments {
    client: Client,
    db: Database,
    transactions: bool,
    /// Serializes compensated entries.
    serial: Arc<Mutex<()>>,
    /// Whether the server supports `$mul` (cleared when it says it does not).
    mul: Arc<AtomicBool>,
}

impl MongoDocuments {
    /// Connects, checks that the server answers, and finds out whether it runs transactions.
    pub async fn connect(config: &MongoConfig) -> Result<Self, Error> {
        let mut options = ClientOptions::parse(config.connection_string())
            .await
            .map_err(backend)?;
        if config.max_pool_size.is_some() {
            options.max_pool_size = config.max_pool_size;
        }
        options.server_selection_timeout =
            Some(Duration::from_millis(config.server_selection_timeout_ms));
        options.app_name.get_or_insert_with(|| "threds".into());
        let client = Client::with_options(options).map_err(backend)?;
        let hello = client
            .database("admin")
            .run_command(doc! {"hello": 1})
            .await
            .map_err(backend)?;
        let transactions = config
            .transactions
            .unwrap_or_else(|| supports_transactions(&hello));
        tracing::info!(
            database = %config.database,
            transactions,
            "connected to MongoDB"
        );
        Ok(MongoDocuments {
            db: client.database(&config.database),
            client,
            transactions,
            serial: Arc::new(Mutex::new(())),
            mul: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The same connection on another database.
    pub fn database(&self, name: &str) -> Self {
        MongoDocuments {
            db: self.client.database(name),
            serial: Arc::new(Mutex::new(())),
            ..self.clone()
        }
    }

    /// Do writing entries run in MongoDB transactions (else with compensation)?
    pub fn transactions(&self) -> bool {
        self.transactions
    }

    /// Creates the indexes the history queries use (idempotent; call at start): `EventRecord` by
    /// `thredId` then `timestamp`, and by `eventId`; `ThredLogRecord` by `thredId` then
    /// `timestamp`.
    pub async fn ensure_indexes(&self) -> Result<(), Error> {
        let indexes = [
            (EVENTS, doc! {"thredId": 1, "timestamp": 1}),
            (EVENTS, doc! {"eventId": 1}),
            (THRED_LOG, doc! {"thredId": 1, "timestamp": 1}),
        ];
        for (collection, keys) in indexes {
            self.db
                .collection::<Document>(collection)
                .create_index(IndexModel::builder().keys(keys).build())
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    /// Runs the ops of an entry that only reads.
    async fn read(&self, ops: &[Op<'_>], now: i64) -> Result<Vec<Value>, Failure> {
        let mut ctx = Ctx {
            db: &self.db,
            session: None,
            undo: None,
            now,
            mul: &self.mul,
        };
        ctx.run(ops).await
    }

    /// Runs a writing entry with compensation: on failure its writes are undone.
    async fn compensated(&self, ops: &[Op<'_>], now: i64) -> Result<Vec<Value>, Error> {
        let _serial = self.serial.lock().await;
        let mut undo = Vec::new();
        let result = Ctx {
            db: &self.db,
            session: None,
            undo: Some(&mut undo),
            now,
            mul: &self.mul,
        }
        .run(ops)
        .await;
        match result {
            Ok(values) => Ok(values),
            Err(failed) => match rollback(&self.db, undo).await {
                Ok(()) => Err(failed.error),
                Err(e) => Err(Error::Backend(format!(
                    "{}; undoing the entry's earlier writes failed too: {e}",
                    failed.error
                ))),
            },
        }
    }

    /// Runs a writing entry in a transaction, again when it fails with a transient error.
    async fn transaction(&self, ops: &[Op<'_>], now: i64) -> Result<Vec<Value>, Error> {
        let mut session = self.client.start_session().await.map_err(backend)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            session.start_transaction().await.map_err(backend)?;
            let result = Ctx {
                db: &self.db,
                session: Some(&mut session),
                undo: None,
                now,
                mul: &self.mul,
            }
            .run(ops)
            .await;
            let failed = match result {
                Ok(values) => match commit(&mut session).await {
                    Ok(()) => return Ok(values),
                    Err(failed) => failed,
                },
                Err(failed) => {
                    if let Err(e) = session.abort_transaction().await {
                        tracing::debug!("abortTransaction failed: {e}");
                    }
                    failed
                }
            };
            if !failed.transient || attempt >= TRANSACTION_ATTEMPTS {
                return Err(failed.error);
            }
        }
    }
}

/// Commits, trying again while the outcome is unknown.
async fn commit(session: &mut ClientSession) -> Result<(), Failure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match session.commit_transaction().await {
            Ok(()) => return Ok(()),
            Err(e)
                if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                    && attempt < COMMIT_ATTEMPTS => {}
            Err(e) => {
                let transient = e.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR);
                return Err(Failure {
                    error: backend(e),
                    transient,
                });
            }
        }
    }
}

/// Does a `hello` answer come from a deployment that runs transactions: one with logical
/// sessions that is a replica set member or a `mongos`?
fn supports_transactions(hello: &Document) -> bool {
    let sessions = !matches!(
        hello.get("logicalSessionTimeoutMinutes"),
        None | Some(Bson::Null)
    );
    let replica_set = hello.contains_key("setName");
    let mongos = hello.get_str("msg").is_ok_and(|m| m == "isdbgrid");
    sessions && (replica_set || mongos)
}

#[async_trait]
impl Documents for MongoDocuments {
    async fn run(&self, entry: &Value, now: i64) -> Result<Value, Error> {
        let parsed = Entry::parse(entry)?;
        let ops = plan(entry, &parsed, now)?;
        let values = if !ops.iter().any(Op::writes) {
            self.read(&ops, now).await.map_err(|f| f.error)?
        } else if self.transactions {
            self.transaction(&ops, now).await?
        } else {
            self.compensated(&ops, now).await?
        };
        Ok(match parsed {
            Entry::Transaction(_) => Value::Array(values),
            Entry::Single(_) => values.into_iter().next().unwrap_or(Value::Null),
        })
    }

    /// One unordered `insertMany`: every document is tried, and the ones refused only because
    /// their id is stored already count as saved.
    async fn save_all(&self, collection: &str, documents: &[Value], now: i64) -> Result<(), Error> {
        if documents.is_empty() {
            return Ok(());
        }
        let mut docs = Vec::with_capacity(documents.len());
        for document in documents {
            let (map, id) = super::saved_id(collection, document)?;
            let mut doc = plan::stored(id, map);
            doc.insert("created", now);
            doc.insert("modified", now);
            docs.push(doc);
        }
        let inserted = self
            .db
            .collection::<Document>(collection)
            .insert_many(docs)
            .ordered(false)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if error::only_duplicates(&e) => Ok(()),
            Err(e) => Err(error::failure(e, collection, &[]).error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_connection_strings() {
        let mut config = MongoConfig::default();
        assert_eq!(config.connection_string(), "mongodb://127.0.0.1:27017");
        config.uri = "db:27018".into();
        assert_eq!(
            config.connection_string(),
            "mongodb://db:27018/?replicaSet=rs0"
        );
        config.direct_connection = true;
        assert_eq!(
            config.connection_string(),
            "mongodb://db:27018/?directConnection=true"
        );
        config.uri = "mongodb+srv://cluster.example/x".into();
        assert_eq!(
            config.connection_string(),
            "mongodb+srv://cluster.example/x"
        );
    }

    #[test]
    fn detects_transactions_from_hello() {
        let standalone = doc! {"ok": 1.0, "maxWireVersion": 8, "logicalSessionTimeoutMinutes": 30};
        let replica = doc! {"ok": 1.0, "setName": "rs0", "logicalSessionTimeoutMinutes": 30};
        let mongos = doc! {"ok": 1.0, "msg": "isdbgrid", "logicalSessionTimeoutMinutes": 30};
        let briskdb = doc! {"ok": 1.0, "isWritablePrimary": true, "maxWireVersion": 8};
        assert!(!supports_transactions(&standalone));
        assert!(supports_transactions(&replica));
        assert!(supports_transactions(&mongos));
        assert!(!supports_transactions(&briskdb));
    }
}
