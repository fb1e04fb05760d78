//! Contract case: the reference's persistence-agent test flow (spec §10, `persistence_agent`), one
//! entry of `content.tasks` per step.

use serde_json::{json, Value};

use super::support::{already_exists, change, delete, get, get_one, ok, put, NOW};
use threds_runtime::documents::Documents;

/// The pattern the reference stores.
fn echo_pattern() -> Value {
    json!({
        "name": "Echo Test",
        "id": "echo_test",
        "instanceInterval": 0,
        "maxInstances": 0,
        "reactions": [{
            "name": "echo",
            "condition": {
                "type": "filter",
                "xpr": "$event.type = 'org.wt.echo'",
                "transform": {"eventDataTemplate": {"title": "$xpr( $valueNamed('echoTitle') )"}},
                "publish": {"to": "$xpr( $valueNamed('echoTo') )"},
                "transition": {"name": "echo"}
            }
        }]
    })
}

/// put → getOne → duplicate put fails → update a nested array element → upsert → replace →
/// delete (as a transaction) → get finds nothing → a transaction of two puts → a failing
/// transaction is rolled back.
pub(super) async fn persistence_agent_flow(d: &dyn Documents) {
    let pm = "PatternModel";
    let stored = ok(d, put(pm, echo_pattern()), NOW).await;
    assert_eq!(stored, json!("echo_test"), "store pattern");

    let find = json!([get_one(pm, json!({"id": "echo_test"}))]);
    let found = ok(d, find.clone(), NOW).await;
    assert_eq!(
        found[0]["name"],
        json!("Echo Test"),
        "find pattern (a one-task transaction)"
    );

    already_exists(d, put(pm, echo_pattern()), "echo_test").await;

    let rename = json!({"reactions.0.name": "first reaction renamed"});
    assert_eq!(
        ok(
            d,
            change("update", pm, json!({"id": "echo_test"}), rename),
            NOW + 1
        )
        .await,
        Value::Null
    );
    let found = ok(d, find, NOW).await;
    assert_eq!(
        found[0]["reactions"][0]["name"],
        json!("first reaction renamed"),
        "update nested element"
    );
    assert_eq!(
        found[0]["reactions"][0]["condition"]["type"],
        json!("filter"),
        "siblings untouched"
    );

    let replacement = json!({"name": "Replacement Pattern", "id": "replacement_test"});
    ok(
        d,
        change("upsert", pm, json!({"id": "replacement_test"}), replacement),
        NOW + 2,
    )
    .await;
    let found = ok(d, get_one(pm, json!({"id": "replacement_test"})), NOW).await;
    assert_eq!(
        found["name"],
        json!("Replacement Pattern"),
        "upsert inserted"
    );

    let object = json!({"name": "Replacement Object"});
    ok(
        d,
        change("replace", pm, json!({"id": "replacement_test"}), object),
        NOW + 3,
    )
    .await;
    let found = ok(d, get_one(pm, json!({"id": "replacement_test"})), NOW).await;
    assert_eq!(
        (&found["id"], &found["name"]),
        (&json!("replacement_test"), &json!("Replacement Object"))
    );

    let deletes = json!([
        delete(pm, json!({"id": "echo_test"})),
        delete(pm, json!({"id": "replacement_test"}))
    ]);
    assert_eq!(ok(d, deletes, NOW).await, json!([null, null]));
    let both = json!({"id": {"$in": ["echo_test", "replacement_test"]}});
    assert_eq!(
        ok(d, get(pm, both), NOW).await,
        json!([]),
        "find patterns: deleted"
    );

    let two = json!([
        put(pm, json!({"id": "t1", "name": "one"})),
        put(pm, json!({"id": "t2", "name": "two"}))
    ]);
    let result = ok(d, two, NOW).await;
    assert_eq!(
        result.as_array().map(Vec::len),
        Some(2),
        "a transaction of two puts: {result}"
    );
    assert_eq!(
        ok(d, get_one(pm, json!({"id": "t2"})), NOW).await["name"],
        json!("two")
    );

    let failing = json!([
        put(pm, json!({"id": "t3", "name": "three"})),
        put(pm, json!({"id": "t1"}))
    ]);
    already_exists(d, failing, "t1").await;
    assert_eq!(
        ok(d, get_one(pm, json!({"id": "t3"})), NOW).await,
        Value::Null,
        "first op rolled back"
    );
}
