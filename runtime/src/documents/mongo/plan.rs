//! From a validated entry to MongoDB operations: each task of spec §7's op table with its filter,
//! update, projection and paging already translated, and the documents a `put` inserts already
//! built (with their ids), so that running them needs no more decisions than the data asks for.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, Document};
use serde_json::{Map, Value};

use super::convert::to_bson;
use super::translate::{filter, paging, projection, update, Paging};
use crate::documents::order::kind;
use crate::documents::query::Matcher;
use crate::documents::task::{Entry, Task};
use crate::documents::update::Update;
use crate::documents::Error;

/// Fields a client may not set on `put`/`replace` (the store owns them).
const OWNED: [&str; 4] = ["id", "_id", "created", "modified"];

/// One task, ready to run.
#[derive(Debug)]
pub(super) enum Op<'a> {
    /// No work (`run`, or a task without params).
    Nothing,
    /// Insert `docs` (whose ids are `ids`); `many`: the result is the array of ids.
    Put {
        collection: &'a str,
        docs: Vec<Document>,
        ids: Vec<String>,
        many: bool,
    },
    /// The first match, or null.
    GetOne {
        collection: &'a str,
        filter: Document,
        projection: Option<Document>,
    },
    /// Every match, projected, sorted and paged.
    Get {
        collection: &'a str,
        filter: Document,
        projection: Option<Document>,
        paging: Paging,
    },
    /// Update every match.
    Update {
        collection: &'a str,
        filter: Document,
        update: Document,
    },
    /// Update the first match, or insert the document `insert` builds.
    Upsert {
        collection: &'a str,
        filter: Document,
        update: Document,
        insert: Insert<'a>,
    },
    /// Replace the first match's content, or insert.
    Replace {
        collection: &'a str,
        filter: Document,
        matcher: &'a Matcher,
        values: &'a Map<String, Value>,
    },
    /// Delete every match.
    Delete {
        collection: &'a str,
        filter: Document,
    },
    /// Count the matches.
    Count {
        collection: &'a str,
        filter: Document,
    },
}

/// What an upsert that matched nothing inserts: the matcher's plain equalities, then the update,
/// computed by the embedded engine's own code so that both adapters insert the same document.
#[derive(Debug)]
pub(super) struct Insert<'a> {
    matcher: &'a Matcher,
    update: &'a Update,
}

impl Op<'_> {
    /// Does the op write?
    pub(super) fn writes(&self) -> bool {
        !matches!(
            self,
            Op::Nothing | Op::GetOne { .. } | Op::Get { .. } | Op::Count { .. }
        )
    }
}

/// The ops of a validated entry (`raw` is the JSON it was parsed from), in order.
/// Fails with [`Error::Invalid`] on what the entry's parser leaves to execution (a `put` id that
/// is not a string).
pub(super) fn plan<'a>(
    raw: &'a Value,
    entry: &'a Entry<'a>,
    now: i64,
) -> Result<Vec<Op<'a>>, Error> {
    match (entry, raw) {
        (Entry::Single(task), _) => Ok(vec![op(raw, task, now)?]),
        (Entry::Transaction(tasks), Value::Array(raws)) => raws
            .iter()
            .zip(tasks)
            .map(|(raw, task)| op(raw, task, now))
            .collect(),
        (Entry::Transaction(_), _) => Ok(Vec::new()),
    }
}

/// A task's `params` field (never null).
fn param<'a>(raw: &'a Value, key: &str) -> Option<&'a Value> {
    raw.get("params")?.get(key).filter(|v| !v.is_null())
}

fn op<'a>(raw: &'a Value, task: &'a Task<'a>, now: i64) -> Result<Op<'a>, Error> {
    let filter_of = || filter(param(raw, "matcher"));
    Ok(match task {
        Task::Nothing => Op::Nothing,
        Task::Put {
            collection,
            docs,
            many,
        } => {
            let mut ids = Vec::with_capacity(docs.len());
            let mut stored_docs = Vec::with_capacity(docs.len());
            for values in docs {
                let id = given_id(values)?.map_or_else(new_id, str::to_owned);
                let mut doc = stored(&id, values);
                doc.insert("created", now);
                doc.insert("modified", now);
                ids.push(id);
                stored_docs.push(doc);
            }
            Op::Put {
                collection,
                docs: stored_docs,
                ids,
                many: *many,
            }
        }
        Task::GetOne { collection, .. } => Op::GetOne {
            collection,
            filter: filter_of(),
            projection: projection(param(raw, "selector")),
        },
        Task::Get { collection, .. } => Op::Get {
            collection,
            filter: filter_of(),
            projection: projection(param(raw, "selector")),
            paging: paging(param(raw, "collector")),
        },
        Task::Update { collection, .. } => Op::Update {
            collection,
            filter: filter_of(),
            update: update(param(raw, "values").unwrap_or(&Value::Null), now),
        },
        Task::Upsert {
            collection,
            matcher,
            update: compiled,
        } => Op::Upsert {
            collection,
            filter: filter_of(),
            update: update(param(raw, "values").unwrap_or(&Value::Null), now),
            insert: Insert {
                matcher,
                update: compiled,
            },
        },
        Task::Replace {
            collection,
            matcher,
            values,
        } => Op::Replace {
            collection,
            filter: filter_of(),
            matcher,
            values,
        },
        Task::Delete { collection, .. } => Op::Delete {
            collection,
            filter: filter_of(),
        },
        Task::Count { collection, .. } => Op::Count {
            collection,
            filter: filter_of(),
        },
    })
}

/// A fresh document id: a new ObjectId's 24 hex digits (unique without coordination).
pub(super) fn new_id() -> String {
    ObjectId::new().to_hex()
}

/// A document as stored: `_id` first, then the client's fields minus the ones the store owns.
pub(super) fn stored(id: &str, values: &Map<String, Value>) -> Document {
    let mut doc = Document::new();
    doc.insert("_id", id);
    for (key, value) in values {
        if !OWNED.contains(&key.as_str()) {
            doc.insert(key.clone(), to_bson(value));
        }
    }
    doc
}

/// The id a client gave in `values`, if any (it must be a string).
pub(super) fn given_id(values: &Map<String, Value>) -> Result<Option<&str>, Error> {
    match values.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(Some(id)),
        Some(other) => Err(not_a_string_id(other)),
    }
}

/// The id a matcher pins with a plain `id` equality, if any (it must be a string).
pub(super) fn matcher_id(matcher: &Matcher) -> Result<Option<&str>, Error> {
    match matcher
        .equalities()
        .find(|(path, _)| path.segments() == ["id"])
    {
        None => Ok(None),
        Some((_, Value::String(id))) => Ok(Some(id)),
        Some((_, other)) => Err(not_a_string_id(other)),
    }
}

fn not_a_string_id(value: &Value) -> Error {
    Error::Invalid(format!(
        "a document id must be a string, got {}",
        kind(value)
    ))
}

impl Insert<'_> {
    /// The document an upsert inserts at `now`: `_id` from the matcher's `id` equality (else
    /// generated), the matcher's other plain equalities, then the update (which sets `modified`).
    pub(super) fn document(&self, now: i64) -> Result<Document, Error> {
        let id = matcher_id(self.matcher)?.map_or_else(new_id, str::to_owned);
        let mut doc = Map::new();
        doc.insert("id".into(), Value::String(id.clone()));
        for (path, value) in self.matcher.equalities() {
            if !OWNED.contains(&path.root()) {
                crate::documents::path::set(&mut doc, path, value.clone())?;
            }
        }
        self.update.apply(&mut doc, now)?;
        let mut stored = stored(&id, &doc);
        stored.insert("modified", now);
        Ok(stored)
    }
}

/// The `_id` of a stored document as the port's id (a string; an ObjectId as its hex digits).
pub(super) fn stored_id(id: &Bson) -> String {
    match id {
        Bson::String(id) => id.clone(),
        Bson::ObjectId(oid) => oid.to_hex(),
        other => super::convert::to_json(other.clone()).to_string(),
    }
}
