//! Contract cases: selectors (include/exclude) and collectors (sort, skip, limit).

use serde_json::{json, Value};

use super::support::{ids, invalid, ok, put, task, NOW};
use threds_runtime::documents::Documents;

/// Seeds collection `q`; `n` is missing from `d`, and ties between `c` and `e`.
async fn seed(d: &dyn Documents) {
    let docs = json!([
        {"id": "a", "n": 3, "g": "x", "r": {"k": 2}, "o": {"p": 1, "q": 2}, "l": [{"p": 1, "q": 2}]},
        {"id": "b", "n": 1, "g": "y", "r": {"k": 5}},
        {"id": "c", "n": 2, "g": "x", "r": {"k": 1}},
        {"id": "d", "g": "y", "r": {"k": 4}},
        {"id": "e", "n": 2, "g": "y", "r": {"k": 3}}
    ]);
    ok(d, put("q", docs), NOW).await;
}

/// A `get` on `q` with these extra params.
async fn query(d: &dyn Documents, params: Value) -> Value {
    ok(d, task("get", "q", params), NOW).await
}

/// The sorted keys of a result document.
fn keys(doc: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = doc
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// `include` returns only those fields plus `id` (dotted paths reach in); `exclude` returns all
/// but those (`id` always stays); both apply to `getOne` too.
pub(super) async fn selectors(d: &dyn Documents) {
    seed(d).await;
    let got = query(d, json!({"selector": {"include": ["n", "o.p", "l.q"]}})).await;
    assert_eq!(
        got[0],
        json!({"id": "a", "n": 3, "o": {"p": 1}, "l": [{"q": 2}]})
    );
    assert_eq!(
        got[3],
        json!({"id": "d"}),
        "include of missing fields leaves only the id"
    );
    let got = query(
        d,
        json!({"matcher": {"id": "a"}, "selector": {"exclude": ["n", "o.q", "id"]}}),
    )
    .await;
    assert_eq!(
        keys(&got[0]),
        ["created", "g", "id", "l", "modified", "o", "r"]
    );
    assert_eq!(got[0]["o"], json!({"p": 1}));
    let one = ok(
        d,
        task(
            "getOne",
            "q",
            json!({"matcher": {"id": "b"}, "selector": {"include": ["g"]}}),
        ),
        NOW,
    )
    .await;
    assert_eq!(one, json!({"id": "b", "g": "y"}));
    let one = ok(
        d,
        task(
            "getOne",
            "q",
            json!({"matcher": {"id": "b"}, "selector": {"include": ["id"]}}),
        ),
        NOW,
    )
    .await;
    assert_eq!(one, json!({"id": "b"}));
    let selector = json!({"include": ["n"], "exclude": ["g"]});
    super::support::fails(d, task("get", "q", json!({"selector": selector})), NOW).await;
}

/// Sorting: ascending puts missing fields first, `desc` reverses, later keys break ties, dotted
/// fields work, and the sort applies before the selector.
pub(super) async fn sort(d: &dyn Documents) {
    seed(d).await;
    let sorted = |sort: Value| json!({"collector": {"sort": sort}});
    let by_n = query(d, sorted(json!([{"field": "n"}, {"field": "id"}]))).await;
    assert_eq!(
        ids(&by_n),
        ["d", "b", "c", "e", "a"],
        "ascending, missing first"
    );
    let by_n_desc = query(
        d,
        sorted(json!([{"field": "n", "desc": true}, {"field": "id", "desc": true}])),
    )
    .await;
    assert_eq!(ids(&by_n_desc), ["a", "e", "c", "b", "d"]);
    let grouped = query(
        d,
        sorted(json!([{"field": "g"}, {"field": "n", "desc": true}])),
    )
    .await;
    assert_eq!(ids(&grouped), ["a", "c", "e", "b", "d"]);
    let dotted = query(d, sorted(json!([{"field": "r.k", "desc": false}]))).await;
    assert_eq!(ids(&dotted), ["c", "a", "e", "d", "b"]);
    let params = json!({"matcher": {"g": "y"}, "selector": {"include": ["g"]},
                        "collector": {"sort": [{"field": "r.k", "desc": true}]}});
    let selected = query(d, params).await;
    assert_eq!(ids(&selected), ["b", "d", "e"]);
    assert_eq!(selected[0], json!({"id": "b", "g": "y"}));
}

/// `skip` and `limit` page through the (sorted or natural) order; `limit: 0` means no limit.
pub(super) async fn skip_and_limit(d: &dyn Documents) {
    seed(d).await;
    let page = |skip: u64, limit: u64| json!({"collector": {"sort": [{"field": "id"}], "skip": skip, "limit": limit}});
    assert_eq!(ids(&query(d, page(0, 2)).await), ["a", "b"]);
    assert_eq!(ids(&query(d, page(2, 2)).await), ["c", "d"]);
    assert_eq!(ids(&query(d, page(4, 2)).await), ["e"]);
    assert_eq!(ids(&query(d, page(9, 2)).await), Vec::<String>::new());
    assert_eq!(ids(&query(d, page(1, 0)).await), ["b", "c", "d", "e"]);
    assert_eq!(
        ids(&query(d, json!({"collector": {"limit": 1}})).await),
        ["a"]
    );
    assert_eq!(
        ids(&query(d, json!({"matcher": {"g": "y"}, "collector": {"skip": 1}})).await),
        ["d", "e"]
    );
}

/// Malformed collectors are invalid.
pub(super) async fn bad_collectors(d: &dyn Documents) {
    seed(d).await;
    for collector in [
        json!({"skip": -1}),
        json!({"limit": "2"}),
        json!({"sort": {"field": "n"}}),
        json!({"sort": [{"desc": true}]}),
        json!({"sort": [{"field": ""}]}),
        json!(3),
    ] {
        invalid(d, task("get", "q", json!({ "collector": collector }))).await;
    }
}
