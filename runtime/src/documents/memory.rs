//! The embedded documents store (for `threds dev`): the whole state in memory, optionally backed by
//! a redb file so that it survives restarts.
//!
//! Every `run` is one transaction: its tasks change the in-memory state (recording how to undo
//! each change); on success the touched documents are written to the file in one durable redb
//! transaction before `run` returns, on any failure (including the write) the changes are undone.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde_json::Value;

use super::durable::Disk;
use super::exec::run_entry;
use super::state::{Store, Txn};
use super::task::Entry;
use super::{Documents, Error};

/// The embedded documents store: in memory ([`MemoryDocuments::new`]) or durable
/// ([`MemoryDocuments::open`]).
#[derive(Debug, Clone)]
pub struct MemoryDocuments {
    inner: Arc<Mutex<Inner>>,
    durable: bool,
}

/// The state and its durable copy.
#[derive(Debug)]
struct Inner {
    store: Store,
    disk: Option<Disk>,
    /// Capped collections (memory mode only): name → how many documents, and how many bytes of
    /// them, to keep.
    caps: Vec<(String, usize, u64)>,
}

impl Default for MemoryDocuments {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryDocuments {
    /// An empty store that lives in memory only.
    pub fn new() -> Self {
        Self::with(Inner {
            store: Store::default(),
            disk: None,
            caps: Vec::new(),
        })
    }

    /// A durable store kept in `dir/documents.redb` (created when missing); every successful
    /// `run` is on disk when it returns. Only one store may have the file open at a time.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let (disk, store) = Disk::open(dir)?;
        Ok(Self::with(Inner {
            store,
            disk: Some(disk),
            caps: Vec::new(),
        }))
    }

    /// Caps `collection` at its newest `keep` documents holding at most `keep_bytes` bytes of
    /// JSON (the newest document always stays): older ones are removed as new ones are written
    /// (like a MongoDB capped collection). Applies to the in-memory store only; a durable store
    /// keeps everything.
    pub fn capped(self, collection: &str, keep: usize, keep_bytes: u64) -> Self {
        if !self.durable {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.caps.push((collection.to_owned(), keep, keep_bytes));
        }
        self
    }

    fn with(inner: Inner) -> Self {
        let durable = inner.disk.is_some();
        Self {
            inner: Arc::new(Mutex::new(inner)),
            durable,
        }
    }

    /// Validates an entry, then runs it while holding the state lock.
    fn run_blocking(inner: &Mutex<Inner>, entry: &Value, now: i64) -> Result<Value, Error> {
        let entry = Entry::parse(entry)?;
        Self::transact(inner, |txn| run_entry(txn, &entry, now))
    }

    /// Inserts the documents whose ids are not stored yet, while holding the state lock.
    fn save_blocking(
        inner: &Mutex<Inner>,
        collection: &str,
        documents: &[Value],
        now: i64,
    ) -> Result<Value, Error> {
        let mut fresh = Vec::with_capacity(documents.len());
        for document in documents {
            let (map, id) = super::saved_id(collection, document)?;
            fresh.push((map, id));
        }
        Self::transact(inner, |txn| {
            for (map, id) in &fresh {
                if !txn.contains(collection, id) {
                    let mut doc = super::exec::new_doc((*id).to_owned(), map);
                    doc.insert("created".into(), Value::from(now));
                    doc.insert("modified".into(), Value::from(now));
                    txn.insert(collection, doc)?;
                }
            }
            Ok(Value::Null)
        })
    }

    /// Runs `change` as one transaction while holding the state lock: written to the file (when
    /// durable) before it returns, undone on any failure.
    fn transact(
        inner: &Mutex<Inner>,
        change: impl FnOnce(&mut Txn<'_>) -> Result<Value, Error>,
    ) -> Result<Value, Error> {
        // A panic while the lock was held unwound through the transaction's rollback, so the state
        // is consistent and a poisoned lock can be taken over.
        let mut guard = inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Inner { store, disk, caps } = &mut *guard;
        let mut txn = Txn::begin(store);
        let result = change(&mut txn)?;
        if let Some(disk) = disk {
            let touched = txn.touched();
            if !touched.is_empty() || txn.ids_generated() {
                disk.save(txn.store(), &touched, txn.ids_generated())?;
            }
        }
        txn.commit();
        for (collection, keep, keep_bytes) in caps.iter() {
            store.trim(collection, *keep, *keep_bytes);
        }
        Ok(result)
    }
}

#[async_trait]
impl Documents for MemoryDocuments {
    async fn run(&self, entry: &Value, now: i64) -> Result<Value, Error> {
        // The durable store writes (and syncs) a file: do that off the async workers when there
        // is a Tokio runtime to do it on.
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .filter(|_| self.durable);
        let Some(runtime) = runtime else {
            return Self::run_blocking(&self.inner, entry, now);
        };
        let inner = Arc::clone(&self.inner);
        let entry = entry.clone();
        runtime
            .spawn_blocking(move || Self::run_blocking(&inner, &entry, now))
            .await
            .map_err(|e| Error::Backend(format!("documents task failed: {e}")))?
    }

    async fn save_all(&self, collection: &str, documents: &[Value], now: i64) -> Result<(), Error> {
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .filter(|_| self.durable);
        let Some(runtime) = runtime else {
            return Self::save_blocking(&self.inner, collection, documents, now).map(|_| ());
        };
        let inner = Arc::clone(&self.inner);
        let (collection, documents) = (collection.to_owned(), documents.to_vec());
        runtime
            .spawn_blocking(move || Self::save_blocking(&inner, &collection, &documents, now))
            .await
            .map_err(|e| Error::Backend(format!("documents task failed: {e}")))?
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_capped_collection_keeps_its_newest_documents() {
        let docs = MemoryDocuments::new().capped("Log", 3, u64::MAX);
        for i in 0..10 {
            let put = json!({"op": "put", "params": {"type": "Log", "values": {"id": format!("d{i}"), "n": i}}});
            docs.run(&put, 0).await.unwrap();
            let other = json!({"op": "put", "params": {"type": "Other", "values": {"id": format!("o{i}")}}});
            docs.run(&other, 0).await.unwrap();
        }
        let all = json!({"op": "get", "params": {"type": "Log", "matcher": {}}});
        let got = docs.run(&all, 0).await.unwrap();
        let ns: Vec<i64> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, [7, 8, 9]);
        let gone = json!({"op": "get", "params": {"type": "Log", "matcher": {"id": "d0"}}});
        assert_eq!(docs.run(&gone, 0).await.unwrap(), json!([]));
        let others = json!({"op": "get", "params": {"type": "Other", "matcher": {}}});
        assert_eq!(
            docs.run(&others, 0)
                .await
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            10,
            "other collections are not capped"
        );
    }

    #[tokio::test]
    async fn a_capped_collection_also_keeps_within_its_bytes() {
        let docs = MemoryDocuments::new().capped("Log", 1_000, 20_000);
        let pad = "x".repeat(1_000);
        for i in 0..100 {
            let put = json!({"op": "put", "params": {"type": "Log", "values": {"id": format!("d{i:03}"), "pad": pad}}});
            docs.run(&put, 0).await.unwrap();
        }
        // A document the size of the whole budget replaces everything before it.
        let all = json!({"op": "get", "params": {"type": "Log", "matcher": {}}});
        let kept = docs.run(&all, 0).await.unwrap();
        let kept = kept.as_array().unwrap();
        let bytes: usize = kept.iter().map(|d| d.to_string().len()).sum();
        assert!(bytes <= 20_000, "{bytes} bytes kept");
        assert!(kept.len() >= 15, "{} kept", kept.len());
        assert_eq!(kept.last().unwrap()["id"], "d099", "the newest are kept");
        let huge = json!({"op": "put", "params": {"type": "Log", "values": {"id": "huge", "pad": "y".repeat(50_000)}}});
        docs.run(&huge, 0).await.unwrap();
        let kept = docs.run(&all, 0).await.unwrap();
        assert_eq!(
            kept.as_array().unwrap().len(),
            1,
            "the newest document always stays"
        );
    }
}
