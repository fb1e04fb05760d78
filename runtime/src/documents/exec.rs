//! Running validated tasks inside a transaction: the spec §7 op table.

use serde_json::{Map, Value};

use super::order::kind;
use super::query::Matcher;
use super::select::Projection;
use super::state::{Doc, Txn};
use super::task::{Entry, Task};
use super::update::Update;
use super::Error;

/// Fields a client may not set on `put`/`replace` (the store owns them).
const OWNED: [&str; 4] = ["id", "_id", "created", "modified"];

/// Runs an entry inside `txn`: a single task's result, or the array of a transaction's results.
/// The caller commits or rolls back.
pub(crate) fn run_entry(txn: &mut Txn<'_>, entry: &Entry<'_>, now: i64) -> Result<Value, Error> {
    match entry {
        Entry::Single(task) => run_task(txn, task, now),
        Entry::Transaction(tasks) => tasks
            .iter()
            .map(|task| run_task(txn, task, now))
            .collect::<Result<_, _>>()
            .map(Value::Array),
    }
}

/// Runs one task.
fn run_task(txn: &mut Txn<'_>, task: &Task<'_>, now: i64) -> Result<Value, Error> {
    match task {
        Task::Nothing => Ok(Value::Null),
        Task::Put {
            collection,
            docs,
            many,
        } => {
            let ids = docs
                .iter()
                .map(|doc| put(txn, collection, doc, now).map(Value::String))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if *many {
                Value::Array(ids)
            } else {
                ids.into_iter().next().unwrap_or(Value::Null)
            })
        }
        Task::GetOne {
            collection,
            matcher,
            projection,
        } => Ok(txn
            .find(collection, matcher.as_ref())
            .first()
            .and_then(|&seq| txn.get(collection, seq))
            .map_or(Value::Null, |doc| output(doc, projection.as_ref()))),
        Task::Get {
            collection,
            matcher,
            projection,
            collector,
        } => {
            let docs: Vec<&Doc> = txn
                .find(collection, matcher.as_ref())
                .into_iter()
                .filter_map(|seq| txn.get(collection, seq))
                .collect();
            Ok(Value::Array(
                collector
                    .apply(docs)
                    .into_iter()
                    .map(|doc| output(doc, projection.as_ref()))
                    .collect(),
            ))
        }
        Task::Update {
            collection,
            matcher,
            update,
        } => {
            for seq in txn.find(collection, Some(matcher)) {
                update_at(txn, collection, seq, update, now)?;
            }
            Ok(Value::Null)
        }
        Task::Upsert {
            collection,
            matcher,
            update,
        } => {
            match txn.find(collection, Some(matcher)).first() {
                Some(&seq) => update_at(txn, collection, seq, update, now)?,
                None => upsert_insert(txn, collection, matcher, update, now)?,
            }
            Ok(Value::Null)
        }
        Task::Replace {
            collection,
            matcher,
            values,
        } => {
            replace(txn, collection, matcher, values, now)?;
            Ok(Value::Null)
        }
        Task::Delete {
            collection,
            matcher,
        } => {
            for seq in txn.find(collection, Some(matcher)) {
                txn.remove(collection, seq);
            }
            Ok(Value::Null)
        }
        Task::Count {
            collection,
            matcher,
        } => Ok(Value::from(txn.find(collection, Some(matcher)).len())),
    }
}

/// A stored document as a result: its selected fields.
fn output(doc: &Doc, projection: Option<&Projection>) -> Value {
    Value::Object(projection.map_or_else(|| doc.clone(), |p| p.apply(doc)))
}

/// The id a client gave in `values`, if any (it must be a string).
fn given_id(values: &Map<String, Value>) -> Result<Option<&str>, Error> {
    match values.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(Some(id)),
        Some(other) => Err(Error::Invalid(format!(
            "a document id must be a string, got {}",
            kind(other)
        ))),
    }
}

/// The id a matcher pins with a plain `id` equality, if any (it must be a string).
fn matcher_id(matcher: &Matcher) -> Result<Option<&str>, Error> {
    match matcher
        .equalities()
        .find(|(path, _)| path.segments() == ["id"])
    {
        None => Ok(None),
        Some((_, Value::String(id))) => Ok(Some(id)),
        Some((_, other)) => Err(Error::Invalid(format!(
            "a document id must be a string, got {}",
            kind(other)
        ))),
    }
}

/// A new document: `id` first, then the client's fields (minus the ones the store owns).
pub(super) fn new_doc(id: String, values: &Map<String, Value>) -> Doc {
    let mut doc = Doc::new();
    doc.insert("id".into(), Value::String(id));
    for (key, value) in values {
        if !OWNED.contains(&key.as_str()) {
            doc.insert(key.clone(), value.clone());
        }
    }
    doc
}

/// Inserts one `put` document; returns its id.
fn put(
    txn: &mut Txn<'_>,
    collection: &str,
    values: &Map<String, Value>,
    now: i64,
) -> Result<String, Error> {
    let id = match given_id(values)? {
        Some(id) => id.to_owned(),
        None => txn.new_id(collection, now),
    };
    let mut doc = new_doc(id.clone(), values);
    doc.insert("created".into(), Value::from(now));
    doc.insert("modified".into(), Value::from(now));
    txn.insert(collection, doc)?;
    Ok(id)
}

/// Applies `update` to the document at `seq`.
fn update_at(
    txn: &mut Txn<'_>,
    collection: &str,
    seq: u64,
    update: &Update,
    now: i64,
) -> Result<(), Error> {
    let Some(mut doc) = txn.get(collection, seq).cloned() else {
        return Ok(());
    };
    update.apply(&mut doc, now)?;
    txn.replace(collection, seq, doc)
}

/// The upsert of a matcher that matched nothing: a new document made of the matcher's plain
/// equalities (its `id` equality gives the id), then the update.
fn upsert_insert(
    txn: &mut Txn<'_>,
    collection: &str,
    matcher: &Matcher,
    update: &Update,
    now: i64,
) -> Result<(), Error> {
    let id = match matcher_id(matcher)? {
        Some(id) => id.to_owned(),
        None => txn.new_id(collection, now),
    };
    let mut doc = new_doc(id, &Map::new());
    for (path, value) in matcher.equalities() {
        if !OWNED.contains(&path.root()) {
            super::path::set(&mut doc, path, value.clone())?;
        }
    }
    update.apply(&mut doc, now)?;
    txn.insert(collection, doc)
}

/// Replaces the first match's content (keeping its id), or inserts `values` as a new document
/// whose id is `values.id`, else the matcher's `id` equality, else generated.
fn replace(
    txn: &mut Txn<'_>,
    collection: &str,
    matcher: &Matcher,
    values: &Map<String, Value>,
    now: i64,
) -> Result<(), Error> {
    let given = given_id(values)?;
    match txn.find(collection, Some(matcher)).first() {
        Some(&seq) => {
            let Some(current) = txn
                .get(collection, seq)
                .and_then(|d| d.get("id"))
                .and_then(Value::as_str)
            else {
                return Ok(());
            };
            if given.is_some_and(|id| id != current) {
                return Err(Error::Invalid(format!(
                    "replace may not change the id of {current}"
                )));
            }
            let mut doc = new_doc(current.to_owned(), values);
            doc.insert("modified".into(), Value::from(now));
            txn.replace(collection, seq, doc)
        }
        None => {
            let id = match given.or(matcher_id(matcher)?) {
                Some(id) => id.to_owned(),
                None => txn.new_id(collection, now),
            };
            let mut doc = new_doc(id, values);
            doc.insert("modified".into(), Value::from(now));
            txn.insert(collection, doc)
        }
    }
}
