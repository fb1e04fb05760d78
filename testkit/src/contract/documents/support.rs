//! Helpers for the documents contract: task builders and checked runs.

use serde_json::{json, Value};

use threds_runtime::documents::{Documents, Error};

/// The time cases run at (epoch milliseconds); later steps add to it.
pub(super) const NOW: i64 = 1_700_000_000_000;

/// Runs `entry`, which must succeed.
pub(super) async fn ok(docs: &dyn Documents, entry: Value, now: i64) -> Value {
    match docs.run(&entry, now).await {
        Ok(result) => result,
        Err(e) => panic!("documents contract: {entry} failed: {e}"),
    }
}

/// Runs `entry`, which must fail; returns the error.
pub(super) async fn fails(docs: &dyn Documents, entry: Value, now: i64) -> Error {
    match docs.run(&entry, now).await {
        Ok(result) => panic!("documents contract: {entry} should fail, returned {result}"),
        Err(e) => e,
    }
}

/// Runs `entry`, which must fail with [`Error::Invalid`].
pub(super) async fn invalid(docs: &dyn Documents, entry: Value) {
    let e = fails(docs, entry.clone(), NOW).await;
    assert!(
        matches!(e, Error::Invalid(_)),
        "documents contract: {entry} should be invalid, failed with {e}"
    );
}

/// Runs `entry`, which must fail with [`Error::AlreadyExists`] for `id`.
pub(super) async fn already_exists(docs: &dyn Documents, entry: Value, id: &str) {
    match fails(docs, entry.clone(), NOW).await {
        Error::AlreadyExists { id: got, .. } => {
            assert_eq!(
                got, id,
                "documents contract: {entry} reported the wrong duplicate"
            )
        }
        e => panic!("documents contract: {entry} should fail with AlreadyExists, got {e}"),
    }
}

/// A task `{op, params: {type: collection, ...params}}`.
pub(super) fn task(op: &str, collection: &str, params: Value) -> Value {
    let mut all = json!({ "type": collection });
    if let (Some(all), Value::Object(more)) = (all.as_object_mut(), params) {
        all.extend(more);
    }
    json!({ "op": op, "params": all })
}

/// `put` of `values` (an object or an array).
pub(super) fn put(collection: &str, values: Value) -> Value {
    task("put", collection, json!({ "values": values }))
}

/// `getOne` by `matcher`.
pub(super) fn get_one(collection: &str, matcher: Value) -> Value {
    task("getOne", collection, json!({ "matcher": matcher }))
}

/// `get` by `matcher`.
pub(super) fn get(collection: &str, matcher: Value) -> Value {
    task("get", collection, json!({ "matcher": matcher }))
}

/// `count` by `matcher`.
pub(super) fn count(collection: &str, matcher: Value) -> Value {
    task("count", collection, json!({ "matcher": matcher }))
}

/// `op` (`update`, `upsert` or `replace`) of `values` on `matcher`.
pub(super) fn change(op: &str, collection: &str, matcher: Value, values: Value) -> Value {
    task(
        op,
        collection,
        json!({ "matcher": matcher, "values": values }),
    )
}

/// `delete` by `matcher`.
pub(super) fn delete(collection: &str, matcher: Value) -> Value {
    task("delete", collection, json!({ "matcher": matcher }))
}

/// Reads one document by id (null when absent).
pub(super) async fn doc(docs: &dyn Documents, collection: &str, id: &str) -> Value {
    ok(docs, get_one(collection, json!({ "id": id })), NOW).await
}

/// The ids of the documents a `get`/transaction result lists, in order.
pub(super) fn ids(result: &Value) -> Vec<String> {
    match result {
        Value::Array(items) => items
            .iter()
            .map(|d| match d.get("id") {
                Some(Value::String(id)) => id.clone(),
                _ => panic!("documents contract: result document without a string id: {d}"),
            })
            .collect(),
        other => panic!("documents contract: expected an array of documents, got {other}"),
    }
}

/// The ids of the documents `matcher` selects with `get`, in natural order.
pub(super) async fn matching(
    docs: &dyn Documents,
    collection: &str,
    matcher: Value,
) -> Vec<String> {
    ids(&ok(docs, get(collection, matcher), NOW).await)
}

/// The number of documents `matcher` counts.
pub(super) async fn counted(docs: &dyn Documents, collection: &str, matcher: Value) -> u64 {
    let result = ok(docs, count(collection, matcher.clone()), NOW).await;
    match result.as_u64() {
        Some(n) => n,
        None => panic!("documents contract: count {matcher} returned {result}"),
    }
}
