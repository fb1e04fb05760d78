//! Durable history: `EventRecord` (every event seen or sent), `ThredLogRecord` (what each thred
//! did with each event) and `ThredRecord` (archived threds), the collections of spec §7, and the
//! queries of spec §4.9 over them.
//!
//! History travels as a stream. The engine puts the history documents of a committed batch of
//! steps into the same outbox as the batch's messages, in the same commit, as records of the
//! history topic ([`records_of`]); so a step's history is exactly as durable as its effects, and
//! the engine never waits for the documents store. The history sink ([`sink::Sink`], run by the
//! persistence role) writes them to the documents store in bulk under ids fixed by the steps that
//! made them — a record delivered twice writes nothing new — and commits its offsets only after
//! the write; while the store is down it backs off, and it catches up once the store is back.
//!
//! Queries read the documents store. [`History::caught_up`] first waits (a bounded time) for the
//! sink to write what the history topic held when it was called, and answers how many records the
//! sink is still behind, for the reply to say so.

pub mod sink;

use crate::bus::{Bus, Lag};
use crate::documents::{self, Documents};
use crate::store::Outgoing;
use crate::topology::Topology;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use threds_patterns::machine::{Machine, Outcome, Record, ThredChange};

pub use crate::topology::collections::{ARCHIVE, EVENTS, THRED_LOG};

/// Most bytes of history documents one record of the history topic carries (a batch with more
/// is split over several records).
pub const MAX_RECORD_BYTES: usize = 512 * 1024;

/// How long [`History::caught_up`] waits by default for the sink.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// One history document on its way to the documents store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The collection ([`EVENTS`], [`THRED_LOG`] or [`ARCHIVE`]).
    pub collection: String,
    /// The document, with the `id` it is stored under.
    pub document: Map<String, Value>,
}

/// The history documents one step's outcome adds; `ids` is the step's own id seed (the same
/// each time the step runs), from which every document's id derives, except an archived
/// thred's, which is the thred's id.
pub fn entries_of(engine: &Machine, outcome: &Outcome, ids: &str, now: i64) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut add = |collection: &str, mut document: Map<String, Value>| {
        if !document.contains_key("id") {
            let id = format!("{ids}/h{}", entries.len() + 1);
            document.insert("id".into(), Value::String(id));
        }
        entries.push(Entry {
            collection: collection.to_owned(),
            document,
        });
    };
    for record in &outcome.history {
        match record {
            Record::Event {
                event,
                thred_id,
                to,
                timestamp,
            } => {
                let mut doc = Map::new();
                doc.insert("eventId".into(), json!(event.id()));
                doc.insert("event".into(), event.as_value().clone());
                doc.insert("timestamp".into(), json!(timestamp));
                if let Some(t) = thred_id {
                    doc.insert("thredId".into(), json!(t));
                }
                if let Some(to) = to {
                    doc.insert("to".into(), json!(to));
                }
                add(EVENTS, doc);
            }
            log @ Record::Log { thred_id, .. } => {
                let Ok(Value::Object(mut doc)) = serde_json::to_value(log) else {
                    continue;
                };
                doc.remove("record");
                // The version the thred ran, when the step changed it (it always does when it
                // transitions).
                let version = thred_id.as_deref().and_then(|id| {
                    outcome
                        .threds
                        .iter()
                        .find(|c| c.thred_id() == id)
                        .and_then(|c| c.state().pattern_version)
                });
                if let Some(v) = version {
                    doc.insert("patternVersion".into(), json!(v));
                }
                add(THRED_LOG, doc);
            }
        }
    }
    for change in &outcome.threds {
        if let ThredChange::Removed { state } = change {
            let pattern = engine.pattern_of(state).map(|p| p.as_ref());
            let mut doc = Map::new();
            doc.insert("id".into(), json!(state.id));
            doc.insert("thred".into(), state.to_json(pattern));
            doc.insert("archivedAt".into(), json!(now));
            add(ARCHIVE, doc);
        }
    }
    entries
}

/// Records of the history topic carrying `entries` (at most [`MAX_RECORD_BYTES`] of documents
/// each, but never fewer than one document), keyed by `key` (a thred of the batch: the history
/// of a batch lands in its thred's partition).
pub fn records_of(entries: &[Entry], key: &str, topology: &Topology) -> Vec<Outgoing> {
    let mut records = Vec::new();
    let mut chunk: Vec<&Entry> = Vec::new();
    let mut bytes = 0;
    let mut flush = |chunk: &mut Vec<&Entry>| {
        if chunk.is_empty() {
            return;
        }
        if let Ok(payload) = serde_json::to_vec(chunk) {
            records.push(Outgoing {
                topic: topology.history().to_owned(),
                key: Some(key.to_owned()),
                payload,
            });
        }
        chunk.clear();
    };
    for entry in entries {
        let size = serde_json::to_vec(&entry.document).map_or(0, |d| d.len());
        if bytes + size > MAX_RECORD_BYTES {
            flush(&mut chunk);
            bytes = 0;
        }
        bytes += size;
        chunk.push(entry);
    }
    flush(&mut chunk);
    records
}

/// The entries a record of the history topic carries, or why it is not one.
pub fn decode(payload: &[u8]) -> Result<Vec<Entry>, String> {
    let entries: Vec<Entry> = serde_json::from_slice(payload)
        .map_err(|e| format!("not a history record (an array of {{collection, document}}): {e}"))?;
    for (i, entry) in entries.iter().enumerate() {
        if !documents::valid_collection(&entry.collection) {
            return Err(format!(
                "[{i}].collection: '{}' is not a valid collection name",
                entry.collection
            ));
        }
        if !entry.document.get("id").is_some_and(Value::is_string) {
            return Err(format!("[{i}].document.id: a string id is required"));
        }
    }
    Ok(entries)
}

/// The history of one deployment: its queries, and where the sink stands.
#[derive(Clone)]
pub struct History {
    docs: Arc<dyn Documents>,
    stream: Option<Stream>,
}

/// The history topic and the sink's group, for [`History::caught_up`].
#[derive(Clone)]
struct Stream {
    bus: Arc<dyn Bus>,
    topic: String,
    group: String,
    wait: Duration,
}

impl History {
    /// History stored in `docs`.
    pub fn new(docs: Arc<dyn Documents>) -> History {
        History { docs, stream: None }
    }

    /// Reads how far the history sink is behind on `topology`'s history topic of `bus`, waiting
    /// up to `wait` for it in [`History::caught_up`].
    pub fn following(mut self, bus: Arc<dyn Bus>, topology: &Topology, wait: Duration) -> History {
        self.stream = Some(Stream {
            bus,
            topic: topology.history().to_owned(),
            group: topology.history_group(),
            wait,
        });
        self
    }

    /// Waits until the sink has written everything the history topic held when called, or for
    /// the bounded wait; answers how many records it is still behind (0: caught up, or nothing to
    /// follow). A lag that cannot be read counts as caught up (and is logged).
    pub async fn caught_up(&self) -> u64 {
        let Some(stream) = &self.stream else {
            return 0;
        };
        let read = || async {
            match stream.bus.lag(&stream.group, &stream.topic).await {
                Ok(lags) => Some(lags),
                Err(e) => {
                    tracing::warn!(error = %e, topic = stream.topic, "could not read how far the history sink is behind");
                    None
                }
            }
        };
        let Some(first) = read().await else {
            return 0;
        };
        // The end of each partition now: written once the group's position reaches it.
        let targets: Vec<(u32, u64)> = first.iter().map(|l| (l.partition, l.end)).collect();
        let behind = |lags: &[Lag]| -> u64 {
            targets
                .iter()
                .map(|(p, end)| {
                    let position = lags
                        .iter()
                        .find(|l| l.partition == *p)
                        .map_or(0, |l| l.end.saturating_sub(l.records));
                    end.saturating_sub(position)
                })
                .sum()
        };
        let mut left = behind(&first);
        let deadline = Instant::now() + stream.wait;
        let mut pause = Duration::from_millis(2);
        while left > 0 && Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
            let Some(lags) = read().await else {
                return 0;
            };
            left = behind(&lags);
        }
        left
    }

    /// Writes `entries` now, straight to the documents store (what the sink does with the
    /// entries it reads; for tools and tests that run steps without a sink).
    pub async fn write(&self, entries: &[Entry], now: i64) -> Result<(), documents::Error> {
        let entries: Vec<&Entry> = entries.iter().collect();
        save(self.docs.as_ref(), &entries, now).await
    }

    /// Records what one step produced straight to the documents store, with ids from `ids` (see
    /// [`entries_of`]).
    pub async fn record(
        &self,
        engine: &Machine,
        outcome: &Outcome,
        ids: &str,
        now: i64,
    ) -> Result<(), documents::Error> {
        self.write(&entries_of(engine, outcome, ids, now), now)
            .await
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

    /// At most `limit` archived threds (their Thred JSON) matching `matcher` (paths start with
    /// `thred.`; `None`: all), by id, after `after` ("": from the first).
    pub async fn archived(
        &self,
        matcher: Option<Value>,
        after: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Value>, documents::Error> {
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
        let task = json!({"op": "get", "params": {"type": THRED_LOG, "matcher": {"thredId": thred_id},
            "collector": {"sort": [{"field": "timestamp"}]}}});
        Ok(as_array(self.docs.run(&task, now).await?))
    }
}

/// Saves `entries` collection by collection (each collection's documents in one bulk write).
async fn save(docs: &dyn Documents, entries: &[&Entry], now: i64) -> Result<(), documents::Error> {
    let mut by_collection: Vec<(&str, Vec<Value>)> = Vec::new();
    for entry in entries {
        let document = Value::Object(entry.document.clone());
        match by_collection
            .iter_mut()
            .find(|(c, _)| *c == entry.collection)
        {
            Some((_, documents)) => documents.push(document),
            None => by_collection.push((&entry.collection, vec![document])),
        }
    }
    for (collection, documents) in by_collection {
        docs.save_all(collection, &documents, now).await?;
    }
    Ok(())
}

fn as_array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}
