//! The in-memory state of the embedded store, and transactions over it with an undo log.
//!
//! A collection keeps its documents keyed by an insertion sequence number, so iteration is the
//! natural (insertion) order, plus an index from id to sequence number. A transaction changes the
//! state in place and records how to undo each change: rolling back restores the state exactly,
//! committing forgets the log (after the durable copy, if any, has been written).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::query::Matcher;
use super::Error;
use threds_patterns::machine::quota::json_size;

/// A stored document (always has a string `id`).
pub(crate) type Doc = Map<String, Value>;

/// One collection.
#[derive(Debug, Default)]
pub(crate) struct Collection {
    docs: BTreeMap<u64, Doc>,
    ids: HashMap<String, u64>,
    next_seq: u64,
    /// The documents' size as JSON, bytes (for capped collections).
    bytes: u64,
}

impl Collection {
    /// Stores `doc` at `seq` (its id indexed), counting its bytes.
    fn put(&mut self, seq: u64, doc: Doc) {
        if let Some(id) = doc.get("id").and_then(Value::as_str) {
            self.ids.insert(id.to_owned(), seq);
        }
        self.bytes += json_size(&doc);
        if let Some(old) = self.docs.insert(seq, doc) {
            self.bytes = self.bytes.saturating_sub(json_size(&old));
        }
    }

    /// Takes the document at `seq` out (and its id out of the index).
    fn take(&mut self, seq: u64) -> Option<Doc> {
        let doc = self.docs.remove(&seq)?;
        if let Some(id) = doc.get("id").and_then(Value::as_str) {
            self.ids.remove(id);
        }
        self.bytes = self.bytes.saturating_sub(json_size(&doc));
        Some(doc)
    }

    /// Replaces the document at `seq`, answering the old one.
    fn swap(&mut self, seq: u64, doc: Doc) -> Option<Doc> {
        let slot = self.docs.get_mut(&seq)?;
        let added = json_size(&doc);
        let old = std::mem::replace(slot, doc);
        self.bytes = (self.bytes + added).saturating_sub(json_size(&old));
        Some(old)
    }
}

/// Every collection, plus the counter generated ids come from.
#[derive(Debug, Default)]
pub(crate) struct Store {
    collections: HashMap<String, Collection>,
    next_id: u64,
}

/// How to undo one change.
#[derive(Debug)]
enum Undo {
    Inserted {
        collection: String,
        seq: u64,
    },
    Replaced {
        collection: String,
        seq: u64,
        old: Doc,
    },
    Removed {
        collection: String,
        seq: u64,
        old: Doc,
    },
}

impl Store {
    /// Puts back a document read from durable storage (`seq` is its stored position).
    pub(crate) fn restore(&mut self, collection: &str, seq: u64, doc: Doc) -> Result<(), Error> {
        doc_id(&doc)?;
        let coll = self.collections.entry(collection.to_owned()).or_default();
        coll.next_seq = coll.next_seq.max(seq.saturating_add(1));
        coll.put(seq, doc);
        Ok(())
    }

    /// The counter the next generated id is made from.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Sets the id counter (when loading durable state).
    pub(crate) fn set_next_id(&mut self, next_id: u64) {
        self.next_id = next_id;
    }

    /// Removes the oldest documents of `collection` beyond the newest `keep` and beyond
    /// `keep_bytes` of JSON (a capped collection; the newest document always stays); answers how
    /// many were removed.
    pub(crate) fn trim(&mut self, collection: &str, keep: usize, keep_bytes: u64) -> usize {
        let Some(coll) = self.collections.get_mut(collection) else {
            return 0;
        };
        let mut removed = 0;
        while coll.docs.len() > 1 && (coll.docs.len() > keep || coll.bytes > keep_bytes) {
            let Some(&seq) = coll.docs.keys().next() else {
                break;
            };
            coll.take(seq);
            removed += 1;
        }
        removed
    }

    /// The document at `seq` of `collection`, if any.
    pub(crate) fn doc(&self, collection: &str, seq: u64) -> Option<&Doc> {
        self.collections.get(collection)?.docs.get(&seq)
    }
}

/// A document's id; documents without a string id are refused.
fn doc_id(doc: &Doc) -> Result<&str, Error> {
    doc.get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Invalid("a document id must be a string".into()))
}

/// A transaction in progress over a [`Store`]: dropped without [`Txn::commit`], it rolls back.
#[derive(Debug)]
pub(crate) struct Txn<'s> {
    store: &'s mut Store,
    undo: Vec<Undo>,
    first_id: u64,
}

impl<'s> Txn<'s> {
    /// Starts a transaction.
    pub(crate) fn begin(store: &'s mut Store) -> Self {
        let first_id = store.next_id;
        Self {
            store,
            undo: Vec::new(),
            first_id,
        }
    }

    /// The state as this transaction sees it.
    pub(crate) fn store(&self) -> &Store {
        self.store
    }

    /// The documents the transaction changed, as `(collection, seq)` (their current state is in
    /// [`Txn::store`]; a missing one was removed).
    pub(crate) fn touched(&self) -> BTreeSet<(&str, u64)> {
        self.undo
            .iter()
            .map(|u| match u {
                Undo::Inserted { collection, seq }
                | Undo::Replaced {
                    collection, seq, ..
                }
                | Undo::Removed {
                    collection, seq, ..
                } => (collection.as_str(), *seq),
            })
            .collect()
    }

    /// Did the transaction generate ids (so the counter must be saved)?
    pub(crate) fn ids_generated(&self) -> bool {
        self.store.next_id != self.first_id
    }

    /// Keeps the changes.
    pub(crate) fn commit(mut self) {
        self.undo.clear();
        self.first_id = self.store.next_id;
    }

    /// The sequence numbers of the documents matching `matcher` (all when `None`), in natural
    /// order. A plain `id` equality uses the id index.
    pub(crate) fn find(&self, collection: &str, matcher: Option<&Matcher>) -> Vec<u64> {
        let Some(coll) = self.store.collections.get(collection) else {
            return Vec::new();
        };
        let Some(matcher) = matcher else {
            return coll.docs.keys().copied().collect();
        };
        if let Some(id) = matcher.id() {
            return coll
                .ids
                .get(id)
                .filter(|seq| {
                    coll.docs
                        .get(seq)
                        .is_some_and(|doc| matcher.matches_map(doc))
                })
                .into_iter()
                .copied()
                .collect();
        }
        coll.docs
            .iter()
            .filter(|(_, doc)| matcher.matches_map(doc))
            .map(|(seq, _)| *seq)
            .collect()
    }

    /// The document at `seq`.
    pub(crate) fn get(&self, collection: &str, seq: u64) -> Option<&Doc> {
        self.store.doc(collection, seq)
    }

    /// Is there a document with this id?
    pub(crate) fn contains(&self, collection: &str, id: &str) -> bool {
        self.store
            .collections
            .get(collection)
            .is_some_and(|coll| coll.ids.contains_key(id))
    }

    /// Inserts a document (which must have a string `id`) at the end of the natural order.
    pub(crate) fn insert(&mut self, collection: &str, doc: Doc) -> Result<(), Error> {
        let id = doc_id(&doc)?.to_owned();
        let coll = self
            .store
            .collections
            .entry(collection.to_owned())
            .or_default();
        if coll.ids.contains_key(&id) {
            return Err(Error::AlreadyExists {
                collection: collection.to_owned(),
                id,
            });
        }
        let seq = coll.next_seq;
        coll.next_seq = seq.saturating_add(1);
        coll.put(seq, doc);
        self.undo.push(Undo::Inserted {
            collection: collection.to_owned(),
            seq,
        });
        Ok(())
    }

    /// Replaces the document at `seq` (its id must not change).
    pub(crate) fn replace(&mut self, collection: &str, seq: u64, doc: Doc) -> Result<(), Error> {
        let id = doc_id(&doc)?.to_owned();
        let coll = self
            .store
            .collections
            .get_mut(collection)
            .filter(|coll| coll.ids.get(&id) == Some(&seq));
        let Some(old) = coll.and_then(|coll| coll.swap(seq, doc)) else {
            return Err(Error::Invalid(format!(
                "the id of document {id} may not change"
            )));
        };
        self.undo.push(Undo::Replaced {
            collection: collection.to_owned(),
            seq,
            old,
        });
        Ok(())
    }

    /// Removes the document at `seq`.
    pub(crate) fn remove(&mut self, collection: &str, seq: u64) {
        let Some(coll) = self.store.collections.get_mut(collection) else {
            return;
        };
        if let Some(old) = coll.take(seq) {
            self.undo.push(Undo::Removed {
                collection: collection.to_owned(),
                seq,
                old,
            });
        }
    }

    /// A fresh id, unique in `collection`: the time `now` then a store-wide counter, in hex (the
    /// counter is saved with the transaction, so ids stay unique across restarts).
    pub(crate) fn new_id(&mut self, collection: &str, now: i64) -> String {
        let time = now.clamp(0, 0xffff_ffff_ffff);
        loop {
            let n = self.store.next_id;
            self.store.next_id = n.wrapping_add(1);
            let id = format!("{time:012x}{n:08x}");
            if !self.contains(collection, &id) {
                return id;
            }
        }
    }

    /// Undoes every change, newest first.
    fn undo_all(&mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Inserted { collection, seq } => {
                    if let Some(coll) = self.store.collections.get_mut(&collection) {
                        coll.take(seq);
                    }
                }
                Undo::Replaced {
                    collection,
                    seq,
                    old,
                } => {
                    if let Some(coll) = self.store.collections.get_mut(&collection) {
                        coll.swap(seq, old);
                    }
                }
                Undo::Removed {
                    collection,
                    seq,
                    old,
                } => {
                    let coll = self.store.collections.entry(collection).or_default();
                    coll.put(seq, old);
                }
            }
        }
        self.store.next_id = self.first_id;
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        self.undo_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn rollback_restores_everything() {
        let mut store = Store::default();
        let mut txn = Txn::begin(&mut store);
        txn.insert("c", doc(json!({"id": "a", "n": 1}))).unwrap();
        txn.insert("c", doc(json!({"id": "b", "n": 2}))).unwrap();
        txn.commit();
        let mut txn = Txn::begin(&mut store);
        let id = txn.new_id("c", 5);
        txn.insert("c", doc(json!({"id": id}))).unwrap();
        txn.replace("c", 0, doc(json!({"id": "a", "n": 10})))
            .unwrap();
        txn.remove("c", 1);
        assert!(txn.replace("c", 0, doc(json!({"id": "z"}))).is_err());
        assert!(matches!(
            txn.insert("c", doc(json!({"id": "a"}))),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(txn.touched().len(), 3);
        drop(txn);
        let txn = Txn::begin(&mut store);
        assert_eq!(txn.find("c", None), [0, 1]);
        assert_eq!(txn.get("c", 0), Some(&doc(json!({"id": "a", "n": 1}))));
        assert!(txn.contains("c", "b"));
        assert_eq!(txn.store().next_id(), 0);
    }
}
