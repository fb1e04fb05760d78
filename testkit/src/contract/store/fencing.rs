//! The fencing suite: commits of a [`Threds`] port under leases of the [`Leases`] port of the same
//! adapter — a commit is refused `Fenced` unless its lease is the resource's newest grant, held by
//! its owner, unexpired and not released; a stored thred records the token it was written under.

use super::leases::{grant, refused, RESOURCE};
use super::outbox::{all, outgoing, pending};
use super::{case, counter, durability, ids, load, must, save, thred, writes, ManualClock, START};
use std::future::Future;
use std::sync::Arc;
use threds_runtime::store::{Commit, Error, Lease, Leases, Threds};

/// The suite's name in the progress lines.
const SUITE: &str = "fencing";

/// The ports a fencing case needs, both of one adapter.
type Ports = (Arc<dyn Threds>, Arc<dyn Leases>);

/// Runs every case, each on the ports of a fresh, empty adapter from `make` (given the clock it
/// must use).
pub async fn run<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = (Arc<dyn Threds>, Arc<dyn Leases>)>,
{
    case(SUITE, "token recorded", &make, token_recorded).await;
    case(SUITE, "renewed lease", &make, renewed).await;
    case(SUITE, "taken-over lease", &make, taken_over).await;
    case(SUITE, "released lease", &make, released).await;
    case(SUITE, "fenced commits", &make, fenced_commits).await;
    case(SUITE, "outbox of fenced commits", &make, outbox).await;
}

/// Checks that stored tokens and fencing survive a restart; `open` opens the ports of the same
/// durable adapter each call (the suite drops the previous handles first).
pub async fn run_durability<F, Fut>(open: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = (Arc<dyn Threds>, Arc<dyn Leases>)>,
{
    eprintln!("store contract: {SUITE}: durability");
    durability::fencing(&open).await;
}

/// Asserts a commit was fenced, reporting `token` against the newest `current`.
pub(super) fn fenced<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, Error>,
    token: u64,
    current: u64,
) {
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

/// A save under a lease records its token.
async fn token_recorded((threds, leases): Ports, _clock: ManualClock) {
    let (store, leases) = (threds.as_ref(), leases.as_ref());
    must(
        "create",
        store
            .commit(None, writes(vec![save(thred("t1", 1), None)]))
            .await,
    );
    let lease = grant(leases, "events/0", "e1").await;
    assert!(lease.token > 0, "granted tokens are positive");
    let update = writes(vec![save(thred("t1", 2), Some(1))]);
    must("update", store.commit(Some(&lease), update).await);
    let stored = load(store, "t1").await.unwrap_or_else(|| panic!("t1 kept"));
    assert_eq!(stored.state, thred("t1", 2));
    assert_eq!((stored.version, stored.token), (2, lease.token));
}

/// A renewed lease stays valid past the first grant's expiry, with the first grant's token.
async fn renewed((threds, leases): Ports, clock: ManualClock) {
    let (store, leases) = (threds.as_ref(), leases.as_ref());
    let first = grant(leases, RESOURCE, "e1").await;
    clock.advance(600);
    let renewed = grant(leases, RESOURCE, "e1").await;
    clock.advance(600);
    refused(leases, RESOURCE, "e2").await;
    must(
        "commit after renewal",
        store
            .commit(Some(&renewed), writes(vec![save(thred("t1", 1), None)]))
            .await,
    );
    assert_eq!(load(store, "t1").await.map(|s| s.token), Some(first.token));
}

/// After a takeover the old holder is fenced and the new holder's token is recorded.
async fn taken_over((threds, leases): Ports, clock: ManualClock) {
    let (store, leases) = (threds.as_ref(), leases.as_ref());
    let old = grant(leases, RESOURCE, "e1").await;
    clock.advance(1000);
    let new = grant(leases, RESOURCE, "e2").await;
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
}

/// A released lease is no longer valid.
async fn released((threds, leases): Ports, _clock: ManualClock) {
    let (store, leases) = (threds.as_ref(), leases.as_ref());
    let first = grant(leases, RESOURCE, "e1").await;
    must("release", leases.release(&first).await);
    let second = grant(leases, RESOURCE, "e2").await;
    must("release", leases.release(&second).await);
    let result = store
        .commit(Some(&second), writes(vec![save(thred("t1", 1), None)]))
        .await;
    fenced("released lease", result, second.token, second.token);
    assert!(load(store, "t1").await.is_none());
}

/// A fenced commit changes nothing; so does one under an expired or never-granted lease.
async fn fenced_commits((threds, leases): Ports, clock: ManualClock) {
    let (store, leases) = (threds.as_ref(), leases.as_ref());
    let old = grant(leases, RESOURCE, "e1").await;
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
    let new = grant(leases, RESOURCE, "e2").await;
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

/// A fenced commit leaves no outbox entry; the new holder's numbers still rise.
async fn outbox((threds, leases): Ports, clock: ManualClock) {
    let (store, leases) = (threds.as_ref(), leases.as_ref());
    let resource = "events/1";
    let kept = outgoing("out", Some("k"), b"kept");
    let setup = Commit {
        threds: vec![save(thred("t1", 1), None)],
        outbox: vec![kept.clone()],
        ..Commit::default()
    };
    let setup = must("setup", store.commit(None, setup).await);

    let old = grant(leases, resource, "e1").await;
    clock.advance(1000);
    let new = grant(leases, resource, "e2").await;
    let late = || Commit {
        threds: vec![save(thred("t1", 2), Some(1))],
        outbox: vec![outgoing("out", None, b"late")],
        ..Commit::default()
    };
    match store.commit(Some(&old), late()).await {
        Err(Error::Fenced { .. }) => {}
        other => panic!("old holder: expected fenced, got {other:?}"),
    }
    assert_eq!(
        all(store).await,
        vec![pending(setup[0], START, kept.clone())],
        "a fenced commit sends nothing"
    );

    let sent = must("new holder", store.commit(Some(&new), late()).await);
    assert_eq!(sent.len(), 1);
    assert!(sent[0] > setup[0], "numbers rise: {sent:?} after {setup:?}");
    let expected = vec![
        pending(setup[0], START, kept),
        pending(sent[0], START + 1000, outgoing("out", None, b"late")),
    ];
    assert_eq!(all(store).await, expected);
}
