//! Contract cases: an array of tasks is one transaction (results per task, own writes visible,
//! all or nothing).

use serde_json::{json, Value};

use super::support::{
    already_exists, change, count, counted, delete, doc, fails, get, get_one, invalid, ok, put,
    task, NOW,
};
use threds_runtime::documents::{Documents, Error};

/// Seeds collection `t` with `x` (name X, n 1).
async fn seed(d: &dyn Documents) {
    ok(d, put("t", json!({"id": "x", "name": "X", "n": 1})), NOW).await;
}

/// A transaction returns one result per task, and each task sees the earlier ones' writes.
pub(super) async fn results_and_visibility(d: &dyn Documents) {
    seed(d).await;
    let entry = json!([
        put("t", json!({"id": "a", "n": 1})),
        change("update", "t", json!({"id": "a"}), json!({"$inc": {"n": 1}})),
        get_one("t", json!({"id": "a"})),
        put("t", json!([{"id": "b"}, {"id": "c"}])),
        delete("t", json!({"id": "x"})),
        count("t", json!({})),
        get("t", json!({})),
        {"op": "run"}
    ]);
    let result = ok(d, entry, NOW).await;
    let results = result.as_array().map_or(&[][..], Vec::as_slice);
    assert_eq!(results.len(), 8, "one result per task: {result}");
    assert_eq!(results[0], json!("a"));
    assert_eq!(results[1], Value::Null);
    assert_eq!(
        results[2]["n"],
        json!(2),
        "a task sees the transaction's earlier writes"
    );
    assert_eq!(results[3], json!(["b", "c"]));
    assert_eq!(results[5], json!(3));
    assert_eq!(super::support::ids(&results[6]), ["a", "b", "c"]);
    assert_eq!(results[7], Value::Null);
    assert_eq!(
        ok(d, json!([]), NOW).await,
        json!([]),
        "an empty transaction does nothing"
    );
    assert_eq!(
        counted(d, "t", json!({})).await,
        3,
        "a successful transaction is kept"
    );
}

/// A duplicate put anywhere in a transaction undoes all of it (including a put array's
/// earlier elements).
pub(super) async fn rollback_on_duplicate(d: &dyn Documents) {
    seed(d).await;
    let entry = json!([
        put("t", json!({"id": "a"})),
        change(
            "update",
            "t",
            json!({"id": "x"}),
            json!({"name": "changed", "$push": {"l": 1}})
        ),
        delete("t", json!({"id": "x"})),
        put("t", json!({"id": "a"}))
    ]);
    already_exists(d, entry, "a").await;
    assert_eq!(
        doc(d, "t", "a").await,
        Value::Null,
        "the transaction's put was undone"
    );
    let x = doc(d, "t", "x").await;
    assert_eq!(
        (&x["name"], &x["n"], &x["modified"]),
        (&json!("X"), &json!(1), &json!(NOW))
    );
    assert!(
        x.get("l").is_none(),
        "the transaction's update and delete were undone"
    );

    already_exists(
        d,
        json!([put("t", json!([{"id": "p"}, {"id": "q"}, {"id": "p"}]))]),
        "p",
    )
    .await;
    assert_eq!(
        counted(d, "t", json!({})).await,
        1,
        "a put array is undone as a whole"
    );
}

/// `upsert` and `replace` are inside the transaction too (the reference ran them outside).
pub(super) async fn rollback_includes_upsert_and_replace(d: &dyn Documents) {
    seed(d).await;
    let entry = json!([
        change("upsert", "t", json!({"id": "u1"}), json!({"v": 1})),
        change("upsert", "t", json!({"id": "x"}), json!({"v": 2})),
        change("replace", "t", json!({"id": "x"}), json!({"name": "R"})),
        change("replace", "t", json!({"id": "r1"}), json!({"name": "new"})),
        get_one("t", json!({"id": "x"})),
        put("t", json!({"id": "u1"}))
    ]);
    already_exists(d, entry, "u1").await;
    assert_eq!(
        doc(d, "t", "u1").await,
        Value::Null,
        "the upsert's insert was undone"
    );
    assert_eq!(
        doc(d, "t", "r1").await,
        Value::Null,
        "the replace's insert was undone"
    );
    let x = doc(d, "t", "x").await;
    assert_eq!(
        x,
        json!({"id": "x", "name": "X", "n": 1, "created": NOW, "modified": NOW})
    );
}

/// An invalid task, or a task whose update cannot apply, fails the whole transaction.
pub(super) async fn rollback_on_invalid_or_failing_task(d: &dyn Documents) {
    seed(d).await;
    invalid(
        d,
        json!([
            put("t", json!({"id": "a"})),
            task("frobnicate", "t", json!({}))
        ]),
    )
    .await;
    invalid(d, json!([put("t", json!({"id": "a"})), "not a task"])).await;
    invalid(
        d,
        json!([
            put("t", json!({"id": "a"})),
            get("t", json!({"n": {"$bad": 1}}))
        ]),
    )
    .await;
    let failing = json!([
        put("t", json!({"id": "a"})),
        change(
            "update",
            "t",
            json!({"id": "x"}),
            json!({"$inc": {"name": 1}})
        )
    ]);
    let e = fails(d, failing, NOW).await;
    assert!(!matches!(e, Error::AlreadyExists { .. }), "unexpected {e}");
    assert_eq!(
        doc(d, "t", "a").await,
        Value::Null,
        "nothing of a failed transaction is kept"
    );
    assert_eq!(counted(d, "t", json!({})).await, 1);
}

/// A transaction may span collections; a failure undoes all of them.
pub(super) async fn across_collections(d: &dyn Documents) {
    seed(d).await;
    let entry = json!([
        put("t1", json!({"id": "a"})),
        put("t2", json!({"id": "b"})),
        put("t", json!({"id": "x"}))
    ]);
    already_exists(d, entry, "x").await;
    assert_eq!(
        counted(d, "t1", json!({})).await + counted(d, "t2", json!({})).await,
        0
    );
    let entry = json!([put("t1", json!({"id": "a"})), put("t2", json!({"id": "b"}))]);
    assert_eq!(ok(d, entry, NOW).await, json!(["a", "b"]));
    assert_eq!(
        counted(d, "t1", json!({})).await + counted(d, "t2", json!({})).await,
        2
    );
}
