//! Runs the bus contract suite against the embedded bus, in memory and durable.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use threds_runtime::bus::memory::MemoryBus;
use threds_runtime::bus::Bus;
use threds_testkit::contract::bus::{run_all, run_durability};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_bus_keeps_the_contract() {
    run_all(|| async { Arc::new(MemoryBus::new()) as Arc<dyn Bus> }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_bus_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let next = AtomicUsize::new(0);
    run_all(|| {
        let path = dir
            .path()
            .join(next.fetch_add(1, Ordering::Relaxed).to_string());
        async move { Arc::new(MemoryBus::open(&path).unwrap()) as Arc<dyn Bus> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_bus_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().to_owned();
    let bus = Arc::new(MemoryBus::open(&path).unwrap()) as Arc<dyn Bus>;
    run_durability(bus, |old: Arc<dyn Bus>| {
        // The bus must be closed (its file released) before it is opened again.
        drop(old);
        let path = path.clone();
        async move { Arc::new(MemoryBus::open(&path).unwrap()) as Arc<dyn Bus> }
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn memory_bus_keeps_the_contract_on_one_thread() {
    run_all(|| async { Arc::new(MemoryBus::new()) as Arc<dyn Bus> }).await;
}
