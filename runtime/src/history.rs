//! Durable history over the documents port: `EventRecord` (every event seen or sent),
//! `ThredLogRecord` (what each thred did with each event) and `ThredRecord` (archived threds),
//! the collections of spec §7, plus the queries of spec §4.9.
//!
//! History is written after the steps it records are committed, and only on a best-effort basis
//! (a failed write is logged, never retried at the expense of the steps). With
//! [`History::in_background`], the records of many steps go to the documents port together, one
//! `run` per batch, from a task of their own, so the engine's workers do not wait for them; the
//! queued records are bounded (the workers wait once too many are queued), and every query of
//! this `History` waits for the records queued before it (a process reads its own writes).

use crate::documents::{self, Documents};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use threds_patterns::machine::{Machine, Outcome, Record, ThredChange};
use tokio::sync::{mpsc, watch};

/// Most batches of records queued for the background writer before recording waits.
const QUEUED_BATCHES: usize = 256;
/// Most records the background writer puts in one `run`.
const WRITE_BATCH: usize = 1_000;

pub use crate::topology::collections::{ARCHIVE, EVENTS, THRED_LOG};

/// The history of one deployment.
#[derive(Clone)]
pub struct History {
    docs: Arc<dyn Documents>,
    background: Option<Arc<Background>>,
}

/// The queue of a background writer.
struct Background {
    queue: mpsc::Sender<(Vec<Value>, i64)>,
    /// Batches queued so far.
    queued: AtomicU64,
    /// Batches written (or given up) so far.
    written: watch::Receiver<u64>,
}

fn put(collection: &str, values: Value) -> Value {
    json!({"op": "put", "params": {"type": collection, "values": values}})
}

impl History {
    /// History stored in `docs`.
    pub fn new(docs: Arc<dyn Documents>) -> History {
        History {
            docs,
            background: None,
        }
    }

    /// Writes from a background task from now on (needs a Tokio runtime; see the module docs).
    pub fn in_background(mut self) -> History {
        let (queue, mut batches) = mpsc::channel::<(Vec<Value>, i64)>(QUEUED_BATCHES);
        let (done, written) = watch::channel(0u64);
        let docs = self.docs.clone();
        tokio::spawn(async move {
            let mut count = 0u64;
            while let Some((mut tasks, mut now)) = batches.recv().await {
                let mut taken = 1u64;
                while tasks.len() < WRITE_BATCH {
                    match batches.try_recv() {
                        Ok((more, at)) => {
                            tasks.extend(more);
                            now = now.max(at);
                            taken += 1;
                        }
                        Err(_) => break,
                    }
                }
                let records = tasks.len();
                if let Err(e) = docs.run(&Value::Array(tasks), now).await {
                    tracing::warn!(error = %e, records, "history: could not record steps");
                }
                count += taken;
                done.send_replace(count);
            }
        });
        self.background = Some(Arc::new(Background {
            queue,
            queued: AtomicU64::new(0),
            written,
        }));
        self
    }

    /// Waits until the records queued so far are written (nothing to wait for without a
    /// background writer).
    async fn settle(&self) {
        let Some(background) = &self.background else {
            return;
        };
        let target = background.queued.load(Ordering::Acquire);
        let mut written = background.written.clone();
        // An error means the writer stopped: nothing more will be written.
        let _ = written.wait_for(|n| *n >= target).await;
    }

    /// Records what steps produced: their history records and the final state of every thred
    /// they terminated (one transaction, or queued for the background writer).
    pub async fn record_all(
        &self,
        engine: &Machine,
        outcomes: &[Outcome],
        now: i64,
    ) -> Result<(), documents::Error> {
        let tasks: Vec<Value> = outcomes
            .iter()
            .flat_map(|o| tasks_of(engine, o, now))
            .collect();
        if tasks.is_empty() {
            return Ok(());
        }
        match &self.background {
            Some(background) => {
                background.queued.fetch_add(1, Ordering::AcqRel);
                if background.queue.send((tasks, now)).await.is_err() {
                    return Err(documents::Error::Backend(
                        "the history writer has stopped".into(),
                    ));
                }
                Ok(())
            }
            None => self.docs.run(&Value::Array(tasks), now).await.map(|_| ()),
        }
    }

    /// Records what one step produced (see [`History::record_all`]).
    pub async fn record(
        &self,
        engine: &Machine,
        outcome: &Outcome,
        now: i64,
    ) -> Result<(), documents::Error> {
        self.record_all(engine, std::slice::from_ref(outcome), now)
            .await
    }

    /// Event records of `thred_id`, oldest first; with `visible_to`, only those sent to or by it.
    pub async fn events(
        &self,
        thred_id: &str,
        visible_to: Option<&str>,
        now: i64,
    ) -> Result<Vec<Value>, documents::Error> {
        self.settle().await;
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
        self.settle().await;
        let matcher = json!({"thredId": thred_id, "$or": [{"to": participant}, {"event.source.id": participant}]});
        let task = json!({"op": "get", "params": {"type": EVENTS, "matcher": matcher,
            "collector": {"sort": [{"field": "timestamp", "desc": true}], "limit": 1}}});
        Ok(as_array(self.docs.run(&task, now).await?)
            .into_iter()
            .next())
    }

    /// At most `limit` archived threds (their Thred JSON) matching `matcher` (paths start with
    /// `thred.`; `None`: all), by id, after `after` ("": from the first).
    pub async fn archived(
        &self,
        matcher: Option<Value>,
        after: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Value>, documents::Error> {
        self.settle().await;
        let matcher = match (matcher, after) {
            (None, "") => json!({}),
            (Some(m), "") => m,
            (None, after) => json!({"id": {"$gt": after}}),
            // `$or` of one matcher keeps the asker's matcher whole, whatever its keys.
            (Some(m), after) => json!({"$or": [m], "id": {"$gt": after}}),
        };
        let task = json!({"op": "get", "params": {"type": ARCHIVE, "matcher": matcher,
            "collector": {"sort": [{"field": "id"}], "limit": limit}}});
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
        self.settle().await;
        let task = json!({"op": "get", "params": {"type": THRED_LOG, "matcher": {"thredId": thred_id},
            "collector": {"sort": [{"field": "timestamp"}]}}});
        Ok(as_array(self.docs.run(&task, now).await?))
    }
}

/// The documents one step's outcome adds to the history.
fn tasks_of(engine: &Machine, outcome: &Outcome, now: i64) -> Vec<Value> {
    let mut tasks = Vec::new();
    for record in &outcome.history {
        match record {
            Record::Event {
                event,
                thred_id,
                to,
                timestamp,
            } => {
                let mut doc = json!({"eventId": event.id(), "event": event.as_value().clone(), "timestamp": timestamp});
                if let Some(t) = thred_id {
                    doc["thredId"] = json!(t);
                }
                if let Some(to) = to {
                    doc["to"] = json!(to);
                }
                tasks.push(put(EVENTS, doc));
            }
            log @ Record::Log { thred_id, .. } => {
                let mut doc = serde_json::to_value(log).unwrap_or_default();
                if let Value::Object(obj) = &mut doc {
                    obj.remove("record");
                    // The version the thred ran, when the step changed it (it always does when
                    // it transitions).
                    let version = thred_id.as_deref().and_then(|id| {
                        outcome
                            .threds
                            .iter()
                            .find(|c| c.thred_id() == id)
                            .and_then(|c| c.state().pattern_version)
                    });
                    if let Some(v) = version {
                        obj.insert("patternVersion".into(), json!(v));
                    }
                }
                tasks.push(put(THRED_LOG, doc));
            }
        }
    }
    for change in &outcome.threds {
        if let ThredChange::Removed { state } = change {
            let pattern = engine.pattern_of(state).map(|p| p.as_ref());
            tasks.push(put(
                ARCHIVE,
                json!({"id": state.id, "thred": state.to_json(pattern), "archivedAt": now}),
            ));
        }
    }
    tasks
}

fn as_array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}
