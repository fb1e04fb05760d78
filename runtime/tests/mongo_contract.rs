//! Runs the documents contract on the MongoDB adapter against a briskdb server (a MongoDB-protocol
//! server the test spawns; skipped when it is not installed, see `scripts/install/mongo.sh`), plus
//! the history over it.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use threds_patterns::machine::{Machine, Outcome, Record};
use threds_runtime::documents::{Documents, Error, MongoConfig, MongoDocuments};
use threds_runtime::history::History;
use threds_testkit::contract::documents::{run_all, run_durability};
use threds_testkit::mongo::server_or_skip;

#[tokio::test]
async fn contract() {
    let Some(server) = server_or_skip().await else {
        return;
    };
    let base = MongoDocuments::connect(&server.config("unused"))
        .await
        .unwrap();
    assert!(
        !base.transactions(),
        "briskdb has no transactions: the adapter compensates"
    );
    let next = AtomicUsize::new(0);
    run_all(|| {
        let case = next.fetch_add(1, Ordering::Relaxed);
        let docs = base.database(&format!("contract_{case}"));
        async move { Arc::new(docs) as Arc<dyn Documents> }
    })
    .await;
}

#[tokio::test]
async fn durability() {
    let Some(server) = server_or_skip().await else {
        return;
    };
    let config = server.config("durability");
    run_durability(|| {
        let config = config.clone();
        async move { Arc::new(MongoDocuments::connect(&config).await.unwrap()) as Arc<dyn Documents> }
    })
    .await;
}

fn record(value: Value) -> Record {
    serde_json::from_value(value).unwrap()
}

fn event(id: &str, source: &str) -> Value {
    json!({"id": id, "type": "org.example.t", "source": {"id": source}, "thredId": "th1"})
}

#[tokio::test]
async fn history_records_and_queries() {
    let Some(server) = server_or_skip().await else {
        return;
    };
    let docs = MongoDocuments::connect(&server.config("history"))
        .await
        .unwrap();
    docs.ensure_indexes().await.unwrap();
    docs.ensure_indexes().await.unwrap();
    let history = History::new(Arc::new(docs));
    let outcome = Outcome {
        history: vec![
            record(
                json!({"record": "event", "event": event("e2", "engine"), "thredId": "th1",
                          "to": ["p1"], "timestamp": 20}),
            ),
            record(
                json!({"record": "event", "event": event("e1", "p1"), "thredId": "th1",
                          "timestamp": 10}),
            ),
            record(
                json!({"record": "event", "event": event("e3", "p2"), "thredId": "th1",
                          "timestamp": 30}),
            ),
            record(
                json!({"record": "log", "type": "m", "eventId": "e1", "thredId": "th1",
                          "fromReaction": "a", "toReaction": "b", "timestamp": 10}),
            ),
        ],
        ..Outcome::default()
    };
    history
        .record(&Machine::default(), &outcome, "step-1", 40)
        .await
        .unwrap();

    let ids = |records: &[Value]| -> Vec<String> {
        records
            .iter()
            .map(|r| r["eventId"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = history.events("th1", None, 50).await.unwrap();
    assert_eq!(ids(&all), ["e1", "e2", "e3"], "oldest first");
    assert_eq!(all[0]["event"]["source"]["id"], json!("p1"));
    let p1 = history.events("th1", Some("p1"), 50).await.unwrap();
    assert_eq!(ids(&p1), ["e1", "e2"], "sent by or to p1");
    let last = history.last_event("th1", "p1", 50).await.unwrap().unwrap();
    assert_eq!(last["eventId"], json!("e2"));
    assert!(history.last_event("th1", "p9", 50).await.unwrap().is_none());
    let log = history.thred_log("th1", 50).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (&log[0]["type"], &log[0]["toReaction"]),
        (&json!("m"), &json!("b"))
    );
    assert!(history.archived(None, "", 10, 50).await.unwrap().is_empty());
}

const NOW: i64 = 1_700_000_000_000;

fn task(op: &str, collection: &str, params: Value) -> Value {
    let mut task = json!({"op": op, "params": {"type": collection}});
    if let (Some(p), Value::Object(more)) = (task["params"].as_object_mut(), params) {
        p.extend(more);
    }
    task
}

/// Without transactions, a single task that fails halfway (an update reaching several documents)
/// is undone too, and so are deletes (the restored documents go to the end of natural order).
#[tokio::test]
async fn compensation_undoes_partial_tasks() {
    let Some(server) = server_or_skip().await else {
        return;
    };
    let d = MongoDocuments::connect(&server.config("compensation"))
        .await
        .unwrap();
    let put = task(
        "put",
        "c",
        json!({"values": [{"id": "a", "n": 1}, {"id": "b", "n": "x"}, {"id": "c", "n": 3}]}),
    );
    d.run(&put, NOW).await.unwrap();
    let inc = task(
        "update",
        "c",
        json!({"matcher": {}, "values": {"$inc": {"n": 1}}}),
    );
    assert!(matches!(d.run(&inc, NOW + 1).await, Err(Error::Invalid(_))));
    let failing = json!([
        task(
            "delete",
            "c",
            json!({"matcher": {"id": {"$in": ["a", "c"]}}})
        ),
        task("put", "c", json!({"values": {"id": "b"}}))
    ]);
    assert!(matches!(
        d.run(&failing, NOW + 2).await,
        Err(Error::AlreadyExists { .. })
    ));
    let all = d.run(&task("get", "c", json!({})), NOW).await.unwrap();
    let mut seen: Vec<(String, Value, Value)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| {
            (
                doc["id"].as_str().unwrap().to_owned(),
                doc["n"].clone(),
                doc["modified"].clone(),
            )
        })
        .collect();
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        seen,
        [
            ("a".to_owned(), json!(1), json!(NOW)),
            ("b".to_owned(), json!("x"), json!(NOW)),
            ("c".to_owned(), json!(3), json!(NOW))
        ],
        "the failed update and the failed transaction left nothing behind"
    );
}

/// briskdb has no sessions: forcing transactions on makes writing entries fail as a backend
/// error before anything is written, while reads still work.
#[tokio::test]
async fn forced_transactions_need_a_server_with_sessions() {
    let Some(server) = server_or_skip().await else {
        return;
    };
    let config = MongoConfig {
        transactions: Some(true),
        ..server.config("forced")
    };
    let d = MongoDocuments::connect(&config).await.unwrap();
    assert!(d.transactions());
    let put = task("put", "c", json!({"values": {"id": "a"}}));
    let e = d.run(&put, NOW).await.unwrap_err();
    assert!(
        matches!(e, Error::Backend(_) | Error::Unavailable { .. }),
        "a backend error: {e}"
    );
    let count = task("count", "c", json!({"matcher": {}}));
    assert_eq!(d.run(&count, NOW).await.unwrap(), json!(0));
}
