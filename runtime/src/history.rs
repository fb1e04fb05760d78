//! Durable history over the documents port: `EventRecord` (every event seen or sent),
//! `ThredLogRecord` (what each thred did with each event) and `ThredRecord` (archived threds),
//! the collections of spec §7, plus the queries of spec §4.9.

use crate::documents::{self, Documents};
use serde_json::{json, Value};
use std::sync::Arc;
use threds_patterns::machine::{Engine, Outcome, Record, ThredChange};

/// Collection of event records.
pub const EVENTS: &str = "EventRecord";
/// Collection of thred log records.
pub const THRED_LOG: &str = "ThredLogRecord";
/// Collection of archived threds.
pub const ARCHIVE: &str = "ThredRecord";

/// The history of one deployment.
#[derive(Clone)]
pub struct History {
    docs: Arc<dyn Documents>,
}

fn put(collection: &str, values: Value) -> Value {
    json!({"op": "put", "params": {"type": collection, "values": values}})
}

impl History {
    /// History stored in `docs`.
    pub fn new(docs: Arc<dyn Documents>) -> History {
        History { docs }
    }

    /// Records what one step produced (one transaction): its history records and the final state
    /// of every thred it terminated.
    pub async fn record(
        &self,
        engine: &Engine,
        outcome: &Outcome,
        now: i64,
    ) -> Result<(), documents::Error> {
        let mut tasks = Vec::new();
        for record in &outcome.history {
            match record {
                Record::Event {
                    event,
                    thred_id,
                    to,
                    timestamp,
                } => {
                    let mut doc =
                        json!({"eventId": event.id(), "event": event, "timestamp": timestamp});
                    if let Some(t) = thred_id {
                        doc["thredId"] = json!(t);
                    }
                    if let Some(to) = to {
                        doc["to"] = json!(to);
                    }
                    tasks.push(put(EVENTS, doc));
                }
                log @ Record::Log { .. } => {
                    let mut doc = serde_json::to_value(log).unwrap_or_default();
                    if let Value::Object(obj) = &mut doc {
                        obj.remove("record");
                    }
                    tasks.push(put(THRED_LOG, doc));
                }
            }
        }
        for change in &outcome.threds {
            if let ThredChange::Removed { state } = change {
                let pattern = engine.patterns().get(&state.pattern_id).map(|p| p.as_ref());
                tasks.push(put(
                    ARCHIVE,
                    json!({"id": state.id, "thred": state.to_json(pattern), "archivedAt": now}),
                ));
            }
        }
        if tasks.is_empty() {
            return Ok(());
        }
        self.docs.run(&Value::Array(tasks), now).await.map(|_| ())
    }

    /// Event records of `thred_id`, oldest first; with `visible_to`, only those sent to or by it.
    pub async fn events(
        &self,
        thred_id: &str,
        visible_to: Option<&str>,
        now: i64,
    ) -> Result<Vec<Value>, documents::Error> {
        let mut matcher = json!({"thredId": thred_id});
        if let Some(p) = visible_to {
            matcher["$or"] = json!([{"to": p}, {"event.source.id": p}]);
        }
        let task = json!({"op": "get", "params": {"type": EVENTS, "matcher": matcher,
            "collector": {"sort": [{"field": "timestamp"}]}}});
        Ok(as_array(self.docs.run(&task, now).await?))
    }

    /// The latest event record of `thred_id` sent to or by `participant`.
    pub async fn last_event(
        &self,
        thred_id: &str,
        participant: &str,
        now: i64,
    ) -> Result<Option<Value>, documents::Error> {
        let matcher = json!({"thredId": thred_id, "$or": [{"to": participant}, {"event.source.id": participant}]});
        let task = json!({"op": "get", "params": {"type": EVENTS, "matcher": matcher,
            "collector": {"sort": [{"field": "timestamp", "desc": true}], "limit": 1}}});
        Ok(as_array(self.docs.run(&task, now).await?)
            .into_iter()
            .next())
    }

    /// Archived threds (their Thred JSON) matching `matcher` (paths start with `thred.`), or all.
    pub async fn archived(
        &self,
        matcher: Option<Value>,
        now: i64,
    ) -> Result<Vec<Value>, documents::Error> {
        let task = json!({"op": "get", "params": {"type": ARCHIVE, "matcher": matcher.unwrap_or_else(|| json!({}))}});
        Ok(as_array(self.docs.run(&task, now).await?)
            .into_iter()
            .filter_map(|mut r| r.get_mut("thred").map(Value::take))
            .collect())
    }

    /// The thred log of `thred_id`, oldest first.
    pub async fn thred_log(
        &self,
        thred_id: &str,
        now: i64,
    ) -> Result<Vec<Value>, documents::Error> {
        let task = json!({"op": "get", "params": {"type": THRED_LOG, "matcher": {"thredId": thred_id},
            "collector": {"sort": [{"field": "timestamp"}]}}});
        Ok(as_array(self.docs.run(&task, now).await?))
    }
}

fn as_array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}
