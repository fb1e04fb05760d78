//! Contract cases: each op of the spec §7 table, its result and its edge cases.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::support::{
    already_exists, change, count, counted, delete, doc, get, get_one, ids, invalid, matching, ok,
    put, task, NOW,
};
use threds_runtime::documents::Documents;

/// `put` of an object returns its id; the store sets `created`/`modified` and drops the client's.
pub(super) async fn put_object(d: &dyn Documents) {
    let values = json!({"id": "a", "name": "A", "_id": "x", "created": 1, "modified": 2, "nested": {"k": [1, 2]}});
    assert_eq!(
        ok(d, put("c", values), NOW).await,
        json!("a"),
        "put returns the id"
    );
    assert_eq!(
        doc(d, "c", "a").await,
        json!({"id": "a", "name": "A", "nested": {"k": [1, 2]}, "created": NOW, "modified": NOW}),
        "put stores the values with id and times, without _id"
    );
}

/// `put` without an id generates one, unique even for identical documents at the same time.
pub(super) async fn put_generates_unique_ids(d: &dyn Documents) {
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let id = ok(d, put("c", json!({"name": "same"})), NOW).await;
        let Value::String(id) = id else {
            panic!("put without id should return a string id, got {id}");
        };
        assert!(!id.is_empty(), "generated ids are not empty");
        assert!(seen.insert(id), "generated ids are unique");
    }
    let many = ok(
        d,
        put("c", json!([{"name": "same"}, {"name": "same"}])),
        NOW,
    )
    .await;
    for id in many.as_array().into_iter().flatten() {
        let id = id.as_str().map(str::to_owned);
        assert!(
            id.as_ref().is_some_and(|id| seen.insert(id.clone())),
            "put array generates unique ids"
        );
    }
    assert_eq!(seen.len(), 5);
    for id in &seen {
        assert_eq!(
            doc(d, "c", id).await["id"],
            json!(id),
            "a generated id finds its document"
        );
    }
}

/// `put` of an array inserts every element, returning their ids in order.
pub(super) async fn put_array(d: &dyn Documents) {
    let result = ok(
        d,
        put(
            "c",
            json!([{"id": "a", "n": 1}, {"n": 2}, {"id": "b", "n": 3}]),
        ),
        NOW,
    )
    .await;
    let result_ids: Vec<&str> = result
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        result_ids.len(),
        3,
        "put array returns one id per document: {result}"
    );
    assert_eq!((result_ids[0], result_ids[2]), ("a", "b"));
    assert_eq!(
        matching(d, "c", json!({})).await,
        result_ids,
        "natural order is insertion order"
    );
}

/// A second `put` of an id fails with `AlreadyExists` and leaves the first document alone; the
/// same id in another collection is fine.
pub(super) async fn put_duplicate_fails(d: &dyn Documents) {
    ok(d, put("c", json!({"id": "a", "v": 1})), NOW).await;
    already_exists(d, put("c", json!({"id": "a", "v": 2})), "a").await;
    assert_eq!(
        doc(d, "c", "a").await["v"],
        json!(1),
        "a failed put changes nothing"
    );
    assert_eq!(counted(d, "c", json!({})).await, 1);
    assert_eq!(
        ok(d, put("other", json!({"id": "a"})), NOW).await,
        json!("a"),
        "ids are per collection"
    );
}

/// `put` needs an object or a non-empty array of objects, with a string id if any.
pub(super) async fn put_rejects_bad_values(d: &dyn Documents) {
    invalid(d, task("put", "c", json!({}))).await;
    for values in [
        json!(5),
        json!("x"),
        json!([]),
        json!([1]),
        json!([{"id": "ok"}, 2]),
        json!({"id": 7}),
    ] {
        invalid(d, put("c", values)).await;
    }
    assert_eq!(
        counted(d, "c", json!({})).await,
        0,
        "rejected puts insert nothing"
    );
}

/// Seeds `c` with `a`, `b` (kind x) and `c` (kind y), at `NOW`.
async fn seed(d: &dyn Documents) {
    let docs = json!([{"id": "a", "kind": "x", "n": 1}, {"id": "b", "kind": "x", "n": 2}, {"id": "c", "kind": "y"}]);
    ok(d, put("c", docs), NOW).await;
}

/// `getOne` returns the first match in natural order, or null; no matcher means any document.
pub(super) async fn get_one_first_match(d: &dyn Documents) {
    seed(d).await;
    assert_eq!(
        ok(d, get_one("c", json!({"kind": "x"})), NOW).await["id"],
        json!("a")
    );
    assert_eq!(
        ok(d, get_one("c", json!({"kind": "z"})), NOW).await,
        Value::Null
    );
    assert_eq!(
        ok(d, task("getOne", "c", json!({})), NOW).await["id"],
        json!("a")
    );
    assert_eq!(ok(d, get_one("missing", json!({})), NOW).await, Value::Null);
    let found = ok(d, get_one("c", json!({"id": "b"})), NOW).await;
    assert_eq!(
        found,
        json!({"id": "b", "kind": "x", "n": 2, "created": NOW, "modified": NOW})
    );
}

/// `get` returns every match in natural order (an empty array when none).
pub(super) async fn get_all_matches(d: &dyn Documents) {
    seed(d).await;
    assert_eq!(matching(d, "c", json!({"kind": "x"})).await, ["a", "b"]);
    assert_eq!(
        ids(&ok(d, task("get", "c", json!({})), NOW).await),
        ["a", "b", "c"]
    );
    assert_eq!(ok(d, get("c", json!({"kind": "z"})), NOW).await, json!([]));
    assert_eq!(ok(d, get("missing", json!({})), NOW).await, json!([]));
}

/// `update` changes every match (result null), sets `modified`, keeps `id` and `created`.
pub(super) async fn update_all_matches(d: &dyn Documents) {
    seed(d).await;
    let values = json!({"flag": true, "id": "zzz", "_id": "q", "created": 0, "modified": 0});
    let result = ok(
        d,
        change("update", "c", json!({"kind": "x"}), values),
        NOW + 5,
    )
    .await;
    assert_eq!(result, Value::Null, "update returns null");
    for id in ["a", "b"] {
        let got = doc(d, "c", id).await;
        assert_eq!(got["flag"], json!(true), "update reaches every match");
        assert_eq!(
            (&got["id"], &got["created"], &got["modified"]),
            (&json!(id), &json!(NOW), &json!(NOW + 5))
        );
        assert!(got.get("_id").is_none());
    }
    assert_eq!(
        doc(d, "c", "c").await,
        json!({"id": "c", "kind": "y", "created": NOW, "modified": NOW})
    );
    assert_eq!(
        ok(
            d,
            change("update", "c", json!({"kind": "z"}), json!({"v": 1})),
            NOW
        )
        .await,
        Value::Null
    );
    assert_eq!(
        counted(d, "c", json!({})).await,
        3,
        "an update without matches inserts nothing"
    );
}

/// `upsert` updates the first match, or inserts a document made of the matcher's equalities (its
/// `id` equality gives the id) and the update.
pub(super) async fn upsert_first_or_insert(d: &dyn Documents) {
    seed(d).await;
    assert_eq!(
        ok(
            d,
            change("upsert", "c", json!({"kind": "x"}), json!({"v": 1})),
            NOW + 1
        )
        .await,
        Value::Null
    );
    assert_eq!(
        doc(d, "c", "a").await["v"],
        json!(1),
        "upsert updates the first match"
    );
    assert!(
        doc(d, "c", "b").await.get("v").is_none(),
        "upsert updates only the first match"
    );

    let matcher = json!({"id": "new", "kind": "k", "n": {"$gt": 1}});
    ok(
        d,
        change("upsert", "c", matcher, json!({"v": 2, "$inc": {"hits": 1}})),
        NOW + 2,
    )
    .await;
    assert_eq!(
        doc(d, "c", "new").await,
        json!({"id": "new", "kind": "k", "v": 2, "hits": 1, "modified": NOW + 2}),
        "an upsert inserts the matcher's equalities (not its conditions) and the update"
    );

    ok(
        d,
        change("upsert", "c", json!({"kind": "z"}), json!({"v": 3})),
        NOW,
    )
    .await;
    ok(
        d,
        change("upsert", "c", json!({"kind": "z"}), json!({"v": 4})),
        NOW,
    )
    .await;
    let z = ok(d, get("c", json!({"kind": "z"})), NOW).await;
    assert_eq!(
        ids(&z).len(),
        1,
        "the second upsert updates the first's insert"
    );
    assert_eq!(z[0]["v"], json!(4));
    assert!(
        !ids(&z)[0].is_empty(),
        "an upsert without an id equality generates one"
    );
}

/// `replace` replaces the first match's content keeping its id, or inserts.
pub(super) async fn replace_first_or_insert(d: &dyn Documents) {
    ok(
        d,
        put("c", json!({"id": "a", "name": "A", "extra": 1})),
        NOW,
    )
    .await;
    ok(d, put("c", json!({"id": "b", "name": "A"})), NOW).await;
    let result = ok(
        d,
        change("replace", "c", json!({"name": "A"}), json!({"name": "B"})),
        NOW + 1,
    )
    .await;
    assert_eq!(result, Value::Null, "replace returns null");
    assert_eq!(
        doc(d, "c", "a").await,
        json!({"id": "a", "name": "B", "modified": NOW + 1}),
        "replace leaves exactly the values, the id and modified"
    );
    assert_eq!(
        doc(d, "c", "b").await["name"],
        json!("A"),
        "replace changes only the first match"
    );

    ok(
        d,
        change("replace", "c", json!({"id": "r"}), json!({"name": "R"})),
        NOW,
    )
    .await;
    assert_eq!(
        doc(d, "c", "r").await["name"],
        json!("R"),
        "replace inserts with the matcher's id"
    );
    ok(
        d,
        change(
            "replace",
            "c",
            json!({"name": "nope"}),
            json!({"id": "v", "name": "V"}),
        ),
        NOW,
    )
    .await;
    assert_eq!(
        doc(d, "c", "v").await["name"],
        json!("V"),
        "replace inserts with the values' id"
    );
    assert_eq!(counted(d, "c", json!({})).await, 4);
}

/// `delete` removes every match (result null).
pub(super) async fn delete_all_matches(d: &dyn Documents) {
    seed(d).await;
    assert_eq!(
        ok(d, delete("c", json!({"kind": "x"})), NOW).await,
        Value::Null
    );
    assert_eq!(matching(d, "c", json!({})).await, ["c"]);
    ok(d, delete("c", json!({"kind": "none"})), NOW).await;
    ok(d, delete("missing", json!({})), NOW).await;
    ok(d, delete("c", json!({})), NOW).await;
    assert_eq!(
        counted(d, "c", json!({})).await,
        0,
        "delete {{}} removes everything"
    );
    ok(d, put("c", json!({"id": "a"})), NOW).await;
    assert_eq!(
        counted(d, "c", json!({})).await,
        1,
        "a deleted id can be put again"
    );
}

/// `count` counts matches.
pub(super) async fn count_matches(d: &dyn Documents) {
    seed(d).await;
    assert_eq!(ok(d, count("c", json!({"kind": "x"})), NOW).await, json!(2));
    assert_eq!(counted(d, "c", json!({})).await, 3);
    assert_eq!(counted(d, "missing", json!({})).await, 0);
}

/// `run` is a no-op, and so is any task without `params`.
pub(super) async fn run_and_tasks_without_params(d: &dyn Documents) {
    assert_eq!(ok(d, json!({"op": "run"}), NOW).await, Value::Null);
    assert_eq!(
        ok(d, json!({"op": "run", "params": {"type": "c"}}), NOW).await,
        Value::Null
    );
    assert_eq!(
        ok(d, json!({"op": "put", "name": "p"}), NOW).await,
        Value::Null
    );
    assert_eq!(ok(d, json!({"op": "whatever"}), NOW).await, Value::Null);
    assert_eq!(counted(d, "c", json!({})).await, 0);
}

/// Malformed tasks fail with `Invalid` and change nothing.
/// Collection names are checked before any backend sees them: no operators, system namespaces,
/// paths, NULs or overlong names; the names a deployment uses pass.
pub(super) async fn collection_names(d: &dyn Documents) {
    let long = "c".repeat(threds_runtime::documents::MAX_COLLECTION + 1);
    for name in [
        "$cmd",
        "system.users",
        "../x",
        "a/b",
        "a\u{0}b",
        "a..b",
        ".hidden",
        "1abc",
        "with space",
        long.as_str(),
    ] {
        let e = super::support::fails(d, put(name, json!({"v": 1})), NOW).await;
        assert!(
            matches!(e, threds_runtime::documents::Error::Invalid(_))
                && e.to_string().contains("params.type"),
            "collection {name:?}: {e}"
        );
        invalid(d, get(name, json!({}))).await;
    }
    for name in [
        "EventRecord",
        "Reports_2026-12",
        "org.wt.things",
        "_private",
    ] {
        assert_eq!(
            ok(d, put(name, json!({"id": "a"})), NOW).await,
            json!("a"),
            "{name}"
        );
    }
}

pub(super) async fn invalid_tasks(d: &dyn Documents) {
    let e = super::support::fails(d, task("frobnicate", "c", json!({})), NOW).await;
    assert!(
        e.to_string().contains("Unsupported task operation"),
        "unknown op: {e}"
    );
    for op in ["update", "upsert", "replace", "delete", "count"] {
        invalid(d, task(op, "c", json!({"values": {"v": 1}}))).await;
    }
    for op in ["update", "upsert", "replace"] {
        invalid(d, task(op, "c", json!({"matcher": {}}))).await;
    }
    for entry in [
        json!(5),
        json!("put"),
        json!([[put("c", json!({}))]]),
        json!({"op": "put", "params": {"values": {}}}),
        json!({"op": "put", "params": 3}),
        get("c", json!({"n": {"$foo": 1}})),
        get("c", json!({"$and": [{"n": 1}]})),
        get("c", json!({"n": {"$in": 1}})),
        get("c", json!({"n": {"$re": "("}})),
        get("c", json!({"$or": []})),
        get("c", json!(7)),
        change("update", "c", json!({}), json!({"$set": {"v": 1}})),
        change("update", "c", json!({}), json!({"$inc": {"v": "1"}})),
        change("update", "c", json!({}), json!({"$inc": 1})),
        change("update", "c", json!({}), json!([1])),
    ] {
        invalid(d, entry).await;
    }
    assert_eq!(counted(d, "c", json!({})).await, 0);
}

/// `save_all` stores each document once under its id: a second save of the same ids (even within
/// one call) leaves the first as it is, and a document without a string id is refused before
/// anything is stored.
pub(super) async fn save_all_is_idempotent(d: &dyn Documents) {
    let first = [
        json!({"id": "h1", "n": 1}),
        json!({"id": "h2", "n": 2}),
        json!({"id": "h1", "n": 99}),
    ];
    d.save_all("h", &first, NOW)
        .await
        .unwrap_or_else(|e| panic!("save_all of new documents: {e}"));
    assert_eq!(
        doc(d, "h", "h1").await,
        json!({"id": "h1", "n": 1, "created": NOW, "modified": NOW}),
        "the first of two documents with one id is kept, with the store's times"
    );
    let again = [
        json!({"id": "h2", "n": 2}),
        json!({"id": "h3", "n": 3}),
        json!({"id": "h1", "n": 1}),
    ];
    d.save_all("h", &again, NOW + 5)
        .await
        .unwrap_or_else(|e| panic!("save_all of documents partly stored: {e}"));
    assert_eq!(ok(d, count("h", json!({})), NOW).await, json!(3));
    assert_eq!(
        doc(d, "h", "h2").await["modified"],
        json!(NOW),
        "h2 untouched"
    );
    assert_eq!(doc(d, "h", "h3").await["n"], json!(3), "h3 added");
    for bad in [json!({"n": 4}), json!({"id": 4}), json!("text")] {
        let refused = d.save_all("h", std::slice::from_ref(&bad), NOW).await;
        assert!(
            matches!(refused, Err(threds_runtime::documents::Error::Invalid(_))),
            "save_all of {bad} is refused as invalid: {refused:?}"
        );
    }
    let refused = d.save_all("system.bad", &[json!({"id": "x"})], NOW).await;
    assert!(
        matches!(refused, Err(threds_runtime::documents::Error::Invalid(_))),
        "save_all into an invalid collection is refused: {refused:?}"
    );
    assert_eq!(ok(d, count("h", json!({})), NOW).await, json!(3));
}
