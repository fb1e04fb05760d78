//! The [`PatternRegistry`] suite.

use super::{case, must, ManualClock};
use std::future::Future;
use std::sync::Arc;
use threds_runtime::store::patterns::{update, Activation, Registry};
use threds_runtime::store::{Error, PatternRegistry};

/// Runs every case, each on a fresh, empty port from `make` (given the clock it must use).
pub async fn run<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn PatternRegistry>>,
{
    case("patterns", "pattern registry", &make, replacement).await;
}

/// Runs the durability case: a stored registry, with its version, is what a reopened port reads.
pub async fn run_durability<F, Fut>(open: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn PatternRegistry>>,
{
    eprintln!("store contract: patterns: durability");
    let clock = ManualClock::new(super::START);
    let mut registry = Registry::default();
    let pushed = registry.push("a", r#"{"id":"a"}"#, "push:t", 7, Activation::Always);
    must("push", pushed);
    let first = open(clock.clone()).await;
    let expected = must("read", first.registry().await).version;
    let version = must("store", first.store_registry(expected, &registry).await);
    drop(first);
    let reopened = open(clock).await;
    let read = must("read after reopening", reopened.registry().await);
    assert_eq!(read.version, version, "the version survives");
    assert_eq!(read.patterns, registry.patterns, "the document survives");
}

/// The registry starts empty at version 0; a store at the version read replaces the whole
/// document and raises the version by one; a store from a stale read is refused with a conflict
/// and changes nothing; concurrent updates through [`update`] all land.
async fn replacement(store: Arc<dyn PatternRegistry>, _clock: ManualClock) {
    let port = store.as_ref();
    let empty = must("empty registry", port.registry().await);
    assert_eq!((empty.version, empty.patterns.len()), (0, 0));
    let mut first = Registry::default();
    must(
        "push",
        first.push(
            "a",
            r#"{"id":"a","v":1}"#,
            "file:a.json",
            5,
            Activation::Always,
        ),
    );
    let v1 = must("first store", port.store_registry(0, &first).await);
    assert_eq!(v1, 1);
    let read = must("read", port.registry().await);
    assert_eq!(read.version, 1);
    assert_eq!(read.patterns, first.patterns, "stored as given");
    // A stale writer (it read version 0) is refused and changes nothing.
    let stale = port.store_registry(0, &Registry::default()).await;
    assert!(
        matches!(stale, Err(Error::Conflict(_))),
        "stale store: {stale:?}"
    );
    assert_eq!(must("read", port.registry().await).patterns, first.patterns);
    // Two writers racing through `update`: both changes land, one after the other.
    let push = |body: i64| {
        move |r: &mut Registry| {
            r.push(
                "a",
                &format!(r#"{{"id":"a","v":{body}}}"#),
                "push:t",
                6,
                Activation::Always,
            )
        }
    };
    let (a, b) = tokio::join!(update(port, push(2)), update(port, push(3)));
    let (a, b) = (
        must("update a", a.map(|x| x.0)),
        must("update b", b.map(|x| x.0)),
    );
    let mut numbers = vec![a.version, b.version];
    numbers.sort_unstable();
    assert_eq!(numbers, vec![2, 3]);
    let read = must("read", port.registry().await);
    assert_eq!(read.version, 3);
    assert_eq!(read.pattern("a").map(|p| p.versions.len()), Some(3));
}
