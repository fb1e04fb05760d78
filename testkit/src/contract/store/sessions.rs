//! The [`SessionDirectory`] suite.

use super::{case, durability, ids, must, session, ManualClock};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::store::{SessionDirectory, SlotClaim};

/// The suite's name in the progress lines.
const SUITE: &str = "sessions";

/// Runs every case, each on a fresh, empty port from `make` (given the clock it must use).
pub async fn run<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn SessionDirectory>>,
{
    case(SUITE, "sessions", &make, directory).await;
    case(SUITE, "delivery slots", &make, slots).await;
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

/// A claim on a slot.
fn claim(slot: u32, renewed: bool) -> Option<SlotClaim> {
    Some(SlotClaim { slot, renewed })
}

/// Slots are held by one node each until they lapse or are released; a node renews its own,
/// gets its previous one back when free, else the lowest free one; lookups answer the slots of
/// live sessions only.
async fn slots(store: Arc<dyn SessionDirectory>, clock: ManualClock) {
    let store = store.as_ref();
    let ttl = Duration::from_millis(10_000);
    let claim_of = |node: &'static str| store.claim_slot(node, 2, ttl);
    assert_eq!(must("claim", claim_of("n1").await), claim(0, false));
    assert_eq!(must("claim", claim_of("n2").await), claim(1, false));
    assert_eq!(
        must("claim", claim_of("n3").await),
        None,
        "both slots are held"
    );
    assert_eq!(must("renew", claim_of("n1").await), claim(0, true));

    must("add", store.add_session(session("s1", "alice", "n1")).await);
    must("add", store.add_session(session("s2", "alice", "n2")).await);
    must("add", store.add_session(session("s3", "alice", "n1")).await);
    must("add", store.add_session(session("s4", "bob", "n2")).await);
    must("add", store.add_session(session("s5", "carol", "n9")).await);
    let who = ids(&["alice", "bob", "carol", "dave"]);
    assert_eq!(
        must("slots_of", store.slots_of(&who).await),
        vec![vec![0, 1], vec![1], vec![], vec![]],
        "a node without a slot (n9) and a participant without sessions (dave) have none"
    );
    assert!(must("slots_of nobody", store.slots_of(&[]).await).is_empty());

    // n1 renews halfway; n2 does not and lapses.
    clock.advance(6_000);
    assert_eq!(must("renew", claim_of("n1").await), claim(0, true));
    clock.advance(6_000);
    assert_eq!(
        must("slots_of", store.slots_of(&who).await),
        vec![vec![0], vec![], vec![], vec![]],
        "n2's slot lapsed"
    );
    assert_eq!(
        must("claim", claim_of("n3").await),
        claim(1, false),
        "a lapsed slot is free"
    );
    assert_eq!(
        must("claim", claim_of("n2").await),
        None,
        "n2's old slot went to n3"
    );

    must("release", store.release_slot("n1").await);
    must("release unknown", store.release_slot("n8").await);
    assert_eq!(
        must("slots_of", store.slots_of(&ids(&["alice"])).await),
        vec![Vec::<u32>::new()],
        "n1 released its slot"
    );
    assert_eq!(
        must("claim", claim_of("n1").await),
        claim(0, false),
        "a released slot is free"
    );
    must("release", store.release_slot("n3").await);
    assert_eq!(
        must("claim", claim_of("n2").await),
        claim(1, false),
        "a node gets its previous slot back when it is free"
    );
    assert_eq!(
        must("slots_of", store.slots_of(&ids(&["bob"])).await),
        vec![vec![1]],
        "the sessions of a node that lapsed briefly count again once it holds a slot"
    );
    assert_eq!(
        must(
            "claim among more slots",
            store.claim_slot("n4", 3, ttl).await
        ),
        claim(2, false)
    );
}
