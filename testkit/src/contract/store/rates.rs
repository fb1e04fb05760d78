//! The [`RateBudgets`] suite.
//!
//! Adapters keep time their own way (the Redis adapter reads the server's clock, so that every
//! node agrees), so the suite lets time pass both ways: it moves the [`ManualClock`] forward and
//! sleeps as long. Bounds leave room for the real time the calls themselves take.

use super::{case, must, ManualClock};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::store::{Grant, Rate, RateBudgets};

/// The suite's name in the progress lines.
const SUITE: &str = "rates";

/// Runs every case, each on a fresh, empty port from `make` (given the clock it may use).
pub async fn run<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn RateBudgets>>,
{
    case(
        SUITE,
        "a full bucket grants its burst, then says when",
        &make,
        burst,
    )
    .await;
    case(SUITE, "refill at the rate up to the burst", &make, refill).await;
    case(SUITE, "buckets are independent", &make, independent).await;
    case(
        SUITE,
        "concurrent takes share one bucket",
        &make,
        concurrent,
    )
    .await;
}

/// Takes `asked` from `bucket`; the take must succeed.
async fn take(store: &dyn RateBudgets, bucket: &str, rate: Rate, asked: u64) -> Grant {
    must("take", store.take(bucket, rate, asked).await)
}

/// Lets `ms` pass on the clock and in real time.
async fn pass(clock: &ManualClock, ms: u64) {
    clock.advance(i64::try_from(ms).unwrap_or(i64::MAX));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Asserts `wait` is within `(low, high]`.
fn between(what: &str, wait: Duration, low: Duration, high: Duration) {
    assert!(
        low < wait && wait <= high,
        "{what}: retry after {wait:?}, expected more than {low:?} and at most {high:?}"
    );
}

/// A fresh bucket holds its burst; a take grants what is held, up to the number asked, and when it
/// grants fewer says how long until the rest would be there.
async fn burst(store: Arc<dyn RateBudgets>, _clock: ManualClock) {
    let store = store.as_ref();
    let rate = Rate::new(1, 5);
    let all = take(store, "b", rate, 3).await;
    assert_eq!(all.granted, 3);
    assert_eq!(all.retry_after, Duration::ZERO, "nothing missing");
    let some = take(store, "b", rate, 5).await;
    assert_eq!(some.granted, 2, "what was left");
    let secs = Duration::from_secs;
    between("3 missing at 1/s", some.retry_after, secs(2), secs(3));
    let none = take(store, "b", rate, 1).await;
    assert_eq!(none.granted, 0);
    between(
        "1 missing at 1/s",
        none.retry_after,
        Duration::ZERO,
        secs(1),
    );
    let nothing = take(store, "b", rate, 0).await;
    assert_eq!((nothing.granted, nothing.retry_after), (0, Duration::ZERO));
}

/// An emptied bucket refills at its rate and never holds more than its burst.
async fn refill(store: Arc<dyn RateBudgets>, clock: ManualClock) {
    let store = store.as_ref();
    let rate = Rate::new(10, 5);
    assert_eq!(take(store, "r", rate, 5).await.granted, 5);
    pass(&clock, 200).await;
    let refilled = take(store, "r", rate, 5).await.granted;
    assert!(
        (2..=3).contains(&refilled),
        "200 ms at 10/s refill 2 tokens, got {refilled}"
    );
    pass(&clock, 1_000).await;
    assert_eq!(
        take(store, "r", rate, 20).await.granted,
        5,
        "at most the burst"
    );
}

/// Taking from one bucket leaves the others as they were.
async fn independent(store: Arc<dyn RateBudgets>, _clock: ManualClock) {
    let store = store.as_ref();
    let rate = Rate::new(1, 3);
    assert_eq!(take(store, "events:alice", rate, 3).await.granted, 3);
    assert_eq!(take(store, "events:bob", rate, 3).await.granted, 3);
    assert_eq!(take(store, "bytes:alice", rate, 3).await.granted, 3);
    assert_eq!(take(store, "events:alice", rate, 3).await.granted, 0);
}

/// Concurrent takes never grant more in all than the bucket held.
async fn concurrent(store: Arc<dyn RateBudgets>, _clock: ManualClock) {
    let rate = Rate::new(1, 40);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { take(store.as_ref(), "c", rate, 3).await.granted })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        let granted = must_join(task.await);
        assert!(granted <= 3, "granted {granted} of 3");
        total += granted;
    }
    // 40 held, plus at most one token refilled while the takes ran.
    assert!((40..=41).contains(&total), "granted {total} of 40 in all");
}

/// The value of a task that must not panic.
fn must_join<T>(joined: Result<T, tokio::task::JoinError>) -> T {
    match joined {
        Ok(value) => value,
        Err(e) => panic!("take task: {e}"),
    }
}
