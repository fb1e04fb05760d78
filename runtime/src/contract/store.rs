//! The thred store contract: what every [`ThredStore`] adapter must do, checked through the trait
//! only, so the embedded and the production adapters run the same cases.
//!
//! Time is injected: the suite passes each store it asks for a [`ManualClock`], which the adapter
//! must use for leases, and moves it forward instead of sleeping.
//!
//! The outbox is specified here as: a commit's entries are listed (by `outbox`) if and only if the
//! commit was applied, in order, with strictly increasing sequence numbers (across commits,
//! acknowledgements and restarts) and the store-clock time of the commit; whether a refused commit
//! uses up sequence numbers is left open.
//!
//! Lease renewal is specified here as: the holder acquiring again before expiry keeps its token and
//! gets a later expiry; any other grant (first, after expiry, after release) gets a strictly higher
//! token.

mod durability;
mod leases;
mod outbox;
mod registry;
mod sessions;
mod threds;
mod timers;

use crate::store::{Commit, Error, Stored, ThredStore, ThredWrite};
use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use threds_patterns::machine::Counter;
use threds_patterns::thred::{ReactionStore, Status, ThredContext, ThredMeta, ThredState, Timer};

/// The time every case starts at (epoch ms).
const START: i64 = 1_000_000;

/// A clock the suite sets by hand, shared with the store under test.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `now` (epoch ms).
    pub fn new(now: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(now)))
    }

    /// The time it shows.
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves it forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// Runs every case, each on a fresh, empty store from `make` (given the clock it must use).
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn ThredStore>>,
{
    case("round trip", &make, threds::round_trip).await;
    case("stale version", &make, threds::stale_version).await;
    case("create if absent", &make, threds::create_if_absent).await;
    case("remove", &make, threds::removal).await;
    case("counters", &make, threds::counters).await;
    case("applied watermark", &make, threds::applied).await;
    case("concurrent commits", &make, threds::concurrent).await;
    case("due timers", &make, timers::due_order).await;
    case("timer replacement", &make, timers::replacement).await;
    case("timer partitions", &make, timers::partitions).await;
    case("unbound index", &make, timers::unbound).await;
    case("lease exclusivity", &make, leases::exclusive).await;
    case("lease renewal", &make, leases::renewal).await;
    case("lease takeover", &make, leases::takeover).await;
    case("lease release", &make, leases::release).await;
    case("fenced commits", &make, leases::fenced_commits).await;
    case("sessions", &make, sessions::registry).await;
    case("outbox order", &make, outbox::order).await;
    case("outbox of refused commits", &make, outbox::refused).await;
    case("outbox window", &make, outbox::window).await;
    case("outbox acknowledgement", &make, outbox::ack).await;
    case("pattern registry", &make, registry::replacement).await;
}

/// Checks that everything survives a restart; `open` opens the same durable store each call (the
/// suite drops the previous handle first).
pub async fn run_durability<F, Fut>(open: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn ThredStore>>,
{
    eprintln!("store contract: durability");
    durability::reopen(&open).await;
}

/// Runs one case on a fresh store.
async fn case<F, Fut, C, CFut>(name: &str, make: &F, run: C)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn ThredStore>>,
    C: FnOnce(Arc<dyn ThredStore>, ManualClock) -> CFut,
    CFut: Future<Output = ()>,
{
    eprintln!("store contract: {name}");
    let clock = ManualClock::new(START);
    let store = make(clock.clone()).await;
    run(store, clock).await;
}

/// The value of a store call that must succeed.
fn must<T>(what: &str, result: Result<T, Error>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what}: unexpected error {e}"),
    }
}

/// Asserts a store call was refused with a conflict.
fn conflict<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) {
    match result {
        Err(Error::Conflict(_)) => {}
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

/// A thred of pattern `p`, told apart from its other versions by `step`.
fn thred(id: &str, step: i64) -> ThredState {
    let mut scope = Map::new();
    scope.insert("step".into(), json!(step));
    ThredState {
        id: id.to_string(),
        pattern_id: "p".into(),
        thred_context: ThredContext {
            thred_id: id.to_string(),
            scope,
            participant_ids: vec!["alice".into()],
        },
        reaction_store: Some(ReactionStore {
            reaction_name: "waiting".into(),
            condition_state: BTreeMap::new(),
            start_time: START + step,
        }),
        start_time: START,
        end_time: None,
        status: Status::Active,
        last_update_time: START + step,
        meta: ThredMeta::default(),
        parent_thred_id: None,
        spawn_type: None,
        child_thred_ids: Vec::new(),
    }
}

/// A timer of thred `id` due at `due`.
fn timer(id: &str, due: i64) -> Timer {
    Timer {
        thred_id: id.to_string(),
        due,
        reaction_name: "waiting".into(),
        entered_at: START,
    }
}

/// A save in partition 0, without timer, not listening for unbound events.
fn save(state: ThredState, expected: Option<u64>) -> ThredWrite {
    save_in(state, expected, 0, None, false)
}

/// A save with every option.
fn save_in(
    state: ThredState,
    expected: Option<u64>,
    partition: u32,
    timer: Option<Timer>,
    listens_unbound: bool,
) -> ThredWrite {
    ThredWrite::Save {
        state,
        expected,
        partition,
        timer,
        listens_unbound,
    }
}

/// A removal from partition 0.
fn remove(id: &str, expected: Option<u64>) -> ThredWrite {
    ThredWrite::Remove {
        id: id.to_string(),
        expected,
        partition: 0,
    }
}

/// A commit of thred writes only.
fn writes(threds: Vec<ThredWrite>) -> Commit {
    Commit {
        threds,
        ..Commit::default()
    }
}

/// Owned ids.
fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

/// The stored thred `id`.
async fn load(store: &dyn ThredStore, id: &str) -> Option<Stored> {
    let mut found = must("load", store.load(&ids(&[id])).await);
    assert_eq!(found.len(), 1, "load returns one slot per id");
    found.pop().flatten()
}

/// Commits thred writes without a lease; the commit must succeed.
async fn commit_ok(store: &dyn ThredStore, what: &str, threds: Vec<ThredWrite>) {
    must(what, store.commit(None, writes(threds)).await);
}

/// Commits thred writes without a lease; the commit must conflict.
async fn commit_conflict(store: &dyn ThredStore, what: &str, threds: Vec<ThredWrite>) {
    conflict(what, store.commit(None, writes(threds)).await);
}

/// A pattern counter.
fn counter(instances: u64, last_start: Option<i64>) -> Counter {
    Counter {
        instances,
        last_start,
    }
}

/// Ids of the due timers of `partition` at `now`.
async fn due(store: &dyn ThredStore, partition: u32, now: i64) -> Vec<String> {
    must("due_timers", store.due_timers(partition, now, 100).await)
        .into_iter()
        .map(|t| t.thred_id)
        .collect()
}
