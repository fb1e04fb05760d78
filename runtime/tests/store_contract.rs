//! The store contract (every suite), run against the embedded store, volatile and durable.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use threds_runtime::store::memory::{Clock, MemoryStore};
use threds_runtime::store::{Leases, Stores};
use threds_testkit::contract::store::{run_all, run_durability, ManualClock};

/// The store's view of the suite's clock.
fn clock_of(clock: ManualClock) -> Clock {
    Arc::new(move || clock.now())
}

/// The ports of a durable store in `dir`.
fn open(dir: &Path, clock: ManualClock) -> Stores {
    match MemoryStore::open_with_clock(dir, clock_of(clock)) {
        Ok(store) => Stores::of(store),
        Err(e) => panic!("open {}: {e}", dir.display()),
    }
}

#[tokio::test]
async fn volatile() {
    run_all(|clock| async move { Stores::of(MemoryStore::with_clock(clock_of(clock))) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable() {
    let root = tempfile::tempdir().expect("temp dir");
    let fresh = AtomicUsize::new(0);
    run_all(|clock| {
        let dir: PathBuf = root
            .path()
            .join(fresh.fetch_add(1, Ordering::SeqCst).to_string());
        async move { open(&dir, clock) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_reopen() {
    let root = tempfile::tempdir().expect("temp dir");
    run_durability(|clock, name| {
        let dir = root.path().join(name);
        async move { open(&dir, clock) }
    })
    .await;
}

#[tokio::test]
async fn system_clock_default() {
    let store = MemoryStore::new();
    let lease = store
        .acquire("r", "me", std::time::Duration::from_secs(60))
        .await
        .expect("acquire")
        .expect("free resource");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    assert!((lease.expires_at - now - 60_000).abs() < 5_000);
}
