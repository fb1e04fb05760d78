//! Contract cases for leases and fencing.

use super::{counter, ids, load, must, save, thred, writes, ManualClock};
use crate::store::{Commit, Error, Lease, ThredStore};
use std::sync::Arc;
use std::time::Duration;

/// The resource the cases fight over.
const RESOURCE: &str = "threds.events/3";

/// One second.
const TTL: Duration = Duration::from_millis(1000);

/// A lease that must be granted.
async fn grant(store: &dyn ThredStore, resource: &str, owner: &str) -> Lease {
    let lease = must("acquire", store.acquire(resource, owner, TTL).await);
    lease.unwrap_or_else(|| panic!("{owner} should get {resource}"))
}

/// Asserts `owner` cannot get `resource` now.
async fn refused(store: &dyn ThredStore, resource: &str, owner: &str) {
    let lease = must("acquire", store.acquire(resource, owner, TTL).await);
    assert!(
        lease.is_none(),
        "{owner} must not get {resource} while held: {lease:?}"
    );
}

/// Asserts a commit was fenced, reporting `token` against the newest `current`.
fn fenced<T: std::fmt::Debug>(what: &str, result: Result<T, Error>, token: u64, current: u64) {
    match result {
        Err(Error::Fenced {
            resource,
            token: t,
            current: c,
        }) => assert_eq!(
            (resource.as_str(), t, c),
            (RESOURCE, token, current),
            "{what}"
        ),
        other => panic!("{what}: expected fenced, got {other:?}"),
    }
}

/// A held lease excludes other owners until it expires; resources are independent.
pub(super) async fn exclusive(store: Arc<dyn ThredStore>, clock: ManualClock) {
    let store = store.as_ref();
    let lease = grant(store, RESOURCE, "e1").await;
    assert_eq!(
        (lease.resource.as_str(), lease.owner.as_str()),
        (RESOURCE, "e1")
    );
    assert_eq!(lease.expires_at, clock.now() + 1000);
    refused(store, RESOURCE, "e2").await;
    clock.advance(999);
    refused(store, RESOURCE, "e2").await;
    grant(store, "threds.events/4", "e2").await;
}

/// The holder renewing before expiry keeps its token and gets a later expiry.
pub(super) async fn renewal(store: Arc<dyn ThredStore>, clock: ManualClock) {
    let store = store.as_ref();
    let first = grant(store, RESOURCE, "e1").await;
    clock.advance(600);
    let renewed = grant(store, RESOURCE, "e1").await;
    assert_eq!(
        (renewed.owner.as_str(), renewed.token),
        ("e1", first.token),
        "same token"
    );
    assert_eq!(renewed.expires_at, clock.now() + 1000);
    clock.advance(600);
    refused(store, RESOURCE, "e2").await;
    must(
        "commit after renewal",
        store
            .commit(Some(&renewed), writes(vec![save(thred("t1", 1), None)]))
            .await,
    );
    assert_eq!(load(store, "t1").await.map(|s| s.token), Some(first.token));
}

/// After expiry another owner takes over with a higher token, and the old holder is fenced.
pub(super) async fn takeover(store: Arc<dyn ThredStore>, clock: ManualClock) {
    let store = store.as_ref();
    let old = grant(store, RESOURCE, "e1").await;
    clock.advance(1000);
    let new = grant(store, RESOURCE, "e2").await;
    assert!(
        new.token > old.token,
        "takeover token {} > {}",
        new.token,
        old.token
    );
    refused(store, RESOURCE, "e1").await;
    let result = store
        .commit(Some(&old), writes(vec![save(thred("t1", 1), None)]))
        .await;
    fenced("old holder", result, old.token, new.token);
    must(
        "new holder",
        store
            .commit(Some(&new), writes(vec![save(thred("t1", 1), None)]))
            .await,
    );
    assert_eq!(load(store, "t1").await.map(|s| s.token), Some(new.token));

    clock.advance(1000);
    let again = grant(store, RESOURCE, "e2").await;
    assert!(
        again.token > new.token,
        "a grant after expiry is a new lease, even to the same owner"
    );
}

/// A released lease is free at once and no longer valid; releasing a stale lease does nothing.
pub(super) async fn release(store: Arc<dyn ThredStore>, clock: ManualClock) {
    let store = store.as_ref();
    let first = grant(store, RESOURCE, "e1").await;
    must("release", store.release(&first).await);
    let second = grant(store, RESOURCE, "e2").await;
    assert!(second.token > first.token);
    must("stale release", store.release(&first).await);
    refused(store, RESOURCE, "e3").await;

    must("release", store.release(&second).await);
    let result = store
        .commit(Some(&second), writes(vec![save(thred("t1", 1), None)]))
        .await;
    fenced("released lease", result, second.token, second.token);
    clock.advance(1);
    let third = grant(store, RESOURCE, "e2").await;
    assert!(
        third.token > second.token,
        "tokens keep rising after a release"
    );
}

/// A fenced commit changes nothing; so does one under an expired or never-granted lease.
pub(super) async fn fenced_commits(store: Arc<dyn ThredStore>, clock: ManualClock) {
    let store = store.as_ref();
    let old = grant(store, RESOURCE, "e1").await;
    let setup = Commit {
        threds: vec![save(thred("t1", 1), None)],
        counters: vec![("p".into(), 0, counter(1, None))],
        applied: vec![("events".into(), 3, 1)],
        outbox: Vec::new(),
    };
    must("setup", store.commit(Some(&old), setup).await);
    let step = || Commit {
        threds: vec![save(thred("t1", 2), Some(1)), save(thred("t2", 1), None)],
        counters: vec![("p".into(), 1, counter(2, None))],
        applied: vec![("events".into(), 3, 2)],
        outbox: Vec::new(),
    };

    clock.advance(1000);
    fenced(
        "expired",
        store.commit(Some(&old), step()).await,
        old.token,
        old.token,
    );
    let forged = Lease {
        token: old.token + 5,
        ..old.clone()
    };
    fenced(
        "never granted",
        store.commit(Some(&forged), step()).await,
        forged.token,
        old.token,
    );
    let new = grant(store, RESOURCE, "e2").await;
    fenced(
        "taken over",
        store.commit(Some(&old), step()).await,
        old.token,
        new.token,
    );

    let t1 = load(store, "t1").await.unwrap_or_else(|| panic!("t1 kept"));
    assert_eq!(
        (t1.version, t1.token, t1.state),
        (1, old.token, thred("t1", 1))
    );
    assert!(load(store, "t2").await.is_none());
    assert_eq!(
        must("counters", store.counters(&ids(&["p"])).await)[0].version,
        1
    );
    assert_eq!(must("applied", store.applied("events", 3).await), Some(1));
    must("new holder", store.commit(Some(&new), step()).await);
    assert_eq!(load(store, "t2").await.map(|s| s.token), Some(new.token));
}
