//! The restart cases of the suites: everything a port holds survives closing and reopening its
//! adapter — unacknowledged outbox entries and the outbox numbering, lease tokens and holders,
//! the fencing of old holders, sessions.

use super::outbox::{all, outgoing, pending, rising, sending};
use super::{
    counter, due, ids, load, must, remove, save, save_in, session, thred, timer, ManualClock, START,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::store::{
    Commit, Error, Leases, Outgoing, SessionDirectory, StoredCounter, Threds,
};

/// The partition lease the writes are made under.
const RESOURCE: &str = "events/0";

/// One second.
const TTL: Duration = Duration::from_millis(1000);

/// Writes one of everything, reopens, checks it all, and checks the outbox numbering goes on.
pub(super) async fn threds<F, Fut>(open: &F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn Threds>>,
{
    let clock = ManualClock::new(START);
    let counter = counter(3, Some(START));
    let sent = |n: u8| Outgoing {
        partition: (n % 2 == 1).then_some(u32::from(n)),
        ..outgoing("out", Some("k"), &[n, 0, 255])
    };

    let store = open(clock.clone()).await;
    let first = Commit {
        threds: vec![
            save_in(thred("a", 1), None, 0, Some(timer("a", 100)), true),
            save_in(thred("b", 1), None, 1, Some(timer("b", 200)), false),
            save_in(thred("c", 1), None, 0, None, true),
            save(thred("d", 1), None),
        ],
        counters: vec![("p".into(), 0, counter)],
        applied: vec![("events".into(), 0, 41)],
        outbox: vec![sent(1), sent(2)],
    };
    let first = must("first", store.commit(None, first).await);
    let second = Commit {
        threds: vec![
            save_in(thred("a", 2), Some(1), 0, Some(timer("a", 150)), true),
            remove("d", Some(1)),
        ],
        applied: vec![("events".into(), 0, 42)],
        outbox: vec![sent(3)],
        ..Commit::default()
    };
    let second = must("second", store.commit(None, second).await);
    let numbers = [first.as_slice(), second.as_slice()].concat();
    assert_eq!(numbers.len(), 3);
    rising("before the restart", &numbers);
    must("ack", store.ack_outbox(&[numbers[1]]).await);
    drop(store);

    let store = open(clock.clone()).await;
    let s = store.as_ref();
    let a = load(s, "a").await.unwrap_or_else(|| panic!("a survives"));
    assert_eq!((a.state, a.version, a.token), (thred("a", 2), 2, 0));
    let b = load(s, "b").await.unwrap_or_else(|| panic!("b survives"));
    assert_eq!((b.state, b.version, b.token), (thred("b", 1), 1, 0));
    assert!(load(s, "d").await.is_none(), "removed stays removed");
    assert_eq!(
        must("thred_ids", s.thred_ids().await),
        ids(&["a", "b", "c"])
    );
    assert_eq!(
        must("unbound", s.unbound_listeners().await),
        ids(&["a", "c"])
    );
    assert_eq!(
        must("due", s.due_timers(0, i64::MAX, 10).await),
        vec![timer("a", 150)]
    );
    assert_eq!(due(s, 1, i64::MAX).await, ids(&["b"]));
    let counters = must("counters", s.counters(&ids(&["p"])).await);
    assert_eq!(
        counters,
        vec![StoredCounter {
            counter,
            version: 1
        }]
    );
    assert_eq!(must("applied", s.applied("events", 0).await), Some(42));
    assert_eq!(
        all(s).await,
        vec![
            pending(numbers[0], START, sent(1)),
            pending(numbers[2], START, sent(3)),
        ],
        "unacknowledged outbox entries survive"
    );

    let listener = save_in(thred("e", 1), None, 0, None, true);
    let third = Commit {
        threds: vec![listener],
        outbox: vec![sent(4)],
        ..Commit::default()
    };
    let third = must("commit after the restart", s.commit(None, third).await);
    assert_eq!(third.len(), 1);
    assert!(
        third[0] > numbers[2],
        "outbox numbers rise across a restart: {third:?} after {numbers:?}"
    );
    let everything: Vec<u64> = all(s).await.iter().map(|p| p.seq).collect();
    must("ack all", s.ack_outbox(&everything).await);
    assert!(all(s).await.is_empty());
    assert_eq!(
        must("unbound", s.unbound_listeners().await),
        ids(&["a", "c", "e"])
    );
    drop(store);

    let store = open(clock.clone()).await;
    assert_eq!(
        must("unbound", store.unbound_listeners().await),
        ids(&["a", "c", "e"])
    );
    assert!(
        all(store.as_ref()).await.is_empty(),
        "acknowledged stays gone"
    );
    let last = must("send", store.commit(None, sending(vec![sent(6)])).await);
    assert_eq!(last.len(), 1);
    assert!(
        last[0] > third[0],
        "the numbering survives a restart with every entry acknowledged: {last:?} after {third:?}"
    );
}

/// Grants and releases, reopens, and checks holders and rising tokens survive.
pub(super) async fn leases<F, Fut>(open: &F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn Leases>>,
{
    let clock = ManualClock::new(START);
    let leases = open(clock.clone()).await;
    let lease = must("acquire", leases.acquire(RESOURCE, "e1", TTL).await);
    let lease = lease.unwrap_or_else(|| panic!("free resource"));
    let other = must("acquire", leases.acquire("other", "x", TTL).await);
    let other = other.unwrap_or_else(|| panic!("free resource"));
    must("release", leases.release(&other).await);
    drop(leases);

    let leases = open(clock.clone()).await;
    let l = leases.as_ref();
    assert!(
        must("acquire", l.acquire(RESOURCE, "e2", TTL).await).is_none(),
        "the lease is still held"
    );
    let regrant = must("acquire", l.acquire("other", "y", TTL).await);
    let regrant = regrant.unwrap_or_else(|| panic!("released resource is free"));
    assert!(regrant.token > other.token, "tokens rise across a restart");
    clock.advance(1000);
    let taken = must("acquire", l.acquire(RESOURCE, "e2", TTL).await);
    let taken = taken.unwrap_or_else(|| panic!("expired lease can be taken over"));
    assert!(taken.token > lease.token);
    drop(leases);

    let leases = open(clock.clone()).await;
    assert!(must("acquire", leases.acquire(RESOURCE, "e1", TTL).await).is_none());
}

/// Writes under a lease, reopens, checks the recorded tokens and that the lease still works, then
/// that its holder stays fenced after a takeover and another restart.
pub(super) async fn fencing<F, Fut>(open: &F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = (Arc<dyn Threds>, Arc<dyn Leases>)>,
{
    let clock = ManualClock::new(START);
    let sent = |n: u8| outgoing("out", Some("k"), &[n, 0, 255]);

    let (store, leases) = open(clock.clone()).await;
    let lease = must("acquire", leases.acquire(RESOURCE, "e1", TTL).await);
    let lease = lease.unwrap_or_else(|| panic!("free resource"));
    let first = Commit {
        threds: vec![
            save_in(thred("a", 1), None, 0, Some(timer("a", 100)), true),
            save_in(thred("b", 1), None, 1, Some(timer("b", 200)), false),
        ],
        outbox: vec![sent(1)],
        ..Commit::default()
    };
    let first = must("first", store.commit(Some(&lease), first).await);
    drop((store, leases));

    let (store, leases) = open(clock.clone()).await;
    let s = store.as_ref();
    let a = load(s, "a").await.unwrap_or_else(|| panic!("a survives"));
    assert_eq!(
        (a.state, a.version, a.token),
        (thred("a", 1), 1, lease.token)
    );
    let b = load(s, "b").await.unwrap_or_else(|| panic!("b survives"));
    assert_eq!(
        (b.state, b.version, b.token),
        (thred("b", 1), 1, lease.token)
    );
    // The lease is still held, and still valid for its holder.
    assert!(must("acquire", leases.acquire(RESOURCE, "e2", TTL).await).is_none());
    let second = Commit {
        threds: vec![save_in(thred("e", 1), None, 0, None, true)],
        outbox: vec![sent(2)],
        ..Commit::default()
    };
    let second = must(
        "commit under the lease",
        s.commit(Some(&lease), second).await,
    );
    assert_eq!(second.len(), 1);
    clock.advance(1000);
    let taken = must("acquire", leases.acquire(RESOURCE, "e2", TTL).await);
    let taken = taken.unwrap_or_else(|| panic!("expired lease can be taken over"));
    assert!(taken.token > lease.token);
    drop((store, leases));

    let (store, leases) = open(clock.clone()).await;
    let late = Commit {
        threds: vec![save(thred("f", 1), None)],
        outbox: vec![sent(3)],
        ..Commit::default()
    };
    match store.commit(Some(&lease), late).await {
        Err(Error::Fenced { current, .. }) => assert_eq!(current, taken.token),
        other => panic!("the old holder must stay fenced after a restart, got {other:?}"),
    }
    assert!(must("acquire", leases.acquire(RESOURCE, "e1", TTL).await).is_none());
    assert!(
        load(store.as_ref(), "f").await.is_none(),
        "fenced: no write"
    );
    assert_eq!(
        must("unbound", store.unbound_listeners().await),
        ids(&["a", "e"])
    );
    assert_eq!(
        all(store.as_ref()).await,
        vec![
            pending(first[0], START, sent(1)),
            pending(second[0], START, sent(2)),
        ],
        "fenced: no outbox entry"
    );
}

/// Adds and removes sessions, reopens, and checks sessions and participants survive.
pub(super) async fn sessions<F, Fut>(open: &F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn SessionDirectory>>,
{
    let clock = ManualClock::new(START);
    let directory = open(clock.clone()).await;
    for s in [
        session("s1", "alice", "n1"),
        session("s2", "bob", "n1"),
        session("s3", "alice", "n2"),
    ] {
        must("add session", directory.add_session(s).await);
    }
    must("remove session", directory.remove_session("s2").await);
    drop(directory);

    let directory = open(clock.clone()).await;
    let alice = must("sessions_of", directory.sessions_of("alice").await);
    assert_eq!(
        alice,
        vec![session("s1", "alice", "n1"), session("s3", "alice", "n2")]
    );
    assert!(must("sessions_of", directory.sessions_of("bob").await).is_empty());
    assert_eq!(
        must("participants", directory.participants().await),
        ids(&["alice", "bob"])
    );
}
