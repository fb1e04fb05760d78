//! Contract cases: the matcher vocabulary (equality, dotted paths, arrays, operators).

use serde_json::{json, Value};

use super::support::{change, counted, delete, doc, get_one, matching, ok, put, NOW};
use threds_runtime::documents::Documents;

/// Seeds collection `m` with four documents.
async fn seed(d: &dyn Documents) {
    let docs = json!([
        {"id": "d1", "name": "Alpha", "n": 1, "tags": ["a", "b"], "to": ["p0", "p1"],
         "meta": {"active": true, "level": 2}, "items": [{"k": "x", "v": 1}, {"k": "y", "v": 2}]},
        {"id": "d2", "name": "beta", "n": 5, "tags": ["b"], "to": "p1",
         "meta": {"active": false, "level": 3}, "items": [{"k": "y", "v": 5}]},
        {"id": "d3", "name": "Gamma", "n": 10, "s": "m", "meta": {"active": true}, "items": []},
        {"id": "d4", "name": "delta", "n": 2.5, "s": "z"}
    ]);
    ok(d, put("m", docs), NOW).await;
}

/// Checks that each matcher selects exactly the listed ids (in natural order).
async fn expect(d: &dyn Documents, cases: &[(Value, &[&str])]) {
    for (matcher, want) in cases {
        let got = matching(d, "m", matcher.clone()).await;
        assert_eq!(got, *want, "documents contract: matcher {matcher}");
    }
}

/// Plain equality, numbers by value, dotted paths, exact sub-documents, null and missing fields.
pub(super) async fn equality_and_paths(d: &dyn Documents) {
    seed(d).await;
    expect(
        d,
        &[
            (json!({}), &["d1", "d2", "d3", "d4"]),
            (json!({"name": "beta"}), &["d2"]),
            (json!({"name": "Beta"}), &[]),
            (json!({"n": 1}), &["d1"]),
            (json!({"n": 1.0}), &["d1"]),
            (json!({"n": "1"}), &[]),
            (json!({"id": "d2"}), &["d2"]),
            (json!({"id": "d2", "n": 1}), &[]),
            (json!({"meta.level": 2}), &["d1"]),
            (json!({"meta.active": true, "n": {"$gt": 1}}), &["d3"]),
            (json!({"meta": {"active": true, "level": 2}}), &["d1"]),
            (json!({"meta": {"active": true}}), &["d3"]),
            (json!({"s": null}), &["d1", "d2"]),
            (
                json!({"meta.missing.deeper": null}),
                &["d1", "d2", "d3", "d4"],
            ),
        ],
    )
    .await;
}

/// Array fields: an element equal, the whole array equal, paths through arrays of objects, indexes.
pub(super) async fn arrays(d: &dyn Documents) {
    seed(d).await;
    expect(
        d,
        &[
            (json!({"to": "p1"}), &["d1", "d2"]),
            (json!({"to": "p0"}), &["d1"]),
            (json!({"tags": "a"}), &["d1"]),
            (json!({"tags": ["a", "b"]}), &["d1"]),
            (json!({"tags": ["b", "a"]}), &[]),
            (json!({"tags": ["b"]}), &["d2"]),
            (json!({"items.k": "y"}), &["d1", "d2"]),
            (json!({"items.0.k": "y"}), &["d2"]),
            (json!({"items.1.v": 2}), &["d1"]),
            (json!({"items.v": {"$gte": 5}}), &["d2"]),
            (json!({"items": {"k": "y", "v": 5}}), &["d2"]),
            (json!({"items": []}), &["d3"]),
            (json!({"to": {"$in": ["p0"]}}), &["d1"]),
        ],
    )
    .await;
}

/// `$gt`, `$gte`, `$lt`, `$lte`: numbers numerically, strings lexicographically, mixed types never.
pub(super) async fn comparisons(d: &dyn Documents) {
    seed(d).await;
    expect(
        d,
        &[
            (json!({"n": {"$gt": 2}}), &["d2", "d3", "d4"]),
            (json!({"n": {"$gte": 2.5, "$lt": 10}}), &["d2", "d4"]),
            (json!({"n": {"$lte": 1}}), &["d1"]),
            (json!({"n": {"$lt": 1}}), &[]),
            (json!({"name": {"$gte": "b"}}), &["d2", "d4"]),
            (json!({"s": {"$gt": "a"}}), &["d3", "d4"]),
            (json!({"s": {"$lte": "m"}}), &["d3"]),
            (json!({"n": {"$gt": "0"}}), &[]),
            (json!({"name": {"$lt": 100}}), &[]),
            (json!({"meta.level": {"$gte": 3}}), &["d2"]),
        ],
    )
    .await;
}

/// `$ne`, `$not`, `$in`, `$nin` (missing fields count as not equal).
pub(super) async fn negations_and_sets(d: &dyn Documents) {
    seed(d).await;
    expect(
        d,
        &[
            (json!({"name": {"$ne": "beta"}}), &["d1", "d3", "d4"]),
            (json!({"to": {"$ne": "p1"}}), &["d3", "d4"]),
            (json!({"n": {"$not": {"$gt": 2}}}), &["d1"]),
            (json!({"s": {"$not": {"$gt": "a"}}}), &["d1", "d2"]),
            (json!({"name": {"$not": {"$re": "^[ab]"}}}), &["d3", "d4"]),
            (
                json!({"name": {"$in": ["beta", "Gamma", "zzz"]}}),
                &["d2", "d3"],
            ),
            (json!({"id": {"$in": ["d4", "d1"]}}), &["d1", "d4"]),
            (json!({"n": {"$in": [5.0, 2.5]}}), &["d2", "d4"]),
            (json!({"name": {"$in": []}}), &[]),
            (json!({"name": {"$nin": ["beta", "Gamma"]}}), &["d1", "d4"]),
            (json!({"tags": {"$nin": ["b"]}}), &["d3", "d4"]),
        ],
    )
    .await;
}

/// `$or` (nested, combined with fields) and `$re` (case-insensitive, on strings and string
/// elements only).
pub(super) async fn or_and_regex(d: &dyn Documents) {
    seed(d).await;
    expect(
        d,
        &[
            (json!({"$or": [{"n": 1}, {"name": "delta"}]}), &["d1", "d4"]),
            (
                json!({"meta.active": true, "$or": [{"n": 1}, {"n": 10}]}),
                &["d1", "d3"],
            ),
            (
                json!({"$or": [{"$or": [{"n": 5}]}, {"s": "z"}]}),
                &["d2", "d4"],
            ),
            (json!({"$or": [{"n": 99}]}), &[]),
            (json!({"name": {"$re": "^a"}}), &["d1"]),
            (json!({"name": {"$re": "TA$"}}), &["d2", "d4"]),
            (json!({"name": {"$re": "^(alpha|gamma)$"}}), &["d1", "d3"]),
            (json!({"tags": {"$re": "^A$"}}), &["d1"]),
            (json!({"n": {"$re": "1"}}), &[]),
            (json!({"items.k": {"$re": "X"}}), &["d1"]),
        ],
    )
    .await;
}

/// The same matcher semantics drive `getOne`, `count`, `update` and `delete`.
pub(super) async fn matchers_drive_every_op(d: &dyn Documents) {
    seed(d).await;
    let history = json!({"to": "p1", "n": {"$gte": 1}});
    assert_eq!(
        ok(d, get_one("m", history.clone()), NOW).await["id"],
        json!("d1")
    );
    assert_eq!(counted(d, "m", history.clone()).await, 2);
    ok(
        d,
        change("update", "m", json!({"tags": "b"}), json!({"hit": true})),
        NOW,
    )
    .await;
    assert_eq!(matching(d, "m", json!({"hit": true})).await, ["d1", "d2"]);
    ok(
        d,
        delete("m", json!({"$or": [{"s": "z"}, {"to": "p0"}]})),
        NOW,
    )
    .await;
    assert_eq!(matching(d, "m", json!({})).await, ["d2", "d3"]);
    assert_eq!(doc(d, "m", "d4").await, Value::Null);
}
