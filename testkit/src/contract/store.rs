//! The store contract: one suite per store port, each written against its port only, so the
//! embedded and the production adapters run the same cases; [`run_all`] and [`run_durability`]
//! run every suite on one adapter.
//!
//! | Suite | Takes | Checks |
//! |---|---|---|
//! | [`threds`] | `Threds` | commits, versions, counters, watermarks, timers, the unbound index, the outbox |
//! | [`leases`] | `Leases` | exclusivity, renewal, takeover, release, rising tokens |
//! | [`fencing`] | `Threds` and `Leases` of one adapter | commits under a lease are fenced by newer grants |
//! | [`sessions`] | `SessionDirectory` | sessions per participant, participants ever seen |
//! | [`patterns`] | `PatternRegistry` | whole replacement, rising versions |
//! | [`rates`] | `RateBudgets` | burst, refill, independent buckets, concurrent takes |
//!
//! Time is injected: the suite passes each store it asks for a [`ManualClock`], which the adapter
//! must use for leases and outbox commit times, and moves it forward instead of sleeping. Rate
//! buckets may run on another clock (the Redis adapter's is the server's), so [`rates`] also
//! sleeps as long as it moves the clock.
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
pub mod fencing;
pub mod leases;
mod outbox;
pub mod patterns;
pub mod rates;
pub mod sessions;
pub mod threds;
mod timers;

use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use threds_patterns::machine::Counter;
use threds_patterns::thred::{ReactionStore, Status, ThredContext, ThredMeta, ThredState, Timer};
use threds_runtime::store::{Commit, Error, Session, Stored, Stores, ThredWrite, Threds};

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

/// Runs every suite, each case on the ports of a fresh, empty adapter from `make` (given the clock
/// it must use).
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Stores>,
{
    threds::run(|clock| port(make(clock), |s| s.threds)).await;
    leases::run(|clock| port(make(clock), |s| s.leases)).await;
    fencing::run(|clock| port(make(clock), |s| (s.threds, s.leases))).await;
    sessions::run(|clock| port(make(clock), |s| s.sessions)).await;
    patterns::run(|clock| port(make(clock), |s| s.patterns)).await;
    rates::run(|clock| port(make(clock), |s| s.rates)).await;
}

/// Runs every suite's restart checks; `open(clock, name)` opens the same durable adapter for the
/// same `name` each call (the suites drop the previous handle first), and a fresh one for a new
/// name (each suite uses its own).
pub async fn run_durability<F, Fut>(open: F)
where
    F: Fn(ManualClock, &'static str) -> Fut,
    Fut: Future<Output = Stores>,
{
    threds::run_durability(|clock| port(open(clock, "threds"), |s| s.threds)).await;
    leases::run_durability(|clock| port(open(clock, "leases"), |s| s.leases)).await;
    let both = |s: Stores| (s.threds, s.leases);
    fencing::run_durability(|clock| port(open(clock, "fencing"), both)).await;
    sessions::run_durability(|clock| port(open(clock, "sessions"), |s| s.sessions)).await;
    patterns::run_durability(|clock| port(open(clock, "patterns"), |s| s.patterns)).await;
}

/// The port(s) `pick` takes from the adapter `stores` opens (the others are dropped).
async fn port<P>(stores: impl Future<Output = Stores>, pick: impl FnOnce(Stores) -> P) -> P {
    pick(stores.await)
}

/// Runs one case of `suite` on a fresh port from `make`.
async fn case<P, F, Fut, C, CFut>(suite: &str, name: &str, make: &F, run: C)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = P>,
    C: FnOnce(P, ManualClock) -> CFut,
    CFut: Future<Output = ()>,
{
    eprintln!("store contract: {suite}: {name}");
    let clock = ManualClock::new(START);
    let port = make(clock.clone()).await;
    run(port, clock).await;
}

/// The value of a store call that must succeed.
fn must<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> T {
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
        pattern_version: None,
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
        started_by: None,
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
async fn load(store: &dyn Threds, id: &str) -> Option<Stored> {
    let mut found = must("load", store.load(&ids(&[id])).await);
    assert_eq!(found.len(), 1, "load returns one slot per id");
    found.pop().flatten()
}

/// Commits thred writes without a lease; the commit must succeed.
async fn commit_ok(store: &dyn Threds, what: &str, threds: Vec<ThredWrite>) {
    must(what, store.commit(None, writes(threds)).await);
}

/// Commits thred writes without a lease; the commit must conflict.
async fn commit_conflict(store: &dyn Threds, what: &str, threds: Vec<ThredWrite>) {
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
async fn due(store: &dyn Threds, partition: u32, now: i64) -> Vec<String> {
    must("due_timers", store.due_timers(partition, now, 100).await)
        .into_iter()
        .map(|t| t.thred_id)
        .collect()
}

/// A session of `participant` on `node`.
fn session(id: &str, participant: &str, node: &str) -> Session {
    Session {
        id: id.into(),
        participant: participant.into(),
        node: node.into(),
    }
}
