//! Durable history: `EventRecord` (every event seen or sent), `ThredLogRecord` (what each thred
//! did with each event) and `ThredRecord` (archived threds), the collections of spec §7, and the
//! queries of spec §4.9 over them.
//!
//! History travels as a stream. The engine puts the history documents of a committed batch of
//! steps into the same outbox as the batch's messages, in the same commit, as records of the
//! history topic; so a step's history is exactly as durable as its effects, and
//! the engine never waits for the documents store ([`Encoder`]). The history sink ([`sink::Sink`], run by the
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

/// An event record as stored (borrowing from the step's outcome).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventDoc<'a> {
    id: &'a str,
    event_id: &'a str,
    event: &'a Value,
    timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    thred_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a [String]>,
}

/// A thred log record as stored (borrowing from the step's outcome).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogDoc<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a threds_patterns::machine::history::LogKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thred_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_reaction: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_reaction: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    timestamp: i64,
    /// The version the thred ran, when the step changed it (it always does when it transitions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern_version: Option<u32>,
}

/// An archived thred as stored.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArchiveDoc<'a> {
    id: &'a str,
    thred: Value,
    archived_at: i64,
}

/// One entry as it goes on the topic (the shape [`Entry`] reads back).
#[derive(Serialize)]
struct EntryOut<'a, D> {
    collection: &'a str,
    document: D,
}

/// Builds the records of the history topic for a batch: every document serialized once, straight
/// into the record it goes out in.
pub struct Encoder<'t> {
    topology: &'t Topology,
    key: String,
    records: Vec<Outgoing>,
    /// The record being filled: `[` and the entries so far, separated by commas.
    open: Vec<u8>,
    entries: usize,
    /// One entry's JSON.
    scratch: Vec<u8>,
}

impl<'t> Encoder<'t> {
    /// Records of `topology`'s history topic keyed by `key` (a thred of the batch: the history
    /// of a batch lands in its thred's partition).
    pub fn new(topology: &'t Topology, key: &str) -> Encoder<'t> {
        Encoder {
            topology,
            key: key.to_owned(),
            records: Vec::new(),
            open: Vec::new(),
            entries: 0,
            scratch: Vec::new(),
        }
    }

    /// Adds the history documents one step's outcome adds; `ids` is the step's own id seed (the
    /// same each time the step runs), from which every document's id derives, except an
    /// archived thred's, which is the thred's id.
    pub fn step(&mut self, engine: &Machine, outcome: &Outcome, ids: &str, now: i64) {
        let mut n = 0;
        let mut next_id = || {
            n += 1;
            format!("{ids}/h{n}")
        };
        for record in &outcome.history {
            match record {
                Record::Event {
                    event,
                    thred_id,
                    to,
                    timestamp,
                } => {
                    let id = next_id();
                    self.add(
                        EVENTS,
                        EventDoc {
                            id: &id,
                            event_id: event.id(),
                            event: event.as_value(),
                            timestamp: *timestamp,
                            thred_id: thred_id.as_deref(),
                            to: to.as_deref(),
                        },
                    );
                }
                Record::Log {
                    kind,
                    event_id,
                    thred_id,
                    pattern_id,
                    from_reaction,
                    to_reaction,
                    detail,
                    timestamp,
                } => {
                    let id = next_id();
                    let pattern_version = thred_id.as_deref().and_then(|id| {
                        outcome
                            .threds
                            .iter()
                            .find(|c| c.thred_id() == id)
                            .and_then(|c| c.state().pattern_version)
                    });
                    self.add(
                        THRED_LOG,
                        LogDoc {
                            id: &id,
                            kind,
                            event_id: event_id.as_deref(),
                            thred_id: thred_id.as_deref(),
                            pattern_id: pattern_id.as_deref(),
                            from_reaction: from_reaction.as_deref(),
                            to_reaction: to_reaction.as_deref(),
                            detail: detail.as_deref(),
                            timestamp: *timestamp,
                            pattern_version,
                        },
                    );
                }
            }
        }
        for change in &outcome.threds {
            if let ThredChange::Removed { state } = change {
                let pattern = engine.pattern_of(state).map(|p| p.as_ref());
                self.add(
                    ARCHIVE,
                    ArchiveDoc {
                        id: &state.id,
                        thred: state.to_json(pattern),
                        archived_at: now,
                    },
                );
            }
        }
    }

    /// Appends one entry to the open record, first closing it when the entry would take it past
    /// [`MAX_RECORD_BYTES`] (a record always takes at least one entry).
    fn add(&mut self, collection: &str, document: impl Serialize) {
        self.scratch.clear();
        let entry = EntryOut {
            collection,
            document,
        };
        if let Err(e) = serde_json::to_writer(&mut self.scratch, &entry) {
            tracing::error!(error = %e, collection, "a history document could not be encoded; left out");
            return;
        }
        if self.entries > 0 && self.open.len() + self.scratch.len() + 2 > MAX_RECORD_BYTES {
            self.close();
        }
        self.open.push(if self.entries == 0 { b'[' } else { b',' });
        self.open.extend_from_slice(&self.scratch);
        self.entries += 1;
    }

    fn close(&mut self) {
        if self.entries == 0 {
            return;
        }
        self.open.push(b']');
        self.records.push(Outgoing {
            partition: None,
            topic: self.topology.history().to_owned(),
            key: Some(self.key.clone()),
            payload: std::mem::take(&mut self.open),
        });
        self.entries = 0;
    }

    /// The records, in order.
    pub fn finish(mut self) -> Vec<Outgoing> {
        self.close();
        self.records
    }
}

/// The history documents one step's outcome adds (see [`Encoder::step`]).
pub fn entries_of(engine: &Machine, outcome: &Outcome, ids: &str, now: i64) -> Vec<Entry> {
    let topology = Topology::default();
    let mut encoder = Encoder::new(&topology, "");
    encoder.step(engine, outcome, ids, now);
    encoder
        .finish()
        .iter()
        .flat_map(|r| decode(&r.payload).unwrap_or_default())
        .collect()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn outcome() -> Outcome {
        let record = |v: Value| serde_json::from_value::<Record>(v).unwrap();
        let event = json!({"id": "e1", "type": "t", "source": {"id": "p1"}, "thredId": "th1"});
        Outcome {
            history: vec![
                record(
                    json!({"record": "event", "event": event, "thredId": "th1", "timestamp": 5}),
                ),
                record(
                    json!({"record": "log", "type": "m", "eventId": "e1", "thredId": "th1", "timestamp": 5}),
                ),
            ],
            ..Outcome::default()
        }
    }

    #[test]
    fn a_step_names_its_documents_the_same_each_time_it_runs() {
        let engine = Machine::default();
        let first = entries_of(&engine, &outcome(), "0-42", 9);
        assert_eq!(first, entries_of(&engine, &outcome(), "0-42", 9));
        let ids: Vec<&Value> = first.iter().map(|e| &e.document["id"]).collect();
        assert_eq!(ids, [&json!("0-42/h1"), &json!("0-42/h2")]);
        assert_eq!(first[0].collection, EVENTS);
        assert_eq!(first[1].collection, THRED_LOG);
        assert_ne!(entries_of(&engine, &outcome(), "0-43", 9), first);
    }

    #[test]
    fn a_large_batch_is_split_over_records_that_decode_back() {
        let big = "x".repeat(MAX_RECORD_BYTES / 3);
        let history = (0..7)
            .map(|n| {
                let event = json!({"id": format!("e{n}"), "type": "t", "source": {"id": "p1"},
                    "data": {"title": big}});
                serde_json::from_value::<Record>(
                    json!({"record": "event", "event": event, "thredId": "th1", "timestamp": n}),
                )
                .unwrap()
            })
            .collect();
        let outcome = Outcome {
            history,
            ..Outcome::default()
        };
        let topology = Topology::default();
        let mut encoder = Encoder::new(&topology, "th1");
        encoder.step(&Machine::default(), &outcome, "s", 0);
        let records = encoder.finish();
        assert!(records.len() >= 3, "{} records", records.len());
        let mut back = Vec::new();
        for r in &records {
            assert_eq!(r.topic, "threds.history");
            assert_eq!(r.key.as_deref(), Some("th1"));
            assert!(r.payload.len() <= MAX_RECORD_BYTES);
            back.extend(decode(&r.payload).unwrap());
        }
        let ids: Vec<String> = back
            .iter()
            .map(|e| e.document["id"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = (1..=7).map(|n| format!("s/h{n}")).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn a_record_that_is_not_history_is_refused_naming_where() {
        assert!(decode(b"{}").unwrap_err().contains("not a history record"));
        let no_id = br#"[{"collection": "EventRecord", "document": {"x": 1}}]"#;
        assert!(decode(no_id).unwrap_err().starts_with("[0].document.id"));
        let bad = br#"[{"collection": "system.users", "document": {"id": "a"}}]"#;
        assert!(decode(bad).unwrap_err().starts_with("[0].collection"));
    }
}
