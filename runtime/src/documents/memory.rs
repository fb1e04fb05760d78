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
        })
    }

    /// A durable store kept in `dir/documents.redb` (created when missing); every successful
    /// `run` is on disk when it returns. Only one store may have the file open at a time.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let (disk, store) = Disk::open(dir)?;
        Ok(Self::with(Inner {
            store,
            disk: Some(disk),
        }))
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
        // A panic while the lock was held unwound through the transaction's rollback, so the state
        // is consistent and a poisoned lock can be taken over.
        let mut guard = inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Inner { store, disk } = &mut *guard;
        let mut txn = Txn::begin(store);
        let result = run_entry(&mut txn, &entry, now)?;
        if let Some(disk) = disk {
            let touched = txn.touched();
            if !touched.is_empty() || txn.ids_generated() {
                disk.save(txn.store(), &touched, txn.ids_generated())?;
            }
        }
        txn.commit();
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
}
