//! Runs the documents contract on the embedded store, in memory and durable, plus checks specific
//! to the embedded adapter.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use tempfile::TempDir;
use threds_runtime::contract::documents::{run_all, run_durability};
use threds_runtime::documents::{Documents, MemoryDocuments};

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
