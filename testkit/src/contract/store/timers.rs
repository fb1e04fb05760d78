//! Cases of the [`Threds`](threds_runtime::store::Threds) suite for the per-partition timer sets and the
//! unbound-listener index.

use super::{
    commit_conflict, commit_ok, due, ids, must, remove, save, save_in, thred, timer, ManualClock,
};
use std::sync::Arc;
use threds_runtime::store::Threds;

/// Due timers come by (due, thred id), at most `limit`, and stay until a commit replaces them.
pub(super) async fn due_order(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let setup = vec![
        save_in(thred("a", 1), None, 0, Some(timer("a", 300)), false),
        save_in(thred("c", 1), None, 0, Some(timer("c", 100)), false),
        save_in(thred("b", 1), None, 0, Some(timer("b", 100)), false),
        save_in(thred("d", 1), None, 0, None, false),
    ];
    commit_ok(store, "setup", setup).await;

    let all = must("due_timers", store.due_timers(0, 1000, 10).await);
    assert_eq!(all, vec![timer("b", 100), timer("c", 100), timer("a", 300)]);
    assert_eq!(
        due(store, 0, 1000).await,
        ids(&["b", "c", "a"]),
        "not consumed by reading"
    );
    let limited = must("due_timers", store.due_timers(0, 1000, 2).await);
    assert_eq!(limited, vec![timer("b", 100), timer("c", 100)]);
    assert_eq!(
        due(store, 0, 100).await,
        ids(&["b", "c"]),
        "due at now is due"
    );
    assert!(due(store, 0, 99).await.is_empty());
    assert!(must("limit 0", store.due_timers(0, 1000, 0).await).is_empty());
    assert_eq!(
        must("pending", store.pending_timers(0).await),
        3,
        "set, due or not"
    );
    assert_eq!(must("pending", store.pending_timers(1).await), 0);
}

/// Re-saving a thred replaces its timer; saving without one or removing the thred drops it.
pub(super) async fn replacement(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let setup = vec![
        save_in(thred("a", 1), None, 0, Some(timer("a", 300)), false),
        save_in(thred("b", 1), None, 0, Some(timer("b", 200)), false),
        save_in(thred("c", 1), None, 0, Some(timer("c", 400)), false),
    ];
    commit_ok(store, "setup", setup).await;

    let earlier = save_in(thred("a", 2), Some(1), 0, Some(timer("a", 50)), false);
    commit_ok(store, "replace", vec![earlier]).await;
    assert_eq!(due(store, 0, 1000).await, ids(&["a", "b", "c"]));
    assert_eq!(
        must("due", store.due_timers(0, 60, 10).await),
        vec![timer("a", 50)]
    );

    commit_ok(store, "drop timer", vec![save(thred("a", 3), Some(2))]).await;
    commit_ok(store, "remove", vec![remove("b", Some(1))]).await;
    assert_eq!(due(store, 0, 1000).await, ids(&["c"]));
    assert_eq!(
        must("pending", store.pending_timers(0).await),
        1,
        "dropped ones uncounted"
    );

    let stale = save_in(thred("c", 2), Some(7), 0, Some(timer("c", 10)), false);
    commit_conflict(store, "stale save", vec![stale]).await;
    assert_eq!(
        must("due", store.due_timers(0, 1000, 10).await),
        vec![timer("c", 400)]
    );
}

/// Timer sets are per partition; a thred saved in another partition takes its timer along.
pub(super) async fn partitions(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let setup = vec![
        save_in(thred("a", 1), None, 0, Some(timer("a", 100)), false),
        save_in(thred("b", 1), None, 1, Some(timer("b", 100)), false),
        save_in(thred("c", 1), None, 0, Some(timer("c", 200)), false),
    ];
    commit_ok(store, "setup", setup).await;
    assert_eq!(due(store, 0, 1000).await, ids(&["a", "c"]));
    assert_eq!(due(store, 1, 1000).await, ids(&["b"]));
    assert!(due(store, 2, 1000).await.is_empty());

    let moved = save_in(thred("c", 2), Some(1), 1, Some(timer("c", 50)), false);
    commit_ok(store, "move", vec![moved]).await;
    assert_eq!(due(store, 0, 1000).await, ids(&["a"]));
    assert_eq!(due(store, 1, 1000).await, ids(&["c", "b"]));

    let remove_b = threds_runtime::store::ThredWrite::Remove {
        id: "b".into(),
        expected: Some(1),
        partition: 1,
    };
    commit_ok(store, "remove", vec![remove_b]).await;
    assert_eq!(due(store, 1, 1000).await, ids(&["c"]));
}

/// The unbound index lists listeners by when they started listening; it follows every save and
/// removal.
pub(super) async fn unbound(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let listening = |id: &str, step, expected| save_in(thred(id, step), expected, 0, None, true);
    let deaf = |id: &str, step, expected| save_in(thred(id, step), expected, 0, None, false);
    let listeners = || async { must("unbound", store.unbound_listeners().await) };

    commit_ok(store, "b", vec![listening("b", 1, None)]).await;
    let more = vec![
        listening("a", 1, None),
        deaf("c", 1, None),
        listening("d", 1, None),
    ];
    commit_ok(store, "a c d", more).await;
    assert_eq!(listeners().await, ids(&["b", "a", "d"]));

    commit_ok(store, "b again", vec![listening("b", 2, Some(1))]).await;
    assert_eq!(
        listeners().await,
        ids(&["b", "a", "d"]),
        "still listening keeps its place"
    );

    commit_ok(store, "b stops", vec![deaf("b", 3, Some(2))]).await;
    assert_eq!(listeners().await, ids(&["a", "d"]));
    commit_ok(store, "b restarts", vec![listening("b", 4, Some(3))]).await;
    commit_ok(store, "c starts", vec![listening("c", 2, Some(1))]).await;
    assert_eq!(listeners().await, ids(&["a", "d", "b", "c"]));

    commit_ok(store, "remove a", vec![remove("a", Some(1))]).await;
    assert_eq!(listeners().await, ids(&["d", "b", "c"]));
    let refused = vec![listening("e", 1, None), deaf("d", 2, Some(5))];
    commit_conflict(store, "refused", refused).await;
    assert_eq!(listeners().await, ids(&["d", "b", "c"]));
}
