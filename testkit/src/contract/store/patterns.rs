//! The [`PatternRegistry`] suite.

use super::{case, must, ManualClock};
use std::future::Future;
use std::sync::Arc;
use threds_runtime::store::PatternRegistry;

/// Runs every case, each on a fresh, empty port from `make` (given the clock it must use).
pub async fn run<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn PatternRegistry>>,
{
    case("patterns", "pattern registry", &make, replacement).await;
}

/// The registry starts empty at version 0; a registration replaces the whole set (sorted by id)
/// and raises the version; an empty registration empties it.
async fn replacement(store: Arc<dyn PatternRegistry>, _clock: ManualClock) {
    let store = store.as_ref();
    let empty = must("empty registry", store.registered_patterns().await);
    assert_eq!((empty.version, empty.patterns.len()), (0, 0));
    let pair = |id: &str, body: &str| (id.to_string(), format!(r#"{{"id":"{id}","v":"{body}"}}"#));
    let first = must(
        "first registration",
        store
            .register_patterns(vec![pair("b", "1"), pair("a", "1")])
            .await,
    );
    let read = must("read", store.registered_patterns().await);
    assert_eq!(read.version, first);
    assert_eq!(read.patterns, vec![pair("a", "1"), pair("b", "1")]);
    let second = must(
        "second registration",
        store.register_patterns(vec![pair("c", "2")]).await,
    );
    assert!(second > first, "versions rise: {first} then {second}");
    let read = must("read again", store.registered_patterns().await);
    assert_eq!(read.patterns, vec![pair("c", "2")], "the old set is gone");
    let third = must(
        "empty registration",
        store.register_patterns(Vec::new()).await,
    );
    let read = must("read emptied", store.registered_patterns().await);
    assert!(third > second);
    assert_eq!((read.version, read.patterns.len()), (third, 0));
}
