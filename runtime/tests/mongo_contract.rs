//! Runs the documents contract on the MongoDB adapter against a briskdb server (a MongoDB-protocol
//! server the test spawns; skipped when it is not installed, see `scripts/install/mongo.sh`), plus
//! the history over it.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use threds_patterns::machine::{Engine, Outcome, Record};
use threds_runtime::contract::documents::{run_all, run_durability};
use threds_runtime::documents::{Documents, MongoDocuments};
use threds_runtime::history::History;
use threds_runtime::testing::mongo::server_or_skip;

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
        .record(&Engine::default(), &outcome, 40)
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
    assert!(history.archived(None, 50).await.unwrap().is_empty());
}
