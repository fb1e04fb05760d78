//! The bus contract suite: what every [`Bus`] adapter must do, written against the port's traits
//! only, so the embedded adapter and the Kafka adapter run the very same cases.
//!
//! Cases use unique topic and group names, so they can share one backend (a Kafka cluster), and
//! wait for conditions with bounded retries rather than fixed sleeps.

mod durability;
mod groups;
mod harness;
mod topics;

use self::harness::{Failure, Outcome};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::Bus;

/// The most one case may take before it counts as failed (a hung adapter must not hang CI).
const CASE_LIMIT: Duration = Duration::from_secs(120);

/// One case: given a fresh bus, check something about it.
type Case = fn(Arc<dyn Bus>) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The cases of [`run_all`], by name.
const CASES: &[(&str, Case)] = &[
    ("create_topic_is_idempotent", |b| {
        Box::pin(topics::create_topic_is_idempotent(b))
    }),
    ("appends_pick_partitions", |b| {
        Box::pin(topics::appends_pick_partitions(b))
    }),
    ("offsets_are_dense_and_ordered", |b| {
        Box::pin(topics::offsets_are_dense_and_ordered(b))
    }),
    ("concurrent_appends_lose_nothing", |b| {
        Box::pin(topics::concurrent_appends_lose_nothing(b))
    }),
    ("one_member_gets_everything", |b| {
        Box::pin(topics::one_member_gets_everything(b))
    }),
    ("poll_times_out_empty", |b| {
        Box::pin(topics::poll_times_out_empty(b))
    }),
    ("poll_wakes_on_append", |b| {
        Box::pin(topics::poll_wakes_on_append(b))
    }),
    ("two_members_split", |b| {
        Box::pin(groups::two_members_split(b))
    }),
    ("leave_hands_over_at_committed", |b| {
        Box::pin(groups::leave_hands_over_at_committed(b))
    }),
    ("rejoin_replaces_member", |b| {
        Box::pin(groups::rejoin_replaces_member(b))
    }),
    ("commit_requires_ownership", |b| {
        Box::pin(groups::commit_requires_ownership(b))
    }),
    ("groups_are_independent", |b| {
        Box::pin(groups::groups_are_independent(b))
    }),
    ("lag_counts_what_the_group_has_not_committed", |b| {
        Box::pin(groups::lag_counts_what_the_group_has_not_committed(b))
    }),
    (
        "a_group_joined_from_the_end_reads_only_what_comes_after",
        |b| Box::pin(groups::a_group_joined_from_the_end_reads_only_what_comes_after(b)),
    ),
    ("a_tail_reads_one_partition_from_its_end", |b| {
        Box::pin(groups::a_tail_reads_one_partition_from_its_end(b))
    }),
];

/// Runs every case against a fresh bus from `make`.
///
/// # Panics
/// If the adapter breaks the contract, listing every failed case.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Bus>>,
{
    let mut failures = Vec::new();
    for (name, case) in CASES {
        let bus = make().await;
        if let Err(Failure(why)) = limited(case(bus)).await {
            failures.push(format!("{name}: {why}"));
        }
    }
    report(&failures);
}

/// Runs the durability cases: `bus` is a fresh durable bus; `reopen` closes the bus it is given
/// (it holds the last reference) and opens the same storage again.
///
/// # Panics
/// If the adapter loses topics, records or committed offsets across a reopen.
pub async fn run_durability<R, Fut>(bus: Arc<dyn Bus>, mut reopen: R)
where
    R: FnMut(Arc<dyn Bus>) -> Fut,
    Fut: Future<Output = Arc<dyn Bus>>,
{
    let outcome = limited(durability::everything_survives_reopen(bus, &mut reopen)).await;
    let failures: Vec<String> = outcome
        .err()
        .map(|Failure(why)| format!("everything_survives_reopen: {why}"))
        .into_iter()
        .collect();
    report(&failures);
}

/// Runs a case within [`CASE_LIMIT`].
async fn limited<T>(case: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    tokio::time::timeout(CASE_LIMIT, case)
        .await
        .unwrap_or_else(|_| Err(Failure(format!("did not finish within {CASE_LIMIT:?}"))))
}

fn report(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "the bus broke its contract:\n  {}",
        failures.join("\n  ")
    );
}
