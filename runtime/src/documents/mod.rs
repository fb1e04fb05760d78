//! The documents port: the persistence agent's task vocabulary (spec §7) over named collections.
//!
//! Semantics every adapter MUST keep (checked by `threds_testkit::contract::documents`):
//! - documents are JSON objects keyed by `id` (unique per collection);
//! - matchers: equality on fields (dotted paths reach into objects; an array field matches when any
//!   element equals the value; an object value is an exact sub-document match), operators `$gte`,
//!   `$gt`, `$lte`, `$lt`, `$ne`, `$not`, `$in`, `$nin`, `$or`, and `$re` (case-insensitive regex);
//! - updates: plain keys are set (dotted paths reach in), `$add` adds to a set, `$push` appends,
//!   `$remove` pulls, `$inc`/`$mul`/`$min`/`$max` do arithmetic, `$now` sets the current time; every
//!   update sets `modified`;
//! - `put` sets `created` and `modified`, assigns an `id` when absent and fails with
//!   [`Error::AlreadyExists`] on a duplicate id;
//! - an array of tasks is one transaction: all of its changes happen, or none;
//! - [`Documents::save_all`] stores documents under their own ids once: a document whose id is
//!   stored already is left as it is, so writing the same documents again changes nothing.

mod collect;
mod durable;
mod exec;
pub mod memory;
pub mod mongo;
mod order;
mod path;
mod query;
mod select;
mod state;
mod task;
mod update;

pub use collect::SortKey;
pub use memory::MemoryDocuments;
pub use mongo::{MongoConfig, MongoDocuments};
pub use query::{matches, Matcher};
pub use select::Selector;
pub use task::{collections_of, valid_collection, MAX_COLLECTION};
pub use update::Update;

use async_trait::async_trait;
use serde_json::Value;

/// Documents errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A task is malformed (missing matcher or values, unknown op, bad operator).
    #[error("invalid task: {0}")]
    Invalid(String),
    /// `put` of an id that exists.
    #[error("document {id} already exists in {collection}")]
    AlreadyExists {
        /// The collection.
        collection: String,
        /// The id.
        id: String,
    },
    /// The adapter's backend failed.
    #[error("documents backend: {0}")]
    Backend(String),
    /// The adapter's backend did not answer or failed (with its error).
    #[error("{what}")]
    Unavailable {
        /// What was being done, and where.
        what: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The documents store.
#[async_trait]
pub trait Documents: Send + Sync + 'static {
    /// Runs one entry of `content.tasks`: a task object, or an array of tasks run as one
    /// transaction. Returns the task's result (an array of results for a transaction), as spec §7
    /// lists them: `put` → the id (or ids), `getOne` → the document or null, `get` → an array,
    /// `count` → a number, others → null.
    async fn run(&self, entry: &Value, now: i64) -> Result<Value, Error>;

    /// Stores `documents` (objects, each with a string `id`) in `collection` with `created` and
    /// `modified` set to `now`, skipping every one whose id is stored already (for immutable
    /// records such as the history's: a second write of the same record changes nothing). Not a
    /// transaction: after a failure some may be stored, and running it again is harmless.
    async fn save_all(&self, collection: &str, documents: &[Value], now: i64) -> Result<(), Error>;
}

/// The fields and id of a document for [`Documents::save_all`] into `collection` (it must be an
/// object with a string `id`, and the collection's name valid).
fn saved_id<'d>(
    collection: &str,
    document: &'d Value,
) -> Result<(&'d serde_json::Map<String, Value>, &'d str), Error> {
    if !valid_collection(collection) {
        return Err(Error::Invalid(format!(
            "'{collection}' is not a valid collection name"
        )));
    }
    let map = document
        .as_object()
        .ok_or_else(|| Error::Invalid("a document to save must be an object".into()))?;
    match map.get("id") {
        Some(Value::String(id)) => Ok((map, id)),
        _ => Err(Error::Invalid(
            "a document to save needs a string id".into(),
        )),
    }
}
