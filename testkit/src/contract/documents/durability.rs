//! Contract case: committed work survives reopening the store; failed work never shows up.

use std::future::Future;
use std::sync::Arc;

use serde_json::{json, Value};

use super::support::{already_exists, change, counted, delete, doc, matching, ok, put, NOW};
use threds_runtime::documents::Documents;

/// Checks durability. Every call of `open` must return a store over the same backing data (empty
/// at the first call); the previous store is dropped before the next call.
pub async fn run_durability<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Documents>>,
{
    let d = open().await;
    ok(
        &*d,
        put("c", json!({"id": "a", "n": 1, "tags": ["x"]})),
        NOW,
    )
    .await;
    let generated = ok(&*d, put("c", json!([{"g": 1}, {"g": 2}])), NOW).await;
    ok(&*d, put("c", json!({"id": "b"})), NOW).await;
    ok(
        &*d,
        change(
            "update",
            "c",
            json!({"id": "a"}),
            json!({"$inc": {"n": 1}, "$push": {"tags": "y"}}),
        ),
        NOW + 1,
    )
    .await;
    ok(&*d, delete("c", json!({"id": "b"})), NOW).await;
    ok(
        &*d,
        change("upsert", "c", json!({"id": "u"}), json!({"v": 1})),
        NOW,
    )
    .await;
    ok(
        &*d,
        change("replace", "c", json!({"id": "r"}), json!({"v": 2})),
        NOW,
    )
    .await;
    already_exists(
        &*d,
        json!([put("c", json!({"id": "z"})), put("c", json!({"id": "a"}))]),
        "a",
    )
    .await;
    drop(d);

    let d = open().await;
    let a = doc(&*d, "c", "a").await;
    assert_eq!(
        a,
        json!({"id": "a", "n": 2, "tags": ["x", "y"], "created": NOW, "modified": NOW + 1})
    );
    assert_eq!(
        doc(&*d, "c", "b").await,
        Value::Null,
        "a delete survives reopening"
    );
    assert_eq!(
        doc(&*d, "c", "z").await,
        Value::Null,
        "a failed transaction leaves nothing behind"
    );
    let mut expected: Vec<String> = vec!["a".into()];
    expected.extend(
        generated
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned),
    );
    expected.extend(["u".into(), "r".into()]);
    assert_eq!(
        matching(&*d, "c", json!({})).await,
        expected,
        "natural order survives reopening"
    );
    let again = ok(&*d, put("c", json!({"g": 3})), NOW).await;
    let again = again.as_str().map(str::to_owned).unwrap_or_default();
    assert!(
        !again.is_empty() && !expected.contains(&again),
        "generated ids stay unique across restarts"
    );
    drop(d);

    let d = open().await;
    assert_eq!(
        counted(&*d, "c", json!({})).await,
        6,
        "work after a reopen survives the next one"
    );
    assert_eq!(doc(&*d, "c", &again).await["g"], json!(3));
}
