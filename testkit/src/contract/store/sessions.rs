//! The [`SessionDirectory`] suite.

use super::{case, durability, ids, must, session, ManualClock};
use std::future::Future;
use std::sync::Arc;
use threds_runtime::store::SessionDirectory;

/// The suite's name in the progress lines.
const SUITE: &str = "sessions";

/// Runs every case, each on a fresh, empty port from `make` (given the clock it must use).
pub async fn run<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn SessionDirectory>>,
{
    case(SUITE, "sessions", &make, directory).await;
}

/// Checks that sessions and participants survive a restart; `open` opens the same durable port
/// each call (the suite drops the previous handle first).
pub async fn run_durability<F, Fut>(open: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn SessionDirectory>>,
{
    eprintln!("store contract: {SUITE}: durability");
    durability::sessions(&open).await;
}

/// Sessions are listed per participant in order of addition; participants are remembered, in
/// first-seen order, after their sessions go.
async fn directory(store: Arc<dyn SessionDirectory>, _clock: ManualClock) {
    let store = store.as_ref();
    assert!(must("participants", store.participants().await).is_empty());
    assert!(must("sessions_of", store.sessions_of("alice").await).is_empty());

    must("add", store.add_session(session("s1", "alice", "n1")).await);
    must("add", store.add_session(session("s2", "bob", "n1")).await);
    must("add", store.add_session(session("s3", "alice", "n2")).await);
    let alice = must("sessions_of", store.sessions_of("alice").await);
    assert_eq!(
        alice,
        vec![session("s1", "alice", "n1"), session("s3", "alice", "n2")]
    );
    assert_eq!(
        must("sessions_of", store.sessions_of("bob").await),
        vec![session("s2", "bob", "n1")]
    );
    assert_eq!(
        must("participants", store.participants().await),
        ids(&["alice", "bob"])
    );

    must("remove", store.remove_session("s1").await);
    must("remove", store.remove_session("s2").await);
    must("remove unknown", store.remove_session("nope").await);
    assert_eq!(
        must("sessions_of", store.sessions_of("alice").await),
        vec![session("s3", "alice", "n2")]
    );
    assert!(must("sessions_of", store.sessions_of("bob").await).is_empty());
    assert_eq!(
        must("participants", store.participants().await),
        ids(&["alice", "bob"])
    );

    must(
        "re-add",
        store.add_session(session("s4", "bob", "n3")).await,
    );
    must("add", store.add_session(session("s5", "carol", "n1")).await);
    assert_eq!(
        must("participants", store.participants().await),
        ids(&["alice", "bob", "carol"])
    );
    assert_eq!(
        must("sessions_of", store.sessions_of("bob").await),
        vec![session("s4", "bob", "n3")]
    );
}
