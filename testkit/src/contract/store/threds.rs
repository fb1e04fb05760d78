//! The [`Threds`] suite: thred saves and removals, counters and applied watermarks here; timers
//! and the unbound index in `timers`, the outbox in `outbox` (commits under a lease are checked by
//! the `fencing` suite).

use super::{
    case, commit_conflict, commit_ok, conflict, counter, durability, ids, load, must, outbox,
    remove, save, save_in, thred, timer, timers, writes, ManualClock,
};
use std::future::Future;
use std::sync::Arc;
use threds_patterns::machine::Counter;
use threds_runtime::store::{Commit, Threds};
use tokio::task::JoinSet;

/// The suite's name in the progress lines.
const SUITE: &str = "threds";

/// Runs every case, each on a fresh, empty port from `make` (given the clock it must use).
pub async fn run<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn Threds>>,
{
    case(SUITE, "round trip", &make, round_trip).await;
    case(SUITE, "stale version", &make, stale_version).await;
    case(SUITE, "create if absent", &make, create_if_absent).await;
    case(SUITE, "remove", &make, removal).await;
    case(SUITE, "counters", &make, counters).await;
    case(SUITE, "applied watermark", &make, applied).await;
    case(SUITE, "concurrent commits", &make, concurrent).await;
    case(SUITE, "due timers", &make, timers::due_order).await;
    case(SUITE, "timer replacement", &make, timers::replacement).await;
    case(SUITE, "timer partitions", &make, timers::partitions).await;
    case(SUITE, "unbound index", &make, timers::unbound).await;
    case(SUITE, "participant index and paging", &make, participants).await;
    case(SUITE, "outbox order", &make, outbox::order).await;
    case(SUITE, "outbox of refused commits", &make, outbox::refused).await;
    case(SUITE, "outbox window", &make, outbox::window).await;
    case(SUITE, "outbox acknowledgement", &make, outbox::ack).await;
    case(SUITE, "outbox of a large commit", &make, outbox::large).await;
}

/// Checks that everything survives a restart; `open` opens the same durable port each call (the
/// suite drops the previous handle first).
pub async fn run_durability<F, Fut>(open: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn Threds>>,
{
    eprintln!("store contract: {SUITE}: durability");
    durability::threds(&open).await;
}

/// A new thred is stored at version 1 with token 0, then each save bumps the version (a save
/// under a lease records its token: see the `fencing` suite).
pub(super) async fn round_trip(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    assert!(load(store, "t1").await.is_none(), "empty store");
    commit_ok(store, "create", vec![save(thred("t1", 1), None)]).await;
    let stored = load(store, "t1").await;
    let stored = stored.unwrap_or_else(|| panic!("t1 was saved"));
    assert_eq!(stored.state, thred("t1", 1));
    assert_eq!((stored.version, stored.token), (1, 0));

    let both = must("load", store.load(&ids(&["t1", "missing"])).await);
    assert_eq!(both.len(), 2);
    assert!(
        both[0].is_some() && both[1].is_none(),
        "slots follow the ids"
    );
    assert_eq!(must("thred_ids", store.thred_ids().await), ids(&["t1"]));

    let update = writes(vec![save(thred("t1", 2), Some(1))]);
    must("update", store.commit(None, update).await);
    let stored = load(store, "t1").await.unwrap_or_else(|| panic!("t1 kept"));
    assert_eq!(stored.state, thred("t1", 2));
    assert_eq!((stored.version, stored.token), (2, 0));
}

/// A stale expected version refuses the whole commit: no other thred, counter, timer, index entry
/// or watermark of it changes.
pub(super) async fn stale_version(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let setup = Commit {
        threds: vec![save(thred("t1", 1), None), save(thred("t2", 1), None)],
        counters: vec![("p".into(), 0, counter(2, Some(5)))],
        applied: vec![("events".into(), 0, 5)],
        outbox: Vec::new(),
    };
    must("setup", store.commit(None, setup).await);
    commit_ok(store, "bump t1", vec![save(thred("t1", 2), Some(1))]).await;

    let stale = Commit {
        threds: vec![
            save_in(thred("t2", 9), Some(1), 0, Some(timer("t2", 10)), true),
            save(thred("new", 1), None),
            save(thred("t1", 9), Some(1)),
        ],
        counters: vec![("p".into(), 1, counter(9, Some(9)))],
        applied: vec![("events".into(), 0, 9)],
        outbox: Vec::new(),
    };
    conflict("stale thred", store.commit(None, stale).await);
    let t2 = load(store, "t2").await.unwrap_or_else(|| panic!("t2 kept"));
    assert_eq!((t2.state, t2.version), (thred("t2", 1), 1), "t2 unchanged");
    assert!(load(store, "new").await.is_none(), "no thred created");
    assert_eq!(load(store, "t1").await.map(|s| s.version), Some(2));
    let counter = must("counters", store.counters(&ids(&["p"])).await);
    assert_eq!((counter[0].counter.instances, counter[0].version), (2, 1));
    assert_eq!(must("applied", store.applied("events", 0).await), Some(5));
    assert!(must("due", store.due_timers(0, i64::MAX, 10).await).is_empty());
    assert!(must("unbound", store.unbound_listeners().await).is_empty());

    let stale_counter = Commit {
        threds: vec![save(thred("t2", 3), Some(1))],
        counters: vec![("p".into(), 0, Counter::default())],
        applied: vec![("events".into(), 0, 9)],
        outbox: Vec::new(),
    };
    conflict("stale counter", store.commit(None, stale_counter).await);
    assert_eq!(
        load(store, "t2").await.map(|s| s.version),
        Some(1),
        "t2 unchanged"
    );
    assert_eq!(must("applied", store.applied("events", 0).await), Some(5));
}

/// `expected: None` creates only if absent; a version on an absent thred conflicts.
pub(super) async fn create_if_absent(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    commit_ok(store, "create", vec![save(thred("t1", 1), None)]).await;
    commit_conflict(store, "create twice", vec![save(thred("t1", 2), None)]).await;
    commit_conflict(store, "update absent", vec![save(thred("t2", 1), Some(1))]).await;
    assert!(load(store, "t2").await.is_none());
    assert_eq!(
        load(store, "t1").await.map(|s| s.state),
        Some(thred("t1", 1))
    );
}

/// Remove deletes the thred, its timer and its index entry; a stale remove conflicts.
pub(super) async fn removal(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let setup = vec![
        save_in(thred("t1", 1), None, 0, Some(timer("t1", 10)), true),
        save(thred("t2", 1), None),
    ];
    commit_ok(store, "setup", setup).await;
    must(
        "bump",
        store
            .commit(
                None,
                writes(vec![save_in(
                    thred("t1", 2),
                    Some(1),
                    0,
                    Some(timer("t1", 10)),
                    true,
                )]),
            )
            .await,
    );
    commit_conflict(store, "stale remove", vec![remove("t1", Some(1))]).await;
    assert!(load(store, "t1").await.is_some());

    commit_ok(store, "remove", vec![remove("t1", Some(2))]).await;
    assert!(load(store, "t1").await.is_none());
    assert_eq!(must("thred_ids", store.thred_ids().await), ids(&["t2"]));
    assert!(must("due", store.due_timers(0, i64::MAX, 10).await).is_empty());
    assert!(must("unbound", store.unbound_listeners().await).is_empty());

    commit_ok(store, "recreate", vec![save(thred("t1", 3), None)]).await;
    assert_eq!(
        load(store, "t1").await.map(|s| s.version),
        Some(1),
        "a new thred starts at 1"
    );
}

/// Counters compare-and-set on their version (0 = never written).
pub(super) async fn counters(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let fresh = must("counters", store.counters(&ids(&["a", "b"])).await);
    assert_eq!(fresh.len(), 2);
    assert!(fresh
        .iter()
        .all(|c| c.version == 0 && c.counter == Counter::default()));

    let one = counter(1, Some(7));
    let cas = |pattern: &str, expected, counter| Commit {
        counters: vec![(pattern.to_string(), expected, counter)],
        ..Commit::default()
    };
    must("first write", store.commit(None, cas("a", 0, one)).await);
    conflict(
        "stale first write",
        store.commit(None, cas("a", 0, Counter::default())).await,
    );
    let two = counter(2, Some(8));
    must("second write", store.commit(None, cas("a", 1, two)).await);
    conflict("future version", store.commit(None, cas("b", 1, one)).await);

    let read = must("counters", store.counters(&ids(&["b", "a"])).await);
    assert_eq!((read[0].version, read[0].counter), (0, Counter::default()));
    assert_eq!((read[1].version, read[1].counter), (2, two));
}

/// Applied watermarks only rise, per (topic, partition).
pub(super) async fn applied(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    assert_eq!(must("applied", store.applied("events", 0).await), None);
    let mark = |entries: Vec<(&str, u32, u64)>| Commit {
        applied: entries
            .into_iter()
            .map(|(t, p, o)| (t.to_string(), p, o))
            .collect(),
        ..Commit::default()
    };
    must(
        "raise",
        store
            .commit(None, mark(vec![("events", 0, 10), ("events", 1, 3)]))
            .await,
    );
    must(
        "lower",
        store.commit(None, mark(vec![("events", 0, 4)])).await,
    );
    assert_eq!(must("applied", store.applied("events", 0).await), Some(10));
    must(
        "raise again",
        store
            .commit(None, mark(vec![("events", 0, 11), ("timers", 0, 0)]))
            .await,
    );
    assert_eq!(must("applied", store.applied("events", 0).await), Some(11));
    assert_eq!(must("applied", store.applied("events", 1).await), Some(3));
    assert_eq!(must("applied", store.applied("timers", 0).await), Some(0));
    assert_eq!(must("applied", store.applied("timers", 1).await), None);
    assert_eq!(must("applied", store.applied("other", 0).await), None);
}

/// Of concurrent commits from the same read, exactly one wins.
pub(super) async fn concurrent(store: Arc<dyn Threds>, _clock: ManualClock) {
    commit_ok(&*store, "create", vec![save(thred("t1", 0), None)]).await;
    let mut tasks = JoinSet::new();
    for step in 1..=8 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let commit = Commit {
                threds: vec![save(thred("t1", step), Some(1))],
                counters: vec![("p".into(), 0, counter(1, Some(step)))],
                applied: Vec::new(),
                outbox: Vec::new(),
            };
            store.commit(None, commit).await
        });
    }
    let mut won = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(_)) => won += 1,
            Ok(result) => conflict("concurrent loser", result),
            Err(e) => panic!("commit task failed: {e}"),
        }
    }
    assert_eq!(won, 1, "exactly one concurrent commit wins");
    let stored = load(store.as_ref(), "t1")
        .await
        .unwrap_or_else(|| panic!("t1 kept"));
    let counter = must("counters", store.counters(&ids(&["p"])).await);
    assert_eq!((stored.version, counter[0].version), (2, 1));
    let step = stored.state.thred_context.scope.get("step").cloned();
    assert_eq!(
        step.and_then(|s| s.as_i64()),
        counter[0].counter.last_start,
        "winner's thred and counter"
    );
}

/// `threds_of` follows the participants of the live threds (added by saves, gone with removals,
/// unchanged by refused commits); `thred_page` pages through the live ids in byte order.
pub(super) async fn participants(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let with = |id: &str, step: i64, who: &[&str]| {
        let mut state = thred(id, step);
        state.thred_context.participant_ids = who.iter().map(|p| p.to_string()).collect();
        state
    };
    let of = |p: &'static str| async move { must("threds_of", store.threds_of(p).await) };
    commit_ok(
        store,
        "create",
        vec![
            save(with("t1", 1, &["alice"]), None),
            save(with("t2", 1, &["alice", "bob"]), None),
            save(with("t3", 1, &[]), None),
        ],
    )
    .await;
    assert_eq!(of("alice").await, ids(&["t1", "t2"]));
    assert_eq!(of("bob").await, ids(&["t2"]));
    assert!(of("carol").await.is_empty());

    // A save that adds a participant indexes it; one that changes nothing else keeps the rest.
    commit_ok(
        store,
        "join",
        vec![
            save(with("t1", 2, &["alice", "carol"]), Some(1)),
            save(with("t3", 2, &["carol"]), Some(1)),
        ],
    )
    .await;
    assert_eq!(of("carol").await, ids(&["t1", "t3"]));
    assert_eq!(of("alice").await, ids(&["t1", "t2"]));

    // A refused commit changes no index entry.
    let refused = vec![
        save(with("t2", 3, &["alice", "bob", "dave"]), Some(1)),
        save(with("t1", 3, &["alice", "carol", "dave"]), Some(1)),
    ];
    commit_conflict(store, "stale", refused).await;
    assert!(of("dave").await.is_empty(), "refused commits index nothing");

    // Removal takes a thred out of every participant's set.
    commit_ok(store, "remove", vec![remove("t2", Some(1))]).await;
    assert_eq!(of("alice").await, ids(&["t1"]));
    assert!(of("bob").await.is_empty());

    // Paging: byte order, after the cursor, at most `limit`.
    let many: Vec<_> = (0..25)
        .map(|n| save(with(&format!("p{n:02}"), 1, &[]), None))
        .collect();
    commit_ok(store, "many", many).await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = must("thred_page", store.thred_page(after.as_deref(), 10).await);
        assert!(page.len() <= 10, "a page holds at most the limit");
        let Some(last) = page.last().cloned() else {
            break;
        };
        seen.extend(page);
        after = Some(last);
    }
    let all = must("thred_ids", store.thred_ids().await);
    assert_eq!(seen, all, "pages cover every live thred once, in order");
    assert_eq!(all.len(), 27);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted by bytes");
    assert!(must("thred_page", store.thred_page(None, 0).await).is_empty());
}
