//! Runs the documents contract on the embedded store, in memory and durable, plus checks specific
//! to the embedded adapter.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tempfile::TempDir;
use threds_runtime::documents::{Documents, Error, MemoryDocuments};
use threds_testkit::contract::documents::{run_all, run_durability};

#[tokio::test]
async fn contract_in_memory() {
    run_all(|| async { Arc::new(MemoryDocuments::new()) as Arc<dyn Documents> }).await;
}

#[tokio::test]
async fn contract_durable() {
    let dirs = Arc::new(Mutex::new(Vec::<TempDir>::new()));
    run_all(|| {
        let dir = tempfile::tempdir().unwrap();
        let docs = MemoryDocuments::open(dir.path()).unwrap();
        dirs.lock().unwrap().push(dir);
        async move { Arc::new(docs) as Arc<dyn Documents> }
    })
    .await;
}

#[tokio::test]
async fn durability() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run_durability(|| {
        let docs = MemoryDocuments::open(&path).unwrap();
        async move { Arc::new(docs) as Arc<dyn Documents> }
    })
    .await;
}

// Guarantees of the embedded store beyond the contract (which MongoDB does not promise).

const NOW: i64 = 1_700_000_000_000;

fn put(collection: &str, values: Value) -> Value {
    json!({"op": "put", "params": {"type": collection, "values": values}})
}

fn task(op: &str, collection: &str, params: Value) -> Value {
    let mut task = json!({"op": op, "params": {"type": collection}});
    if let (Some(p), Value::Object(more)) = (task["params"].as_object_mut(), params) {
        p.extend(more);
    }
    task
}

fn ids(result: &Value) -> Vec<&str> {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn sort_is_stable() {
    let d = MemoryDocuments::new();
    let docs = json!([{"id": "a", "n": 2}, {"id": "b", "n": 1}, {"id": "c", "n": 2}, {"id": "d"}, {"id": "e", "n": 1}]);
    d.run(&put("s", docs), NOW).await.unwrap();
    let asc = d
        .run(
            &task("get", "s", json!({"collector": {"sort": [{"field": "n"}]}})),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(ids(&asc), ["d", "b", "e", "a", "c"]);
    let sort = json!({"collector": {"sort": [{"field": "n", "desc": true}]}});
    let desc = d.run(&task("get", "s", sort), NOW).await.unwrap();
    assert_eq!(ids(&desc), ["a", "c", "b", "e", "d"]);
}

#[tokio::test]
async fn a_single_task_is_atomic() {
    let d = MemoryDocuments::new();
    d.run(
        &put("c", json!([{"id": "a", "n": 1}, {"id": "b", "n": "x"}])),
        NOW,
    )
    .await
    .unwrap();
    let dup = d
        .run(&put("c", json!([{"id": "new"}, {"id": "a"}])), NOW)
        .await;
    assert!(matches!(dup, Err(Error::AlreadyExists { .. })));
    let update = task(
        "update",
        "c",
        json!({"matcher": {}, "values": {"$inc": {"n": 1}}}),
    );
    assert!(d.run(&update, NOW).await.is_err());
    let all = d.run(&task("get", "c", json!({})), NOW).await.unwrap();
    assert_eq!(ids(&all), ["a", "b"]);
    assert_eq!(
        all[0]["n"],
        json!(1),
        "the failed update changed no document"
    );
}

#[tokio::test]
async fn one_open_store_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = MemoryDocuments::open(dir.path()).unwrap();
    assert!(matches!(
        MemoryDocuments::open(dir.path()),
        Err(Error::Backend(_))
    ));
    drop(first);
    assert!(MemoryDocuments::open(dir.path()).is_ok());
}

#[tokio::test]
async fn corrupt_file_is_a_backend_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("documents.redb"), b"not a database").unwrap();
    assert!(matches!(
        MemoryDocuments::open(dir.path()),
        Err(Error::Backend(_))
    ));
}

#[tokio::test]
async fn hostile_input_is_refused_without_panicking() {
    let d = MemoryDocuments::new();
    d.run(&put("c", json!({"id": "a", "l": [1]})), NOW)
        .await
        .unwrap();
    let mut deep = String::from("{\"a\":1}");
    for _ in 0..60 {
        deep = format!("{{\"$or\":[{deep}]}}");
    }
    let deep: Value = serde_json::from_str(&deep).unwrap();
    let allowed = [
        task(
            "get",
            "c",
            json!({"matcher": {"a": {"$re": "(a+)+$".repeat(2000)}}}),
        ),
        task(
            "get",
            "c",
            json!({"collector": {"skip": u64::MAX, "limit": u64::MAX}}),
        ),
    ];
    for entry in allowed {
        let _ = d.run(&entry, NOW).await;
    }
    let refused = [
        task("get", "c", json!({ "matcher": deep })),
        task(
            "update",
            "c",
            json!({"matcher": {}, "values": {"l.99999999999": 1}}),
        ),
        task(
            "update",
            "c",
            json!({"matcher": {}, "values": {"l.100001": 1}}),
        ),
        task(
            "update",
            "c",
            json!({"matcher": {}, "values": {"$inc": {"n": 1e308}, "$mul": {"n": 1e308}}}),
        ),
        task(
            "update",
            "c",
            json!({"matcher": {}, "values": {"x".repeat(10) + &".y".repeat(100): 1}}),
        ),
        task(
            "getOne",
            "c",
            json!({"matcher": {"id": 5}, "selector": {"include": [""]}}),
        ),
        json!({"op": ["put"], "params": {"type": "c"}}),
        json!(null),
    ];
    for entry in refused {
        assert!(d.run(&entry, NOW).await.is_err(), "{entry}");
    }
    let got = d.run(&task("getOne", "c", json!({})), NOW).await.unwrap();
    assert_eq!(got["l"], json!([1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_runs_are_serialized() {
    let dir = tempfile::tempdir().unwrap();
    let d = Arc::new(MemoryDocuments::open(dir.path()).unwrap());
    d.run(&put("c", json!({"id": "counter", "n": 0})), NOW)
        .await
        .unwrap();
    let mut handles = Vec::new();
    for i in 0..32 {
        let d = Arc::clone(&d);
        handles.push(tokio::spawn(async move {
            let inc = task(
                "update",
                "c",
                json!({"matcher": {"id": "counter"}, "values": {"$inc": {"n": 1}}}),
            );
            let entry = json!([put("c", json!({"i": i})), inc]);
            d.run(&entry, NOW + i).await.unwrap();
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let counter = d
        .run(
            &task("getOne", "c", json!({"matcher": {"id": "counter"}})),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(counter["n"], json!(32));
    let count = d
        .run(&task("count", "c", json!({"matcher": {}})), NOW)
        .await
        .unwrap();
    assert_eq!(count, json!(33));
}
