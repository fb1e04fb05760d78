//! The documents contract: the behavior every [`Documents`] adapter must show, written against the
//! trait only so that the embedded store and the MongoDB adapter run the same checks.
//!
//! [`run_all`] runs every case, each on a fresh, empty store from `make`; [`run_durability`]
//! checks that committed work (and only committed work) survives reopening. A failed check panics
//! with a message naming the case and the entry that misbehaved.

mod durability;
mod flow;
mod matchers;
mod ops;
mod queries;
mod support;
mod transactions;
mod updates;

use std::future::Future;
use std::sync::Arc;

use threds_runtime::documents::Documents;

pub use durability::run_durability;

/// Runs each case on a fresh store.
macro_rules! cases {
    ($make:ident: $($case:path),* $(,)?) => {
        $(
            {
                let docs = $make().await;
                $case(&*docs).await;
            }
        )*
    };
}

/// Runs every contract case; `make` must return a fresh, empty store each time.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Documents>>,
{
    cases!(make:
        ops::put_object,
        ops::put_generates_unique_ids,
        ops::put_array,
        ops::put_duplicate_fails,
        ops::put_rejects_bad_values,
        ops::get_one_first_match,
        ops::get_all_matches,
        ops::update_all_matches,
        ops::upsert_first_or_insert,
        ops::replace_first_or_insert,
        ops::delete_all_matches,
        ops::count_matches,
        ops::run_and_tasks_without_params,
        ops::invalid_tasks,
        ops::collection_names,
        ops::save_all_is_idempotent,
        matchers::equality_and_paths,
        matchers::arrays,
        matchers::comparisons,
        matchers::negations_and_sets,
        matchers::or_and_regex,
        matchers::matchers_drive_every_op,
        updates::sets,
        updates::array_operators,
        updates::numeric_operators,
        updates::now_and_modified,
        updates::failed_update_changes_nothing,
        queries::selectors,
        queries::sort,
        queries::skip_and_limit,
        queries::bad_collectors,
        transactions::results_and_visibility,
        transactions::rollback_on_duplicate,
        transactions::rollback_includes_upsert_and_replace,
        transactions::rollback_on_invalid_or_failing_task,
        transactions::across_collections,
        flow::persistence_agent_flow,
    );
}
