//! Contract cases: the update vocabulary (sets, dotted paths, every update operator).

use serde_json::{json, Value};

use super::support::{change, doc, fails, ok, put, NOW};
use threds_runtime::documents::Documents;

/// Seeds collection `u` with the document `u`.
async fn seed(d: &dyn Documents) {
    let values = json!({
        "id": "u", "name": "n", "n": 2, "f": 1.5, "s": "str",
        "tags": ["a"], "list": [1, 2, 3, 2], "objs": [{"k": "x"}, {"k": "y", "v": 1}],
        "nested": {"a": 1}, "reactions": [{"name": "first"}, {"name": "second"}]
    });
    ok(d, put("u", values), NOW).await;
}

/// Updates document `u` with `values` at `now`; returns the document after.
async fn apply(d: &dyn Documents, values: Value, now: i64) -> Value {
    let result = ok(d, change("update", "u", json!({"id": "u"}), values), now).await;
    assert_eq!(result, Value::Null, "update returns null");
    doc(d, "u", "u").await
}

/// Plain keys set fields; dotted keys reach into objects and array elements, creating objects;
/// `id`, `_id`, `created` and `modified` are ignored.
pub(super) async fn sets(d: &dyn Documents) {
    seed(d).await;
    let values = json!({
        "name": "m", "nested.b": 2, "deep.x.y": 1, "reactions.0.name": "first renamed",
        "id": "other", "_id": "x", "created": 5, "modified": 5
    });
    let got = apply(d, values, NOW + 1).await;
    assert_eq!(got["name"], json!("m"));
    assert_eq!(got["nested"], json!({"a": 1, "b": 2}));
    assert_eq!(got["deep"], json!({"x": {"y": 1}}));
    assert_eq!(
        got["reactions"],
        json!([{"name": "first renamed"}, {"name": "second"}])
    );
    assert_eq!(
        (&got["id"], &got["created"], &got["modified"]),
        (&json!("u"), &json!(NOW), &json!(NOW + 1))
    );
    assert!(got.get("_id").is_none());
    let got = apply(d, json!({"nested": {"replaced": true}}), NOW + 2).await;
    assert_eq!(
        got["nested"],
        json!({"replaced": true}),
        "setting an object replaces it whole"
    );
}

/// `$add` (set semantics), `$push`, `$remove` (equal values, conditions, matching objects).
pub(super) async fn array_operators(d: &dyn Documents) {
    seed(d).await;
    let got = apply(d, json!({"$add": {"tags": "a", "fresh": "x"}}), NOW).await;
    assert_eq!(
        (&got["tags"], &got["fresh"]),
        (&json!(["a"]), &json!(["x"]))
    );
    let got = apply(
        d,
        json!({"$add": {"tags": {"$each": ["b", "a", "c"]}}}),
        NOW,
    )
    .await;
    assert_eq!(got["tags"], json!(["a", "b", "c"]));
    let got = apply(d, json!({"$push": {"list": 2, "pushed": {"k": 1}}}), NOW).await;
    assert_eq!(
        (&got["list"], &got["pushed"]),
        (&json!([1, 2, 3, 2, 2]), &json!([{"k": 1}]))
    );
    let got = apply(d, json!({"$push": {"list": {"$each": [4, 4]}}}), NOW).await;
    assert_eq!(got["list"], json!([1, 2, 3, 2, 2, 4, 4]));
    let got = apply(
        d,
        json!({"$remove": {"list": 2, "tags": "c", "absent": 1}}),
        NOW,
    )
    .await;
    assert_eq!(
        (&got["list"], &got["tags"]),
        (&json!([1, 3, 4, 4]), &json!(["a", "b"]))
    );
    assert!(
        got.get("absent").is_none(),
        "$remove on a missing field does nothing"
    );
    let got = apply(
        d,
        json!({"$remove": {"list": {"$gte": 4}, "objs": {"k": "y"}}}),
        NOW,
    )
    .await;
    assert_eq!(
        (&got["list"], &got["objs"]),
        (&json!([1, 3]), &json!([{"k": "x"}]))
    );
}

/// `$inc`, `$mul`, `$min`, `$max` (missing fields: `$inc`/`$min`/`$max` set, `$mul` gives 0).
pub(super) async fn numeric_operators(d: &dyn Documents) {
    seed(d).await;
    let got = apply(
        d,
        json!({"$inc": {"n": 3, "fresh": 1, "nested.c": -2}}),
        NOW,
    )
    .await;
    assert_eq!(
        (&got["n"], &got["fresh"], &got["nested"]["c"]),
        (&json!(5), &json!(1), &json!(-2))
    );
    let got = apply(d, json!({"$inc": {"f": 1}}), NOW).await;
    assert_eq!(got["f"].as_f64(), Some(2.5));
    let got = apply(d, json!({"$mul": {"n": 3, "zero": 4}}), NOW).await;
    assert_eq!((&got["n"], &got["zero"]), (&json!(15), &json!(0)));
    let got = apply(d, json!({"$min": {"n": 100, "lo": 7}}), NOW).await;
    assert_eq!((&got["n"], &got["lo"]), (&json!(15), &json!(7)));
    let got = apply(
        d,
        json!({"$min": {"n": 4}, "$max": {"lo": 9, "hi": 3}}),
        NOW,
    )
    .await;
    assert_eq!(
        (&got["n"], &got["lo"], &got["hi"]),
        (&json!(4), &json!(9), &json!(3))
    );
    let got = apply(d, json!({"$max": {"lo": 8}}), NOW).await;
    assert_eq!(got["lo"], json!(9));
    let got = apply(
        d,
        json!({"name": "both", "$inc": {"n": 1}, "$push": {"tags": "z"}}),
        NOW,
    )
    .await;
    assert_eq!(
        (&got["name"], &got["n"], &got["tags"]),
        (&json!("both"), &json!(5), &json!(["a", "z"]))
    );
}

/// `$now` sets fields to the task's time; every update sets `modified`, even an empty one.
pub(super) async fn now_and_modified(d: &dyn Documents) {
    seed(d).await;
    let got = apply(
        d,
        json!({"$now": {"seen": true, "at.when": true}}),
        NOW + 10,
    )
    .await;
    assert_eq!(
        (&got["seen"], &got["at"]["when"]),
        (&json!(NOW + 10), &json!(NOW + 10))
    );
    assert_eq!(got["modified"], json!(NOW + 10));
    let got = apply(d, json!({}), NOW + 20).await;
    assert_eq!(
        (&got["modified"], &got["created"]),
        (&json!(NOW + 20), &json!(NOW))
    );
}

/// An update that cannot apply (wrong field type, path through a scalar) fails and changes nothing.
pub(super) async fn failed_update_changes_nothing(d: &dyn Documents) {
    seed(d).await;
    let before = doc(d, "u", "u").await;
    for values in [
        json!({"name": "changed", "$inc": {"s": 1}}),
        json!({"name": "changed", "$push": {"s": 1}}),
        json!({"name": "changed", "$add": {"nested": 1}}),
        json!({"name": "changed", "$remove": {"n": 1}}),
        json!({"name": "changed", "s.inner": 1}),
    ] {
        fails(
            d,
            change("update", "u", json!({"id": "u"}), values),
            NOW + 1,
        )
        .await;
        assert_eq!(
            doc(d, "u", "u").await,
            before,
            "a failed update leaves the document as it was"
        );
    }
}
